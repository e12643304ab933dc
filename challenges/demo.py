"""Demo challenges: one in each phase, across organisations, countries and languages.

Runs after the core demo data (``ideaforge.demo``). Idempotent: a challenge whose exact title
already exists in its organisation is left alone. Dates are set relative to ``now``, so the
phases are right on the day the demo is loaded (and move on with time, as real ones do).
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from challenges.models import Challenge, Phase
from challenges.services import create_challenge, publish_challenge
from ideaforge.accounts.services import get_user_by_email
from ideaforge.errors import Forbidden
from ideaforge.organisations.models import Organisation

log = structlog.get_logger(__name__)

OPENS_AT = time(9)
CLOSES_AT = time(18)
"""Local times of day: phases open in the morning and close in the evening, in the challenge's zone."""


@dataclass(frozen=True)
class DemoChallenge:
    organisation: str
    """The organisation's slug."""
    owner: str
    """Email of an owner or admin of the organisation, who creates (and publishes) the challenge."""
    phase: Phase
    """The phase the challenge is in on the day the demo is loaded."""
    fields: dict[str, Any]
    """Everything but the dates, in the shape ``challenges.inputs.parse`` reads."""
    days: dict[str, int] = field(default_factory=dict)
    """Each date field as days from today; every one at least a day away, so the phase is certain."""

    @property
    def title(self) -> str:
        return str(self.fields["title"])

    def raw(self, now: datetime) -> dict[str, Any]:
        zone = zoneinfo.ZoneInfo(str(self.fields["timezone"]))
        today = now.astimezone(zone).date()
        dates = {
            name: datetime.combine(
                today + timedelta(days=offset), CLOSES_AT if name.endswith("_ends_at") else OPENS_AT, zone
            )
            for name, offset in self.days.items()
        }
        return self.fields | dates


RENNES_MARKETS = DemoChallenge(
    organisation="ville-de-rennes",
    owner="maire@rennes.demo",
    phase=Phase.SUBMISSION,
    fields={
        "title": "Comment réduire le gaspillage alimentaire sur les marchés de Rennes ?",
        "summary": (
            "Chaque semaine, des fruits, des légumes et du pain encore bons finissent à la benne à la "
            "fermeture des marchés rennais. Commerçants, associations, habitants, villes partenaires : "
            "proposez des idées concrètes pour que ces invendus trouvent preneur avant la fin du marché."
        ),
        "description": (
            "Du marché des Lices aux marchés de quartier, une partie des invendus part encore à la benne "
            "en fin de matinée, faute de solution simple pour les redistribuer à temps.\n\n"
            "Nous cherchons des idées **applicables dès la saison prochaine**, par exemple :\n\n"
            "- un moyen simple de signaler les invendus aux associations d'aide alimentaire ;\n"
            "- des formules de vente à prix réduit dans la dernière heure du marché ;\n"
            "- une logistique légère (vélos-cargos, points de collecte) pour récupérer les surplus.\n\n"
            "Un jury composé d'élus, de commerçants et d'associations étudiera les idées les plus "
            "soutenues. Les villes partenaires qui ont déjà testé une solution sont les bienvenues."
        ),
        "tags": ["alimentation", "marchés"],
        "languages": ["fr"],
        "country": "FR",
        "region": "Bretagne",
        "timezone": "Europe/Paris",
        "visibility": "public",
        "open_to_partners": True,
        "reward": (
            "Jusqu'à 15 000 € et l'accompagnement des services de la Ville pour tester les trois idées "
            "lauréates sur les marchés rennais."
        ),
        "votes_per_user": 3,
        "who_may_submit": "signed_in",
        "edit_window_hours": 48,
        "shortlist_size": 8,
        "jurors_per_idea": 3,
        "criteria": [
            {
                "name": "Impact sur le gaspillage",
                "description": "Quantité d'invendus évités, et facilité à mesurer le résultat.",
                "weight": 2,
                "scale_min": 1,
                "scale_max": 5,
            },
            {
                "name": "Faisabilité sur les marchés",
                "description": "Mise en place possible avec les commerçants, sans matériel lourd ni surcoût.",
                "weight": 1,
                "scale_min": 1,
                "scale_max": 5,
                "minimum_score": 2,
            },
        ],
    },
    days={
        "submission_starts_at": -7,
        "submission_ends_at": 21,
        "voting_starts_at": 14,
        "voting_ends_at": 35,
        "review_ends_at": 56,
        "results_ends_at": 100,
    },
)

QUEBEC_SIDEWALKS = DemoChallenge(
    organisation="ville-de-quebec",
    owner="innovation@quebec.demo",
    phase=Phase.VOTING,
    fields={
        "title": "Des trottoirs praticables tout l'hiver",
        "summary": (
            "Plaques de glace, bancs de neige aux intersections, arrêts d'autobus difficiles d'accès : "
            "l'hiver complique les déplacements à pied, surtout pour les aînés, les personnes à mobilité "
            "réduite et les parents avec une poussette. Quelles idées pour marcher en sécurité de "
            "décembre à avril ?"
        ),
        "description": (
            "Le déneigement des rues est bien rodé, mais les trottoirs restent souvent le maillon faible, "
            "en particulier après un redoux ou une tempête.\n\n"
            "Vos propositions peuvent porter sur :\n\n"
            "- le signalement rapide des trottoirs glacés ou obstrués ;\n"
            "- l'entretien des coins de rue et des arrêts d'autobus ;\n"
            "- des aménagements (abris, abrasifs, trottoirs chauffants) aux endroits les plus fréquentés ;\n"
            "- l'entraide entre voisins pour les personnes qui ne peuvent pas déneiger elles-mêmes.\n\n"
            "Les idées sont acceptées en français et en anglais. Votez pour celles qui vous semblent "
            "les plus utiles : les plus appuyées seront étudiées par les équipes de la Ville."
        ),
        "tags": ["hiver", "mobilité", "trottoirs"],
        "languages": ["fr", "en"],
        "country": "CA",
        "region": "Québec",
        "timezone": "America/Toronto",
        "visibility": "public",
        "open_to_partners": True,
        "reward": (
            "Les trois idées les plus appuyées seront mises à l'essai dans un quartier pilote "
            "l'hiver prochain, avec les équipes de déneigement de la Ville."
        ),
        "votes_per_user": 5,
        "who_may_submit": "signed_in",
        "edit_window_hours": 24,
        "shortlist_size": 10,
        "jurors_per_idea": 3,
    },
    days={
        "submission_starts_at": -21,
        "submission_ends_at": 2,
        "voting_starts_at": -3,
        "voting_ends_at": 14,
        "results_ends_at": 60,
    },
)

BARCELONA_SHADE = DemoChallenge(
    organisation="barcelona-urban-lab",
    owner="lab@barcelona.demo",
    phase=Phase.REVIEW,
    fields={
        "title": "Cooler streets: shade and water in public space",
        "summary": (
            "Summer heat in dense neighbourhoods is getting harder to live with. We are looking for "
            "low-cost, quick-to-install ways to bring shade, drinking water and cooler surfaces to streets "
            "and squares, which residents and local shops can help look after."
        ),
        "description": (
            "Heatwaves arrive earlier and last longer, and the streets with the fewest trees are often "
            "those where people have the fewest other ways to stay cool.\n\n"
            "We asked for ideas such as:\n\n"
            "- temporary or seasonal shade that keeps emergency access clear;\n"
            "- drinking fountains, misting points and small water features;\n"
            "- lighter or permeable surfaces, planters and climbing plants;\n"
            "- ways for neighbours and shops to adopt and maintain a cool spot.\n\n"
            "A jury of urban ecologists, designers and residents is now scoring the shortlist, "
            "without seeing who wrote each idea."
        ),
        "tags": ["climate", "heat", "public-space"],
        "languages": ["en", "es", "ca"],
        "country": "ES",
        "region": "Catalonia",
        "timezone": "Europe/Madrid",
        "visibility": "public",
        "open_to_partners": True,
        "reward": "A €25,000 pilot budget and a summer-long test in two public squares.",
        "votes_per_user": 3,
        "who_may_submit": "verified_email",
        "edit_window_hours": 24,
        "shortlist_size": 12,
        "jurors_per_idea": 2,
        "blind_review": True,
        "criteria": [
            {
                "name": "Impact",
                "description": (
                    "How much cooler and more comfortable the place becomes, and for how many people."
                ),
                "weight": 2,
                "scale_min": 1,
                "scale_max": 5,
            },
            {
                "name": "Feasibility",
                "description": "Can be installed within one season, with the permits and upkeep it needs.",
                "weight": 1,
                "scale_min": 1,
                "scale_max": 5,
                "minimum_score": 2,
            },
            {
                "name": "Cost",
                "description": "Cost to build and to maintain over five years (5: cheapest).",
                "weight": 1,
                "scale_min": 1,
                "scale_max": 5,
            },
        ],
    },
    days={
        "submission_starts_at": -50,
        "submission_ends_at": -22,
        "voting_starts_at": -29,
        "voting_ends_at": -15,
        "review_ends_at": 9,
        "results_ends_at": 45,
    },
)

FRANKFURT_DELIVERY = DemoChallenge(
    organisation="frankfurt-mobility-gmbh",
    owner="mobility@frankfurt.demo",
    phase=Phase.RESULTS,
    fields={
        "title": "Last-mile delivery without vans",
        "summary": (
            "Delivery vans double-parked in narrow streets slow down buses, block cycle lanes and pollute. "
            "How can parcels and groceries travel their last kilometre by cargo bike, on foot or through "
            "shared neighbourhood hubs instead?"
        ),
        "description": (
            "Parcel volumes keep growing, and most parcels still travel their last kilometre in a van. "
            "We want to pilot alternatives with logistics partners in the city centre.\n\n"
            "Ideas could cover micro-hubs in car parks or empty shops, cargo-bike routes and loading "
            "zones, one consolidated delivery round per street, or pick-up points that people actually "
            "use.\n\n"
            "The jury has scored the shortlist: the winning ideas are announced on this page."
        ),
        "tags": ["cargo-bikes", "logistics", "mobility"],
        "languages": ["en", "de"],
        "country": "DE",
        "region": "Hesse",
        "timezone": "Europe/Berlin",
        "visibility": "public",
        "open_to_partners": False,
        "reward": "A paid six-month pilot with Frankfurt Mobility, up to €40,000, for the winning team.",
        "who_may_submit": "signed_in",
        "edit_window_hours": 12,
        "shortlist_size": 6,
        "jurors_per_idea": 2,
        "criteria": [
            {
                "name": "Vans off the road",
                "description": "Share of van trips the idea could replace, and the emissions it avoids.",
                "weight": 2,
                "scale_min": 1,
                "scale_max": 5,
            },
            {
                "name": "Ready to pilot",
                "description": "Can start within six months with existing vehicles and partners.",
                "weight": 1,
                "scale_min": 1,
                "scale_max": 5,
            },
        ],
    },
    days={
        "submission_starts_at": -80,
        "submission_ends_at": -50,
        "voting_starts_at": -55,
        "voting_ends_at": -38,
        "review_ends_at": -12,
        "results_ends_at": 30,
    },
)

LAVAL_ENERGY = DemoChallenge(
    organisation="universite-laval",
    owner="innovation@quebec.demo",
    phase=Phase.CLOSED,
    fields={
        "title": "Un campus plus sobre en énergie",
        "summary": (
            "Les pavillons du campus consomment beaucoup d'énergie, surtout en hiver. Étudiants, "
            "employés et chercheurs étaient invités à proposer des idées pour réduire la consommation "
            "de chauffage et d'électricité sans nuire au confort ni à la recherche."
        ),
        "description": (
            "Ce défi s'adressait à toute la communauté universitaire et portait sur trois volets :\n\n"
            "1. le chauffage et la ventilation des pavillons ;\n"
            "2. l'éclairage et les équipements des laboratoires ;\n"
            "3. les habitudes au quotidien : salles inoccupées, appareils en veille, horaires.\n\n"
            "Merci à toutes les personnes qui ont participé ! Les idées retenues sont maintenant à "
            "l'étude avec les équipes responsables des bâtiments."
        ),
        "tags": ["campus", "énergie"],
        "languages": ["fr"],
        "country": "CA",
        "region": "Québec",
        "timezone": "America/Toronto",
        "visibility": "public",
        "open_to_partners": False,
        "reward": "Une bourse de 2 000 $ pour chacune des trois idées les plus appuyées.",
        "votes_per_user": 2,
        "who_may_submit": "members",
        "edit_window_hours": 24,
        "shortlist_size": 5,
        "jurors_per_idea": 3,
    },
    days={
        "submission_starts_at": -200,
        "submission_ends_at": -165,
        "voting_starts_at": -170,
        "voting_ends_at": -150,
        "results_ends_at": -120,
    },
)

RENNES_NIGHT = DemoChallenge(
    organisation="ville-de-rennes",
    owner="maire@rennes.demo",
    phase=Phase.DRAFT,
    fields={
        "title": "Night-time quiet in the city centre",
        "summary": (
            "The city centre is lively at night, and the people who live there need to sleep. This "
            "challenge will ask how to keep evenings welcoming for students, bars and visitors while "
            "cutting the noise for residents."
        ),
        "description": (
            "This challenge is still being prepared with residents' associations, bar owners and "
            "student unions.\n\n"
            "Topics we expect to cover:\n\n"
            "- the hour around closing time, when crowds spill into the streets;\n"
            "- mediation and night-time street teams;\n"
            "- quieter deliveries and waste collection early in the morning.\n\n"
            "Dates and rules may still change before publication."
        ),
        "tags": ["nightlife", "noise"],
        "languages": ["en", "fr"],
        "country": "FR",
        "region": "Bretagne",
        "timezone": "Europe/Paris",
        "visibility": "public",
        "open_to_partners": True,
        "votes_per_user": 5,
        "who_may_submit": "signed_in",
        "edit_window_hours": 24,
        "shortlist_size": 10,
        "jurors_per_idea": 3,
    },
    days={
        "submission_starts_at": 30,
        "submission_ends_at": 75,
        "voting_starts_at": 60,
        "voting_ends_at": 90,
        "results_ends_at": 120,
    },
)

DEMO_CHALLENGES = [
    RENNES_NIGHT,
    RENNES_MARKETS,
    QUEBEC_SIDEWALKS,
    BARCELONA_SHADE,
    FRANKFURT_DELIVERY,
    LAVAL_ENERGY,
]


async def load_challenge_demo(session: AsyncSession, now: datetime) -> bool:
    """Create the demo challenges that are missing; True when any was created."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    created = False
    for demo in DEMO_CHALLENGES:
        organisation = await session.scalar(
            select(Organisation).where(Organisation.slug == demo.organisation)
        )
        owner = await get_user_by_email(session, demo.owner)
        if organisation is None or owner is None:
            log.info("demo_challenge_skipped", title=demo.title, reason="organisation or owner missing")
            continue
        exists = await session.scalar(
            select(Challenge.id).where(
                Challenge.organisation_id == organisation.id, Challenge.title == demo.title
            )
        )
        if exists is not None:
            continue
        try:
            challenge = await create_challenge(session, organisation, owner, demo.raw(now))
        except Forbidden:  # the owner lost their role: nothing was written
            log.info("demo_challenge_skipped", title=demo.title, reason="owner may not create challenges")
            continue
        if demo.phase is not Phase.DRAFT:
            await publish_challenge(session, challenge, owner, now)
        created = True
    return created

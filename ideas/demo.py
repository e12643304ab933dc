"""Demo ideas, votes and comments, so every challenge past its submission start has something to show.

Ideas are dated inside their challenge's submission phase; votes are written with the counter in
step (the same invariant the vote service keeps). Idempotent: an idea is identified by its title.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from challenges.models import Challenge, ChallengeTag
from ideaforge.accounts.models import User
from ideas.models import Comment, Idea, IdeaTag, Report, Vote

IDEAS: dict[str, list[tuple[str, str, str, str, list[str]]]] = {
    # challenge title prefix: (author email, language, title, body, tags)
    "Comment réduire le gaspillage": [
        (
            "citoyenne@ideaforge.demo",
            "fr",
            "Une appli pour signaler les invendus en fin de marché",
            "Les commerçants publient en deux clics ce qui reste à 12 h 30 ; les associations voisines "
            "réservent et passent le récupérer avant le démontage.",
            ["marchés"],
        ),
        (
            "citizen@ideaforge.demo",
            "fr",
            "Des frigos solidaires à la sortie des halles",
            "Installer deux **frigos partagés**, entretenus par une association, où déposer les produits "
            "frais invendus.",
            ["alimentation"],
        ),
        (
            "lab@barcelona.demo",
            "en",
            "Half-price last hour, announced on a shared board",
            "Stalls agree on a common time for discounts and show it on one board at the market entrance, "
            "as we tested in Barcelona.",
            ["marchés"],
        ),
        (  # a near-duplicate of the first idea: the duplicate queue and the typing panel show it
            "moderation@rennes.demo",
            "fr",
            "Application pour donner les invendus du marché aux associations",
            "À la fin du marché, les commerçants signalent leurs invendus sur une appli et les associations "
            "du quartier viennent les chercher.",
            [],
        ),
    ],
    "Des trottoirs praticables": [
        (
            "citoyenne@ideaforge.demo",
            "fr",
            "Déneiger d'abord les trajets vers les arrêts d'autobus",
            "Cartographier les 200 arrêts les plus utilisés par les aînés et les dégager en priorité.",
            [],
        ),
        (
            "citizen@ideaforge.demo",
            "en",
            "Heated ramps at the busiest crossings",
            "A pilot with low-energy heated ramps at five intersections near the hospital.",
            [],
        ),
        (
            "lab@barcelona.demo",
            "en",
            "Sidewalk condition reports from residents",
            "A simple map where anyone reports ice; crews see the reports in real time.",
            [],
        ),
    ],
    "Cooler streets": [
        (
            "citizen@ideaforge.demo",
            "en",
            "Shade sails over school streets",
            "Removable sails from May to September, maintained with parents' associations.",
            [],
        ),
        (  # near-duplicate of the one above
            "lab@barcelona.demo",
            "en",
            "Shade canopies above the streets outside schools",
            "Put up fabric sails over school streets in summer, taken down in autumn, looked after with the parents.",
            [],
        ),
        (
            "citoyenne@ideaforge.demo",
            "fr",
            "Des fontaines dans chaque square",
            "Une fontaine à boire tous les 300 mètres, reliée au réseau existant.",
            [],
        ),
        (
            "citizen@ideaforge.demo",
            "en",
            "Trees instead of tarmac in school car parks",
            "Replace half of each school car park with trees and permeable paving, planted with the pupils.",
            [],
        ),
        (
            "maire@rennes.demo",
            "fr",
            "Des salles fraîches dans les médiathèques",
            "Pendant les canicules, les médiathèques climatisées ouvrent plus tard et accueillent tout le monde.",
            [],
        ),
    ],
    "Last-mile delivery": [
        (
            "citizen@ideaforge.demo",
            "en",
            "Neighbourhood parcel hubs in corner shops",
            "Parcels go to partner shops; the last metres are walked or cycled.",
            [],
        ),
        (  # near-duplicate of the one above
            "innovation@quebec.demo",
            "en",
            "Parcel pick-up points in local corner shops",
            "Deliver parcels to the corner shop nearby so people collect them on foot instead of vans driving "
            "to every door.",
            [],
        ),
        (
            "maire@rennes.demo",
            "fr",
            "Des vélos-cargos mutualisés entre commerçants",
            "Une flotte partagée, réservée par créneaux, avec une aire de recharge.",
            [],
        ),
        (
            "citoyenne@ideaforge.demo",
            "fr",
            "Des consignes à colis aux arrêts de tram",
            "Les colis attendent dans des casiers aux arrêts, qu'on ouvre en rentrant du travail.",
            [],
        ),
        (
            "citizen@ideaforge.demo",
            "en",
            "Quiet electric deliveries at night",
            "Silent electric vans deliver shops between 10 pm and 6 am, when the streets are empty.",
            [],
        ),
        (
            "citizen@ideaforge.demo",
            "en",
            "One delivery round for all the old town's shops",
            "A shared depot at the edge of the old town bundles every shop's deliveries into one cargo-bike round.",
            [],
        ),
    ],
    "Un campus plus sobre": [
        (
            "citoyenne@ideaforge.demo",
            "fr",
            "Baisser d'un degré les bâtiments la nuit",
            "Une consigne simple, affichée et mesurée bâtiment par bâtiment.",
            [],
        ),
    ],
}
VOTERS = ["citizen@ideaforge.demo", "citoyenne@ideaforge.demo", "lab@barcelona.demo", "mobility@frankfurt.demo",
          "moderation@rennes.demo", "innovation@quebec.demo", "admin@ideaforge.demo"]  # fmt: skip
COMMENTS = [
    ("mobility@frankfurt.demo", "We tried something close in Frankfurt: happy to share what we learnt."),
    ("moderation@rennes.demo", "Merci ! Pouvez-vous préciser le coût de départ ?"),
]


async def load_idea_demo(session: AsyncSession, now: datetime) -> bool:
    users = {u.email: u for u in await session.scalars(select(User))}
    created = False
    for prefix, ideas in IDEAS.items():
        challenge = await session.scalar(select(Challenge).where(Challenge.title.startswith(prefix)))
        if challenge is None or challenge.submission_starts_at > now:
            continue
        offered = set(
            await session.scalars(select(ChallengeTag.tag).where(ChallengeTag.challenge_id == challenge.id))
        )
        used: dict[int, int] = {}
        for index, (email, language, title, body, tags) in enumerate(ideas):
            author = users.get(email)
            if author is None or await session.scalar(select(Idea.id).where(Idea.title == title)) is not None:
                continue
            moment = min(now, challenge.submission_starts_at + timedelta(hours=6 * (index + 1)))
            idea = Idea(challenge_id=challenge.id, author_id=author.id, title=title, body=body, language=language,
                        created_at=moment, updated_at=moment)  # fmt: skip
            idea.tags = [IdeaTag(tag=t) for t in tags if t in offered]
            session.add(idea)
            await session.flush()
            voters = [
                users[v] for v in VOTERS[: max(1, len(VOTERS) - 2 * index)] if v in users and v != email
            ]
            budget = challenge.votes_per_user
            # Each voter keeps within the challenge's budget, as the vote service would make them.
            voters = [v for v in voters if budget is None or used.get(v.id, 0) < budget]
            for voter in voters:
                used[voter.id] = used.get(voter.id, 0) + 1
                session.add(
                    Vote(idea_id=idea.id, challenge_id=challenge.id, user_id=voter.id, created_at=moment)
                )
            idea.vote_count = len(voters)
            for offset, (commenter, text) in enumerate(COMMENTS[: 2 - index % 2]):
                if commenter in users:
                    session.add(Comment(idea_id=idea.id, author_id=users[commenter].id, body=text,
                                        created_at=moment + timedelta(hours=offset + 1)))  # fmt: skip
            created = True
    await session.flush()
    created = await _reported_comment(session, users) or created
    await session.commit()
    return created


async def _reported_comment(session: AsyncSession, users: dict[str, User]) -> bool:
    """One off-topic comment, reported, so the moderators' queue has something on first visit."""
    text = "Buy cheap watches at my shop!!!"
    if await session.scalar(select(Comment.id).where(Comment.body == text)) is not None:
        return False
    idea = await session.scalar(select(Idea).order_by(Idea.id).limit(1))
    spammer, reporter = users.get("mobility@frankfurt.demo"), users.get("citoyenne@ideaforge.demo")
    if idea is None or spammer is None or reporter is None:
        return False
    comment = Comment(idea_id=idea.id, author_id=spammer.id, body=text, created_at=idea.created_at)
    session.add(comment)
    await session.flush()
    session.add(Report(challenge_id=idea.challenge_id, idea_id=idea.id, comment_id=comment.id,
                       reporter_id=reporter.id, reason="Advertising, not about the idea."))  # fmt: skip
    return True

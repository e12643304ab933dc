"""Demo data that makes a first visit alive. Idempotent: existing rows are left alone."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ideaforge.accounts.models import User
from ideaforge.accounts.services import get_user_by_email, register_user
from ideaforge.db import Database
from ideaforge.organisations.models import Membership, Organisation, OrganisationKind, Role
from ideaforge.organisations.services import slugify
from ideaforge.profiles.models import ExpertProfile, PartnerProfile
from ideaforge.settings import Settings

# Published in the README: these accounts exist only in demo databases.
DEMO_PASSWORD = "forge-demo-2026"

USERS = [
    # email, display name, locale, country, superuser
    ("admin@ideaforge.demo", "Ada Admin", "en", "FR", True),
    ("maire@rennes.demo", "Camille Martin", "fr", "FR", False),
    ("moderation@rennes.demo", "Yann Le Goff", "fr", "FR", False),
    ("innovation@quebec.demo", "Sophie Tremblay", "fr", "CA", False),
    ("lab@barcelona.demo", "Jordi Puig", "en", "ES", False),
    ("mobility@frankfurt.demo", "Lena Schmidt", "en", "DE", False),
    ("citizen@ideaforge.demo", "Chris Citizen", "en", "FR", False),
    ("citoyenne@ideaforge.demo", "Léa Dubois", "fr", "CA", False),
]

ORGANISATIONS = [
    # name, kind, country, region, description, website
    (
        "Ville de Rennes",
        OrganisationKind.CITY,
        "FR",
        "Bretagne",
        "La ville de Rennes lance des défis ouverts à ses habitants et à ses villes partenaires.",
        "https://metropole.rennes.fr",
    ),
    (
        "Ville de Québec",
        OrganisationKind.CITY,
        "CA",
        "Québec",
        "La Ville de Québec invite citoyens et partenaires à imaginer la ville de demain.",
        "https://www.ville.quebec.qc.ca",
    ),
    (
        "Barcelona Urban Lab",
        OrganisationKind.LAB,
        "ES",
        "Catalonia",
        "A testbed for **urban pilots** in public space, open to partners abroad.",
        "https://example.org/barcelona-urban-lab",
    ),
    (
        "Frankfurt Mobility GmbH",
        OrganisationKind.COMPANY,
        "DE",
        "Hesse",
        "We build shared-mobility services and look for cities to pilot them.",
        "https://example.org/frankfurt-mobility",
    ),
    (
        "Université Laval",
        OrganisationKind.UNIVERSITY,
        "CA",
        "Québec",
        "Recherche appliquée en villes durables.",
        "https://www.ulaval.ca",
    ),
]

MEMBERSHIPS = [
    ("Ville de Rennes", "maire@rennes.demo", Role.OWNER),
    ("Ville de Rennes", "moderation@rennes.demo", Role.MODERATOR),
    ("Ville de Rennes", "admin@ideaforge.demo", Role.ADMIN),
    ("Ville de Québec", "innovation@quebec.demo", Role.OWNER),
    ("Ville de Québec", "citoyenne@ideaforge.demo", Role.MEMBER),
    ("Barcelona Urban Lab", "lab@barcelona.demo", Role.OWNER),
    ("Frankfurt Mobility GmbH", "mobility@frankfurt.demo", Role.OWNER),
    ("Université Laval", "innovation@quebec.demo", Role.ADMIN),
]

EXPERTS = [
    # email, organisation (or None), country, languages, capacity, available, keywords, expertise
    (
        "moderation@rennes.demo",
        "Ville de Rennes",
        "FR",
        "fr,en",
        5,
        True,
        "cycling, public transport, street design",
        "Urbaniste à Rennes : aménagement de pistes cyclables, apaisement de la circulation et "
        "transports en commun de quartier. Quinze ans de concertation avec les habitants.",
    ),
    (
        "innovation@quebec.demo",
        "Université Laval",
        "CA",
        "fr,en",
        8,
        True,
        "winter city, snow removal, sustainable buildings, energy",
        "Research on winter cities: snow removal logistics, heating and insulation of public "
        "buildings, and keeping streets walkable in the cold months.",
    ),
    (
        "lab@barcelona.demo",
        "Barcelona Urban Lab",
        "ES",
        "es,ca,en",
        6,
        True,
        "urban pilots, sensors, open data, public space",
        "Running pilots in public space: sensors for noise and air quality, open data platforms "
        "and the procurement of small innovative services for the city.",
    ),
    (
        "mobility@frankfurt.demo",
        "Frankfurt Mobility GmbH",
        "DE",
        "de,en",
        4,
        True,
        "shared mobility, electric vehicles, logistics",
        "Shared mobility services: e-bike and cargo-bike sharing, electric vehicle charging and "
        "last-mile delivery logistics in dense city centres.",
    ),
    (
        "citoyenne@ideaforge.demo",
        None,
        "CA",
        "fr",
        3,
        False,
        "food, circular economy, community gardens",
        "Bénévole en agriculture urbaine : jardins communautaires, compostage de quartier et "
        "lutte contre le gaspillage alimentaire.",
    ),
]

PARTNERS = [
    # organisation, sectors, cooperation kinds, region, contact name, contact email, offers, seeks
    (
        "Barcelona Urban Lab",
        "smart city, public space, environment",
        "pilot,research",
        "Catalonia",
        "Jordi Puig",
        "partners@barcelona.demo",
        "Test sites in public space for urban pilots, with sensors for air quality and noise, and a "
        "team that has run more than forty pilots with start-ups and cities.",
        "Cities abroad that want to test and scale ideas for greener, quieter and safer streets.",
    ),
    (
        "Frankfurt Mobility GmbH",
        "mobility, logistics, energy",
        "pilot,supply,investment",
        "Hesse",
        "Lena Schmidt",
        "partners@frankfurt.demo",
        "Shared e-bikes and cargo bikes, charging stations and a booking platform, ready to be "
        "piloted in a new city within a few months.",
        "Cities with mobility challenges willing to pilot shared services in one district.",
    ),
    (
        "Université Laval",
        "research, energy, buildings, winter",
        "research,training",
        "Québec",
        "Sophie Tremblay",
        "partenariats@laval.demo",
        "Applied research on sustainable cities in cold climates: energy efficiency of buildings, "
        "snow management and student projects supervised by researchers.",
        "Field partners and data to study how ideas from citizens work in practice.",
    ),
    (
        "Ville de Québec",
        "public services, winter, mobility",
        "pilot,other",
        "Québec",
        "Sophie Tremblay",
        "international@quebec.demo",
        "Des quartiers pilotes et l'expérience d'une ville nordique : déneigement, mobilité "
        "hivernale et participation citoyenne.",
        "Des solutions éprouvées ailleurs pour la mobilité l'hiver et la transition énergétique.",
    ),
]


async def _load_profiles(
    session: AsyncSession, users: dict[str, User], organisations: dict[str, Organisation]
) -> bool:
    created = False
    for email, org_name, country, languages, capacity, available, keywords, expertise in EXPERTS:
        user_id = users[email].id
        if await session.scalar(select(ExpertProfile.id).where(ExpertProfile.user_id == user_id)) is None:
            session.add(ExpertProfile(
                user_id=user_id, expertise=expertise, languages=languages, country=country, capacity=capacity,
                keywords=",".join(sorted(k.strip() for k in keywords.split(","))), available=available,
                organisation_id=organisations[org_name].id if org_name else None,
            ))  # fmt: skip
            created = True
    for org_name, sectors, kinds, region, contact_name, contact_email, offers, seeks in PARTNERS:
        org_id = organisations[org_name].id
        if (
            await session.scalar(select(PartnerProfile.id).where(PartnerProfile.organisation_id == org_id))
            is None
        ):
            session.add(PartnerProfile(
                organisation_id=org_id, listed=True, offers=offers, seeks=seeks, cooperation=kinds,
                sectors=",".join(sorted(s.strip() for s in sectors.split(","))), region=region,
                contact_name=contact_name, contact_email=contact_email,
            ))  # fmt: skip
            created = True
    return created


async def load_demo(settings: Settings) -> bool:
    """Create whatever demo rows are missing; True when anything was created."""
    database = Database(settings.resolved_database_url)
    created = False
    try:
        async with database.sessionmaker() as session:
            users: dict[str, User] = {}
            for email, name, locale, country, superuser in USERS:
                user = await get_user_by_email(session, email)
                if user is None:
                    user = await register_user(
                        session,
                        email=email,
                        display_name=name,
                        password=DEMO_PASSWORD,
                        locale=locale,
                        is_superuser=superuser,
                    )
                    user.country = country
                    await session.commit()
                    created = True
                users[email] = user
            organisations: dict[str, Organisation] = {}
            for name, kind, country, region, description, website in ORGANISATIONS:
                organisation = await session.scalar(
                    select(Organisation).where(Organisation.slug == slugify(name))
                )
                if organisation is None:
                    organisation = Organisation(
                        slug=slugify(name),
                        name=name,
                        kind=kind,
                        country=country,
                        region=region,
                        description=description,
                        website=website,
                    )
                    session.add(organisation)
                    await session.flush()
                    created = True
                organisations[name] = organisation
            for org_name, email, role in MEMBERSHIPS:
                org_id, user_id = organisations[org_name].id, users[email].id
                exists = await session.scalar(
                    select(Membership.id).where(
                        Membership.organisation_id == org_id, Membership.user_id == user_id
                    )
                )
                if exists is None:
                    session.add(Membership(organisation_id=org_id, user_id=user_id, role=role))
                    created = True
            created = await _load_profiles(session, users, organisations) or created
            await session.commit()
    finally:
        await database.dispose()
    return created

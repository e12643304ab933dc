"""Demo data that makes a first visit alive. Idempotent: existing rows are left alone."""

from __future__ import annotations

from sqlalchemy import select

from ideaforge.accounts.models import User
from ideaforge.accounts.services import get_user_by_email, register_user
from ideaforge.db import Database
from ideaforge.organisations.models import Membership, Organisation, OrganisationKind, Role
from ideaforge.organisations.services import slugify
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
            await session.commit()
    finally:
        await database.dispose()
    return created

"""Every change to an organisation or its memberships goes through one function here."""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from ideaforge.accounts.models import User
from ideaforge.db import utcnow
from ideaforge.errors import Forbidden, ValidationFailed
from ideaforge.i18n import _
from ideaforge.organisations.models import (
    DESCRIPTION_MAX,
    ORG_NAME_MAX,
    REGION_MAX,
    WEBSITE_MAX,
    Invitation,
    Membership,
    Organisation,
    OrganisationKind,
    Role,
)
from ideaforge.organisations.permissions import can_grant_role, can_invite_members
from ideaforge.validation import country_problem, email_problem, normalise_email, text_problem

INVITATION_LIFETIME = timedelta(days=14)
PAGE_SIZE = 20


def slugify(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:100] or "organisation"


@dataclass(frozen=True)
class OrganisationInput:
    name: str
    kind: str
    country: str
    region: str = ""
    description: str = ""
    website: str = ""

    def cleaned(self) -> OrganisationInput:
        return OrganisationInput(
            name=self.name.strip(),
            kind=self.kind.strip(),
            country=self.country.strip().upper(),
            region=self.region.strip(),
            description=self.description.strip(),
            website=self.website.strip(),
        )

    def problems(self) -> dict[str, str]:
        errors: dict[str, str] = {}
        if problem := text_problem(self.name, required=True, max_length=ORG_NAME_MAX):
            errors["name"] = problem
        if self.kind not in {k.value for k in OrganisationKind}:
            errors["kind"] = _("Choose what kind of organisation this is.")
        if problem := country_problem(self.country, required=True):
            errors["country"] = problem
        if problem := text_problem(self.region, required=False, max_length=REGION_MAX):
            errors["region"] = problem
        if problem := text_problem(self.description, required=False, max_length=DESCRIPTION_MAX):
            errors["description"] = problem
        if problem := text_problem(self.website, required=False, max_length=WEBSITE_MAX):
            errors["website"] = problem
        elif self.website and not re.match(r"^https?://[^\s/$.?#][^\s]*\.[^\s]+$", self.website):
            errors["website"] = _("Enter a full web address starting with https://")
        return errors


async def _free_slug(session: AsyncSession, name: str) -> str:
    base = slugify(name)
    taken = set(await session.scalars(select(Organisation.slug).where(Organisation.slug.like(f"{base}%"))))
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


async def create_organisation(session: AsyncSession, creator: User, data: OrganisationInput) -> Organisation:
    data = data.cleaned()
    if errors := data.problems():
        raise ValidationFailed(errors)
    organisation = Organisation(
        slug=await _free_slug(session, data.name),
        name=data.name,
        kind=OrganisationKind(data.kind),
        country=data.country,
        region=data.region,
        description=data.description,
        website=data.website,
    )
    session.add(organisation)
    await session.flush()
    session.add(Membership(organisation_id=organisation.id, user_id=creator.id, role=Role.OWNER))
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise ValidationFailed({"name": _("That name was just taken. Please try again.")}) from None
    return organisation


async def get_organisation(session: AsyncSession, slug: str) -> Organisation | None:
    return await session.scalar(select(Organisation).where(Organisation.slug == slug))


async def role_in(session: AsyncSession, organisation_id: int, user: User | None) -> Role | None:
    if user is None:
        return None
    return await session.scalar(
        select(Membership.role).where(
            Membership.organisation_id == organisation_id, Membership.user_id == user.id
        )
    )


async def members(session: AsyncSession, organisation_id: int) -> list[Membership]:
    result = await session.scalars(
        select(Membership)
        .where(Membership.organisation_id == organisation_id)
        .options(selectinload(Membership.user))
        .order_by(Membership.created_at)
    )
    return sorted(result, key=lambda m: m.role.rank)


async def list_organisations(session: AsyncSession, *, page: int) -> tuple[list[Organisation], int]:
    total = await session.scalar(select(func.count()).select_from(Organisation)) or 0
    result = await session.scalars(
        select(Organisation).order_by(Organisation.name).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)
    )
    return list(result), total


def _invitation_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def invite_member(
    session: AsyncSession, organisation: Organisation, inviter: User, *, email: str, role: str
) -> tuple[Invitation, str]:
    """Create an invitation and return it with its one-time token (only the hash is stored)."""
    inviter_role = await role_in(session, organisation.id, inviter)
    if not can_invite_members(inviter_role):
        raise Forbidden(_("Only the organisation's owners and admins can invite members."))
    email = normalise_email(email)
    errors: dict[str, str] = {}
    if problem := email_problem(email):
        errors["email"] = problem
    if role not in {r.value for r in Role}:
        errors["role"] = _("Choose a role from the list.")
    elif not can_grant_role(inviter_role, Role(role)):
        errors["role"] = _("Only an owner can invite another owner.")
    if not errors:
        already = await session.scalar(
            select(Membership.id)
            .join(User, User.id == Membership.user_id)
            .where(Membership.organisation_id == organisation.id, User.email == email)
        )
        if already is not None:
            errors["email"] = _("This person is already a member.")
    if errors:
        raise ValidationFailed(errors)

    token = secrets.token_urlsafe(32)
    invitation = Invitation(
        organisation_id=organisation.id,
        email=email,
        role=Role(role),
        token_hash=_invitation_hash(token),
        invited_by_id=inviter.id,
        expires_at=utcnow() + INVITATION_LIFETIME,
    )
    session.add(invitation)
    await session.commit()
    return invitation, token


async def find_invitation(session: AsyncSession, token: str) -> Invitation | None:
    return await session.scalar(
        select(Invitation)
        .where(Invitation.token_hash == _invitation_hash(token))
        .options(selectinload(Invitation.organisation))
    )


def invitation_problem(invitation: Invitation | None, user: User | None) -> str | None:
    if invitation is None:
        return _("This invitation link is not valid. Ask for a new one.")
    if invitation.accepted_at is not None:
        return _("This invitation has already been used.")
    if invitation.expires_at <= utcnow():
        return _("This invitation has expired. Ask for a new one.")
    if user is not None and user.email != invitation.email:
        return _(
            "This invitation was sent to %(email)s. Log in with that account to accept it.",
            email=invitation.email,
        )
    return None


async def accept_invitation(session: AsyncSession, token: str, user: User) -> Organisation:
    invitation = await find_invitation(session, token)
    if problem := invitation_problem(invitation, user):
        raise Forbidden(problem)
    assert invitation is not None
    existing = await session.scalar(
        select(Membership).where(
            Membership.organisation_id == invitation.organisation_id, Membership.user_id == user.id
        )
    )
    if existing is None:
        session.add(
            Membership(organisation_id=invitation.organisation_id, user_id=user.id, role=invitation.role)
        )
    elif invitation.role.rank < existing.role.rank:
        existing.role = invitation.role
    invitation.accepted_at = utcnow()
    invitation.accepted_by_id = user.id
    await session.commit()
    return invitation.organisation

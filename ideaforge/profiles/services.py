"""Every change to an expert or partner profile goes through one function here.

Each validates, writes in one transaction, commits once, and only then calls ``after_commit``
(kind, id): the app passes the embedding service's hook, so a saved profile is embedded like an idea.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ideaforge.accounts.models import User
from ideaforge.db import parse_id
from ideaforge.errors import Forbidden, ValidationFailed
from ideaforge.i18n import _
from ideaforge.organisations.models import Membership, Organisation
from ideaforge.organisations.permissions import can_edit_organisation
from ideaforge.organisations.services import role_in
from ideaforge.profiles.models import (
    CAPACITY_MAX,
    CAPACITY_MIN,
    CONFLICT_NOTE_MAX,
    CONTACT_NAME_MAX,
    EXPERTISE_MAX,
    KEYWORD_MAX,
    KEYWORDS_MAX,
    LANGUAGES_MAX,
    OFFERS_MAX,
    PARTNER_REGION_MAX,
    SECTOR_MAX,
    SECTORS_MAX,
    CooperationKind,
    ExpertConflict,
    ExpertProfile,
    PartnerProfile,
)
from ideaforge.validation import (
    country_problem,
    email_problem,
    language_codes,
    normalise_email,
    text_problem,
)

AfterCommit = Callable[[str, int], None]
"""Told (kind, id) after a profile's commit: kind "expert" (an ``ExpertProfile`` id) or "partner"
(a ``PartnerProfile`` id)."""

EXPERT = "expert"
PARTNER = "partner"


def normalised_list(value: str) -> list[str]:
    """A comma list as distinct, lower-case, trimmed items (inner spaces collapsed), sorted."""
    items = {re.sub(r"\s+", " ", part).strip().lower() for part in value.split(",")}
    return sorted(item for item in items if item)


# --- expert profiles -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExpertInput:
    expertise: str
    keywords: str = ""
    languages: Sequence[str] = field(default_factory=list)
    country: str = ""
    organisation_id: str = ""
    """An organisation id among the user's memberships, or "" for none."""
    capacity: str = "5"
    available: bool = True

    def cleaned(self) -> ExpertInput:
        return ExpertInput(
            expertise=self.expertise.strip(),
            keywords=self.keywords.strip(),
            languages=list(dict.fromkeys(code.strip().lower() for code in self.languages if code.strip())),
            country=self.country.strip().upper(),
            organisation_id=self.organisation_id.strip(),
            capacity=self.capacity.strip(),
            available=self.available,
        )

    def problems(self) -> dict[str, str]:
        errors: dict[str, str] = {}
        if not self.expertise:
            errors["expertise"] = _("Describe your expertise: matching ideas to you depends on it.")
        elif problem := text_problem(self.expertise, required=True, max_length=EXPERTISE_MAX):
            errors["expertise"] = problem
        keywords = normalised_list(self.keywords)
        if any(len(k) > KEYWORD_MAX for k in keywords):
            errors["keywords"] = _("Each keyword has at most %(max)s characters.", max=KEYWORD_MAX)
        elif len(keywords) > KEYWORDS_MAX:
            errors["keywords"] = _("Use at most %(max)s keywords.", max=KEYWORDS_MAX)
        if not self.languages:
            errors["languages"] = _("Choose at least one language in which you can advise.")
        elif any(code not in language_codes() for code in self.languages):
            errors["languages"] = _("Use two-letter language codes, like en or fr.")
        elif len(self.languages) > LANGUAGES_MAX:
            errors["languages"] = _("Choose at most %(max)s languages.", max=LANGUAGES_MAX)
        if problem := country_problem(self.country, required=True):
            errors["country"] = problem
        if self.capacity_value is None:
            errors["capacity"] = _(
                "Enter a whole number of ideas from %(min)s to %(max)s.", min=CAPACITY_MIN, max=CAPACITY_MAX
            )
        if self.organisation_id and parse_id(self.organisation_id) is None:
            errors["organisation_id"] = _("Choose one of your organisations, or none.")
        return errors

    @property
    def capacity_value(self) -> int | None:
        try:
            value = int(self.capacity)
        except ValueError:
            return None
        return value if CAPACITY_MIN <= value <= CAPACITY_MAX else None


async def expert_profile(session: AsyncSession, user_id: int) -> ExpertProfile | None:
    return await session.scalar(select(ExpertProfile).where(ExpertProfile.user_id == user_id))


async def member_organisations(session: AsyncSession, user_id: int) -> list[Organisation]:
    """The organisations a user belongs to (any role), by name: the choices for an expert's organisation."""
    return list(
        await session.scalars(
            select(Organisation)
            .join(Membership, Membership.organisation_id == Organisation.id)
            .where(Membership.user_id == user_id)
            .order_by(Organisation.name)
        )
    )


async def save_expert_profile(
    session: AsyncSession, user: User, data: ExpertInput, *, after_commit: AfterCommit | None = None
) -> ExpertProfile:
    """Create or update the user's expert profile."""
    user_id = user.id
    data = data.cleaned()
    errors = data.problems()
    organisation_id = parse_id(data.organisation_id)
    if organisation_id is not None and "organisation_id" not in errors:
        mine = {o.id for o in await member_organisations(session, user_id)}
        if organisation_id not in mine:
            errors["organisation_id"] = _("Choose one of your organisations, or none.")
    if errors:
        raise ValidationFailed(errors)
    capacity = data.capacity_value
    assert capacity is not None
    values = {
        "expertise": data.expertise,
        "keywords": ",".join(normalised_list(data.keywords)),
        "languages": ",".join(data.languages),
        "country": data.country,
        "organisation_id": organisation_id,
        "capacity": capacity,
        "available": data.available,
    }
    existing = await expert_profile(session, user_id)
    profile = existing or ExpertProfile(user_id=user_id)
    await _save(session, profile, values, EXPERT, after_commit, "expertise",
                lambda: _("Your profile was just saved from another window. Please try again."))  # fmt: skip
    return profile


async def _save(session: AsyncSession, profile: ExpertProfile | PartnerProfile, values: dict[str, Any], kind: str,
                after_commit: AfterCommit | None, field: str, raced: Callable[[], str]) -> None:  # fmt: skip
    """Write a new or changed profile in one commit, then call the after-commit hook. Two first saves at
    once meet the unique key: the loser gets ``raced()`` on ``field`` and nothing is written."""
    for key, value in values.items():
        setattr(profile, key, value)
    session.add(profile)
    try:
        await session.flush()
        profile_id = profile.id
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise ValidationFailed({field: raced()}) from None
    if after_commit is not None:
        after_commit(kind, profile_id)


async def expert_profiles(session: AsyncSession, *, available_only: bool = True) -> list[ExpertProfile]:
    query = select(ExpertProfile).order_by(ExpertProfile.id)
    if available_only:
        query = query.where(ExpertProfile.available.is_(True))
    return list(await session.scalars(query))


# --- declared conflicts of interest ----------------------------------------------------------------


@dataclass(frozen=True)
class ConflictRow:
    id: int
    organisation_name: str | None
    user_name: str | None
    note: str


async def conflicts(session: AsyncSession, expert_user_id: int) -> list[ConflictRow]:
    """The expert's declared conflicts, organisations first, with names to show."""
    rows = await session.execute(
        select(ExpertConflict.id, Organisation.name, User.display_name, ExpertConflict.note)
        .outerjoin(Organisation, Organisation.id == ExpertConflict.organisation_id)
        .outerjoin(User, User.id == ExpertConflict.user_id)
        .where(ExpertConflict.expert_user_id == expert_user_id)
        .order_by(ExpertConflict.user_id.is_not(None), ExpertConflict.created_at, ExpertConflict.id)
    )
    return [ConflictRow(i, org, name, note) for i, org, name, note in rows]


async def add_conflict(
    session: AsyncSession, expert: User, *, organisation_id: str = "", email: str = "", note: str = ""
) -> ExpertConflict:
    """Declare that the expert must not advise ideas by this organisation, or by this person (by email)."""
    expert_id = expert.id
    organisation_id, email, note = organisation_id.strip(), normalise_email(email), note.strip()
    errors: dict[str, str] = {}
    target_org: int | None = None
    target_user: int | None = None
    if bool(organisation_id) == bool(email):
        errors["conflict_organisation_id"] = _("Choose an organisation, or enter a person's email address.")
    elif organisation_id:
        found = (
            await session.scalar(select(Organisation.id).where(Organisation.id == parse_id(organisation_id)))
            if parse_id(organisation_id) is not None
            else None
        )
        if found is None:
            errors["conflict_organisation_id"] = _("Choose an organisation from the list.")
        target_org = found
    elif problem := email_problem(email):
        errors["conflict_email"] = problem
    else:
        target_user = await session.scalar(select(User.id).where(User.email == email))
        if target_user is None:
            errors["conflict_email"] = _("No IdeaForge account uses this email address.")
        elif target_user == expert_id:
            errors["conflict_email"] = _("You cannot declare a conflict with yourself.")
    if problem := text_problem(note, required=False, max_length=CONFLICT_NOTE_MAX):
        errors["conflict_note"] = problem
    if errors:
        raise ValidationFailed(errors)
    conflict = ExpertConflict(
        expert_user_id=expert_id, organisation_id=target_org, user_id=target_user, note=note
    )
    session.add(conflict)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        key = "conflict_organisation_id" if target_org is not None else "conflict_email"
        raise ValidationFailed({key: _("You have already declared this conflict.")}) from None
    return conflict


async def remove_conflict(session: AsyncSession, expert: User, conflict_id: int) -> bool:
    """Remove one of the expert's own declared conflicts; False when there is no such conflict."""
    result = await session.execute(
        delete(ExpertConflict).where(
            ExpertConflict.id == conflict_id, ExpertConflict.expert_user_id == expert.id
        )
    )
    await session.commit()
    return bool(getattr(result, "rowcount", 0))


# --- partner profiles ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartnerInput:
    listed: bool = False
    offers: str = ""
    seeks: str = ""
    sectors: str = ""
    cooperation: Sequence[str] = field(default_factory=list)
    region: str = ""
    contact_name: str = ""
    contact_email: str = ""

    def cleaned(self) -> PartnerInput:
        return PartnerInput(
            listed=self.listed,
            offers=self.offers.strip(),
            seeks=self.seeks.strip(),
            sectors=self.sectors.strip(),
            cooperation=[kind.strip() for kind in self.cooperation if kind.strip()],
            region=self.region.strip(),
            contact_name=self.contact_name.strip(),
            contact_email=normalise_email(self.contact_email),
        )

    def problems(self) -> dict[str, str]:
        """Everything may be saved as a draft; a listed profile needs its offer, need, kinds and contact."""
        errors: dict[str, str] = {}
        for name, value in (("offers", self.offers), ("seeks", self.seeks)):
            if problem := text_problem(value, required=False, max_length=OFFERS_MAX):
                errors[name] = problem
        if self.listed and not self.offers:
            errors["offers"] = _("Say what your organisation offers before listing it as a partner.")
        if self.listed and not self.seeks:
            errors["seeks"] = _("Say what your organisation seeks before listing it as a partner.")
        sectors = normalised_list(self.sectors)
        if any(len(s) > SECTOR_MAX for s in sectors):
            errors["sectors"] = _("Each sector has at most %(max)s characters.", max=SECTOR_MAX)
        elif len(sectors) > SECTORS_MAX:
            errors["sectors"] = _("Use at most %(max)s sectors.", max=SECTORS_MAX)
        known = {kind.value for kind in CooperationKind}
        if any(kind not in known for kind in self.cooperation):
            errors["cooperation"] = _("Choose kinds of cooperation from the list.")
        elif self.listed and not self.cooperation:
            errors["cooperation"] = _(
                "Choose at least one kind of cooperation before listing it as a partner."
            )
        if problem := text_problem(self.region, required=False, max_length=PARTNER_REGION_MAX):
            errors["region"] = problem
        if problem := text_problem(self.contact_name, required=self.listed, max_length=CONTACT_NAME_MAX):
            errors["contact_name"] = problem
        if (self.contact_email or self.listed) and (problem := email_problem(self.contact_email)):
            errors["contact_email"] = problem
        return errors


async def partner_profile(session: AsyncSession, organisation_id: int) -> PartnerProfile | None:
    return await session.scalar(
        select(PartnerProfile).where(PartnerProfile.organisation_id == organisation_id)
    )


async def save_partner_profile(
    session: AsyncSession,
    organisation: Organisation,
    editor: User,
    data: PartnerInput,
    *,
    after_commit: AfterCommit | None = None,
) -> PartnerProfile:
    """Create or update the organisation's partner profile (owners and admins only)."""
    organisation_id = organisation.id
    if not can_edit_organisation(await role_in(session, organisation_id, editor)):
        raise Forbidden(_("Only the organisation's owners and admins can edit its partner profile."))
    data = data.cleaned()
    if errors := data.problems():
        raise ValidationFailed(errors)
    order = [kind.value for kind in CooperationKind]
    values = {
        "listed": data.listed,
        "offers": data.offers,
        "seeks": data.seeks,
        "sectors": ",".join(normalised_list(data.sectors)),
        "cooperation": ",".join(sorted(set(data.cooperation), key=order.index)),
        "region": data.region,
        "contact_name": data.contact_name,
        "contact_email": data.contact_email,
    }
    existing = await partner_profile(session, organisation_id)
    profile = existing or PartnerProfile(organisation_id=organisation_id)
    await _save(session, profile, values, PARTNER, after_commit, "offers",
                lambda: _("The partner profile was just saved by someone else. Please try again."))  # fmt: skip
    return profile


async def partner_profiles(session: AsyncSession, *, listed_only: bool = True) -> list[PartnerProfile]:
    query = select(PartnerProfile).order_by(PartnerProfile.id)
    if listed_only:
        query = query.where(PartnerProfile.listed.is_(True))
    return list(await session.scalars(query))

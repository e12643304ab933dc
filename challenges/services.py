"""Every change to a challenge goes through one function here; reads that pages and API share."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from challenges.inputs import DATE_FIELDS, ChallengeData, fold, parse
from challenges.labels import phase_labels
from challenges.models import Challenge, ChallengeJuror, ChallengeTag, Criterion, Phase, Visibility
from challenges.permissions import Access, Role, can_view
from challenges.phases import current_phase, current_phase_is, has_started
from ideaforge.accounts.models import User
from ideaforge.audit import record
from ideaforge.errors import Forbidden, ValidationFailed
from ideaforge.i18n import _
from ideaforge.notifications.services import Notifier, followers
from ideaforge.organisations.models import Membership, Organisation
from ideaforge.organisations.models import Role as OrgRole

PAGE_SIZE = 12
VOTE_RULES = ("votes_per_user", "authors_may_vote_own")
JURY_SETTINGS = ("criteria", "shortlist_size", "jurors_per_idea", "blind_review")


# --- who is asking -----------------------------------------------------------------------------


async def access_for(
    session: AsyncSession, challenge: Challenge, user: User | None, now: datetime,
    extra_roles: frozenset[Role] = frozenset(),
) -> Access:  # fmt: skip
    """The roles ``user`` holds in ``challenge`` (``extra_roles``: e.g. author, known to the caller)."""
    if user is None:
        return Access(challenge, now, frozenset({Role.ANONYMOUS}) | extra_roles)
    roles = {Role.CITIZEN, *extra_roles}
    # One round trip for both questions: every vote and page asks them.
    membership_q = (
        select(Membership.role)
        .where(Membership.organisation_id == challenge.organisation_id, Membership.user_id == user.id)
        .scalar_subquery()
    )
    juror_q = (
        select(ChallengeJuror.id)
        .where(ChallengeJuror.challenge_id == challenge.id, ChallengeJuror.user_id == user.id)
        .exists()
    )
    row = (await session.execute(select(membership_q, juror_q))).one()
    membership = OrgRole(row[0]) if row[0] is not None else None
    if membership in (OrgRole.OWNER, OrgRole.ADMIN) or user.is_superuser:
        roles.add(Role.ADMIN)
    elif membership is OrgRole.MODERATOR:
        roles.add(Role.MODERATOR)
    if row[1]:
        roles.add(Role.JUROR)
    return Access(
        challenge, now, frozenset(roles),
        email_verified=user.email_verified_at is not None, is_member=membership is not None,
    )  # fmt: skip


def is_admin(access: Access) -> bool:
    return Role.ADMIN in access.roles


async def organisation_admin_role(session: AsyncSession, organisation_id: int, user: User) -> bool:
    if user.is_superuser:
        return True
    role = await session.scalar(
        select(Membership.role).where(
            Membership.organisation_id == organisation_id, Membership.user_id == user.id
        )
    )
    return role in (OrgRole.OWNER, OrgRole.ADMIN)


# --- reads -------------------------------------------------------------------------------------


def _with_children(query: Select[Challenge]) -> Select[Challenge]:
    return query.options(
        selectinload(Challenge.organisation), selectinload(Challenge.tags), selectinload(Challenge.criteria)
    )


async def get_challenge(session: AsyncSession, challenge_id: int) -> Challenge | None:
    result = await session.scalars(_with_children(select(Challenge).where(Challenge.id == challenge_id)))
    return result.first()


@dataclass(frozen=True)
class Filters:
    q: str = ""
    phase: str = ""
    country: str = ""
    organisation: str = ""
    tag: str = ""
    language: str = ""
    meaning: str = ""
    """"1": rank by closeness in meaning to ``q`` instead of matching its words."""

    def active(self) -> dict[str, str]:
        return {k: v for k, v in asdict(self).items() if v}


async def search_challenges(
    session: AsyncSession, filters: Filters, now: datetime, *, page: int, page_size: int = PAGE_SIZE
) -> tuple[list[Challenge], int]:
    """The public directory: published, listed, out of draft, matching every filter."""
    query = (
        select(Challenge).join(Organisation, Organisation.id == Challenge.organisation_id).where(_listed(now))
    )
    if filters.phase in {p.value for p in Phase}:
        query = query.where(current_phase_is(Phase(filters.phase), now))
    if filters.country:
        query = query.where(Challenge.country == filters.country.upper())
    if filters.organisation:
        query = query.where(Organisation.slug == filters.organisation)
    if filters.tag:
        tagged = select(ChallengeTag.challenge_id).where(ChallengeTag.tag == filters.tag.lower())
        query = query.where(Challenge.id.in_(tagged))
    if filters.language:
        query = query.where(("," + Challenge.languages + ",").like(f"%,{filters.language.lower()[:5]},%"))
    for term in fold(filters.q).split()[:8]:
        escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(Challenge.search_text.like(f"%{escaped}%", escape="\\"))
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    result = await session.scalars(
        _with_children(query)
        .order_by(Challenge.submission_starts_at.desc(), Challenge.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    return list(result), total


async def organisation_challenges(
    session: AsyncSession, organisation_id: int, *, include_drafts: bool
) -> list[Challenge]:
    query = select(Challenge).where(Challenge.organisation_id == organisation_id)
    if not include_drafts:
        query = query.where(Challenge.published_at.is_not(None))
    result = await session.scalars(_with_children(query).order_by(Challenge.submission_starts_at.desc()))
    return list(result)


def _listed(now: datetime) -> ColumnElement[bool]:
    """What the public directory may show: listed, and out of draft (so published)."""
    return and_(Challenge.visibility == Visibility.PUBLIC, ~current_phase_is(Phase.DRAFT, now))


async def facets(session: AsyncSession, now: datetime) -> dict[str, list[str]]:
    """The values the directory's filters offer, taken only from what it may show."""
    public = _listed(now)
    countries = await session.scalars(select(Challenge.country).where(public).distinct())
    tags = await session.scalars(
        select(ChallengeTag.tag)
        .join(Challenge, Challenge.id == ChallengeTag.challenge_id)
        .where(public)
        .distinct()
    )
    organisations = await session.execute(
        select(Organisation.slug, Organisation.name)
        .join(Challenge, Challenge.organisation_id == Organisation.id)
        .where(public)
        .distinct()
    )
    return {
        "countries": sorted(countries),
        "tags": sorted(tags),
        "organisations": [f"{slug}|{name}" for slug, name in sorted(organisations, key=lambda row: row[1])],
    }


# --- writes ------------------------------------------------------------------------------------


def as_raw(challenge: Challenge) -> dict[str, Any]:
    """The challenge's current values in the shape ``parse`` reads."""
    raw: dict[str, Any] = {
        name: getattr(challenge, name)
        for name in (
            "title", "summary", "description", "country", "region", "timezone", "reward", "open_to_partners",
            "votes_per_user", "authors_may_vote_own", "edit_window_hours", "shortlist_size", "jurors_per_idea",
            "blind_review", *DATE_FIELDS,
        )
    }  # fmt: skip
    raw["visibility"] = challenge.visibility.value
    raw["who_may_submit"] = challenge.who_may_submit.value
    raw["tags"] = [t.tag for t in challenge.tags]
    raw["languages"] = challenge.language_list
    raw["criteria"] = [
        {"name": c.name, "description": c.description, "weight": c.weight, "scale_min": c.scale_min,
         "scale_max": c.scale_max, "minimum_score": c.minimum_score}
        for c in challenge.criteria
    ]  # fmt: skip
    return raw


def locked_fields(challenge: Challenge, now: datetime) -> dict[str, str]:
    """Fields that may no longer change, each with the reason shown beside it."""
    locked: dict[str, str] = {}
    if has_started(challenge, Phase.SUBMISSION, now):
        locked["submission_starts_at"] = _("Locked: submission has started.")
    if has_started(challenge, Phase.VOTING, now):
        reason = _("Locked since voting started: changing it now would change the outcome.")
        locked |= dict.fromkeys((*VOTE_RULES, "voting_starts_at"), reason)
    if has_started(challenge, Phase.REVIEW, now):
        locked |= dict.fromkeys(JURY_SETTINGS, _("Locked since the jury review started."))
    return locked


def _apply(challenge: Challenge, data: ChallengeData) -> None:
    for name in (
        "title", "summary", "description", "country", "region", "timezone", "visibility", "open_to_partners",
        "reward", "votes_per_user", "authors_may_vote_own", "who_may_submit", "edit_window_hours",
        "shortlist_size", "jurors_per_idea", "blind_review", *DATE_FIELDS,
    ):  # fmt: skip
        setattr(challenge, name, getattr(data, name))
    challenge.languages = ",".join(data.languages)
    challenge.tags = [ChallengeTag(tag=tag) for tag in data.tags]
    challenge.criteria = [
        Criterion(position=i, name=c.name, description=c.description, weight=c.weight, scale_min=c.scale_min,
                  scale_max=c.scale_max, minimum_score=c.minimum_score)
        for i, c in enumerate(data.criteria)
    ]  # fmt: skip
    challenge.search_text = fold(" ".join([data.title, data.summary, data.description, *data.tags]))


async def create_challenge(
    session: AsyncSession, organisation: Organisation, actor: User, raw: Mapping[str, Any]
) -> Challenge:
    if not await organisation_admin_role(session, organisation.id, actor):
        raise Forbidden(_("Only the organisation's owners and admins can create its challenges."))
    data = parse(raw)
    challenge = Challenge(organisation_id=organisation.id)
    challenge.tags, challenge.criteria = [], []
    _apply(challenge, data)
    session.add(challenge)
    await session.flush()
    record(session, actor_id=actor.id, organisation_id=organisation.id, subject_type="challenge",
           subject_id=challenge.id, action="create")  # fmt: skip
    await session.commit()
    return challenge


def _normalised(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, list):
        return [_normalised(v) for v in value]
    if isinstance(value, dict):
        return {k: _normalised(v) for k, v in value.items()}
    return value


async def update_challenge(
    session: AsyncSession, challenge: Challenge, actor: User, changes: Mapping[str, Any], now: datetime
) -> Challenge:
    """Apply ``changes`` (only the fields given); a locked field may be sent only unchanged."""
    if not await organisation_admin_role(session, challenge.organisation_id, actor):
        raise Forbidden(_("Only the organisation's owners and admins can edit its challenges."))
    current = as_raw(challenge)
    merged = current | dict(changes)
    data = parse(merged)  # validates first: bad input gets its field messages
    parsed_now = asdict(data)
    parsed_before = asdict(parse(current))
    for name, reason in locked_fields(challenge, now).items():
        if name in changes and _normalised(parsed_now[name]) != _normalised(parsed_before[name]):
            raise Forbidden(reason)
    changed = sorted(k for k in parsed_now if _normalised(parsed_now[k]) != _normalised(parsed_before[k]))
    # Old tags and criteria must be gone before the new rows go in: they share unique keys.
    challenge.tags.clear()
    challenge.criteria.clear()
    await session.flush()
    _apply(challenge, data)
    record(session, actor_id=actor.id, organisation_id=challenge.organisation_id, subject_type="challenge",
           subject_id=challenge.id, action="update", detail={"fields": changed})  # fmt: skip
    await session.commit()
    return challenge


async def _require_admin(session: AsyncSession, challenge: Challenge, actor: User) -> None:
    if not await organisation_admin_role(session, challenge.organisation_id, actor):
        raise Forbidden(_("Only the organisation's owners and admins can manage this challenge."))


async def publish_challenge(
    session: AsyncSession, challenge: Challenge, actor: User, now: datetime
) -> Challenge:
    await _require_admin(session, challenge, actor)
    if challenge.published_at is None:
        challenge.published_at = now
        record(session, actor_id=actor.id, organisation_id=challenge.organisation_id, subject_type="challenge",
               subject_id=challenge.id, action="publish")  # fmt: skip
        await session.commit()
    return challenge


async def override_phase(
    session: AsyncSession,
    challenge: Challenge,
    actor: User,
    phase: str,
    reason: str,
    now: datetime,
    notifier: Notifier | None = None,
) -> Challenge:
    """Force a phase (or go back to the dates with ``phase=""``); the reason goes to the audit log."""
    await _require_admin(session, challenge, actor)
    errors: dict[str, str] = {}
    if phase and phase not in {p.value for p in Phase}:
        errors["phase"] = _("Choose a phase from the list.")
    if not reason.strip():
        errors["reason"] = _("Say why: the reason is kept in the audit log.")
    elif len(reason) > 500:
        errors["reason"] = _("Use at most %(max)s characters (you used %(used)s).", max=500, used=len(reason))
    if errors:
        raise ValidationFailed(errors)
    before = current_phase(challenge, now)
    challenge.phase_override = Phase(phase) if phase else None
    record(session, actor_id=actor.id, organisation_id=challenge.organisation_id, subject_type="challenge",
           subject_id=challenge.id, action="phase_override", reason=reason.strip(),
           detail={"from": before.value, "to": current_phase(challenge, now).value,
                   "override": phase or None})  # fmt: skip
    after, mails = current_phase(challenge, now), []
    challenge.notified_phase = after  # told here; the periodic announcer must not tell it again
    if notifier is not None and after is not before:
        mails = notifier.notify(session, await followers(session, "challenge", challenge.id), "phase",
                                _phase_news(challenge.title, after), f"/challenges/{challenge.id}")  # fmt: skip
    await session.commit()
    if notifier is not None:
        notifier.send(mails)
    return challenge


async def close_challenge(
    session: AsyncSession,
    challenge: Challenge,
    actor: User,
    reason: str,
    now: datetime,
    notifier: Notifier | None = None,
) -> Challenge:
    return await override_phase(session, challenge, actor, Phase.CLOSED.value, reason, now, notifier)


async def visible_challenge(
    session: AsyncSession, challenge_id: int, user: User | None, now: datetime
) -> tuple[Challenge, Access] | None:
    """The challenge and the viewer's access, or None when it does not exist for them."""
    challenge = await get_challenge(session, challenge_id)
    if challenge is None:
        return None
    access = await access_for(session, challenge, user, now)
    return (challenge, access) if can_view(access) else None


def _phase_news(title: str, phase: Phase) -> Callable[[], str]:
    """The news of a phase change, written later in each follower's language."""
    return lambda: _("“%(title)s” is now in the phase: %(phase)s.", title=title, phase=phase_labels()[phase])


async def announce_phase_changes(session: AsyncSession, now: datetime, notifier: Notifier) -> int:
    """Tell followers of every published challenge whose phase moved with the dates since last time.

    Safe to run in several processes at once: each transition is claimed by a compare-and-set
    UPDATE, and only the process whose UPDATE matched sends the news.
    """
    announced = 0
    published = await session.scalars(select(Challenge).where(Challenge.published_at.is_not(None)))
    # Plain values first: a lost claim rolls back, which expires every loaded row.
    moves = [(c.id, c.title, current_phase(c, now), c.notified_phase) for c in published]
    for challenge_id, title, phase, told in moves:
        if phase is told:
            continue
        unchanged = Challenge.notified_phase.is_(None) if told is None else Challenge.notified_phase == told
        claimed = await session.execute(
            update(Challenge).where(Challenge.id == challenge_id, unchanged).values(notified_phase=phase)
        )
        if not claimed.rowcount:  # type: ignore[attr-defined]  # DML results carry rowcount
            await session.rollback()
            continue
        mails = []
        if told is not None:  # a first look (just published) sets the mark without news
            mails = notifier.notify(session, await followers(session, "challenge", challenge_id), "phase",
                                    _phase_news(title, phase), f"/challenges/{challenge_id}")  # fmt: skip
            announced += 1
        await session.commit()
        notifier.send(mails)
    return announced

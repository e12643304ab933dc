"""A challenge's jury: invitations by email, members, conflicts of interest, and who scores which idea.

**Invitations** are one-time links (only the token's sha256 is stored, as for organisations), valid
``INVITATION_LIFETIME``, sent from the draft until the review ends. Any signed-in account may accept one: the
invitee may use another address than the one the organisers knew.

**Conflicts**: a juror declares them on the shortlisted ideas (``JurorConflict``); others are detected
(``detected_conflicts``): the juror wrote the idea (author or accepted co-author), or the juror and one of its
authors belong to the same organisation (memberships and expert-profile organisation, compared by name folded
for case and accents, so that two records of one organisation count as one). A juror is never assigned an
idea they are in conflict with.

**Assignment** (``assign_jurors``) gives each published shortlisted idea ``Challenge.jurors_per_idea``
distinct jurors with ``ml.matching.assign`` (a min-cost flow): affinity 0, ``-inf`` for conflicts, a small
bonus when the juror reads the idea's language. Existing assignments are kept (forced, as expert suggestions
keep confirmed experts), so running it again fills the gaps. Loads are balanced by capacities: first exactly
the total shared out (loads differ by at most one), then ``ceil(total / jurors)`` each, then the number of
ideas, before giving up. The organisers may then add or remove jurors idea by idea. Every change takes the
challenge's lock (the shortlist's), is audit-logged, and tells the jurors after the commit.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from challenges.inputs import fold
from challenges.labels import phase_labels
from challenges.models import Challenge, ChallengeJuror, Phase
from challenges.phases import has_started, results_starts_at
from challenges.services import access_for, is_admin
from ideaforge.accounts.models import User
from ideaforge.audit import record
from ideaforge.errors import Conflict, Forbidden, ValidationFailed
from ideaforge.i18n import _, format_datetime, ngettext, quoted_list
from ideaforge.notifications.services import Mail, Notifier
from ideaforge.organisations.models import Membership, Organisation
from ideaforge.profiles.models import ExpertProfile, split_list
from ideaforge.validation import email_problem, normalise_email, text_problem
from ideas.jury.models import CONFLICT_REASON_MAX, JurorConflict, JuryAssignment, JuryInvitation, Scorecard
from ideas.models import CoAuthor, CoAuthorStatus, Idea, IdeaStatus, ShortlistEntry

# The shortlist's lock on the challenge row: jury changes and shortlist changes queue behind each other.
from ideas.shortlist import challenge_locked, is_locked
from ml import matching

INVITATION_LIFETIME = timedelta(days=14)
PAGE_SIZE = 25
LANGUAGE_BONUS = 0.1
"""Affinity added when the juror reads the idea's language (otherwise every eligible pair is worth 0)."""
FORCED = 1000.0
"""Affinity of the pairs already assigned: the solver keeps them (and counts them in the loads)."""
AUTHOR, COAUTHOR, ORGANISATION = "author", "coauthor", "organisation:"
"""Detected conflicts' reason codes; ``organisation:<id>`` names the juror's organisation in common."""


def scoring_link(challenge_id: int) -> str:
    return f"/challenges/{challenge_id}/scoring"


# --- when ----------------------------------------------------------------------------------------------------


def review_over(challenge: Challenge, now: datetime) -> bool:
    return has_started(challenge, Phase.RESULTS, now)


def review_over_message(challenge: Challenge) -> str:
    if challenge.phase_override is not None:
        return _("The challenge was moved by hand to the phase “%(phase)s”: the jury can no longer change.",
                 phase=phase_labels()[challenge.phase_override])  # fmt: skip
    return _("The review ended on %(date)s: the jury can no longer change.",
             date=format_datetime(results_starts_at(challenge), "medium", challenge.timezone))  # fmt: skip


def jury_closed_reason(challenge: Challenge, now: datetime) -> str | None:
    """Why members and conflicts cannot change now, or None (they can until the review ends)."""
    return review_over_message(challenge) if review_over(challenge, now) else None


def invitations_closed_reason(challenge: Challenge, now: datetime) -> str | None:
    """Why nobody can be invited now, or None (from the draft until the review ends)."""
    if challenge.review_ends_at is None and challenge.phase_override is None:
        return _(
            "This challenge has no jury review: give it a review end date in its settings to invite a jury."
        )
    return jury_closed_reason(challenge, now)


def assignment_closed_reason(challenge: Challenge, now: datetime) -> str | None:
    """Why jurors cannot be assigned now, or None (from the review's start, shortlist locked, to its end)."""
    if review_over(challenge, now):
        return review_over_message(challenge)
    if not is_locked(challenge, now):
        return _("Assignment opens when the review starts (%(date)s) and the shortlist is locked.",
                 date=format_datetime(challenge.voting_ends_at, "medium", challenge.timezone))  # fmt: skip
    return None


# --- who -----------------------------------------------------------------------------------------------------


async def can_manage_jury(session: AsyncSession, challenge: Challenge, user: User, now: datetime) -> bool:
    """The challenge's owners and admins, in any phase."""
    return is_admin(await access_for(session, challenge, user, now))


async def is_juror(session: AsyncSession, challenge_id: int, user_id: int) -> bool:
    found = await session.scalar(select(ChallengeJuror.id).where(
        ChallengeJuror.challenge_id == challenge_id, ChallengeJuror.user_id == user_id))  # fmt: skip
    return found is not None


async def _require_admin(session: AsyncSession, challenge: Challenge, actor: User, now: datetime) -> None:
    if not is_admin(await access_for(session, challenge, actor, now)):
        raise Forbidden(_("Only the organisation's owners and admins can manage the jury."))


async def _require_juror(session: AsyncSession, challenge_id: int, user_id: int) -> None:
    if not await is_juror(session, challenge_id, user_id):
        raise Forbidden(_("Only the members of this challenge's jury can declare conflicts of interest."))


def _raise_if(reason: str | None) -> None:
    if reason is not None:
        raise Conflict(reason)


# --- invitations ---------------------------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Invited:
    email: str
    token: str
    locale: str | None
    """The invitee's language when they already have an account."""


async def invite_juror(session: AsyncSession, challenge: Challenge, actor: User, email: str,
                       now: datetime) -> Invited:  # fmt: skip
    """Invite someone to the jury by email; returns the one-time token (only its hash is stored) for the
    caller to mail after this commit. ``ValidationFailed`` on "email": invalid, already a juror, already
    invited and pending."""
    challenge_id, organisation_id, actor_id = challenge.id, challenge.organisation_id, actor.id
    await _require_admin(session, challenge, actor, now)
    _raise_if(invitations_closed_reason(challenge, now))
    email = normalise_email(email)
    problem = _("Enter the email address of the person to invite.") if not email else email_problem(email)
    if problem:
        raise ValidationFailed({"email": problem})
    account = await session.scalar(select(User).where(User.email == email))
    if account is not None and await is_juror(session, challenge_id, account.id):
        raise ValidationFailed({"email": _("%(email)s is already on the jury.", email=email)})
    pending = await session.scalar(select(JuryInvitation.id).where(
        JuryInvitation.challenge_id == challenge_id, JuryInvitation.email == email,
        JuryInvitation.accepted_at.is_(None), JuryInvitation.cancelled_at.is_(None),
        JuryInvitation.expires_at > now))  # fmt: skip
    if pending is not None:
        raise ValidationFailed({"email": _("%(email)s is already invited and has not answered yet. Cancel that "
                                           "invitation to send a new one.", email=email)})  # fmt: skip
    token = secrets.token_urlsafe(32)
    invitation = JuryInvitation(challenge_id=challenge_id, email=email, token_hash=_token_hash(token),
                                invited_by_id=actor_id, created_at=now, expires_at=now + INVITATION_LIFETIME)  # fmt: skip
    session.add(invitation)
    await session.flush()
    record(session, actor_id=actor_id, organisation_id=organisation_id, subject_type="challenge",
           subject_id=challenge_id, action="jury_invite", detail={"invitation_id": invitation.id, "email": email})  # fmt: skip
    await session.commit()
    return Invited(email, token, account.locale if account is not None else None)


async def find_jury_invitation(session: AsyncSession, token: str) -> JuryInvitation | None:
    return await session.scalar(select(JuryInvitation).where(JuryInvitation.token_hash == _token_hash(token)))


def jury_invitation_problem(invitation: JuryInvitation | None, challenge: Challenge | None,
                            now: datetime) -> str | None:  # fmt: skip
    """Why the link cannot be accepted (unknown, cancelled, used, expired, review over), or None."""
    if invitation is None or challenge is None:
        return _("This invitation link is not valid. Ask for a new one.")
    if invitation.cancelled_at is not None:
        return _("This invitation was cancelled by the organisers.")
    if invitation.accepted_at is not None:
        return _("This invitation has already been used.")
    if invitation.expires_at <= now:
        return _("This invitation has expired. Ask for a new one.")
    return jury_closed_reason(challenge, now)


async def accept_jury_invitation(session: AsyncSession, token: str, user: User, now: datetime) -> int:
    """Join the jury with the signed-in account; returns the challenge's id. Accepting again with the same
    account changes nothing; ``Forbidden`` (with why) when the link cannot be used."""
    user_id = user.id
    invitation = await find_jury_invitation(session, token)
    if invitation is not None and invitation.accepted_by_id == user_id:
        return invitation.challenge_id
    challenge = await session.get(Challenge, invitation.challenge_id) if invitation is not None else None
    if problem := jury_invitation_problem(invitation, challenge, now):
        raise Forbidden(problem)
    assert invitation is not None
    assert challenge is not None
    challenge_id, organisation_id = challenge.id, challenge.organisation_id
    if not await is_juror(session, challenge_id, user_id):
        session.add(ChallengeJuror(challenge_id=challenge_id, user_id=user_id, created_at=now))
    invitation.accepted_at, invitation.accepted_by_id = now, user_id
    record(session, actor_id=user_id, organisation_id=organisation_id, subject_type="challenge",
           subject_id=challenge_id, action="jury_join", detail={"invitation_id": invitation.id})  # fmt: skip
    try:
        await session.commit()
    except IntegrityError:  # the same account joined in another window at this very moment
        await session.rollback()
    return challenge_id


async def cancel_invitation(session: AsyncSession, challenge: Challenge, invitation_id: int, actor: User,
                            now: datetime) -> str:  # fmt: skip
    """Cancel a pending invitation (its link stops working); returns its email. ``LookupError`` when it is
    not one of this challenge's."""
    challenge_id, organisation_id, actor_id = challenge.id, challenge.organisation_id, actor.id
    await _require_admin(session, challenge, actor, now)
    invitation = await session.scalar(select(JuryInvitation).where(
        JuryInvitation.id == invitation_id, JuryInvitation.challenge_id == challenge_id))  # fmt: skip
    if invitation is None:
        raise LookupError(invitation_id)
    email = invitation.email
    if invitation.accepted_at is not None:
        raise Conflict(_("%(email)s already accepted this invitation: remove them from the jury instead.",
                         email=email))  # fmt: skip
    if invitation.cancelled_at is not None:
        raise Conflict(_("This invitation was already cancelled."))
    invitation.cancelled_at = now
    record(session, actor_id=actor_id, organisation_id=organisation_id, subject_type="challenge",
           subject_id=challenge_id, action="jury_invite_cancel", detail={"invitation_id": invitation_id,
                                                                          "email": email})  # fmt: skip
    await session.commit()
    return email


async def remove_juror(session: AsyncSession, challenge: Challenge, juror_user_id: int, actor: User,
                       now: datetime) -> str:  # fmt: skip
    """Take someone off the jury with their assignments and declared conflicts in this challenge; refused
    once they scored (their scores would be lost). Returns their name; ``LookupError`` if not a juror."""
    challenge_id, organisation_id, actor_id = challenge.id, challenge.organisation_id, actor.id
    await _require_admin(session, challenge, actor, now)
    _raise_if(jury_closed_reason(challenge, now))
    async with challenge_locked(session, challenge_id):
        found = (await session.execute(
            select(ChallengeJuror, User.display_name).join(User, User.id == ChallengeJuror.user_id)
            .where(ChallengeJuror.challenge_id == challenge_id, ChallengeJuror.user_id == juror_user_id)
        )).first()  # fmt: skip
        if found is None:
            raise LookupError(juror_user_id)
        member, name = found
        scored = await session.scalar(select(func.count()).select_from(Scorecard).where(
            Scorecard.challenge_id == challenge_id, Scorecard.juror_user_id == juror_user_id))  # fmt: skip
        if scored:
            raise Conflict(_("%(name)s has already scored ideas in this challenge: removing them from the jury "
                             "would lose their scores.", name=name))  # fmt: skip
        mine = (JuryAssignment.challenge_id == challenge_id) & (JuryAssignment.juror_user_id == juror_user_id)
        await session.execute(delete(JuryAssignment).where(mine))
        await session.execute(delete(JurorConflict).where(
            JurorConflict.challenge_id == challenge_id, JurorConflict.juror_user_id == juror_user_id))  # fmt: skip
        await session.delete(member)
        record(session, actor_id=actor_id, organisation_id=organisation_id, subject_type="challenge",
               subject_id=challenge_id, action="jury_remove", detail={"juror_id": juror_user_id})  # fmt: skip
        await session.commit()
    return str(name)


# --- conflicts -----------------------------------------------------------------------------------------------


def _folded(name: str) -> str:
    return " ".join(fold(name).split())


async def _affiliations(session: AsyncSession, people: Iterable[int]) -> dict[int, dict[str, int]]:
    """Per person: their organisations (memberships and expert-profile organisation), folded name -> id."""
    wanted = set(people)
    found: dict[int, dict[str, int]] = defaultdict(dict)
    if not wanted:
        return found
    members = select(Membership.user_id, Organisation.id, Organisation.name).join(
        Organisation, Organisation.id == Membership.organisation_id).where(Membership.user_id.in_(wanted))  # fmt: skip
    experts = select(ExpertProfile.user_id, Organisation.id, Organisation.name).join(
        Organisation, Organisation.id == ExpertProfile.organisation_id).where(ExpertProfile.user_id.in_(wanted))  # fmt: skip
    for query in (members, experts):
        for user_id, organisation_id, name in await session.execute(query):
            if key := _folded(name):
                found[user_id].setdefault(key, organisation_id)
    return found


async def detected_conflicts(session: AsyncSession, challenge_id: int, juror_ids: Iterable[int],
                             idea_ids: Iterable[int]) -> dict[tuple[int, int], str]:  # fmt: skip
    """(juror id, idea id) -> reason code of each conflict found without asking anyone: ``author``,
    ``coauthor`` (accepted), or ``organisation:<id>`` (the juror's organisation that an author belongs to as
    well, by folded name). Ideas outside the challenge are ignored."""
    jurors, wanted = sorted(set(juror_ids)), set(idea_ids)
    if not jurors or not wanted:
        return {}
    writers: dict[int, dict[int, str]] = {
        idea_id: {author_id: AUTHOR}
        for idea_id, author_id in await session.execute(
            select(Idea.id, Idea.author_id).where(Idea.id.in_(wanted), Idea.challenge_id == challenge_id))
    }  # fmt: skip
    for idea_id, user_id in await session.execute(select(CoAuthor.idea_id, CoAuthor.user_id).where(
            CoAuthor.idea_id.in_(writers), CoAuthor.status == CoAuthorStatus.ACCEPTED)):  # fmt: skip
        writers[idea_id].setdefault(user_id, COAUTHOR)
    affiliations = await _affiliations(session, set(jurors).union(*writers.values()))
    found: dict[tuple[int, int], str] = {}
    for idea_id, people in writers.items():
        theirs = {key for person in people for key in affiliations.get(person, {})}
        for juror in jurors:
            if juror in people:
                found[(juror, idea_id)] = people[juror]
            elif shared := sorted(key for key in affiliations.get(juror, {}) if key in theirs):
                found[(juror, idea_id)] = f"{ORGANISATION}{affiliations[juror][shared[0]]}"
    return found


@dataclass(frozen=True)
class ConflictNote:
    """Why a juror may not score an idea: declared (with their reason), detected (a reason code), or both."""

    declared: str | None
    detected: str | None


async def conflicts_in(session: AsyncSession, challenge_id: int, juror_ids: Iterable[int],
                       idea_ids: Iterable[int]) -> dict[tuple[int, int], ConflictNote]:  # fmt: skip
    """Every conflict, declared or detected, between these jurors and ideas."""
    jurors, ideas = set(juror_ids), set(idea_ids)
    detected = await detected_conflicts(session, challenge_id, jurors, ideas)
    declared = {
        (j, i): reason
        for j, i, reason in await session.execute(
            select(JurorConflict.juror_user_id, JurorConflict.idea_id, JurorConflict.reason).where(
                JurorConflict.challenge_id == challenge_id, JurorConflict.juror_user_id.in_(jurors),
                JurorConflict.idea_id.in_(ideas)))
    }  # fmt: skip
    return {
        pair: ConflictNote(declared.get(pair), detected.get(pair)) for pair in set(declared) | set(detected)
    }


async def organisation_names(session: AsyncSession, notes: Iterable[ConflictNote]) -> dict[int, str]:
    ids = {
        int(n.detected[len(ORGANISATION) :])
        for n in notes
        if n.detected and n.detected.startswith(ORGANISATION)
    }
    if not ids:
        return {}
    return dict((await session.execute(select(Organisation.id, Organisation.name).where(Organisation.id.in_(ids)))).all())  # fmt: skip


def describe_for_organisers(note: ConflictNote, names: dict[int, str]) -> str:
    """The conflict as the organisers read it (who wrote what, which organisation)."""
    parts = []
    if note.detected == AUTHOR:
        parts.append(_("author of the idea"))
    elif note.detected == COAUTHOR:
        parts.append(_("co-author of the idea"))
    elif note.detected:
        name = names.get(int(note.detected[len(ORGANISATION) :]), "?")
        parts.append(_("belongs to “%(organisation)s”, like an author of the idea", organisation=name))
    if note.declared is not None:
        parts.append(_("declared: %(reason)s", reason=note.declared) if note.declared else _("declared"))
    return "; ".join(parts)


def describe_for_juror(note: ConflictNote, names: dict[int, str], blind: bool) -> str:
    """A detected conflict as the juror reads it: never an author's name, no organisation in blind mode."""
    if note.detected in (AUTHOR, COAUTHOR):
        return _("Excluded automatically: you are an author of this idea.")
    if note.detected and not blind:
        name = names.get(int(note.detected[len(ORGANISATION) :]), "?")
        return _("Excluded automatically: you and an author of this idea belong to “%(organisation)s”.",
                 organisation=name)  # fmt: skip
    return _("Excluded automatically: a conflict of interest was detected.")


async def _shortlisted_idea(session: AsyncSession, challenge_id: int, idea_id: int) -> Idea:
    idea = await session.scalar(select(Idea).join(ShortlistEntry, ShortlistEntry.idea_id == Idea.id).where(
        Idea.id == idea_id, ShortlistEntry.challenge_id == challenge_id))  # fmt: skip
    if idea is None:
        raise LookupError(idea_id)
    return idea


@dataclass(frozen=True)
class Declared:
    title: str
    unassigned: bool
    """The idea was on the juror's list (not scored yet) and was taken off it."""


async def declare_conflict(session: AsyncSession, challenge: Challenge, juror: User, idea_id: int, reason: str,
                           now: datetime) -> Declared:  # fmt: skip
    """A juror declares a conflict with a shortlisted idea (again: the reason is updated). An assignment of
    that idea to them goes, unless they started scoring it (then ``Conflict``: the organisers decide).
    ``LookupError`` when the idea is not on the challenge's shortlist."""
    challenge_id, organisation_id, juror_id = challenge.id, challenge.organisation_id, juror.id
    await _require_juror(session, challenge_id, juror_id)
    _raise_if(jury_closed_reason(challenge, now))
    reason = reason.strip()
    if problem := text_problem(reason, required=False, max_length=CONFLICT_REASON_MAX):
        raise ValidationFailed({"reason": problem})
    async with challenge_locked(session, challenge_id):
        idea = await _shortlisted_idea(session, challenge_id, idea_id)
        title = idea.title
        assignment = await session.scalar(select(JuryAssignment).where(
            JuryAssignment.idea_id == idea_id, JuryAssignment.juror_user_id == juror_id))  # fmt: skip
        if assignment is not None:
            if await session.scalar(select(Scorecard.id).where(Scorecard.assignment_id == assignment.id)):
                raise Conflict(_("You have already started scoring “%(title)s”: ask the organisers to take it "
                                 "off your list, then declare your conflict.", title=title))  # fmt: skip
            await session.delete(assignment)
        existing = await session.scalar(select(JurorConflict).where(
            JurorConflict.juror_user_id == juror_id, JurorConflict.idea_id == idea_id))  # fmt: skip
        if existing is not None:
            existing.reason = reason
        else:
            session.add(JurorConflict(challenge_id=challenge_id, juror_user_id=juror_id, idea_id=idea_id,
                                      reason=reason, created_at=now))  # fmt: skip
        record(session, actor_id=juror_id, organisation_id=organisation_id, subject_type="idea",
               subject_id=idea_id, action="jury_conflict_declare", reason=reason,
               detail={"challenge_id": challenge_id, "unassigned": assignment is not None})  # fmt: skip
        await session.commit()
    return Declared(title, assignment is not None)


async def withdraw_conflict(session: AsyncSession, challenge: Challenge, juror: User, idea_id: int,
                            now: datetime) -> str:  # fmt: skip
    """Withdraw a declared conflict (detected ones stay); returns the idea's title. ``LookupError`` when
    there is no such declaration."""
    challenge_id, organisation_id, juror_id = challenge.id, challenge.organisation_id, juror.id
    await _require_juror(session, challenge_id, juror_id)
    _raise_if(jury_closed_reason(challenge, now))
    found = (await session.execute(
        select(JurorConflict, Idea.title).join(Idea, Idea.id == JurorConflict.idea_id).where(
            JurorConflict.challenge_id == challenge_id, JurorConflict.juror_user_id == juror_id,
            JurorConflict.idea_id == idea_id)
    )).first()  # fmt: skip
    if found is None:
        raise LookupError(idea_id)
    declared, title = found
    await session.delete(declared)
    record(session, actor_id=juror_id, organisation_id=organisation_id, subject_type="idea", subject_id=idea_id,
           action="jury_conflict_withdraw", detail={"challenge_id": challenge_id})  # fmt: skip
    await session.commit()
    return str(title)


# --- assignment ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Assigned:
    created: int
    """New assignments."""
    ideas: int
    """Ideas that received jurors."""
    jurors: int
    """Jurors told about their new ideas."""


def _load_news(count: int, challenge_title: str) -> Callable[[], str]:
    return lambda: ngettext("You have %(num)s idea to score in “%(challenge)s”.",
                            "You have %(num)s ideas to score in “%(challenge)s”.", count, challenge=challenge_title)  # fmt: skip


async def _jurors(session: AsyncSession, challenge_id: int) -> list[User]:
    return list(await session.scalars(select(User).join(ChallengeJuror, ChallengeJuror.user_id == User.id)
                                      .where(ChallengeJuror.challenge_id == challenge_id).order_by(ChallengeJuror.id)))  # fmt: skip


async def _languages(session: AsyncSession, jurors: Sequence[User]) -> dict[int, set[str]]:
    """The languages each juror reads: their expert profile's, else their account's language."""
    profiles = dict((await session.execute(select(ExpertProfile.user_id, ExpertProfile.languages).where(
        ExpertProfile.user_id.in_([u.id for u in jurors])))).all())  # fmt: skip
    return {u.id: set(split_list(profiles[u.id])) if u.id in profiles else {u.locale} if u.locale else set()
            for u in jurors}  # fmt: skip


def _capacity_plans(active: Sequence[int], eligible: Counter[int], outside: Counter[int], forced: Counter[int],
                    total: int, rows: int) -> list[dict[int, int]]:  # fmt: skip
    """Capacities (juror -> ideas among the rows) to try in turn: the total shared out exactly (loads differ
    by at most one), then at most ``ceil(total / jurors)`` each, then the number of ideas."""
    low, extra = divmod(total, len(active))
    ordered = sorted(active, key=lambda j: (-(outside[j] + forced[j]), -eligible[j]))
    target = {j: low + (1 if n < extra else 0) for n, j in enumerate(ordered)}
    ceiling = math.ceil(total / len(active))
    return [
        {j: max(target[j] - outside[j], forced[j]) for j in active},
        {j: max(ceiling - outside[j], forced[j]) for j in active},
        {j: max(rows, forced[j]) for j in active},
    ]


def plan_assignment(ideas: Sequence[tuple[int, str]], jurors: Sequence[int], inactive: Iterable[int], k: int,
                    existing: Iterable[tuple[int, int]], blocked: set[tuple[int, int]],
                    reads: Callable[[int, int], bool]) -> list[tuple[int, int]]:  # fmt: skip
    """The new (idea id, juror id) pairs that give every idea ``k`` distinct jurors, keeping ``existing``,
    never a ``blocked`` pair, loads as even as the conflicts allow (``reads(idea, juror)``: a small bonus).
    ``jurors``: who may receive ideas; ``inactive``: jurors who keep theirs but get no more.
    Raises ``ValidationFailed`` naming the ideas that cannot get ``k`` jurors."""
    members = set(jurors) | set(inactive)
    pairs = {(i, j) for i, j in existing if j in members}
    by_idea: defaultdict[int, set[int]] = defaultdict(set)
    for idea_id, juror_id in pairs:
        by_idea[idea_id].add(juror_id)
    rows = [(i, title) for i, title in ideas if len(by_idea[i]) < k]
    if not rows:
        return []
    row_ids = {i for i, _t in rows}
    forced = Counter(j for i, j in pairs if i in row_ids)
    outside = Counter(j for i, j in pairs if i not in row_ids)
    active = list(dict.fromkeys(jurors))
    columns = active + [j for j in sorted(members - set(active)) if forced[j]]
    matrix = np.zeros((len(rows), len(columns)))
    for r, (idea_id, _title) in enumerate(rows):
        for c, juror_id in enumerate(columns):
            if (idea_id, juror_id) in pairs:
                matrix[r, c] = FORCED
            elif juror_id not in active or (idea_id, juror_id) in blocked:
                matrix[r, c] = -np.inf
            elif reads(idea_id, juror_id):
                matrix[r, c] = LANGUAGE_BONUS
    # How many ideas each juror could newly take: who gets the extra idea when the total does not divide.
    eligible = Counter(
        {j: int((np.isfinite(matrix[:, c]) & (matrix[:, c] < FORCED)).sum()) for c, j in enumerate(columns)}
    )
    total = sum(outside[j] + forced[j] for j in active) + sum(k - len(by_idea[i]) for i, _t in rows)
    short: list[int] = list(range(len(rows)))
    for plan in _capacity_plans(active, eligible, outside, forced, total, len(rows)):
        plan |= {j: forced[j] for j in columns if j not in active}
        kept = [c for c, j in enumerate(columns) if plan[j] > 0]
        if not kept:
            continue
        try:
            result = matching.assign(matrix[:, kept], [plan[columns[c]] for c in kept], k, candidates=None)
        except matching.Infeasible as exc:
            short = exc.ideas
            continue
        chosen = [(rows[r][0], columns[kept[c]]) for r, cs in enumerate(result.experts) for c in cs]
        given = set(chosen)
        dropped = sorted({r for r, (i, _t) in enumerate(rows) for j in by_idea[i] if (i, j) not in given})
        if dropped:  # the kept pairs leave too little room: try the next, looser capacities
            short = dropped
            continue
        return [pair for pair in chosen if pair not in pairs]
    raise ValidationFailed({"assign": _(
        "No juror was assigned: these ideas lack %(k)s jurors without a conflict of interest: %(titles)s. "
        "Invite more jurors, or remove assignments by hand to make room.", k=k,
        titles=quoted_list([rows[r][1] for r in short]),
    )})  # fmt: skip


async def _published_shortlist(session: AsyncSession, challenge_id: int) -> list[tuple[int, str, str]]:
    """(id, title, language) of the published shortlisted ideas, most voted first."""
    rows = await session.execute(
        select(Idea.id, Idea.title, Idea.language).join(ShortlistEntry, ShortlistEntry.idea_id == Idea.id)
        .where(ShortlistEntry.challenge_id == challenge_id, Idea.status == IdeaStatus.PUBLISHED)
        .order_by(Idea.vote_count.desc(), Idea.created_at, Idea.id)
    )  # fmt: skip
    return [(i, t, lang) for i, t, lang in rows]


async def assign_jurors(session: AsyncSession, challenge: Challenge, actor: User, now: datetime,
                        notifier: Notifier | None = None) -> Assigned:  # fmt: skip
    """Give each published shortlisted idea ``jurors_per_idea`` jurors (see the module); existing
    assignments stay. Nothing is saved on ``ValidationFailed`` (too few jurors, ideas without enough jurors
    free of conflicts). The jurors with new ideas are told how many they have, after the commit."""
    challenge_id, actor_id = challenge.id, actor.id
    await _require_admin(session, challenge, actor, now)
    _raise_if(assignment_closed_reason(challenge, now))
    mails: list[Mail] = []
    async with challenge_locked(session, challenge_id) as locked:
        _raise_if(assignment_closed_reason(locked, now))
        k, title, organisation_id = locked.jurors_per_idea, locked.title, locked.organisation_id
        ideas = await _published_shortlist(session, challenge_id)
        if not ideas:
            raise ValidationFailed({"assign": _("The shortlist has no published idea to assign.")})
        members = await _jurors(session, challenge_id)
        active = [u for u in members if u.is_active]
        if len(active) < k:
            raise ValidationFailed({"assign": ngettext(
                "Each idea needs %(k)s jurors, but only %(num)s jury member is active: invite more jurors first.",
                "Each idea needs %(k)s jurors, but only %(num)s jury members are active: invite more jurors first.",
                len(active), k=k)})  # fmt: skip
        existing = [(i, j) for i, j in await session.execute(
            select(JuryAssignment.idea_id, JuryAssignment.juror_user_id).where(JuryAssignment.challenge_id == challenge_id))]  # fmt: skip
        notes = await conflicts_in(session, challenge_id, [u.id for u in members], [i for i, _t, _l in ideas])
        languages, idea_language = await _languages(session, active), {i: lang for i, _t, lang in ideas}
        new = plan_assignment([(i, t) for i, t, _l in ideas], [u.id for u in active],
                              [u.id for u in members if not u.is_active], k, existing, {(i, j) for j, i in notes},
                              lambda i, j: idea_language[i] in languages.get(j, set()))  # fmt: skip
        if not new:
            return Assigned(0, 0, 0)
        session.add_all(JuryAssignment(challenge_id=challenge_id, idea_id=i, juror_user_id=j, created_by_id=actor_id,
                                       created_at=now) for i, j in new)  # fmt: skip
        record(session, actor_id=actor_id, organisation_id=organisation_id, subject_type="challenge",
               subject_id=challenge_id, action="jury_assign", detail={"added": [list(p) for p in new]})  # fmt: skip
        load = Counter(j for _i, j in existing) + Counter(j for _i, j in new)
        told = {j for _i, j in new}
        if notifier is not None:
            for user in active:
                if user.id in told:
                    mails += notifier.notify(session, [user], "jury_assigned", _load_news(load[user.id], title),
                                             scoring_link(challenge_id))  # fmt: skip
        try:
            await session.commit()
        except IntegrityError:
            await session.rollback()
            raise Conflict(_("Jurors were just assigned in another window. Please try again.")) from None
    if notifier is not None:
        notifier.send(mails)
    return Assigned(len(new), len({i for i, _j in new}), len(told))


async def add_assignment(session: AsyncSession, challenge: Challenge, idea_id: int, juror_user_id: int,
                         actor: User, now: datetime, notifier: Notifier | None = None) -> str:  # fmt: skip
    """The organisers give one more idea to a juror (refused on a conflict of interest, with why); the juror
    is told. Returns the juror's name. ``LookupError`` when the idea is not shortlisted here."""
    challenge_id, actor_id = challenge.id, actor.id
    await _require_admin(session, challenge, actor, now)
    _raise_if(assignment_closed_reason(challenge, now))
    mails: list[Mail] = []
    async with challenge_locked(session, challenge_id) as locked:
        _raise_if(assignment_closed_reason(locked, now))
        challenge_title, organisation_id = locked.title, locked.organisation_id
        idea = await _shortlisted_idea(session, challenge_id, idea_id)
        title = idea.title
        if idea.status is not IdeaStatus.PUBLISHED:
            raise Conflict(_("“%(title)s” is no longer published: it gets no juror.", title=title))
        juror = await session.scalar(select(User).join(ChallengeJuror, ChallengeJuror.user_id == User.id).where(
            ChallengeJuror.challenge_id == challenge_id, User.id == juror_user_id, User.is_active.is_(True)))  # fmt: skip
        if juror is None:
            raise ValidationFailed({"juror": _("Choose a member of the jury.")})
        name = juror.display_name
        if await session.scalar(select(JuryAssignment.id).where(
                JuryAssignment.idea_id == idea_id, JuryAssignment.juror_user_id == juror_user_id)):  # fmt: skip
            raise Conflict(_("%(name)s already scores “%(title)s”.", name=name, title=title))
        notes = await conflicts_in(session, challenge_id, [juror_user_id], [idea_id])
        if note := notes.get((juror_user_id, idea_id)):
            why = describe_for_organisers(note, await organisation_names(session, [note]))
            raise Conflict(_("%(name)s has a conflict of interest with “%(title)s” (%(reason)s) and cannot score "
                             "it.", name=name, title=title, reason=why))  # fmt: skip
        session.add(JuryAssignment(challenge_id=challenge_id, idea_id=idea_id, juror_user_id=juror_user_id,
                                   created_by_id=actor_id, created_at=now))  # fmt: skip
        record(session, actor_id=actor_id, organisation_id=organisation_id, subject_type="idea",
               subject_id=idea_id, action="jury_assignment_add",
               detail={"challenge_id": challenge_id, "juror_id": juror_user_id})  # fmt: skip
        load = await session.scalar(select(func.count()).select_from(JuryAssignment).where(
            JuryAssignment.challenge_id == challenge_id, JuryAssignment.juror_user_id == juror_user_id)) or 0  # fmt: skip
        if notifier is not None:
            mails = notifier.notify(session, [juror], "jury_assigned", _load_news(load + 1, challenge_title),
                                    scoring_link(challenge_id))  # fmt: skip
        try:
            await session.commit()
        except IntegrityError:
            await session.rollback()
            raise Conflict(_("%(name)s already scores “%(title)s”.", name=name, title=title)) from None
    if notifier is not None:
        notifier.send(mails)
    return name


async def remove_assignment(session: AsyncSession, challenge: Challenge, assignment_id: int, actor: User,
                            now: datetime) -> tuple[str, str]:  # fmt: skip
    """Take an idea off a juror's list, unless they started scoring it. Returns (juror's name, idea's
    title); ``LookupError`` when the assignment is not of this challenge."""
    challenge_id, actor_id = challenge.id, actor.id
    await _require_admin(session, challenge, actor, now)
    _raise_if(assignment_closed_reason(challenge, now))
    async with challenge_locked(session, challenge_id) as locked:
        _raise_if(assignment_closed_reason(locked, now))
        organisation_id = locked.organisation_id
        found = (await session.execute(
            select(JuryAssignment, User.display_name, Idea.title)
            .join(User, User.id == JuryAssignment.juror_user_id).join(Idea, Idea.id == JuryAssignment.idea_id)
            .where(JuryAssignment.id == assignment_id, JuryAssignment.challenge_id == challenge_id)
        )).first()  # fmt: skip
        if found is None:
            raise LookupError(assignment_id)
        assignment, name, title = found
        if await session.scalar(select(Scorecard.id).where(Scorecard.assignment_id == assignment_id)):
            raise Conflict(_("%(name)s has already started scoring “%(title)s”: removing the assignment would "
                             "lose their scores.", name=name, title=title))  # fmt: skip
        idea_id, juror_id = assignment.idea_id, assignment.juror_user_id
        await session.delete(assignment)
        record(session, actor_id=actor_id, organisation_id=organisation_id, subject_type="idea",
               subject_id=idea_id, action="jury_assignment_remove",
               detail={"challenge_id": challenge_id, "juror_id": juror_id})  # fmt: skip
        await session.commit()
    return str(name), str(title)


# --- reading -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JurorRow:
    user_id: int
    name: str
    email: str
    active: bool
    organisations: tuple[str, ...]
    declared: int
    detected: int
    load: int
    scored: int


@dataclass(frozen=True)
class Pending:
    id: int
    email: str
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class Seat:
    """A juror on an idea, on the organisers' table."""

    assignment_id: int
    name: str
    scored: bool
    conflict: str
    """Set when a conflict appeared after the assignment (kept: the organisers decide)."""


@dataclass
class IdeaJury:
    idea_id: int
    title: str
    status: IdeaStatus
    seats: list[Seat] = field(default_factory=list)
    conflicts: list[tuple[str, str]] = field(default_factory=list)
    """(juror's name, why) of the jurors in conflict with the idea."""
    options: list[tuple[int, str, int]] = field(default_factory=list)
    """(user id, name, load) of the jurors who may be added."""


@dataclass
class JuryOverview:
    jurors: list[JurorRow]
    invitations: list[Pending]
    ideas: list[IdeaJury]
    """One page of the shortlist."""
    total_ideas: int
    unassigned: int
    """Published shortlisted ideas with fewer jurors than the challenge asks."""


async def jury_overview(session: AsyncSession, challenge: Challenge, now: datetime, page: int = 1,
                        page_size: int = PAGE_SIZE) -> JuryOverview:  # fmt: skip
    """The organisers' view: members (organisations, conflicts, loads), pending invitations, and one page of
    the shortlist with each idea's jurors, conflicts and the jurors who may be added."""
    challenge_id, k = challenge.id, challenge.jurors_per_idea
    members = await _jurors(session, challenge_id)
    shortlist = (await session.execute(
        select(Idea.id, Idea.title, Idea.status).join(ShortlistEntry, ShortlistEntry.idea_id == Idea.id)
        .where(ShortlistEntry.challenge_id == challenge_id).order_by(Idea.vote_count.desc(), Idea.created_at, Idea.id)
    )).all()  # fmt: skip
    ids = [u.id for u in members]
    notes = await conflicts_in(session, challenge_id, ids, [r.id for r in shortlist])
    names = await organisation_names(session, notes.values())
    assignments = (await session.execute(
        select(JuryAssignment.id, JuryAssignment.idea_id, JuryAssignment.juror_user_id, Scorecard.id)
        .outerjoin(Scorecard, Scorecard.assignment_id == JuryAssignment.id)
        .where(JuryAssignment.challenge_id == challenge_id).order_by(JuryAssignment.id)
    )).all()  # fmt: skip
    load = Counter(j for _a, _i, j, _s in assignments)
    scored = Counter(j for _a, _i, j, s in assignments if s is not None)
    affiliations = await _affiliations(session, ids)
    organisation_ids = {o for person in affiliations.values() for o in person.values()}
    org_names = dict((await session.execute(select(Organisation.id, Organisation.name).where(
        Organisation.id.in_(organisation_ids)))).all()) if organisation_ids else {}  # fmt: skip
    jurors = [
        JurorRow(u.id, u.display_name, u.email, u.is_active,
                 tuple(sorted({org_names[o] for o in affiliations.get(u.id, {}).values()})),
                 sum(1 for (j, _i), n in notes.items() if j == u.id and n.declared is not None),
                 sum(1 for (j, _i), n in notes.items() if j == u.id and n.detected is not None),
                 load[u.id], scored[u.id])
        for u in members
    ]  # fmt: skip
    invitations = [Pending(i.id, i.email, i.created_at, i.expires_at) for i in await session.scalars(
        select(JuryInvitation).where(JuryInvitation.challenge_id == challenge_id, JuryInvitation.accepted_at.is_(None),
                                     JuryInvitation.cancelled_at.is_(None), JuryInvitation.expires_at > now)
        .order_by(JuryInvitation.created_at, JuryInvitation.id))]  # fmt: skip
    by_id = {u.id: u for u in members}
    seats: defaultdict[int, list[tuple[int, int, bool]]] = defaultdict(list)
    for assignment_id, idea_id, juror_id, scorecard in assignments:
        seats[idea_id].append((assignment_id, juror_id, scorecard is not None))
    ideas: list[IdeaJury] = []
    for row in shortlist[(page - 1) * page_size : page * page_size]:
        item = IdeaJury(row.id, row.title, row.status)
        taken = {j for _a, j, _s in seats[row.id]}
        for assignment_id, juror_id, has_card in seats[row.id]:
            note = notes.get((juror_id, row.id))
            item.seats.append(Seat(assignment_id, by_id[juror_id].display_name if juror_id in by_id else "?",
                                   has_card, describe_for_organisers(note, names) if note else ""))  # fmt: skip
        for juror in members:
            if note := notes.get((juror.id, row.id)):
                item.conflicts.append((juror.display_name, describe_for_organisers(note, names)))
            elif juror.id not in taken and juror.is_active:
                item.options.append((juror.id, juror.display_name, load[juror.id]))
        ideas.append(item)
    unassigned = sum(1 for r in shortlist if r.status is IdeaStatus.PUBLISHED and len(seats[r.id]) < k)
    return JuryOverview(jurors, invitations, ideas, len(shortlist), unassigned)


@dataclass(frozen=True)
class JurorIdea:
    """A shortlisted idea as a juror sees it on their conflicts page."""

    idea_id: int
    title: str
    authors: tuple[str, ...]
    """Empty in blind mode."""
    declared: str | None
    detected: str
    """How the juror reads a detected conflict ("" when none)."""
    assigned: bool
    scored: bool


async def juror_conflicts(session: AsyncSession, challenge: Challenge, juror_id: int, page: int = 1,
                          page_size: int = PAGE_SIZE) -> tuple[list[JurorIdea], int]:  # fmt: skip
    """One page of the shortlist (published ideas) for a juror: their declared and detected conflicts, and
    the authors unless the review is blind. Also the count."""
    challenge_id, blind = challenge.id, challenge.blind_review
    where = (ShortlistEntry.challenge_id == challenge_id) & (Idea.status == IdeaStatus.PUBLISHED)
    total = await session.scalar(select(func.count()).select_from(Idea).join(
        ShortlistEntry, ShortlistEntry.idea_id == Idea.id).where(where)) or 0  # fmt: skip
    rows = (await session.execute(
        select(Idea.id, Idea.title, Idea.author_id).join(ShortlistEntry, ShortlistEntry.idea_id == Idea.id)
        .where(where).order_by(Idea.title, Idea.id).offset((page - 1) * page_size).limit(page_size)
    )).all()  # fmt: skip
    ids = [r.id for r in rows]
    notes = await conflicts_in(session, challenge_id, [juror_id], ids)
    names = await organisation_names(session, notes.values())
    mine = {i: s is not None for i, s in await session.execute(
        select(JuryAssignment.idea_id, Scorecard.id).outerjoin(Scorecard, Scorecard.assignment_id == JuryAssignment.id)
        .where(JuryAssignment.juror_user_id == juror_id, JuryAssignment.idea_id.in_(ids)))}  # fmt: skip
    authors: defaultdict[int, list[str]] = defaultdict(list)
    if not blind and ids:
        writers = select(Idea.id.label("idea_id"), Idea.author_id.label("user_id")).where(Idea.id.in_(ids)).union_all(
            select(CoAuthor.idea_id, CoAuthor.user_id).where(CoAuthor.idea_id.in_(ids),
                                                            CoAuthor.status == CoAuthorStatus.ACCEPTED)).subquery()  # fmt: skip
        for idea_id, name in await session.execute(
                select(writers.c.idea_id, User.display_name).join(User, User.id == writers.c.user_id)
                .order_by(writers.c.idea_id, User.display_name)):  # fmt: skip
            authors[idea_id].append(name)
    items = []
    for r in rows:
        note = notes.get((juror_id, r.id))
        items.append(JurorIdea(
            r.id, r.title, tuple(authors[r.id]), note.declared if note else None,
            describe_for_juror(note, names, blind) if note and note.detected else "",
            r.id in mine, mine.get(r.id, False),
        ))  # fmt: skip
    return items, total

"""Experts for a challenge's ideas: suggestions (``ml.matching``'s affinity and assignment), swaps,
confirmation (which notifies the expert), removal, and the ideas an expert advises on.

An expert is **in conflict** with an idea when they wrote it (author or accepted co-author), when their
profile's organisation is one of the authors' organisations (their memberships) or the organisation
running the challenge (the expertise page promises it), or when they declared a conflict with one of
those organisations or one of the authors. Every write checks it again here, not only the pages.

Vectors come from ``stored_vectors`` (the database is the source of truth; the index is a cache of it):
ideas' "title\\nbody" and experts' whole profiles. What is missing or stale (a profile sentence, an idea
not embedded yet) is embedded through the app's micro-batcher, never on the event loop, and not stored
(the after-commit jobs store vectors).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from challenges.models import Challenge
from challenges.permissions import Access
from challenges.services import access_for, is_admin
from ideaforge.accounts.models import User
from ideaforge.errors import Conflict, Forbidden, ValidationFailed
from ideaforge.i18n import _, quoted_list
from ideaforge.notifications.services import Notifier
from ideaforge.organisations.models import Membership
from ideaforge.profiles.models import AssignmentStatus, ExpertAssignment, ExpertConflict, ExpertProfile
from ideas.models import CoAuthor, CoAuthorStatus, Idea, IdeaStatus, ShortlistEntry
from ideas.similarity import Similarity, idea_text
from ml import matching
from ml.embedding import Vectors

ADVISING = "/account/advising"
PAGE_SIZE = 25
REASON_SENTENCES = 2
FORCED = 1000.0
"""Affinity given to already confirmed pairs so that the assignment keeps them (and counts their load)."""


def can_assign_experts(access: Access) -> bool:
    """Suggesting, swapping, confirming and removing experts: the organisation's owners and admins."""
    return is_admin(access)


async def _require_organiser(session: AsyncSession, challenge: Challenge, actor: User, now: datetime) -> None:
    if not can_assign_experts(await access_for(session, challenge, actor, now)):
        raise Forbidden(_("Only the organisation's owners and admins can assign experts to ideas."))


# --- who is in conflict -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parties:
    """The people behind an idea and their organisations (plus the challenge's organisation)."""

    authors: frozenset[int]
    organisations: frozenset[int]


@dataclass(frozen=True)
class Expert:
    profile_id: int
    user_id: int
    name: str
    expertise: str
    keywords: tuple[str, ...]
    languages: frozenset[str]
    country: str
    organisation_id: int | None
    capacity: int
    available: bool
    stored_text: str
    """What the embedding job stored for this profile (``ExpertProfile.embedding_text``)."""


@dataclass(frozen=True)
class Declared:
    organisations: frozenset[int]
    users: frozenset[int]


async def _parties(session: AsyncSession, organisation_id: int,
                   ideas: Sequence[tuple[int, int]]) -> dict[int, Parties]:  # fmt: skip
    """(idea id, author id) -> the idea's authors (author and accepted co-authors) and their organisations."""
    authors: dict[int, set[int]] = {idea_id: {author_id} for idea_id, author_id in ideas}
    if not authors:
        return {}
    rows = await session.execute(
        select(CoAuthor.idea_id, CoAuthor.user_id).where(
            CoAuthor.idea_id.in_(authors), CoAuthor.status == CoAuthorStatus.ACCEPTED
        )
    )
    for idea_id, user_id in rows:
        authors[idea_id].add(user_id)
    people = set().union(*authors.values())
    memberships: dict[int, set[int]] = defaultdict(set)
    for user_id, member_of in await session.execute(
        select(Membership.user_id, Membership.organisation_id).where(Membership.user_id.in_(people))
    ):
        memberships[user_id].add(member_of)
    return {
        idea_id: Parties(
            frozenset(users),
            frozenset({organisation_id, *(o for u in users for o in memberships[u])}),
        )
        for idea_id, users in authors.items()
    }


async def _declared(session: AsyncSession, expert_user_ids: Iterable[int]) -> dict[int, Declared]:
    organisations: dict[int, set[int]] = defaultdict(set)
    users: dict[int, set[int]] = defaultdict(set)
    wanted = set(expert_user_ids)
    if wanted:
        rows = await session.execute(
            select(
                ExpertConflict.expert_user_id, ExpertConflict.organisation_id, ExpertConflict.user_id
            ).where(ExpertConflict.expert_user_id.in_(wanted))
        )
        for expert_id, organisation_id, user_id in rows:
            if organisation_id is not None:
                organisations[expert_id].add(organisation_id)
            if user_id is not None:
                users[expert_id].add(user_id)
    return {e: Declared(frozenset(organisations[e]), frozenset(users[e])) for e in wanted}


def in_conflict(expert: Expert, parties: Parties, declared: Declared | None) -> bool:
    if expert.user_id in parties.authors:
        return True
    if expert.organisation_id is not None and expert.organisation_id in parties.organisations:
        return True
    return declared is not None and bool(
        declared.organisations & parties.organisations or declared.users & parties.authors
    )


# --- the matching inputs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IdeaRow:
    id: int
    title: str
    text: str
    language: str
    parties: Parties


class _Known:
    """An ``Embedder`` over vectors already computed (for ``matching.explain``): no model call."""

    def __init__(self, vectors: dict[str, np.ndarray], model_name: str, dimension: int) -> None:
        self._vectors = vectors
        self._model = model_name
        self._dimension = dimension

    @property
    def model_name(self) -> str:
        return self._model

    @property
    def dimension(self) -> int:
        return self._dimension

    def encode(self, texts: Sequence[str]) -> Vectors:
        return np.vstack([self._vectors[t] for t in texts]).astype(np.float32)


@dataclass
class Matching:
    """A challenge's published ideas against expert profiles: the affinity (``-inf`` = not allowed)."""

    ideas: list[IdeaRow]
    experts: list[Expert]
    scores: matching.Matrix
    known: _Known

    def reason(self, row: int, column: int) -> str:
        """The profile sentences that match the idea best, one per line (``matching.explain``)."""
        expert = self.experts[column]
        sentences = matching.explain(self.ideas[row].text, expert.expertise, self.known,
                                     limit=REASON_SENTENCES, keywords=expert.keywords)  # fmt: skip
        return "\n".join(sentences)

    def column_of(self, user_id: int) -> int | None:
        return next((j for j, e in enumerate(self.experts) if e.user_id == user_id), None)

    def row_of(self, idea_id: int) -> int | None:
        return next((i for i, idea in enumerate(self.ideas) if idea.id == idea_id), None)


async def _experts(session: AsyncSession, *, also_users: Iterable[int] = ()) -> list[Expert]:
    """Available profiles of active users, plus the profiles of ``also_users`` (whatever their state)."""
    extra = set(also_users)
    wanted: ColumnElement[bool] = ExpertProfile.available.is_(True)
    if extra:
        wanted = wanted | ExpertProfile.user_id.in_(extra)
    rows = await session.execute(
        select(ExpertProfile, User.display_name, User.is_active)
        .join(User, User.id == ExpertProfile.user_id)
        .where(wanted)
        .order_by(ExpertProfile.id)
    )
    return [
        Expert(p.id, p.user_id, name, p.expertise, tuple(p.keyword_list), frozenset(p.language_list), p.country,
               p.organisation_id, p.capacity, p.available and active, p.embedding_text())
        for p, name, active in rows
    ]  # fmt: skip


async def _encode(similarity: Similarity, texts: Iterable[str], known: dict[str, np.ndarray]) -> None:
    missing = list(dict.fromkeys(t for t in texts if t not in known))
    if missing:
        for text, vector in zip(missing, await similarity.batcher.encode(missing), strict=True):
            known[text] = np.asarray(vector, dtype=np.float32)


async def build_matching(session: AsyncSession, challenge: Challenge, similarity: Similarity, *,
                         also_users: Iterable[int] = ()) -> Matching:  # fmt: skip
    """The challenge's published ideas (all of them: affinity centres on them) against the available
    experts (and the profiles of ``also_users``, unavailable ones scoring ``-inf``)."""
    challenge_id, organisation_id = challenge.id, challenge.organisation_id
    rows = (await session.execute(
        select(Idea.id, Idea.author_id, Idea.title, Idea.body, Idea.language)
        .where(Idea.challenge_id == challenge_id, Idea.status == IdeaStatus.PUBLISHED).order_by(Idea.id)
    )).all()  # fmt: skip
    parties = await _parties(session, organisation_id, [(r.id, r.author_id) for r in rows])
    ideas = [IdeaRow(r.id, r.title, idea_text(r.title, r.body), r.language, parties[r.id]) for r in rows]
    experts = await _experts(session, also_users=also_users)
    declared = await _declared(session, [e.user_id for e in experts])
    known: dict[str, np.ndarray] = {}
    idea_vectors = await similarity.stored_vectors(session, "idea", {i.id: i.text for i in ideas})
    known |= {idea.text: idea_vectors[idea.id] for idea in ideas if idea.id in idea_vectors}
    sentences = [matching.profile_sentences(e.expertise, e.keywords) for e in experts]
    wholes = [" ".join(s) for s in sentences]
    stored = await similarity.stored_vectors(
        session, "expert", {e.profile_id: e.stored_text for e in experts}
    )
    for expert, kept, whole in zip(experts, sentences, wholes, strict=True):
        dropped = len(kept) != len(matching.split_sentences(expert.expertise)) + len(expert.keywords)
        if expert.profile_id in stored and not dropped:  # the stored vector is of the same (kept) text
            known.setdefault(whole, stored[expert.profile_id])
    await _encode(
        similarity, [i.text for i in ideas] + wholes + [s for group in sentences for s in group], known
    )
    dimension = similarity.embedder.dimension
    ml_experts = [
        matching.ExpertProfile(str(e.profile_id), e.expertise, e.languages,
                               str(e.organisation_id) if e.organisation_id is not None else None, e.country,
                               max(e.capacity, 1), e.keywords, e.available)
        for e in experts
    ]  # fmt: skip
    ml_ideas = [
        matching.Idea(str(i.id), i.text, i.language or None, frozenset(str(o) for o in i.parties.organisations),
                      frozenset(str(e.profile_id) for e in experts
                                if in_conflict(e, i.parties, declared.get(e.user_id))))
        for i in ideas
    ]  # fmt: skip
    lengths = [len(s) for s in sentences]
    encoded = matching.EncodedProfiles(
        np.vstack([known[w] for w in wholes]) if wholes else np.zeros((0, dimension), np.float32),
        tuple(sentences),
        np.vstack([known[s] for group in sentences for s in group])
        if lengths
        else np.zeros((0, dimension), np.float32),
        np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64) if lengths else np.zeros(0, np.int64),
    )
    vectors = np.vstack([known[i.text] for i in ideas]) if ideas else np.zeros((0, dimension), np.float32)
    scores = (
        matching.affinity(ml_ideas, ml_experts, vectors, encoded)
        if ideas and experts
        else np.zeros((len(ideas), len(experts)))
    )
    return Matching(ideas, experts, scores, _Known(known, similarity.model, dimension))


# --- suggesting ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Suggested:
    ideas: int
    """Ideas that received new suggestions."""
    suggestions: int


async def _confirmed(session: AsyncSession, challenge_id: int) -> list[tuple[int, int]]:
    """(idea id, expert user id) of the challenge's confirmed assignments."""
    rows = await session.execute(
        select(ExpertAssignment.idea_id, ExpertAssignment.expert_user_id).where(
            ExpertAssignment.challenge_id == challenge_id,
            ExpertAssignment.status == AssignmentStatus.CONFIRMED,
        )
    )
    return [(i, u) for i, u in rows]


async def suggest_experts(
    session: AsyncSession,
    challenge: Challenge,
    similarity: Similarity,
    *,
    k: int = 1,
    shortlisted_only: bool = False,
) -> Suggested:
    """Suggest ``k`` experts for each published idea of the challenge (the caller checked that the user is
    an admin of it: ``can_assign_experts``). Confirmed assignments stay and count against each expert's
    capacity; every earlier *suggestion* is replaced. Nothing is written when it cannot be done: bad ``k``,
    no available expert, or ideas that lack eligible experts (``ValidationFailed`` on "k", naming them).
    ``shortlisted_only``: only the ideas on the challenge's shortlist get experts (``Conflict`` when it is
    empty); the affinity still centres on all the published ideas."""
    challenge_id = challenge.id
    wanted: set[int] | None = None
    if shortlisted_only:
        wanted = set(await session.scalars(
            select(ShortlistEntry.idea_id).where(ShortlistEntry.challenge_id == challenge_id)
        ))  # fmt: skip
        if not wanted:
            raise Conflict(_("This challenge has no shortlist yet: suggest experts for all its ideas."))
    if k < 1:
        raise ValidationFailed({"k": _("Ask for at least one expert per idea.")})
    confirmed = await _confirmed(session, challenge_id)
    found = await build_matching(session, challenge, similarity, also_users={u for _i, u in confirmed})
    ideas, experts = found.ideas, found.experts
    if not any(e.available for e in experts):
        raise ValidationFailed({"k": _("No expert is available: experts describe what they know on their "
                                       "expertise page, and must be available to advise.")})  # fmt: skip
    if not ideas:
        raise ValidationFailed({"k": _("This challenge has no published idea to suggest experts for.")})
    by_idea: dict[int, set[int]] = defaultdict(set)
    for idea_id, user_id in confirmed:
        by_idea[idea_id].add(user_id)
    load = Counter(user_id for _i, user_id in confirmed)
    with_room = [e for e in experts if e.available and load[e.user_id] < e.capacity]
    if k > len(with_room):
        raise ValidationFailed({"k": _(
            "You asked for %(k)s experts per idea, but only %(count)s available experts have room for more "
            "ideas in this challenge. Ask for fewer.", k=k, count=len(with_room),
        )})  # fmt: skip
    rows = [i for i, idea in enumerate(ideas)
            if len(by_idea[idea.id]) < k and (wanted is None or idea.id in wanted)]  # fmt: skip
    outside = Counter(u for idea_id, u in confirmed if not any(ideas[i].id == idea_id for i in rows))
    forced: list[tuple[int, int]] = []  # (row, column) kept from the confirmed assignments
    columns: list[int] = []
    capacities: list[int] = []
    for j, expert in enumerate(experts):
        kept = [r for r, i in enumerate(rows) if expert.user_id in by_idea[ideas[i].id]]
        room = expert.capacity - outside[expert.user_id] if expert.available else 0
        capacity = max(room, len(kept))
        if capacity > 0:
            forced += [(r, len(columns)) for r in kept]
            columns.append(j)
            capacities.append(capacity)
    matrix = found.scores[np.ix_(rows, columns)].copy() if rows and columns else np.zeros((len(rows), 0))
    for r, c in forced:
        matrix[r, c] = FORCED
    chosen: list[tuple[int, int]] = []  # (idea row, expert column) in ``found``
    if rows:
        try:
            result = matching.assign(matrix, capacities, k) if columns else None
            if result is None:
                raise matching.Infeasible("no expert has room", list(range(len(rows))))
        except matching.Infeasible as exc:
            titles = [ideas[rows[r]].title for r in exc.ideas]
            raise ValidationFailed({"k": _(
                "No suggestion was made: these ideas lack %(k)s eligible experts with room for them (experts "
                "in conflict of interest are never suggested): %(titles)s. Ask for fewer experts per idea, or "
                "ask more experts to fill in their expertise.", k=k, titles=quoted_list(titles),
            )}) from None  # fmt: skip
        dropped = [rows[r] for r, c in forced if c not in result.experts[r]]
        if dropped:  # only when the confirmed experts leave too little room for the rest
            raise ValidationFailed({"k": _(
                "No suggestion was made: these ideas lack %(k)s eligible experts with room for them (experts "
                "in conflict of interest are never suggested): %(titles)s. Ask for fewer experts per idea, or "
                "ask more experts to fill in their expertise.", k=k, titles=quoted_list([ideas[i].title for i in dropped]),
            )})  # fmt: skip
        forced_set = set(forced)
        chosen = [(rows[r], columns[c]) for r, cs in enumerate(result.experts) for c in cs
                  if (r, c) not in forced_set]  # fmt: skip
    new = [
        ExpertAssignment(challenge_id=challenge_id, idea_id=ideas[i].id, expert_user_id=experts[j].user_id,
                         status=AssignmentStatus.SUGGESTED, affinity=float(found.scores[i, j]),
                         reason=found.reason(i, j))
        for i, j in chosen
    ]  # fmt: skip
    await session.execute(
        delete(ExpertAssignment).where(
            ExpertAssignment.challenge_id == challenge_id,
            ExpertAssignment.status == AssignmentStatus.SUGGESTED,
        )
    )
    session.add_all(new)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise Conflict(_("Experts were just assigned in another window. Please try again.")) from None
    return Suggested(len({i for i, _j in chosen}), len(chosen))


# --- swapping, confirming, removing -------------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """An expert who may advise on an idea, with their affinity (for the swap form)."""

    profile_id: int
    user_id: int
    name: str
    affinity: float
    reason: str


async def swap_options(session: AsyncSession, challenge: Challenge, similarity: Similarity,
                       assignment: ExpertAssignment) -> list[Option]:  # fmt: skip
    """Experts who may replace the assignment's expert on its idea, best affinity first: available, not in
    conflict, not already assigned to the idea, with room in their capacity for this challenge."""
    idea_id, assignment_id, challenge_id = assignment.idea_id, assignment.id, assignment.challenge_id
    found = await build_matching(session, challenge, similarity)
    row = found.row_of(idea_id)
    if row is None:
        return []
    taken = set(await session.scalars(
        select(ExpertAssignment.expert_user_id).where(ExpertAssignment.idea_id == idea_id)
    ))  # fmt: skip
    load = Counter(await session.scalars(
        select(ExpertAssignment.expert_user_id).where(
            ExpertAssignment.challenge_id == challenge_id, ExpertAssignment.id != assignment_id)
    ))  # fmt: skip
    scores = found.scores[row]
    options: list[Option] = []
    for j in np.argsort(-scores, kind="stable"):
        expert = found.experts[int(j)]
        if (
            not math.isfinite(float(scores[j]))
            or expert.user_id in taken
            or load[expert.user_id] >= expert.capacity
        ):
            continue
        options.append(Option(expert.profile_id, expert.user_id, expert.name, float(scores[j]),
                              found.reason(row, int(j))))  # fmt: skip
    return options


async def _check_conflicts(session: AsyncSession, challenge: Challenge,
                           pairs: Sequence[tuple[int, int]]) -> None:  # fmt: skip
    """(idea id, expert user id) pairs: a ``Conflict`` naming the first that must not be assigned."""
    ideas = {i.id: i for i in await session.scalars(select(Idea).where(Idea.id.in_({i for i, _u in pairs})))}
    for idea_id, _u in pairs:
        idea = ideas.get(idea_id)
        if idea is None or idea.status is not IdeaStatus.PUBLISHED or idea.challenge_id != challenge.id:
            title = idea.title if idea is not None else ""
            raise Conflict(_("“%(title)s” is no longer published: remove its experts instead.", title=title))
    parties = await _parties(
        session, challenge.organisation_id, [(i.id, i.author_id) for i in ideas.values()]
    )
    experts = {e.user_id: e for e in await _experts(session, also_users={u for _i, u in pairs})}
    declared = await _declared(session, experts)
    for idea_id, user_id in pairs:
        expert = experts.get(user_id)
        title = ideas[idea_id].title
        if expert is None or not expert.available:
            raise Conflict(_("This expert is no longer available to advise on “%(title)s”.", title=title))
        if in_conflict(expert, parties[idea_id], declared.get(user_id)):
            raise Conflict(_("%(name)s has a conflict of interest with “%(title)s” and cannot advise on it.",
                             name=expert.name, title=title))  # fmt: skip


async def swap_expert(session: AsyncSession, challenge: Challenge, similarity: Similarity,
                      assignment: ExpertAssignment, profile_id: int, actor: User,
                      now: datetime) -> ExpertAssignment:  # fmt: skip
    """Give a suggestion to another expert (one of ``swap_options``, checked again here)."""
    await _require_organiser(session, challenge, actor, now)
    if assignment.status is not AssignmentStatus.SUGGESTED:
        raise Conflict(_("This expert is already confirmed: remove them instead of swapping."))
    idea_id = assignment.idea_id
    option = next((o for o in await swap_options(session, challenge, similarity, assignment)
                   if o.profile_id == profile_id), None)  # fmt: skip
    if option is None:
        raise ValidationFailed({"expert": _("Choose one of the experts listed: they are the ones who may advise "
                                            "on this idea.")})  # fmt: skip
    await _check_conflicts(session, challenge, [(idea_id, option.user_id)])
    assignment.expert_user_id = option.user_id
    assignment.affinity = option.affinity
    assignment.reason = option.reason
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise Conflict(_("Experts were just assigned in another window. Please try again.")) from None
    return assignment


def _asked(title: str, challenge_title: str) -> Callable[[], str]:
    """The notification's text, translated when called (in the expert's language)."""
    return lambda: _("You are asked to advise on the idea “%(title)s” in the challenge “%(challenge)s”.",
                     title=title, challenge=challenge_title)  # fmt: skip


async def confirm_assignments(session: AsyncSession, challenge: Challenge, actor: User, now: datetime,
                              notifier: Notifier, *, idea_id: int | None = None) -> int:  # fmt: skip
    """Confirm the suggestions of one idea (or of the whole challenge) and tell each expert. Checks again
    conflicts, availability and capacity; nothing is confirmed when one fails. Returns how many."""
    await _require_organiser(session, challenge, actor, now)
    challenge_id, challenge_title = challenge.id, challenge.title
    query = select(ExpertAssignment).where(
        ExpertAssignment.challenge_id == challenge_id, ExpertAssignment.status == AssignmentStatus.SUGGESTED
    )
    if idea_id is not None:
        query = query.where(ExpertAssignment.idea_id == idea_id)
    pending = list(await session.scalars(query.order_by(ExpertAssignment.idea_id, ExpertAssignment.id)))
    if not pending:
        raise Conflict(_("There is no suggested expert to confirm."))
    pairs = [(a.idea_id, a.expert_user_id) for a in pending]
    await _check_conflicts(session, challenge, pairs)
    load = Counter(u for _i, u in await _confirmed(session, challenge_id)) + Counter(u for _i, u in pairs)
    profiles = {p.user_id: p for p in await session.scalars(
        select(ExpertProfile).where(ExpertProfile.user_id.in_(load)))}  # fmt: skip
    users = {u.id: u for u in await session.scalars(select(User).where(User.id.in_({u for _i, u in pairs})))}
    for user_id in {u for _i, u in pairs}:
        if load[user_id] > profiles[user_id].capacity:
            raise Conflict(_("%(name)s would advise on more ideas than the %(capacity)s they accept in this "
                             "challenge: remove or swap some of their suggestions first.",
                             name=users[user_id].display_name, capacity=profiles[user_id].capacity))  # fmt: skip
    titles = dict((await session.execute(
        select(Idea.id, Idea.title).where(Idea.id.in_({i for i, _u in pairs}))
    )).all())  # fmt: skip
    mails = []
    for assignment in pending:
        assignment.status = AssignmentStatus.CONFIRMED
        assignment.confirmed_at = now
        title = titles[assignment.idea_id]
        mails += notifier.notify(
            session, [users[assignment.expert_user_id]], "expert_assigned",
            _asked(title, challenge_title),
            ADVISING,
        )  # fmt: skip
    count = len(pending)
    await session.commit()
    notifier.send(mails)
    return count


async def remove_assignment(session: AsyncSession, challenge: Challenge, assignment: ExpertAssignment,
                            actor: User, now: datetime) -> None:  # fmt: skip
    await _require_organiser(session, challenge, actor, now)
    await session.delete(assignment)
    await session.commit()


# --- reading ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AssignedExpert:
    assignment_id: int
    user_id: int
    name: str
    status: AssignmentStatus
    affinity: float
    reasons: list[str]


@dataclass(frozen=True)
class IdeaExperts:
    idea_id: int
    title: str
    experts: list[AssignedExpert]

    @property
    def suggested(self) -> bool:
        return any(e.status is AssignmentStatus.SUGGESTED for e in self.experts)


async def assignment_table(
    session: AsyncSession, challenge_id: int, page: int = 1
) -> tuple[list[IdeaExperts], int]:
    """One page of the challenge's published ideas with their experts (confirmed first), and the idea count."""
    ideas = (await session.execute(
        select(Idea.id, Idea.title).where(Idea.challenge_id == challenge_id, Idea.status == IdeaStatus.PUBLISHED)
        .order_by(Idea.id)
    )).all()  # fmt: skip
    shown = ideas[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    rows = await session.execute(
        select(ExpertAssignment, User.display_name)
        .join(User, User.id == ExpertAssignment.expert_user_id)
        .where(ExpertAssignment.idea_id.in_([i for i, _t in shown]))
        .order_by(ExpertAssignment.status != AssignmentStatus.CONFIRMED, ExpertAssignment.affinity.desc())
    )
    by_idea: dict[int, list[AssignedExpert]] = defaultdict(list)
    for a, name in rows:
        by_idea[a.idea_id].append(AssignedExpert(a.id, a.expert_user_id, name, a.status, a.affinity,
                                                 [r for r in a.reason.split("\n") if r]))  # fmt: skip
    return [IdeaExperts(i, t, by_idea[i]) for i, t in shown], len(ideas)


async def any_expert_profile(session: AsyncSession) -> bool:
    return await session.scalar(select(ExpertProfile.id).limit(1)) is not None


@dataclass(frozen=True)
class Advised:
    idea_id: int
    idea_title: str
    challenge_id: int
    challenge_title: str
    confirmed_at: datetime | None


async def ideas_to_advise(session: AsyncSession, expert_user_id: int) -> list[Advised]:
    """The expert's confirmed assignments, newest first (ideas no longer published left out)."""
    rows = await session.execute(
        select(Idea.id, Idea.title, Challenge.id, Challenge.title, ExpertAssignment.confirmed_at)
        .join(Idea, Idea.id == ExpertAssignment.idea_id)
        .join(Challenge, Challenge.id == ExpertAssignment.challenge_id)
        .where(ExpertAssignment.expert_user_id == expert_user_id,
               ExpertAssignment.status == AssignmentStatus.CONFIRMED, Idea.status == IdeaStatus.PUBLISHED)
        .order_by(ExpertAssignment.confirmed_at.desc(), ExpertAssignment.id.desc())
    )  # fmt: skip
    return [Advised(*row) for row in rows]


async def confirmed_experts(session: AsyncSession, idea_id: int) -> set[int]:
    """User ids of the idea's confirmed experts (their comments carry an "Expert" badge)."""
    return set(await session.scalars(
        select(ExpertAssignment.expert_user_id).where(
            ExpertAssignment.idea_id == idea_id, ExpertAssignment.status == AssignmentStatus.CONFIRMED)
    ))  # fmt: skip

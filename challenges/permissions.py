"""Who may do what in a challenge, in which phase: one table, one named function per action.

The table is data: for each action, the phases in which it is allowed and, for each, the roles
that may do it. A person holds every role that applies to them (a juror is usually a citizen
too) and may act when any of their roles may. The named functions add the challenge's own
rules on top (who may submit, the edit window) and are what pages and the API call.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from challenges.models import Challenge, Phase, SubmitPolicy
from challenges.phases import active_phases


class Role(enum.StrEnum):
    ANONYMOUS = "anonymous"
    CITIZEN = "citizen"
    AUTHOR = "author"
    MODERATOR = "moderator"
    ADMIN = "admin"
    JUROR = "juror"


class Action(enum.StrEnum):
    VIEW = "view"
    SUBMIT_IDEA = "submit_idea"
    EDIT_OWN_IDEA = "edit_own_idea"
    VOTE = "vote"
    COMMENT = "comment"
    SCORE = "score"
    SEE_RESULTS = "see_results"
    SHORTLIST = "shortlist"


R = Role
EVERYONE = frozenset(Role)
ORGANISATION = frozenset({R.MODERATOR, R.ADMIN})
PARTICIPANTS = frozenset({R.CITIZEN, R.AUTHOR, R.MODERATOR, R.ADMIN, R.JUROR})
PUBLIC_PHASES = (Phase.SUBMISSION, Phase.VOTING, Phase.REVIEW, Phase.RESULTS, Phase.CLOSED)

PERMISSIONS: dict[Action, dict[Phase, frozenset[Role]]] = {
    # A draft is seen only by the organisation preparing it.
    Action.VIEW: {Phase.DRAFT: ORGANISATION} | dict.fromkeys(PUBLIC_PHASES, EVERYONE),
    Action.SUBMIT_IDEA: {Phase.SUBMISSION: PARTICIPANTS},
    Action.EDIT_OWN_IDEA: {Phase.SUBMISSION: frozenset({R.AUTHOR})},
    Action.VOTE: {Phase.VOTING: PARTICIPANTS},
    # During review only the organisation and the jury discuss; citizens comment while ideas are open.
    Action.COMMENT: {
        Phase.SUBMISSION: PARTICIPANTS,
        Phase.VOTING: PARTICIPANTS,
        Phase.REVIEW: frozenset({R.MODERATOR, R.ADMIN, R.JUROR}),
    },
    Action.SCORE: {Phase.REVIEW: frozenset({R.JUROR})},
    # The organisation sees the jury's results as they form; everyone else once the organiser publishes them
    # (``can_see_results``), which is possible from the results phase on.
    Action.SEE_RESULTS: {Phase.REVIEW: ORGANISATION, Phase.RESULTS: EVERYONE, Phase.CLOSED: EVERYONE},
    # The admins build the shortlist from the ideas; it locks when the review starts (the jury's list).
    Action.SHORTLIST: {Phase.SUBMISSION: frozenset({R.ADMIN}), Phase.VOTING: frozenset({R.ADMIN})},
}


def allowed_by_table(action: Action, phases: frozenset[Phase], roles: frozenset[Role]) -> bool:
    by_phase = PERMISSIONS[action]
    return any(roles & by_phase.get(phase, frozenset()) for phase in phases)


@dataclass(frozen=True)
class Access:
    """Everything a permission depends on: the challenge, the moment, and who is asking."""

    challenge: Challenge
    now: datetime
    roles: frozenset[Role]
    email_verified: bool = False
    is_member: bool = False
    """A member of the organisation running the challenge, whatever their role."""

    @property
    def phases(self) -> frozenset[Phase]:
        return active_phases(self.challenge, self.now)

    def allows(self, action: Action) -> bool:
        return allowed_by_table(action, self.phases, self.roles)

    def allows_submission_phase(self) -> bool:
        """Whether the phase is right for submitting (whatever the challenge's rule on who may)."""
        return allowed_by_table(Action.SUBMIT_IDEA, self.phases, self.roles | {Role.CITIZEN})


def can_view(access: Access) -> bool:
    return access.allows(Action.VIEW)


def can_submit_idea(access: Access) -> bool:
    if not access.allows(Action.SUBMIT_IDEA):
        return False
    policy = access.challenge.who_may_submit
    if policy is SubmitPolicy.VERIFIED_EMAIL:
        return access.email_verified
    if policy is SubmitPolicy.MEMBERS:
        return access.is_member
    return True


def can_edit_own_idea(access: Access, idea_submitted_at: datetime | None = None) -> bool:
    """Authors edit during submission, within the challenge's edit window after submitting."""
    if not access.allows(Action.EDIT_OWN_IDEA):
        return False
    if idea_submitted_at is None:
        return True
    return access.now < idea_submitted_at + timedelta(hours=access.challenge.edit_window_hours)


def can_vote(access: Access) -> bool:
    return access.allows(Action.VOTE)


def can_comment(access: Access) -> bool:
    return access.allows(Action.COMMENT)


def can_score(access: Access) -> bool:
    return access.allows(Action.SCORE)


def can_see_results(access: Access) -> bool:
    """The ranking and winners: the organisation's from the review on, everyone's once published."""
    if not access.allows(Action.SEE_RESULTS):
        return False
    return access.challenge.results_published_at is not None or bool(access.roles & ORGANISATION)


def can_shortlist(access: Access) -> bool:
    """Adding ideas to the shortlist or removing them (``ideas.shortlist``)."""
    return access.allows(Action.SHORTLIST)


CHECKS = {
    Action.VIEW: can_view,
    Action.SUBMIT_IDEA: can_submit_idea,
    Action.EDIT_OWN_IDEA: can_edit_own_idea,
    Action.VOTE: can_vote,
    Action.COMMENT: can_comment,
    Action.SCORE: can_score,
    Action.SEE_RESULTS: can_see_results,
    Action.SHORTLIST: can_shortlist,
}


def permissions_for(access: Access) -> dict[Action, bool]:
    return {action: check(access) for action, check in CHECKS.items()}

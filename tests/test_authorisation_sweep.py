"""The authorisation sweep: every route of the app, each asked by people who lack the right to it (anonymous,
a plain citizen, the admin of another organisation, another author, a juror of another challenge...), must
refuse (401, 403 or 404; an anonymous page visit may be sent to the login form) and change nothing in the
database.

``ROUTES`` names every (method, path) of the app: how it is exercised, or why it is public. A route added to
the app without an entry here fails ``test_every_route_is_in_the_table``. For each state-changing request the
whole database (every table's rows, hashed) is compared before and after. Every GET with an ``owner`` is also
asked by that owner first, who must get it (200): proof that the ids in the table point at real things, so
that a refusal is a refusal and not a typo.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from challenges.models import Challenge, ChallengeJuror, Phase
from ideaforge.app import create_app
from ideaforge.clock import FixedClock
from ideaforge.db import Base, Database
from ideaforge.organisations.models import OrganisationKind, Role
from ideaforge.organisations.services import invite_member
from ideaforge.profiles.models import (
    AssignmentStatus,
    ExpertAssignment,
    ExpertConflict,
    ExpertProfile,
    InterestStatus,
    PartnerInterest,
    PartnerProfile,
)
from ideaforge.settings import Settings
from ideas.jury.models import JurorConflict, JuryAssignment, JuryInvitation
from ideas.jury.panel import invite_juror
from ideas.merges import propose_merge
from ideas.models import CoAuthor, CoAuthorStatus, Comment, Idea, IdeaStatus, Report, ShortlistEntry
from ml.embedding import Embedder
from tests.challenge_helpers import DAY, add_juror, add_member, make_challenge, make_organisation
from tests.conftest import SECRET, Backend
from tests.helpers import STRONG_PASSWORD, login
from tests.idea_helpers import flag_pair, make_idea, make_user

# --- the people -----------------------------------------------------------------------------------------------

ANON = "anonymous"
CITIZEN = "citizen"  # signed in, no role anywhere
ADMIN_A = "admin_a"  # owner of organisation A, which runs the target challenges
MODERATOR_A = "moderator_a"  # moderator of A: moderates, does not administer
ADMIN_B = "admin_b"  # owner of organisation B (another organisation; also a partner organisation)
AUTHOR = "author"  # author of the target idea
OTHER_AUTHOR = "other_author"  # author of another idea of the same challenge
JUROR = "juror"  # juror of A's challenge in review
OTHER_JUROR = "other_juror"  # juror of B's challenge only
EXPERT = "expert"  # has an expert profile, advises on the target idea
SUPERUSER = "superuser"  # runs the instance

EMAILS = {
    CITIZEN: "citizen@example.org", ADMIN_A: "admin@rennes.example.org", MODERATOR_A: "mod@rennes.example.org",
    ADMIN_B: "admin@frankfurt.example.org", AUTHOR: "author@example.org", OTHER_AUTHOR: "other@example.org",
    JUROR: "juror@example.org", OTHER_JUROR: "juror@frankfurt.example.org", EXPERT: "expert@example.org",
    SUPERUSER: "root@ideaforge.example.org",
}  # fmt: skip
SIGNED_IN = tuple(EMAILS)

# Who lacks the right, by kind of route.
OUTSIDERS = (ANON, CITIZEN, ADMIN_B)
ADMINS_ONLY = (*OUTSIDERS, MODERATOR_A, AUTHOR, OTHER_JUROR)  # owners and admins of A only
MODERATORS_ONLY = (*OUTSIDERS, AUTHOR, OTHER_JUROR)  # moderators and admins of A
JURORS_ONLY = (*OUTSIDERS, ADMIN_A, AUTHOR, OTHER_JUROR)  # the challenge's jury only
AUTHORS_ONLY = (*OUTSIDERS, OTHER_AUTHOR, MODERATOR_A)  # the idea's authors only
OWN_ACCOUNT = (ANON,)  # routes on "my" things: only anonymous lacks a "me"
PARTNER_B_ONLY = (ANON, CITIZEN, ADMIN_A)  # organisation B's owners and admins only


@dataclass
class World:
    users: dict[str, int]
    org_a: str
    org_b: str
    org_b_id: int
    submission: int  # A's challenge taking ideas
    draft: int  # A's unpublished challenge
    review: int  # A's challenge under the jury's review, results not published
    other_challenge: int  # B's challenge (OTHER_JUROR's jury)
    idea: int  # AUTHOR's idea in ``submission``
    other_idea: int  # OTHER_AUTHOR's idea in ``submission``
    hidden_idea: int  # AUTHOR's idea, hidden by the moderators
    comment: int  # AUTHOR's comment on ``idea``
    hidden_comment: int  # AUTHOR's comment on ``hidden_idea``
    report: int  # CITIZEN's open report on ``idea``
    pair: int  # suspected duplicates (``idea``, ``other_idea``)
    pending_merge: int  # OTHER_AUTHOR's third idea into ``idea``, waiting for OTHER_AUTHOR's consent
    done_merge: int  # AUTHOR's merged idea into ``other_idea``
    merged_idea: int
    expert_assignment: int  # EXPERT suggested for ``idea``
    expert_conflict: int  # EXPERT's declared conflict
    partner_interest: int  # ``submission``'s interest in B, not answered
    org_invitation_token: str  # an invitation to A for someone else
    review_idea: int  # AUTHOR's shortlisted idea in ``review``, assigned to JUROR
    review_other_idea: int  # OTHER_AUTHOR's shortlisted idea in ``review``; JUROR declared a conflict
    jury_assignment: int
    jury_invitation: int  # pending invitation to ``review``'s jury


@dataclass(frozen=True)
class Case:
    """How a route is asked: the path's ids, the form (pages) or JSON (API) body, who must be refused."""

    refused: tuple[str, ...]
    path: Callable[[World], dict[str, Any]] = lambda w: {}
    body: Callable[[World], dict[str, Any]] | None = None
    owner: str | None = None
    """Someone who may: a GET is asked by them first and must answer ``owner_status``."""
    owner_status: int = 200
    flash_refusal: str = ""
    """Why this route refuses by sending the person back (303) with an error message: allowed, nothing changes."""


@dataclass(frozen=True)
class Public:
    reason: str


def c(refused: tuple[str, ...], path: Callable[[World], dict[str, Any]] = lambda w: {}, **kw: Any) -> Case:
    return Case(refused, path, **kw)


# Path parameters of the common targets.
def SUB(w: World) -> dict[str, Any]:
    return {"challenge_id": w.submission}


def DRAFT(w: World) -> dict[str, Any]:
    return {"challenge_id": w.draft}


def REVIEW(w: World) -> dict[str, Any]:
    return {"challenge_id": w.review}


def IDEA(w: World) -> dict[str, Any]:
    return {"idea_id": w.idea}


def HIDDEN(w: World) -> dict[str, Any]:
    return {"idea_id": w.hidden_idea}


def COMMENT(w: World) -> dict[str, Any]:
    return {"comment_id": w.comment}


def ORG_A(w: World) -> dict[str, Any]:
    return {"slug": w.org_a}


def ORG_B(w: World) -> dict[str, Any]:
    return {"slug": w.org_b}


IDEA_FORM = {"title": "Hijacked title", "body": "Someone else wrote this body.", "language": "en"}
REASON = {"reason": "Because I can"}
CHALLENGE_FORM = {"title": "Hijacked challenge", "summary": "x", "description": "y"}

# Every route of the app. Private variants stand for the public pages: a draft challenge and a hidden idea are
# what "without the right" means for pages everyone else may read.
ROUTES: dict[tuple[str, str], Case | Public] = {
    # --- public ---------------------------------------------------------------------------------------------
    ("GET", "/"): Public("the home page"),
    ("GET", "/healthz"): Public("liveness probe, says nothing"),
    ("GET", "/readyz"): Public("readiness probe, says which service is down"),
    ("GET", "/metrics"): Public("Prometheus counters, no user data; the proxy keeps it to the internal network"),
    ("GET", "/login"): Public("the login form"),
    ("POST", "/login"): Public("logging in: the credentials are the right (throttled, tested in accounts)"),
    ("POST", "/logout"): Public("logging out only ends one's own session"),
    ("GET", "/register"): Public("the registration form"),
    ("POST", "/register"): Public("anyone may create an account"),
    ("POST", "/locale"): Public("choosing the language of one's own pages"),
    ("GET", "/verify-email/{token:str}"): Public("the emailed token is the right"),
    ("GET", "/schema"): Public("the OpenAPI document"),
    ("GET", "/schema/openapi.json"): Public("the OpenAPI document"),
    ("GET", "/schema/{path:str}"): Public("the OpenAPI plugin's not-found answer"),
    ("GET", "/static/{file_path:path}"): Public("CSS, htmx, images"),
    ("HEAD", "/static/{file_path:path}"): Public("CSS, htmx, images"),
    ("GET", "/challenges"): Public("the directory lists published challenges only"),
    ("GET", "/organisations"): Public("the directory of organisations"),
    ("GET", "/organisations/{slug:str}"): Public("an organisation's public page (members see more)"),
    ("GET", "/organisations/{slug:str}/challenges"): Public("lists drafts to the organisation's admins only"),
    ("GET", "/partners"): Public("the directory of listed partners (no contact details)"),
    ("GET", "/api/v1/challenges"): Public("the directory lists published challenges only"),
    ("POST", "/api/v1/tokens"): Public("exchanging one's own email and password for a token"),
    ("GET", "/jury-invitations/{token:str}"): Public("the emailed link is the right (any account may join)"),
    ("POST", "/jury-invitations/{token:str}"): Public("the emailed link is the right (any account may join)"),
    # --- one's own account: only anonymous lacks it -----------------------------------------------------------
    ("GET", "/profile"): c(OWN_ACCOUNT, owner=CITIZEN),
    ("POST", "/profile"): c(OWN_ACCOUNT, body=lambda w: {"display_name": "Renamed"}),
    ("POST", "/profile/verification"): c(OWN_ACCOUNT, body=lambda w: {}),
    ("GET", "/notifications"): c(OWN_ACCOUNT, owner=CITIZEN),
    ("POST", "/notifications/read"): c(OWN_ACCOUNT, body=lambda w: {}),
    ("GET", "/account/advising"): c(OWN_ACCOUNT, owner=EXPERT),
    ("GET", "/account/expertise"): c(OWN_ACCOUNT, owner=EXPERT),
    ("POST", "/account/expertise"): c(OWN_ACCOUNT, body=lambda w: {
        "expertise": "Urban food systems and markets", "country": "FR", "capacity": "3", "languages": "en"}),
    ("POST", "/account/expertise/conflicts"): c(OWN_ACCOUNT, body=lambda w: {"conflict_email": "x@example.org"}),
    ("POST", "/account/expertise/conflicts/{conflict_id:int}/delete"): c(
        (ANON, CITIZEN, ADMIN_B, AUTHOR), lambda w: {"conflict_id": w.expert_conflict}, body=lambda w: {}),
    ("GET", "/organisations/new"): c(OWN_ACCOUNT, owner=CITIZEN),
    ("POST", "/organisations/new"): c(OWN_ACCOUNT, body=lambda w: {
        "name": "Anonymous Org", "kind": "city", "country": "FR"}),
    ("POST", "/follow"): c(OUTSIDERS, body=lambda w: {
        "target_type": "challenge", "target_id": str(w.draft), "action": "follow", "next": "/"}),
    ("GET", "/api/v1/me"): c(OWN_ACCOUNT, owner=CITIZEN),
    # --- the instance's operators -----------------------------------------------------------------------------
    ("GET", "/admin/jobs"): c((ANON, CITIZEN, ADMIN_A, ADMIN_B), owner=SUPERUSER),
    ("POST", "/admin/jobs/retry"): c((ANON, CITIZEN, ADMIN_A, ADMIN_B), body=lambda w: {"job": "any"}),
    # --- organisations --------------------------------------------------------------------------------------
    ("POST", "/organisations/{slug:str}/invitations"): c(
        (ANON, CITIZEN, ADMIN_B, MODERATOR_A), ORG_A, body=lambda w: {"email": "new@example.org", "role": "admin"}),
    ("GET", "/invitations/{token:str}"): c(
        (CITIZEN, ADMIN_B), lambda w: {"token": w.org_invitation_token}),
    ("POST", "/invitations/{token:str}"): c(
        (ANON, CITIZEN, ADMIN_B), lambda w: {"token": w.org_invitation_token}, body=lambda w: {},
        flash_refusal="someone else's invitation: sent back to the invitation page, which says whose it is"),
    ("GET", "/organisations/{slug:str}/partner-profile"): c(PARTNER_B_ONLY, ORG_B, owner=ADMIN_B),
    ("POST", "/organisations/{slug:str}/partner-profile"): c(PARTNER_B_ONLY, ORG_B, body=lambda w: {
        "offers": "Hijacked", "contact_email": "thief@example.org", "listed": "on"}),
    ("GET", "/organisations/{slug:str}/partner-interests"): c(PARTNER_B_ONLY, ORG_B, owner=ADMIN_B),
    ("GET", "/organisations/{slug:str}/partner-interests/{interest_id:int}/{answer:str}"): c(
        PARTNER_B_ONLY, lambda w: {"slug": w.org_b, "interest_id": w.partner_interest, "answer": "accept"},
        owner=ADMIN_B),
    ("POST", "/organisations/{slug:str}/partner-interests/{interest_id:int}/{answer:str}"): c(
        PARTNER_B_ONLY, lambda w: {"slug": w.org_b, "interest_id": w.partner_interest, "answer": "accept"},
        body=lambda w: {}),
    # --- challenges: pages --------------------------------------------------------------------------------
    ("GET", "/challenges/{challenge_id:int}"): c((*OUTSIDERS, AUTHOR), DRAFT, owner=MODERATOR_A),
    ("GET", "/challenges/{challenge_id:int}/edit"): c(ADMINS_ONLY, SUB, owner=ADMIN_A),
    ("POST", "/challenges/{challenge_id:int}/edit"): c(ADMINS_ONLY, SUB, body=lambda w: CHALLENGE_FORM),
    ("POST", "/challenges/{challenge_id:int}/publish"): c(ADMINS_ONLY, DRAFT, body=lambda w: {}),
    ("GET", "/challenges/{challenge_id:int}/phase"): c(ADMINS_ONLY, SUB, owner=ADMIN_A),
    ("POST", "/challenges/{challenge_id:int}/phase"): c(ADMINS_ONLY, SUB, body=lambda w: {
        "phase": "closed", **REASON}),
    ("GET", "/challenges/{challenge_id:int}/close"): c(ADMINS_ONLY, SUB, owner=ADMIN_A),
    ("POST", "/challenges/{challenge_id:int}/close"): c(ADMINS_ONLY, SUB, body=lambda w: REASON),
    ("GET", "/organisations/{slug:str}/challenges/new"): c(
        (ANON, CITIZEN, ADMIN_B, MODERATOR_A), ORG_A, owner=ADMIN_A),
    ("POST", "/organisations/{slug:str}/challenges/new"): c(
        (ANON, CITIZEN, ADMIN_B, MODERATOR_A), ORG_A, body=lambda w: CHALLENGE_FORM),
    ("GET", "/challenges/{challenge_id:int}/export.csv"): c(ADMINS_ONLY, SUB, owner=ADMIN_A),
    ("GET", "/challenges/{challenge_id:int}/partners"): c(ADMINS_ONLY, SUB, owner=ADMIN_A),
    ("POST", "/challenges/{challenge_id:int}/partners/{organisation_id:int}/interest"): c(
        ADMINS_ONLY, lambda w: {"challenge_id": w.submission, "organisation_id": w.org_b_id},
        body=lambda w: {"message": "Let us talk"}),
    # --- ideas of a challenge: the draft stands for what may not be seen -----------------------------------
    ("GET", "/challenges/{challenge_id:int}/ideas"): c(OUTSIDERS, DRAFT, owner=ADMIN_A),
    ("GET", "/challenges/{challenge_id:int}/events"): c(OUTSIDERS, DRAFT),  # a stream: no owner visit
    ("GET", "/challenges/{challenge_id:int}/ideas/new"): c(OUTSIDERS, DRAFT, owner=ADMIN_A),
    ("POST", "/challenges/{challenge_id:int}/ideas/new"): c(OUTSIDERS, DRAFT, body=lambda w: IDEA_FORM),
    ("POST", "/challenges/{challenge_id:int}/ideas/similar"): c(OUTSIDERS, DRAFT, body=lambda w: IDEA_FORM),
    # --- an idea --------------------------------------------------------------------------------------------
    ("GET", "/ideas/{idea_id:int}"): c((*OUTSIDERS, OTHER_AUTHOR), HIDDEN, owner=AUTHOR),
    ("POST", "/ideas/{idea_id:int}/vote"): c(OUTSIDERS, HIDDEN, body=lambda w: {"action": "vote"}),
    ("POST", "/ideas/{idea_id:int}/comments"): c(OUTSIDERS, HIDDEN, body=lambda w: {"body": "Hello"}),
    ("POST", "/ideas/{idea_id:int}/report"): c(OUTSIDERS, HIDDEN, body=lambda w: REASON),
    ("POST", "/ideas/{idea_id:int}/support-instead"): c(OUTSIDERS, HIDDEN, body=lambda w: IDEA_FORM),
    ("POST", "/ideas/{idea_id:int}/join-request"): c(OUTSIDERS, HIDDEN, body=lambda w: IDEA_FORM),
    ("GET", "/ideas/{idea_id:int}/edit"): c(AUTHORS_ONLY, IDEA, owner=AUTHOR),
    ("POST", "/ideas/{idea_id:int}/edit"): c(AUTHORS_ONLY, IDEA, body=lambda w: IDEA_FORM),
    ("POST", "/ideas/{idea_id:int}/withdraw"): c(AUTHORS_ONLY, IDEA, body=lambda w: {}),
    ("POST", "/ideas/{idea_id:int}/coauthors"): c(AUTHORS_ONLY, IDEA, body=lambda w: {
        "email": EMAILS[CITIZEN]}),
    ("POST", "/ideas/{idea_id:int}/coauthors/accept"): c(  # EXPERT is invited, nobody else
        (*OUTSIDERS, OTHER_AUTHOR), IDEA, body=lambda w: {}),
    ("POST", "/ideas/{idea_id:int}/join-requests/{requester_id:int}"): c(  # CITIZEN asked; AUTHOR answers
        (ANON, CITIZEN, ADMIN_B, OTHER_AUTHOR), lambda w: {"idea_id": w.idea, "requester_id": w.users[CITIZEN]},
        body=lambda w: {"action": "accept"}),
    ("POST", "/ideas/{idea_id:int}/hide"): c(MODERATORS_ONLY, IDEA, body=lambda w: REASON),
    ("POST", "/ideas/{idea_id:int}/restore"): c(MODERATORS_ONLY, HIDDEN, body=lambda w: REASON),
    ("GET", "/ideas/{idea_id:int}/merge"): c(
        (*OUTSIDERS, OTHER_AUTHOR), lambda w: {"idea_id": w.merged_idea}, owner=MODERATOR_A, owner_status=303),
    # --- comments -----------------------------------------------------------------------------------------
    ("POST", "/comments/{comment_id:int}/edit"): c(
        (*OUTSIDERS, OTHER_AUTHOR, MODERATOR_A), COMMENT, body=lambda w: {"body": "Edited by someone else"}),
    ("POST", "/comments/{comment_id:int}/delete"): c(
        (*OUTSIDERS, OTHER_AUTHOR, MODERATOR_A), COMMENT, body=lambda w: {}),
    ("POST", "/comments/{comment_id:int}/hide"): c(MODERATORS_ONLY, COMMENT, body=lambda w: REASON),
    ("POST", "/comments/{comment_id:int}/restore"): c(MODERATORS_ONLY, COMMENT, body=lambda w: REASON),
    ("POST", "/comments/{comment_id:int}/report"): c(
        OUTSIDERS, lambda w: {"comment_id": w.hidden_comment}, body=lambda w: REASON),
    # --- moderation, duplicates, merges -------------------------------------------------------------------
    ("GET", "/challenges/{challenge_id:int}/moderation"): c(MODERATORS_ONLY, SUB, owner=MODERATOR_A),
    ("POST", "/reports/{report_id:int}/dismiss"): c(
        MODERATORS_ONLY, lambda w: {"report_id": w.report}, body=lambda w: {}),
    ("GET", "/challenges/{challenge_id:int}/moderation/duplicates"): c(MODERATORS_ONLY, SUB, owner=MODERATOR_A),
    ("POST", "/duplicates/{pair_id:int}/dismiss"): c(MODERATORS_ONLY, lambda w: {"pair_id": w.pair},
                                                     body=lambda w: {}),
    ("GET", "/duplicates/{pair_id:int}/merge"): c(MODERATORS_ONLY, lambda w: {"pair_id": w.pair},
                                                  owner=MODERATOR_A),
    ("POST", "/duplicates/{pair_id:int}/merge"): c(MODERATORS_ONLY, lambda w: {"pair_id": w.pair}, body=lambda w: {
        "surviving": str(w.idea), "override_reason": "Same idea"}),
    ("GET", "/merges/{merge_id:int}"): c(  # the absorbed idea's author and the moderators only
        (*OUTSIDERS, AUTHOR), lambda w: {"merge_id": w.pending_merge}, owner=OTHER_AUTHOR),
    ("POST", "/merges/{merge_id:int}/consent"): c(
        (*OUTSIDERS, AUTHOR), lambda w: {"merge_id": w.pending_merge}, body=lambda w: {"decision": "accept"}),
    ("POST", "/merges/{merge_id:int}/undo"): c(  # the moderators only, not even the absorbed idea's author
        (*OUTSIDERS, AUTHOR, OTHER_AUTHOR), lambda w: {"merge_id": w.done_merge}, body=lambda w: {}),
    # --- experts ------------------------------------------------------------------------------------------
    ("GET", "/challenges/{challenge_id:int}/experts"): c((*ADMINS_ONLY, EXPERT), SUB, owner=ADMIN_A),
    ("POST", "/challenges/{challenge_id:int}/experts/suggest"): c(
        (*ADMINS_ONLY, EXPERT), SUB, body=lambda w: {"k": "2"}),
    ("POST", "/challenges/{challenge_id:int}/experts/confirm"): c(
        (*ADMINS_ONLY, EXPERT), SUB, body=lambda w: {"idea": str(w.idea)}),
    ("GET", "/expert-assignments/{assignment_id:int}/swap"): c(
        (*ADMINS_ONLY, EXPERT), lambda w: {"assignment_id": w.expert_assignment}, owner=ADMIN_A),
    ("POST", "/expert-assignments/{assignment_id:int}/swap"): c(
        (*ADMINS_ONLY, EXPERT), lambda w: {"assignment_id": w.expert_assignment},
        body=lambda w: {"expert": str(w.users[CITIZEN])}),
    ("POST", "/expert-assignments/{assignment_id:int}/remove"): c(
        (*ADMINS_ONLY, EXPERT), lambda w: {"assignment_id": w.expert_assignment}, body=lambda w: {}),
    # --- shortlist ----------------------------------------------------------------------------------------
    ("GET", "/challenges/{challenge_id:int}/shortlist"): c(ADMINS_ONLY, SUB, owner=ADMIN_A),
    ("POST", "/challenges/{challenge_id:int}/shortlist/add"): c(ADMINS_ONLY, SUB, body=lambda w: {
        "idea": str(w.idea)}),
    ("POST", "/challenges/{challenge_id:int}/shortlist/remove"): c(ADMINS_ONLY, REVIEW, body=lambda w: {
        "idea": str(w.review_idea)}),
    # --- jury: the organisers' side -----------------------------------------------------------------------
    ("GET", "/challenges/{challenge_id:int}/jury"): c((*ADMINS_ONLY, JUROR), REVIEW, owner=ADMIN_A),
    ("POST", "/challenges/{challenge_id:int}/jury/invitations"): c(
        (*ADMINS_ONLY, JUROR), REVIEW, body=lambda w: {"email": "friend@example.org"}),
    ("POST", "/challenges/{challenge_id:int}/jury/invitations/cancel"): c(
        (*ADMINS_ONLY, JUROR), REVIEW, body=lambda w: {"invitation": str(w.jury_invitation)}),
    ("POST", "/challenges/{challenge_id:int}/jury/members/remove"): c(
        (*ADMINS_ONLY, JUROR), REVIEW, body=lambda w: {"juror": str(w.users[JUROR]), "confirm": "on"}),
    ("POST", "/challenges/{challenge_id:int}/jury/assign"): c((*ADMINS_ONLY, JUROR), REVIEW, body=lambda w: {}),
    ("POST", "/challenges/{challenge_id:int}/jury/assignments/add"): c(
        (*ADMINS_ONLY, JUROR), REVIEW, body=lambda w: {
            "idea": str(w.review_other_idea), "juror": str(w.users[OTHER_JUROR])}),
    ("POST", "/challenges/{challenge_id:int}/jury/assignments/remove"): c(
        (*ADMINS_ONLY, JUROR), REVIEW, body=lambda w: {"assignment": str(w.jury_assignment)}),
    ("GET", "/challenges/{challenge_id:int}/jury/audit"): c((*ADMINS_ONLY, JUROR), REVIEW, owner=ADMIN_A),
    ("GET", "/challenges/{challenge_id:int}/jury/scores.csv"): c((*ADMINS_ONLY, JUROR), REVIEW, owner=ADMIN_A),
    ("GET", "/challenges/{challenge_id:int}/jury/changes.csv"): c((*ADMINS_ONLY, JUROR), REVIEW, owner=ADMIN_A),
    # --- jury: the juror's side ---------------------------------------------------------------------------
    ("GET", "/challenges/{challenge_id:int}/jury/conflicts"): c(JURORS_ONLY, REVIEW, owner=JUROR),
    ("POST", "/challenges/{challenge_id:int}/jury/conflicts/declare"): c(JURORS_ONLY, REVIEW, body=lambda w: {
        "idea": str(w.review_idea), "reason": "My cousin"}),
    ("POST", "/challenges/{challenge_id:int}/jury/conflicts/withdraw"): c(JURORS_ONLY, REVIEW, body=lambda w: {
        "idea": str(w.review_other_idea)}),
    ("GET", "/challenges/{challenge_id:int}/scoring"): c(JURORS_ONLY, REVIEW, owner=JUROR),
    ("GET", "/challenges/{challenge_id:int}/scoring/{idea_id:int}"): c(
        JURORS_ONLY, lambda w: {"challenge_id": w.review, "idea_id": w.review_idea}, owner=JUROR),
    ("POST", "/challenges/{challenge_id:int}/scoring/{idea_id:int}"): c(
        JURORS_ONLY, lambda w: {"challenge_id": w.review, "idea_id": w.review_idea},
        body=lambda w: {"overall": "Great", "action": "save"}),
    # --- results: unpublished, the organisation's only ----------------------------------------------------
    ("GET", "/challenges/{challenge_id:int}/results"): c((*OUTSIDERS, AUTHOR, JUROR), REVIEW, owner=MODERATOR_A),
    ("POST", "/challenges/{challenge_id:int}/results/publish"): c(
        (*ADMINS_ONLY, JUROR), REVIEW, body=lambda w: {"winners": "1", "confirm": "on"}),
    # --- the API ------------------------------------------------------------------------------------------
    ("POST", "/api/v1/challenges"): c((ANON, CITIZEN, ADMIN_B, MODERATOR_A), body=lambda w: {
        "organisation": w.org_a, "title": "Hijacked", "summary": "x", "description": "y"}),
    ("GET", "/api/v1/challenges/{challenge_id:int}"): c(OUTSIDERS, DRAFT, owner=ADMIN_A),
    ("PATCH", "/api/v1/challenges/{challenge_id:int}"): c(ADMINS_ONLY, SUB, body=lambda w: {"title": "Hijacked"}),
    ("GET", "/api/v1/challenges/{challenge_id:int}/ideas"): c(OUTSIDERS, DRAFT, owner=ADMIN_A),
    ("POST", "/api/v1/challenges/{challenge_id:int}/ideas"): c(OUTSIDERS, DRAFT, body=lambda w: {
        "title": "Hijacked", "body": "An idea where none may be submitted."}),
    ("POST", "/api/v1/challenges/{challenge_id:int}/similar"): c(OUTSIDERS, DRAFT, body=lambda w: {
        "text": "Share unsold bread\nwith food banks"}),
    ("GET", "/api/v1/challenges/{challenge_id:int}/results"): c(
        (*OUTSIDERS, AUTHOR, JUROR), REVIEW, owner=ADMIN_A),
    ("GET", "/api/v1/ideas/{idea_id:int}"): c((*OUTSIDERS, OTHER_AUTHOR), HIDDEN, owner=AUTHOR),
    ("GET", "/api/v1/ideas/{idea_id:int}/comments"): c((*OUTSIDERS, OTHER_AUTHOR), HIDDEN, owner=AUTHOR),
    ("POST", "/api/v1/ideas/{idea_id:int}/comments"): c((*OUTSIDERS, OTHER_AUTHOR), HIDDEN, body=lambda w: {
        "body": "Hello"}),
    ("GET", "/api/v1/ideas/{idea_id:int}/similar"): c((*OUTSIDERS, OTHER_AUTHOR), HIDDEN, owner=AUTHOR),
    ("PUT", "/api/v1/ideas/{idea_id:int}/vote"): c((*OUTSIDERS, OTHER_AUTHOR), HIDDEN, body=lambda w: {}),
    ("DELETE", "/api/v1/ideas/{idea_id:int}/vote"): c((*OUTSIDERS, OTHER_AUTHOR), HIDDEN),
}  # fmt: skip

# The same refusals asked the sly way: the admin of B (or B's juror) acting on B's own challenge, with the ids
# of A's things in the form. Each must be refused (or be a no-op) and change nothing.
CROSS: list[tuple[str, str, Callable[[World], str], Callable[[World], dict[str, str]]]] = [
    (
        ADMIN_B,
        "POST",
        lambda w: f"/challenges/{w.other_challenge}/shortlist/add",
        lambda w: {"idea": str(w.idea)},
    ),
    (
        ADMIN_B,
        "POST",
        lambda w: f"/challenges/{w.other_challenge}/shortlist/remove",
        lambda w: {"idea": str(w.review_idea)},
    ),
    (
        ADMIN_B,
        "POST",
        lambda w: f"/challenges/{w.other_challenge}/jury/invitations/cancel",
        lambda w: {"invitation": str(w.jury_invitation)},
    ),
    (
        ADMIN_B,
        "POST",
        lambda w: f"/challenges/{w.other_challenge}/jury/members/remove",
        lambda w: {"juror": str(w.users[JUROR]), "confirm": "on"},
    ),
    (
        ADMIN_B,
        "POST",
        lambda w: f"/challenges/{w.other_challenge}/jury/assignments/remove",
        lambda w: {"assignment": str(w.jury_assignment)},
    ),
    (
        ADMIN_B,
        "POST",
        lambda w: f"/challenges/{w.other_challenge}/jury/assignments/add",
        lambda w: {"idea": str(w.review_idea), "juror": str(w.users[OTHER_JUROR])},
    ),
    (
        ADMIN_B,
        "POST",
        lambda w: f"/challenges/{w.other_challenge}/experts/confirm",
        lambda w: {"idea": str(w.idea)},
    ),
    (
        OTHER_JUROR,
        "POST",
        lambda w: f"/challenges/{w.other_challenge}/jury/conflicts/declare",
        lambda w: {"idea": str(w.review_idea), "reason": "x"},
    ),
    (
        OTHER_JUROR,
        "POST",
        lambda w: f"/challenges/{w.other_challenge}/scoring/{w.review_idea}",
        lambda w: {"overall": "Great", "action": "submit"},
    ),
    (
        ADMIN_B,
        "POST",
        lambda w: f"/challenges/{w.other_challenge}/partners/{w.org_b_id}/interest",
        lambda w: {"message": "to ourselves"},
    ),
]


# --- the app's routes -----------------------------------------------------------------------------------------


def app_routes(app: Litestar) -> set[tuple[str, str]]:
    """Every (method, path) the app answers, without the OPTIONS answers Litestar adds to every path."""
    return {
        (method, route.path)
        for route in app.routes
        for handler in getattr(route, "route_handlers", [])
        for method in handler.http_methods
        if method != "OPTIONS"
    }


def test_every_route_is_in_the_table(tmp_path: Path) -> None:
    settings = Settings(env="test", data_dir=tmp_path, secret_key=SECRET,
                        database_url=f"sqlite+aiosqlite:///{tmp_path / 'unused.sqlite3'}")  # fmt: skip
    routes = app_routes(create_app(settings))
    assert len(routes) > 100
    missing = sorted(routes - set(ROUTES))
    stale = sorted(set(ROUTES) - routes)
    assert not missing, f"routes with no entry in the authorisation sweep (add how to ask them): {missing}"
    assert not stale, f"entries for routes the app no longer has: {stale}"


def url_of(template: str, params: dict[str, Any]) -> str:
    return re.sub(r"\{(\w+):\w+\}", lambda m: str(params[m.group(1)]), template)


# --- the world ------------------------------------------------------------------------------------------------


@pytest.fixture
def app(backend: Backend, clock: FixedClock, embedder: Embedder) -> Litestar:
    """The app without the periodic phase announcer, whose writes would look like a refused request's."""
    settings = backend.settings.model_copy(update={"phase_check_seconds": 0})
    return create_app(settings, clock=clock, embedder=embedder)


async def arrange(db: AsyncSession, now: datetime) -> World:
    users = {who: await make_user(db, email, who.replace("_", " ").title()) for who, email in EMAILS.items()}
    users[SUPERUSER].is_superuser = True
    await db.commit()
    ids = {who: u.id for who, u in users.items()}
    org_a = await make_organisation(db, users[ADMIN_A], "Ville de Rennes")
    await add_member(db, org_a, users[MODERATOR_A], Role.MODERATOR)
    org_b = await make_organisation(db, users[ADMIN_B], "Stadt Frankfurt", country="DE")
    org_b.organisation.kind = OrganisationKind.CITY
    db.add(PartnerProfile(organisation_id=org_b.organisation.id, listed=True, offers="Food logistics",
                          seeks="Markets", contact_name="Frank", contact_email="frank@frankfurt.example.org"))  # fmt: skip
    org_a_slug, org_b_slug, org_b_id = org_a.organisation.slug, org_b.organisation.slug, org_b.organisation.id

    submission = await make_challenge(db, org_a, now, Phase.SUBMISSION, open_to_partners=True)
    draft = await make_challenge(db, org_a, now, Phase.SUBMISSION, publish=False)
    other = await make_challenge(db, org_b, now, Phase.SUBMISSION)
    await add_juror(db, other, users[OTHER_JUROR])
    sub_id, draft_id, other_id = submission.id, draft.id, other.id

    idea = await make_idea(db, submission, users[AUTHOR], now, title="Share unsold bread")
    other_idea = await make_idea(db, submission, users[OTHER_AUTHOR], now + timedelta(minutes=1),
                                 title="Compost in every district")  # fmt: skip
    hidden = await make_idea(db, submission, users[AUTHOR], now + timedelta(minutes=2), title="Repair cafés")
    third = await make_idea(
        db, submission, users[OTHER_AUTHOR], now + timedelta(minutes=3), title="Seed library"
    )
    merged = await make_idea(
        db, submission, users[AUTHOR], now + timedelta(minutes=4), title="Fridge sharing"
    )
    idea_id, other_id_idea, hidden_id, third_id, merged_id = (
        idea.id,
        other_idea.id,
        hidden.id,
        third.id,
        merged.id,
    )
    await db.execute(update(Idea).where(Idea.id == hidden_id).values(status=IdeaStatus.HIDDEN,
                                                                     status_reason="Off topic"))  # fmt: skip
    comment = Comment(idea_id=idea_id, author_id=ids[AUTHOR], body="My own comment")
    hidden_comment = Comment(idea_id=hidden_id, author_id=ids[AUTHOR], body="On my hidden idea")
    db.add_all([comment, hidden_comment])
    await db.flush()
    report = Report(challenge_id=sub_id, idea_id=idea_id, reporter_id=ids[CITIZEN], reason="Spam?")
    db.add(report)
    db.add_all([
        CoAuthor(idea_id=idea_id, user_id=ids[EXPERT], status=CoAuthorStatus.INVITED),
        CoAuthor(idea_id=idea_id, user_id=ids[CITIZEN], status=CoAuthorStatus.REQUESTED, message="Let me in"),
    ])  # fmt: skip
    db.add(ExpertProfile(user_id=ids[EXPERT], expertise="Food waste and urban markets", keywords="food,markets",
                         languages="en", country="FR", capacity=5, available=True))  # fmt: skip
    conflict = ExpertConflict(expert_user_id=ids[EXPERT], organisation_id=org_b_id, note="I worked there")
    assignment = ExpertAssignment(challenge_id=sub_id, idea_id=idea_id, expert_user_id=ids[EXPERT],
                                  status=AssignmentStatus.SUGGESTED, affinity=0.4, reason="food")  # fmt: skip
    interest = PartnerInterest(challenge_id=sub_id, partner_organisation_id=org_b_id, status=InterestStatus.SENT,
                               message="Interested?", sent_by_id=ids[ADMIN_A])  # fmt: skip
    db.add_all([conflict, assignment, interest])
    await db.commit()
    report_id, comment_id, hidden_comment_id = report.id, comment.id, hidden_comment.id
    conflict_id, assignment_id, interest_id = conflict.id, assignment.id, interest.id

    # A's challenge in review: ideas submitted 25 days ago, shortlisted, one juror assigned.
    then = now - 25 * DAY
    review = await make_challenge(db, org_a, then, Phase.SUBMISSION)
    review_id = review.id
    r1 = await make_idea(db, review, users[AUTHOR], then, title="Bread for food banks")
    r2 = await make_idea(db, review, users[OTHER_AUTHOR], then + timedelta(minutes=1), title="Tool library")
    r1_id, r2_id = r1.id, r2.id
    db.add_all([ShortlistEntry(challenge_id=review_id, idea_id=r1_id, added_by_id=ids[ADMIN_A]),
                ShortlistEntry(challenge_id=review_id, idea_id=r2_id, added_by_id=ids[ADMIN_A]),
                ChallengeJuror(challenge_id=review_id, user_id=ids[JUROR])])  # fmt: skip
    await db.flush()
    jury_assignment = JuryAssignment(challenge_id=review_id, idea_id=r1_id, juror_user_id=ids[JUROR])
    db.add_all([jury_assignment, JurorConflict(challenge_id=review_id, juror_user_id=ids[JUROR], idea_id=r2_id,
                                               reason="My neighbour")])  # fmt: skip
    await db.commit()
    jury_assignment_id = jury_assignment.id
    review_challenge = await db.get(Challenge, review_id)
    assert review_challenge is not None
    await invite_juror(db, review_challenge, users[ADMIN_A], "invited@example.org", now)
    jury_invitation = await db.scalar(
        select(JuryInvitation.id).where(JuryInvitation.challenge_id == review_id)
    )
    assert jury_invitation is not None
    _invitation, org_token = await invite_member(db, org_a.organisation, users[ADMIN_A],
                                                 email="newcomer@example.org", role="admin")  # fmt: skip
    # Merges last: they expire what the session holds.
    pair = await flag_pair(db, idea, other_idea)
    moderator = users[MODERATOR_A]
    fresh = {i.id: i for i in await db.scalars(select(Idea).where(Idea.id.in_([idea_id, other_id_idea, third_id,
                                                                                  merged_id])))}  # fmt: skip
    pending = await propose_merge(db, fresh[third_id], fresh[idea_id], moderator, now, None)
    pending_id = pending.id
    done = await propose_merge(db, fresh[merged_id], fresh[other_id_idea], moderator, now, None,
                               override_reason="The same fridges")  # fmt: skip
    done_id = done.id
    return World(
        users=ids, org_a=org_a_slug, org_b=org_b_slug, org_b_id=org_b_id, submission=sub_id, draft=draft_id,
        review=review_id, other_challenge=other_id, idea=idea_id, other_idea=other_id_idea, hidden_idea=hidden_id,
        comment=comment_id, hidden_comment=hidden_comment_id, report=report_id, pair=pair,
        pending_merge=pending_id, done_merge=done_id, merged_idea=merged_id, expert_assignment=assignment_id,
        expert_conflict=conflict_id, partner_interest=interest_id, org_invitation_token=org_token,
        review_idea=r1_id, review_other_idea=r2_id, jury_assignment=jury_assignment_id,
        jury_invitation=jury_invitation,
    )  # fmt: skip


# --- asking as someone ----------------------------------------------------------------------------------------


@dataclass
class People:
    client: AsyncTestClient[Litestar]
    jars: dict[str, httpx.Cookies] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    async def sign_in_everyone(self) -> None:
        self.client.cookies = httpx.Cookies()
        await self.client.get("/")
        self.jars[ANON] = httpx.Cookies(self.client.cookies)
        for who in SIGNED_IN:
            self.client.cookies = httpx.Cookies()
            await self.client.get("/")
            answer = await login(self.client, EMAILS[who])
            assert answer.status_code == 303, (who, answer.text)
            self.jars[who] = httpx.Cookies(self.client.cookies)
            token = await self.client.post(
                "/api/v1/tokens", json={"email": EMAILS[who], "password": STRONG_PASSWORD}
            )
            assert token.status_code == 201, (who, token.text)
            self.tokens[who] = token.json()["token"]

    async def ask(self, who: str, method: str, url: str, body: dict[str, Any] | None) -> httpx.Response:
        if url.startswith("/api/"):
            self.client.cookies = httpx.Cookies()
            headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who != ANON else {}
            extra: dict[str, Any] = {"json": body} if body is not None else {}
            return await self.client.request(method, url, headers=headers, follow_redirects=False, **extra)
        self.client.cookies = self.jars[who]
        if method == "GET":
            answer = await self.client.get(url, follow_redirects=False)
        else:
            form = dict(body or {}) | {"_csrf_token": str(self.jars[who].get("csrftoken"))}
            answer = await self.client.request(method, url, data=form, follow_redirects=False)
        self.jars[who] = httpx.Cookies(self.client.cookies)
        return answer


async def snapshot(database: Database) -> dict[str, tuple[int, str]]:
    """Every table's row count and a hash of all its rows."""
    found: dict[str, tuple[int, str]] = {}
    async with database.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            rows = (await conn.execute(select(table).order_by(*table.primary_key.columns))).all()
            found[table.name] = (len(rows), hashlib.sha256(repr(rows).encode()).hexdigest())
    return found


def changed(before: dict[str, tuple[int, str]], after: dict[str, tuple[int, str]]) -> list[str]:
    return [name for name in before if before[name] != after.get(name)]


def refusal_problem(who: str, method: str, answer: httpx.Response, case: Case | None) -> str:
    """Empty when ``answer`` is a refusal; otherwise what is wrong with it."""
    status = answer.status_code
    if status in (401, 403, 404):
        return ""
    location = answer.headers.get("location", "")
    if who == ANON and method == "GET" and status == 303 and location.startswith("/login?next="):
        return ""
    if status == 303 and case is not None and case.flash_refusal:
        return ""
    return f"answered {status} {location}".strip()


@pytest.fixture
async def database(backend: Backend) -> AsyncIterator[Database]:
    found = Database(backend.settings.resolved_database_url)
    yield found
    await found.dispose()


async def test_who_lacks_the_right_is_refused_and_changes_nothing(client, db, clock, database):
    w = await arrange(db, clock.now())
    people = People(client)
    await people.sign_in_everyone()
    cases = [(key, case) for key, case in ROUTES.items() if isinstance(case, Case)]

    # The owners first: the ids point at real things they may see.
    wrong_ids = []
    for (method, template), case in cases:
        if method == "GET" and case.owner is not None:
            answer = await people.ask(case.owner, method, url_of(template, case.path(w)), None)
            if answer.status_code != case.owner_status:
                wrong_ids.append(f"{case.owner} {method} {template}: {answer.status_code}")
    assert not wrong_ids, "\n".join(wrong_ids)
    await client.app.state.jobs.drain()  # what the owners' visits scheduled (embeddings) is done

    # The database is compared after every state-changing request with how it was after the previous one
    # (refused GETs in between must not write either: a write of theirs would show at the next comparison).
    failures: list[str] = []
    asked = 0
    last = await snapshot(database)

    async def unchanged(what: str) -> None:
        nonlocal last
        await client.app.state.jobs.drain()
        now = await snapshot(database)
        if tables := changed(last, now):
            failures.append(f"{what} changed: {', '.join(tables)}")
        last = now

    for (method, template), case in cases:
        url = url_of(template, case.path(w))
        for who in case.refused:
            body = case.body(w) if case.body is not None else None
            answer = await people.ask(who, method, url, body)
            asked += 1
            if problem := refusal_problem(who, method, answer, case):
                failures.append(f"{who} {method} {url} ({template}): {problem}")
            if method != "GET":
                await unchanged(f"{who} {method} {url} ({template})")
    for who, method, path, form in CROSS:
        url = path(w)
        answer = await people.ask(who, method, url, form(w))
        asked += 1
        if answer.status_code >= 500:
            failures.append(f"{who} {method} {url} with A's ids: answered {answer.status_code}")
        await unchanged(f"{who} {method} {url} with A's ids")
    await unchanged("the refused GETs")
    assert not failures, f"{len(failures)} of {asked} requests were not refused cleanly:\n" + "\n".join(
        failures
    )

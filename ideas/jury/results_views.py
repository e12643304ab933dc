"""The results page (the organisation's working view, everyone's once published), publishing, and the API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect

from challenges.models import Challenge
from challenges.permissions import Access, Role, can_see_results
from challenges.services import is_admin
from ideaforge.errors import Conflict, Forbidden, ValidationFailed
from ideaforge.i18n import _
from ideaforge.web.auth import signed_in_user
from ideaforge.web.deps import DbSession
from ideaforge.web.deps import request_time as _now
from ideaforge.web.errors import problems
from ideaforge.web.flash import flash
from ideaforge.web.forms import form_values
from ideaforge.web.templating import render
from ideas.jury import calibration
from ideas.jury.results import DEFAULT_WINNERS, Ranking, can_publish_now, publish_results, ranking_for
from ideas.views import challenge_or_404


def not_yet_message() -> str:
    return _("The results are not published yet. The organisers publish them once the jury's review is over.")


async def _results_or_refuse(request: Request[Any, Any, Any], session: DbSession,
                             challenge_id: int) -> tuple[Challenge, Access]:  # fmt: skip
    """The challenge when the visitor may see its results; 404 when they may not see the challenge, 403 (with
    why) before publication."""
    challenge, access = await challenge_or_404(request, session, challenge_id)
    if not can_see_results(access):
        raise Forbidden(not_yet_message())
    return challenge, access


def _page(request: Request[Any, Any, Any], challenge: Challenge, access: Access, ranking: Ranking,
          values: dict[str, str] | None = None, errors: dict[str, str] | None = None,
          status_code: int = 200) -> Response[Any]:  # fmt: skip
    now: datetime = _now(request)
    organiser = is_admin(access)
    eligible = sum(1 for line in ranking.lines if line.rank is not None and line.passed)
    return render(request, "jury/results.html", {
        "challenge": challenge, "ranking": ranking, "organiser": organiser,
        "insider": bool(access.roles & {Role.ADMIN, Role.MODERATOR}),
        "publish_open": organiser and can_publish_now(challenge, now),
        "can_publish": organiser and can_publish_now(challenge, now) and eligible > 0,
        "eligible": eligible, "values": values or {"winners": str(min(DEFAULT_WINNERS, eligible) or 1)},
        "errors": errors or {}, "agreement": calibration.agreement_label,
        "dispute_range": calibration.DISPUTE_RANGE,
    }, status_code=status_code)  # fmt: skip


class ResultsController(Controller):
    include_in_schema = False
    path = "/challenges/{challenge_id:int}/results"

    @get("/", name="results")
    async def page(self, request: Request[Any, Any, Any], db_session: DbSession,
                   challenge_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        challenge, access = await _results_or_refuse(request, db_session, challenge_id)
        return _page(request, challenge, access, await ranking_for(db_session, challenge))

    @post("/publish")
    async def publish(self, request: Request[Any, Any, Any], db_session: DbSession,
                      challenge_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        user = signed_in_user(request)
        challenge, access = await _results_or_refuse(request, db_session, challenge_id)
        if not is_admin(access):
            raise NotFoundException()
        values = await form_values(request, "winners", "confirm")
        errors: dict[str, str] = {}
        raw = values["winners"].strip()
        if not (raw.isascii() and raw.isdecimal()) or len(raw) > 4:
            errors["winners"] = _("Give the number of winners as a whole number.")
        if not values["confirm"]:
            errors["confirm"] = _("Tick the box to confirm: once published, the results cannot be changed.")
        if not errors:
            try:
                await publish_results(db_session, challenge, user, _now(request), int(raw),
                                      request.app.state.notifier)  # fmt: skip
            except ValidationFailed as exc:
                errors = exc.errors
            except Conflict as exc:
                flash(request, exc.message, "error")
                return Redirect(f"/challenges/{challenge_id}/results", status_code=303)
        if errors:
            ranking = await ranking_for(db_session, challenge)
            return _page(request, challenge, access, ranking, values, errors, status_code=422)
        flash(request, _("The results are published. Followers and authors were told."))
        return Redirect(f"/challenges/{challenge_id}/results", status_code=303)


# --- API ----------------------------------------------------------------------------------------------------


class ResultLineOut(msgspec.Struct):
    idea_id: int
    title: str
    rank: int | None
    """Shared by tied ideas; None for an idea no juror scored."""
    raw_score: float | None
    """Weighted mean of the jurors' scores, as a percentage of the scale (0-100)."""
    calibrated_score: float | None
    """The same after removing each juror's leniency and spread (raw for a juror with too few scores)."""
    jurors: int
    passed_minimums: bool
    winner: bool


class ResultsOut(msgspec.Struct):
    challenge_id: int
    published: bool
    published_at: datetime | None
    agreement_raw: float | None
    """Krippendorff's alpha (interval) of the jurors' raw scores: 1 full agreement, 0 chance."""
    agreement_calibrated: float | None
    ranking: list[ResultLineOut]


class ResultsApi(Controller):
    path = "/api/v1/challenges/{challenge_id:int}/results"
    tags = ["jury"]  # noqa: RUF012  # Litestar reads a class attribute

    @get(
        "/",
        summary="The jury's ranking: for everyone once published, before that for the organisation only",
        responses=problems(400, 403, 404),
    )
    async def results(self, request: Request[Any, Any, Any], db_session: DbSession,
                      challenge_id: FromPath[int]) -> ResultsOut:  # fmt: skip
        challenge, _access = await _results_or_refuse(request, db_session, challenge_id)
        ranking = await ranking_for(db_session, challenge)
        return ResultsOut(
            challenge_id=challenge.id, published=challenge.results_published_at is not None,
            published_at=challenge.results_published_at, agreement_raw=_rounded(ranking.alpha_raw),
            agreement_calibrated=_rounded(ranking.alpha_calibrated),
            ranking=[ResultLineOut(line.idea_id, line.title, line.rank, _rounded(line.raw),
                                   _rounded(line.calibrated), line.jurors, line.passed, line.winner)
                     for line in ranking.lines],
        )  # fmt: skip


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)

"""Moderation pages: reporting, the queue, hiding and restoring, and the CSV export."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from challenges.services import is_admin, visible_challenge
from ideaforge.errors import Conflict, Forbidden, ValidationFailed
from ideaforge.i18n import _
from ideaforge.ratelimit import rate_limited
from ideaforge.web.auth import current_user, signed_in_user
from ideaforge.web.deps import DbSession
from ideaforge.web.deps import request_time as _now
from ideaforge.web.flash import flash
from ideaforge.web.forms import form_values
from ideaforge.web.spreadsheet import csv_bytes
from ideaforge.web.templating import render
from ideas.models import Comment, Idea, Report
from ideas.moderation import (
    can_moderate,
    dismiss_report,
    flags,
    queue,
    report,
    set_comment_hidden,
    set_idea_hidden,
)
from ideas.services import visible_idea


async def _moderated_challenge(request: Request[Any, Any, Any], session: DbSession, challenge_id: int) -> Any:
    found = await visible_challenge(session, challenge_id, current_user(request), _now(request))
    if found is None:
        raise NotFoundException()
    if not can_moderate(found[1]):
        raise Forbidden(_("Only the organisation's moderators can do this."))
    return found


class ModerationController(Controller):
    include_in_schema = False

    async def _idea(self, request: Request[Any, Any, Any], session: DbSession, idea_id: int) -> Any:
        found = await visible_idea(session, idea_id, current_user(request), _now(request))
        if found is None:
            raise NotFoundException()
        return found

    async def _comment(self, request: Request[Any, Any, Any], session: DbSession, comment_id: int) -> Any:
        comment = await session.get(Comment, comment_id)
        if comment is None:
            raise NotFoundException()
        return comment, *(await self._idea(request, session, comment.idea_id))

    @post("/ideas/{idea_id:int}/report", guards=[rate_limited("report")])
    async def report_idea(self, request: Request[Any, Any, Any], db_session: DbSession,
                          idea_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        user = signed_in_user(request)
        idea, _challenge, _access = await self._idea(request, db_session, idea_id)
        return await self._report(request, db_session, idea, user, None)

    @post("/comments/{comment_id:int}/report", guards=[rate_limited("report")])
    async def report_comment(self, request: Request[Any, Any, Any], db_session: DbSession,
                             comment_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        user = signed_in_user(request)
        comment, idea, _challenge, _access = await self._comment(request, db_session, comment_id)
        return await self._report(request, db_session, idea, user, comment)

    async def _report(self, request: Request[Any, Any, Any], session: DbSession, idea: Idea, user: Any,
                      comment: Comment | None) -> Response[Any]:  # fmt: skip
        idea_id = idea.id
        try:
            await report(session, idea, user, (await form_values(request, "reason"))["reason"], comment)
        except ValidationFailed as exc:
            flash(request, exc.summary, "error")
        else:
            flash(request, _("Thank you. The moderators will look at your report."))
        return Redirect(f"/ideas/{idea_id}", status_code=303)

    @get("/challenges/{challenge_id:int}/moderation", name="moderation")
    async def moderation(self, request: Request[Any, Any, Any], db_session: DbSession,
                         challenge_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        signed_in_user(request)
        challenge, _access = await _moderated_challenge(request, db_session, challenge_id)
        return render(request, "ideas/moderation.html", {
            "challenge": challenge, "items": await queue(db_session, challenge),
            "flags": await flags(db_session, challenge), "errors": {},
        })  # fmt: skip

    async def _hide(self, request: Request[Any, Any, Any], session: DbSession, hidden: bool, *,
                    idea_id: int | None = None, comment_id: int | None = None) -> Response[Any]:  # fmt: skip
        user = signed_in_user(request)
        reason = (await form_values(request, "reason"))["reason"]
        comment = None
        if comment_id is not None:
            comment, idea, challenge, access = await self._comment(request, session, comment_id)
        else:
            assert idea_id is not None
            idea, challenge, access = await self._idea(request, session, idea_id)
        target_idea, challenge_id = idea.id, challenge.id
        try:
            if comment is not None:
                await set_comment_hidden(session, access, comment, user, hidden, reason, _now(request))
            else:
                await set_idea_hidden(session, access, idea, user, hidden, reason, _now(request))
        except (ValidationFailed, Conflict) as exc:
            message = exc.summary if isinstance(exc, ValidationFailed) else exc.message
            flash(request, message, "error")
        else:
            flash(request, _("Hidden: the author sees your reason.") if hidden else _("Restored."))
        back = request.headers.get("referer", "")
        return Redirect(f"/challenges/{challenge_id}/moderation" if "/moderation" in back else f"/ideas/{target_idea}",
                        status_code=303)  # fmt: skip

    @post("/ideas/{idea_id:int}/hide")
    async def hide_idea(self, request: Request[Any, Any, Any], db_session: DbSession,
                        idea_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        return await self._hide(request, db_session, True, idea_id=idea_id)

    @post("/ideas/{idea_id:int}/restore")
    async def restore_idea(self, request: Request[Any, Any, Any], db_session: DbSession,
                           idea_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        return await self._hide(request, db_session, False, idea_id=idea_id)

    @post("/comments/{comment_id:int}/hide")
    async def hide_comment(self, request: Request[Any, Any, Any], db_session: DbSession,
                           comment_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        return await self._hide(request, db_session, True, comment_id=comment_id)

    @post("/comments/{comment_id:int}/restore")
    async def restore_comment(self, request: Request[Any, Any, Any], db_session: DbSession,
                              comment_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        return await self._hide(request, db_session, False, comment_id=comment_id)

    @post("/reports/{report_id:int}/dismiss")
    async def dismiss(self, request: Request[Any, Any, Any], db_session: DbSession,
                      report_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        user = signed_in_user(request)
        item = await db_session.get(Report, report_id)
        if item is None:
            raise NotFoundException()
        challenge_id = item.challenge_id
        _challenge, access = await _moderated_challenge(request, db_session, challenge_id)
        await dismiss_report(db_session, access, item, user, _now(request))
        flash(request, _("The report is dismissed."))
        return Redirect(f"/challenges/{challenge_id}/moderation", status_code=303)

    @get("/challenges/{challenge_id:int}/export.csv")
    async def export(self, request: Request[Any, Any, Any], db_session: DbSession,
                     challenge_id: FromPath[int]) -> Response[bytes]:  # fmt: skip
        signed_in_user(request)
        found = await visible_challenge(db_session, challenge_id, current_user(request), _now(request))
        if found is None:
            raise NotFoundException()
        if not is_admin(found[1]):
            raise Forbidden(_("Only the organisation's owners and admins can export its ideas."))
        comments = (select(Comment.idea_id, func.count().label("n")).where(Comment.deleted_at.is_(None))
                    .group_by(Comment.idea_id).subquery())  # fmt: skip
        rows = (await db_session.execute(
            select(Idea, func.coalesce(comments.c.n, 0)).outerjoin(comments, comments.c.idea_id == Idea.id)
            .where(Idea.challenge_id == challenge_id).options(selectinload(Idea.author))
            .order_by(Idea.vote_count.desc(), Idea.id)
        )).all()  # fmt: skip
        base = request.app.state.settings.base_url.rstrip("/")
        body = csv_bytes(
            ["id", "title", "author", "author_email", "language", "status", "votes", "comments", "created_at", "url"],
            ([idea.id, idea.title, idea.author.display_name, idea.author.email, idea.language, idea.status.value,
              idea.vote_count, n_comments, idea.created_at.isoformat(), f"{base}/ideas/{idea.id}"]
             for idea, n_comments in rows),
        )  # fmt: skip
        return Response(body, media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="challenge-{challenge_id}-ideas.csv"'})  # fmt: skip

"""The notifications page, marking news read, and following challenges and ideas."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.response import Redirect

from ideaforge.db import parse_id
from ideaforge.i18n import _
from ideaforge.notifications.services import FOLLOWABLE, mark_all_read, recent, set_following
from ideaforge.web.auth import login_required, signed_in_user
from ideaforge.web.deps import DbSession, request_time
from ideaforge.web.flash import flash
from ideaforge.web.forms import form_values, safe_next
from ideaforge.web.templating import render


class NotificationController(Controller):
    include_in_schema = False

    @get("/notifications", name="notifications", guards=[login_required])
    async def listing(self, request: Request[Any, Any, Any], db_session: DbSession) -> Response[Any]:
        user = signed_in_user(request)
        return render(
            request, "notifications/list.html", {"notifications": await recent(db_session, user.id)}
        )

    @post("/notifications/read", guards=[login_required])
    async def read(self, request: Request[Any, Any, Any], db_session: DbSession) -> Response[Any]:
        user = signed_in_user(request)
        await mark_all_read(db_session, user.id, request_time(request))
        return Redirect("/notifications", status_code=303)

    @post("/follow", guards=[login_required])
    async def follow(self, request: Request[Any, Any, Any], db_session: DbSession) -> Response[Any]:
        """Follow or unfollow a challenge or an idea the user can see."""
        user = signed_in_user(request)
        values = await form_values(request, "target_type", "target_id", "action", "next")
        kind, target = values["target_type"], values["target_id"]
        visible = request.app.state.follow_targets.get(kind) if kind in FOLLOWABLE else None
        target_id = parse_id(target)
        if visible is None or target_id is None:
            raise NotFoundException()
        if not await visible(db_session, target_id, user, request_time(request)):
            raise NotFoundException()
        following = values["action"] != "unfollow"
        await set_following(db_session, user, kind, target_id, following)
        flash(request, _("You will be notified of news.") if following else _("You no longer follow this."))
        return Redirect(safe_next(values["next"]), status_code=303)

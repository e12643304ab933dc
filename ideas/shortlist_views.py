"""The organisers' shortlist page: the ideas by votes with their expert comments, adding and removing."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect
from sqlalchemy.ext.asyncio import AsyncSession

from challenges.models import Challenge
from challenges.permissions import can_shortlist
from challenges.services import visible_challenge
from ideaforge.errors import Conflict, Forbidden
from ideaforge.i18n import _
from ideaforge.web.auth import current_user, signed_in_user
from ideaforge.web.deps import DbSession
from ideaforge.web.deps import request_time as _now
from ideaforge.web.flash import flash
from ideaforge.web.forms import form_values, page_number, posted_id
from ideaforge.web.templating import render
from ideas.shortlist import (
    PAGE_SIZE,
    add_to_shortlist,
    can_manage_shortlist,
    candidates,
    is_locked,
    locked_message,
    remove_from_shortlist,
    shortlist_of,
)


def _page(challenge_id: int, page: str = "") -> str:
    number = page_number(page)
    return f"/challenges/{challenge_id}/shortlist" + (f"?page={number}" if number > 1 else "")


async def _organised(request: Request[Any, Any, Any], session: AsyncSession, challenge_id: int) -> tuple[Challenge, bool]:  # fmt: skip
    """The challenge and whether the shortlist may change now, for its owners and admins; a 404 for
    everyone else (the working list is not theirs to see)."""
    found = await visible_challenge(session, challenge_id, current_user(request), _now(request))
    if found is None or not can_manage_shortlist(found[1]):
        raise NotFoundException()
    return found[0], can_shortlist(found[1])


class ShortlistController(Controller):
    include_in_schema = False
    path = "/challenges/{challenge_id:int}/shortlist"

    @get("/", name="shortlist")
    async def page(self, request: Request[Any, Any, Any], db_session: DbSession, challenge_id: FromPath[int],
                   page: FromQuery[str | None] = None) -> Response[Any]:  # fmt: skip
        signed_in_user(request)
        challenge, open_now = await _organised(request, db_session, challenge_id)
        number = page_number(page)
        rows, total = await candidates(db_session, challenge_id, number)
        chosen = await shortlist_of(db_session, challenge_id)
        locked = is_locked(challenge, _now(request))
        return render(request, "ideas/shortlist.html", {
            "challenge": challenge, "candidates": rows, "total": total, "page": number,
            "pages": max(1, math.ceil(total / PAGE_SIZE)), "shortlist": chosen,
            "size": challenge.shortlist_size, "full": len(chosen) >= challenge.shortlist_size,
            "locked": locked, "locked_message": locked_message(challenge) if locked else "",
            "editable": open_now and not locked,
        })  # fmt: skip

    @post("/add")
    async def add(self, request: Request[Any, Any, Any], db_session: DbSession,
                  challenge_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        return await _change(request, db_session, challenge_id, add_to_shortlist,
                             lambda: _("The idea is on the shortlist. Its authors were told."))  # fmt: skip

    @post("/remove")
    async def remove(self, request: Request[Any, Any, Any], db_session: DbSession,
                     challenge_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        return await _change(request, db_session, challenge_id, remove_from_shortlist,
                             lambda: _("The idea is off the shortlist. Its authors were told."))  # fmt: skip


async def _change(request: Request[Any, Any, Any], session: DbSession, challenge_id: int,
                  service: Callable[..., Awaitable[Any]], done: Callable[[], str]) -> Response[Any]:  # fmt: skip
    """Add or remove the posted idea with ``service``; a refusal is flashed, the page shown again."""
    user = signed_in_user(request)
    challenge, _open = await _organised(request, session, challenge_id)
    values = await form_values(request, "idea", "page")
    try:
        await service(session, challenge, posted_id(values["idea"]), user, _now(request),
                      request.app.state.notifier)  # fmt: skip
    except LookupError:
        raise NotFoundException() from None
    except (Conflict, Forbidden) as exc:
        flash(request, exc.message, "error")
    else:
        flash(request, done())
    return Redirect(_page(challenge_id, values["page"]), status_code=303)

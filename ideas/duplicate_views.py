"""Duplicate pages: the moderators' queue of suspected duplicates, merging (with the author's consent
or a written reason), the consent page, and undoing a merge."""

from __future__ import annotations

import math
from typing import Any

from babel.numbers import format_percent
from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from challenges.models import Challenge
from challenges.permissions import Access
from challenges.services import access_for, get_challenge, visible_challenge
from ideaforge.accounts.models import User
from ideaforge.errors import Conflict, Forbidden, ValidationFailed
from ideaforge.i18n import _, get_locale
from ideaforge.web.auth import current_user, signed_in_user
from ideaforge.web.deps import DbSession
from ideaforge.web.deps import request_time as _now
from ideaforge.web.flash import flash
from ideaforge.web.forms import form_values, page_number
from ideaforge.web.templating import render
from ideas.merges import (
    QUEUE_PAGE_SIZE,
    default_survivor,
    dismiss_pair,
    done_merge_of,
    open_pairs,
    propose_merge,
    recent_merges,
    unmerge,
)
from ideas.merges import consent_to_merge as consent
from ideas.models import DuplicatePair, Idea, Merge, MergeStatus
from ideas.moderation import can_moderate


async def _moderated(request: Request[Any, Any, Any], session: AsyncSession, challenge_id: int) -> Challenge:
    """The challenge, for its moderators and admins; a 404 for everyone else (the queue is not theirs to see)."""
    found = await visible_challenge(session, challenge_id, current_user(request), _now(request))
    if found is None or not can_moderate(found[1]):
        raise NotFoundException()
    challenge: Challenge = found[0]
    return challenge


async def _pair(request: Request[Any, Any, Any], session: AsyncSession, pair_id: int) -> DuplicatePair:
    pair = await session.get(DuplicatePair, pair_id)
    if pair is None:
        raise NotFoundException()
    await _moderated(request, session, pair.challenge_id)
    return pair


async def _ideas(session: AsyncSession, *ids: int) -> list[Idea]:
    found = {i.id: i for i in await session.scalars(
        select(Idea).where(Idea.id.in_(ids)).options(selectinload(Idea.author)))}  # fmt: skip
    return [found[i] for i in ids]


def _probability(value: float) -> str:
    return _("Scorer's estimate that they are duplicates: %(percent)s",
             percent=format_percent(value, locale=get_locale()))  # fmt: skip


def _queue(challenge_id: int) -> str:
    return f"/challenges/{challenge_id}/moderation/duplicates"


class DuplicateController(Controller):
    include_in_schema = False

    @get("/challenges/{challenge_id:int}/moderation/duplicates", name="duplicates")
    async def queue(self, request: Request[Any, Any, Any], db_session: DbSession, challenge_id: FromPath[int],
                    page: FromQuery[str | None] = None) -> Response[Any]:  # fmt: skip
        signed_in_user(request)
        challenge = await _moderated(request, db_session, challenge_id)
        number = page_number(page)
        pairs, total = await open_pairs(db_session, challenge_id, page=number)
        return render(request, "ideas/duplicates.html", {
            "challenge": challenge, "pairs": pairs, "total": total, "page": number,
            "pages": max(1, math.ceil(total / QUEUE_PAGE_SIZE)),
            "labels": {p.pair.id: _probability(p.pair.probability) for p in pairs},
            "merges": await recent_merges(db_session, challenge_id),
        })  # fmt: skip

    @post("/duplicates/{pair_id:int}/dismiss")
    async def dismiss(self, request: Request[Any, Any, Any], db_session: DbSession,
                      pair_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        user = signed_in_user(request)
        pair = await _pair(request, db_session, pair_id)
        challenge_id = pair.challenge_id
        try:
            await dismiss_pair(db_session, pair, user, _now(request))
        except Conflict as exc:
            flash(request, exc.message, "error")
        else:
            flash(request, _("Marked as not duplicates: this pair will not be suggested again."))
        return Redirect(_queue(challenge_id), status_code=303)

    async def _merge_form(self, request: Request[Any, Any, Any], session: AsyncSession, pair: DuplicatePair,
                          values: dict[str, str], errors: dict[str, str], status_code: int = 200) -> Response[Any]:  # fmt: skip
        newer, older = await _ideas(session, pair.idea_id, pair.existing_id)
        challenge = await get_challenge(session, pair.challenge_id)
        return render(request, "ideas/merge_form.html", {
            "challenge": challenge, "pair": pair, "ideas": [older, newer], "values": values, "errors": errors,
            "label": _probability(pair.probability),
        }, status_code=status_code)  # fmt: skip

    @get("/duplicates/{pair_id:int}/merge")
    async def merge_form(self, request: Request[Any, Any, Any], db_session: DbSession,
                         pair_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        signed_in_user(request)
        pair = await _pair(request, db_session, pair_id)
        newer, older = await _ideas(db_session, pair.idea_id, pair.existing_id)
        values = {"surviving": str(default_survivor(newer, older).id), "override_reason": ""}
        return await self._merge_form(request, db_session, pair, values, {})

    @post("/duplicates/{pair_id:int}/merge")
    async def merge(self, request: Request[Any, Any, Any], db_session: DbSession,
                    pair_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        user = signed_in_user(request)
        pair = await _pair(request, db_session, pair_id)
        challenge_id, ids = pair.challenge_id, (pair.idea_id, pair.existing_id)
        values = await form_values(request, "surviving", "override_reason")
        try:
            if values["surviving"] not in {str(i) for i in ids}:
                raise ValidationFailed({"surviving": _("Choose which of the two ideas stays.")})
            surviving_id = int(values["surviving"])
            absorbed_id = ids[0] if ids[1] == surviving_id else ids[1]
            absorbed, surviving = await _ideas(db_session, absorbed_id, surviving_id)
            merge = await propose_merge(db_session, absorbed, surviving, user, _now(request),
                                        request.app.state.notifier, override_reason=values["override_reason"])  # fmt: skip
        except ValidationFailed as exc:
            return await self._merge_form(request, db_session, pair, values, exc.errors, status_code=422)
        except Conflict as exc:
            flash(request, exc.message, "error")
            return Redirect(_queue(challenge_id), status_code=303)
        if merge.status is MergeStatus.DONE:
            flash(request, _("The ideas are merged. Every voter counts once on the idea that stays."))
        else:
            flash(
                request,
                _("The author of the absorbed idea is asked to consent. The merge happens when they accept."),
            )
        return Redirect(_queue(challenge_id), status_code=303)


class MergeController(Controller):
    include_in_schema = False

    async def _merge(self, request: Request[Any, Any, Any], session: AsyncSession,
                     merge_id: int) -> tuple[Merge, Idea, Idea, Challenge, Access, User]:  # fmt: skip
        """The merge, for the absorbed idea's author and the challenge's moderators; a 404 for others."""
        user = signed_in_user(request)
        merge = await session.get(Merge, merge_id)
        if merge is None:
            raise NotFoundException()
        absorbed, surviving = await _ideas(session, merge.absorbed_id, merge.surviving_id)
        challenge = await get_challenge(session, merge.challenge_id)
        assert challenge is not None
        access = await access_for(session, challenge, user, _now(request))
        if absorbed.author_id != user.id and not can_moderate(access):
            raise NotFoundException()
        return merge, absorbed, surviving, challenge, access, user

    @get("/merges/{merge_id:int}", name="merge")
    async def detail(self, request: Request[Any, Any, Any], db_session: DbSession,
                     merge_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        merge, absorbed, surviving, challenge, access, user = await self._merge(request, db_session, merge_id)
        return render(request, "ideas/merge.html", {
            "merge": merge, "absorbed": absorbed, "surviving": surviving, "challenge": challenge,
            "is_author": absorbed.author_id == user.id, "can_moderate": can_moderate(access),
        })  # fmt: skip

    @post("/merges/{merge_id:int}/consent")
    async def consent(self, request: Request[Any, Any, Any], db_session: DbSession,
                      merge_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        merge, absorbed, _surviving, _challenge, _access, user = await self._merge(
            request, db_session, merge_id
        )
        absorbed_id, surviving_id = absorbed.id, merge.surviving_id
        decision = (await form_values(request, "decision"))["decision"]
        if decision not in ("accept", "decline"):
            flash(request, _("Choose to accept or to decline."), "error")
            return Redirect(f"/merges/{merge_id}", status_code=303)
        try:
            await consent(
                db_session, merge, user, _now(request), request.app.state.notifier, decision == "accept"
            )
        except (Conflict, Forbidden) as exc:
            flash(request, exc.message, "error")
            return Redirect(f"/merges/{merge_id}", status_code=303)
        if decision == "accept":
            flash(
                request,
                _("Thank you: your idea is merged, and you are now a co-author of the idea that stays."),
            )
            return Redirect(f"/ideas/{surviving_id}", status_code=303)
        flash(request, _("You declined: your idea stays as it is."))
        return Redirect(f"/ideas/{absorbed_id}", status_code=303)

    @post("/merges/{merge_id:int}/undo")
    async def undo(self, request: Request[Any, Any, Any], db_session: DbSession,
                   merge_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        merge, absorbed, _surviving, _challenge, access, user = await self._merge(
            request, db_session, merge_id
        )
        absorbed_id = absorbed.id
        if not can_moderate(access):
            raise NotFoundException()
        try:
            missed = await unmerge(db_session, merge, user, _now(request), request.app.state.notifier)
        except Conflict as exc:
            flash(request, exc.message, "error")
            return Redirect(f"/merges/{merge_id}", status_code=303)
        flash(request, _("The merge is undone: both ideas stand apart again, with their votes."))
        if missed:
            flash(request, _("Some votes could not be restored: their voters took them back or used them "
                             "elsewhere since. The audit log lists them."), "error")  # fmt: skip
        return Redirect(f"/ideas/{absorbed_id}", status_code=303)

    @get("/ideas/{idea_id:int}/merge")
    async def of_idea(self, request: Request[Any, Any, Any], db_session: DbSession,
                      idea_id: FromPath[int]) -> Response[Any]:  # fmt: skip
        """From a merged idea's page to the merge that absorbed it (where moderators can undo it)."""
        signed_in_user(request)
        merge = await done_merge_of(db_session, idea_id)
        if merge is None:
            raise NotFoundException()
        merge_id = merge.id
        await self._merge(request, db_session, merge_id)
        return Redirect(f"/merges/{merge_id}", status_code=303)

"""/admin/jobs: the failed background jobs, for superusers (everyone else gets a 404)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.response import Redirect

from ideaforge.accounts.models import User
from ideaforge.i18n import _
from ideaforge.jobs import RedisJobs
from ideaforge.web.auth import current_user
from ideaforge.web.flash import flash
from ideaforge.web.forms import form_values
from ideaforge.web.templating import render

PATH = "/admin/jobs"


def _superuser(request: Request[Any, Any, Any]) -> User:
    user = current_user(request)
    if user is None or not user.is_superuser:
        raise NotFoundException()
    return user


class JobsAdminController(Controller):
    include_in_schema = False
    path = PATH

    @get("/", name="admin_jobs")
    async def listing(self, request: Request[Any, Any, Any]) -> Response[Any]:
        _superuser(request)
        jobs = request.app.state.jobs
        queued = isinstance(jobs, RedisJobs)
        context = {
            "queued": queued,
            "counts": await jobs.counts() if queued else {},
            "failed": await jobs.failed() if queued else [],
        }
        return render(request, "admin/jobs.html", context)

    @post("/retry")
    async def retry(self, request: Request[Any, Any, Any]) -> Response[Any]:
        _superuser(request)
        jobs = request.app.state.jobs
        if not isinstance(jobs, RedisJobs):
            raise NotFoundException()
        values = await form_values(request, "job")
        if await jobs.retry(values["job"]):
            flash(request, _("The job is back in the queue."))
        else:
            flash(request, _("This job is no longer among the failed ones."), "error")
        return Redirect(PATH, status_code=303)

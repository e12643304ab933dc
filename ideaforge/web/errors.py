"""Turn exceptions into answers: RFC 9457 problem details on the API, friendly pages elsewhere."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import msgspec
import structlog
from litestar import MediaType, Request, Response
from litestar.exceptions import ClientException, HTTPException, NotAuthorizedException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.response import Redirect
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from ideaforge import i18n
from ideaforge.errors import (
    Conflict,
    Forbidden,
    InvalidCredentials,
    TooManyAttempts,
    UnstorableText,
    ValidationFailed,
)
from ideaforge.i18n import _
from ideaforge.web.auth import is_api
from ideaforge.web.locale import choose_locale
from ideaforge.web.templating import render

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"
# Answers to what a user did; anything else is our bug and is logged with its traceback.
EXPECTED = (
    HTTPException,
    ValidationFailed,
    Forbidden,
    Conflict,
    TooManyAttempts,
    InvalidCredentials,
    UnstorableText,
)
CSRF_FAILURE = "CSRF token verification failed"


class FieldProblem(msgspec.Struct):
    field: str
    message: str


class Problem(msgspec.Struct):
    """RFC 9457 problem details: how the API answers every error (``detail`` and ``errors`` when known)."""

    type: str
    title: str
    status: int
    detail: str = ""
    errors: list[FieldProblem] = msgspec.field(default_factory=list)


# What each error status of the API means, for the OpenAPI document (English, like the summaries).
_MEANINGS = {
    400: "The request is malformed: its body is not JSON, or a text holds a NUL character",
    401: "No valid bearer token, or wrong email or password",
    403: "The caller may not do this",
    404: "No such resource, or the caller may not see it",
    409: "Not possible in the current state (phase of the challenge, vote budget...)",
    422: "Some fields are missing or not valid; `errors` names them",
    429: "Too many attempts; `Retry-After` says when to try again",
}


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    """The ``responses`` of an API route: the problem details it may answer with, besides success."""
    return {
        status: ResponseSpec(
            data_container=Problem,
            description=_MEANINGS[status],
            media_type=PROBLEM_JSON,
            generate_examples=False,
        )
        for status in statuses
    }


def problem(status: int, title: str, detail: str | None = None, **extra: Any) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    return Response(body, status_code=status, media_type=PROBLEM_JSON)


def _titles() -> dict[int, str]:
    return {
        400: _("Bad request"),
        401: _("Authentication required"),
        403: _("Forbidden"),
        404: _("Not found"),
        405: _("Method not allowed"),
        409: _("Conflict"),
        413: _("Request too large"),
        422: _("Invalid data"),
        429: _("Too many requests"),
        500: _("Something went wrong"),
        503: _("Service unavailable"),
    }


def _api_answer(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    titles = _titles()
    if isinstance(exc, ValidationFailed):
        errors = [{"field": field, "message": message} for field, message in exc.errors.items()]
        return problem(422, titles[422], _("Some fields are not valid."), errors=errors)
    if isinstance(exc, Forbidden):
        return problem(403, titles[403], exc.message)
    if isinstance(exc, Conflict):
        return problem(409, titles[409], exc.message)
    if isinstance(exc, InvalidCredentials):
        response = problem(401, titles[401], _("Wrong email or password."))
        response.headers["WWW-Authenticate"] = "Bearer"
        return response
    if isinstance(exc, UnstorableText):
        return problem(400, titles[400])
    if isinstance(exc, TooManyAttempts):
        response = problem(429, titles[429], exc.message)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    if isinstance(exc, ValidationException):
        errors = [
            {"field": str(e.get("key", "")), "message": str(e.get("message", ""))}
            for e in (exc.extra if isinstance(exc.extra, list) else [])
            if isinstance(e, dict)
        ]
        return problem(422, titles[422], _("Some fields are missing or have the wrong type."), errors=errors)
    if isinstance(exc, ClientException) and exc.status_code == 400 and "json" in request.content_type[0]:
        # msgspec's decode errors ("Input data was truncated"...) reach here as a bare 400.
        return problem(400, titles[400], _("The request body is not valid JSON."))
    if isinstance(exc, HTTPException):
        status = exc.status_code
        detail = _("Send a valid bearer token in the Authorization header.") if status == 401 else None
        response = problem(status, titles.get(status, str(exc.detail)), detail)
        if status == 401:
            response.headers["WWW-Authenticate"] = "Bearer"
        return response
    return problem(500, titles[500])


def _page_answer(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if isinstance(exc, NotAuthorizedException) and request.method in ("GET", "HEAD"):
        return Redirect(f"/login?next={quote(request.url.path)}", status_code=303)
    status = HTTP_500_INTERNAL_SERVER_ERROR
    message = ""
    if isinstance(exc, Forbidden):
        status, message = 403, exc.message
    elif isinstance(exc, Conflict):
        status, message = 409, exc.message
    elif isinstance(exc, TooManyAttempts):
        status, message = 429, exc.message
    elif isinstance(exc, ValidationFailed):
        status, message = 422, exc.summary
    elif isinstance(exc, UnstorableText):
        status = 400
    elif isinstance(exc, HTTPException):
        status = exc.status_code
        if status == 403 and exc.detail == CSRF_FAILURE:
            message = _(
                "This form could not be accepted because its security token was missing or out of date. "
                "Go back, reload the page and try again."
            )
        elif status == 401:
            message = _("Please log in to continue.")
    template = f"errors/{status}.html" if status in (403, 404, 500) else "errors/generic.html"
    return render(
        request,
        template,
        {"status": status, "title": _titles().get(status, str(status)), "message": message},
        status_code=status,
    )


def handle_exception(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    # Error answers may be produced outside the locale middleware (a 404 has no route).
    i18n.set_locale(choose_locale(request))
    if not isinstance(exc, EXPECTED):
        # The request body is never logged: it may hold passwords or tokens.
        log.exception("unhandled error", method=request.method, path=request.scope.get("path_template"))
    try:
        return _api_answer(request, exc) if is_api(request.scope) else _page_answer(request, exc)
    except Exception:
        log.exception("error page failed")
        return Response("Internal Server Error", status_code=500, media_type=MediaType.TEXT)

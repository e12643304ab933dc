"""Jinja rendering. htmx requests for a page with a named fragment get just that block."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from jinja2_fragments import render_block
from litestar import Request, Response
from litestar.enums import MediaType
from litestar.utils.empty import value_or_default
from litestar.utils.scope.state import ScopeState

from ideaforge import i18n
from ideaforge.markdown import render_markdown
from ideaforge.settings import REPO_ROOT
from ideaforge.web.flash import pop_flashes

TEMPLATE_DIR = REPO_ROOT / "templates"
HTMX_VERSION = "2.0.11"


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(  # type: ignore[attr-defined]  # added by the i18n extension
        i18n.gettext, i18n.ngettext, newstyle=True
    )
    env.filters["datetime"] = i18n.format_datetime
    env.filters["date"] = i18n.format_date
    env.filters["number"] = i18n.format_number
    env.filters["markdown"] = render_markdown
    env.filters["dict_merge"] = lambda base, extra: {**base, **extra}
    env.filters["lang_name"] = lambda code, names: names.get(code, code)
    env.filters["zone_option"] = lambda zone: (zone, zone.replace("_", " "))
    # The shared macros are globals: a block rendered alone for htmx skips the template's imports.
    macros = env.get_template("_macros.html").module
    env.globals.update({name: getattr(macros, name) for name in dir(macros) if not name.startswith("_")})
    env.globals["LOCALE_NAMES"] = i18n.LOCALE_NAMES
    env.globals["HTMX_VERSION"] = HTMX_VERSION
    return env


def is_htmx(request: Request[Any, Any, Any]) -> bool:
    """Whether to answer a fragment: an htmx request that names its target. A boosted navigation
    (a link or plain form inside ``hx-boost``) names none and gets the whole page; an element with
    its own ``hx-target`` inside a boosted page is marked boosted too, but names its target."""
    if request.headers.get("hx-request") != "true":
        return False
    return request.headers.get("hx-boosted") != "true" or bool(request.headers.get("hx-target"))


def base_context(request: Request[Any, Any, Any]) -> dict[str, Any]:
    user = request.scope.get("user")
    return {
        "request": request,
        "current_user": user,
        "unread_notifications": request.scope.get("unread_notifications", 0),
        "csrf_token": value_or_default(ScopeState.from_scope(request.scope).csrf_token, ""),
        "locale": i18n.get_locale(),
        "flashes": pop_flashes(request),
        "now": datetime.now().astimezone(),
    }


def render(
    request: Request[Any, Any, Any],
    template: str,
    context: dict[str, Any] | None = None,
    *,
    block: str | None = None,
    status_code: int = 200,
) -> Response[str]:
    """Render ``template``; an htmx request gets only ``block`` when the page names one."""
    ctx = base_context(request) | (context or {})
    env = environment()
    if block is not None and is_htmx(request):
        html = render_block(env, template, block, **ctx)
    else:
        html = env.get_template(template).render(**ctx)
    headers = {"Vary": "HX-Request"} if block is not None else {}
    return Response(html, media_type=MediaType.HTML, status_code=status_code, headers=headers)

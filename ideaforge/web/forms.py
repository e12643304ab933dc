"""Reading submitted forms and redirect targets."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.exceptions import NotFoundException

from ideaforge.db import parse_id


async def form_values(request: Request[Any, Any, Any], *fields: str) -> dict[str, str]:
    """The named fields as stripped-of-nothing strings ("" when absent); files are ignored."""
    form = await request.form()
    values: dict[str, str] = {}
    for field in fields:
        value = form.get(field, "")
        values[field] = value if isinstance(value, str) else ""
    return values


def safe_next(target: str | None, default: str = "/") -> str:
    """Only same-site paths: never an open redirect."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return default


def page_number(value: str | None) -> int:
    try:
        return max(1, min(int(value or 1), 10_000))
    except ValueError:
        return 1


def posted_id(raw: str) -> int:
    """An id posted by one of our forms (``ideaforge.db.parse_id``); anything else is a page that does not
    exist (404)."""
    found = parse_id(raw)
    if found is None:
        raise NotFoundException()
    return found

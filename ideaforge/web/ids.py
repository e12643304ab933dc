"""Path ids that no row can have answer 404, rather than failing the query (a 500 on PostgreSQL)."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.exceptions import NotFoundException

from ideaforge.db import possible_id


async def reject_impossible_ids(request: Request[Any, Any, Any]) -> None:
    """The app's ``before_request``: an integer path parameter (always a row id) out of range is a 404."""
    for value in request.path_params.values():
        if isinstance(value, int) and not possible_id(value):
            raise NotFoundException()

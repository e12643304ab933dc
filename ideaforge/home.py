"""The home page."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from sqlalchemy import func, select

from ideaforge.organisations.models import Organisation
from ideaforge.organisations.views import kind_labels
from ideaforge.validation import country_name
from ideaforge.web.deps import DbSession
from ideaforge.web.templating import render


@get("/", name="home", include_in_schema=False)
async def home(request: Request[Any, Any, Any], db_session: DbSession) -> Response[Any]:
    recent = list(
        await db_session.scalars(select(Organisation).order_by(Organisation.created_at.desc()).limit(6))
    )
    countries = await db_session.scalar(select(func.count(func.distinct(Organisation.country)))) or 0
    return render(
        request,
        "home.html",
        {
            "organisations": recent,
            "country_count": countries,
            "kind_labels": kind_labels(),
            "country_name": country_name,
        },
    )

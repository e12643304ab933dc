"""The challenge form: from a challenge to input values, and from a submitted form to raw input."""

from __future__ import annotations

import zoneinfo
from datetime import datetime, timedelta
from typing import Any

from litestar import Request

from challenges.inputs import CRITERION_FIELDS, DATE_FIELDS, MAX_CRITERIA, default_timezone
from challenges.models import Challenge
from challenges.services import as_raw

TEXT_FIELDS = (
    "title", "summary", "description", "tags", "country", "region", "timezone", "visibility", "reward",
    "votes_per_user", "who_may_submit", "edit_window_hours", "shortlist_size", "jurors_per_idea",
    *DATE_FIELDS,
)  # fmt: skip
FLAG_FIELDS = ("open_to_partners", "authors_may_vote_own", "blind_review")
BLANK_CRITERIA = 2


def _local(moment: datetime | None, zone: str) -> str:
    """A ``datetime-local`` value in the challenge's time zone."""
    if moment is None:
        return ""
    return moment.astimezone(zoneinfo.ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M")


def values_of(challenge: Challenge) -> dict[str, Any]:
    raw = as_raw(challenge)
    values: dict[str, Any] = {
        k: ("" if raw[k] is None else str(raw[k])) for k in TEXT_FIELDS if k not in DATE_FIELDS
    }
    values |= {k: _local(raw[k], challenge.timezone) for k in DATE_FIELDS}
    values |= {k: bool(raw[k]) for k in FLAG_FIELDS}
    values["tags"] = ", ".join(raw["tags"])
    values["languages"] = raw["languages"]
    values["criteria"] = [{k: "" if v is None else str(v) for k, v in row.items()} for row in raw["criteria"]]
    return values


def defaults(country: str, now: datetime) -> dict[str, Any]:
    """A sensible schedule to start from: four weeks of ideas, two of voting, two of review."""
    zone = default_timezone(country)
    local = now.astimezone(zoneinfo.ZoneInfo(zone))
    start = (local + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
    dates = {
        "submission_starts_at": start,
        "submission_ends_at": start + timedelta(days=28),
        "voting_starts_at": start + timedelta(days=28),
        "voting_ends_at": start + timedelta(days=42),
        "review_ends_at": start + timedelta(days=56),
        "results_ends_at": start + timedelta(days=90),
    }
    return {
        "country": country, "timezone": zone, "visibility": "public", "who_may_submit": "signed_in",
        "edit_window_hours": "24", "shortlist_size": "10", "jurors_per_idea": "3", "languages": ["fr", "en"],
        "criteria": [], **{k: v.strftime("%Y-%m-%dT%H:%M") for k, v in dates.items()},
    }  # fmt: skip


def with_blank_criteria(values: dict[str, Any]) -> list[dict[str, str]]:
    rows = list(values.get("criteria") or [])
    blanks = max(0, min(BLANK_CRITERIA, MAX_CRITERIA - len(rows)))
    return rows + [{"scale_min": "1", "scale_max": "5", "weight": "1"} for _ in range(blanks)]


async def submitted(request: Request[Any, Any, Any], *, skip: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The form as raw input; ``skip`` leaves out locked fields (their inputs are disabled)."""
    form = await request.form()
    raw: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        if name not in skip:
            value = form.get(name, "")
            raw[name] = value if isinstance(value, str) else ""
    for name in FLAG_FIELDS:
        if name not in skip:
            raw[name] = form.get(name) == "on"
    raw["languages"] = [v for v in form.getall("languages", []) if isinstance(v, str)]
    if "criteria" not in skip:
        try:
            rows = min(int(str(form.get("criteria_rows", "0"))), MAX_CRITERIA + 5)
        except ValueError:
            rows = 0
        raw["criteria"] = [
            {field: str(form.get(f"criteria-{i}-{field}", "")).strip() for field in CRITERION_FIELDS}
            for i in range(rows)
        ]
    return raw


def form_values(raw: dict[str, Any], fallback: dict[str, Any]) -> dict[str, Any]:
    """What to put back into the form after an error: what was typed, else the stored value."""
    return fallback | raw

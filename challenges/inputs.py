"""Turning what an organiser typed (a form or JSON) into a valid challenge, or field errors.

Forms send strings (``datetime-local`` values are read in the challenge's time zone); the API
sends JSON types (ISO 8601 datetimes, with or without an offset). Both go through ``parse``.
"""

from __future__ import annotations

import unicodedata
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from babel.core import get_global

from challenges.models import (
    CRITERION_DESCRIPTION_MAX,
    CRITERION_NAME_MAX,
    DESCRIPTION_MAX,
    REWARD_MAX,
    SUMMARY_MAX,
    TAG_MAX,
    TAGS_MAX,
    TITLE_MAX,
    SubmitPolicy,
    Visibility,
)
from ideaforge.i18n import _
from ideaforge.validation import country_problem, language_codes, text_problem

DATE_FIELDS = (
    "submission_starts_at",
    "submission_ends_at",
    "voting_starts_at",
    "voting_ends_at",
    "review_ends_at",
    "results_ends_at",
)
CRITERION_FIELDS = ("name", "description", "weight", "scale_min", "scale_max", "minimum_score")
MAX_CRITERIA = 10
_PREFERRED_ZONE = {
    "CA": "America/Toronto", "US": "America/New_York", "ES": "Europe/Madrid", "DE": "Europe/Berlin",
    "AU": "Australia/Sydney", "BR": "America/Sao_Paulo", "MX": "America/Mexico_City", "PT": "Europe/Lisbon",
}  # fmt: skip


def fold(text: str) -> str:
    """Case- and accent-insensitive form of text, for search."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def default_timezone(country: str) -> str:
    zones = get_global("territory_zones").get(country) or ["UTC"]
    return _PREFERRED_ZONE.get(country, str(zones[0]))


def timezones_for(country: str) -> list[str]:
    zones = list(get_global("territory_zones").get(country) or [])
    preferred = default_timezone(country)
    return [preferred, *sorted(z for z in zones if z != preferred), "UTC"]


@dataclass
class CriterionData:
    name: str
    description: str
    weight: float
    scale_min: int
    scale_max: int
    minimum_score: int | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "description": self.description, "weight": self.weight,
            "scale_min": self.scale_min, "scale_max": self.scale_max, "minimum_score": self.minimum_score,
        }  # fmt: skip


@dataclass
class ChallengeData:
    title: str
    summary: str
    description: str
    tags: list[str]
    languages: list[str]
    country: str
    region: str
    timezone: str
    visibility: Visibility
    open_to_partners: bool
    reward: str
    submission_starts_at: datetime
    submission_ends_at: datetime
    voting_starts_at: datetime
    voting_ends_at: datetime
    review_ends_at: datetime | None
    results_ends_at: datetime
    votes_per_user: int | None
    authors_may_vote_own: bool
    who_may_submit: SubmitPolicy
    edit_window_hours: int
    shortlist_size: int
    jurors_per_idea: int
    blind_review: bool
    criteria: list[CriterionData] = field(default_factory=list)


def _text(raw: Mapping[str, Any], name: str) -> str:
    value = raw.get(name)
    return value.strip() if isinstance(value, str) else ""


def _flag(raw: Mapping[str, Any], name: str) -> bool:
    value = raw.get(name)
    if isinstance(value, str):
        return value.strip().lower() in ("on", "true", "1", "yes")
    return bool(value)


def _list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",")]
    if isinstance(value, list | tuple):
        return [str(part).strip() for part in value]
    return []


def _int(
    value: Any, errors: dict[str, str], name: str, *, lo: int, hi: int, required: bool = True
) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            errors[name] = _("This field is required.")
        return None
    try:
        number = int(value.strip()) if isinstance(value, str) else int(value)
        if isinstance(value, float) and value != number:
            raise ValueError
    except (TypeError, ValueError):
        errors[name] = _("Enter a whole number.")
        return None
    if not lo <= number <= hi:
        errors[name] = _("Enter a number from %(lo)s to %(hi)s.", lo=lo, hi=hi)
        return None
    return number


def _datetime(value: Any, zone: zoneinfo.ZoneInfo, errors: dict[str, str], name: str) -> datetime | None:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value.strip():
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            errors[name] = _("Enter a date and time, like 2026-03-01 09:00.")
            return None
    else:
        return None
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment


def _parse_criteria(raw_criteria: Any, errors: dict[str, str]) -> list[CriterionData]:
    rows = raw_criteria if isinstance(raw_criteria, list) else []
    criteria: list[CriterionData] = []
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            errors[f"criteria-{index}-name"] = _("Each criterion needs a name.")
            continue
        if not any(str(row.get(k) or "").strip() for k in ("name", "description")):
            continue  # a blank row of the form
        prefix = f"criteria-{index}-"
        name, description = str(row.get("name") or "").strip(), str(row.get("description") or "").strip()
        if problem := text_problem(name, required=True, max_length=CRITERION_NAME_MAX):
            errors[prefix + "name"] = problem
        if problem := text_problem(description, required=False, max_length=CRITERION_DESCRIPTION_MAX):
            errors[prefix + "description"] = problem
        weight: float | None = None
        raw_weight = row.get("weight")
        try:
            weight = float(str(raw_weight).replace(",", ".")) if raw_weight not in (None, "") else 1.0
        except ValueError:
            errors[prefix + "weight"] = _("Enter a number, like 1 or 0.5.")
        if weight is not None and not (0 < weight <= 100):
            errors[prefix + "weight"] = _("A weight must be more than 0 (and at most 100).")
            weight = None
        low = _int(row.get("scale_min", 1), errors, prefix + "scale_min", lo=-100, hi=100)
        high = _int(row.get("scale_max", 5), errors, prefix + "scale_max", lo=-100, hi=100)
        if low is not None and high is not None and low >= high:
            errors[prefix + "scale_max"] = _("The top of the scale must be above its bottom.")
        minimum = _int(
            row.get("minimum_score"), errors, prefix + "minimum_score", lo=-100, hi=100, required=False
        )
        if minimum is not None and low is not None and high is not None and not low <= minimum <= high:
            errors[prefix + "minimum_score"] = _("The minimum must lie on the scale.")
        if (
            weight is not None
            and low is not None
            and high is not None
            and not any(key.startswith(prefix) for key in errors)
        ):
            criteria.append(CriterionData(name, description, weight, low, high, minimum))
    if len(criteria) > MAX_CRITERIA:
        errors["criteria"] = _("Use at most %(max)s criteria.", max=MAX_CRITERIA)
    names = [c.name.casefold() for c in criteria]
    if len(set(names)) != len(names):
        errors["criteria"] = _("Give each criterion a different name.")
    return criteria


def parse(raw: Mapping[str, Any]) -> ChallengeData:
    """Validate everything; raises ``ValidationFailed`` with one message per bad field."""
    from ideaforge.errors import ValidationFailed

    errors: dict[str, str] = {}
    title, summary, description = _text(raw, "title"), _text(raw, "summary"), _text(raw, "description")
    for name, value, required, limit in (
        ("title", title, True, TITLE_MAX),
        ("summary", summary, True, SUMMARY_MAX),
        ("description", description, False, DESCRIPTION_MAX),
        ("reward", _text(raw, "reward"), False, REWARD_MAX),
        ("region", _text(raw, "region"), False, 100),
    ):
        if problem := text_problem(value, required=required, max_length=limit):
            errors[name] = problem
    if "summary" not in errors and "\n\n" in summary.replace("\r\n", "\n"):
        errors["summary"] = _("Keep the summary to one paragraph.")

    tags = sorted({t.lower() for t in _list(raw.get("tags")) if t})
    if any(len(t) > TAG_MAX for t in tags):
        errors["tags"] = _("Each tag has at most %(max)s characters.", max=TAG_MAX)
    elif len(tags) > TAGS_MAX:
        errors["tags"] = _("Use at most %(max)s tags.", max=TAGS_MAX)

    languages = list(dict.fromkeys(code.lower() for code in _list(raw.get("languages")) if code))
    if not languages:
        errors["languages"] = _("Choose at least one language in which ideas are accepted.")
    elif any(code not in language_codes() for code in languages):
        errors["languages"] = _("Use two-letter language codes, like en or fr.")

    country = _text(raw, "country").upper()
    if problem := country_problem(country, required=True):
        errors["country"] = problem
    timezone = _text(raw, "timezone") or (default_timezone(country) if "country" not in errors else "UTC")
    try:
        zone = zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        errors["timezone"] = _("Choose a time zone from the list.")
        zone = zoneinfo.ZoneInfo("UTC")

    visibility = _text(raw, "visibility") or Visibility.PUBLIC.value
    if visibility not in {v.value for v in Visibility}:
        errors["visibility"] = _("Choose public or unlisted.")
    policy = _text(raw, "who_may_submit") or SubmitPolicy.SIGNED_IN.value
    if policy not in {p.value for p in SubmitPolicy}:
        errors["who_may_submit"] = _("Choose who may submit ideas from the list.")

    dates = {name: _datetime(raw.get(name), zone, errors, name) for name in DATE_FIELDS}
    for name in DATE_FIELDS:
        if dates[name] is None and name not in errors and name != "review_ends_at":
            errors[name] = _("Enter a date and time.")
    _check_order(dates, errors)

    votes = _int(raw.get("votes_per_user"), errors, "votes_per_user", lo=1, hi=1000, required=False)
    edit_window = _int(raw.get("edit_window_hours", 24), errors, "edit_window_hours", lo=0, hi=24 * 90)
    shortlist = _int(raw.get("shortlist_size", 10), errors, "shortlist_size", lo=1, hi=1000)
    jurors = _int(raw.get("jurors_per_idea", 3), errors, "jurors_per_idea", lo=1, hi=50)
    criteria = _parse_criteria(raw.get("criteria"), errors)

    if errors:
        raise ValidationFailed(errors)
    assert edit_window is not None
    assert shortlist is not None
    assert jurors is not None
    return ChallengeData(
        title=title, summary=summary, description=description, tags=tags, languages=languages,
        country=country, region=_text(raw, "region"), timezone=timezone, visibility=Visibility(visibility),
        open_to_partners=_flag(raw, "open_to_partners"), reward=_text(raw, "reward"),
        submission_starts_at=_must(dates["submission_starts_at"]),
        submission_ends_at=_must(dates["submission_ends_at"]),
        voting_starts_at=_must(dates["voting_starts_at"]), voting_ends_at=_must(dates["voting_ends_at"]),
        review_ends_at=dates["review_ends_at"], results_ends_at=_must(dates["results_ends_at"]),
        votes_per_user=votes, authors_may_vote_own=_flag(raw, "authors_may_vote_own"),
        who_may_submit=SubmitPolicy(policy), edit_window_hours=edit_window, shortlist_size=shortlist,
        jurors_per_idea=jurors, blind_review=_flag(raw, "blind_review"), criteria=criteria,
    )  # fmt: skip


def _must(moment: datetime | None) -> datetime:
    assert moment is not None
    return moment


def _check_order(dates: dict[str, datetime | None], errors: dict[str, str]) -> None:
    """Phases in order, with no gap: voting opens while submission is open, or as it closes."""
    sub_start, sub_end = dates["submission_starts_at"], dates["submission_ends_at"]
    vote_start, vote_end = dates["voting_starts_at"], dates["voting_ends_at"]
    review_end, results_end = dates["review_ends_at"], dates["results_ends_at"]
    if sub_start and sub_end and sub_end <= sub_start:
        errors.setdefault("submission_ends_at", _("Submission must end after it starts."))
    if vote_start and sub_start and vote_start < sub_start:
        errors.setdefault("voting_starts_at", _("Voting cannot start before submission does."))
    elif vote_start and sub_end and vote_start > sub_end:
        errors.setdefault(
            "voting_starts_at", _("Voting must start by the end of submission, so there is no gap.")
        )
    if vote_start and vote_end and vote_end <= vote_start:
        errors.setdefault("voting_ends_at", _("Voting must end after it starts."))
    elif vote_end and sub_end and vote_end < sub_end:
        errors.setdefault("voting_ends_at", _("Voting cannot end before submission does."))
    if review_end and vote_end and review_end <= vote_end:
        errors.setdefault("review_ends_at", _("Review starts when voting ends, so it must end after that."))
    results_start = review_end or vote_end
    if results_end and results_start and results_end <= results_start:
        errors.setdefault("results_ends_at", _("Results must end after the previous phase ends."))

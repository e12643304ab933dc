"""French and English: message catalogues, the request's locale, locale-aware formatting.

The locale of the current request lives in a context variable, set once per request by
``LocaleMiddleware`` (and by the error handlers, which may run outside it). ``_`` translates
now; ``_l`` returns a lazy string for module-level text, translated when rendered.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date as _format_date
from babel.dates import format_datetime as _format_datetime
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import LazyProxy

SUPPORTED_LOCALES: tuple[str, ...] = ("en", "fr")
LOCALE_NAMES = {"en": "English", "fr": "Français"}
CATALOG_DIR = Path(__file__).resolve().parent / "locales"

_current: ContextVar[str] = ContextVar("ideaforge_locale", default="en")


@cache
def _catalog(locale: str) -> dict[str, str | tuple[str, ...]]:
    path = CATALOG_DIR / locale / "LC_MESSAGES" / "messages.po"
    if not path.exists():
        return {}
    with path.open("rb") as fh:
        catalog = read_po(fh, locale=locale)
    out: dict[str, str | tuple[str, ...]] = {}
    for message in catalog:
        if not message.id or message.fuzzy:
            continue
        key = message.id if isinstance(message.id, str) else message.id[0]
        if isinstance(message.string, str):
            if message.string:
                out[key] = message.string
        elif isinstance(message.string, tuple | list) and all(message.string):
            out[key] = tuple(message.string)
    return out


def get_locale() -> str:
    return _current.get()


def set_locale(locale: str) -> None:
    _current.set(locale if locale in SUPPORTED_LOCALES else SUPPORTED_LOCALES[0])


@contextmanager
def use_locale(locale: str) -> Iterator[None]:
    token = _current.set(locale if locale in SUPPORTED_LOCALES else SUPPORTED_LOCALES[0])
    try:
        yield
    finally:
        _current.reset(token)


def gettext(msgid: str, /, **params: Any) -> str:
    translated = _catalog(get_locale()).get(msgid, msgid)
    text = translated if isinstance(translated, str) else translated[0]
    return text % params if params else text


def ngettext(singular: str, plural: str, n: int, /, **params: Any) -> str:
    params.setdefault("num", n)
    translated = _catalog(get_locale()).get(singular)
    if isinstance(translated, tuple):
        text = translated[min(_plural_index(n), len(translated) - 1)]
    else:
        text = singular if n == 1 else plural
    return text % params


def _plural_index(n: int) -> int:
    # Both catalogues use two forms; French puts 0 and 1 in the singular.
    if get_locale() == "fr":
        return 0 if n <= 1 else 1
    return 0 if n == 1 else 1


def lazy_gettext(msgid: str, /, **params: Any) -> LazyProxy:
    return LazyProxy(gettext, msgid, enable_cache=False, **params)


_ = gettext
_l = lazy_gettext


def negotiate(accept_language: str | None) -> str | None:
    """The best supported locale for an ``Accept-Language`` header, or None."""
    if not accept_language:
        return None
    weighted: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language.split(",")):
        tag, _sep, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in SUPPORTED_LOCALES and quality > 0:
            weighted.append((-quality, position, primary))
    return min(weighted)[2] if weighted else None


def format_datetime(value: datetime, fmt: str = "medium", zone: str | None = None) -> str:
    """``value`` in ``zone`` (an IANA name) or its own zone, with the zone's name when one is given."""
    if zone is None:
        return _format_datetime(value, format=fmt, locale=get_locale(), tzinfo=value.tzinfo)
    text = _format_datetime(value, format=fmt, locale=get_locale(), tzinfo=ZoneInfo(zone))
    return f"{text} ({zone.rsplit('/', 1)[-1].replace('_', ' ')})"


def format_date(value: datetime, fmt: str = "long") -> str:
    return _format_date(value, format=fmt, locale=get_locale())


def format_number(value: float) -> str:
    return format_decimal(value, locale=get_locale())


def quoted_list(titles: Iterable[str]) -> str:
    """Titles for a message, each in quotes: “A”, “B”."""
    return ", ".join(f"“{t}”" for t in titles)

"""Small field validators shared by services; each returns a translated problem or None."""

from __future__ import annotations

import re
from functools import cache

from babel import Locale

from ideaforge.i18n import _, get_locale

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalise_email(email: str) -> str:
    return email.strip().lower()


def email_problem(email: str) -> str | None:
    if not email:
        return _("Enter your email address.")
    if len(email) > 254:
        return _("An email address has at most %(max)s characters.", max=254)
    if not _EMAIL.match(email):
        return _("Enter a valid email address, like name@example.org.")
    return None


def text_problem(value: str, *, required: bool, max_length: int) -> str | None:
    if required and not value.strip():
        return _("This field is required.")
    if len(value) > max_length:
        return _("Use at most %(max)s characters (you used %(used)s).", max=max_length, used=len(value))
    return None


# CLDR territories that are not countries: unknown, EU, eurozone, UN, outlying Oceania, pseudo-locales.
_NOT_COUNTRIES = frozenset({"ZZ", "EU", "EZ", "UN", "QO", "XA", "XB"})


@cache
def _country_codes() -> frozenset[str]:
    return frozenset(
        code
        for code in Locale.parse("en").territories
        if isinstance(code, str) and len(code) == 2 and code.isalpha() and code not in _NOT_COUNTRIES
    )


def country_problem(code: str, *, required: bool) -> str | None:
    if not code:
        return _("Choose a country.") if required else None
    if code not in _country_codes():
        return _("Choose a country from the list.")
    return None


def countries() -> list[tuple[str, str]]:
    """(ISO code, name in the current locale), sorted by name."""
    names = Locale.parse(get_locale()).territories
    return sorted(((code, names.get(code, code)) for code in _country_codes()), key=lambda item: item[1])


def country_name(code: str) -> str:
    return str(Locale.parse(get_locale()).territories.get(code, code))


# The languages offered as choices (the same as a challenge's); any ISO 639-1 code is accepted.
COMMON_LANGUAGES = ("en", "fr", "es", "de", "it", "ca", "nl", "pt")


@cache
def language_codes() -> frozenset[str]:
    """Every two-letter ISO 639-1 code CLDR knows."""
    return frozenset(
        code for code in Locale.parse("en").languages if isinstance(code, str) and len(code) == 2
    )


def language_choices() -> list[tuple[str, str]]:
    """(ISO code, name in the current locale) of the common languages, in a fixed order."""
    names = Locale.parse(get_locale()).languages
    return [(code, str(names.get(code, code)).capitalize()) for code in COMMON_LANGUAGES]


def language_name(code: str) -> str:
    return str(Locale.parse(get_locale()).languages.get(code, code)).capitalize()

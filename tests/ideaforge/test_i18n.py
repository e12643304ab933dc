"""French and English: negotiation, the switcher, the user's setting, catalogue completeness."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from hypothesis import given
from hypothesis import strategies as st

from ideaforge import i18n
from ideaforge.settings import REPO_ROOT
from tests.helpers import login, post_form, register

PO = Path(i18n.CATALOG_DIR) / "fr" / "LC_MESSAGES" / "messages.po"


async def test_browser_language_picks_french(client):
    page = (await client.get("/", headers={"accept-language": "fr-CA,fr;q=0.9,en;q=0.5"})).text
    assert '<html lang="fr">' in page
    assert "Créer un compte" in page


async def test_unsupported_browser_language_falls_back_to_english(client):
    page = (await client.get("/", headers={"accept-language": "de-DE"})).text
    assert '<html lang="en">' in page
    assert "Create an account" in page


async def test_switcher_choice_beats_the_browser(client):
    await client.get("/", headers={"accept-language": "en"})
    response = await post_form(client, "/locale", {"locale": "fr", "next": "/organisations/"})
    assert response.status_code == 303
    assert response.headers["location"] == "/organisations/"
    page = (await client.get("/organisations/", headers={"accept-language": "en"})).text
    assert '<html lang="fr">' in page


async def test_the_users_setting_beats_the_browser_and_follows_them(client):
    who = await register(client)
    await post_form(client, "/locale", {"locale": "fr", "next": "/"})  # stored on the account
    client.cookies.clear()  # another browser, which prefers English
    client.headers["accept-language"] = "en"
    assert '<html lang="en">' in (await client.get("/login")).text
    await login(client, who.email)
    page = (await client.get("/")).text
    assert '<html lang="fr">' in page
    assert "Se déconnecter" in page


async def test_french_error_messages_on_forms(client):
    await post_form(client, "/locale", {"locale": "fr", "next": "/"})
    response = await post_form(client, "/register", {"email": "x", "display_name": "", "password": "court"})
    assert "Utilisez au moins 10 caractères." in response.text


async def test_unknown_page_is_translated_too(client):
    response = await client.get("/nulle-part", headers={"accept-language": "fr"})
    assert response.status_code == 404
    assert '<html lang="fr">' in response.text


def test_dates_and_numbers_follow_the_locale():
    moment = datetime(2026, 11, 26, 14, 30, tzinfo=UTC)
    with i18n.use_locale("fr"):
        assert i18n.format_date(moment) == "26 novembre 2026"
        assert i18n.format_number(12345.5) == "12\u202f345,5"
    with i18n.use_locale("en"):
        assert i18n.format_date(moment) == "November 26, 2026"
        assert i18n.format_number(12345.5) == "12,345.5"


def test_plural_forms_follow_french_rules():
    with i18n.use_locale("fr"):
        assert i18n.ngettext("%(num)s organisation", "%(num)s organisations", 0) == "0 organisation"
        assert i18n.ngettext("%(num)s organisation", "%(num)s organisations", 2) == "2 organisations"
    with i18n.use_locale("en"):
        assert i18n.ngettext("%(num)s organisation", "%(num)s organisations", 0) == "0 organisations"


def _source_messages() -> set[str]:
    method_map = [
        ("ideaforge/**.py", "python"),
        ("challenges/**.py", "python"),
        ("ideas/**.py", "python"),
        ("templates/**.html", "jinja2"),
    ]
    found: set[str] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(REPO_ROOT),
        method_map=method_map,
        options_map={"templates/**.html": {"extensions": "jinja2.ext.i18n"}},
        keywords={"_": None, "_l": None, "gettext": None, "ngettext": (1, 2)},
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_every_message_in_the_code_has_a_french_translation():
    with PO.open("rb") as fh:
        catalog = read_po(fh, locale="fr")
    translated = {
        (m.id if isinstance(m.id, str) else m.id[0])
        for m in catalog
        if m.id and not m.fuzzy and (all(m.string) if isinstance(m.string, tuple) else m.string)
    }
    missing = sorted(_source_messages() - translated)
    assert not missing, f"run `make messages` and translate: {missing}"


def test_translations_keep_their_placeholders():
    with PO.open("rb") as fh:
        catalog = read_po(fh, locale="fr")
    for message in catalog:
        if not message.id:
            continue
        source = message.id if isinstance(message.id, str) else message.id[-1]
        strings = (
            tuple(message.string) if isinstance(message.string, tuple | list) else (str(message.string),)
        )
        for text in strings:
            assert sorted(re.findall(r"%\(\w+\)s", text)) == sorted(re.findall(r"%\(\w+\)s", source)), source


@given(st.text(max_size=200))
def test_any_accept_language_header_gives_a_supported_locale_or_none(header):
    assert i18n.negotiate(header) in (*i18n.SUPPORTED_LOCALES, None)


def test_accept_language_weights_are_respected():
    assert i18n.negotiate("en;q=0.4, fr;q=0.8") == "fr"
    assert i18n.negotiate("de, en-GB;q=0.9, fr;q=0.8") == "en"
    assert i18n.negotiate("fr;q=0, en;q=0.1") == "en"
    assert i18n.negotiate("fr;q=bogus, en") == "en"


async def test_garbage_accept_language_does_not_break_pages(client):
    response = await client.get("/", headers={"accept-language": ";;;q=,fr-;q=abc,*"})
    assert response.status_code == 200

"""A challenge from creation to discovery, in a real browser and in French: an organiser
registers, creates an organisation and a challenge, publishes it; a visitor finds it in the
directory by searching and filtering, and reads its criteria and timeline."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Locator, Page, Response, expect

from ideaforge.i18n import gettext, use_locale
from ideaforge.validation import language_choices

pytestmark = pytest.mark.browser

PASSWORD = "a browser-made passphrase"
TITLE = "Comment végétaliser les cours d'école ?"
SEARCH = "VEGETALISER LES COURS"  # part of the title, without its accents, in capitals
TAGS = ("cours d'école", "nature en ville")
PARIS = ZoneInfo("Europe/Paris")  # the default time zone of a challenge in France


def fr(message: str, **params: object) -> str:
    with use_locale("fr"):
        return gettext(message, **params)


def local(moment: datetime) -> str:
    """A ``datetime-local`` value."""
    return moment.strftime("%Y-%m-%dT%H:%M")


def labelled(page: Page, text: str) -> Locator:
    """The field a label names exactly, whether or not it carries the "required" asterisk."""
    return page.get_by_label(re.compile(rf"^{re.escape(text)}(\s*\*)?$"))


def watch(page: Page, problems: list[str]) -> None:
    """Collect script errors, CSP violations (reported on the console) and missing or failing pages."""
    page.on(
        "console",
        lambda m: (
            problems.append(f"console: {m.text}")
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status in (404, 500) else None)


def directory_request(**expected: str) -> Callable[[Response], bool]:
    """Matches the directory request htmx sends once the filters hold ``expected``."""

    def matches(response: Response) -> bool:
        url = urlsplit(response.url)
        if url.path != "/challenges/" or response.request.headers.get("hx-request") != "true":
            return False
        query = parse_qs(url.query, keep_blank_values=True)
        return all(query.get(name) == [value] for name, value in expected.items())

    return matches


async def filtered(page: Page, act: Callable[[], Awaitable[object]], **expected: str) -> None:
    """Do ``act`` on the directory's filters and wait for the htmx request it triggers."""
    async with page.expect_response(directory_request(**expected)) as answer:
        await act()
    response = await answer.value
    assert response.status == 200, f"the directory answered {response.status} to {response.url}"


async def test_create_publish_and_find_a_challenge_in_french(live_server, browser):
    problems: list[str] = []
    organiser = await browser.new_context(locale="en-GB")
    page = await organiser.new_page()
    page.set_default_timeout(10_000)
    watch(page, problems)

    # --- the organiser: French first, then an account and an organisation ----------------------
    await page.goto(live_server.url + "/")
    await page.get_by_role("button", name="Français").click()
    await expect(page.locator("html")).to_have_attribute("lang", "fr")
    await page.get_by_role("link", name=fr("Create an account")).first.click()
    await page.get_by_label(fr("Email address")).fill("organisatrice@example.org")
    await page.get_by_label(fr("Display name")).fill("Organisatrice")
    await page.get_by_label(fr("Password")).fill(PASSWORD)
    await page.get_by_role("button", name=fr("Create my account")).click()
    await expect(page.get_by_role("button", name=fr("Log out"))).to_be_visible()

    await page.get_by_role("link", name=fr("Organisations"), exact=True).click()
    await page.get_by_role("link", name=fr("Register your organisation")).click()
    await page.get_by_label(fr("Name")).fill("Ville de Lyon")
    await page.get_by_label(fr("Kind")).select_option("city")
    await page.get_by_label(fr("Country")).select_option("FR")
    await page.get_by_role("button", name=fr("Create the organisation")).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Ville de Lyon")

    # The organisation page loads its challenges with htmx, with a link to create one for admins.
    await page.get_by_role("link", name=fr("New challenge")).click()
    await expect(page).to_have_url(re.compile(r"/organisations/ville-de-lyon/challenges/new$"))
    await expect(page.get_by_role("heading", level=1)).to_have_text(fr("New challenge"))

    # --- the challenge form --------------------------------------------------------------------
    await labelled(page, fr("Title")).fill(TITLE)
    await labelled(page, fr("Summary")).fill("Des cours d'école plus vertes et plus fraîches.")
    await labelled(page, fr("Tags")).fill(", ".join(TAGS))
    with use_locale("fr"):
        languages = dict(language_choices())
    await page.get_by_role("checkbox", name=languages["fr"], exact=True).check()
    await page.get_by_role("checkbox", name=languages["en"], exact=True).uncheck()
    # The default schedule starts tomorrow: the challenge would stay a draft, out of the
    # directory. Submission opened yesterday instead; everything else lies ahead.
    now = datetime.now(PARIS).replace(second=0, microsecond=0)
    schedule = {
        "Submission opens": now - timedelta(days=1),
        "Submission closes": now + timedelta(days=27),
        "Voting opens": now + timedelta(days=27),
        "Voting closes": now + timedelta(days=41),
        "Jury review ends (optional)": now + timedelta(days=55),
        "Results stay open until": now + timedelta(days=89),
    }
    for label, moment in schedule.items():
        await labelled(page, fr(label)).fill(local(moment))
    criteria = [("Impact sur la chaleur", "2", "1", "5"), ("Faisabilité", "1", "0", "10")]
    for n, (name, weight, low, high) in enumerate(criteria, start=1):
        for column, value in (("Criterion", name), ("Weight", weight), ("Scale from", low), ("to", high)):
            cell = page.get_by_label(fr("Criterion %(n)s: %(field)s", n=n, field=fr(column)), exact=True)
            await cell.fill(value)
    await page.get_by_role("button", name=fr("Save as draft")).click()
    await expect(page.get_by_role("status")).to_have_text(
        fr("The challenge is saved as a draft. Publish it when it is ready.")
    )
    await expect(page.get_by_role("heading", level=1)).to_have_text(TITLE)
    challenge_url = page.url

    await page.get_by_role("button", name=fr("Publish")).click()
    await expect(page.get_by_role("status")).to_have_text(fr("The challenge is published."))
    await expect(page.locator(".challenge > .phase")).to_have_text(fr("Submission"))

    # --- a visitor, not logged in, finds it ------------------------------------------------------
    visitor = await browser.new_context(locale="fr-FR")
    guest = await visitor.new_page()
    guest.set_default_timeout(10_000)
    watch(guest, problems)
    await guest.goto(live_server.url + "/challenges/")
    await expect(guest.locator("html")).to_have_attribute("lang", "fr")
    await expect(guest.get_by_role("link", name=fr("Log in"))).to_be_visible()
    results = guest.locator("#results")
    search = guest.get_by_role("searchbox", name=fr("Search"))

    await filtered(guest, lambda: search.press_sequentially("INTROUVABLE"), q="INTROUVABLE")
    await expect(results).to_contain_text(fr("No challenge matches these filters."))
    await expect(results.get_by_role("link", name=TITLE)).to_have_count(0)

    await search.clear()
    await filtered(guest, lambda: search.press_sequentially(SEARCH), q=SEARCH)
    await expect(results.get_by_role("link", name=TITLE)).to_be_visible()
    await expect(guest).to_have_url(re.compile(r"[?&]q=VEGETALISER(\+|%20)LES(\+|%20)COURS(&|$)"))

    async def clear_the_search() -> None:
        await search.press("Control+A")
        await search.press("Backspace")

    await filtered(guest, clear_the_search, q="")
    await expect(search).to_have_value("")
    await filtered(guest, lambda: labelled(guest, fr("Country")).select_option("FR"), q="", country="FR")
    await expect(results.get_by_role("link", name=TITLE)).to_be_visible()
    tag = TAGS[1]
    await filtered(guest, lambda: labelled(guest, fr("Tag")).select_option(tag), country="FR", tag=tag)
    await expect(results.get_by_role("link", name=TITLE)).to_be_visible()
    await expect(results.locator(".card")).to_have_count(1)

    await results.get_by_role("link", name=TITLE).click()
    await expect(guest).to_have_url(challenge_url)
    await expect(guest.get_by_role("heading", level=1)).to_have_text(TITLE)
    table = guest.get_by_role("table", name=fr("Criteria"))
    await expect(table.get_by_role("row")).to_have_count(3)
    await expect(table.get_by_role("row", name=criteria[0][0])).to_contain_text("1–5")
    await expect(table.get_by_role("row", name=criteria[1][0])).to_contain_text("0–10")
    current = guest.locator('.timeline [aria-current="step"]')
    await expect(current).to_have_count(1)
    await expect(current).to_contain_text(fr("Submission"))
    await expect(guest.locator(".timeline li")).to_have_count(4)  # submission, voting, review, results

    assert not problems, problems
    assert PASSWORD not in live_server.log.read_text(), "no password in the server's logs"
    await visitor.close()
    await organiser.close()

"""A newcomer's first visit, in a real browser: register, log out, log in, switch to French,
create an organisation."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from ideaforge.i18n import gettext, use_locale

pytestmark = pytest.mark.browser

PASSWORD = "a browser-made passphrase"


def fr(message: str) -> str:
    with use_locale("fr"):
        return gettext(message)


async def test_register_logout_login_french_and_create_an_organisation(live_server, browser):
    context = await browser.new_context(locale="en-GB")
    page = await context.new_page()
    problems: list[str] = []
    # Form errors answer 400/422 on purpose; CSP violations, script errors and missing files are problems.
    page.on(
        "console",
        lambda m: (
            problems.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status in (404, 500) else None)

    await page.goto(live_server.url + "/")
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    assert await page.evaluate("typeof window.htmx") == "object", "htmx is loaded"

    await page.get_by_role("link", name="Create an account").first.click()
    await page.get_by_label("Email address").fill("newcomer@example.org")
    await page.get_by_label("Display name").fill("New <i>comer</i>")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Create my account").click()
    await expect(page.get_by_text("Welcome to IdeaForge, New <i>comer</i>!")).to_be_visible()

    await page.get_by_role("button", name="Log out").click()
    nav = page.get_by_role("navigation", name="Main")
    await expect(nav.get_by_role("link", name="Log in")).to_be_visible()

    await nav.get_by_role("link", name="Log in").click()
    await page.get_by_label("Email address").fill("newcomer@example.org")
    await page.get_by_label("Password").fill("not the password")
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("button", name="Log out")).to_be_visible()

    await page.get_by_role("button", name="Français").click()
    await expect(page.locator("html")).to_have_attribute("lang", "fr")
    await expect(page.get_by_role("button", name=fr("Log out"))).to_be_visible()

    await page.get_by_role("link", name=fr("Organisations"), exact=True).click()
    await page.get_by_role("link", name=fr("Register your organisation")).click()
    await page.get_by_label(fr("Name")).fill("")
    await page.get_by_role("button", name=fr("Create the organisation")).click()
    await expect(page.locator("#error-name")).to_have_text(fr("This field is required."))

    await page.get_by_label(fr("Name")).fill("Ville de Québec")
    await page.get_by_label(fr("Kind")).select_option("city")
    await page.get_by_label(fr("Country")).select_option("CA")
    await page.get_by_label(fr("Region")).fill("Québec")
    await page.get_by_role("button", name=fr("Create the organisation")).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Ville de Québec")
    await expect(page.locator(".meta").first).to_contain_text("Canada")
    await expect(page.locator("#members")).to_contain_text("New <i>comer</i>")
    await expect(page.locator("#members")).to_contain_text(fr("Owner"))

    assert not problems, problems
    assert PASSWORD not in live_server.log.read_text(), "no password in the server's logs"
    await context.close()

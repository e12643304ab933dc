"""Email verification over real SMTP: the mail, the link, forged links, resending, and what a
confirmed address unlocks in a challenge."""

from __future__ import annotations

import asyncio
import re
import time
from email.header import decode_header, make_header
from email.message import Message

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession

from challenges.models import Phase
from ideaforge.accounts.verification import LINK_LIFETIME_SECONDS, make_token
from ideaforge.clock import FixedClock
from ideaforge.i18n import gettext, use_locale
from tests.challenge_helpers import make_challenge, make_organisation, user
from tests.helpers import login, logout, post_form, register, shown

pytestmark = pytest.mark.smtp


SUBJECT = "Confirm your email address for IdeaForge"
CONFIRMED = "Email address confirmed"
REFUSED = "This confirmation link is not valid or has expired. Ask for a new one from your profile."
LINK = re.compile(r"http://testserver\.local/verify-email/([A-Za-z0-9_.-]+)")
SUBMIT_ACTION = 'data-action="submit_idea"'


def fr(message: str, **params: str) -> str:
    with use_locale("fr"):
        return gettext(message, **params)


async def mails_to(client: AsyncTestClient[Litestar], received: list[Message], address: str) -> list[Message]:
    await client.app.state.jobs.drain()
    return [m for m in received if m["To"] == address.lower()]


def subject_of(message: Message) -> str:
    return str(make_header(decode_header(message["Subject"])))


def body_of(message: Message) -> str:
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode(message.get_content_charset() or "utf-8")


def token_in(message: Message) -> str:
    found = LINK.search(body_of(message))
    assert found, body_of(message)
    return found.group(1)


def flashes(html: str) -> list[str]:
    return [m.strip() for m in re.findall(r'<p class="flash[^"]*"[^>]*>(.*?)</p>', html, re.S)]


async def open_link(client: AsyncTestClient[Litestar], token: str) -> str:
    """Follow a confirmation link as the mail's reader would; the page it lands on."""
    response = await client.get(f"/verify-email/{token}", follow_redirects=False)
    assert response.status_code == 303
    landing = await client.get(response.headers["location"])
    return landing.text


async def profile(client: AsyncTestClient[Litestar]) -> str:
    return (await client.get("/profile")).text


async def test_registering_in_french_mails_a_link_that_confirms_the_address(client, received):
    await client.get("/")
    switched = await post_form(client, "/locale", {"locale": "fr", "next": "/"})
    assert switched.status_code == 303
    who = await register(client)

    mails = await mails_to(client, received, who.email)
    assert len(mails) == 1
    message = mails[0]
    assert subject_of(message) == fr(SUBJECT)
    assert "IdeaForge" in message["From"]
    token = token_in(message)
    assert f"http://testserver.local/verify-email/{token}" in body_of(message)

    before = await profile(client)
    assert shown(fr(CONFIRMED)) not in before
    assert 'action="/profile/verification"' in before, "an unconfirmed address offers to resend"

    landing = await open_link(client, token)
    assert shown(fr("Thank you: your email address %(email)s is confirmed.", email=who.email)) in flashes(
        landing
    )
    assert shown(fr(CONFIRMED)) in landing
    assert 'action="/profile/verification"' not in landing, "nothing left to resend"

    again = await open_link(client, token)
    assert shown(fr(CONFIRMED)) in again, "opening the link twice is harmless"


async def test_the_mail_declares_its_language(client, received):
    await client.get("/")
    await post_form(client, "/locale", {"locale": "fr", "next": "/"})
    who = await register(client)
    message = (await mails_to(client, received, who.email))[0]
    assert message["Content-Language"] == "fr"
    assert "charset" in message["Content-Type"]


async def test_the_link_works_from_a_browser_that_is_not_logged_in(client, received):
    who = await register(client)
    token = token_in((await mails_to(client, received, who.email))[0])
    await logout(client)

    landing = await client.get(f"/verify-email/{token}", follow_redirects=False)
    assert landing.headers["location"] == "/"
    home = (await client.get("/")).text
    assert shown(f"Thank you: your email address {who.email} is confirmed.") in flashes(home)

    await login(client, who.email)
    assert CONFIRMED in await profile(client)


async def test_tampered_foreign_forged_expired_and_malformed_links_are_refused(
    backend, client, db: AsyncSession, received
):
    someone_else = await register(client)
    other = await user(db, someone_else.email)
    await logout(client)
    who = await register(client)
    token = token_in((await mails_to(client, received, who.email))[0])
    user_id, issued, signature = token.split(".")
    me = await user(db, who.email)
    assert int(user_id) == me.id

    middle = len(signature) // 2
    flipped = "A" if signature[middle] != "A" else "B"
    secret = backend.settings.resolved_secret_key
    foreign = f"{other.id}.{issued}.{signature}"
    refused = {
        "tampered signature": f"{user_id}.{issued}.{signature[:middle]}{flipped}{signature[middle + 1 :]}",
        "another user's id": foreign,
        "an unknown user's id": f"{other.id + me.id + 1000}.{issued}.{signature}",
        "signed with another secret": make_token("x" * 40, me),
        "expired": make_token(secret, me, issued_at=int(time.time()) - LINK_LIFETIME_SECONDS - 60),
        "a later issue date": f"{user_id}.{int(issued) + 1}.{signature}",
        "malformed": "not-a-token",
        "too many parts": f"{token}.extra",
    }
    for case, bad in refused.items():
        landing = await open_link(client, bad)
        assert f'<p class="flash flash-error" role="alert">{shown(REFUSED)}</p>' in landing, case
        assert CONFIRMED not in landing, case
    await db.refresh(me)
    await db.refresh(other)
    assert me.email_verified_at is None
    assert other.email_verified_at is None, "someone else's link cannot confirm this address"

    # A link for someone else's address confirms nothing for the reader, logged in or not.
    await logout(client)
    anonymous = await client.get(f"/verify-email/{foreign}")
    assert shown(REFUSED) in flashes(anonymous.text)

    await login(client, who.email)
    assert CONFIRMED in await open_link(client, token), "the genuine link still works"


async def test_asking_again_sends_a_new_link(client, received):
    who = await register(client)
    assert len(await mails_to(client, received, who.email)) == 1

    resent = await post_form(client, "/profile/verification", {})
    assert resent.status_code == 303
    assert resent.headers["location"] == "/profile"
    page = await profile(client)
    assert shown(f"We sent a new confirmation link to {who.email}.") in flashes(page)
    mails = await mails_to(client, received, who.email)
    assert len(mails) == 2
    assert subject_of(mails[1]) == SUBJECT

    assert CONFIRMED in await open_link(client, token_in(mails[1]))
    after = await post_form(client, "/profile/verification", {})
    assert after.status_code == 303
    assert not flashes(await profile(client)), "a confirmed address is not asked again"
    assert len(await mails_to(client, received, who.email)) == 2

    await logout(client)
    anonymous = await post_form(client, "/profile/verification", {})
    assert anonymous.status_code == 401
    assert len(await mails_to(client, received, who.email)) == 2


async def test_a_verified_email_challenge_accepts_ideas_once_the_address_is_confirmed(
    client, db: AsyncSession, clock: FixedClock, received
):
    owner = await register(client)
    await logout(client)
    org = await make_organisation(db, await user(db, owner.email))
    now = clock.now()
    strict = await make_challenge(db, org, now, Phase.SUBMISSION, who_may_submit="verified_email")
    open_to_all = await make_challenge(db, org, now, Phase.SUBMISSION, who_may_submit="signed_in")

    citizen = await register(client)
    token = token_in((await mails_to(client, received, citizen.email))[0])
    before = (await client.get(f"/challenges/{strict.id}")).text
    assert SUBMIT_ACTION not in before
    assert "Anyone with a confirmed email address may submit ideas." in before, "the rule is stated"
    assert SUBMIT_ACTION in (await client.get(f"/challenges/{open_to_all.id}")).text, (
        "the phase allows submitting: only the unconfirmed address stands in the way"
    )

    assert CONFIRMED in await open_link(client, token)
    after = (await client.get(f"/challenges/{strict.id}")).text
    assert SUBMIT_ACTION in after

    await logout(client)
    assert SUBMIT_ACTION not in (await client.get(f"/challenges/{strict.id}")).text


async def test_confirmation_tokens_never_reach_the_logs(client, received, capfd):
    who = await register(client)
    token = token_in((await mails_to(client, received, who.email))[0])
    user_id, issued, signature = token.split(".")
    await open_link(client, f"{user_id}.{issued}.{signature[:-1]}x")
    await open_link(client, token)
    await logout(client)
    await register(client)
    await post_form(client, "/profile/verification", {})
    await client.app.state.jobs.drain()
    await asyncio.sleep(0)

    logs = capfd.readouterr().err
    assert "mail sent" in logs, "the mailer does log"
    assert "route=/verify-email/" in logs or '"route": "/verify-email/' in logs, "the access log does run"
    sent = [token_in(m) for m in received]
    assert len(sent) == 3
    for secret in sent:
        assert secret not in logs
        assert secret.rsplit(".", 1)[1] not in logs, "not even the signature"

"""Organisations: creation, validation, members, and invitations sent over real SMTP."""

from __future__ import annotations

import asyncio
import email
import re
from datetime import timedelta

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import update

from ideaforge.app import create_app
from ideaforge.db import Database, utcnow
from ideaforge.organisations.models import Invitation
from tests.helpers import HOSTILE, field_error, login, logout, post_form, register, shown

RENNES = {
    "name": "Ville de Rennes",
    "kind": "city",
    "country": "FR",
    "region": "Bretagne",
    "description": f"Des défis **ouverts** {HOSTILE}",
    "website": "https://metropole.rennes.fr",
}


async def create_org(client, **overrides: str):
    return await post_form(client, "/organisations/new", RENNES | overrides)


async def test_creating_an_organisation_makes_you_its_owner(client):
    who = await register(client)
    response = await create_org(client)
    assert response.status_code == 303
    assert response.headers["location"] == "/organisations/ville-de-rennes"
    page = (await client.get("/organisations/ville-de-rennes")).text
    assert "<h1>Ville de Rennes</h1>" in page
    assert "France" in page
    assert "<strong>ouverts</strong>" in page, "the description is Markdown"
    assert "<script>alert" not in page, "and sanitised"
    assert (
        f'<span class="member-name">{shown(who.display_name)}</span> <span class="badge">Owner</span>' in page
    )
    directory = (await client.get("/organisations/")).text
    assert "/organisations/ville-de-rennes" in directory


async def test_same_name_gets_a_distinct_address(client):
    await register(client)
    await create_org(client)
    second = await create_org(client)
    assert second.headers["location"] == "/organisations/ville-de-rennes-2"


async def test_invalid_organisation_fields_each_get_a_message_and_nothing_is_created(client):
    await register(client)
    response = await create_org(
        client, name="", kind="castle", country="ZZ", website="not a url", region="r" * 101
    )
    assert response.status_code == 422
    for field in ("name", "kind", "country", "website", "region"):
        assert field_error(response.text, field), field
    assert 'value="not a url"' in response.text, "what was typed is kept"
    assert "No organisation here yet." in (await client.get("/organisations/")).text


async def test_creating_an_organisation_needs_an_account(client):
    await client.get("/")
    response = await create_org(client)
    assert response.status_code == 401
    assert "Please log in" in response.text


async def test_directory_paginates(client):
    await register(client)
    for n in range(21):
        await create_org(client, name=f"Org {n:02d}")
    first = (await client.get("/organisations/")).text
    assert "21 organisations" in first
    assert "Page 1 of 2" in first
    second = (await client.get("/organisations/?page=2")).text
    assert "Org 20" in second
    assert "Org 00" not in second
    assert (await client.get("/organisations/?page=abc")).status_code == 200


@pytest.mark.smtp
async def test_an_invitation_is_emailed_and_accepted(backend, smtp_server, embedder):
    port, received = smtp_server
    app = create_app(
        backend.settings.model_copy(update={"smtp_url": f"smtp://127.0.0.1:{port}"}), embedder=embedder
    )
    async with AsyncTestClient(app, base_url="http://testserver.local") as client:
        await register(client)
        await create_org(client)
        invited = await post_form(
            client,
            "/organisations/ville-de-rennes/invitations",
            {"email": "Guest@Example.org", "role": "moderator"},
        )
        assert invited.status_code == 303
        await app.state.jobs.drain()
        invitations = [m for m in received if m["To"] == "guest@example.org"]
        assert len(invitations) == 1
        message = invitations[0]
        assert "Ville de Rennes" in message["Subject"]
        link = re.search(
            r"http://testserver\.local(/invitations/\S+)", message.get_payload(decode=True).decode()
        )
        assert link
        await logout(client)

        landing = await client.get(link.group(1))
        assert "moderator" in landing.text.lower()
        guest = await register(client, who=None)  # someone else first: the wrong account
        wrong = await post_form(client, link.group(1), {})
        assert wrong.status_code == 303
        assert "was sent to guest@example.org" in (await client.get(link.group(1))).text
        await logout(client)

        from tests.helpers import Registration

        await register(client, Registration("guest@example.org", "Guest", "correct horse battery staple"))
        accepted = await post_form(client, link.group(1), {})
        assert accepted.headers["location"] == "/organisations/ville-de-rennes"
        page = (await client.get("/organisations/ville-de-rennes")).text
        assert '<span class="member-name">Guest</span> <span class="badge">Moderator</span>' in page
        assert shown(guest.display_name) not in page
        again = await post_form(client, link.group(1), {})
        assert again.status_code == 303
        assert "already been used" in (await client.get(link.group(1))).text


async def test_only_admins_invite_and_bad_invitations_are_explained(client):
    owner = await register(client)
    await create_org(client)
    same = await post_form(
        client, "/organisations/ville-de-rennes/invitations", {"email": owner.email, "role": "member"}
    )
    assert same.status_code == 422
    assert field_error(same.text, "email") == "This person is already a member."
    bad = await post_form(
        client, "/organisations/ville-de-rennes/invitations", {"email": "nope", "role": "king"}
    )
    assert field_error(bad.text, "email")
    assert field_error(bad.text, "role")
    await logout(client)
    await register(client)
    forbidden = await post_form(
        client, "/organisations/ville-de-rennes/invitations", {"email": "x@example.org", "role": "member"}
    )
    assert forbidden.status_code == 403
    assert "owners and admins" in forbidden.text
    assert "Invite a member" not in (await client.get("/organisations/ville-de-rennes")).text


async def test_expired_or_unknown_invitations_are_refused(backend, client):
    await register(client)
    await create_org(client)
    await post_form(
        client, "/organisations/ville-de-rennes/invitations", {"email": "late@example.org", "role": "member"}
    )
    await client.app.state.jobs.drain()
    outbox = sorted((backend.settings.data_dir / "outbox").glob("*.eml"))
    body = email.message_from_bytes(outbox[-1].read_bytes()).get_payload(decode=True)
    assert isinstance(body, bytes)
    found = re.search(r"(/invitations/\S+)", body.decode())
    assert found
    path = found.group(1)
    database = Database(backend.settings.resolved_database_url)
    async with database.sessionmaker() as session:
        await session.execute(update(Invitation).values(expires_at=utcnow() - timedelta(minutes=1)))
        await session.commit()
    await database.dispose()
    expired = await client.get(path)
    assert expired.status_code == 403
    assert "expired" in expired.text
    unknown = await client.get("/invitations/not-a-real-token")
    assert unknown.status_code == 404
    assert "not valid" in unknown.text


async def test_the_log_mailer_keeps_tokens_out_of_the_logs(client, capfd):
    await register(client)
    await create_org(client)
    await post_form(
        client,
        "/organisations/ville-de-rennes/invitations",
        {"email": "someone@example.org", "role": "member"},
    )
    await client.app.state.jobs.drain()
    await asyncio.sleep(0)
    logs = capfd.readouterr().err
    assert "mail written to outbox" in logs
    assert "/invitations/" not in logs


async def test_no_password_or_token_reaches_the_logs(client, capfd):
    who = await register(client)
    await logout(client)
    await login(client, who.email, "my-wrong-secret-password")
    token = (await client.post("/api/v1/tokens", json={"email": who.email, "password": who.password})).json()[
        "token"
    ]
    await client.get("/api/v1/me", headers={"authorization": f"Bearer {token}"})
    await client.get("/invitations/some-secret-invitation-token")
    logs = capfd.readouterr().err
    assert "route=/register" in logs or '"route": "/register"' in logs, "the access log does run"
    for secret in (who.password, "my-wrong-secret-password", token, "some-secret-invitation-token"):
        assert secret not in logs

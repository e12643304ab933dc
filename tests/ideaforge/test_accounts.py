"""Registering, logging in and out, profiles, and the session's safety."""

from __future__ import annotations

from tests.helpers import (
    HOSTILE,
    STRONG_PASSWORD,
    RegistrationFactory,
    field_error,
    login,
    logout,
    post_form,
    register,
    shown,
)

SESSION_COOKIE = "ideaforge_session"


def use_session_id(client, session_id: str) -> None:
    """Send exactly this session cookie, as an attacker holding or planting it would."""
    client.cookies.delete(SESSION_COOKIE)
    client.cookies.set(SESSION_COOKIE, session_id)


async def test_registering_logs_the_new_user_in(client):
    who = await register(client)
    page = (await client.get("/")).text
    assert shown(who.display_name) in page
    assert "Log out" in page


async def test_display_name_with_markup_renders_inert(client):
    who = await register(client, RegistrationFactory.build(display_name=f"Eve {HOSTILE}"))
    page = (await client.get("/profile")).text
    assert "<script>alert" not in page
    assert '<b hx-get="/logout">' not in page
    assert "&lt;script&gt;alert" in page
    assert who.email in page


async def test_duplicate_email_is_an_error_on_the_email_field(client):
    who = await register(client)
    await logout(client)
    response = await post_form(
        client,
        "/register",
        {"email": who.email.upper(), "display_name": "Someone", "password": STRONG_PASSWORD},
    )
    assert response.status_code == 422
    assert "already exists" in field_error(response.text, "email")
    assert 'value="Someone"' in response.text, "what the user typed is kept"


async def test_registration_rejects_each_bad_field_with_its_own_message(client):
    response = await post_form(
        client, "/register", {"email": "not-an-email", "display_name": "x" * 81, "password": "short"}
    )
    assert response.status_code == 422
    assert "valid email" in field_error(response.text, "email")
    assert "at most 80" in field_error(response.text, "display_name")
    assert "at least 10" in field_error(response.text, "password")
    assert 'aria-invalid="true"' in response.text


async def test_empty_registration_says_what_is_missing(client):
    response = await post_form(client, "/register", {"email": "", "display_name": "", "password": ""})
    assert response.status_code == 422
    assert field_error(response.text, "email") == "Enter your email address."
    assert field_error(response.text, "display_name") == "This field is required."


async def test_common_and_overlong_passwords_are_refused(client):
    common = await post_form(
        client, "/register", {"email": "a@example.org", "display_name": "A", "password": "1234567890"}
    )
    assert "too common" in field_error(common.text, "password")
    long = await post_form(
        client, "/register", {"email": "a@example.org", "display_name": "A", "password": "x7!" * 43}
    )
    assert "at most 128" in field_error(long.text, "password")
    assert (await login(client, "a@example.org", "x7!" * 43)).status_code == 400, "nothing was created"


async def test_unknown_email_and_wrong_password_get_the_same_answer(client):
    who = await register(client)
    await logout(client)
    wrong_password = await login(client, who.email, "not the right one at all")
    unknown_email = await login(client, "nobody@example.org", "not the right one at all")
    assert wrong_password.status_code == unknown_email.status_code == 400
    assert "Wrong email or password." in wrong_password.text
    assert wrong_password.text.replace(who.email, "X") == unknown_email.text.replace(
        "nobody@example.org", "X"
    )


async def test_login_rotates_a_session_id_planted_by_an_attacker(client):
    who = await register(client)
    await logout(client)
    planted = "a" * 64
    use_session_id(client, planted)
    response = await login(client, who.email)
    assert response.status_code == 303
    issued = response.cookies.get(SESSION_COOKIE)
    assert issued
    assert issued != planted
    # The attacker's copy of the planted id gives nothing.
    use_session_id(client, planted)
    assert (await client.get("/profile", follow_redirects=False)).status_code == 303


async def test_login_replaces_an_existing_anonymous_session(client):
    who = await register(client)
    await logout(client)
    await post_form(client, "/locale", {"locale": "fr", "next": "/"})  # creates a real anonymous session
    before = client.cookies.get(SESSION_COOKIE)
    assert before
    await login(client, who.email)
    after = client.cookies.get(SESSION_COOKIE)
    assert after
    assert after != before
    use_session_id(client, before)
    assert (await client.get("/profile", follow_redirects=False)).status_code == 303


async def test_logout_destroys_the_session_on_the_server(client):
    who = await register(client)
    session_id = client.cookies.get(SESSION_COOKIE)
    await logout(client)
    use_session_id(client, session_id)
    response = await client.get("/profile", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")
    assert who.display_name not in (await client.get("/")).text


async def test_post_without_csrf_token_is_refused_with_a_page_that_says_so(client):
    response = await post_form(
        client,
        "/register",
        {"email": "a@example.org", "display_name": "A", "password": STRONG_PASSWORD},
        with_csrf=False,
    )
    assert response.status_code == 403
    assert "security token" in response.text
    assert (await login(client, "a@example.org")).status_code == 400, "no account was created"


async def test_htmx_requests_send_the_csrf_token_as_a_header(client):
    await client.get("/")
    response = await client.post(
        "/login",
        data={"email": "nobody@example.org", "password": "whatever-it-is"},
        headers={"x-csrftoken": client.cookies["csrftoken"], "hx-request": "true"},
    )
    assert response.status_code == 400, "accepted by CSRF, refused by the credentials check"


async def test_login_sends_back_to_the_page_asked_for_but_never_off_site(client):
    who = await register(client)
    await logout(client)
    redirect = await client.get("/profile", follow_redirects=False)
    assert redirect.headers["location"] == "/login?next=/profile"
    ok = await post_form(
        client, "/login", {"email": who.email, "password": STRONG_PASSWORD, "next": "/profile"}
    )
    assert ok.headers["location"] == "/profile"
    await logout(client)
    evil = await post_form(
        client, "/login", {"email": who.email, "password": STRONG_PASSWORD, "next": "//evil.example"}
    )
    assert evil.headers["location"] == "/"


async def test_profile_is_saved_and_validated(client):
    await register(client)
    saved = await post_form(
        client, "/profile", {"display_name": "Camille", "locale": "fr", "country": "CA", "bio": "Urbaniste"}
    )
    assert saved.status_code == 303
    page = (await client.get("/profile")).text
    assert 'value="Camille"' in page
    assert '<option value="CA" selected>' in page
    assert 'lang="fr"' in page, "the user's language setting is applied"
    bad = await post_form(
        client, "/profile", {"display_name": "", "locale": "de", "country": "XX", "bio": "b" * 501}
    )
    assert bad.status_code == 422
    for field in ("display_name", "locale", "country", "bio"):
        assert field_error(bad.text, field), field
    assert 'value="Camille"' in (await client.get("/profile")).text, "a failed save changes nothing"

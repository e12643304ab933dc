"""The JSON API: bearer tokens, the current user, problem details, the OpenAPI document."""

from __future__ import annotations

from tests.helpers import STRONG_PASSWORD, logout, register

PROBLEM = "application/problem+json"


async def token_for(client, email: str, password: str = STRONG_PASSWORD):
    return await client.post("/api/v1/tokens", json={"email": email, "password": password})


async def test_a_token_identifies_its_user(client):
    who = await register(client)
    await logout(client)
    created = await token_for(client, who.email)
    assert created.status_code == 201
    token = created.json()["token"]
    me = await client.get("/api/v1/me", headers={"authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json()["email"] == who.email
    assert me.json()["display_name"] == who.display_name
    assert "password_hash" not in me.json()


async def test_wrong_credentials_are_a_401_problem(client):
    who = await register(client)
    response = await token_for(client, who.email, "not my password at all")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == 401
    assert body["detail"] == "Wrong email or password."
    assert (await token_for(client, "nobody@example.org")).json() == body


async def test_me_without_a_valid_token_is_401(client):
    assert (await client.get("/api/v1/me")).status_code == 401
    bad = await client.get("/api/v1/me", headers={"authorization": "Bearer ifg_nope"})
    assert bad.status_code == 401
    assert bad.headers["content-type"].startswith(PROBLEM)


async def test_the_session_cookie_does_not_authenticate_the_api(client):
    await register(client)  # logged in through the page
    assert (await client.get("/api/v1/me")).status_code == 401


async def test_malformed_json_is_a_400_problem(client):
    response = await client.post(
        "/api/v1/tokens",
        content=b'{"email": "a@example.org", "password":',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["detail"] == "The request body is not valid JSON."


async def test_missing_or_empty_fields_are_a_422_problem_naming_them(client):
    missing = await client.post("/api/v1/tokens", json={"email": "a@example.org"})
    assert missing.status_code == 422
    assert missing.headers["content-type"].startswith(PROBLEM)
    empty = await client.post("/api/v1/tokens", json={"email": " ", "password": ""})
    assert empty.status_code == 422
    assert {e["field"] for e in empty.json()["errors"]} == {"email", "password"}


async def test_api_errors_follow_accept_language(client):
    response = await client.post(
        "/api/v1/tokens",
        json={"email": "a@example.org", "password": "whatever-it-is"},
        headers={"accept-language": "fr"},
    )
    assert response.status_code == 401
    assert response.json()["detail"] == "Adresse e-mail ou mot de passe incorrect."


async def test_unknown_api_route_is_a_404_problem(client):
    response = await client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith(PROBLEM)


async def test_openapi_document_lists_the_api(client):
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/api/v1/tokens" in paths
    assert "/api/v1/me" in paths
    assert "/register" not in paths, "pages are not part of the API document"

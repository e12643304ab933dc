"""What a test does the way a user would: through forms and the API."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from httpx import Response
from markupsafe import escape
from polyfactory.factories import DataclassFactory

STRONG_PASSWORD = "correct horse battery staple"
# Every display name a factory makes carries markup and an htmx attribute: every page that shows
# one proves that user text renders inert.
HOSTILE = '<script>alert("x")</script><b hx-get="/logout">'


@dataclass
class Registration:
    email: str
    display_name: str
    password: str


class RegistrationFactory(DataclassFactory[Registration]):
    __check_model__ = False

    @classmethod
    def email(cls) -> str:
        return f"{cls.__faker__.user_name()}.{cls.__random__.randint(1000, 99999)}@example.org"

    @classmethod
    def display_name(cls) -> str:
        return f"{cls.__faker__.first_name()} {HOSTILE}"[:80]

    @classmethod
    def password(cls) -> str:
        return STRONG_PASSWORD


def csrf_token(client: Any) -> str:
    token = client.cookies.get("csrftoken")
    assert token, "visit a page first: the CSRF cookie is set on a GET"
    return str(token)


async def post_form(client: Any, url: str, data: dict[str, str], *, with_csrf: bool = True) -> Response:
    if "csrftoken" not in client.cookies:
        await client.get("/")
    payload = dict(data)
    if with_csrf:
        payload["_csrf_token"] = csrf_token(client)
    response: Response = await client.post(url, data=payload, follow_redirects=False)
    return response


async def register(client: Any, who: Registration | None = None) -> Registration:
    who = who or RegistrationFactory.build()
    response = await post_form(
        client, "/register", {"email": who.email, "display_name": who.display_name, "password": who.password}
    )
    assert response.status_code == 303, response.text
    return who


async def login(client: Any, email: str, password: str = STRONG_PASSWORD) -> Response:
    return await post_form(client, "/login", {"email": email, "password": password, "next": "/"})


async def logout(client: Any) -> Response:
    return await post_form(client, "/logout", {})


def field_error(html: str, field: str) -> str:
    """The error message shown on a form field (as a screen reader finds it), or ""."""
    match = re.search(rf'<p class="error" id="error-{field}">(.*?)</p>', html, re.S)
    return match.group(1).strip() if match else ""


def shown(text: str) -> str:
    """How user text appears in a page: escaped exactly as the templates escape it."""
    return str(escape(text))

"""Account endpoints of the JSON API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import JSONBody
from litestar.status_codes import HTTP_201_CREATED

from ideaforge.accounts.models import User
from ideaforge.accounts.services import authenticate, create_api_token
from ideaforge.errors import ValidationFailed
from ideaforge.i18n import _
from ideaforge.web.auth import login_required, signed_in_user
from ideaforge.web.deps import DbSession
from ideaforge.web.errors import problems


@dataclass
class TokenRequest:
    email: str
    password: str


@dataclass
class TokenResponse:
    token: str


@dataclass
class UserOut:
    id: int
    email: str
    display_name: str
    locale: str | None
    country: str | None
    bio: str
    is_superuser: bool

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            id=user.id,
            email=user.email,
            display_name=user.display_name,
            locale=user.locale,
            country=user.country,
            bio=user.bio,
            is_superuser=user.is_superuser,
        )


class AccountApi(Controller):
    path = "/api/v1"
    tags = ["accounts"]  # noqa: RUF012  # Litestar reads a class attribute

    @post(
        "/tokens",
        status_code=HTTP_201_CREATED,
        summary="Exchange email and password for a bearer token",
        responses=problems(400, 401, 422, 429),
    )
    async def create_token(
        self, request: Request[Any, Any, Any], data: JSONBody[TokenRequest], db_session: DbSession
    ) -> TokenResponse:
        if not data.email.strip() or not data.password:
            raise ValidationFailed(
                {
                    k: _("This field is required.")
                    for k, v in (("email", data.email.strip()), ("password", data.password))
                    if not v
                }
            )
        # Wrong credentials raise InvalidCredentials, answered 401 by the error handler.
        user = await authenticate(
            db_session,
            request.app.state.login_throttle,
            email=data.email,
            password=data.password,
            client_ip=request.client.host if request.client else "unknown",
        )
        return TokenResponse(token=await create_api_token(db_session, user))

    @get(
        "/me",
        guards=[login_required],
        summary="The user the bearer token belongs to",
        responses=problems(401),
    )
    async def me(self, request: Request[Any, Any, Any]) -> UserOut:
        user = signed_in_user(request)
        return UserOut.of(user)

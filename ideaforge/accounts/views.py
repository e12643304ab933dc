"""Account pages: register, log in and out, profile, language switch."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect

from ideaforge.accounts.models import PASSWORD_MAX, PASSWORD_MIN, User
from ideaforge.accounts.services import authenticate, register_user, update_profile
from ideaforge.accounts.verification import make_token, send_verification, verify_email
from ideaforge.errors import InvalidCredentials, TooManyAttempts, ValidationFailed
from ideaforge.i18n import SUPPORTED_LOCALES, _, get_locale, set_locale
from ideaforge.validation import countries
from ideaforge.web.auth import SESSION_USER_KEY, current_user, login_required, signed_in_user
from ideaforge.web.deps import DbSession
from ideaforge.web.flash import flash
from ideaforge.web.forms import form_values, safe_next
from ideaforge.web.locale import LOCALE_COOKIE, SESSION_KEY
from ideaforge.web.sessions import rotate_session
from ideaforge.web.templating import render

REGISTER_FIELDS = ("email", "display_name", "password")
PROFILE_FIELDS = ("display_name", "locale", "country", "bio")


def _log_in(request: Request[Any, Any, Any], user: User) -> None:
    # A new session id at every login closes session fixation.
    rotate_session(request)
    request.session[SESSION_USER_KEY] = user.id
    if user.locale:
        request.session[SESSION_KEY] = user.locale


def _send_verification(request: Request[Any, Any, Any], user: User) -> None:
    settings = request.app.state.settings
    link = f"{settings.base_url.rstrip('/')}/verify-email/{make_token(settings.resolved_secret_key, user)}"
    send_verification(request.app.state.jobs, sender=settings.mail_from, to=user.email, name=user.display_name,
                      link=link, locale=get_locale())  # fmt: skip


def _register_form(
    request: Request[Any, Any, Any], values: dict[str, str], errors: dict[str, str], status_code: int = 200
) -> Response[Any]:
    context = {"values": values, "errors": errors, "password_min": PASSWORD_MIN, "password_max": PASSWORD_MAX}
    return render(request, "accounts/register.html", context, status_code=status_code)


class AccountController(Controller):
    include_in_schema = False  # pages; the API lives under /api/v1

    @get("/register", name="register")
    async def register_form(self, request: Request[Any, Any, Any]) -> Response[Any]:
        return _register_form(request, {}, {})

    @post("/register")
    async def register(self, request: Request[Any, Any, Any], db_session: DbSession) -> Response[Any]:
        values = await form_values(request, *REGISTER_FIELDS)
        try:
            user = await register_user(
                db_session,
                email=values["email"],
                display_name=values["display_name"],
                password=values["password"],
                locale=get_locale(),
            )
        except ValidationFailed as exc:
            values.pop("password")  # never echoed back into the page
            return _register_form(request, values, exc.errors, status_code=422)
        _log_in(request, user)
        _send_verification(request, user)
        flash(request, _("Welcome to IdeaForge, %(name)s!", name=user.display_name))
        return Redirect("/", status_code=303)

    @get("/login", name="login")
    async def login_form(
        self, request: Request[Any, Any, Any], next: FromQuery[str | None] = None
    ) -> Response[Any]:
        return render(request, "accounts/login.html", {"values": {}, "error": None, "next": safe_next(next)})

    @post("/login")
    async def login(self, request: Request[Any, Any, Any], db_session: DbSession) -> Response[Any]:
        values = await form_values(request, "email", "password", "next")
        target = safe_next(values["next"])
        context: dict[str, Any] = {"values": {"email": values["email"]}, "next": target}
        client_ip = request.client.host if request.client else "unknown"
        try:
            user = await authenticate(
                db_session,
                request.app.state.login_throttle,
                email=values["email"],
                password=values["password"],
                client_ip=client_ip,
            )
        except InvalidCredentials:
            context["error"] = _("Wrong email or password.")
            return render(request, "accounts/login.html", context, status_code=400)
        except TooManyAttempts as exc:
            context["error"] = exc.message
            response = render(request, "accounts/login.html", context, status_code=429)
            response.headers["Retry-After"] = str(exc.retry_after)
            return response
        _log_in(request, user)
        return Redirect(target, status_code=303)

    @post("/logout", name="logout")
    async def logout(self, request: Request[Any, Any, Any]) -> Response[Any]:
        request.clear_session()
        return Redirect("/", status_code=303)

    @get("/profile", name="profile", guards=[login_required])
    async def profile_form(self, request: Request[Any, Any, Any]) -> Response[Any]:
        user = signed_in_user(request)
        values = {
            "display_name": user.display_name,
            "locale": user.locale or "",
            "country": user.country or "",
            "bio": user.bio,
        }
        return render(
            request, "accounts/profile.html", {"values": values, "errors": {}, "countries": countries()}
        )

    @post("/profile", guards=[login_required])
    async def profile(self, request: Request[Any, Any, Any], db_session: DbSession) -> Response[Any]:
        user = signed_in_user(request)
        values = await form_values(request, *PROFILE_FIELDS)
        try:
            updated = await update_profile(db_session, user.id, **values)
        except ValidationFailed as exc:
            return render(
                request,
                "accounts/profile.html",
                {"values": values, "errors": exc.errors, "countries": countries()},
                status_code=422,
            )
        if updated.locale:
            request.session[SESSION_KEY] = updated.locale
            set_locale(updated.locale)
        flash(request, _("Your profile has been saved."))
        return Redirect("/profile", status_code=303)

    @post("/profile/verification", guards=[login_required])
    async def resend_verification(self, request: Request[Any, Any, Any]) -> Response[Any]:
        user = signed_in_user(request)
        if user.email_verified_at is None:
            _send_verification(request, user)
            flash(request, _("We sent a new confirmation link to %(email)s.", email=user.email))
        return Redirect("/profile", status_code=303)

    @get("/verify-email/{token:str}", name="verify_email")
    async def verify(
        self, request: Request[Any, Any, Any], db_session: DbSession, token: FromPath[str]
    ) -> Response[Any]:
        user = await verify_email(db_session, request.app.state.settings.resolved_secret_key, token)
        if user is None:
            flash(
                request,
                _("This confirmation link is not valid or has expired. Ask for a new one from your profile."),
                "error",
            )
        else:
            flash(request, _("Thank you: your email address %(email)s is confirmed.", email=user.email))
        return Redirect("/profile" if current_user(request) else "/", status_code=303)

    @post("/locale", name="switch_locale")
    async def switch_locale(self, request: Request[Any, Any, Any], db_session: DbSession) -> Response[Any]:
        values = await form_values(request, "locale", "next")
        locale = values["locale"] if values["locale"] in SUPPORTED_LOCALES else None
        response: Response[Any] = Redirect(safe_next(values["next"]), status_code=303)
        if locale is None:
            return response
        user = current_user(request)
        if user is not None:
            stored = await db_session.get_one(User, user.id)
            stored.locale = locale
            await db_session.commit()
        request.session[SESSION_KEY] = locale
        response.set_cookie(LOCALE_COOKIE, locale, max_age=365 * 24 * 3600, httponly=True, samesite="lax")
        return response

"""Every change to an account goes through one function here."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ideaforge.accounts.models import BIO_MAX, DISPLAY_NAME_MAX, ApiToken, User
from ideaforge.accounts.passwords import hash_password, password_problem, verify_password
from ideaforge.accounts.throttle import LoginThrottle
from ideaforge.errors import InvalidCredentials, TooManyAttempts, ValidationFailed
from ideaforge.i18n import SUPPORTED_LOCALES, _
from ideaforge.validation import country_problem, email_problem, normalise_email, text_problem


async def get_user_by_email(session: AsyncSession, email: str) -> User | None:
    return await session.scalar(select(User).where(User.email == normalise_email(email)))


async def register_user(
    session: AsyncSession,
    *,
    email: str,
    display_name: str,
    password: str,
    locale: str | None = None,
    is_superuser: bool = False,
) -> User:
    email = normalise_email(email)
    display_name = display_name.strip()
    errors: dict[str, str] = {}
    if problem := email_problem(email):
        errors["email"] = problem
    if problem := text_problem(display_name, required=True, max_length=DISPLAY_NAME_MAX):
        errors["display_name"] = problem
    if problem := password_problem(password, email=email, display_name=display_name):
        errors["password"] = problem
    if "email" not in errors and await get_user_by_email(session, email) is not None:
        errors["email"] = _("An account with this email address already exists. Log in instead?")
    if errors:
        # In the order of the form's fields, so the summary reads top to bottom.
        raise ValidationFailed({k: errors[k] for k in ("email", "display_name", "password") if k in errors})

    user = User(
        email=email,
        display_name=display_name,
        password_hash=await hash_password(password),
        locale=locale if locale in SUPPORTED_LOCALES else None,
        is_superuser=is_superuser,
    )
    session.add(user)
    try:
        await session.commit()
    except IntegrityError:
        # Two registrations raced past the check above; the unique constraint decided.
        await session.rollback()
        raise ValidationFailed(
            {"email": _("An account with this email address already exists. Log in instead?")}
        ) from None
    return user


async def authenticate(
    session: AsyncSession, throttle: LoginThrottle, *, email: str, password: str, client_ip: str
) -> User:
    email = normalise_email(email)
    if (wait := await throttle.retry_after(email, client_ip)) is not None:
        minutes = max(1, (wait + 59) // 60)
        raise TooManyAttempts(
            _("Too many login attempts. Try again in %(minutes)s minutes.", minutes=minutes), retry_after=wait
        )
    user = await get_user_by_email(session, email) if email else None
    ok = await verify_password(password, user.password_hash if user else None)
    if user is None or not ok or not user.is_active:
        await throttle.record_failure(email, client_ip)
        raise InvalidCredentials
    await throttle.record_success(email)
    return user


async def update_profile(
    session: AsyncSession, user_id: int, *, display_name: str, locale: str, country: str, bio: str
) -> User:
    display_name, country, bio = display_name.strip(), country.strip().upper(), bio.strip()
    errors: dict[str, str] = {}
    if problem := text_problem(display_name, required=True, max_length=DISPLAY_NAME_MAX):
        errors["display_name"] = problem
    if locale and locale not in SUPPORTED_LOCALES:
        errors["locale"] = _("Choose a language from the list.")
    if problem := country_problem(country, required=False):
        errors["country"] = problem
    if problem := text_problem(bio, required=False, max_length=BIO_MAX):
        errors["bio"] = problem
    if errors:
        raise ValidationFailed(errors)
    user = await session.get_one(User, user_id)
    user.display_name = display_name
    user.locale = locale or None
    user.country = country or None
    user.bio = bio
    await session.commit()
    return user


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_api_token(session: AsyncSession, user: User) -> str:
    """A new bearer token; only its hash is stored, so this is the one time it is seen."""
    token = "ifg_" + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_hash=_token_hash(token)))
    await session.commit()
    return token


async def user_for_token(session: AsyncSession, token: str) -> User | None:
    return await session.scalar(
        select(User)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.token_hash == _token_hash(token), User.is_active.is_(True))
    )

"""Password hashing (Argon2, off the event loop) and the password policy."""

from __future__ import annotations

from functools import cache

import anyio.to_thread
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from ideaforge.accounts.models import PASSWORD_MAX, PASSWORD_MIN
from ideaforge.i18n import _

_hasher = PasswordHash((Argon2Hasher(),))
# Verified against when the email is unknown, so both answers take the same time.
_DUMMY_HASH = _hasher.hash("not-a-real-password-just-for-timing")


@cache
def common_passwords() -> frozenset[str]:
    # zxcvbn ships the most common leaked passwords (about 30,000), ranked by frequency.
    return frozenset(FREQUENCY_LISTS["passwords"])


def password_problem(password: str, *, email: str = "", display_name: str = "") -> str | None:
    """The reason this password is refused, translated, or None when it is acceptable."""
    if len(password) < PASSWORD_MIN:
        return _("Use at least %(min)s characters.", min=PASSWORD_MIN)
    if len(password) > PASSWORD_MAX:
        return _("Use at most %(max)s characters.", max=PASSWORD_MAX)
    lowered = password.lower()
    if lowered in common_passwords() or len(set(lowered)) <= 2:
        return _("This password is too common. Choose one that is harder to guess.")
    if email and lowered in {email.lower(), email.lower().split("@")[0]}:
        return _("Your password must not be your email address.")
    if display_name and lowered == display_name.lower():
        return _("Your password must not be your name.")
    return None


async def hash_password(password: str) -> str:
    return await anyio.to_thread.run_sync(_hasher.hash, password)


async def verify_password(password: str, password_hash: str | None) -> bool:
    if password_hash is None:
        await anyio.to_thread.run_sync(_hasher.verify, password, _DUMMY_HASH)
        return False
    return await anyio.to_thread.run_sync(_hasher.verify, password, password_hash)

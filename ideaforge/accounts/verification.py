"""Email verification links: signed, expiring, and void once the address changes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from sqlalchemy.ext.asyncio import AsyncSession

from ideaforge.accounts.models import User
from ideaforge.db import utcnow
from ideaforge.i18n import _, use_locale
from ideaforge.jobs import JobQueue
from ideaforge.mail import build_message, queue_mail

LINK_LIFETIME_SECONDS = 7 * 24 * 3600


def _signature(secret: str, payload: str) -> str:
    digest = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def make_token(secret: str, user: User, *, issued_at: int | None = None) -> str:
    issued = int(time.time()) if issued_at is None else issued_at
    # The email is signed, not sent: a link made for an old address stops working.
    signature = _signature(secret, f"verify:{user.id}:{user.email}:{issued}")
    return f"{user.id}.{issued}.{signature}"


async def verify_email(session: AsyncSession, secret: str, token: str) -> User | None:
    """Mark the address verified; None when the link is malformed, forged, expired or stale."""
    try:
        user_id_text, issued_text, signature = token.split(".")
        user_id, issued = int(user_id_text), int(issued_text)
    except ValueError:
        return None
    if time.time() - issued > LINK_LIFETIME_SECONDS:
        return None
    user = await session.get(User, user_id)
    if user is None:
        return None
    expected = _signature(secret, f"verify:{user.id}:{user.email}:{issued}")
    if not hmac.compare_digest(expected, signature):
        return None
    if user.email_verified_at is None:
        user.email_verified_at = utcnow()
        await session.commit()
    return user


def send_verification(jobs: JobQueue, *, sender: str, to: str, name: str, link: str, locale: str) -> None:
    with use_locale(locale):
        subject = _("Confirm your email address for IdeaForge")
        body = _(
            "Hello %(name)s,\n\nPlease confirm your email address by opening this link (valid for 7 days):\n"
            "%(link)s\n\nIf you did not create an IdeaForge account, you can ignore this email.\n",
            name=name,
            link=link,
        )
    queue_mail(jobs, build_message(sender=sender, to=to, subject=subject, body=body, locale=locale))

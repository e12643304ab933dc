"""Writing notifications in each recipient's language, and mailing them after commit."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ideaforge.accounts.models import User
from ideaforge.i18n import _, use_locale
from ideaforge.jobs import JobQueue
from ideaforge.mail import build_message, queue_mail
from ideaforge.notifications.models import Follow, Notification

FOLLOWABLE = ("challenge", "idea")


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str
    locale: str


@dataclass(frozen=True)
class Notifier:
    """Adds notifications to the caller's transaction and returns their mails; ``send`` queues the
    mails once the transaction committed (never before: a rollback must not leave an email behind)."""

    jobs: JobQueue
    sender: str
    base_url: str
    default_locale: str

    def notify(self, session: AsyncSession, recipients: Iterable[User], kind: str, text: Callable[[], str],
               link: str) -> list[Mail]:  # fmt: skip
        """``text`` is called once per recipient, in that recipient's language."""
        mails: list[Mail] = []
        for user in {u.id: u for u in recipients}.values():
            locale = user.locale or self.default_locale
            with use_locale(locale):
                message = text()
                subject = _("News on IdeaForge")
                body = _("%(message)s\n\nSee it on IdeaForge: %(link)s\n", message=message,
                         link=f"{self.base_url.rstrip('/')}{link}")  # fmt: skip
            session.add(Notification(user_id=user.id, kind=kind, text=message, link=link))
            mails.append(Mail(user.email, subject, body, locale))
        return mails

    def send(self, mails: Iterable[Mail]) -> None:
        """Queue the emails; call only after the commit succeeded."""
        for mail in mails:
            message = build_message(sender=self.sender, to=mail.to, subject=mail.subject, body=mail.body,
                                    locale=mail.locale)  # fmt: skip
            queue_mail(self.jobs, message)


async def followers(session: AsyncSession, target_type: str, target_id: int) -> list[User]:
    result = await session.scalars(
        select(User).join(Follow, Follow.user_id == User.id)
        .where(Follow.target_type == target_type, Follow.target_id == target_id, User.is_active.is_(True))
    )  # fmt: skip
    return list(result)


async def is_following(session: AsyncSession, user: User | None, target_type: str, target_id: int) -> bool:
    if user is None:
        return False
    found = await session.scalar(select(Follow.id).where(
        Follow.user_id == user.id, Follow.target_type == target_type, Follow.target_id == target_id))  # fmt: skip
    return found is not None


async def set_following(
    session: AsyncSession, user: User, target_type: str, target_id: int, follow: bool
) -> None:
    """Follow or stop following; doing it twice changes nothing."""
    if target_type not in FOLLOWABLE:
        raise ValueError(target_type)
    existing = await session.scalar(select(Follow).where(
        Follow.user_id == user.id, Follow.target_type == target_type, Follow.target_id == target_id))  # fmt: skip
    if follow and existing is None:
        session.add(Follow(user_id=user.id, target_type=target_type, target_id=target_id))
    elif not follow and existing is not None:
        await session.delete(existing)
    await session.commit()


async def unread_count(session: AsyncSession, user_id: int) -> int:
    return await session.scalar(select(func.count()).select_from(Notification).where(
        Notification.user_id == user_id, Notification.read_at.is_(None))) or 0  # fmt: skip


async def recent(session: AsyncSession, user_id: int, limit: int = 50) -> list[Notification]:
    result = await session.scalars(select(Notification).where(Notification.user_id == user_id)
                                   .order_by(Notification.created_at.desc(), Notification.id.desc()).limit(limit))  # fmt: skip
    return list(result)


async def mark_all_read(session: AsyncSession, user_id: int, now: datetime) -> None:
    await session.execute(update(Notification).where(Notification.user_id == user_id,
                                                     Notification.read_at.is_(None)).values(read_at=now))  # fmt: skip
    await session.commit()

"""Outgoing email: SMTP when ``IDEAFORGE_SMTP_URL`` is set, otherwise an outbox folder.

The outbox keeps the message on disk under ``var/outbox/`` and logs only who it is for and
where it lies: mails carry one-time links, and tokens must never reach the logs.

Mail leaves through the ``mail.send`` job (``queue_mail``), after the commit: the message travels
as its bytes, with a Message-ID fixed when it is queued, so that a retried job does not send it twice.
"""

from __future__ import annotations

import base64
import email
import email.policy
import re
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import make_msgid, parseaddr
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import aiosmtplib
import anyio
import structlog

from ideaforge.jobs import Handler, JobContext, JobQueue, jobs_key

log = structlog.get_logger(__name__)

MAIL_JOB = "mail.send"
SENT_KEPT_SECONDS = 7 * 24 * 3600
"""How long a sent Message-ID is remembered (far longer than a job's retries last)."""


class Mailer(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


def build_message(*, sender: str, to: str, subject: str, body: str, locale: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    message["Content-Language"] = locale  # after set_content, which drops Content-* headers
    return message


class OutboxMailer:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def send(self, message: EmailMessage) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        slug = re.sub(r"[^a-z0-9]+", "-", str(message["To"]).lower()).strip("-")[:60]
        path = self.directory / f"{stamp}-{slug}.eml"
        await anyio.Path(path).write_bytes(bytes(message))
        log.info("mail written to outbox", to=message["To"], subject=message["Subject"], path=str(path))


class SmtpMailer:
    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError("IDEAFORGE_SMTP_URL must start with smtp:// or smtps://")
        self.hostname = parts.hostname or "localhost"
        self.port = parts.port or (465 if parts.scheme == "smtps" else 25)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.use_tls = parts.scheme == "smtps"

    async def send(self, message: EmailMessage) -> None:
        await aiosmtplib.send(
            message,
            hostname=self.hostname,
            port=self.port,
            username=self.username,
            password=self.password,
            use_tls=self.use_tls,
            start_tls=False if self.use_tls else None,
            timeout=30,
        )
        log.info("mail sent", to=message["To"], subject=message["Subject"])


def make_mailer(smtp_url: str, data_dir: Path) -> Mailer:
    return SmtpMailer(smtp_url) if smtp_url else OutboxMailer(data_dir / "outbox")


# --- the mail job ---------------------------------------------------------------------------------------


def queue_mail(jobs: JobQueue, message: EmailMessage) -> None:
    """Send ``message`` from a job; call only after the commit."""
    if message["Message-ID"] is None:
        domain = parseaddr(str(message["From"] or ""))[1].rpartition("@")[2] or "ideaforge.localhost"
        message["Message-ID"] = make_msgid(domain=domain)
    jobs.enqueue(MAIL_JOB, {"message": base64.b64encode(message.as_bytes()).decode("ascii")})


def _parse(payload: dict[str, Any]) -> EmailMessage:
    parsed = email.message_from_bytes(base64.b64decode(payload["message"]), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)  # what the default policy builds
    return parsed


async def send_mail(context: JobContext, payload: dict[str, Any]) -> None:
    """The ``mail.send`` job: at most once per Message-ID when Redis is there to remember it (a worker
    killed between sending and remembering sends it again: at least once beats never)."""
    message = _parse(payload)
    sent = jobs_key(context.settings.redis_prefix, "sent", str(message["Message-ID"]))
    if context.redis is not None and await context.redis.exists(sent):
        log.info("mail already sent; not sending it again", to=message["To"], subject=message["Subject"])
        return
    await context.mailer.send(message)
    if context.redis is not None:
        await context.redis.set(sent, "1", ex=SENT_KEPT_SECONDS)


MAIL_JOBS: dict[str, Handler] = {MAIL_JOB: send_mail}

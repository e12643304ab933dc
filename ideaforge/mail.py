"""Outgoing email: SMTP when ``IDEAFORGE_SMTP_URL`` is set, otherwise an outbox folder.

The outbox keeps the message on disk under ``var/outbox/`` and logs only who it is for and
where it lies: mails carry one-time links, and tokens must never reach the logs.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

import aiosmtplib
import anyio
import structlog

log = structlog.get_logger(__name__)


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

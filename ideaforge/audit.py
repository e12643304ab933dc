"""The audit log: who did what to which object, when, and why. Append-only."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from ideaforge.db import Base, UTCDateTime, utcnow


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_subject", "subject_type", "subject_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    subject_type: Mapped[str] = mapped_column(String(40))
    subject_id: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(60))
    reason: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[str] = mapped_column(Text, default="{}")

    @property
    def details(self) -> dict[str, Any]:
        loaded = json.loads(self.detail or "{}")
        return loaded if isinstance(loaded, dict) else {}


def record(
    session: AsyncSession,
    *,
    actor_id: int | None,
    organisation_id: int | None,
    subject_type: str,
    subject_id: int,
    action: str,
    reason: str = "",
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an event to the caller's transaction (it commits with the change it describes)."""
    event = AuditEvent(
        actor_id=actor_id,
        organisation_id=organisation_id,
        subject_type=subject_type,
        subject_id=subject_id,
        action=action,
        reason=reason,
        detail=json.dumps(detail or {}, default=str, ensure_ascii=False),
    )
    session.add(event)
    return event


async def history(session: AsyncSession, subject_type: str, subject_id: int) -> list[AuditEvent]:
    result = await session.scalars(
        select(AuditEvent)
        .where(AuditEvent.subject_type == subject_type, AuditEvent.subject_id == subject_id)
        .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
    )
    return list(result)

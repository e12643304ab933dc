"""The jury's tables: invitations, declared conflicts, who scores which idea, scorecards, the audit of every
score change, and the ranking as published.

Integrity lives here: one assignment per (idea, juror), one scorecard per assignment (its foreign key: a
scorecard for an idea the juror was not given cannot exist), one score per (scorecard, criterion), one
published row per idea.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ideaforge.accounts.models import EMAIL_MAX
from ideaforge.db import Base, UTCDateTime, str_enum, utcnow

COMMENT_MAX = 5_000
CONFLICT_REASON_MAX = 500


class JuryInvitation(Base):
    """An invitation to a challenge's jury, sent by email as a one-time link (only its hash is stored)."""

    __tablename__ = "jury_invitations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenges.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(EMAIL_MAX))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    accepted_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class JurorConflict(Base):
    """A conflict of interest a juror declared with one idea: they are never assigned it."""

    __tablename__ = "juror_conflicts"
    __table_args__ = (UniqueConstraint("juror_user_id", "idea_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenges.id", ondelete="CASCADE"), index=True)
    juror_user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    idea_id: Mapped[int] = mapped_column(ForeignKey("ideas.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(String(CONFLICT_REASON_MAX), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class JuryAssignment(Base):
    """A shortlisted idea given to a juror to score."""

    __tablename__ = "jury_assignments"
    __table_args__ = (UniqueConstraint("idea_id", "juror_user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenges.id", ondelete="CASCADE"), index=True)
    idea_id: Mapped[int] = mapped_column(ForeignKey("ideas.id", ondelete="CASCADE"))
    juror_user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ScorecardStatus(enum.StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"


class Scorecard(Base):
    """One juror's scores for one assigned idea: a draft until submitted; revisable until the review closes."""

    __tablename__ = "scorecards"
    __table_args__ = (Index("ix_scorecards_challenge_juror", "challenge_id", "juror_user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    assignment_id: Mapped[int] = mapped_column(
        ForeignKey("jury_assignments.id", ondelete="CASCADE"), unique=True
    )
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenges.id", ondelete="CASCADE"))
    idea_id: Mapped[int] = mapped_column(ForeignKey("ideas.id", ondelete="CASCADE"), index=True)
    juror_user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[ScorecardStatus] = mapped_column(
        str_enum(ScorecardStatus, "scorecard_status"), default=ScorecardStatus.DRAFT
    )
    overall_comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class CriterionScore(Base):
    """A score (and comment) on one criterion of a scorecard; a draft may leave the score empty."""

    __tablename__ = "criterion_scores"
    __table_args__ = (UniqueConstraint("scorecard_id", "criterion_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scorecard_id: Mapped[int] = mapped_column(ForeignKey("scorecards.id", ondelete="CASCADE"))
    criterion_id: Mapped[int] = mapped_column(ForeignKey("criteria.id", ondelete="CASCADE"), index=True)
    score: Mapped[int | None] = mapped_column(Integer, default=None)
    comment: Mapped[str] = mapped_column(Text, default="")


class ScoreChange(Base):
    """The audit of scoring: one row per changed value (who, when, before, after). Never updated or deleted
    by the app; kept when a scorecard goes."""

    __tablename__ = "score_changes"
    __table_args__ = (Index("ix_score_changes_challenge", "challenge_id", "changed_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenges.id", ondelete="CASCADE"))
    idea_id: Mapped[int] = mapped_column(ForeignKey("ideas.id", ondelete="CASCADE"))
    juror_user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    criterion_id: Mapped[int | None] = mapped_column(
        ForeignKey("criteria.id", ondelete="SET NULL"), default=None
    )
    field: Mapped[str] = mapped_column(String(20))
    """``score``, ``comment`` (both with a criterion), ``overall_comment`` or ``status``."""
    before: Mapped[str | None] = mapped_column(Text, default=None)
    after: Mapped[str | None] = mapped_column(Text, default=None)
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PublishedResult(Base):
    """One idea's line in the ranking as the organiser published it (a snapshot: what citizens see)."""

    __tablename__ = "published_results"
    __table_args__ = (Index("ix_published_results_challenge", "challenge_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenges.id", ondelete="CASCADE"))
    idea_id: Mapped[int] = mapped_column(ForeignKey("ideas.id", ondelete="CASCADE"), unique=True)
    position: Mapped[int] = mapped_column(Integer)
    """Order on the page (1, 2, 3 ...); ``rank`` repeats for ideas tied."""
    rank: Mapped[int | None] = mapped_column(Integer, default=None)
    raw_score: Mapped[float | None] = mapped_column(Float, default=None)
    calibrated_score: Mapped[float | None] = mapped_column(Float, default=None)
    jurors: Mapped[int] = mapped_column(Integer, default=0)
    passed_minimums: Mapped[bool] = mapped_column(Boolean, default=True)
    winner: Mapped[bool] = mapped_column(Boolean, default=False)

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ideaforge.db import Base, UTCDateTime, str_enum, utcnow
from ideaforge.organisations.models import Organisation

TITLE_MAX = 140
SUMMARY_MAX = 500
DESCRIPTION_MAX = 20_000
REWARD_MAX = 500
TAG_MAX = 30
TAGS_MAX = 10
CRITERION_NAME_MAX = 80
CRITERION_DESCRIPTION_MAX = 500


class Phase(enum.StrEnum):
    """A challenge's phases in the order they happen."""

    DRAFT = "draft"
    SUBMISSION = "submission"
    VOTING = "voting"
    REVIEW = "review"
    RESULTS = "results"
    CLOSED = "closed"

    @property
    def order(self) -> int:
        return list(Phase).index(self)


class Visibility(enum.StrEnum):
    PUBLIC = "public"
    UNLISTED = "unlisted"


class SubmitPolicy(enum.StrEnum):
    SIGNED_IN = "signed_in"
    VERIFIED_EMAIL = "verified_email"
    MEMBERS = "members"


class Challenge(Base):
    __tablename__ = "challenges"
    __table_args__ = (
        CheckConstraint("submission_starts_at < submission_ends_at", name="submission_dates"),
        CheckConstraint(
            "voting_starts_at >= submission_starts_at AND voting_starts_at <= submission_ends_at",
            name="voting_starts_during_submission",
        ),
        CheckConstraint(
            "voting_ends_at >= submission_ends_at AND voting_ends_at > voting_starts_at", name="voting_dates"
        ),
        CheckConstraint("review_ends_at IS NULL OR review_ends_at > voting_ends_at", name="review_dates"),
        CheckConstraint("results_ends_at > coalesce(review_ends_at, voting_ends_at)", name="results_dates"),
        CheckConstraint("votes_per_user IS NULL OR votes_per_user > 0", name="votes_per_user_positive"),
        CheckConstraint("shortlist_size > 0 AND jurors_per_idea > 0", name="jury_sizes_positive"),
        CheckConstraint("edit_window_hours >= 0", name="edit_window_not_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(TITLE_MAX))
    summary: Mapped[str] = mapped_column(String(SUMMARY_MAX))
    description: Mapped[str] = mapped_column(Text, default="")
    languages: Mapped[str] = mapped_column(String(100), default="en")
    """Accepted languages as a comma-separated list of ISO 639-1 codes, in the organiser's order."""
    country: Mapped[str] = mapped_column(String(2))
    region: Mapped[str] = mapped_column(String(100), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    visibility: Mapped[Visibility] = mapped_column(str_enum(Visibility, "challenge_visibility"))
    open_to_partners: Mapped[bool] = mapped_column(Boolean, default=False)
    reward: Mapped[str] = mapped_column(String(REWARD_MAX), default="")
    search_text: Mapped[str] = mapped_column(Text, default="")
    """Title, summary, description and tags, case- and accent-folded: what the directory search reads."""

    submission_starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    submission_ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    voting_starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    voting_ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    review_ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    """None: no jury review; results follow voting."""
    results_ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    phase_override: Mapped[Phase | None] = mapped_column(str_enum(Phase, "challenge_phase"), default=None)
    notified_phase: Mapped[Phase | None] = mapped_column(str_enum(Phase, "notified_phase"), default=None)
    """The phase followers were last told about (see ``services.announce_phase_changes``)."""
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    votes_per_user: Mapped[int | None] = mapped_column(Integer, default=None)
    """None: unlimited."""
    authors_may_vote_own: Mapped[bool] = mapped_column(Boolean, default=False)
    who_may_submit: Mapped[SubmitPolicy] = mapped_column(str_enum(SubmitPolicy, "submit_policy"))
    edit_window_hours: Mapped[int] = mapped_column(Integer, default=24)

    shortlist_size: Mapped[int] = mapped_column(Integer, default=10)
    jurors_per_idea: Mapped[int] = mapped_column(Integer, default=3)
    blind_review: Mapped[bool] = mapped_column(Boolean, default=False)
    results_published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    """When the organiser published the jury's ranking and winners (``ideas.jury``); None: not yet."""

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    organisation: Mapped[Organisation] = relationship(lazy="raise")
    tags: Mapped[list[ChallengeTag]] = relationship(
        cascade="all, delete-orphan", order_by="ChallengeTag.tag", lazy="raise"
    )
    criteria: Mapped[list[Criterion]] = relationship(
        cascade="all, delete-orphan", order_by="Criterion.position", lazy="raise"
    )

    @property
    def language_list(self) -> list[str]:
        return [code for code in self.languages.split(",") if code]


class ChallengeTag(Base):
    __tablename__ = "challenge_tags"
    __table_args__ = (UniqueConstraint("challenge_id", "tag"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenges.id", ondelete="CASCADE"))
    tag: Mapped[str] = mapped_column(String(TAG_MAX), index=True)


class Criterion(Base):
    """A jury criterion: scored on [scale_min, scale_max], weighted, maybe with a minimum to pass."""

    __tablename__ = "criteria"
    __table_args__ = (
        UniqueConstraint("challenge_id", "position"),
        CheckConstraint("weight > 0", name="weight_positive"),
        CheckConstraint("scale_min < scale_max", name="scale_ordered"),
        CheckConstraint(
            "minimum_score IS NULL OR (minimum_score >= scale_min AND minimum_score <= scale_max)",
            name="minimum_within_scale",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenges.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(CRITERION_NAME_MAX))
    description: Mapped[str] = mapped_column(String(CRITERION_DESCRIPTION_MAX), default="")
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    scale_min: Mapped[int] = mapped_column(Integer, default=1)
    scale_max: Mapped[int] = mapped_column(Integer, default=5)
    minimum_score: Mapped[int | None] = mapped_column(Integer, default=None)


class ChallengeJuror(Base):
    """A member of a challenge's jury (invitations and conflicts come with the jury work)."""

    __tablename__ = "challenge_jurors"
    __table_args__ = (UniqueConstraint("challenge_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenges.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

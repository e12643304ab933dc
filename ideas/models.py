from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ideaforge.accounts.models import User
from ideaforge.db import Base, UTCDateTime, str_enum, utcnow

TITLE_MAX = 140
BODY_MAX = 10_000
COMMENT_MAX = 5_000


class IdeaStatus(enum.StrEnum):
    PUBLISHED = "published"
    WITHDRAWN = "withdrawn"
    HIDDEN = "hidden"
    MERGED = "merged"
    """Absorbed into another idea (``merged_into_id``); an unmerge publishes it again."""


class CoAuthorStatus(enum.StrEnum):
    INVITED = "invited"
    """The author asked this person to join; they decide."""
    REQUESTED = "requested"
    """This person asked to join (instead of submitting a duplicate); the author decides."""
    ACCEPTED = "accepted"


class Idea(Base):
    __tablename__ = "ideas"
    __table_args__ = (
        CheckConstraint("vote_count >= 0", name="vote_count_not_negative"),
        Index("ix_ideas_challenge_votes", "challenge_id", "vote_count"),
        Index("ix_ideas_challenge_created", "challenge_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenges.id", ondelete="CASCADE"))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(TITLE_MAX))
    body: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(5))
    status: Mapped[IdeaStatus] = mapped_column(
        str_enum(IdeaStatus, "idea_status"), default=IdeaStatus.PUBLISHED
    )
    status_reason: Mapped[str] = mapped_column(Text, default="")
    """Why it was hidden (shown to its authors)."""
    vote_count: Mapped[int] = mapped_column(Integer, default=0)
    """Kept equal to the number of vote rows, in the transaction that adds or removes one."""
    merged_into_id: Mapped[int | None] = mapped_column(
        ForeignKey("ideas.id", ondelete="SET NULL"), default=None
    )
    submitted_despite_id: Mapped[int | None] = mapped_column(
        ForeignKey("ideas.id", ondelete="SET NULL"), default=None
    )
    """The idea the scorer called a duplicate when the author chose "Submit anyway"."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    author: Mapped[User] = relationship(lazy="raise", foreign_keys=[author_id])
    tags: Mapped[list[IdeaTag]] = relationship(
        cascade="all, delete-orphan", order_by="IdeaTag.tag", lazy="raise"
    )
    coauthors: Mapped[list[CoAuthor]] = relationship(cascade="all, delete-orphan", lazy="raise")


class IdeaTag(Base):
    __tablename__ = "idea_tags"
    __table_args__ = (UniqueConstraint("idea_id", "tag"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    idea_id: Mapped[int] = mapped_column(ForeignKey("ideas.id", ondelete="CASCADE"))
    tag: Mapped[str] = mapped_column(String(30), index=True)


class CoAuthor(Base):
    __tablename__ = "idea_coauthors"
    __table_args__ = (UniqueConstraint("idea_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    idea_id: Mapped[int] = mapped_column(ForeignKey("ideas.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    status: Mapped[CoAuthorStatus] = mapped_column(str_enum(CoAuthorStatus, "coauthor_status"))
    message: Mapped[str] = mapped_column(Text, default="", server_default="")
    """What a person asking to join wrote (their draft idea), for the author to read."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User] = relationship(lazy="raise")


class Vote(Base):
    """One person's support for one idea. The unique key is the rule "one vote per user per idea"."""

    __tablename__ = "votes"
    __table_args__ = (
        UniqueConstraint("idea_id", "user_id"),
        Index("ix_votes_challenge_user", "challenge_id", "user_id"),
        Index("ix_votes_idea_created", "idea_id", "created_at"),
        Index("ix_votes_challenge_client", "challenge_id", "client_hash", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    idea_id: Mapped[int] = mapped_column(ForeignKey("ideas.id", ondelete="CASCADE"))
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenges.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    client_hash: Mapped[str] = mapped_column(String(64), default="")
    """A keyed hash of the voter's address and browser, to flag bursts across accounts (never the raw IP)."""


class Comment(Base):
    __tablename__ = "comments"
    __table_args__ = (Index("ix_comments_idea_created", "idea_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    idea_id: Mapped[int] = mapped_column(ForeignKey("ideas.id", ondelete="CASCADE"))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("comments.id", ondelete="CASCADE"), default=None)
    """Replies go one level deep: a reply's parent is always a top-level comment."""
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    hidden_reason: Mapped[str | None] = mapped_column(Text, default=None)

    author: Mapped[User] = relationship(lazy="raise")


class ReportStatus(enum.StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class Report(Base):
    """Someone signalled an idea or a comment to the challenge's moderators."""

    __tablename__ = "reports"
    __table_args__ = (Index("ix_reports_challenge_status", "challenge_id", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenges.id", ondelete="CASCADE"))
    idea_id: Mapped[int] = mapped_column(ForeignKey("ideas.id", ondelete="CASCADE"))
    comment_id: Mapped[int | None] = mapped_column(
        ForeignKey("comments.id", ondelete="CASCADE"), default=None
    )
    reporter_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[ReportStatus] = mapped_column(
        str_enum(ReportStatus, "report_status"), default=ReportStatus.OPEN
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    reporter: Mapped[User] = relationship(lazy="raise")


class VoteFlag(Base):
    """Several accounts voting from one address and browser in a short time: for moderators to judge."""

    __tablename__ = "vote_flags"
    __table_args__ = (UniqueConstraint("challenge_id", "client_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenges.id", ondelete="CASCADE"))
    client_hash: Mapped[str] = mapped_column(String(64))
    accounts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class StoredVector(Base):
    """The embedding of an idea or a challenge: the source of truth the vector index is rebuilt from."""

    __tablename__ = "stored_vectors"
    __table_args__ = (UniqueConstraint("kind", "object_id"), Index("ix_stored_vectors_model", "model"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    """"idea", "challenge", "expert", "partner" (offers) or "partner_seeks"."""
    object_id: Mapped[int] = mapped_column(Integer)
    partition: Mapped[str] = mapped_column(String(40))
    """Which index holds it: "challenge:<id>" for an idea, "challenges" for a challenge, "experts",
    "partners" and "partner_seeks" for profiles."""
    model: Mapped[str] = mapped_column(String(300))
    dimension: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    """float32, little-endian, ``dimension`` values."""
    content_hash: Mapped[str] = mapped_column(String(64))
    """SHA-256 of the embedded text: an unchanged text is not embedded again."""
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PairStatus(enum.StrEnum):
    OPEN = "open"
    DISMISSED = "dismissed"
    """A moderator said "not duplicates": never suggested again."""
    MERGED = "merged"


class DuplicatePair(Base):
    """Two ideas of one challenge that the scorer calls the same proposal, for moderators to judge."""

    __tablename__ = "duplicate_pairs"
    __table_args__ = (
        UniqueConstraint("idea_id", "existing_id"),
        CheckConstraint("idea_id > existing_id", name="newer_idea_first"),
        Index("ix_duplicate_pairs_challenge_status", "challenge_id", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenges.id", ondelete="CASCADE"))
    idea_id: Mapped[int] = mapped_column(ForeignKey("ideas.id", ondelete="CASCADE"))
    """The newer idea."""
    existing_id: Mapped[int] = mapped_column(ForeignKey("ideas.id", ondelete="CASCADE"))
    probability: Mapped[float] = mapped_column(Float)
    status: Mapped[PairStatus] = mapped_column(str_enum(PairStatus, "pair_status"), default=PairStatus.OPEN)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class MergeStatus(enum.StrEnum):
    PENDING = "pending"
    """Waiting for the absorbed idea's author to consent."""
    DONE = "done"
    DECLINED = "declined"
    UNDONE = "undone"


class Merge(Base):
    """One idea absorbed into another. ``record`` keeps what moved, so an unmerge restores it exactly."""

    __tablename__ = "merges"
    __table_args__ = (
        CheckConstraint("absorbed_id <> surviving_id", name="two_ideas"),
        Index("ix_merges_absorbed", "absorbed_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenges.id", ondelete="CASCADE"))
    absorbed_id: Mapped[int] = mapped_column(ForeignKey("ideas.id", ondelete="CASCADE"))
    surviving_id: Mapped[int] = mapped_column(ForeignKey("ideas.id", ondelete="CASCADE"))
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    status: Mapped[MergeStatus] = mapped_column(
        str_enum(MergeStatus, "merge_status"), default=MergeStatus.PENDING
    )
    override_reason: Mapped[str] = mapped_column(Text, default="")
    """Set when a moderator merged without the author's consent: why (also in the audit log)."""
    record: Mapped[str] = mapped_column(Text, default="")
    """JSON: the votes moved and refunded, the co-authors added, the absorbed idea's former state."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class ShortlistEntry(Base):
    """An idea on its challenge's shortlist, for the jury. At most ``Challenge.shortlist_size`` per challenge
    (``ideas.shortlist`` counts under a lock on the challenge); an idea is on it at most once."""

    __tablename__ = "shortlist_entries"
    __table_args__ = (Index("ix_shortlist_entries_challenge", "challenge_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenges.id", ondelete="CASCADE"))
    idea_id: Mapped[int] = mapped_column(ForeignKey("ideas.id", ondelete="CASCADE"), unique=True)
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

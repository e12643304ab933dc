from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
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


class CoAuthorStatus(enum.StrEnum):
    INVITED = "invited"
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

"""Expert and partner profiles, and the rows the matching pages will write.

``ExpertAssignment`` and ``PartnerInterest`` refer to challenges and ideas by table name only:
core imports no domain package; the metadata is complete once ``app.load_models()`` ran.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from ideaforge.accounts.models import EMAIL_MAX
from ideaforge.db import Base, UTCDateTime, str_enum, utcnow

EXPERTISE_MAX = 5000
KEYWORDS_MAX = 20
KEYWORD_MAX = 40
LANGUAGES_MAX = 10
CAPACITY_MIN = 1
CAPACITY_MAX = 50
CONFLICT_NOTE_MAX = 300
OFFERS_MAX = 5000
SECTORS_MAX = 15
SECTOR_MAX = 40
PARTNER_REGION_MAX = 100
CONTACT_NAME_MAX = 120
REASON_MAX = 2000
INTEREST_MESSAGE_MAX = 2000


class CooperationKind(enum.StrEnum):
    PILOT = "pilot"
    RESEARCH = "research"
    INVESTMENT = "investment"
    SUPPLY = "supply"
    TRAINING = "training"
    OTHER = "other"


class AssignmentStatus(enum.StrEnum):
    SUGGESTED = "suggested"
    """Proposed by the matcher; an organisation admin confirms or drops it."""
    CONFIRMED = "confirmed"


class InterestStatus(enum.StrEnum):
    SENT = "sent"
    ACCEPTED = "accepted"
    """Both sides agreed: contact details may now be shared between them."""
    DECLINED = "declined"


def split_list(value: str) -> list[str]:
    return [part for part in value.split(",") if part]


class ExpertProfile(Base):
    """One per user: what they can advise on, in which languages, and how many ideas per challenge."""

    __tablename__ = "expert_profiles"
    __table_args__ = (
        CheckConstraint(f"capacity >= {CAPACITY_MIN} AND capacity <= {CAPACITY_MAX}", name="capacity_range"),
        CheckConstraint("length(country) = 2", name="country_iso2"),
        CheckConstraint("length(languages) >= 2", name="has_language"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    expertise: Mapped[str] = mapped_column(Text)
    keywords: Mapped[str] = mapped_column(String(1000), default="")
    """Comma-separated, lower case, sorted, at most ``KEYWORDS_MAX``."""
    languages: Mapped[str] = mapped_column(String(100))
    """Comma-separated ISO 639-1 codes, at least one."""
    country: Mapped[str] = mapped_column(String(2))
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="SET NULL"), index=True, default=None
    )
    """The organisation the expert belongs to (one of their memberships): ideas it runs are conflicts."""
    capacity: Mapped[int] = mapped_column(Integer, default=5)
    """How many ideas per challenge the expert accepts to advise on."""
    available: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def keyword_list(self) -> list[str]:
        return split_list(self.keywords)

    @property
    def language_list(self) -> list[str]:
        return split_list(self.languages)

    def embedding_text(self) -> str:
        """What the matcher compares with ideas: the expertise, then the keywords."""
        return f"{self.expertise.strip()}\n{', '.join(self.keyword_list)}".strip()


class ExpertConflict(Base):
    """A declared conflict of interest: the expert must not advise ideas by this organisation or person."""

    __tablename__ = "expert_conflicts"
    __table_args__ = (
        CheckConstraint(
            "(organisation_id IS NOT NULL AND user_id IS NULL)"
            " OR (organisation_id IS NULL AND user_id IS NOT NULL)",
            name="one_target",
        ),
        UniqueConstraint("expert_user_id", "organisation_id"),
        UniqueConstraint("expert_user_id", "user_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    expert_user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), default=None
    )
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), default=None)
    note: Mapped[str] = mapped_column(String(CONFLICT_NOTE_MAX), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PartnerProfile(Base):
    """One per organisation: what it offers and seeks abroad. The contact is private: it is shared only
    with an organisation after both sides agreed (``PartnerInterest`` accepted), never on public pages."""

    __tablename__ = "partner_profiles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), unique=True
    )
    listed: Mapped[bool] = mapped_column(Boolean, default=False)
    """Opted in to the partner directory (and to being suggested to challenges abroad)."""
    offers: Mapped[str] = mapped_column(Text, default="")
    seeks: Mapped[str] = mapped_column(Text, default="")
    sectors: Mapped[str] = mapped_column(String(1000), default="")
    """Comma-separated, lower case, sorted."""
    cooperation: Mapped[str] = mapped_column(String(200), default="")
    """Comma-separated ``CooperationKind`` values, in the order of the enum."""
    region: Mapped[str] = mapped_column(String(PARTNER_REGION_MAX), default="")
    contact_name: Mapped[str] = mapped_column(String(CONTACT_NAME_MAX), default="")
    contact_email: Mapped[str] = mapped_column(String(EMAIL_MAX), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def sector_list(self) -> list[str]:
        return split_list(self.sectors)

    @property
    def cooperation_list(self) -> list[str]:
        return split_list(self.cooperation)

    def offers_text(self) -> str:
        """What the matcher compares with challenges: the offer, then the sectors."""
        return f"{self.offers.strip()}\n{', '.join(self.sector_list)}".strip() if self.offers.strip() else ""

    def seeks_text(self) -> str:
        return self.seeks.strip()


class ExpertAssignment(Base):
    """An expert asked to advise on an idea: suggested by the matcher, then confirmed by an admin."""

    __tablename__ = "expert_assignments"
    __table_args__ = (
        UniqueConstraint("idea_id", "expert_user_id"),
        Index("ix_expert_assignments_challenge_status", "challenge_id", "status"),
        Index("ix_expert_assignments_expert_status", "expert_user_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenges.id", ondelete="CASCADE"))
    idea_id: Mapped[int] = mapped_column(ForeignKey("ideas.id", ondelete="CASCADE"))
    expert_user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[AssignmentStatus] = mapped_column(
        str_enum(AssignmentStatus, "assignment_status"), default=AssignmentStatus.SUGGESTED
    )
    affinity: Mapped[float] = mapped_column(Float)
    """The matcher's score (cosine of idea and expertise, after its adjustments)."""
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class PartnerInterest(Base):
    """A challenge's organisers tell a partner organisation they are interested (the double opt-in)."""

    __tablename__ = "partner_interests"
    __table_args__ = (
        UniqueConstraint("challenge_id", "partner_organisation_id"),
        Index("ix_partner_interests_partner_status", "partner_organisation_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenges.id", ondelete="CASCADE"))
    partner_organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    status: Mapped[InterestStatus] = mapped_column(
        str_enum(InterestStatus, "interest_status"), default=InterestStatus.SENT
    )
    message: Mapped[str] = mapped_column(Text, default="")
    sent_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

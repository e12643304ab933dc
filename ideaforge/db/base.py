from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Enum, MetaData
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

# Named constraints so that migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

MAX_ID = 2**31 - 1
"""The largest id an INTEGER column holds on every backend (32 bits on PostgreSQL)."""


def possible_id(value: int) -> bool:
    """Whether a row could have this id: PostgreSQL refuses to even compare an INTEGER with a larger
    number, so ids from outside are checked before they reach a query."""
    return 0 < value <= MAX_ID


def parse_id(raw: str) -> int | None:
    """An id typed or posted in a form, or None: ASCII digits only (``"²".isdigit()`` is true, yet
    ``int("²")`` fails) within what an id column holds."""
    if not raw.isascii() or not raw.isdecimal() or len(raw) > 10:
        return None
    value = int(raw)
    return value if possible_id(value) else None


def utcnow() -> datetime:
    return datetime.now(UTC)


def str_enum(cls: type[enum.StrEnum], name: str) -> Enum:
    """A column type for a string enum: plain strings (no native enum type), so adding a value
    needs no type migration on any backend."""
    return Enum(cls, name=name, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e])


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend.

    SQLite has no time zones: values are stored as naive UTC and given back their zone on load.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)

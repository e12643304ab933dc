"""Database: declarative base, engine and session factory.

Migrations (Alembic, under ``migrations/``) are the only way a schema is made, in tests too.
"""

from ideaforge.db.base import MAX_ID, Base, UTCDateTime, parse_id, possible_id, str_enum, utcnow
from ideaforge.db.engine import Database, is_postgres

__all__ = [
    "MAX_ID",
    "Base",
    "Database",
    "UTCDateTime",
    "is_postgres",
    "parse_id",
    "possible_id",
    "str_enum",
    "utcnow",
]

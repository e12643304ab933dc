"""Database: declarative base, engine and session factory.

Migrations (Alembic, under ``migrations/``) are the only way a schema is made, in tests too.
"""

from ideaforge.db.base import Base, UTCDateTime, str_enum, utcnow
from ideaforge.db.engine import Database

__all__ = ["Base", "Database", "UTCDateTime", "str_enum", "utcnow"]

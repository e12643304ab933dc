"""Backup and restore of a whole instance: every table of the models' metadata, in one file.

The file is gzip'd JSON Lines: a header line, then one line per row in foreign-key order::

    {"format": "ideaforge-backup", "version": 1, "alembic_revision": "0009", "exported_at": "..."}
    {"table": "users", "row": {"id": 1, "email": "...", ...}}

Values are written losslessly from their column types: datetimes as ISO 8601 with their offset, bytes
(the float32 vectors of ``stored_vectors``) as base64, enums as their value, NULL as null. Vectors are
carried, so a restored instance needs no re-embedding; password and token hashes are in the file too.

This module works over ``Base.metadata`` only (``load_models`` fills it); it knows no domain table.
An import goes into an empty database at the file's migration revision, in one transaction: a failed
import leaves the database empty.
"""

from __future__ import annotations

import asyncio
import base64
import enum
import gzip
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Column, DateTime, Enum, LargeBinary, Table, func, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ideaforge.db import Base, Database

FORMAT = "ideaforge-backup"
VERSION = 1
BATCH = 1_000
SKIPPED_TABLES = frozenset({"alembic_version"})


class BackupRefused(Exception):
    """The file or the database is not fit for this export or import (one-line reason)."""


def tables() -> list[Table]:
    """Every table of the models, parents before children."""
    from ideaforge.app import load_models

    load_models()
    return [table for table in Base.metadata.sorted_tables if table.name not in SKIPPED_TABLES]


async def database_revision(engine: AsyncEngine) -> str | None:
    """The migration the database is at; None when it was never migrated."""
    async with engine.connect() as conn:
        has_table = await conn.run_sync(lambda sync: sync.dialect.has_table(sync, "alembic_version"))
        if not has_table:
            return None
        return (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one_or_none()


def is_new(database_url: str) -> bool:
    """True when the database was never migrated (a SQLite file not made yet too)."""
    if database_url.startswith("sqlite"):
        path = database_url.split("///", 1)[-1]
        if path and path != ":memory:" and not Path(path).exists():
            return True

    async def revision() -> str | None:
        database = Database(database_url)
        try:
            return await database_revision(database.engine)
        finally:
            await database.dispose()

    return asyncio.run(revision()) is None


# --- values ----------------------------------------------------------------------------------------


def _encode(column: Column[Any], value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    raise TypeError(f"{column.table.name}.{column.name}: cannot back up a {type(value).__name__}")


def _decode(column: Column[Any], value: Any) -> Any:
    if value is None:
        return None
    kind = column.type
    if isinstance(kind, DateTime) or isinstance(getattr(kind, "impl", None), DateTime):
        return datetime.fromisoformat(value)
    if isinstance(kind, LargeBinary):
        return base64.b64decode(value)
    if isinstance(kind, Enum) and kind.enum_class is not None:
        return kind.enum_class(value)
    return value


# --- export ----------------------------------------------------------------------------------------


def _order(table: Table) -> list[Column[Any]]:
    return list(table.primary_key.columns) or list(table.columns)


async def _export(conn: AsyncConnection, out: IO[str]) -> dict[str, int]:
    revision = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one_or_none()
    header = {"format": FORMAT, "version": VERSION, "alembic_revision": revision,
              "exported_at": datetime.now(UTC).isoformat()}  # fmt: skip
    out.write(json.dumps(header) + "\n")
    counts: dict[str, int] = {}
    for table in tables():
        counts[table.name] = 0
        columns = list(table.columns)
        result = await conn.stream(select(table).order_by(*_order(table)).execution_options(yield_per=BATCH))
        async for partition in result.partitions(BATCH):
            for row in partition:
                values = {
                    column.name: _encode(column, value) for column, value in zip(columns, row, strict=True)
                }
                out.write(json.dumps({"table": table.name, "row": values}, ensure_ascii=False) + "\n")
            counts[table.name] += len(partition)
    return counts


async def export_database(database_url: str, path: Path) -> dict[str, int]:
    """Write every row of the database to ``path`` (replaced only once complete); rows per table."""
    database = Database(database_url)
    partial = path.with_name(path.name + ".partial")
    try:
        if await database_revision(database.engine) is None:
            raise BackupRefused("the database was never migrated: nothing to export")
        async with database.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                # One snapshot for every table, so the file is consistent while the app writes.
                conn = await conn.execution_options(isolation_level="REPEATABLE READ")
                await conn.execute(text("SET TRANSACTION READ ONLY"))
            else:
                await conn.exec_driver_sql("BEGIN")  # a read transaction is a snapshot in SQLite's WAL mode
            with gzip.open(partial, "wt", encoding="utf-8") as out:
                counts = await _export(conn, out)
            await conn.rollback()
        os.replace(partial, path)
        return counts
    finally:
        partial.unlink(missing_ok=True)
        await database.dispose()


# --- import ----------------------------------------------------------------------------------------


def _lines(source: IO[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(source, start=1):
        if line.strip():
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError:
                raise BackupRefused(f"line {number} is not JSON: the file is damaged") from None


def read_header(path: Path) -> dict[str, Any]:
    try:
        with gzip.open(path, "rt", encoding="utf-8") as source:
            header = json.loads(source.readline())
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError):
        raise BackupRefused(f"{path} is not an IdeaForge backup (gzip'd JSON lines)") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise BackupRefused(f"{path} is not an IdeaForge backup")
    if header.get("version") != VERSION:
        raise BackupRefused(
            f"{path} is a backup in format version {header.get('version')}; this reads {VERSION}"
        )
    return header


class _Loader:
    """Inserts one table's rows in batches; self-references to rows not inserted yet wait for an update."""

    def __init__(self, conn: AsyncConnection, table: Table) -> None:
        self.conn, self.table = conn, table
        self.batch: list[dict[str, Any]] = []
        self.later: list[tuple[dict[str, Any], dict[str, Any]]] = []
        self.count = 0
        self.columns = {column.name: column for column in table.columns}
        self.key = list(table.primary_key.columns)
        self.self_refs = [
            (fk.parent.name, fk.column.name) for fk in table.foreign_keys if fk.column.table is table
        ]

    def decode(self, number: int, raw: Any) -> dict[str, Any]:
        if not isinstance(raw, dict) or not raw.keys() <= self.columns.keys():
            unknown = sorted(set(raw) - self.columns.keys()) if isinstance(raw, dict) else raw
            raise BackupRefused(f"line {number}: {self.table.name} has no column {unknown}")
        return {name: _decode(self.columns[name], value) for name, value in raw.items()}

    async def add(self, row: dict[str, Any]) -> None:
        for column, target in self.self_refs:
            referred = row.get(column)
            own = row.get(target)
            if referred is not None and (own is None or referred >= own):
                # Rows come in key order: a reference to this row or a later one is set once all are in.
                self.later.append(({key.name: row[key.name] for key in self.key}, {column: referred}))
                row = row | {column: None}
        self.batch.append(row)
        if len(self.batch) >= BATCH:
            await self.flush()

    async def flush(self) -> None:
        if self.batch:
            await self.conn.execute(self.table.insert(), self.batch)
            self.count += len(self.batch)
            self.batch = []

    async def finish(self) -> int:
        await self.flush()
        for key, values in self.later:
            where = [self.table.c[name] == value for name, value in key.items()]
            await self.conn.execute(update(self.table).where(*where).values(values))
        return self.count


async def _is_empty(conn: AsyncConnection, table: Table) -> bool:
    return (await conn.execute(select(1).select_from(table).limit(1))).first() is None


async def _reset_sequences(conn: AsyncConnection, known: list[Table]) -> None:
    """Set each integer key's sequence to the largest restored id (PostgreSQL), so new rows go on after them."""
    for table in known:
        keys = list(table.primary_key.columns)
        if len(keys) != 1 or keys[0].type.python_type is not int:
            continue
        key = keys[0]
        await conn.execute(
            select(
                func.setval(
                    func.pg_get_serial_sequence(table.name, key.name),
                    func.coalesce(func.max(key), 1),
                    func.max(key).is_not(None),
                )
            ).select_from(table)
        )


async def _import(conn: AsyncConnection, source: IO[str], revision: str | None) -> dict[str, int]:
    known = tables()
    by_name = {table.name: table for table in known}
    current = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one_or_none()
    if current != revision:
        raise BackupRefused(
            f"the file is at migration {revision} and the database at {current}: "
            "restore into a database migrated to the file's revision"
        )
    for table in known:
        if not await _is_empty(conn, table):
            raise BackupRefused(
                f"the database is not empty ({table.name} has rows): import needs an empty one"
            )
    counts = {table.name: 0 for table in known}
    loader: _Loader | None = None
    done: set[str] = set()
    lines = _lines(source)
    next(lines, None)  # the header, checked already
    for number, line in lines:
        name = line.get("table") if isinstance(line, dict) else None
        if not isinstance(name, str) or name not in by_name:
            raise BackupRefused(f"line {number}: unknown table {name!r}")
        if loader is None or loader.table.name != name:
            if loader is not None:
                counts[loader.table.name] += await loader.finish()
                done.add(loader.table.name)
            if name in done:
                raise BackupRefused(f"line {number}: rows of {name} are not together: the file is damaged")
            loader = _Loader(conn, by_name[name])
        await loader.add(loader.decode(number, line.get("row")))
    if loader is not None:
        counts[loader.table.name] += await loader.finish()
    if conn.dialect.name == "postgresql":
        await _reset_sequences(conn, known)
    return counts


async def import_database(database_url: str, path: Path) -> dict[str, int]:
    """Load ``path`` into the empty, migrated database at ``database_url``, all or nothing; rows per table."""
    header = read_header(path)
    database = Database(database_url)
    try:
        if await database_revision(database.engine) is None:
            raise BackupRefused("the database was never migrated: run `ideaforge db upgrade` first")
        try:
            with gzip.open(path, "rt", encoding="utf-8") as source:
                async with database.engine.begin() as conn:
                    return await _import(conn, source, header.get("alembic_revision"))
        except IntegrityError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise BackupRefused(f"the file breaks a constraint, nothing was imported: {reason}") from exc
        except DBAPIError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise BackupRefused(f"the database refused a row, nothing was imported: {reason}") from exc
        except (OSError, EOFError):
            raise BackupRefused(f"{path} is damaged (truncated?): nothing was imported") from None
    finally:
        await database.dispose()


__all__ = [
    "BackupRefused",
    "database_revision",
    "export_database",
    "import_database",
    "read_header",
    "tables",
]

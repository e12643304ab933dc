"""Backup and restore: `ideaforge export` then `ideaforge import` gives back the same instance, on both stores."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from challenges.models import Criterion
from ideaforge.accounts.models import User
from ideaforge.backup import BackupRefused, export_database, import_database, tables
from ideaforge.clock import FixedClock
from ideaforge.db import Database
from ideaforge.db.migrate import upgrade
from ideas.jury.models import CriterionScore, JuryAssignment, Scorecard, ScorecardStatus
from ideas.models import Comment, StoredVector
from tests.challenge_helpers import add_juror, make_challenge, make_organisation
from tests.conftest import Backend
from tests.idea_helpers import add_votes, make_idea, make_user
from tests.services import PG_ADMIN_URL

Rows = dict[str, list[dict[str, Any]]]


def _in_thread(fn: Any, *args: Any) -> Any:
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args).result()


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
async def target(backend: Backend, request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A second empty, migrated database on the same store as ``backend``: where the backup is restored."""
    if backend.name == "sqlite":
        db_file = tmp_path / "restored.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_template"), db_file)  # migrated with upgrade()
        yield f"sqlite+aiosqlite:///{db_file}"
        return
    name = f"ideaforge_restore_{uuid.uuid4().hex[:10]}"
    await _admin(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + f"/{name}"
    try:
        _in_thread(upgrade, url)
        yield url
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def dump(url: str) -> Rows:
    """Every row of every table, in key order, as the models read them."""
    database = Database(url)
    try:
        async with database.engine.connect() as conn:
            return {
                table.name: [
                    dict(row._mapping)
                    for row in await conn.execute(select(table).order_by(*table.primary_key.columns))
                ]
                for table in tables()
            }
    finally:
        await database.dispose()


async def arrange_instance(db: AsyncSession, now: datetime) -> None:
    """An organisation, a challenge with criteria, ideas (one merged into a later one), votes, a comment with
    a reply, a stored vector and a submitted scorecard with criterion scores."""
    admin = await make_user(db, "admin@example.org", "Admin")
    org = await make_organisation(db, admin)
    challenge = await make_challenge(db, org, now)
    author = await make_user(db, "author@example.org", "Author")
    voters = [await make_user(db, f"voter{i}@example.org") for i in range(3)]
    older = await make_idea(db, challenge, author, now, "Share unsold bread")
    newer = await make_idea(db, challenge, author, now, "Give unsold bread to food banks")
    # A reference to a later row of the same table (the import must not trip on its foreign key).
    older.merged_into_id = newer.id
    await add_votes(db, newer, voters, now + timedelta(minutes=5), client_hash="ab" * 32)
    top = Comment(idea_id=newer.id, author_id=voters[0].id, body="Which bakeries?", created_at=now)
    db.add(top)
    await db.flush()
    db.add(Comment(idea_id=newer.id, author_id=author.id, parent_id=top.id, body="All of them.",
                   created_at=now + timedelta(seconds=1), edited_at=now + timedelta(seconds=2)))  # fmt: skip
    vector = np.arange(8, dtype="<f4") / 7
    db.add(StoredVector(kind="idea", object_id=newer.id, partition=f"challenge:{challenge.id}", model="test",
                        dimension=8, vector=vector.tobytes(), content_hash="c" * 64))  # fmt: skip
    await db.commit()
    juror = await make_user(db, "juror@example.org", "Juror")
    await add_juror(db, challenge, juror)
    assignment = JuryAssignment(challenge_id=challenge.id, idea_id=newer.id, juror_user_id=juror.id,
                                created_by_id=admin.id)  # fmt: skip
    db.add(assignment)
    await db.flush()
    card = Scorecard(assignment_id=assignment.id, challenge_id=challenge.id, idea_id=newer.id,
                     juror_user_id=juror.id, status=ScorecardStatus.SUBMITTED, overall_comment="Sound.",
                     submitted_at=now + timedelta(hours=1))  # fmt: skip
    db.add(card)
    await db.flush()
    criteria = (await db.scalars(select(Criterion).where(Criterion.challenge_id == challenge.id))).all()
    assert len(criteria) == 2
    db.add_all(
        CriterionScore(scorecard_id=card.id, criterion_id=c.id, score=4, comment="é ✓") for c in criteria
    )
    await db.commit()


COVERED = ("users", "organisations", "memberships", "challenges", "criteria", "ideas", "votes", "comments",
           "stored_vectors", "jury_assignments", "scorecards", "criterion_scores")  # fmt: skip


async def test_an_export_imports_into_an_empty_database_as_the_same_rows(
    backend: Backend, db: AsyncSession, clock: FixedClock, target: str, tmp_path: Path
) -> None:
    await arrange_instance(db, clock.now())
    source = backend.settings.resolved_database_url
    before = await dump(source)
    assert all(before[name] for name in COVERED), {name: len(before[name]) for name in COVERED}
    file = tmp_path / "instance.jsonl.gz"

    exported = await export_database(source, file)

    assert exported == {name: len(rows) for name, rows in before.items()}
    with gzip.open(file, "rt", encoding="utf-8") as lines:
        header = json.loads(lines.readline())
        vector_line = next(json.loads(line) for line in lines if '"stored_vectors"' in line)
    assert header["format"] == "ideaforge-backup"
    assert header["alembic_revision"]
    assert vector_line["row"]["dimension"] == 8  # the vector is carried (base64 float32), not re-computed

    imported = await import_database(target, file)

    assert imported == exported
    after = await dump(target)
    assert after == before
    stored = after["stored_vectors"][0]["vector"]
    assert np.frombuffer(stored, dtype="<f4").tolist() == (np.arange(8, dtype="<f4") / 7).tolist()
    older, newer = after["ideas"]
    assert older["merged_into_id"] == newer["id"]

    # The id sequences go on after the restored rows (PostgreSQL's are reset to max(id)).
    database = Database(target)
    try:
        async with database.sessionmaker() as session:
            session.add(User(email="new@example.org", display_name="New", password_hash="x"))
            await session.commit()
            created = await session.scalar(select(User.id).where(User.email == "new@example.org"))
            assert created == max(row["id"] for row in before["users"]) + 1
    finally:
        await database.dispose()


async def test_an_import_is_refused_unless_the_database_is_empty_and_at_the_same_migration(
    backend: Backend, db: AsyncSession, clock: FixedClock, target: str, tmp_path: Path
) -> None:
    await arrange_instance(db, clock.now())
    source = backend.settings.resolved_database_url
    file = tmp_path / "instance.jsonl.gz"
    await export_database(source, file)
    before = await dump(source)

    with pytest.raises(BackupRefused, match="not empty"):
        await import_database(source, file)
    assert await dump(source) == before

    lines = gzip.decompress(file.read_bytes()).decode().splitlines()
    header = json.loads(lines[0])

    other = tmp_path / "other-revision.jsonl.gz"
    other.write_bytes(
        gzip.compress("\n".join([json.dumps(header | {"alembic_revision": "0001"}), *lines[1:]]).encode())
    )
    with pytest.raises(BackupRefused, match="migration 0001"):
        await import_database(target, other)
    assert not any((await dump(target)).values())

    # A row the database rejects at the very end: the rows already inserted are rolled back with it.
    broken = tmp_path / "broken.jsonl.gz"
    broken.write_bytes(gzip.compress("\n".join([*lines, lines[-1]]).encode()))
    with pytest.raises(BackupRefused, match="nothing was imported"):
        await import_database(target, broken)
    assert not any((await dump(target)).values())

    not_a_backup = tmp_path / "notes.txt"
    not_a_backup.write_text("hello\n")
    with pytest.raises(BackupRefused, match="not an IdeaForge backup"):
        await import_database(target, not_a_backup)


IDEAFORGE = str(Path(sys.executable).parent / "ideaforge")


def run(args: list[str], backend: Backend, database_url: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {
        "IDEAFORGE_DATA_DIR": str(backend.settings.data_dir),
        "IDEAFORGE_DATABASE_URL": database_url,
        "IDEAFORGE_SECRET_KEY": backend.settings.secret_key,
    }
    return subprocess.run(
        [IDEAFORGE, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


async def test_the_commands_export_and_import_into_a_new_database(
    sqlite_backend: Backend, clock: FixedClock, tmp_path: Path
) -> None:
    source = sqlite_backend.settings.resolved_database_url
    database = Database(source)
    try:
        async with database.sessionmaker() as session:
            await arrange_instance(session, clock.now())
    finally:
        await database.dispose()
    file = tmp_path / "backup.jsonl.gz"
    new = f"sqlite+aiosqlite:///{tmp_path / 'new' / 'restored.sqlite3'}"  # no file yet: import migrates it

    exported = await asyncio.to_thread(run, ["export", str(file)], sqlite_backend, source)
    assert exported.returncode == 0, exported.stderr
    assert "scorecards: 1" in exported.stdout.splitlines()

    imported = await asyncio.to_thread(run, ["import", str(file)], sqlite_backend, new)
    assert imported.returncode == 0, imported.stderr
    assert "criterion_scores: 2" in imported.stdout.splitlines()
    assert await dump(new) == await dump(source)

    again = await asyncio.to_thread(run, ["import", str(file)], sqlite_backend, new)
    assert again.returncode == 1
    assert again.stderr.startswith("error: the database is not empty")
    assert again.stderr.count("\n") == 1
    users = Database(new)
    try:
        async with users.engine.connect() as conn:
            assert await conn.scalar(select(func.count()).select_from(User.__table__)) == 6
    finally:
        await users.dispose()

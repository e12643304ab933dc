"""Followers hear when a challenge's phase moves with its dates, once, even with several processes."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select

from challenges.models import Phase
from challenges.services import announce_phase_changes
from ideaforge.db import Database
from ideaforge.notifications.models import Notification
from ideaforge.notifications.services import set_following
from tests.challenge_helpers import make_challenge, make_organisation
from tests.idea_helpers import make_user


async def _news(db, user_id: int) -> list[str]:
    db.expire_all()
    return list(await db.scalars(select(Notification.text).where(Notification.user_id == user_id)))


async def test_followers_hear_of_a_phase_that_opened_with_the_dates(app, db, clock):
    org = await make_organisation(db, await make_user(db, "organiser@example.org"))
    challenge = await make_challenge(db, org, clock.now(), Phase.SUBMISSION, title="Quieter streets")
    voting_opens = challenge.voting_starts_at
    follower = await make_user(db, "follower@example.org")
    await set_following(db, follower, "challenge", challenge.id, True)
    notifier = app.state.notifier

    assert await announce_phase_changes(db, clock.now(), notifier) == 0, "a first look only sets the mark"
    assert await _news(db, follower.id) == []

    clock.set(voting_opens + timedelta(minutes=1))
    assert await announce_phase_changes(db, clock.now(), notifier) == 1
    assert await _news(db, follower.id) == ["“Quieter streets” is now in the phase: Voting."]
    assert await announce_phase_changes(db, clock.now(), notifier) == 0, "told once"
    await app.state.jobs.drain()
    outbox = list((app.state.settings.data_dir / "outbox").glob("*follower*"))
    assert len(outbox) == 1, "and by mail"


async def test_two_processes_announcing_at_once_tell_followers_once(app, db, clock, backend):
    org = await make_organisation(db, await make_user(db, "organiser@example.org"))
    challenge = await make_challenge(db, org, clock.now(), Phase.SUBMISSION)
    follower = await make_user(db, "follower@example.org")
    await set_following(db, follower, "challenge", challenge.id, True)
    await announce_phase_changes(db, clock.now(), app.state.notifier)
    clock.set(challenge.voting_starts_at + timedelta(minutes=1))

    databases = [Database(backend.settings.resolved_database_url) for _ in range(2)]
    try:

        async def announce(database: Database) -> int:
            async with database.sessionmaker() as session:
                return await announce_phase_changes(session, clock.now(), app.state.notifier)

        results = await asyncio.gather(*(announce(d) for d in databases))
    finally:
        for database in databases:
            await database.dispose()
    assert sorted(results) == [0, 1]
    count = await db.scalar(
        select(func.count()).select_from(Notification).where(Notification.user_id == follower.id)
    )
    assert count == 1

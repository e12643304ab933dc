"""Several processes, one set of vectors: what one process embeds, another's "similar ideas" finds soon
after (a version in Redis, the rows in the database), and only the snapshot's one writer writes it."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from redis.asyncio import Redis

from challenges.models import Phase
from ideaforge.app import follow_vectors, start_similarity, vector_version_key
from ideaforge.db import Database
from ideaforge.jobs import Payload
from tests.challenge_helpers import make_challenge, make_organisation
from tests.conftest import Backend
from tests.idea_helpers import make_idea, make_user
from tests.services import REDIS_URL

TITLE = "Drinking fountains in every park"


class HeldJobs:
    """Jobs kept, not run: here the test plays the worker (a queued re-embedding would blur who embedded)."""

    def __init__(self) -> None:
        self.queued: list[str] = []

    def enqueue(self, name: str, payload: Payload | None = None) -> None:
        self.queued.append(name)

    async def drain(self) -> None:
        return None


TYPED = ("Water fountains in the parks", "Free drinking water in all the city's parks during heatwaves.")


async def test_an_idea_embedded_by_one_process_is_found_by_another(backend: Backend, db, clock, embedder,
                                                                      tmp_path: Path) -> None:  # fmt: skip
    settings = backend.settings.model_copy(
        update={"redis_url": REDIS_URL, "redis_prefix": f"ideaforge-test-sharing-{uuid.uuid4().hex[:8]}"}
    )
    org = await make_organisation(db, await make_user(db, "organiser@example.org", "Organiser"))
    challenge = await make_challenge(db, org, clock.now(), Phase.SUBMISSION, title="Cooler summers", tags=[])
    challenge_id = challenge.id
    idea = await make_idea(db, challenge, await make_user(db, "author@example.org"), clock.now(), title=TITLE,
                           body="Install free drinking fountains in all the parks so people refill bottles.")  # fmt: skip
    idea_id = idea.id
    redis = Redis.from_url(REDIS_URL)
    databases = [Database(settings.resolved_database_url) for _ in range(2)]
    worker_dir, web_dir = tmp_path / "worker", tmp_path / "web"
    writer = await start_similarity(settings.model_copy(update={"data_dir": worker_dir}), databases[0],
                                    HeldJobs(), embedder, redis)  # fmt: skip
    reader = await start_similarity(settings.model_copy(update={"data_dir": web_dir}), databases[1],
                                    HeldJobs(), embedder, redis, writes_snapshot=False)  # fmt: skip
    follower = asyncio.create_task(follow_vectors(reader, redis, vector_version_key(settings), every=0.05))
    try:
        async with databases[1].sessionmaker() as session:
            assert await reader.similar_to_text(session, challenge_id, *TYPED) == [], "nothing embedded yet"
        await writer.embed_idea(idea_id)  # the worker's job
        announced = None
        for _ in range(100):  # announced without holding up the job: a moment later
            if (announced := await redis.get(vector_version_key(settings))) is not None:
                break
            await asyncio.sleep(0.02)
        assert announced is not None, "the change is announced"
        found: list[int] = []
        for _ in range(100):  # the reader follows within its polling interval, not at its next restart
            async with databases[1].sessionmaker() as session:
                found = [s.idea.id for s in await reader.similar_to_text(session, challenge_id, *TYPED)]
            if found:
                break
            await asyncio.sleep(0.05)
        assert found == [idea_id]

        await reader.save()
        await writer.save()
        assert not (web_dir / "index").exists(), "a web process never writes the snapshot"
        assert any((worker_dir / "index").iterdir()), "the one writer does"
    finally:
        follower.cancel()
        for similarity in (writer, reader):
            await similarity.close()
        for database in databases:
            await database.dispose()
        keys = [key async for key in redis.scan_iter(match=f"{settings.redis_prefix}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()

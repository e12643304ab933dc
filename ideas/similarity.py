"""Similar ideas and duplicate flags: the app's side of ``ml`` (model, vector index, scorer).

One ``Similarity`` per process holds the embedding model (behind a micro-batcher), the vector
index and the fitted duplicate scorer. The database is the source of truth: every idea's vector
is stored in ``stored_vectors`` (with model name and dimension) by a job that runs after the
idea's commit, and the index is a cache of those rows, loaded from its snapshot under
``var/index/`` when the snapshot is for this model and not stale, otherwise rebuilt from them.

Partitions: each challenge's ideas form one index ("challenge:<id>"), so "similar ideas in this
challenge" searches exactly the right ideas; the challenge directory is one more ("challenges").
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import structlog
from sqlalchemy import Select, delete, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from challenges.models import Challenge
from ideaforge.db import Database
from ideaforge.jobs import JobQueue
from ideaforge.profiles.models import ExpertProfile, PartnerProfile
from ideas.jobs import EMBED_IDEA, EMBED_PROFILE, REEMBED
from ideas.models import DuplicatePair, Idea, IdeaStatus, StoredVector
from ml.batching import MicroBatcher
from ml.dedup import DuplicateScorer, Verdict, default_scorer_path, is_meaningful, slug
from ml.embedding import (
    Embedder,
    ModelUnavailable,
    Precision,
    SentenceTransformerEmbedder,
    limit_torch_threads,
)
from ml.index import Hit, IndexSet, SnapshotUnusable, limit_threads

log = structlog.get_logger(__name__)

SUGGESTIONS = 5
CANDIDATES = 20
"""How many nearest ideas are judged before the ones to show are kept (the index holds every state)."""
DIRECTORY = "challenges"
EXPERTS = "experts"
"""The index partition of expert profiles (kind "expert"); partners' offers are in "partners" (kind
"partner") and their needs in "partner_seeks" (kind "partner_seeks"); object ids are profile ids."""
PARTNERS = "partners"
PARTNER_SEEKS = "partner_seeks"


class SimilarityUnavailable(RuntimeError):
    """The model or the scorer cannot be loaded: a start-up error that names the setting to fix."""


def idea_text(title: str, body: str) -> str:
    return f"{title.strip()}\n{body.strip()}"


def challenge_text(challenge: Challenge) -> str:
    return f"{challenge.title}\n{challenge.summary}\n{challenge.description}"


def idea_partition(challenge_id: int) -> str:
    return f"challenge:{challenge_id}"


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _stamp(moment: datetime) -> int:
    """A stored row's time as an integer high-water mark (microseconds since the epoch)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1_000_000)


@dataclass(frozen=True)
class Suggestion:
    idea: Idea
    verdict: Verdict

    @property
    def label(self) -> str:
        return "duplicate" if self.verdict.duplicate else "related"


def load_embedder(model: str, precision: Precision = "fp32", threads: int = 0) -> Embedder:
    """The model, loaded; ``threads``: torch's threads in this process (0: torch's default)."""
    limit_torch_threads(threads)
    try:
        return SentenceTransformerEmbedder(model, precision=precision)
    except ModelUnavailable as exc:
        raise SimilarityUnavailable(
            f"IDEAFORGE_EMBEDDING_MODEL={model!r} cannot be loaded ({exc}). Name a sentence-transformers "
            "model or local path, or unset it for the default."
        ) from exc


def load_scorer(model: str, path: Path | None) -> DuplicateScorer:
    where = path or default_scorer_path(model)
    try:
        scorer = DuplicateScorer.load(where)
    except FileNotFoundError:
        raise SimilarityUnavailable(
            f"No duplicate scorer fitted for IDEAFORGE_EMBEDDING_MODEL={model!r} (looked for {where}). "
            "Fit one with `ideaforge dedup fit PAIRS.jsonl` and name it in IDEAFORGE_DEDUP_SCORER."
        ) from None
    except (OSError, ValueError, KeyError) as exc:
        raise SimilarityUnavailable(f"IDEAFORGE_DEDUP_SCORER: {where} is unusable: {exc}") from exc
    if scorer.model != model:
        raise SimilarityUnavailable(
            f"IDEAFORGE_DEDUP_SCORER {where} was fitted for {scorer.model!r}, but IDEAFORGE_EMBEDDING_MODEL "
            f"is {model!r}. Fit a scorer for this model with `ideaforge dedup fit PAIRS.jsonl`."
        )
    return scorer


CATCH_UP_MARGIN = timedelta(seconds=10)


class Similarity:
    """One per process. Several processes share the vectors through the database: whoever stores or drops
    one calls ``on_change`` (the app bumps a version in Redis), and the others ``catch_up`` from the rows
    newer than their index's high-water mark. Only ``writes_snapshot`` processes write the snapshot file
    (one writer: the worker, when there is one); the others load it at start-up and catch up."""

    def __init__(self, embedder: Embedder, scorer: DuplicateScorer, db: Database, data_dir: Path,
                 jobs: JobQueue, *, writes_snapshot: bool = True,
                 on_change: Callable[[], None] | None = None) -> None:  # fmt: skip
        self.writes_snapshot = writes_snapshot
        self.on_change = on_change
        self.embedder = embedder
        self.batcher = MicroBatcher(embedder)
        self.scorer = scorer
        self.db = db
        self.jobs = jobs
        self.snapshot_dir = data_dir / "index" / slug(embedder.model_name)
        self.index = IndexSet(embedder.model_name, embedder.dimension)
        self._dirty = False
        limit_threads(1)  # one FAISS thread: searches are small and the cores are torch's

    @property
    def model(self) -> str:
        return self.embedder.model_name

    # --- start-up and persistence ------------------------------------------------------------------

    async def _stored_mark(self, session: AsyncSession) -> tuple[int, int]:
        count, newest = (await session.execute(
            select(func.count(), func.max(StoredVector.updated_at)).where(StoredVector.model == self.model)
        )).one()  # fmt: skip
        return int(count), _stamp(newest) if newest else 0

    async def start(self) -> None:
        """Load the snapshot if it holds exactly what the database holds; rebuild from the rows otherwise.
        With the database unreachable the app still starts (readiness says why) with an empty index."""
        try:
            await self._load_or_rebuild()
            async with self.db.sessionmaker() as session:
                missing = await self.outdated(session)
        except (OSError, SQLAlchemyError) as exc:
            log.warning("vector index not loaded: database unreachable", error=str(exc))
            return
        if missing:  # ideas from before the model changed, or loaded by `demo load`: embed them now
            log.info("embedding ideas that have no vector from this model", ideas=missing, model=self.model)
            self.jobs.enqueue(REEMBED)

    async def _load_or_rebuild(self) -> None:
        async with self.db.sessionmaker() as session:
            count, newest = await self._stored_mark(session)
            try:
                loaded = await asyncio.to_thread(
                    IndexSet.load, self.snapshot_dir, self.model, self.embedder.dimension
                )
            except SnapshotUnusable as exc:
                log.info("vector index snapshot not used; rebuilding from stored vectors", reason=str(exc))
                await self.rebuild_index(session)
                return
            if len(loaded) != count or loaded.high_water != newest:
                log.info("vector index snapshot is stale; rebuilding", snapshot=len(loaded), stored=count)
                await self.rebuild_index(session)
                return
            self.index = loaded

    async def rebuild_index(self, session: AsyncSession) -> int:
        """The index again from the stored vectors of this model (no re-embedding)."""
        fresh = IndexSet(self.model, self.embedder.dimension)
        fresh.high_water = await self._index_rows(session, fresh, None)
        self.index = fresh
        await self.save()
        return len(fresh)

    async def save(self) -> None:
        if not self.writes_snapshot:
            self._dirty = False
            return
        async with self.db.sessionmaker() as session:
            _count, self.index.high_water = await self._stored_mark(session)
        await asyncio.to_thread(self.index.save, self.snapshot_dir)
        self._dirty = False

    async def close(self) -> None:
        await self.batcher.close()
        if self._dirty:
            try:
                await self.save()
            except Exception:
                log.exception("saving the vector index snapshot failed; it will be rebuilt at start")

    # --- writing vectors ---------------------------------------------------------------------------

    def schedule_idea(self, idea_id: int) -> None:
        """After the idea's commit: embed it, store the vector, index it, flag duplicates."""
        self.jobs.enqueue(EMBED_IDEA, {"idea_id": idea_id})

    async def _store(self, session: AsyncSession, kind: str, object_id: int, partition: str, text: str,
                     vector: np.ndarray | None = None) -> np.ndarray | None:  # fmt: skip
        """Embed and store ``text`` unless this model already stored exactly it; the vector, or None."""
        digest = _hash(text)
        row = await session.scalar(
            select(StoredVector).where(StoredVector.kind == kind, StoredVector.object_id == object_id)
        )
        if (
            row is not None
            and row.model == self.model
            and row.content_hash == digest
            and row.partition == partition
        ):
            return None
        if vector is None:
            vector = await self.batcher.encode_one(text)
        values = {"partition": partition, "model": self.model, "dimension": self.embedder.dimension,
                  "vector": np.asarray(vector, dtype="<f4").tobytes(), "content_hash": digest,
                  "updated_at": datetime.now(UTC)}  # fmt: skip
        if row is None:
            session.add(StoredVector(kind=kind, object_id=object_id, **values))
        else:
            for key, value in values.items():
                setattr(row, key, value)
        await session.commit()
        await asyncio.to_thread(self.index.partition(partition).add, [object_id], vector[None, :])
        self._changed()
        return vector

    async def embed_idea(self, idea_id: int) -> None:
        async with self.db.sessionmaker() as session:
            idea = await session.get(Idea, idea_id)
            if idea is None:
                return
            challenge_id, text = idea.challenge_id, idea_text(idea.title, idea.body)
            vector = await self._store(session, "idea", idea_id, idea_partition(challenge_id), text)
            if vector is not None:
                await self.flag_duplicates(session, idea_id, challenge_id, text, vector)

    def schedule_profile(self, kind: str, object_id: int) -> None:
        """After an expert ("expert") or partner ("partner") profile's commit: embed it (the core's hook)."""
        self.jobs.enqueue(EMBED_PROFILE, {"kind": kind, "object_id": object_id})

    async def embed_profile(self, kind: str, object_id: int) -> None:
        """Store the vectors of a profile: an expert's expertise and keywords; a partner's offer and,
        separately, its needs. An emptied text drops its vector."""
        async with self.db.sessionmaker() as session:
            await self._embed_profile(session, kind, object_id)

    async def _embed_profile(self, session: AsyncSession, kind: str, object_id: int) -> None:
        texts: list[tuple[str, str, str]] = []  # (kind, partition, text)
        if kind == "expert":
            expert = await session.get(ExpertProfile, object_id)
            if expert is None:
                return
            texts.append(("expert", EXPERTS, expert.embedding_text()))
        elif kind == "partner":
            partner = await session.get(PartnerProfile, object_id)
            if partner is None:
                return
            texts += [("partner", PARTNERS, partner.offers_text()),
                      ("partner_seeks", PARTNER_SEEKS, partner.seeks_text())]  # fmt: skip
        else:
            raise ValueError(f"unknown profile kind {kind!r}")
        for vector_kind, partition, text in texts:
            if text:
                await self._store(session, vector_kind, object_id, partition, text)
            else:
                await self._forget(session, vector_kind, object_id, partition)

    async def _forget(self, session: AsyncSession, kind: str, object_id: int, partition: str) -> None:
        deleted = await session.execute(
            delete(StoredVector).where(StoredVector.kind == kind, StoredVector.object_id == object_id)
        )
        await session.commit()
        if getattr(deleted, "rowcount", 0):
            await asyncio.to_thread(self.index.partition(partition).remove, [object_id])
            self._changed()

    async def flag_duplicates(self, session: AsyncSession, idea_id: int, challenge_id: int, text: str,
                              vector: np.ndarray) -> int:  # fmt: skip
        """Record a pair for moderators for every older idea the scorer calls the same; never one that
        was already recorded (in any state: a "not duplicates" decision is final)."""
        hits = await asyncio.to_thread(
            self.index.partition(idea_partition(challenge_id)).search, vector, CANDIDATES
        )
        older = [h for h in hits if h.id < idea_id]
        if not older:
            return 0
        rows = await session.execute(
            select(Idea.id, Idea.title, Idea.body).where(
                Idea.id.in_([h.id for h in older]), Idea.status == IdeaStatus.PUBLISHED
            )
        )
        texts = {i: idea_text(t, b) for i, t, b in rows}
        known = set(await session.scalars(
            select(DuplicatePair.existing_id).where(DuplicatePair.idea_id == idea_id)
        ))  # fmt: skip
        added = 0
        for hit in older:
            if hit.id not in texts or hit.id in known:
                continue
            verdict = self.scorer.judge(texts[hit.id], text, hit.score)
            if verdict.duplicate:
                session.add(DuplicatePair(challenge_id=challenge_id, idea_id=idea_id, existing_id=hit.id,
                                          probability=verdict.probability))  # fmt: skip
                added += 1
        if added:
            await session.commit()
        return added

    async def forget_idea(self, session: AsyncSession, idea_id: int, challenge_id: int) -> None:
        await session.execute(
            delete(StoredVector).where(StoredVector.kind == "idea", StoredVector.object_id == idea_id)
        )
        await asyncio.to_thread(self.index.partition(idea_partition(challenge_id)).remove, [idea_id])
        self._changed()

    def _changed(self) -> None:
        self._dirty = True
        if self.on_change is not None:
            self.on_change()

    async def catch_up(self) -> None:
        """Take in the vectors other processes stored since this index's high-water mark; rebuild from the
        rows when some were dropped meanwhile (the counts then differ)."""
        async with self.db.sessionmaker() as session:
            # A row's time is set before its commit, so a slow writer's row can land behind the mark: read the
            # last seconds again (re-adding a vector replaces it).
            since = datetime.fromtimestamp(self.index.high_water / 1_000_000, UTC) - CATCH_UP_MARGIN
            newest = await self._index_rows(session, self.index, since)
            self.index.high_water = max(self.index.high_water, newest)
            count, _newest = await self._stored_mark(session)
            if len(self.index) != count:
                log.info(
                    "vector index differs from the stored rows; rebuilding",
                    index=len(self.index),
                    stored=count,
                )
                await self.rebuild_index(session)

    async def _index_rows(self, session: AsyncSession, index: IndexSet, since: datetime | None) -> int:
        """Add this model's stored vectors (those updated after ``since``; all with None) to ``index``, one
        call per partition; returns the newest row's mark (0 for none)."""
        query = select(
            StoredVector.object_id, StoredVector.partition, StoredVector.vector, StoredVector.updated_at
        )
        query = query.where(
            StoredVector.model == self.model, StoredVector.dimension == self.embedder.dimension
        )
        if since is not None:
            query = query.where(StoredVector.updated_at > since)
        grouped: dict[str, tuple[list[int], list[bytes]]] = {}
        newest = 0
        for object_id, partition, vector, updated_at in await session.execute(query):
            ids, vectors = grouped.setdefault(partition, ([], []))
            ids.append(object_id)
            vectors.append(vector)
            newest = max(newest, _stamp(updated_at))
        for partition, (ids, vectors) in grouped.items():
            matrix = np.frombuffer(b"".join(vectors), dtype="<f4").reshape(len(ids), self.embedder.dimension)
            await asyncio.to_thread(index.partition(partition).add, ids, matrix)
        return newest

    # --- reading -----------------------------------------------------------------------------------

    async def similar_to_text(self, session: AsyncSession, challenge_id: int, title: str, body: str, *,
                              exclude: Sequence[int] = (), limit: int = SUGGESTIONS) -> list[Suggestion]:  # fmt: skip
        """Published ideas of the challenge that look like this text: duplicates first, then related."""
        text = idea_text(title, body)
        if not is_meaningful(text):
            return []
        part = self.index.get(idea_partition(challenge_id))
        if part is None or not len(part):
            return []
        vector = await self.batcher.encode_one(text)
        return await self._judged(
            session,
            await asyncio.to_thread(part.search, vector, CANDIDATES + len(exclude)),
            text,
            exclude,
            limit,
        )

    async def similar_to_idea(
        self, session: AsyncSession, idea: Idea, *, limit: int = SUGGESTIONS
    ) -> list[Suggestion]:
        part = self.index.get(idea_partition(idea.challenge_id))
        if part is None or idea.id not in part:
            return []
        vector = (await asyncio.to_thread(part.vectors, [idea.id]))[0]
        hits = await asyncio.to_thread(part.search, vector, CANDIDATES + 1)
        return await self._judged(session, hits, idea_text(idea.title, idea.body), [idea.id], limit)

    async def _judged(self, session: AsyncSession, hits: Sequence[Hit], text: str, exclude: Sequence[int],
                      limit: int) -> list[Suggestion]:  # fmt: skip
        scores = {h.id: h.score for h in hits if h.id not in exclude}
        if not scores:
            return []
        ideas = {i.id: i for i in await session.scalars(
            select(Idea).where(Idea.id.in_(scores), Idea.status == IdeaStatus.PUBLISHED)
        )}  # fmt: skip
        judged = [Suggestion(ideas[i], self.scorer.judge(idea_text(ideas[i].title, ideas[i].body), text, s))
                  for i, s in scores.items() if i in ideas]  # fmt: skip
        shown = [s for s in judged if s.verdict.related]
        shown.sort(key=lambda s: (not s.verdict.duplicate, -s.verdict.probability))
        return shown[:limit]

    async def search_ideas(
        self, session: AsyncSession, challenge_id: int, query: str, limit: int = 20
    ) -> list[int]:
        """Ids of the challenge's ideas by closeness in meaning to ``query``, nearest first."""
        part = self.index.get(idea_partition(challenge_id))
        if not query.strip() or part is None or not len(part):
            return []
        vector = await self.batcher.encode_one(query)
        return [h.id for h in await asyncio.to_thread(part.search, vector, limit)]

    async def search_challenges(self, session: AsyncSession, query: str, candidates: Sequence[Challenge],
                                limit: int = 50, floor: float = 0.2) -> list[int]:  # fmt: skip
        """Ids of ``candidates`` by closeness in meaning to ``query``; embeds any challenge whose text changed."""
        if not query.strip() or not candidates:
            return []
        await self._embed_challenges(session, candidates)
        part = self.index.partition(DIRECTORY)
        vector = await self.batcher.encode_one(query)
        wanted = {c.id for c in candidates}
        hits = await asyncio.to_thread(part.search, vector, len(part))
        return [h.id for h in hits if h.id in wanted and h.score >= floor][:limit]

    async def _embed_challenges(self, session: AsyncSession, challenges: Sequence[Challenge]) -> None:
        texts = {c.id: challenge_text(c) for c in challenges}
        stored = dict((await session.execute(
            select(StoredVector.object_id, StoredVector.content_hash).where(
                StoredVector.kind == "challenge", StoredVector.object_id.in_(texts), StoredVector.model == self.model)
        )).all())  # fmt: skip
        changed = [
            i
            for i, t in texts.items()
            if stored.get(i) != _hash(t) or i not in self.index.partition(DIRECTORY)
        ]
        if not changed:
            return
        vectors = await self.batcher.encode([texts[i] for i in changed])
        for challenge_id, vector in zip(changed, vectors, strict=True):
            await self._store(session, "challenge", challenge_id, DIRECTORY, texts[challenge_id], vector)

    # --- re-embedding (a new model) ----------------------------------------------------------------

    async def outdated(self, session: AsyncSession) -> int:
        """Ideas without a vector from this model."""
        current = select(StoredVector.object_id).where(
            StoredVector.kind == "idea", StoredVector.model == self.model
        )
        return (
            await session.scalar(select(func.count()).select_from(Idea).where(Idea.id.not_in(current))) or 0
        )

    async def reembed(self, progress: Callable[[int], None] | None = None, batch: int = 64) -> int:
        """Embed every idea that has no vector from this model, in batches; then rebuild the index."""
        done = 0
        async with self.db.sessionmaker() as session:
            while True:
                current = select(StoredVector.object_id).where(
                    StoredVector.kind == "idea", StoredVector.model == self.model
                )
                rows = (await session.execute(
                    select(Idea.id, Idea.challenge_id, Idea.title, Idea.body)
                    .where(Idea.id.not_in(current)).order_by(Idea.id).limit(batch)
                )).all()  # fmt: skip
                if not rows:
                    break
                texts = [idea_text(t, b) for _i, _c, t, b in rows]
                vectors = await self.batcher.encode(texts)
                for (idea_id, challenge_id, _t, _b), text, vector in zip(rows, texts, vectors, strict=True):
                    await self._store(session, "idea", idea_id, idea_partition(challenge_id), text, vector)
                    await self.flag_duplicates(session, idea_id, challenge_id, text, vector)
                done += len(rows)
                if progress:
                    progress(len(rows))
            await self._reembed_profiles(session)
            await session.execute(delete(StoredVector).where(StoredVector.model != self.model))
            await session.commit()
            await self.rebuild_index(session)
        return done

    async def _reembed_profiles(self, session: AsyncSession) -> None:
        """Expert and partner profiles without a vector from this model (a new model, or `demo load`)."""

        def current(kind: str) -> Select[int]:
            return select(StoredVector.object_id).where(
                StoredVector.kind == kind, StoredVector.model == self.model
            )

        experts = await session.scalars(
            select(ExpertProfile.id).where(ExpertProfile.id.not_in(current("expert")))
        )
        stale = PartnerProfile.id.not_in(current("partner")) | PartnerProfile.id.not_in(
            current("partner_seeks")
        )
        partners = await session.scalars(select(PartnerProfile.id).where(stale))
        for kind, ids in (("expert", list(experts)), ("partner", list(partners))):
            for object_id in ids:
                await self._embed_profile(session, kind, object_id)

    # --- partner matching (ideas/matching/partners.py) ----------------------------------------------

    async def stored_vectors(
        self, session: AsyncSession, kind: str, texts: dict[int, str]
    ) -> dict[int, np.ndarray]:
        """This model's stored vectors of these objects, where they were made from exactly these texts."""
        if not texts:
            return {}
        rows = await session.execute(
            select(StoredVector.object_id, StoredVector.vector, StoredVector.content_hash).where(
                StoredVector.kind == kind, StoredVector.object_id.in_(list(texts)),
                StoredVector.model == self.model, StoredVector.dimension == self.embedder.dimension)
        )  # fmt: skip
        return {
            object_id: np.frombuffer(vector, dtype="<f4").astype(np.float32)
            for object_id, vector, digest in rows
            if digest == _hash(texts[object_id])
        }

    async def partner_vectors(
        self, session: AsyncSession, profiles: Sequence[PartnerProfile]
    ) -> dict[int, tuple[np.ndarray, np.ndarray | None]]:
        """{profile id: (offers vector, seeks vector or None)} from this model's stored vectors; profiles
        with no vector yet, or whose text changed since, are embedded (in one batch), stored and indexed
        first. Profiles without an offer are left out."""
        wanted = {
            (kind, partition): {p.id: text for p in profiles if (text := text_of(p))}
            for kind, partition, text_of in (("partner", PARTNERS, PartnerProfile.offers_text),
                                             ("partner_seeks", PARTNER_SEEKS, PartnerProfile.seeks_text))
        }  # fmt: skip
        found = {key: await self.stored_vectors(session, key[0], texts) for key, texts in wanted.items()}
        stale = [
            (key, i, text)
            for key, texts in wanted.items()
            for i, text in texts.items()
            if i not in found[key]
        ]
        if stale:
            vectors = await self.batcher.encode([text for _key, _i, text in stale])
            for ((kind, partition), i, text), vector in zip(stale, vectors, strict=True):
                await self._store(session, kind, i, partition, text, vector)
                found[(kind, partition)][i] = np.asarray(vector, dtype=np.float32)
        offers, seeks = found[("partner", PARTNERS)], found[("partner_seeks", PARTNER_SEEKS)]
        missing = [i for i in offers if i not in self.index.partition(PARTNERS)]
        if missing:  # stored but not indexed (an index rebuilt before they were stored): index them now
            await asyncio.to_thread(
                self.index.partition(PARTNERS).add, missing, np.stack([offers[i] for i in missing])
            )
            self._dirty = True
        return {i: (offer, seeks.get(i)) for i, offer in offers.items()}

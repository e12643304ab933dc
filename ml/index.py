"""A vector index over FAISS: integer ids (ideas, challenges) to unit vectors, cosine search.

Small collections are searched exactly (a flat inner-product index). Past ``approximate_after``
vectors the collection moves to an inverted-file index (IVF), trained on what it holds, which
keeps add and remove cheap and searches a few lists instead of everything; it is retrained when
it has grown fourfold since its training. Both kinds support removal and replacement by id.

``IndexSet`` groups one index per partition (a challenge's ideas, the challenge directory) and
saves them as a snapshot directory: one FAISS file per partition and a manifest naming the
model, the dimension, a high-water mark of what the snapshot contains, and each file's SHA-256.
A snapshot that is missing, for another model, or fails its checksums is refused (``SnapshotUnusable``)
so the caller rebuilds it from the stored vectors instead of trusting it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss as _faiss
import numpy as np
import numpy.typing as npt

faiss: Any = _faiss  # its SWIG stubs do not describe the Python wrappers (remove_ids takes arrays)

APPROXIMATE_AFTER = 50_000
"""Where exact search gets slower than the typing panel can afford; measured in bench/similar_latency.py."""
# bench/similar_latency.py (2026-11-26, 2 shared cores, docs/benchmarks.md): with one FAISS thread really
# in effect (--limit-in-worker), exact search right after the query's embedding took p95 8.3 ms at 50k
# (3.4 ms in a search-only sweep), against 18.6-41 ms with FAISS's default two threads, for which 10_000
# had been chosen. IVF is as accurate (recall@5 1.000 up to 100k) but training one blocks that partition's
# searches for 5-6 s at 50k, so it should happen rarely.
NPROBE = 16
# Kept: recall@5 against exact was 1.000 at 10k-100k and 0.999 at 1M (8: 0.996 at 1M), search p95 under 1 ms.
MANIFEST = "manifest.json"
FORMAT = 1

Ids = npt.NDArray[np.int64]


_threads: int | None = None


def limit_threads(threads: int = 1) -> None:
    """How many OpenMP threads FAISS may use, in every thread that calls a ``VectorIndex`` (OpenMP's
    setting is per calling thread, so each call applies it). One suits a server on few shared cores:
    a single query's search is memory-bound, and parallel regions wait for descheduled threads
    (bench/similar_latency.py)."""
    global _threads
    _threads = threads
    faiss.omp_set_num_threads(threads)


class _Guard:
    """The index's lock, plus this thread's FAISS thread count."""

    def __init__(self) -> None:
        self._lock = threading.RLock()

    def __enter__(self) -> None:
        self._lock.acquire()
        if _threads is not None:
            faiss.omp_set_num_threads(_threads)

    def __exit__(self, *_exc: object) -> None:
        self._lock.release()


class SnapshotUnusable(Exception):
    """A snapshot that must not be used: missing, for another model, stale format or corrupt."""


@dataclass(frozen=True)
class Hit:
    id: int
    score: float
    """Cosine similarity (inner product of unit vectors), -1 to 1."""


def _as_matrix(vectors: npt.ArrayLike, dimension: int) -> npt.NDArray[np.float32]:
    matrix = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32).reshape(-1, dimension))
    return matrix


class VectorIndex:
    def __init__(
        self, dimension: int, *, approximate_after: int = APPROXIMATE_AFTER, nprobe: int = NPROBE
    ) -> None:
        self.dimension = dimension
        self.approximate_after = approximate_after
        self.nprobe = nprobe
        self._index: faiss.Index = faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
        self._ids: set[int] = set()
        self._trained_on = 0
        # Every method may be called from worker threads; one at a time per index (FAISS is not safe
        # for a search during an add). A retrain holds it for seconds: run adds off the event loop.
        self._lock = _Guard()

    @property
    def approximate(self) -> bool:
        return self._trained_on > 0

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, item: int) -> bool:
        return item in self._ids

    def ids(self) -> set[int]:
        with self._lock:
            return set(self._ids)

    def add(self, ids: Iterable[int], vectors: npt.ArrayLike) -> None:
        """Add vectors (unit length) under ``ids``; an id already present is replaced."""
        with self._lock:
            id_array = np.fromiter(ids, dtype=np.int64)
            matrix = _as_matrix(vectors, self.dimension)
            if len(id_array) != len(matrix):
                raise ValueError(f"{len(id_array)} ids for {len(matrix)} vectors")
            if len(np.unique(id_array)) != len(id_array):
                raise ValueError("duplicate ids in one add")
            present = [int(i) for i in id_array if int(i) in self._ids]
            if present:
                self.remove(present)
            self._index.add_with_ids(matrix, id_array)
            self._ids.update(int(i) for i in id_array)
            self._maybe_reorganise()

    def remove(self, ids: Iterable[int]) -> int:
        """Remove ``ids`` (unknown ones are ignored); returns how many were removed."""
        with self._lock:
            known = np.fromiter((i for i in ids if i in self._ids), dtype=np.int64)
            if len(known) == 0:
                return 0
            removed = int(self._index.remove_ids(known))
            self._ids.difference_update(int(i) for i in known)
            return removed

    def vectors(self, ids: Iterable[int]) -> npt.NDArray[np.float32]:
        with self._lock:
            wanted = list(ids)
            if not wanted:
                return np.zeros((0, self.dimension), dtype=np.float32)
            return np.vstack([self._index.reconstruct(int(i)) for i in wanted]).astype(np.float32)

    def search(self, query: npt.ArrayLike, k: int) -> list[Hit]:
        """The ``k`` nearest ids to one query vector, best first."""
        return self.search_many(query, k)[0]

    def search_many(self, queries: npt.ArrayLike, k: int) -> list[list[Hit]]:
        with self._lock:
            matrix = _as_matrix(queries, self.dimension)
            if not self._ids or k <= 0:
                return [[] for _ in range(len(matrix))]
            scores, labels = self._index.search(matrix, min(k, len(self._ids)))
            return [
                [Hit(int(i), float(s)) for i, s in zip(row_ids, row_scores, strict=True) if i >= 0]
                for row_ids, row_scores in zip(labels, scores, strict=True)
            ]

    def _all(self) -> tuple[Ids, npt.NDArray[np.float32]]:
        ids = np.fromiter(sorted(self._ids), dtype=np.int64)
        return ids, self.vectors(ids)

    def _maybe_reorganise(self) -> None:
        size = len(self._ids)
        if size < self.approximate_after or (self._trained_on and size < 4 * self._trained_on):
            return
        ids, vectors = self._all()
        nlist = max(1, min(int(4 * math.sqrt(size)), size // 40))  # FAISS wants ~40 points per list
        quantizer = faiss.IndexFlatIP(self.dimension)
        ivf = faiss.IndexIVFFlat(quantizer, self.dimension, nlist, faiss.METRIC_INNER_PRODUCT)
        sample = (
            vectors
            if size <= 64 * nlist
            else vectors[np.random.default_rng(0).choice(size, 64 * nlist, replace=False)]
        )
        ivf.train(sample)
        ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
        ivf.nprobe = self.nprobe
        ivf.add_with_ids(vectors, ids)
        self._index = ivf
        self._trained_on = size

    # Persistence of a single index: FAISS's own serialisation, checked by the caller's checksum.
    def to_bytes(self) -> bytes:
        with self._lock:
            return bytes(faiss.serialize_index(self._index))

    @classmethod
    def from_bytes(cls, data: bytes, dimension: int, *, approximate_after: int = APPROXIMATE_AFTER,
                   trained_on: int = 0) -> VectorIndex:  # fmt: skip
        index = cls(dimension, approximate_after=approximate_after)
        loaded = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        if loaded.d != dimension:
            raise SnapshotUnusable(f"index dimension {loaded.d}, expected {dimension}")
        if isinstance(loaded, faiss.IndexIVF):
            loaded.nprobe = index.nprobe
            loaded.set_direct_map_type(faiss.DirectMap.Hashtable)
            ids = _ivf_ids(loaded)
        else:
            # Already the concrete class (IndexIDMap2). Do not rebind ``loaded`` to a second wrapper
            # (``faiss.downcast_index``): that one does not own the C++ index, which the first
            # wrapper frees when it is collected, leaving this index searching freed memory.
            ids = faiss.vector_to_array(loaded.id_map)
        index._index = loaded
        index._ids = {int(i) for i in ids}
        index._trained_on = trained_on if isinstance(loaded, faiss.IndexIVF) else 0
        return index


def _ivf_ids(ivf: faiss.IndexIVF) -> npt.NDArray[np.int64]:
    lists = ivf.invlists
    parts = []
    for number in range(ivf.nlist):
        size = lists.list_size(number)
        if size:
            parts.append(faiss.rev_swig_ptr(lists.get_ids(number), size).copy())
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


class IndexSet:
    """One ``VectorIndex`` per partition name, all of one model and dimension."""

    def __init__(self, model: str, dimension: int, *, approximate_after: int = APPROXIMATE_AFTER) -> None:
        self.model = model
        self.dimension = dimension
        self.approximate_after = approximate_after
        self.high_water = 0
        """The caller's mark of the newest stored change this set contains (e.g. a sequence number)."""
        self._parts: dict[str, VectorIndex] = {}

    def partition(self, name: str) -> VectorIndex:
        part = self._parts.get(name)
        if part is None:
            part = self._parts[name] = VectorIndex(self.dimension, approximate_after=self.approximate_after)
        return part

    def get(self, name: str) -> VectorIndex | None:
        return self._parts.get(name)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._parts))

    def __len__(self) -> int:
        return sum(len(p) for p in self._parts.values())

    def save(self, directory: Path) -> None:
        """Write a snapshot atomically: a reader sees the old one or the new one, never half."""
        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
        try:
            files: dict[str, dict[str, object]] = {}
            for number, name in enumerate(sorted(self._parts)):
                part = self._parts[name]
                data = part.to_bytes()
                filename = f"part-{number}.faiss"
                (staging / filename).write_bytes(data)
                files[name] = {"file": filename, "sha256": hashlib.sha256(data).hexdigest(), "count": len(part),
                               "trained_on": part._trained_on}  # fmt: skip
            manifest = {"format": FORMAT, "model": self.model, "dimension": self.dimension,
                        "high_water": self.high_water, "partitions": files}  # fmt: skip
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=1))
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)  # a failed save leaves no staging directory behind
            raise
        old = directory.with_name(f".{directory.name}-old")
        if old.exists():
            shutil.rmtree(old)
        if directory.exists():
            os.replace(directory, old)
        os.replace(staging, directory)
        shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, directory: Path, model: str, dimension: int, *,
             approximate_after: int = APPROXIMATE_AFTER) -> IndexSet:  # fmt: skip
        """The snapshot in ``directory``; raises ``SnapshotUnusable`` rather than return a doubtful one."""
        directory = Path(directory)
        try:
            manifest = json.loads((directory / MANIFEST).read_text())
        except FileNotFoundError as exc:
            raise SnapshotUnusable(f"no snapshot in {directory}") from exc
        except (OSError, ValueError) as exc:
            raise SnapshotUnusable(f"unreadable manifest in {directory}: {exc}") from exc
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise SnapshotUnusable("unknown snapshot format")
        if manifest.get("model") != model or manifest.get("dimension") != dimension:
            raise SnapshotUnusable(f"snapshot is for {manifest.get('model')!r} ({manifest.get('dimension')}), "
                                   f"not {model!r} ({dimension})")  # fmt: skip
        loaded = cls(model, dimension, approximate_after=approximate_after)
        try:
            loaded.high_water = int(manifest["high_water"])
            for name, entry in dict(manifest["partitions"]).items():
                data = (directory / str(entry["file"])).read_bytes()
                if hashlib.sha256(data).hexdigest() != entry["sha256"]:
                    raise SnapshotUnusable(f"checksum mismatch for partition {name}")
                part = VectorIndex.from_bytes(data, dimension, approximate_after=approximate_after,
                                              trained_on=int(entry.get("trained_on", 0)))  # fmt: skip
                if len(part) != int(entry["count"]):
                    raise SnapshotUnusable(
                        f"partition {name} holds {len(part)} vectors, expected {entry['count']}"
                    )
                loaded._parts[str(name)] = part
        except SnapshotUnusable:
            raise
        except Exception as exc:  # FAISS raises RuntimeError on a damaged file; anything else is as bad
            raise SnapshotUnusable(f"damaged snapshot in {directory}: {exc}") from exc
        return loaded

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import faiss
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ml.index import MANIFEST, IndexSet, SnapshotUnusable, VectorIndex, limit_threads
from tests.ml.conftest import unit_vectors

D = 16


def own_id_first(index: VectorIndex, ids: list[int], vectors: np.ndarray) -> None:
    results = index.search_many(vectors, 3)
    assert [hits[0].id for hits in results] == ids
    for hits in results:
        assert hits[0].score == pytest.approx(1.0, abs=1e-4)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_exact_add_search_remove_replace() -> None:
    index = VectorIndex(D)
    vectors = unit_vectors(20, D)
    index.add(range(100, 120), vectors)
    assert not index.approximate
    assert len(index) == 20
    assert 105 in index
    assert index.ids() == set(range(100, 120))
    own_id_first(index, list(range(100, 120)), vectors)
    np.testing.assert_allclose(index.vectors([103, 107]), vectors[[3, 7]], atol=1e-6)

    assert index.remove([105, 106, 999]) == 2
    assert 105 not in index
    assert len(index) == 18
    assert all(hit.id != 105 for hit in index.search(vectors[5], 18))

    replacement = unit_vectors(1, D, seed=99)
    index.add([110], replacement)
    assert len(index) == 18
    assert index.search(replacement[0], 1)[0].id == 110
    assert index.search(vectors[10], 1)[0].id != 110
    np.testing.assert_allclose(index.vectors([110]), replacement, atol=1e-6)


def test_search_edge_cases() -> None:
    index = VectorIndex(D)
    assert index.search(unit_vectors(1, D)[0], 5) == []
    index.add([1, 2], unit_vectors(2, D))
    assert len(index.search(unit_vectors(1, D, seed=3)[0], 10)) == 2  # k larger than the index
    assert index.search(unit_vectors(1, D)[0], 0) == []
    assert index.vectors([]).shape == (0, D)


def test_add_rejects_inconsistent_input() -> None:
    index = VectorIndex(D)
    with pytest.raises(ValueError, match="ids for"):
        index.add([1, 2, 3], unit_vectors(2, D))
    with pytest.raises(ValueError, match="duplicate"):
        index.add([1, 1], unit_vectors(2, D))
    assert len(index) == 0


def test_approximate_mode_add_search_remove_replace() -> None:
    index = VectorIndex(D, approximate_after=200, nprobe=2)
    vectors = unit_vectors(400, D)
    index.add(range(150), vectors[:150])
    exact_while_small = not index.approximate
    index.add(range(150, 400), vectors[150:])
    assert exact_while_small
    assert index.approximate  # moved to IVF (about ten lists, two probed)
    own_id_first(index, list(range(400)), vectors)

    assert index.remove([7, 8]) == 2
    assert len(index) == 398
    assert 7 not in index
    assert all(hit.id not in (7, 8) for hit in index.search(vectors[7], 10))

    replacement = unit_vectors(1, D, seed=99)
    index.add([20], replacement)
    assert index.search(replacement[0], 1)[0].id == 20
    assert index.search(vectors[20], 1)[0].id != 20
    np.testing.assert_allclose(index.vectors([20]), replacement, atol=1e-6)


def test_approximate_index_is_retrained_as_it_grows() -> None:
    index = VectorIndex(D, approximate_after=100, nprobe=2)
    vectors = unit_vectors(500, D)
    index.add(range(100), vectors[:100])
    assert index.approximate
    for start in range(100, 500, 100):
        index.add(range(start, start + 100), vectors[start : start + 100])
    assert len(index) == 500
    own_id_first(index, list(range(500)), vectors)


# --- snapshots ---------------------------------------------------------------------------------


def make_set() -> tuple[IndexSet, dict[str, tuple[list[int], np.ndarray]]]:
    """Two exact partitions and one that has gone approximate."""
    content = {
        "challenge-1": (list(range(1, 11)), unit_vectors(10, D, seed=1)),
        "challenge-2": ([42], unit_vectors(1, D, seed=2)),
        "directory": (list(range(1000, 1300)), unit_vectors(300, D, seed=3)),
    }
    indexes = IndexSet("test-model", D, approximate_after=200)
    for name, (ids, vectors) in content.items():
        indexes.partition(name).add(ids, vectors)
    indexes.high_water = 1234
    return indexes, content


def test_snapshot_round_trip(tmp_path: Path) -> None:
    indexes, content = make_set()
    indexes.save(tmp_path / "snap")
    loaded = IndexSet.load(tmp_path / "snap", "test-model", D, approximate_after=200)
    assert loaded.high_water == 1234
    assert list(loaded) == sorted(content)
    assert len(loaded) == 311
    for name, (ids, vectors) in content.items():
        part = loaded.get(name)
        assert part is not None
        assert part.ids() == set(ids)
        own_id_first(part, ids, vectors)
    directory = loaded.get("directory")
    assert directory is not None
    assert directory.approximate
    challenge = loaded.get("challenge-1")
    assert challenge is not None
    assert not challenge.approximate
    # The loaded indexes stay usable: add, replace and remove.
    for part, (first, second) in ((directory, (1000, 1001)), (challenge, (1, 2))):
        extra = unit_vectors(2, D, seed=50)
        part.add([5000, first], extra)
        assert part.remove([second]) == 1
        assert second not in part
        assert part.search(extra[0], 1)[0].id == 5000
        assert part.search(extra[1], 1)[0].id == first


def test_empty_set_round_trip(tmp_path: Path) -> None:
    IndexSet("test-model", D).save(tmp_path / "snap")
    loaded = IndexSet.load(tmp_path / "snap", "test-model", D)
    assert len(loaded) == 0
    assert list(loaded) == []
    assert loaded.high_water == 0


@pytest.fixture
def snapshot(tmp_path: Path) -> Path:
    make_set()[0].save(tmp_path / "snap")
    return tmp_path / "snap"


def partition_files(snapshot: Path) -> list[Path]:
    return sorted(snapshot.glob("*.faiss"))


def test_load_refuses_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(SnapshotUnusable, match="no snapshot"):
        IndexSet.load(tmp_path / "nothing-here", "test-model", D)


def test_load_refuses_another_model(snapshot: Path) -> None:
    with pytest.raises(SnapshotUnusable, match="other-model"):
        IndexSet.load(snapshot, "other-model", D)


def test_load_refuses_another_dimension(snapshot: Path) -> None:
    with pytest.raises(SnapshotUnusable, match="32"):
        IndexSet.load(snapshot, "test-model", 32)


@pytest.mark.parametrize("victim", [0, 1, 2])
def test_load_refuses_a_flipped_byte(snapshot: Path, victim: int) -> None:
    path = partition_files(snapshot)[victim]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(SnapshotUnusable, match="checksum"):
        IndexSet.load(snapshot, "test-model", D)


def test_load_refuses_a_truncated_partition(snapshot: Path) -> None:
    path = partition_files(snapshot)[-1]
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(SnapshotUnusable):
        IndexSet.load(snapshot, "test-model", D)


def test_load_refuses_a_missing_partition_file(snapshot: Path) -> None:
    partition_files(snapshot)[0].unlink()
    with pytest.raises(SnapshotUnusable):
        IndexSet.load(snapshot, "test-model", D)


@pytest.mark.parametrize("garbage", ["{ not json", "", "[1, 2]", '{"format": 99}', "\udcff"])
def test_load_refuses_a_garbage_manifest(snapshot: Path, garbage: str) -> None:
    (snapshot / MANIFEST).write_bytes(garbage.encode("utf-8", "surrogateescape"))
    with pytest.raises(SnapshotUnusable):
        IndexSet.load(snapshot, "test-model", D)


def test_load_refuses_a_manifest_whose_counts_disagree(snapshot: Path) -> None:
    manifest = json.loads((snapshot / MANIFEST).read_text())
    manifest["partitions"]["challenge-1"]["count"] = 11
    (snapshot / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(SnapshotUnusable, match="challenge-1"):
        IndexSet.load(snapshot, "test-model", D)


def test_a_second_save_replaces_the_first_and_leaves_nothing_behind(snapshot: Path) -> None:
    second = IndexSet("test-model", D)
    second.partition("only").add([7], unit_vectors(1, D, seed=7))
    second.high_water = 2000
    second.save(snapshot)
    loaded = IndexSet.load(snapshot, "test-model", D)
    assert list(loaded) == ["only"]
    assert loaded.high_water == 2000
    assert sorted(p.name for p in snapshot.parent.iterdir()) == ["snap"]


def test_a_failed_save_leaves_the_previous_snapshot_loadable(
    snapshot: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = {p.name: p.read_bytes() for p in snapshot.iterdir()}
    calls = 0

    def fails_on_second_partition(self: VectorIndex) -> bytes:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise OSError("disk full")
        return b"partial"

    changed, _content = make_set()
    changed.high_water = 9999
    monkeypatch.setattr(VectorIndex, "to_bytes", fails_on_second_partition)
    with pytest.raises(OSError, match="disk full"):
        changed.save(snapshot)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in snapshot.iterdir()} == before
    assert IndexSet.load(snapshot, "test-model", D, approximate_after=200).high_water == 1234
    assert sorted(p.name for p in snapshot.parent.iterdir()) == ["snap"]  # no staging directory left


def test_save_into_a_new_nested_directory(tmp_path: Path) -> None:
    indexes, _content = make_set()
    indexes.save(tmp_path / "a" / "b" / "snap")
    assert IndexSet.load(tmp_path / "a" / "b" / "snap", "test-model", D).high_water == 1234
    shutil.rmtree(tmp_path / "a")


# --- property: the index agrees with a plain dict -------------------------------------------------

operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.lists(st.integers(0, 25), min_size=1, max_size=4, unique=True)),
        st.tuples(st.just("remove"), st.lists(st.integers(0, 25), max_size=4)),
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations)
def test_index_agrees_with_a_dict_after_any_adds_and_removes(ops: list[tuple[str, list[int]]]) -> None:
    index = VectorIndex(D)
    model: dict[int, np.ndarray] = {}
    for number, (kind, ids) in enumerate(ops):
        if kind == "add":
            vectors = unit_vectors(len(ids), D, seed=number + 1)
            index.add(ids, vectors)
            model.update(zip(ids, vectors, strict=True))
        else:
            removed = index.remove(ids)
            assert removed == len(set(ids) & model.keys())
            for i in ids:
                model.pop(i, None)
    assert index.ids() == set(model)
    assert len(index) == len(model)
    if model:
        ids = sorted(model)
        stored = np.vstack([model[i] for i in ids])
        own_id_first(index, ids, stored)
        np.testing.assert_allclose(index.vectors(ids), stored, atol=1e-6)


async def test_the_thread_limit_reaches_searches_made_from_worker_threads() -> None:
    """OpenMP's thread count is per calling thread: the app searches from asyncio.to_thread workers,
    where a limit set on the event loop's thread alone would not apply (bench/similar_latency.py)."""
    limit_threads(1)
    index = VectorIndex(8)
    index.add(range(20), unit_vectors(20, 8))

    def search_in_a_fresh_thread() -> int:
        index.search(unit_vectors(1, 8, seed=3)[0], 3)
        return int(faiss.omp_get_max_threads())

    assert await asyncio.to_thread(search_in_a_fresh_thread) == 1

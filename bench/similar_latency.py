""" "Similar ideas" latency (issue 5): embed the typed text, then search the vector index for the top 5.

    .venv/bin/python bench/similar_latency.py [--sizes 10000,100000,1000000] [--queries 300]
        [--faiss-threads 1] [--precision auto]

It runs what the app runs (``ideas.similarity.Similarity``): FAISS limited to ``--faiss-threads``
OpenMP threads with ``ml.index.limit_threads`` (the app: 1; pass 2, FAISS's default on this host, to
reproduce the figures from before that change), the query embedded through ``ml.batching.MicroBatcher``
over ``SentenceTransformerEmbedder(DEFAULT_MODEL, precision=--precision)`` (the app's default setting
``IDEAFORGE_EMBEDDING_PRECISION=auto``), and each search called through ``asyncio.to_thread`` as the app
calls it (the thread hop is part of the search time reported).

Caution: ``omp_set_num_threads`` sets the OpenMP thread count of the *calling* thread only. The app calls
``limit_threads(1)`` once, on the event loop's thread, so its ``asyncio.to_thread`` searches still run
with FAISS's default (2 here); this script does the same by default. ``--limit-in-worker`` also sets
the count inside the worker thread before each search, i.e. what ``limit_threads(1)`` is meant to give.

For each size, the same stored vectors go into two ``ml.index.VectorIndex`` objects: one kept exact
(flat inner product, ``approximate_after`` above the size) and one forced to the IVF mode
(``approximate_after`` = the size, so it trains once on everything it holds, as the app would when it
crosses the threshold). Vectors are added in chunks of ``--chunk``.

Stored vectors are **synthetic**, dimension 384, but shaped like text embeddings: each is a real
MiniLM embedding of one of the dev texts (the centre) plus a smaller random share of two other
centres plus Gaussian noise, normalised to unit length (the centres come from the same embedder and
precision as the queries). Queries are real: a prefix (50-100% of the
words) of a dev text, embedded through ``ml.batching.MicroBatcher`` one requester at a time.

Each query is embedded once and searched in both indexes, in alternating order; latency per mode =
embed time + that mode's search time for the same query. Also measured: recall@5 of the IVF index
against the exact one, an ``nprobe`` sweep on the IVF index (search only), build time, the index's
serialised size (``len(index.to_bytes())``) and the process RSS growth while building it. An exact
search-only sweep at more sizes compares ``--faiss-threads`` with FAISS's default thread count,
query by query (skipped when they are equal).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import gc
import random
import sys
import time
from typing import Any

import numpy as np
from _mlcommon import (
    DEDUP_DEV,
    CpuWindow,
    command_line,
    log,
    machine_info,
    machine_line,
    now,
    percentile,
    print_table,
    rss_bytes,
    write_results,
)

from ml import dedup, index
from ml.batching import MicroBatcher
from ml.embedding import DEFAULT_MODEL, PRECISIONS, SentenceTransformerEmbedder
from ml.index import VectorIndex, limit_threads

DIMENSION = 384
K = 5
TARGETS_MS = {100_000: 30.0, 1_000_000: 50.0}  # end-to-end p95 at most
RAM_TARGET_BYTES = 2 * 1024**3  # index RAM at 1M at most
NEVER = 10**15
FAISS_DEFAULT_THREADS = int(index.faiss.omp_get_max_threads())  # before anything limits it


def trim_heap() -> None:
    """Give freed heap memory back to the OS so RSS deltas show what is still held."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: RSS deltas are then an upper bound
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def synthetic_vectors(centres: np.ndarray, n: int, noise: float, seed: int, chunk: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, centres.shape[1]), dtype=np.float32)
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        main = centres[rng.integers(0, len(centres), m)]
        mix = rng.uniform(0, 0.5, (m, 2)).astype(np.float32)
        others = centres[rng.integers(0, len(centres), (m, 2))]
        block = main + (mix[:, :, None] * others).sum(axis=1)
        block += rng.normal(0, noise, block.shape).astype(np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start : start + m] = block
    return out


def build(vectors: np.ndarray, approximate_after: int, chunk: int) -> tuple[VectorIndex, float, int]:
    trim_heap()
    before = rss_bytes()
    t0 = time.perf_counter()
    built = VectorIndex(DIMENSION, approximate_after=approximate_after)
    for start in range(0, len(vectors), chunk):
        built.add(range(start, min(start + chunk, len(vectors))), vectors[start : start + chunk])
    seconds = time.perf_counter() - t0
    trim_heap()
    return built, seconds, rss_bytes() - before


def summary(values_ms: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(values_ms, 50), 3),
        "p95_ms": round(percentile(values_ms, 95), 3),
        "mean_ms": round(float(np.mean(values_ms)), 3),
        "max_ms": round(max(values_ms), 3),
    }


def overlap(a: list[index.Hit], b: list[index.Hit]) -> float:
    return len({h.id for h in a} & {h.id for h in b}) / max(1, len(b))


LIMIT_IN_WORKER: int | None = None
"""FAISS threads to set inside the worker thread before each search (``--limit-in-worker``), or None."""


def search_in_worker(target: VectorIndex, v: np.ndarray) -> list[index.Hit]:
    if LIMIT_IN_WORKER is not None:
        limit_threads(LIMIT_IN_WORKER)  # per thread: the caller's setting does not reach this thread
    return target.search(v, K)


async def measure(
    batcher: MicroBatcher,
    queries: list[str],
    flat: VectorIndex,
    ivf: VectorIndex,
    nprobes: list[int],
    warmup: int,
) -> dict[str, Any]:
    for text in queries[:warmup]:
        v = await batcher.encode_one(text)
        await asyncio.to_thread(search_in_worker, flat, v)
        await asyncio.to_thread(search_in_worker, ivf, v)
    embed, search = [], {"exact": [], "ivf": []}
    vectors, recalls = [], []
    for number, text in enumerate(queries[warmup:]):
        t0 = time.perf_counter()
        v = await batcher.encode_one(text)
        embed.append((time.perf_counter() - t0) * 1000)
        vectors.append(v)
        hits: dict[str, list[index.Hit]] = {}
        for mode in ("exact", "ivf") if number % 2 == 0 else ("ivf", "exact"):
            target = flat if mode == "exact" else ivf
            t0 = time.perf_counter()
            hits[mode] = await asyncio.to_thread(search_in_worker, target, v)  # as the app calls it
            search[mode].append((time.perf_counter() - t0) * 1000)
        recalls.append(overlap(hits["ivf"], hits["exact"]))
    result: dict[str, Any] = {"embed": summary(embed)}
    for mode in ("exact", "ivf"):
        result[mode] = {
            "search": summary(search[mode]),
            "end_to_end": summary([e + s for e, s in zip(embed, search[mode], strict=True)]),
        }
    result["ivf"]["recall_at_5_vs_exact"] = round(float(np.mean(recalls)), 4)
    result["ivf"]["nprobe"] = ivf.nprobe
    # nprobe sweep on the same IVF index: search only, same query vectors, exact hits as the truth.
    truth, exact_times = [], []
    for v in vectors:
        t0 = time.perf_counter()
        truth.append(flat.search(v, K))
        exact_times.append((time.perf_counter() - t0) * 1000)
    result["exact_search_without_embed"] = summary(exact_times)
    ivf_faiss = ivf._index  # the IVF FAISS index the VectorIndex holds; its nprobe is changed only here
    sweep = {}
    for nprobe in nprobes:
        ivf_faiss.nprobe = nprobe
        times, rec = [], []
        for v, exact_hits in zip(vectors, truth, strict=True):
            t0 = time.perf_counter()
            found = ivf.search(v, K)
            times.append((time.perf_counter() - t0) * 1000)
            rec.append(overlap(found, exact_hits))
        sweep[str(nprobe)] = summary(times) | {"recall_at_5": round(float(np.mean(rec)), 4)}
    ivf_faiss.nprobe = ivf.nprobe
    result["nprobe_sweep"] = sweep
    return result


def flat_sweep(vectors: np.ndarray, sizes: list[int], queries: np.ndarray, threads: int) -> dict[str, Any]:
    """Exact search only (called directly, no thread hop), at more sizes, to see where it crosses the
    latency budget; ``threads`` FAISS OpenMP threads against FAISS's default, alternating query by query."""
    import faiss

    default_threads = FAISS_DEFAULT_THREADS
    out = {}
    for n in sizes:
        if n > len(vectors):
            continue
        flat = VectorIndex(DIMENSION, approximate_after=NEVER)
        flat.add(range(n), vectors[:n])
        for v in queries[:10]:
            flat.search(v, K)
        times: dict[int, list[float]] = {default_threads: [], threads: []}
        with CpuWindow() as cpu:
            for number, v in enumerate(queries):
                for count in (default_threads, threads) if number % 2 == 0 else (threads, default_threads):
                    faiss.omp_set_num_threads(count)
                    t0 = time.perf_counter()
                    flat.search(v, K)
                    times[count].append((time.perf_counter() - t0) * 1000)
        limit_threads(threads)
        out[str(n)] = {f"{t}_threads": summary(v) for t, v in times.items()} | {"cpu": cpu.report()}
        log(f"flat sweep {n:,}: {out[str(n)]}")
        del flat
        trim_heap()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000,1000000", help="stored vectors, comma-separated")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--chunk", type=int, default=100_000, help="vectors per add() call")
    parser.add_argument("--noise", type=float, default=0.03, help="Gaussian noise per component")
    parser.add_argument("--nprobes", default="1,4,8,16,32,64", help="IVF nprobe values for the sweep")
    parser.add_argument("--flat-sweep", default="10000,25000,50000,100000,200000",
                        help="extra sizes for an exact search-only sweep ('' to skip)")  # fmt: skip
    parser.add_argument("--sweep-queries", type=int, default=100, help="queries per size in the exact sweep")
    parser.add_argument("--max-wait", type=float, default=0.002, help="MicroBatcher max_wait (s)")
    parser.add_argument("--faiss-threads", type=int, default=1,
                        help="FAISS OpenMP threads, set with ml.index.limit_threads (the app: 1)")  # fmt: skip
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="embedder precision (the app's default setting: auto)")  # fmt: skip
    parser.add_argument("--limit-in-worker", action="store_true",
                        help="also set --faiss-threads in the worker thread of each search (not what the app does)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(",") if s)
    nprobes = [int(s) for s in args.nprobes.split(",") if s]
    extra = sorted(int(s) for s in args.flat_sweep.split(",") if s)

    global LIMIT_IN_WORKER
    limit_threads(args.faiss_threads)  # as ideas.similarity.Similarity does (with 1), on the loop's thread
    LIMIT_IN_WORKER = args.faiss_threads if args.limit_in_worker else None
    started = now()
    embedder = SentenceTransformerEmbedder(DEFAULT_MODEL, precision=args.precision)
    results: dict[str, Any] = {
        "started_at": started.isoformat(timespec="seconds"),
        "command": command_line(),
        "machine": machine_info(),
        "library_constants": {"APPROXIMATE_AFTER": index.APPROXIMATE_AFTER, "NPROBE": index.NPROBE},
        "faiss_threads": args.faiss_threads,
        "faiss_default_threads": FAISS_DEFAULT_THREADS,
        "faiss_threads_in_search_worker": args.faiss_threads
        if args.limit_in_worker
        else FAISS_DEFAULT_THREADS,
        "precision": f"{args.precision} (resolves to {embedder.precision} here)",
        "vectors": "synthetic: MiniLM embedding of a dev text + U(0,0.5) x two other such embeddings "
        f"+ N(0, {args.noise}) per component, normalised; dimension {DIMENSION}",
        "queries": f"{args.queries} prefixes (50-100% of the words) of dev texts, embedded one at a time "
        f"through MicroBatcher(max_wait={args.max_wait}) over the {embedder.precision} embedder; "
        "searches through asyncio.to_thread",
        "sizes": {},
    }
    pairs = dedup.read_pairs(DEDUP_DEV)
    texts = sorted({p.a for p in pairs} | {p.b for p in pairs})
    centres = embedder.encode(texts)
    rng = random.Random(args.seed)  # noqa: S311  # benchmark data, not secrets
    queries = []
    for _ in range(args.queries + args.warmup):
        words = rng.choice(texts).split()
        queries.append(" ".join(words[: max(3, round(len(words) * rng.uniform(0.5, 1.0)))]))
    t0 = time.perf_counter()
    all_vectors = synthetic_vectors(centres, max(sizes + extra), args.noise, args.seed, args.chunk)
    results["generate_seconds"] = round(time.perf_counter() - t0, 1)
    sample = all_vectors[:2000]
    near = (sample @ centres.T).max(axis=1)
    results["vector_shape_check"] = {
        "cosine_to_nearest_centre_mean": round(float(near.mean()), 3),
        "cosine_between_random_stored_mean": round(
            float((sample[:1000] * sample[1000:]).sum(axis=1).mean()), 3
        ),
        "cosine_between_random_dev_texts_mean": round(
            float((centres[:-1] * centres[1:]).sum(axis=1).mean()), 3
        ),
    }
    log(
        f"generated {len(all_vectors):,} vectors in {results['generate_seconds']}s; {results['vector_shape_check']}"
    )

    batcher = MicroBatcher(embedder, max_wait=args.max_wait)
    loop = asyncio.new_event_loop()
    try:
        for n in sizes:
            vectors = all_vectors[:n]
            log(f"{n:,}: building exact index")
            flat, flat_s, flat_rss = build(vectors, NEVER, args.chunk)
            flat_bytes = len(flat.to_bytes())
            log(f"{n:,}: exact built in {flat_s:.1f}s; building IVF index")
            ivf, ivf_s, ivf_rss = build(vectors, n, args.chunk)
            assert ivf.approximate
            assert not flat.approximate
            ivf_bytes = len(ivf.to_bytes())
            nlist = int(ivf._index.nlist)
            log(f"{n:,}: IVF (nlist {nlist}) built in {ivf_s:.1f}s; measuring {args.queries} queries")
            with CpuWindow() as cpu:
                m = loop.run_until_complete(measure(batcher, queries, flat, ivf, nprobes, args.warmup))
            m["cpu"] = cpu.report()
            m["exact"] |= {
                "build_seconds": round(flat_s, 2),
                "index_bytes": flat_bytes,
                "rss_delta_bytes": flat_rss,
            }
            m["ivf"] |= {"build_seconds": round(ivf_s, 2), "index_bytes": ivf_bytes, "rss_delta_bytes": ivf_rss,
                         "nlist": nlist}  # fmt: skip
            results["sizes"][str(n)] = m
            log(f"{n:,}: {m['exact']['end_to_end']} / {m['ivf']['end_to_end']}")
            del flat, ivf
            trim_heap()
        if extra:
            qv = np.vstack([loop.run_until_complete(batcher.encode_one(t)) for t in queries[args.warmup :]])
            qv = qv[: args.sweep_queries]
            if args.faiss_threads != FAISS_DEFAULT_THREADS:
                results["flat_sweep"] = flat_sweep(all_vectors, extra, qv, args.faiss_threads)
        results["batcher_stats"] = vars(batcher.stats)
        loop.run_until_complete(batcher.close())
    finally:
        loop.close()

    # ---- report ----------------------------------------------------------------------------------
    print()
    print(f'"Similar ideas" latency, {results["started_at"]} ({results["command"]})')
    print(machine_line(results["machine"]))
    print(f"stored vectors: {results['vectors']}; shape check {results['vector_shape_check']}")
    print(f"queries: {results['queries']}")
    print(f"FAISS threads: limit_threads({args.faiss_threads}) on the loop's thread; in the search worker thread "
          f"{results['faiss_threads_in_search_worker']} (FAISS default here: {FAISS_DEFAULT_THREADS}); "
          f"precision {results['precision']}")  # fmt: skip
    print(f"library constants: {results['library_constants']}")
    print()
    rows = []
    for size, m in results["sizes"].items():
        print(
            f"{int(size):,}: CPU during the queries (% of one core, machine total {100 * int(results['machine']['cores'])}): {m['cpu']}"
        )
    for size, m in results["sizes"].items():
        n = int(size)
        for mode in ("exact", "ivf"):
            f = m[mode]
            e2e = f["end_to_end"]
            target = TARGETS_MS.get(n)
            verdict = ""
            if target:
                verdict = "met" if e2e["p95_ms"] <= target else f"NOT met ({e2e['p95_ms'] / target:.2f}x)"
            label = "exact" if mode == "exact" else f"IVF nlist {f['nlist']} nprobe {f['nprobe']}"
            rows.append([
                f"{n:,}", label,
                f"{m['embed']['p50_ms']:.1f} / {m['embed']['p95_ms']:.1f}",
                f"{f['search']['p50_ms']:.2f} / {f['search']['p95_ms']:.2f}",
                f"{e2e['p50_ms']:.1f} / {e2e['p95_ms']:.1f}",
                f"<= {target:.0f}" if target else "", verdict,
                f"{f.get('recall_at_5_vs_exact', 1.0):.3f}",
                f"{f['build_seconds']:.1f}",
                f"{f['index_bytes'] / 2**20:.0f}", f"{f['rss_delta_bytes'] / 2**20:.0f}",
            ])  # fmt: skip
    print_table(
        ["vectors", "mode", "embed p50/p95 ms", "search p50/p95 ms", "total p50/p95 ms", "p95 target", "verdict",
         "recall@5", "build s", "index MiB", "RSS delta MiB"],
        rows,
    )  # fmt: skip
    print()
    rows = []
    for size, m in results["sizes"].items():
        exact = m["exact_search_without_embed"]["p95_ms"]
        for nprobe, f in m["nprobe_sweep"].items():
            rows.append([f"{int(size):,}", nprobe, f"{f['p50_ms']:.3f}", f"{f['p95_ms']:.3f}",
                         f"{f['recall_at_5']:.3f}", f"{exact / f['p95_ms']:.1f}x"])  # fmt: skip
    print("IVF nprobe sweep (search only, same queries):")
    print_table(
        [
            "vectors",
            "nprobe",
            "search p50 ms",
            "search p95 ms",
            "recall@5 vs exact",
            "exact p95 / this (same loop)",
        ],
        rows,
    )
    if results.get("flat_sweep"):
        print()
        print(
            f"Exact search only (search time, no embedding, no thread hop), FAISS default "
            f"{FAISS_DEFAULT_THREADS} threads vs {args.faiss_threads}, alternating:"
        )
        rows = []
        mine, default = f"{args.faiss_threads}_threads", f"{FAISS_DEFAULT_THREADS}_threads"
        for n, f in results["flat_sweep"].items():
            d, o = f[default], f[mine]
            rows.append([f"{int(n):,}", f"{d['p50_ms']:.2f} / {d['p95_ms']:.2f}",
                         f"{o['p50_ms']:.2f} / {o['p95_ms']:.2f}", f"{d['p95_ms'] / o['p95_ms']:.2f}",
                         f["cpu"]["other_processes_pct"]])  # fmt: skip
        print_table(
            ["vectors", f"{default} p50/p95 ms", f"{mine} p50/p95 ms", "p95 ratio", "others' CPU %"], rows
        )
    big = results["sizes"].get("1000000")
    if big:
        ram = max(big["ivf"]["index_bytes"], big["ivf"]["rss_delta_bytes"])
        print(f"\nindex RAM at 1M (IVF, larger of serialised size and RSS growth): {ram / 2**30:.2f} GiB "
              f"(target <= 2 GiB: {'met' if ram <= RAM_TARGET_BYTES else 'NOT met'})")  # fmt: skip
    out = write_results("similar_latency", started, results)
    print(f"results: {out.relative_to(out.parents[2])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

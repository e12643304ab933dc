"""Assignment at scale (issue 6): 10,000 ideas to 1,000 experts, k=3, capacity 40 each.

    .venv/bin/python bench/match_scale.py [--ideas 10000] [--experts 1000] [--k 3] [--capacity 40]
                                          [--candidates 50] [--clusters 40] [--rounds 3]

Affinities are synthetic but shaped like the real ones: ideas and experts are random unit vectors (dimension
384) drawn around ``--clusters`` random topic centres (so many ideas want the same few experts and
capacity binds), affinity = cosine; 2% of pairs are set to -inf (conflicts). Timed: ``ml.matching.assign``
from the affinity matrix to the result (candidate selection, graph, OR-Tools min-cost flow, extraction), and
separately the affinity matrix product. Peak memory: tracemalloc's peak of Python allocations during
``assign`` (numpy arrays included; OR-Tools' C++ graph is not traced) and the process RSS growth.
Target: under 60 s.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
from _mlcommon import (
    command_line,
    log,
    machine_info,
    machine_line,
    now,
    print_table,
    rss_bytes,
    write_results,
)

from ml.matching import assign, greedy_assign

DIMENSION = 384


def clustered(count: int, centres: np.ndarray, spread: float, rng: np.random.Generator) -> np.ndarray:
    picks = rng.integers(0, len(centres), count)
    vectors = centres[picks] + spread * rng.standard_normal((count, centres.shape[1])) / np.sqrt(DIMENSION)
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ideas", type=int, default=10_000)
    parser.add_argument("--experts", type=int, default=1_000)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--capacity", type=int, default=40)
    parser.add_argument("--candidates", type=int, default=50)
    parser.add_argument("--clusters", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = now()
    machine = machine_info()
    log(machine_line(machine))
    rng = np.random.default_rng(args.seed)
    centres = rng.standard_normal((args.clusters, DIMENSION))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    ideas = clustered(args.ideas, centres, 1.0, rng)
    experts = clustered(args.experts, centres, 1.0, rng)
    t0 = time.perf_counter()
    matrix = (ideas @ experts.T).astype(np.float64)
    product_s = time.perf_counter() - t0
    matrix[rng.random(matrix.shape) < 0.02] = -np.inf
    capacities = [args.capacity] * args.experts
    greedy_load = greedy_assign(matrix, args.k).load(args.experts)
    rows = []
    results = []
    for candidates in (args.candidates, None):
        for round_ in range(args.rounds if candidates is not None else 1):
            rss_before = rss_bytes()
            tracemalloc.start()
            t0 = time.perf_counter()
            result = assign(matrix, capacities, args.k, candidates=candidates)
            seconds = time.perf_counter() - t0
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            load = result.load(args.experts)
            ok = all(len(set(c)) == args.k for c in result.experts) and int(load.max()) <= args.capacity
            row = {
                "candidates": candidates if candidates is not None else "all",
                "round": round_ + 1,
                "seconds": round(seconds, 2),
                "tracemalloc_peak_mb": round(peak / 2**20, 1),
                "rss_growth_mb": round((rss_bytes() - rss_before) / 2**20, 1),
                "total_affinity": round(result.total_affinity, 3),
                "max_load": int(load.max()),
                "valid": ok,
            }
            results.append(row)
            rows.append(list(row.values()))
            log(f"candidates={row['candidates']} round {round_ + 1}: {seconds:.2f} s")
    print_table(list(results[0]), rows)
    print(f"\naffinity matrix product ({args.ideas} x {args.experts}): {product_s:.2f} s")
    print(f"greedy top-{args.k} (capacity ignored): max load {int(greedy_load.max())}, "
          f"{int((greedy_load > args.capacity).sum())} experts over capacity {args.capacity}")  # fmt: skip
    worst = max(r["seconds"] for r in results if r["candidates"] != "all")
    print(f"verdict: worst {worst:.2f} s with top-{args.candidates} candidates, target < 60 s: "
          f"{'PASS' if worst < 60 else 'FAIL'}")  # fmt: skip
    out = write_results("match_scale", started, {
        "command": command_line(), "machine": machine, "args": vars(args), "runs": results,
        "matrix_product_s": round(product_s, 3),
        "greedy": {"max_load": int(greedy_load.max()), "over_capacity": int((greedy_load > args.capacity).sum())},
    })  # fmt: skip
    log(f"written {out}")


if __name__ == "__main__":
    main()

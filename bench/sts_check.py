"""Embedding quality on the STS Benchmark test set: the app's precision beside fp32 (issue 5).

    .venv/bin/python bench/sts_check.py [--precision auto|bf16|none] [--rounds 3] [--single 40]

Quality: Spearman correlation (x100) between the cosine of the two sentences' embeddings and the gold
score, over every pair of ``sts-test.csv`` (all-MiniLM-L6-v2 fp32 scores about 82.0 there).

Both are ``ml.embedding.SentenceTransformerEmbedder`` (same weights, the app's own ``encode``):

- ``fp32``: the reference, ``precision="fp32"``.
- ``--precision`` (default ``auto``, the app's default setting ``IDEAFORGE_EMBEDDING_PRECISION``): ``auto``
  is resolved by ``ml.embedding.resolve_precision`` and reported as what it resolves to on this CPU
  (bf16 where oneDNN runs bfloat16 natively: ``torch.autocast("cpu", dtype=torch.bfloat16)``, vectors
  renormalised in float32). ``none`` measures fp32 only.

A precision other than fp32 is acceptable only if its Spearman is within 0.5 points of fp32.
Throughput: encoding the dev idea texts in batches of ``--batch`` (the size the MicroBatcher reaches
under 32 requesters) and one text at a time, fp32 and the other alternately, ``--rounds`` times each.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from _mlcommon import (
    DEDUP_DEV,
    STS_TEST,
    CpuWindow,
    command_line,
    log,
    machine_info,
    machine_line,
    now,
    percentile,
    print_table,
    write_results,
)

from ml import dedup
from ml.embedding import DEFAULT_MODEL, Precision, SentenceTransformerEmbedder, resolve_precision

MAX_DROP = 0.5  # Spearman points a faster backend may lose
EXPECTED_FP32 = 82.0


def read_sts(path: str) -> list[tuple[float, str, str]]:
    """(score, sentence 1, sentence 2) per line; columns past the seventh (source notes) are ignored."""
    rows = []
    with open(path, encoding="utf-8", newline="") as handle:
        for number, fields in enumerate(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE), start=1):
            if not fields or not any(f.strip() for f in fields):
                continue
            if len(fields) < 7:
                raise ValueError(f"{path}:{number}: {len(fields)} columns, expected at least 7")
            rows.append((float(fields[4]), fields[5], fields[6]))
    return rows


def make_encoder(precision: Precision) -> Callable[[list[str], int], np.ndarray]:
    """The app's embedder at ``precision``; its ``encode`` batches by 64, which covers ``--batch``."""
    embedder = SentenceTransformerEmbedder(DEFAULT_MODEL, batch_size=64, precision=precision)

    def encode(texts: list[str], batch_size: int) -> np.ndarray:
        return embedder.encode(texts)

    return encode


def spearman(encode: Callable[[list[str], int], np.ndarray], rows: list[tuple[float, str, str]]) -> float:
    from scipy.stats import spearmanr

    a = encode([r[1] for r in rows], 64)
    b = encode([r[2] for r in rows], 64)
    cosines = (a * b).sum(axis=1)
    return float(spearmanr(cosines, [r[0] for r in rows]).statistic) * 100


def batches(texts: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(texts) - size + 1, size):
        yield texts[start : start + size]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default=str(STS_TEST))
    parser.add_argument("--precision", choices=["auto", "bf16", "none"], default="auto",
                        help="the precision to compare with fp32 (the app's default setting: auto)")  # fmt: skip
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds per backend, alternating")
    parser.add_argument("--single", type=int, default=40, help="one-text encodes per backend and round")
    args = parser.parse_args()

    import torch

    started = now()
    results: dict[str, Any] = {
        "started_at": started.isoformat(timespec="seconds"),
        "command": command_line(),
        "machine": machine_info() | {"torch_cpu_capability": torch.backends.cpu.get_cpu_capability()},
        "model": DEFAULT_MODEL,
        "data": args.data,
    }
    rows = read_sts(args.data)
    results["pairs"] = len(rows)
    other: Precision | None = None if args.precision == "none" else args.precision
    # Label the app's setting by what it runs here, e.g. "auto (bf16)".
    label = {other: f"{other} ({resolve_precision(other)})" if other == "auto" else other} if other else {}
    results["precision"] = {
        "requested": args.precision,
        "resolves_to": resolve_precision(other) if other else None,
    }
    backends = ["fp32", *label.values()]
    encoders = {"fp32": make_encoder("fp32")} | {label[p]: make_encoder(p) for p in label}
    quality = {}
    for name, encode in encoders.items():
        t0 = time.perf_counter()
        quality[name] = round(spearman(encode, rows), 2)
        log(f"{name}: Spearman x100 = {quality[name]} ({time.perf_counter() - t0:.1f}s)")
    results["spearman_x100"] = quality
    if len(backends) == 2:
        a = encoders["fp32"]([r[1] for r in rows[:200]], 64)
        b = encoders[backends[1]]([r[1] for r in rows[:200]], 64)
        results["cosine_fp32_vs_backend_mean"] = round(float((a * b).sum(axis=1).mean()), 5)

    texts = sorted({p.a for p in dedup.read_pairs(DEDUP_DEV)} | {p.b for p in dedup.read_pairs(DEDUP_DEV)})
    for encode in encoders.values():  # warm-up
        encode(texts[: args.batch], args.batch)
        encode(texts[:1], 1)
    speed: dict[str, dict[str, list[float]]] = {
        name: {"texts_per_s": [], "single_ms": [], "others_cpu_pct": []} for name in backends
    }
    for number in range(args.rounds):
        for name, encode in encoders.items():
            t0 = time.perf_counter()
            count = 0
            with CpuWindow() as cpu:
                for chunk in batches(texts, args.batch):
                    encode(chunk, args.batch)
                    count += len(chunk)
            rate = count / (time.perf_counter() - t0)
            speed[name]["others_cpu_pct"].append(cpu.other_processes)
            speed[name]["texts_per_s"].append(round(rate, 1))
            singles = []
            for text in texts[number * args.single : (number + 1) * args.single]:
                t0 = time.perf_counter()
                encode([text], 1)
                singles.append((time.perf_counter() - t0) * 1000)
            speed[name]["single_ms"].extend(singles)
            log(f"round {number + 1} {name}: {rate:.1f} texts/s in batches of {args.batch}; "
                f"single p50 {percentile(singles, 50):.1f} ms; others' CPU {cpu.other_processes}%")  # fmt: skip
    results["throughput"] = {
        name: {
            "texts_per_s_by_round": s["texts_per_s"],
            "others_cpu_pct_by_round": s["others_cpu_pct"],
            "texts_per_s": round(float(np.mean(s["texts_per_s"])), 1),
            "single_p50_ms": round(percentile(s["single_ms"], 50), 2),
            "single_p95_ms": round(percentile(s["single_ms"], 95), 2),
        }
        for name, s in speed.items()
    }

    print()
    print(f"STS check, {results['started_at']} ({results['command']})")
    print(
        machine_line(results["machine"])
        + f", torch CPU capability {results['machine']['torch_cpu_capability']}"
    )
    print(
        f"data: {args.data}: {len(rows)} pairs; throughput on {len(texts)} dev idea texts, batches of {args.batch}"
    )
    print()
    fp32 = results["throughput"]["fp32"]
    table = []
    for name in backends:
        t = results["throughput"][name]
        drop = quality["fp32"] - quality[name]
        verdict = "(reference; expected about 82.0)" if name == "fp32" else (
            f"acceptable (drop {drop:.2f} <= {MAX_DROP})" if drop <= MAX_DROP else f"NOT acceptable (drop {drop:.2f})")  # fmt: skip
        table.append([name, f"{quality[name]:.2f}", verdict, t["texts_per_s"],
                      f"{t['texts_per_s'] / fp32['texts_per_s']:.2f}x",
                      f"{t['single_p50_ms']:.1f} / {t['single_p95_ms']:.1f}",
                      f"{fp32['single_p50_ms'] / t['single_p50_ms']:.2f}x"])  # fmt: skip
    print_table(["backend", "Spearman x100", "verdict", f"texts/s (batch {args.batch})", "vs fp32",
                 "single p50/p95 ms", "fp32 p50 / this"], table)  # fmt: skip
    for name in backends:
        t = results["throughput"][name]
        print(
            f"{name} texts/s by round: {t['texts_per_s_by_round']} (others' CPU %: {t['others_cpu_pct_by_round']})"
        )
    if "cosine_fp32_vs_backend_mean" in results:
        print(f"mean cosine between fp32 and {backends[1]} vectors of the same sentence: "
              f"{results['cosine_fp32_vs_backend_mean']}")  # fmt: skip
    out = write_results("sts_check", started, results)
    print(f"results: {out.relative_to(out.parents[2])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

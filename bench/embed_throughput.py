"""Embedding throughput under concurrent requests (issue 5): the app's embedding service against the naive way.

    .venv/bin/python bench/embed_throughput.py [--concurrency 32] [--seconds 10] [--rounds 2] [--single 60]
        [--precision auto] [--tune]

- **app**: what ``ideas.similarity.Similarity`` runs: ``ml.batching.MicroBatcher`` (its defaults unless
  ``--max-batch``/``--max-wait``) over ``ml.embedding.SentenceTransformerEmbedder(DEFAULT_MODEL,
  precision=--precision)``; the app's default setting ``IDEAFORGE_EMBEDDING_PRECISION=auto`` is bf16
  where the CPU runs it natively (torch.autocast bf16, vectors renormalised in float32), else fp32.
  Each request is ``await batcher.encode_one(text)``.
- **naive** (the baseline): each request is ``await asyncio.to_thread(model.encode, [text])`` on a plain
  sentence-transformers ``SentenceTransformer`` of the same weights (fp32, no batching, asyncio's
  default thread pool).
- **batcher fp32** (reference): the same MicroBatcher over the embedder in fp32, i.e. the app before
  the precision setting, to separate what batching gives from what bf16 gives.

``--concurrency`` asyncio tasks each send one text, wait for its vector, then send the next, for
``--seconds``. Texts are the dev file's idea texts (short, idea-like), the same sequence for every way.
All ways run in the same process, alternately (app, naive, batcher fp32, app, ... ``--rounds`` times
each), after a warm-up of each. Then single-request latency: one requester, ``--single`` requests
each, alternating way by way.

``--tune`` then tries MicroBatcher settings over the app's embedder: ``max_batch`` in ``--tune-batch``
(at the default ``max_wait``) and ``max_wait`` in ``--tune-wait`` (at the default ``max_batch``), in
alternating rounds of ``--tune-seconds`` under the same load, plus a lone requester's latency.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import sys
import time
from collections.abc import Awaitable, Callable
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
    write_results,
)

from ml import dedup
from ml.batching import MicroBatcher
from ml.embedding import DEFAULT_MODEL, PRECISIONS, SentenceTransformerEmbedder, resolve_model

TARGET_RATIO = 3.0
BATCHER_DEFAULTS = {
    name: p.default
    for name, p in inspect.signature(MicroBatcher.__init__).parameters.items()
    if name in ("max_batch", "max_wait")
}

Encode = Callable[[str], Awaitable[Any]]


async def load_phase(encode: Encode, texts: list[str], concurrency: int, seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    started = time.perf_counter()
    deadline = started + seconds
    done_at = [started]

    async def requester(number: int) -> None:
        position = number * 7
        while time.perf_counter() < deadline:
            text = texts[position % len(texts)]
            position += 1
            t0 = time.perf_counter()
            await encode(text)
            t1 = time.perf_counter()
            if t1 <= deadline:  # a request finishing after the window is not counted
                latencies.append((t1 - t0) * 1000)
                done_at[0] = max(done_at[0], t1)

    await asyncio.gather(*(requester(i) for i in range(concurrency)))
    elapsed = deadline - started
    return {
        "requests": len(latencies),
        "seconds": round(elapsed, 2),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 50), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
    }


def batcher_options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "max_batch": args.max_batch if args.max_batch is not None else BATCHER_DEFAULTS["max_batch"],
        "max_wait": args.max_wait if args.max_wait is not None else BATCHER_DEFAULTS["max_wait"],
    }


async def single_latency(ways: dict[str, Encode], texts: list[str], count: int) -> dict[str, list[float]]:
    """One requester, ``count`` requests per way, alternating way by way."""
    single: dict[str, list[float]] = {name: [] for name in ways}
    for encode in ways.values():  # warm the lone path too
        for text in texts[:5]:
            await encode(text)
    names = list(ways)
    for i in range(count * len(names)):
        name = names[i % len(names)]
        text = texts[(i // len(names)) % len(texts)]
        t0 = time.perf_counter()
        await ways[name](text)
        single[name].append((time.perf_counter() - t0) * 1000)
    return single


async def run(args: argparse.Namespace, texts: list[str]) -> dict[str, Any]:
    from sentence_transformers import SentenceTransformer

    options = batcher_options(args)
    embedder = SentenceTransformerEmbedder(DEFAULT_MODEL, precision=args.precision)
    fp32_embedder = SentenceTransformerEmbedder(DEFAULT_MODEL, precision="fp32")
    app_batcher = MicroBatcher(embedder, **options)
    fp32_batcher = MicroBatcher(fp32_embedder, **options)
    batchers = {"app": app_batcher, "batcher fp32": fp32_batcher}
    plain = SentenceTransformer(resolve_model(DEFAULT_MODEL), device="cpu")

    async def naive(text: str) -> Any:
        return await asyncio.to_thread(plain.encode, [text])

    ways: dict[str, Encode] = {
        "app": app_batcher.encode_one,
        "naive": naive,
        "batcher fp32": fp32_batcher.encode_one,
    }
    # Same vectors from every way (a sanity check that they compute the same thing).
    a = await app_batcher.encode_one(texts[0])
    b = (await naive(texts[0]))[0]
    c = await fp32_batcher.encode_one(texts[0])
    agreement = {
        "app_vs_naive": round(float(np.dot(a, b / np.linalg.norm(b))), 6),
        "batcher_fp32_vs_naive": round(float(np.dot(c, b / np.linalg.norm(b))), 6),
    }
    log(f"app embedder precision: {args.precision} -> {embedder.precision}; MicroBatcher {options}")
    log(f"cosine between the ways' vectors for one text: {agreement}")

    for name, encode in ways.items():
        log(f"warm-up {name} ({args.warmup}s)")
        await load_phase(encode, texts, args.concurrency, args.warmup)
    rounds: list[dict[str, Any]] = []
    for number in range(args.rounds):
        for name, encode in ways.items():
            batcher = batchers.get(name)
            before = (batcher.stats.batches, batcher.stats.texts) if batcher else (0, 0)
            with CpuWindow() as cpu:
                result = await load_phase(encode, texts, args.concurrency, args.seconds)
            result |= {"way": name, "round": number + 1, "cpu": cpu.report()}
            # Requests per CPU-second of this process: the host is shared, and the ways do not get the same
            # share of it (the naive way runs several threads at once, the batcher one model call).
            result["requests_per_cpu_s"] = round(
                result["requests_per_s"] / max(cpu.this_process / 100, 0.01), 1
            )
            if batcher:
                batches, sent = batcher.stats.batches - before[0], batcher.stats.texts - before[1]
                result["mean_batch"] = round(sent / batches, 1) if batches else 0.0
            rounds.append(result)
            log(f"round {number + 1} {name}: {result}")

    log(f"single requester, {args.single} requests per way, alternating")
    single = await single_latency(ways, texts, args.single)
    for batcher in batchers.values():
        await batcher.close()

    summary: dict[str, Any] = {}
    for name in ways:
        mine = [r for r in rounds if r["way"] == name]
        total = sum(r["requests"] for r in mine)
        seconds = sum(r["seconds"] for r in mine)
        summary[name] = {
            "requests_per_s": round(total / seconds, 1),
            "requests_per_s_by_round": [r["requests_per_s"] for r in mine],
            "p50_ms_by_round": [r["p50_ms"] for r in mine],
            "p95_ms_by_round": [r["p95_ms"] for r in mine],
            "requests_per_cpu_s": round(float(np.mean([r["requests_per_cpu_s"] for r in mine])), 1),
            "single_p50_ms": round(percentile(single[name], 50), 2),
            "single_p95_ms": round(percentile(single[name], 95), 2),
        }
    naive_s = summary["naive"]
    ratios = {
        name: {
            "requests_per_s": round(summary[name]["requests_per_s"] / naive_s["requests_per_s"], 2),
            "by_round": [
                round(x / y, 2)
                for x, y in zip(
                    summary[name]["requests_per_s_by_round"], naive_s["requests_per_s_by_round"], strict=True
                )
            ],
            "requests_per_cpu_s": round(
                summary[name]["requests_per_cpu_s"] / naive_s["requests_per_cpu_s"], 2
            ),
            "single_p50": round(summary[name]["single_p50_ms"] / naive_s["single_p50_ms"], 2),
        }
        for name in ("app", "batcher fp32")
    }
    out: dict[str, Any] = {
        "app_precision": f"{args.precision} (resolves to {embedder.precision} here)",
        "batcher_options": options,
        "agreement_cosine": agreement,
        "rounds": rounds,
        "summary": summary,
        "ratio_vs_naive": ratios,
    }
    if args.tune:
        out["tune"] = await tune(args, embedder, texts)
    return out


async def tune(
    args: argparse.Namespace, embedder: SentenceTransformerEmbedder, texts: list[str]
) -> dict[str, Any]:
    """MicroBatcher settings over the app's embedder, alternating rounds under the same load."""
    configs: dict[str, dict[str, Any]] = {}
    for size in (int(x) for x in args.tune_batch.split(",") if x):
        configs[f"max_batch={size}, max_wait={BATCHER_DEFAULTS['max_wait'] * 1000:g}ms"] = {
            "max_batch": size, "max_wait": BATCHER_DEFAULTS["max_wait"]}  # fmt: skip
    for wait in (float(x) for x in args.tune_wait.split(",") if x):
        configs[f"max_batch={BATCHER_DEFAULTS['max_batch']}, max_wait={wait * 1000:g}ms"] = {
            "max_batch": BATCHER_DEFAULTS["max_batch"], "max_wait": wait}  # fmt: skip
    batchers = {name: MicroBatcher(embedder, **options) for name, options in configs.items()}
    ways: dict[str, Encode] = {name: b.encode_one for name, b in batchers.items()}
    log(f"tuning {len(configs)} MicroBatcher settings: {list(configs)}")
    for encode in ways.values():
        await load_phase(encode, texts, args.concurrency, 1.0)
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in ways}
    for number in range(args.tune_rounds):
        order = list(ways) if number % 2 == 0 else list(reversed(ways))
        for name in order:
            stats = batchers[name].stats
            before = (stats.batches, stats.texts)
            with CpuWindow() as cpu:
                result = await load_phase(ways[name], texts, args.concurrency, args.tune_seconds)
            batches, sent = stats.batches - before[0], stats.texts - before[1]
            result |= {"round": number + 1, "mean_batch": round(sent / batches, 1) if batches else 0.0,
                       "others_cpu_pct": cpu.other_processes}  # fmt: skip
            rows[name].append(result)
            log(f"tune round {number + 1} {name}: {result}")
    single = await single_latency(ways, texts, args.tune_single)
    for batcher in batchers.values():
        await batcher.close()
    return {
        name: {
            "options": configs[name],
            "requests_per_s": round(sum(r["requests"] for r in rs) / sum(r["seconds"] for r in rs), 1),
            "requests_per_s_by_round": [r["requests_per_s"] for r in rs],
            "p95_ms_by_round": [r["p95_ms"] for r in rs],
            "mean_batch_by_round": [r["mean_batch"] for r in rs],
            "others_cpu_pct_by_round": [r["others_cpu_pct"] for r in rs],
            "single_p50_ms": round(percentile(single[name], 50), 2),
            "single_p95_ms": round(percentile(single[name], 95), 2),
        }
        for name, rs in rows.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each measured round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per way (run alternately)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up per way")
    parser.add_argument("--single", type=int, default=60, help="lone requests per way")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="the app's embedder precision (its default setting: auto)")  # fmt: skip
    parser.add_argument("--max-batch", type=int, help="MicroBatcher max_batch (default: the library's)")
    parser.add_argument("--max-wait", type=float, help="MicroBatcher max_wait in s (default: the library's)")
    parser.add_argument("--tune", action="store_true", help="also try other MicroBatcher settings")
    parser.add_argument("--tune-batch", default="16,32,64,128", help="max_batch values to try")
    parser.add_argument("--tune-wait", default="0.001,0.002,0.005", help="max_wait values to try (s)")
    parser.add_argument("--tune-rounds", type=int, default=2, help="rounds per setting, alternating")
    parser.add_argument("--tune-seconds", type=float, default=5.0, help="length of each tuning round")
    parser.add_argument("--tune-single", type=int, default=20, help="lone requests per setting")
    args = parser.parse_args()

    started = now()
    pairs = dedup.read_pairs(DEDUP_DEV)
    texts = sorted({p.a for p in pairs} | {p.b for p in pairs})
    lengths = [len(t.split()) for t in texts]
    results: dict[str, Any] = {
        "started_at": started.isoformat(timespec="seconds"),
        "command": command_line(),
        "machine": machine_info(),
        "model": DEFAULT_MODEL,
        "texts": f"{len(texts)} dev idea texts, {min(lengths)}-{max(lengths)} words (median {int(np.median(lengths))})",
        "settings": vars(args),
    }
    results |= asyncio.run(run(args, texts))

    print()
    print(f"Embedding throughput, {results['started_at']} ({results['command']})")
    print(machine_line(results["machine"]))
    print(f"texts: {results['texts']}; {args.concurrency} concurrent requesters, one text each at a time; "
          f"{args.rounds} x {args.seconds:.0f}s rounds per way, alternating")  # fmt: skip
    print()
    rows = []
    for r in results["rounds"]:
        rows.append([r["round"], r["way"], r["requests"], f"{r['requests_per_s']:.1f}", f"{r['p50_ms']:.0f}",
                     f"{r['p95_ms']:.0f}", r.get("mean_batch", ""), r["cpu"]["this_process_pct"],
                     r["requests_per_cpu_s"], r["cpu"]["other_processes_pct"]])  # fmt: skip
    print_table(["round", "way", "requests", "req/s", "p50 ms", "p95 ms", "mean batch", "own CPU %", "req per CPU-s",
                 "others' CPU %"], rows)  # fmt: skip
    print()
    s = results["summary"]
    r = results["ratio_vs_naive"]
    app, ref = r["app"], r["batcher fp32"]
    verdict = (
        "met"
        if app["requests_per_s"] >= TARGET_RATIO
        else f"NOT met ({app['requests_per_s'] / TARGET_RATIO:.2f} of it)"
    )
    print(f"app = MicroBatcher({results['batcher_options']}) over precision {results['app_precision']}")
    print_table(
        ["metric", "app", "naive fp32", "batcher fp32", "app / naive", "batcher fp32 / naive", "target", "verdict"],
        [
            ["requests/s (all rounds)", s["app"]["requests_per_s"], s["naive"]["requests_per_s"],
             s["batcher fp32"]["requests_per_s"], f"{app['requests_per_s']:.2f}x", f"{ref['requests_per_s']:.2f}x",
             f">= {TARGET_RATIO:.0f}x", verdict],
            ["ratio by round", "", "", "", ", ".join(f"{x:.2f}" for x in app["by_round"]),
             ", ".join(f"{x:.2f}" for x in ref["by_round"]), "", ""],
            ["requests per CPU-second", s["app"]["requests_per_cpu_s"], s["naive"]["requests_per_cpu_s"],
             s["batcher fp32"]["requests_per_cpu_s"], f"{app['requests_per_cpu_s']:.2f}x",
             f"{ref['requests_per_cpu_s']:.2f}x", "", ""],
            ["single request p50 ms", s["app"]["single_p50_ms"], s["naive"]["single_p50_ms"],
             s["batcher fp32"]["single_p50_ms"], f"{app['single_p50']:.2f}x", f"{ref['single_p50']:.2f}x", "", ""],
            ["single request p95 ms", s["app"]["single_p95_ms"], s["naive"]["single_p95_ms"],
             s["batcher fp32"]["single_p95_ms"], "", "", "", ""],
        ],
    )  # fmt: skip
    if "tune" in results:
        print()
        print(f"MicroBatcher settings over the app's embedder ({args.tune_rounds} x {args.tune_seconds:.0f}s "
              f"rounds each, alternating; library defaults {BATCHER_DEFAULTS}):")  # fmt: skip
        rows = [[name, t["requests_per_s"], ", ".join(f"{x:.1f}" for x in t["requests_per_s_by_round"]),
                 ", ".join(f"{x:.0f}" for x in t["p95_ms_by_round"]), ", ".join(str(x) for x in t["mean_batch_by_round"]),
                 f"{t['single_p50_ms']:.1f} / {t['single_p95_ms']:.1f}",
                 ", ".join(str(x) for x in t["others_cpu_pct_by_round"])]
                for name, t in results["tune"].items()]  # fmt: skip
        print_table(["setting", "req/s", "by round", "p95 ms by round", "mean batch", "lone p50/p95 ms",
                     "others' CPU %"], rows)  # fmt: skip
    out = write_results("embed_throughput", started, results)
    print(f"results: {out.relative_to(out.parents[2])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

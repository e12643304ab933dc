"""Embedding throughput under concurrent requests (issue 5): our MicroBatcher against the naive way.

    .venv/bin/python bench/embed_throughput.py [--concurrency 32] [--seconds 10] [--rounds 2] [--single 60] [--bf16]

- **batcher**: ``ml.batching.MicroBatcher`` over ``ml.embedding.SentenceTransformerEmbedder`` (the default
  model, fp32); each request is ``await batcher.encode_one(text)``.
- **naive**: each request is ``await asyncio.to_thread(model.encode, [text])`` on a plain
  sentence-transformers ``SentenceTransformer`` of the same weights (fp32, no batching, asyncio's
  default thread pool).
- with ``--bf16``, a third way, **batcher+bf16**: the same MicroBatcher over the same model called under
  ``torch.autocast("cpu", dtype=torch.bfloat16)`` (quality checked by bench/sts_check.py). Measured
  only: the app does not use it.

``--concurrency`` asyncio tasks each send one text, wait for its vector, then send the next, for
``--seconds``. Texts are the dev file's idea texts (short, idea-like), the same sequence for both ways.
Both run in the same process, alternately (batcher, naive, batcher, naive... ``--rounds`` times each),
after a warm-up of each. Then single-request latency: one requester, ``--single`` requests each,
alternating batcher and naive request by request.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
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
from ml.embedding import DEFAULT_MODEL, SentenceTransformerEmbedder, resolve_model

TARGET_RATIO = 3.0

Encode = Callable[[str], Awaitable[Any]]


class Bf16Embedder:
    """The same sentence-transformers model under ``torch.autocast`` bfloat16 (bench/sts_check.py checks its
    quality). Measured here only; the app does not use it."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self.model_name = f"{DEFAULT_MODEL} (bf16 autocast)"
        self.dimension = int(model.get_embedding_dimension())

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            out = self._model.encode(
                list(texts), batch_size=64, convert_to_tensor=True, show_progress_bar=False
            )
        vectors = out.float().cpu().numpy()
        return np.ascontiguousarray(
            vectors / np.linalg.norm(vectors, axis=1, keepdims=True), dtype=np.float32
        )


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


async def run(args: argparse.Namespace, texts: list[str]) -> dict[str, Any]:
    from sentence_transformers import SentenceTransformer

    embedder = SentenceTransformerEmbedder(DEFAULT_MODEL)
    batcher = MicroBatcher(embedder, max_batch=args.max_batch, max_wait=args.max_wait)
    plain = SentenceTransformer(resolve_model(DEFAULT_MODEL), device="cpu")

    async def batched(text: str) -> Any:
        return await batcher.encode_one(text)

    async def naive(text: str) -> Any:
        return await asyncio.to_thread(plain.encode, [text])

    ways: dict[str, Encode] = {"batcher": batched, "naive": naive}
    if args.bf16:
        bf16_batcher = MicroBatcher(Bf16Embedder(plain), max_batch=args.max_batch, max_wait=args.max_wait)

        async def batched_bf16(text: str) -> Any:
            return await bf16_batcher.encode_one(text)

        ways["batcher+bf16"] = batched_bf16
    # Same vectors from both ways (a sanity check that they compute the same thing).
    a = await batched(texts[0])
    b = (await naive(texts[0]))[0]
    agreement = float(np.dot(a, b / np.linalg.norm(b)))
    log(f"cosine between the two ways' vectors for one text: {agreement:.6f}")

    for name, encode in ways.items():
        log(f"warm-up {name} ({args.warmup}s)")
        await load_phase(encode, texts, args.concurrency, args.warmup)
    rounds: list[dict[str, Any]] = []
    for number in range(args.rounds):
        for name, encode in ways.items():
            before = (batcher.stats.batches, batcher.stats.texts)
            with CpuWindow() as cpu:
                result = await load_phase(encode, texts, args.concurrency, args.seconds)
            result |= {"way": name, "round": number + 1, "cpu": cpu.report()}
            # Requests per CPU-second of this process: the host is shared, and the ways do not get the same
            # share of it (the naive way runs several threads at once, the batcher one model call).
            result["requests_per_cpu_s"] = round(
                result["requests_per_s"] / max(cpu.this_process / 100, 0.01), 1
            )
            if name == "batcher":
                batches, sent = batcher.stats.batches - before[0], batcher.stats.texts - before[1]
                result["mean_batch"] = round(sent / batches, 1) if batches else 0.0
            rounds.append(result)
            log(f"round {number + 1} {name}: {result}")

    log(f"single requester, {args.single} requests per way, alternating")
    single: dict[str, list[float]] = {name: [] for name in ways}
    for encode in ways.values():  # warm the lone path too
        for text in texts[:5]:
            await encode(text)
    names = list(ways)
    for i in range(args.single * len(names)):
        name = names[i % len(names)]
        text = texts[(i // len(names)) % len(texts)]
        t0 = time.perf_counter()
        await ways[name](text)
        single[name].append((time.perf_counter() - t0) * 1000)
    await batcher.close()
    if args.bf16:
        await bf16_batcher.close()

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
            "single_p50_ms": round(percentile(single[name], 50), 2),
            "single_p95_ms": round(percentile(single[name], 95), 2),
        }
    return {
        "agreement_cosine": agreement,
        "rounds": rounds,
        "summary": summary,
        "ratio_requests_per_s": round(summary["batcher"]["requests_per_s"] / summary["naive"]["requests_per_s"], 2),
        "ratio_by_round": [
            round(x / y, 2)
            for x, y in zip(
                summary["batcher"]["requests_per_s_by_round"], summary["naive"]["requests_per_s_by_round"], strict=True
            )
        ],
        "single_ratio_p50": round(summary["batcher"]["single_p50_ms"] / summary["naive"]["single_p50_ms"], 2),
    } | ({"ratio_bf16_requests_per_s": round(summary["batcher+bf16"]["requests_per_s"]
                                              / summary["naive"]["requests_per_s"], 2)} if args.bf16 else {})  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each measured round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per way (run alternately)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up per way")
    parser.add_argument("--single", type=int, default=60, help="lone requests per way")
    parser.add_argument("--bf16", action="store_true",
                        help="also run a third way: the MicroBatcher over the model under bf16 autocast")  # fmt: skip
    parser.add_argument("--max-batch", type=int, default=64, help="MicroBatcher max_batch")
    parser.add_argument("--max-wait", type=float, default=0.002, help="MicroBatcher max_wait (s)")
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
    ratio = results["ratio_requests_per_s"]
    print_table(
        ["metric", "batcher", "naive", "batcher / naive", "target", "verdict"],
        [
            ["requests/s (all rounds)", s["batcher"]["requests_per_s"], s["naive"]["requests_per_s"], f"{ratio:.2f}x",
             f">= {TARGET_RATIO:.0f}x", "met" if ratio >= TARGET_RATIO else f"NOT met ({ratio / TARGET_RATIO:.2f} of it)"],
            ["ratio by round", "", "", ", ".join(f"{x:.2f}" for x in results["ratio_by_round"]), "", ""],
            ["single request p50 ms", s["batcher"]["single_p50_ms"], s["naive"]["single_p50_ms"],
             f"{results['single_ratio_p50']:.2f}x", "", ""],
            ["single request p95 ms", s["batcher"]["single_p95_ms"], s["naive"]["single_p95_ms"], "", "", ""],
        ],
    )  # fmt: skip
    if args.bf16:
        b = s["batcher+bf16"]
        r2 = results["ratio_bf16_requests_per_s"]
        print(f"batcher+bf16 (not used by the app): {b['requests_per_s']} req/s, {r2:.2f}x naive fp32 "
              f"({'meets' if r2 >= TARGET_RATIO else 'misses'} {TARGET_RATIO:.0f}x); by round {b['requests_per_s_by_round']}; "
              f"single p50/p95 {b['single_p50_ms']} / {b['single_p95_ms']} ms")  # fmt: skip
    out = write_results("embed_throughput", started, results)
    print(f"results: {out.relative_to(out.parents[2])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

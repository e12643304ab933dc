"""Helpers shared by the embedding benchmarks (issue 5): machine facts, percentiles, tables, JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model ships in site-packages; never reach for a hub

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"  # ../shared beside the repository
DEDUP_DEV = DATA / "dedup_dev.jsonl"
STS_TEST = DATA / "stsbenchmark" / "sts-test.csv"


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _run(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()  # noqa: S603
    except (OSError, subprocess.SubprocessError):
        return ""


def machine_info() -> dict[str, Any]:
    lscpu = {
        k.strip(): v.strip()
        for k, _, v in (line.partition(":") for line in _run(["lscpu"]).splitlines())
        if v
    }
    mem = _run(["free", "-h"]).splitlines()
    info: dict[str, Any] = {
        "cpu_model": lscpu.get("Model name", ""),
        "cores": lscpu.get("CPU(s)", _run(["nproc"])),
        "nproc": _run(["nproc"]),
        "memory": " ".join(mem[1].split()[:4]) if len(mem) > 1 else "",
        "load_average_at_start": " ".join(_read("/proc/loadavg").split()[:3]),
        "python": sys.version.split()[0],
    }
    try:
        import faiss
        import numpy
        import sentence_transformers
        import torch

        info |= {
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "sentence_transformers": sentence_transformers.__version__,
            "faiss": faiss.__version__,
            "numpy": numpy.__version__,
        }
    except ImportError:  # pragma: no cover - all are project dependencies
        pass
    return info


def machine_line(m: dict[str, Any]) -> str:
    return (
        f"machine: {m['cpu_model']} ({m['cores']} cores), {m['memory']}, load {m['load_average_at_start']}, "
        f"Python {m['python']}, torch {m.get('torch', '?')} ({m.get('torch_threads', '?')} threads), "
        f"faiss {m.get('faiss', '?')}"
    )


def command_line() -> str:
    return ".venv/bin/python " + " ".join([os.path.relpath(sys.argv[0], REPO), *sys.argv[1:]])


def now() -> datetime:
    return datetime.now(UTC)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of unsorted values; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def rss_bytes() -> int:
    """Resident set size of this process, from /proc/self/status."""
    for line in _read("/proc/self/status").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def print_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *cells, strict=True)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    print(line)
    print("-" * len(line))
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


def write_results(name: str, started: datetime, results: dict[str, Any]) -> Path:
    out_dir = REPO / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    ignore = out_dir / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n!.gitignore\n")
    out = out_dir / f"{name}-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    return out


def log(message: str) -> None:
    print(f"[{datetime.now(UTC).strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class CpuWindow:
    """CPU used over a window, in % of one core (the machine's total is 100 x cores): by this process
    and by everything else on the host, from /proc. A busy host makes latency figures pessimistic."""

    def __enter__(self) -> CpuWindow:
        self._start = (time.monotonic(), *self._ticks())
        return self

    def __exit__(self, *exc: object) -> None:
        end = (time.monotonic(), *self._ticks())
        seconds = end[0] - self._start[0]
        hz = os.sysconf("SC_CLK_TCK")
        busy, mine = end[1] - self._start[1], end[2] - self._start[2]
        self.machine_busy = round(100 * busy / hz / seconds, 1) if seconds else 0.0
        self.this_process = round(100 * mine / hz / seconds, 1) if seconds else 0.0
        self.other_processes = round(max(0.0, self.machine_busy - self.this_process), 1)

    @staticmethod
    def _ticks() -> tuple[int, int]:
        fields = [int(x) for x in _read("/proc/stat").splitlines()[0].split()[1:]]
        busy = sum(fields) - fields[3] - (fields[4] if len(fields) > 4 else 0)  # minus idle and iowait
        own = _read("/proc/self/stat").rsplit(")", 1)[1].split()
        return busy, int(own[11]) + int(own[12])  # utime + stime

    def report(self) -> dict[str, float]:
        return {"machine_busy_pct": self.machine_busy, "this_process_pct": self.this_process,
                "other_processes_pct": self.other_processes}  # fmt: skip

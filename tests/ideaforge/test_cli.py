"""The `ideaforge` command, run as a user would run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from ideaforge.app import create_app
from ideaforge.demo import DEMO_PASSWORD, ORGANISATIONS, USERS
from tests.helpers import login

IDEAFORGE = str(Path(sys.executable).parent / "ideaforge")


def run(args: list[str], settings, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = os.environ | {
        "IDEAFORGE_DATA_DIR": str(settings.data_dir),
        "IDEAFORGE_DATABASE_URL": settings.resolved_database_url,
        "IDEAFORGE_SECRET_KEY": settings.secret_key,
    }
    return subprocess.run(
        [IDEAFORGE, *args], input=stdin, capture_output=True, text=True, env=env, timeout=120, check=False
    )


@pytest.fixture
def settings(backend):
    return backend.settings


async def test_user_create_reads_the_password_from_stdin(settings, embedder):
    done = run(
        ["user", "create", "--email", "Ops@Example.org", "--name", "Ops", "--password-stdin", "--superuser"],
        settings,
        stdin="a long and unusual passphrase\n",
    )
    assert done.returncode == 0, done.stderr
    assert "created user" in done.stdout
    assert "a long and unusual passphrase" not in done.stdout + done.stderr
    async with AsyncTestClient(create_app(settings, embedder=embedder)) as client:
        assert (await login(client, "ops@example.org", "a long and unusual passphrase")).status_code == 303
        me = await client.post(
            "/api/v1/tokens", json={"email": "ops@example.org", "password": "a long and unusual passphrase"}
        )
        token = me.json()["token"]
        assert (await client.get("/api/v1/me", headers={"authorization": f"Bearer {token}"})).json()[
            "is_superuser"
        ]


async def test_user_create_explains_a_weak_password(settings):
    done = run(
        ["user", "create", "--email", "ops@example.org", "--name", "Ops", "--password-stdin"],
        settings,
        stdin="password12\n",
    )
    assert done.returncode == 2
    assert "password: This password is too common" in done.stderr


async def test_demo_load_is_idempotent_and_lets_demo_users_in(settings, embedder):
    first = run(["demo", "load"], settings)
    assert first.returncode == 0, first.stderr
    assert "demo data loaded" in first.stdout
    second = run(["demo", "load"], settings)
    assert "demo data already present" in second.stdout
    async with AsyncTestClient(create_app(settings, embedder=embedder)) as client:
        directory = (await client.get("/organisations/")).text
        assert f"{len(ORGANISATIONS)} organisations" in directory
        for country in ("France", "Canada", "Spain", "Germany"):
            assert country in directory
        listed = (await client.get("/api/v1/challenges")).json()["items"]
        assert {c["phase"] for c in listed} == {"submission", "voting", "review", "results", "closed"}
        assert len({c["country"] for c in listed}) >= 3
        assert any(c["open_to_partners"] for c in listed)
        assert {"fr", "en"} <= {lang for c in listed for lang in c["languages"]}
        draft = "Night-time quiet in the city centre"
        assert draft not in (await client.get("/organisations/ville-de-rennes/challenges")).text
        assert (await login(client, "maire@rennes.demo", DEMO_PASSWORD)).status_code == 303
        own = (await client.get("/organisations/ville-de-rennes/challenges")).text
        assert draft in own, "the organisation's admin sees its draft"
        for email, *_ in USERS:
            assert (await login(client, email, DEMO_PASSWORD)).status_code == 303
            await client.post("/logout", data={"_csrf_token": client.cookies["csrftoken"]})


def test_db_check_reports_agreement(settings):
    done = run(["db", "check"], settings)
    assert done.returncode == 0, done.stderr
    assert "models and migrations agree" in done.stdout

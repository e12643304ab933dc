"""`ideaforge serve` on an empty data directory answers what a newcomer and a load balancer ask."""

from __future__ import annotations

import json
import urllib.request


def fetch(url: str) -> tuple[int, str, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.headers.get("content-type", ""), response.read().decode()


def test_a_fresh_server_answers_health_readiness_home_and_schema(live_server):
    assert fetch(f"{live_server.url}/healthz")[0] == 200
    status, _type, body = fetch(f"{live_server.url}/readyz")
    assert status == 200
    assert json.loads(body)["checks"] == {"database": "ok"}
    status, content_type, body = fetch(f"{live_server.url}/")
    assert status == 200
    assert content_type.startswith("text/html")
    assert "/static/vendor/htmx-2.0.11.min.js" in body
    assert fetch(f"{live_server.url}/static/vendor/htmx-2.0.11.min.js")[0] == 200
    status, _type, body = fetch(f"{live_server.url}/schema/openapi.json")
    assert status == 200
    assert "/api/v1/tokens" in json.loads(body)["paths"]
    french = urllib.request.Request(f"{live_server.url}/", headers={"Accept-Language": "fr"})
    with urllib.request.urlopen(french, timeout=10) as response:
        assert '<html lang="fr">' in response.read().decode()

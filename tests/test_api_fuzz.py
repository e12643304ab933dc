"""API fuzzing: Schemathesis over the whole OpenAPI document, against the app in process.

Every operation gets requests that fit its schema and requests that break it, from a visitor and from
an organisation admin with a bearer token, both with generated ids and with ids of real rows (an
organisation, a challenge taking ideas, one in its voting phase, their ideas, a comment). Two checks:
no answer is a server error, and every status the app answers is one the document lists.

The run is bounded and repeatable: a fixed number of examples per operation, derandomized, and no
example database.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import strategies as st
from litestar import Litestar
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.generation import GenerationMode
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import status_code_conformance
from sqlalchemy.ext.asyncio import AsyncSession

from challenges.models import Phase
from ideaforge.app import create_app
from ideaforge.clock import FixedClock
from ideaforge.settings import DEFAULT_ACTION_LIMITS
from ideas.services import add_comment
from ml.embedding import Embedder
from tests.challenge_helpers import DAY, make_challenge, make_organisation
from tests.conftest import Backend
from tests.idea_helpers import make_idea, make_user

EXAMPLES = 20
"""Per operation and caller: about 700 requests per backend, under 20 seconds."""
CHECKS = [not_a_server_error, status_code_conformance]
PASSWORD = "correct horse battery staple"


@dataclass
class Seeded:
    admin_email: str
    path_ids: list[dict[str, int]]
    """Real rows for the path parameters: a challenge taking ideas, one in its voting phase (whose idea
    has a comment), each with an idea."""


@pytest.fixture
def fuzzed_app(backend: Backend, clock: FixedClock, embedder: Embedder) -> Litestar:
    """The app with rate limits out of the way, so the handlers behind them are fuzzed too."""
    limits = {action: "100000/minute" for action in DEFAULT_ACTION_LIMITS}
    settings = backend.settings.model_copy(
        update={
            "action_limits": limits,
            "login_attempts_per_account": "100000/minute",
            "login_attempts_per_ip": "100000/minute",
        }
    )
    return create_app(settings, clock=clock, embedder=embedder)


@pytest.fixture
async def seeded(db: AsyncSession, clock: FixedClock) -> Seeded:
    now = clock.now()
    admin = await make_user(db, "admin@example.org", "Admin")
    citizen = await make_user(db, "citizen@example.org", "Citizen")
    org = await make_organisation(db, admin)
    taking_ideas = await make_challenge(db, org, now, Phase.SUBMISSION)
    new_idea = await make_idea(db, taking_ideas, citizen, now, title="Compost the market leftovers")
    voting = await make_challenge(db, org, now, Phase.VOTING)
    idea = await make_idea(db, voting, citizen, now - 15 * DAY)
    await add_comment(db, idea, voting, admin, "Which bakeries already do it?", now - 12 * DAY)
    return Seeded(
        admin.email,
        [
            {"challenge_id": taking_ideas.id, "idea_id": new_idea.id},
            {"challenge_id": voting.id, "idea_id": idea.id},
        ],
    )


def _token(client: asgi.ASGIClient, email: str) -> str:
    response = client.post("/api/v1/tokens", json={"email": email, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


def _fuzz(operation: Any, headers: dict[str, str], path_ids: list[dict[str, int]]) -> str | None:
    """Run one operation's examples; the report of the first failure, or None."""
    names = [p.name for p in operation.path_parameters]
    real = [{name: ids[name] for name in names} for ids in path_ids] if names else [None]
    strategy = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        *(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=ids) for ids in real),
        *(operation.as_strategy(GenerationMode.NEGATIVE, path_parameters=ids) for ids in real),
    )

    @hypothesis.settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[hypothesis.Phase.generate],  # a failure is reported as found, not shrunk (time)
    )
    @hypothesis.given(case=strategy)
    def run(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    try:
        run()
    except BaseExceptionGroup as failures:  # a FailureGroup, or a group of them (distinct failures)
        return str(failures)
    return None


def test_no_server_error_and_every_status_documented(fuzzed_app: Litestar, seeded: Seeded) -> None:
    app: Any = fuzzed_app  # an ASGI app; Schemathesis types it more narrowly than Litestar's __call__
    try:
        schema = schemathesis.openapi.from_asgi("/schema/openapi.json", app)
        with asgi.get_client(app) as client:
            token = _token(client, seeded.admin_email)
        callers = {"visitor": {}, "admin": {"Authorization": f"Bearer {token}"}}
        operations = []
        for result in schema.get_all_operations():
            assert isinstance(result, Ok), result.err()
            operations.append(result.ok())
        assert len(operations) > 10, "the API document lists the API"
        failures = []
        for caller, headers in callers.items():
            for operation in operations:
                report = _fuzz(operation, headers, seeded.path_ids)
                if report is not None:
                    failures.append(f"--- {operation.label} as {caller}\n{report}")
    finally:
        asgi.shutdown_lifespans()  # started by Schemathesis, it would otherwise outlive the test
    assert not failures, f"{len(failures)} operations failed:\n" + "\n".join(failures)

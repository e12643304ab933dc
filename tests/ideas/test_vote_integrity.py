"""Vote integrity: one vote per user per idea, the budget, and the counter, whatever arrives at once.

Each concurrent request gets its own session (as the web layer gives each request its own), and
the requests are launched together; the database is checked after all of them finished. On
PostgreSQL the rules rest on an advisory lock, on SQLite on an in-process lock: both are run.
A property test then plays random sequences of votes, retractions and moderation against a model.
"""

from __future__ import annotations

import asyncio
import shutil
import traceback
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from challenges.models import Phase
from ideaforge.accounts.models import User
from ideaforge.db import Database
from ideaforge.errors import Conflict, Forbidden
from ideas.models import Idea, IdeaStatus, Vote
from ideas.services import withdraw_idea
from ideas.votes import VoteState, cast_vote, retract_vote
from tests.challenge_helpers import make_challenge, make_organisation
from tests.helpers import STRONG_PASSWORD
from tests.idea_helpers import make_idea, make_user

# PostgreSQL takes the full load; SQLite (one writer) a smaller one that still overlaps requests.
SCALE: dict[str, dict[str, int]] = {
    "postgres": {"same_vote": 50, "ideas": 20, "voters": 30, "flips": 40},
    "sqlite": {"same_vote": 20, "ideas": 10, "voters": 12, "flips": 20},
}
BUDGET = 3


# --- arranging and reading ---------------------------------------------------------------------


@dataclass
class World:
    challenge_id: int
    idea_ids: list[int]
    voter_ids: list[int]
    voter_emails: list[str]
    author_ids: dict[int, int]
    """Each idea's author."""


async def arrange(
    db: AsyncSession, now: datetime, *, ideas: int, voters: int, budget: int | None, own_ideas: int = 0
) -> World:
    """A challenge in its voting phase with ``ideas`` ideas and ``voters`` voters; the first
    ``own_ideas`` voters each also wrote one of the last ideas."""
    tag = uuid.uuid4().hex[:8]
    admin = await make_user(db, f"admin-{tag}@example.org", "Admin")
    org = await make_organisation(db, admin, name=f"Ville {tag}")
    challenge = await make_challenge(db, org, now, Phase.VOTING, votes_per_user=budget)
    author = await make_user(db, f"author-{tag}@example.org", "Author")
    emails = [f"voter{n}-{tag}@example.org" for n in range(voters)]
    people = [await make_user(db, email, f"Voter {n}") for n, email in enumerate(emails)]
    writers = [author] * (ideas - own_ideas) + people[:own_ideas]
    submitted = now - timedelta(days=15)  # inside the submission phase of a VOTING challenge
    made = [await make_idea(db, challenge, w, submitted, title=f"Idea {n}") for n, w in enumerate(writers)]
    return World(
        challenge_id=challenge.id,
        idea_ids=[i.id for i in made],
        voter_ids=[p.id for p in people],
        voter_emails=emails,
        author_ids={i.id: i.author_id for i in made},
    )


@dataclass(frozen=True)
class Snapshot:
    votes: frozenset[tuple[int, int]]
    """(user id, idea id) of every vote row in the challenge."""
    counts: dict[int, int]
    """Each idea's vote_count."""
    statuses: dict[int, IdeaStatus]

    def rows(self, idea_id: int) -> int:
        return sum(1 for _user, idea in self.votes if idea == idea_id)

    def used(self, user_id: int) -> int:
        return sum(1 for user, _idea in self.votes if user == user_id)


async def snapshot(database: Database, challenge_id: int) -> Snapshot:
    async with database.sessionmaker() as session:
        votes = (
            await session.execute(select(Vote.user_id, Vote.idea_id).where(Vote.challenge_id == challenge_id))
        ).all()
        ideas = (
            await session.execute(
                select(Idea.id, Idea.vote_count, Idea.status).where(Idea.challenge_id == challenge_id)
            )
        ).all()
    return Snapshot(
        votes=frozenset((u, i) for u, i in votes),
        counts={i: c for i, c, _s in ideas},
        statuses={i: s for i, _c, s in ideas},
    )


def assert_consistent(state: Snapshot, budget: int | None) -> None:
    for idea_id, count in state.counts.items():
        assert count >= 0, f"idea {idea_id}: negative vote_count {count}"
        assert count == state.rows(idea_id), (
            f"idea {idea_id}: vote_count {count} != {state.rows(idea_id)} rows"
        )
    assert len(state.votes) == len(set(state.votes))
    if budget is not None:
        per_user = Counter(user for user, _idea in state.votes)
        assert all(n <= budget for n in per_user.values()), f"budget {budget} exceeded: {per_user}"


async def as_user(
    database: Database, user_id: int, action: Callable[[AsyncSession, User], Awaitable[VoteState]]
) -> VoteState:
    """One request: its own session, the user loaded in it, one vote change."""
    async with database.sessionmaker() as session:
        user = await session.get(User, user_id)
        assert user is not None
        return await action(session, user)


def casting(idea_id: int, now: datetime) -> Callable[[AsyncSession, User], Awaitable[VoteState]]:
    return lambda session, user: cast_vote(session, idea_id, user, now)


def retracting(idea_id: int, now: datetime) -> Callable[[AsyncSession, User], Awaitable[VoteState]]:
    return lambda session, user: retract_vote(session, idea_id, user, now)


async def token(client: AsyncTestClient[Litestar] | httpx.AsyncClient, email: str) -> dict[str, str]:
    created = await client.post("/api/v1/tokens", json={"email": email, "password": STRONG_PASSWORD})
    assert created.status_code == 201, created.text
    return {"authorization": f"Bearer {created.json()['token']}"}


class InFlight:
    """The ASGI app, counting the requests it is serving at the same moment."""

    def __init__(self, app: Litestar) -> None:
        self.app, self.now, self.peak = app, 0, 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.now += 1
        self.peak = max(self.peak, self.now)
        try:
            await self.app(scope, receive, send)
        finally:
            self.now -= 1


@dataclass
class Live:
    client: httpx.AsyncClient
    served: InFlight


@pytest.fixture
async def live(app: Litestar) -> AsyncIterator[Live]:
    """A client whose requests really run at once. Litestar's AsyncTestClient hands each request to
    a blocking portal, so requests gathered on it run one after the other; here the app runs on the
    test's own event loop. Its lifespan runs in a task of its own, which enters and leaves it."""
    started, stop = asyncio.Event(), asyncio.Event()

    async def lifespan() -> None:
        async with app.lifespan():
            started.set()
            await stop.wait()

    running = asyncio.create_task(lifespan())
    waiting = asyncio.create_task(started.wait())
    await asyncio.wait([running, waiting], return_when=asyncio.FIRST_COMPLETED)
    if not started.is_set():
        waiting.cancel()
        running.result()  # startup failed: raise its error
    served = InFlight(app)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=served), base_url="http://testserver.local"
        ) as client:
            yield Live(client, served)
    finally:
        stop.set()
        await running


@pytest.fixture
async def database(backend: Any) -> AsyncIterator[Database]:
    """A second engine on the test's database: one session per simultaneous request."""
    found = Database(backend.settings.resolved_database_url)
    yield found
    await found.dispose()


def unexpected(results: list[Any], allowed: tuple[type[BaseException], ...] = (Conflict,)) -> str:
    """Nothing when every outcome is a vote state or an allowed refusal; else the first failure's traceback."""
    failures = [r for r in results if isinstance(r, BaseException) and not isinstance(r, allowed)]
    if not failures:
        return ""
    first = "".join(traceback.format_exception(failures[0]))
    return f"{len(failures)} of {len(results)} requests failed; the first:\n{first}"


# --- a. one user, one idea, many votes at once --------------------------------------------------


async def test_simultaneous_votes_from_one_user_leave_one_vote(backend, db, clock, database):
    n = SCALE[backend.name]["same_vote"]
    world = await arrange(db, clock.now(), ideas=1, voters=1, budget=BUDGET)
    idea_id, voter = world.idea_ids[0], world.voter_ids[0]

    results = await asyncio.gather(
        *(as_user(database, voter, casting(idea_id, clock.now())) for _ in range(n)), return_exceptions=True
    )

    assert not (failed := unexpected(results)), failed
    states = [r for r in results if isinstance(r, VoteState)]
    assert len(states) == n, results
    assert {(r.votes, r.voted, r.remaining) for r in states} == {(1, True, BUDGET - 1)}
    state = await snapshot(database, world.challenge_id)
    assert state.votes == {(voter, idea_id)}
    assert state.counts == {idea_id: 1}


async def test_simultaneous_http_votes_from_one_token_leave_one_vote(backend, db, clock, live, database):
    n = SCALE[backend.name]["same_vote"]
    world = await arrange(db, clock.now(), ideas=1, voters=1, budget=BUDGET)
    idea_id = world.idea_ids[0]
    headers = await token(live.client, world.voter_emails[0])

    answers = await asyncio.gather(
        *(live.client.put(f"/api/v1/ideas/{idea_id}/vote", headers=headers) for _ in range(n))
    )

    assert live.served.peak > 1, "the requests did not overlap"
    state = await snapshot(database, world.challenge_id)
    assert state.votes == {(world.voter_ids[0], idea_id)}
    assert state.counts == {idea_id: 1}
    statuses = Counter(a.status_code for a in answers)
    assert statuses == {200: n}, (
        f"{statuses}; first failure: {next((a.text for a in answers if a.status_code != 200), '')}"
    )
    assert {(a.json()["votes"], a.json()["voted"], a.json()["remaining"]) for a in answers} == {
        (1, True, BUDGET - 1)
    }
    shown = await live.client.get(f"/api/v1/ideas/{idea_id}", headers=headers)
    assert (shown.json()["votes"], shown.json()["voted"]) == (1, True)


# --- b. one user's budget against many ideas at once ---------------------------------------------


async def test_budget_holds_against_simultaneous_votes_on_many_ideas(backend, db, clock, database):
    n = SCALE[backend.name]["ideas"]
    world = await arrange(db, clock.now(), ideas=n, voters=1, budget=BUDGET)
    voter = world.voter_ids[0]

    results = await asyncio.gather(
        *(as_user(database, voter, casting(i, clock.now())) for i in world.idea_ids), return_exceptions=True
    )

    assert not (failed := unexpected(results)), failed
    accepted = [r for r in results if isinstance(r, VoteState)]
    assert len(accepted) == BUDGET
    assert sum(isinstance(r, Conflict) for r in results) == n - BUDGET
    # Each accepted vote was counted under the lock: the remaining votes count down to zero.
    assert sorted(r.remaining for r in accepted) == list(range(BUDGET))  # type: ignore[type-var]
    assert all(r.votes == 1 and r.voted for r in accepted)
    state = await snapshot(database, world.challenge_id)
    assert len(state.votes) == BUDGET
    assert {idea for _user, idea in state.votes} == {r.idea_id for r in accepted}
    assert_consistent(state, BUDGET)


async def test_budget_holds_against_simultaneous_http_votes(backend, db, clock, live, database):
    n = SCALE[backend.name]["ideas"]
    world = await arrange(db, clock.now(), ideas=n, voters=1, budget=BUDGET)
    headers = await token(live.client, world.voter_emails[0])

    answers = await asyncio.gather(
        *(live.client.put(f"/api/v1/ideas/{i}/vote", headers=headers) for i in world.idea_ids)
    )

    assert live.served.peak > 1, "the requests did not overlap"
    state = await snapshot(database, world.challenge_id)
    assert len(state.votes) == BUDGET
    assert_consistent(state, BUDGET)
    assert Counter(a.status_code for a in answers) == {200: BUDGET, 409: n - BUDGET}, [
        a.text for a in answers
    ]
    accepted = [a.json() for a in answers if a.status_code == 200]
    assert sorted(a["remaining"] for a in accepted) == list(range(BUDGET))
    assert {a["idea_id"] for a in accepted} == {idea for _user, idea in state.votes}
    assert all(a["votes"] == 1 for a in accepted)
    refused = next(a for a in answers if a.status_code == 409)
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert f"all {BUDGET} of your votes" in refused.json()["detail"]


# --- c. many users, one idea, at once ------------------------------------------------------------


async def test_simultaneous_votes_from_many_users_are_all_counted(backend, db, clock, database):
    n = SCALE[backend.name]["voters"]
    world = await arrange(db, clock.now(), ideas=1, voters=n, budget=BUDGET)
    idea_id = world.idea_ids[0]

    results = await asyncio.gather(
        *(as_user(database, v, casting(idea_id, clock.now())) for v in world.voter_ids),
        return_exceptions=True,
    )

    assert not (failed := unexpected(results, allowed=())), failed
    states = [r for r in results if isinstance(r, VoteState)]
    assert all(1 <= r.votes <= n and r.remaining == BUDGET - 1 for r in states)
    assert max(r.votes for r in states) == n, "the last vote to commit reads every vote"
    state = await snapshot(database, world.challenge_id)
    assert state.counts == {idea_id: n}
    assert state.rows(idea_id) == n
    assert state.votes == {(v, idea_id) for v in world.voter_ids}


# --- d. cast and retract interleaved -------------------------------------------------------------


async def test_interleaved_casts_and_retractions_stay_consistent(backend, db, clock, database):
    n = SCALE[backend.name]["flips"]
    world = await arrange(db, clock.now(), ideas=2, voters=3, budget=BUDGET)
    now = clock.now()
    # One user flipping one idea; and three users flipping two ideas at once, on the same counters.
    solo = world.voter_ids[0]
    requests = [
        as_user(database, solo, (casting if k % 2 == 0 else retracting)(world.idea_ids[0], now))
        for k in range(n)
    ]
    requests += [
        as_user(database, v, (casting if (k + j) % 3 else retracting)(world.idea_ids[k % 2], now))
        for k in range(n)
        for j, v in enumerate(world.voter_ids[1:])
    ]

    results = await asyncio.gather(*requests, return_exceptions=True)

    assert not (failed := unexpected(results, allowed=())), failed
    assert all(isinstance(r, VoteState) and 0 <= r.votes <= 3 for r in results), results
    state = await snapshot(database, world.challenge_id)
    assert_consistent(state, BUDGET)
    # And the state is still usable: a final retraction and vote land where expected.
    for v in world.voter_ids:
        await as_user(database, v, retracting(world.idea_ids[0], now))
    last = await as_user(database, solo, casting(world.idea_ids[0], now))
    state = await snapshot(database, world.challenge_id)
    assert_consistent(state, BUDGET)
    assert state.counts[world.idea_ids[0]] == 1 == last.votes


async def test_interleaved_http_votes_and_retractions_stay_consistent(backend, db, clock, live, database):
    n = SCALE[backend.name]["flips"]
    world = await arrange(db, clock.now(), ideas=1, voters=1, budget=BUDGET)
    url = f"/api/v1/ideas/{world.idea_ids[0]}/vote"
    headers = await token(live.client, world.voter_emails[0])

    answers = await asyncio.gather(
        *((live.client.put if k % 2 == 0 else live.client.delete)(url, headers=headers) for k in range(n))
    )

    assert live.served.peak > 1, "the requests did not overlap"
    state = await snapshot(database, world.challenge_id)
    assert_consistent(state, BUDGET)
    assert Counter(a.status_code for a in answers) == {200: n}, next(
        a.text for a in answers if a.status_code != 200
    )
    assert all(a.json()["votes"] in (0, 1) for a in answers)


# --- what a user sees -----------------------------------------------------------------------------


async def test_vote_answers_show_the_count_and_the_remaining_budget(backend, db, clock, client, database):
    world = await arrange(db, clock.now(), ideas=4, voters=2, budget=BUDGET)
    a, b, c, d = world.idea_ids
    me = await token(client, world.voter_emails[0])
    other = await token(client, world.voter_emails[1])

    async def put(idea_id: int, headers: dict[str, str]) -> Any:
        answer = await client.put(f"/api/v1/ideas/{idea_id}/vote", headers=headers)
        assert answer.status_code in (200, 409), answer.text
        return answer

    async def remove(idea_id: int, headers: dict[str, str]) -> Any:
        answer = await client.delete(f"/api/v1/ideas/{idea_id}/vote", headers=headers)
        assert answer.status_code == 200, answer.text
        return answer.json()

    async def rows(idea_id: int) -> int:
        return (await snapshot(database, world.challenge_id)).rows(idea_id)

    first = (await put(a, me)).json()
    assert first == {"idea_id": a, "votes": 1, "voted": True, "remaining": 2}
    assert (await put(b, me)).json() == {"idea_id": b, "votes": 1, "voted": True, "remaining": 1}
    again = (await put(a, me)).json()
    assert again == {"idea_id": a, "votes": 1, "voted": True, "remaining": 1}, "voting twice changes nothing"
    theirs = (await put(a, other)).json()
    assert theirs == {"idea_id": a, "votes": 2, "voted": True, "remaining": 2}
    assert theirs["votes"] == await rows(a)
    assert (await put(c, me)).json() == {"idea_id": c, "votes": 1, "voted": True, "remaining": 0}
    spent = await put(d, me)
    assert spent.status_code == 409
    assert await rows(d) == 0
    back = await remove(b, me)
    assert back == {"idea_id": b, "votes": 0, "voted": False, "remaining": 1}
    assert await remove(b, me) == back, "taking a vote back twice is harmless"
    assert (await put(d, me)).json() == {"idea_id": d, "votes": 1, "voted": True, "remaining": 0}
    for idea_id in world.idea_ids:
        shown = (await client.get(f"/api/v1/ideas/{idea_id}", headers=me)).json()
        assert shown["votes"] == await rows(idea_id)
    assert_consistent(await snapshot(database, world.challenge_id), BUDGET)


async def test_without_a_budget_remaining_is_null(backend, db, clock, client, database):
    world = await arrange(db, clock.now(), ideas=5, voters=1, budget=None)
    me = await token(client, world.voter_emails[0])

    answers = [await client.put(f"/api/v1/ideas/{i}/vote", headers=me) for i in world.idea_ids]

    assert [a.status_code for a in answers] == [200] * 5
    assert {(a.json()["votes"], a.json()["remaining"]) for a in answers} == {(1, None)}
    assert len((await snapshot(database, world.challenge_id)).votes) == 5


async def test_a_vote_on_a_withdrawn_idea_can_be_taken_back_to_vote_elsewhere(
    backend, db, clock, client, database
):
    world = await arrange(db, clock.now(), ideas=BUDGET + 1, voters=1, budget=BUDGET)
    me = await token(client, world.voter_emails[0])
    *mine, spare = world.idea_ids
    for idea_id in mine:
        assert (await client.put(f"/api/v1/ideas/{idea_id}/vote", headers=me)).status_code == 200
    gone = mine[0]
    async with database.sessionmaker() as session:
        idea, author = await session.get(Idea, gone), await session.get(User, world.author_ids[gone])
        assert idea is not None
        assert author is not None
        await withdraw_idea(session, idea, author, clock.now())

    refused = await client.put(f"/api/v1/ideas/{gone}/vote", headers=me)
    assert refused.status_code == 409
    assert (await client.put(f"/api/v1/ideas/{spare}/vote", headers=me)).status_code == 409, (
        "the vote still counts"
    )
    back = await client.delete(f"/api/v1/ideas/{gone}/vote", headers=me)
    assert back.status_code == 200, back.text
    assert back.json() == {"idea_id": gone, "votes": 0, "voted": False, "remaining": 1}
    assert (await client.put(f"/api/v1/ideas/{spare}/vote", headers=me)).json()["remaining"] == 0
    assert_consistent(await snapshot(database, world.challenge_id), BUDGET)


async def test_a_vote_on_a_hidden_idea_can_be_taken_back_to_vote_elsewhere(
    backend, db, clock, client, database
):
    """votes.py: votes on a withdrawn or hidden idea use the voter's budget, and voters may retract
    them to vote elsewhere. Over the API the hidden idea must still accept the retraction."""
    world = await arrange(db, clock.now(), ideas=BUDGET + 1, voters=1, budget=BUDGET)
    me = await token(client, world.voter_emails[0])
    *mine, spare = world.idea_ids
    for idea_id in mine:
        assert (await client.put(f"/api/v1/ideas/{idea_id}/vote", headers=me)).status_code == 200
    hidden = mine[0]
    async with database.sessionmaker() as session:  # as moderation does
        await session.execute(update(Idea).where(Idea.id == hidden).values(status=IdeaStatus.HIDDEN))
        await session.commit()

    refused = await client.put(f"/api/v1/ideas/{hidden}/vote", headers=me)
    assert refused.status_code in (404, 409)
    assert (await snapshot(database, world.challenge_id)).rows(hidden) == 1
    assert (await client.put(f"/api/v1/ideas/{spare}/vote", headers=me)).status_code == 409, (
        "the vote still counts"
    )
    back = await client.delete(f"/api/v1/ideas/{hidden}/vote", headers=me)
    assert back.status_code == 200, (
        f"the voter cannot take back a vote on a hidden idea: {back.status_code} {back.text}"
    )
    assert back.json() == {"idea_id": hidden, "votes": 0, "voted": False, "remaining": 1}
    assert (await client.put(f"/api/v1/ideas/{spare}/vote", headers=me)).json()["remaining"] == 0
    assert_consistent(await snapshot(database, world.challenge_id), BUDGET)


# --- any sequence of votes, retractions and moderation -----------------------------------------

VOTERS, IDEAS, PROPERTY_BUDGET = 3, 4, 2
OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(["vote", "vote", "vote", "unvote", "unvote", "withdraw", "hide", "restore"]),
        st.integers(0, VOTERS - 1),
        st.integers(0, IDEAS - 1),
    ),
    min_size=6,
    max_size=24,
)


async def play(url: str, world: World, now: datetime, operations: list[tuple[str, int, int]]) -> None:
    """Run one sequence against the database and a model, checking the invariants after each step."""
    database = Database(url)
    try:
        async with database.sessionmaker() as session:  # start from a fresh state of this challenge
            await session.execute(delete(Vote).where(Vote.challenge_id == world.challenge_id))
            await session.execute(
                update(Idea)
                .where(Idea.challenge_id == world.challenge_id)
                .values(vote_count=0, status=IdeaStatus.PUBLISHED)
            )
            await session.commit()
        votes: set[tuple[int, int]] = set()
        statuses = dict.fromkeys(world.idea_ids, IdeaStatus.PUBLISHED)
        for step, (op, who, which) in enumerate(operations):
            user_id, idea_id = world.voter_ids[who], world.idea_ids[which]
            where = f"step {step} {op}(user {who}, idea {which}) of {operations}"
            before = frozenset(votes)
            outcome: Any
            try:
                if op == "vote":
                    outcome = await as_user(database, user_id, casting(idea_id, now))
                elif op == "unvote":
                    outcome = await as_user(database, user_id, retracting(idea_id, now))
                elif op == "withdraw":
                    async with database.sessionmaker() as session:
                        idea = await session.get(Idea, idea_id)
                        author = await session.get(User, world.author_ids[idea_id])
                        assert idea is not None
                        assert author is not None
                        await withdraw_idea(session, idea, author, now)
                    outcome = None
                else:  # moderation hides an idea, or restores a hidden one
                    async with database.sessionmaker() as session:
                        target = IdeaStatus.HIDDEN if op == "hide" else IdeaStatus.PUBLISHED
                        only = (
                            [IdeaStatus.PUBLISHED, IdeaStatus.WITHDRAWN]
                            if op == "hide"
                            else [IdeaStatus.HIDDEN]
                        )
                        await session.execute(
                            update(Idea)
                            .where(Idea.id == idea_id, Idea.status.in_(only))
                            .values(status=target)
                        )
                        await session.commit()
                    outcome = None
            except (Conflict, Forbidden, LookupError) as refused:
                outcome = refused
            except Exception as error:
                raise AssertionError(f"{where}: {error!r}") from error

            # The model's verdict.
            published = statuses[idea_id] is IdeaStatus.PUBLISHED
            used = sum(1 for u, _i in votes if u == user_id)
            if op == "vote":
                if (
                    statuses[idea_id] is IdeaStatus.HIDDEN
                    and (user_id, idea_id) not in votes
                    and world.author_ids[idea_id] != user_id
                ):
                    # Out of sight, as for unvote: not even "closed to votes" is said about it (a 404).
                    assert isinstance(outcome, LookupError), f"{where}: {outcome!r}"
                elif not published:
                    assert isinstance(outcome, Conflict), (
                        f"{where}: a vote on a {statuses[idea_id]} idea gave {outcome!r}"
                    )
                elif world.author_ids[idea_id] == user_id:
                    assert isinstance(outcome, Forbidden), (
                        f"{where}: an author voted for their own idea: {outcome!r}"
                    )
                elif (user_id, idea_id) not in votes and used >= PROPERTY_BUDGET:
                    assert isinstance(outcome, Conflict), f"{where}: over budget, got {outcome!r}"
                else:
                    assert isinstance(outcome, VoteState), f"{where}: {outcome!r}"
                    votes.add((user_id, idea_id))
            elif op == "unvote":
                if (
                    statuses[idea_id] is IdeaStatus.HIDDEN
                    and (user_id, idea_id) not in votes
                    and world.author_ids[idea_id] != user_id
                ):
                    # A hidden idea is out of sight for all but its author and its voters (the API says 404).
                    assert isinstance(outcome, LookupError), f"{where}: {outcome!r}"
                else:
                    assert isinstance(outcome, VoteState), (
                        f"{where}: retracting your own vote is always allowed, got {outcome!r}"
                    )
                votes.discard((user_id, idea_id))
            elif op == "withdraw":
                if published:
                    assert outcome is None, f"{where}: {outcome!r}"
                    statuses[idea_id] = IdeaStatus.WITHDRAWN
                else:
                    assert isinstance(outcome, Conflict), f"{where}: {outcome!r}"
            elif op == "hide" and statuses[idea_id] is not IdeaStatus.HIDDEN:
                statuses[idea_id] = IdeaStatus.HIDDEN
            elif op == "restore" and statuses[idea_id] is IdeaStatus.HIDDEN:
                statuses[idea_id] = IdeaStatus.PUBLISHED

            state = await snapshot(database, world.challenge_id)
            assert_consistent(state, PROPERTY_BUDGET)
            assert state.votes == votes, f"{where}: rows {sorted(state.votes)} != model {sorted(votes)}"
            assert state.statuses == statuses, where
            if isinstance(outcome, (Conflict, Forbidden, LookupError)):
                assert state.votes == before, f"{where}: a refused vote changed the rows"
            if isinstance(outcome, VoteState):
                expected = VoteState(
                    idea_id,
                    state.rows(idea_id),
                    op == "vote",
                    PROPERTY_BUDGET - state.used(user_id),
                    world.challenge_id,
                )
                assert outcome == expected, where
    finally:
        await database.dispose()


def _in_thread(coroutine: Any) -> Any:
    """Each example gets its own event loop, away from pytest-asyncio's."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def _arrange_at(url: str, now: datetime) -> World:
    database = Database(url)
    try:
        async with database.sessionmaker() as session:
            return await arrange(
                session, now, ideas=IDEAS, voters=VOTERS, budget=PROPERTY_BUDGET, own_ideas=2
            )
    finally:
        await database.dispose()


@pytest.mark.parametrize(
    "store", [pytest.param("sqlite"), pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_any_sequence_of_votes_and_moderation_keeps_the_rules(store: str, request: pytest.FixtureRequest,
                                                               tmp_path: Path) -> None:  # fmt: skip
    if store == "sqlite":
        db_file = tmp_path / "votes.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_template"), db_file)
        url = f"sqlite+aiosqlite:///{db_file}"
    else:
        url = request.getfixturevalue("postgres_url")
    now = datetime.now(UTC).replace(microsecond=0)
    world = _in_thread(_arrange_at(url, now))

    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(operations=OPERATIONS)
    def check(operations: list[tuple[str, int, int]]) -> None:
        note(f"operations: {operations!r}")
        _in_thread(play(url, world, now, operations))

    check()

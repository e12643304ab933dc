"""The permission table walked as data: for every phase and role, pages and API agree with it.

One test per action, like adhocracy's rule tests. Each persona is a real account, logged in on
its own client for pages and holding its own bearer token for the API. The author role depends
on an idea, which the ideas work brings; until then it is walked on the named functions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from challenges.models import Challenge, Phase
from challenges.permissions import (
    CHECKS,
    PERMISSIONS,
    Access,
    Action,
    Role,
    allowed_by_table,
    can_see_results,
)
from challenges.phases import active_phases
from ideaforge.organisations.models import Role as OrgRole
from tests.challenge_helpers import add_juror, add_member, make_challenge, make_organisation, user
from tests.helpers import STRONG_PASSWORD, RegistrationFactory, register

PERSONAS: dict[str, frozenset[Role]] = {
    "anonymous": frozenset({Role.ANONYMOUS}),
    "citizen": frozenset({Role.CITIZEN}),
    "moderator": frozenset({Role.CITIZEN, Role.MODERATOR}),
    "admin": frozenset({Role.CITIZEN, Role.ADMIN}),
    "juror": frozenset({Role.CITIZEN, Role.JUROR}),
}


@dataclass
class World:
    challenges: dict[Phase, Challenge]
    client: Any
    cookies: dict[str, httpx.Cookies]
    tokens: dict[str, str | None]

    async def get(self, persona: str, url: str, **kwargs: Any) -> httpx.Response:
        """A request from ``persona``'s own browser (their session cookie, nobody else's)."""
        self.client.cookies = httpx.Cookies(self.cookies[persona])
        response: httpx.Response = await self.client.get(url, **kwargs)
        return response


@pytest.fixture
async def world(client, db, clock):
    cookies: dict[str, httpx.Cookies] = {"anonymous": httpx.Cookies()}
    emails: dict[str, str] = {}
    tokens: dict[str, str | None] = {"anonymous": None}
    for persona in PERSONAS:
        if persona == "anonymous":
            continue
        client.cookies = httpx.Cookies()
        who = await register(client, RegistrationFactory.build())
        emails[persona] = who.email
        created = await client.post("/api/v1/tokens", json={"email": who.email, "password": STRONG_PASSWORD})
        tokens[persona] = created.json()["token"]
        cookies[persona] = httpx.Cookies(client.cookies)
    org = await make_organisation(db, await user(db, emails["admin"]))
    await add_member(db, org, await user(db, emails["moderator"]), OrgRole.MODERATOR)
    juror = await user(db, emails["juror"])
    challenges = {}
    for phase in Phase:
        challenges[phase] = await make_challenge(db, org, clock.now(), phase)
        await add_juror(db, challenges[phase], juror)
    return World(challenges, client, cookies, tokens)


def expected(action: Action, challenge: Challenge, now, roles: frozenset[Role]) -> bool:
    allowed = allowed_by_table(action, active_phases(challenge, now), roles)
    if action is Action.SEE_RESULTS and challenge.results_published_at is None:
        return allowed and bool(roles & {Role.MODERATOR, Role.ADMIN})  # unpublished: the organisation's only
    return allowed


async def walk(world: World, clock, action: Action) -> None:
    checked = 0
    for phase, challenge in world.challenges.items():
        for persona, roles in PERSONAS.items():
            allowed = expected(action, challenge, clock.now(), roles)
            visible = expected(Action.VIEW, challenge, clock.now(), roles)
            where = f"{action} in {phase} as {persona}"
            page = await world.get(persona, f"/challenges/{challenge.id}")
            headers = {"authorization": f"Bearer {world.tokens[persona]}"} if world.tokens[persona] else {}
            api = await world.get("anonymous", f"/api/v1/challenges/{challenge.id}", headers=headers)
            if not visible:
                assert page.status_code == api.status_code == 404, where
                assert not allowed, where
                continue
            assert page.status_code == api.status_code == 200, where
            shown = (
                bool(re.search(rf'data-action="{action}"', page.text)) if action is not Action.VIEW else True
            )
            assert shown == allowed, f"page: {where}"
            assert api.json()["permissions"][action] == allowed, f"api: {where}"
            checked += 1
    assert checked >= 20


async def test_view(world, clock):
    await walk(world, clock, Action.VIEW)


async def test_submit_idea(world, clock):
    await walk(world, clock, Action.SUBMIT_IDEA)


async def test_edit_own_idea(world, clock):
    await walk(world, clock, Action.EDIT_OWN_IDEA)


async def test_vote(world, clock):
    await walk(world, clock, Action.VOTE)


async def test_comment(world, clock):
    await walk(world, clock, Action.COMMENT)


async def test_score(world, clock):
    await walk(world, clock, Action.SCORE)


async def test_see_results(world, clock):
    await walk(world, clock, Action.SEE_RESULTS)


async def test_shortlist(world, clock):
    await walk(world, clock, Action.SHORTLIST)


def test_the_author_role_walks_the_table_through_the_named_functions():
    from tests.challenges.test_phases import T0, H, schedule

    for hours in (-1, 50, 150, 250, 350, 450):
        challenge = schedule()
        challenge.results_published_at = T0 + 300 * H  # published: the table alone decides
        now = T0 + hours * H
        for action, check in CHECKS.items():
            access = Access(challenge, now, frozenset({Role.CITIZEN, Role.AUTHOR}))
            assert check(access) == allowed_by_table(action, active_phases(challenge, now), access.roles), (
                action
            )


def test_results_stay_the_organisations_until_published():
    from tests.challenges.test_phases import T0, H, schedule

    challenge, now = schedule(), T0 + 350 * H  # in the results phase, nothing published yet
    citizen, admin = frozenset({Role.CITIZEN}), frozenset({Role.CITIZEN, Role.ADMIN})
    juror = frozenset({Role.CITIZEN, Role.JUROR})
    assert not can_see_results(Access(challenge, now, citizen))
    assert not can_see_results(Access(challenge, now, juror))
    assert can_see_results(Access(challenge, now, admin))
    challenge.results_published_at = now
    assert can_see_results(Access(challenge, now, citizen))


def test_the_table_says_what_the_platform_promises():
    assert PERMISSIONS[Action.SCORE] == {Phase.REVIEW: frozenset({Role.JUROR})}, (
        "only jurors score, only in review"
    )
    assert Role.ANONYMOUS not in PERMISSIONS[Action.VIEW][Phase.DRAFT], "drafts stay inside the organisation"
    assert Role.ANONYMOUS not in PERMISSIONS[Action.SEE_RESULTS][Phase.REVIEW], (
        "no results before publication"
    )
    assert all(Role.ANONYMOUS not in roles for action in (Action.SUBMIT_IDEA, Action.VOTE, Action.COMMENT)
               for roles in PERMISSIONS[action].values()), "taking part needs an account"  # fmt: skip
    assert all(roles == {Role.ADMIN} for roles in PERMISSIONS[Action.SHORTLIST].values()), "admins build it"
    assert not {Phase.REVIEW, Phase.RESULTS, Phase.CLOSED} & set(PERMISSIONS[Action.SHORTLIST]), (
        "the shortlist locks when the review starts"
    )


def test_a_role_may_act_only_in_the_phases_the_table_names():
    citizen = frozenset({Role.CITIZEN})
    assert allowed_by_table(Action.VOTE, frozenset({Phase.VOTING}), citizen)
    assert not allowed_by_table(Action.VOTE, frozenset({Phase.SUBMISSION}), citizen)
    assert allowed_by_table(Action.VOTE, frozenset({Phase.SUBMISSION, Phase.VOTING}), citizen), "overlap"
    assert not allowed_by_table(Action.SCORE, frozenset({Phase.REVIEW}), citizen)
    assert allowed_by_table(Action.SCORE, frozenset({Phase.REVIEW}), citizen | {Role.JUROR}), "roles add up"
    assert not allowed_by_table(Action.VIEW, frozenset({Phase.DRAFT}), frozenset({Role.ANONYMOUS}))

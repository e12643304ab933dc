"""Demo jury work: "Cooler streets" in review with its jurors part-way through scoring, and "Last-mile
delivery" in results with its winners published.

Runs after the ideas demo. It goes through the services the pages use (shortlist, assignment, scoring,
publication), each at a moment inside the phase it needs, so the demo's audit log, conflicts and
calibration are those of a real jury. Idempotent: a challenge that already has jurors is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from challenges.models import Challenge, ChallengeJuror, Criterion
from challenges.phases import results_starts_at
from challenges.services import get_challenge
from ideaforge.accounts.models import User
from ideaforge.organisations.models import Membership, Role
from ideas.jury.models import JuryAssignment
from ideas.jury.panel import assign_jurors
from ideas.jury.results import publish_results
from ideas.jury.scoring import comment_field, save_scores, score_field
from ideas.models import Idea
from ideas.shortlist import add_to_shortlist

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class DemoJury:
    challenge: str
    """Title prefix of the challenge."""
    shortlist: tuple[str, ...]
    jurors: tuple[str, ...]
    habits: dict[str, int]
    """Juror email -> how much they add to every score (a lenient +1, a harsh -1): what calibration removes."""
    merits: dict[str, tuple[int, ...]]
    """Idea title -> the score a neutral juror gives each criterion, in the criteria's order."""
    submitted: dict[str, int]
    """Juror email -> how many of their ideas they have submitted (the rest: one draft, then nothing)."""
    winners: int = 0
    """Publish with this many winners (0: still in review, nothing published)."""


COOLER = DemoJury(
    challenge="Cooler streets",
    shortlist=("Shade sails over school streets", "Des fontaines dans chaque square",
               "Trees instead of tarmac in school car parks", "Des salles fraîches dans les médiathèques"),
    jurors=("mobility@frankfurt.demo", "innovation@quebec.demo", "moderation@rennes.demo"),
    habits={"mobility@frankfurt.demo": 1, "innovation@quebec.demo": 0, "moderation@rennes.demo": -1},
    merits={"Shade sails over school streets": (4, 4, 3), "Des fontaines dans chaque square": (3, 4, 3),
            "Trees instead of tarmac in school car parks": (4, 3, 2),
            "Des salles fraîches dans les médiathèques": (3, 5, 4)},
    submitted={"mobility@frankfurt.demo": 9, "innovation@quebec.demo": 1, "moderation@rennes.demo": 0},
)  # fmt: skip
LAST_MILE = DemoJury(
    challenge="Last-mile delivery",
    shortlist=("Neighbourhood parcel hubs in corner shops", "Parcel pick-up points in local corner shops",
               "Des vélos-cargos mutualisés entre commerçants", "Des consignes à colis aux arrêts de tram",
               "Quiet electric deliveries at night", "One delivery round for all the old town's shops"),
    jurors=("lab@barcelona.demo", "innovation@quebec.demo", "moderation@rennes.demo"),
    habits={"lab@barcelona.demo": -1, "innovation@quebec.demo": 1, "moderation@rennes.demo": 0},
    merits={"Neighbourhood parcel hubs in corner shops": (4, 4),
            "Parcel pick-up points in local corner shops": (4, 3),
            "Des vélos-cargos mutualisés entre commerçants": (3, 4),
            "Des consignes à colis aux arrêts de tram": (3, 3),
            "Quiet electric deliveries at night": (2, 3),
            "One delivery round for all the old town's shops": (5, 3)},
    submitted={"lab@barcelona.demo": 9, "innovation@quebec.demo": 9, "moderation@rennes.demo": 9},
    winners=2,
)  # fmt: skip
JURIES = (COOLER, LAST_MILE)


async def _owner(session: AsyncSession, organisation_id: int) -> int | None:
    return await session.scalar(
        select(User.id).join(Membership, Membership.user_id == User.id)
        .where(Membership.organisation_id == organisation_id, Membership.role == Role.OWNER).limit(1)
    )  # fmt: skip


async def _user(session: AsyncSession, user_id: int) -> User:
    """The user as stored now (each service commits, which expires what the session holds)."""
    user = await session.scalar(
        select(User).where(User.id == user_id).execution_options(populate_existing=True)
    )
    assert user is not None
    return user


async def _challenge(session: AsyncSession, challenge_id: int) -> Challenge:
    session.expire_all()
    challenge = await get_challenge(session, challenge_id)
    assert challenge is not None
    return challenge


async def _load_one(session: AsyncSession, demo: DemoJury, users: dict[str, int], now: datetime) -> bool:
    found = await session.scalar(select(Challenge.id).where(Challenge.title.startswith(demo.challenge)))
    challenge = await get_challenge(session, found) if found is not None else None
    if challenge is None or challenge.review_ends_at is None or challenge.voting_ends_at > now:
        return False
    challenge_id = challenge.id
    if await session.scalar(select(ChallengeJuror.id).where(ChallengeJuror.challenge_id == challenge_id)):
        return False
    owner_id = await _owner(session, challenge.organisation_id)
    if owner_id is None or any(email not in users for email in demo.jurors):
        return False
    ideas = {title: idea_id for idea_id, title in await session.execute(
        select(Idea.id, Idea.title).where(Idea.challenge_id == challenge_id, Idea.title.in_(demo.shortlist)))}  # fmt: skip
    voting, review_ends = challenge.voting_ends_at, challenge.review_ends_at
    for title in demo.shortlist:  # built in the last hour of voting, as organisers do
        if title in ideas:
            await add_to_shortlist(session, await _challenge(session, challenge_id), ideas[title],
                                   await _user(session, owner_id), voting - timedelta(hours=1))  # fmt: skip
    session.add_all(ChallengeJuror(challenge_id=challenge_id, user_id=users[email]) for email in demo.jurors)
    await session.commit()
    scoring_at = min(now, review_ends - timedelta(days=1))
    await assign_jurors(session, await _challenge(session, challenge_id), await _user(session, owner_id),
                        voting + timedelta(hours=2))  # fmt: skip
    criteria = (await session.execute(
        select(Criterion.id, Criterion.scale_min, Criterion.scale_max)
        .where(Criterion.challenge_id == challenge_id).order_by(Criterion.position))).all()  # fmt: skip
    titles = {idea_id: title for title, idea_id in ideas.items()}
    for email in demo.jurors:
        given = list(await session.scalars(
            select(JuryAssignment.idea_id).where(JuryAssignment.challenge_id == challenge_id,
                                                 JuryAssignment.juror_user_id == users[email])
            .order_by(JuryAssignment.idea_id)))  # fmt: skip
        for index, idea_id in enumerate(given):
            submit = index < demo.submitted[email]
            if not submit and index > demo.submitted[email]:
                break  # one draft, then ideas not started
            merits = demo.merits[titles[idea_id]]
            values = {"overall_comment": "" if not submit else "Solid proposal; see my notes per criterion."}
            for (criterion_id, lowest, highest), merit in zip(criteria, merits, strict=False):
                values[score_field(criterion_id)] = str(max(lowest, min(highest, merit + demo.habits[email])))
                values[comment_field(criterion_id)] = ""
            await save_scores(session, await _challenge(session, challenge_id), idea_id,
                              await _user(session, users[email]), values, submit=submit, now=scoring_at)  # fmt: skip
    if demo.winners:
        challenge = await _challenge(session, challenge_id)
        await publish_results(session, challenge, await _user(session, owner_id),
                              max(now, results_starts_at(challenge)), demo.winners)  # fmt: skip
    log.info("demo jury loaded", challenge=demo.challenge, published=bool(demo.winners))
    return True


async def load_jury_demo(session: AsyncSession, now: datetime) -> bool:
    users = {email: user_id for user_id, email in await session.execute(select(User.id, User.email))}
    created = False
    for demo in JURIES:
        created = await _load_one(session, demo, users, now) or created
    return created

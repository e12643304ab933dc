"""Arranging ideas for tests: authors, ideas in a challenge, and voters."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from challenges.models import Challenge
from ideaforge.accounts.models import User
from ideaforge.accounts.passwords import hash_password
from ideas.models import Idea
from ideas.services import IdeaInput, submit_idea
from tests.helpers import HOSTILE

_hash_cache: dict[str, str] = {}


async def make_user(db: AsyncSession, email: str, name: str = "Voter") -> User:
    """A user straight in the database (fast: one Argon2 hash reused), for tests about ideas."""
    if "hash" not in _hash_cache:
        _hash_cache["hash"] = await hash_password("correct horse battery staple")
    user = User(email=email.lower(), display_name=name, password_hash=_hash_cache["hash"])
    db.add(user)
    await db.commit()
    return user


async def make_idea(
    db: AsyncSession,
    challenge: Challenge,
    author: User,
    now: datetime,
    title: str = "Share unsold bread",
    **kw: str,
) -> Idea:
    """An idea submitted through the service (the challenge must be in submission at ``now``)."""
    body = kw.get("body", f"Bakers give what is left to **food banks**. {HOSTILE}")
    return await submit_idea(db, challenge, author, IdeaInput(title, body, kw.get("language", "en")), now)


async def add_votes(
    db: AsyncSession, idea: Idea, voters: list[User], at: datetime, client_hash: str = ""
) -> None:
    """Vote rows straight in the database, with the idea's counter kept equal to its rows."""
    from sqlalchemy import update

    from ideas.models import Vote

    idea_id, challenge_id = idea.id, idea.challenge_id
    db.add_all(
        Vote(idea_id=idea_id, challenge_id=challenge_id, user_id=v.id, created_at=at, client_hash=client_hash)
        for v in voters
    )
    await db.execute(update(Idea).where(Idea.id == idea_id).values(vote_count=Idea.vote_count + len(voters)))
    await db.commit()


async def flag_pair(
    db: AsyncSession, a: Idea, b: Idea, probability: float = 0.9, at: datetime | None = None
) -> int:
    """A suspected duplicate pair as the scorer records it (newer, larger id first); returns its id."""
    from ideas.models import DuplicatePair

    pair = DuplicatePair(challenge_id=a.challenge_id, idea_id=max(a.id, b.id), existing_id=min(a.id, b.id),
                         probability=probability)  # fmt: skip
    if at is not None:
        pair.created_at = at
    db.add(pair)
    await db.commit()
    return pair.id

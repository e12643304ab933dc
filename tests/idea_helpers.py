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

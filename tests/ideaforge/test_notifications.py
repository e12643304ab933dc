"""Notifications as people get them: the bell and the list in the app, and email over real SMTP
(aiosmtpd), each in the recipient's language; following challenges and ideas; and no news of what
did not happen."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email.header import decode_header, make_header
from email.message import Message
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from challenges.models import Challenge, Phase
from ideaforge.accounts.models import User
from ideaforge.i18n import gettext, use_locale
from ideaforge.notifications.models import Follow, Notification
from ideas.models import Comment, Idea
from tests.challenge_helpers import DAY, Org, make_challenge, make_organisation
from tests.helpers import login, logout, post_form, shown
from tests.idea_helpers import make_idea, make_user

pytestmark = pytest.mark.smtp


COMMENTED = "%(name)s commented on “%(title)s”."
NEW_PHASE = "“%(title)s” is now in the phase: %(phase)s."
SUBJECT = "News on IdeaForge"
IDEA_TITLE = "Share unsold bread"
COMMENTS_CLOSED = "Comments are closed in this phase of the challenge."


# --- arranging and reading -----------------------------------------------------------------------


@dataclass
class Scene:
    org: Org
    challenge: Challenge
    idea: Idea
    author: User
    commenter: User


async def arrange(db: AsyncSession, now: datetime, phase: Phase = Phase.SUBMISSION) -> Scene:
    """Alice's idea in a challenge of "Ville de Rennes"; Bob is about to comment on it."""
    admin = await make_user(db, "organiser@rennes.example.org", "Olivia Organiser")
    org = await make_organisation(db, admin)
    challenge = await make_challenge(db, org, now, phase)
    author = await make_user(db, "alice@example.org", "Alice Author")
    commenter = await make_user(db, "bob@example.org", "Bob Commenter")
    idea = await make_idea(db, challenge, author, challenge.submission_starts_at + DAY, title=IDEA_TITLE)
    return Scene(org, challenge, idea, author, commenter)


async def sign_in_as(client: Any, who: User) -> None:
    await logout(client)
    client.cookies.delete("ideaforge_locale")  # another person: the previous one's language choice goes
    response = await login(client, who.email)
    assert response.status_code == 303, response.text


async def speak_french(client: Any, who: User) -> None:
    """``who`` picks French in the locale switcher, which keeps the choice on their account."""
    await sign_in_as(client, who)
    response = await post_form(client, "/locale", {"locale": "fr", "next": "/"})
    assert response.status_code == 303


async def comment(client: Any, idea_id: int, body: str = "Which bakeries first?") -> Any:
    response = await post_form(client, f"/ideas/{idea_id}/comments", {"body": body})
    assert response.status_code == 303, response.text
    return response


async def follow(client: Any, target_type: str, target_id: int | str, action: str = "follow") -> Any:
    return await post_form(
        client,
        "/follow",
        {"target_type": target_type, "target_id": str(target_id), "action": action, "next": "/notifications"},
    )


async def override_phase(client: Any, scene: Scene, phase: Phase) -> None:
    await sign_in_as(client, scene.org.admin)
    response = await post_form(
        client,
        f"/challenges/{scene.challenge.id}/phase",
        {"phase": phase.value, "reason": "Enough ideas came in: we vote early."},
    )
    assert response.status_code == 303, response.text


async def notifications_of(db: AsyncSession, who: User) -> list[tuple[str, str, str]]:
    rows = await db.execute(
        select(Notification.kind, Notification.text, Notification.link)
        .where(Notification.user_id == who.id)
        .order_by(Notification.id)
    )
    return [(kind, text, link) for kind, text, link in rows.all()]


async def count(db: AsyncSession, model: type[Any]) -> int:
    return await db.scalar(select(func.count()).select_from(model)) or 0


async def mails_to(client: AsyncTestClient[Litestar], received: list[Message], who: User) -> list[Message]:
    await client.app.state.jobs.drain()
    return [m for m in received if m["To"] == who.email]


async def all_mail(client: AsyncTestClient[Litestar], received: list[Message]) -> list[Message]:
    await client.app.state.jobs.drain()
    return list(received)


def subject_of(message: Message) -> str:
    return str(make_header(decode_header(message["Subject"])))


def body_of(message: Message) -> str:
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode(message.get_content_charset() or "utf-8")


def bell(page: str) -> str | None:
    """The unread count on the bell in the header, or None when it shows none."""
    link = re.search(r'<a href="/notifications" class="bell">(.*?)</a>', page, re.S)
    assert link, "no bell: is anyone signed in?"
    badge = re.search(r'<span class="badge"[^>]*>(\d+)</span>', link.group(1))
    return badge.group(1) if badge else None


def fr(message: str, **params: str) -> str:
    with use_locale("fr"):
        return gettext(message, **params)


def commented(who: User, title: str = IDEA_TITLE) -> str:
    return COMMENTED % {"name": who.display_name, "title": title}


# --- 8. comments notify the idea's author ---------------------------------------------------------


async def test_the_author_sees_a_comment_notification_on_the_bell_and_in_the_list(client, db, clock):
    scene = await arrange(db, clock.now())
    await sign_in_as(client, scene.commenter)
    await comment(client, scene.idea.id)

    await sign_in_as(client, scene.author)
    page = (await client.get("/")).text
    listing = (await client.get("/notifications")).text

    assert bell(page) == "1"
    assert 'aria-label="1 unread"' in page
    assert f'<a href="/ideas/{scene.idea.id}">{shown(commented(scene.commenter))}</a>' in listing
    assert await notifications_of(db, scene.author) == [
        ("comment", commented(scene.commenter), f"/ideas/{scene.idea.id}")
    ]


async def test_the_author_is_emailed_over_smtp_about_a_comment(client, db, clock, received):
    scene = await arrange(db, clock.now())
    await sign_in_as(client, scene.commenter)

    await comment(client, scene.idea.id)

    [mail] = await mails_to(client, received, scene.author)
    assert subject_of(mail) == SUBJECT
    assert mail["Content-Language"] == "en"
    assert commented(scene.commenter) in body_of(mail)
    assert f"http://testserver.local/ideas/{scene.idea.id}" in body_of(mail)


async def test_a_french_author_gets_the_news_in_french(client, db, clock, received):
    scene = await arrange(db, clock.now())
    await speak_french(client, scene.author)
    await sign_in_as(client, scene.commenter)  # Bob reads the site in English

    await comment(client, scene.idea.id)

    french = fr(COMMENTED, name=scene.commenter.display_name, title=IDEA_TITLE)
    [mail] = await mails_to(client, received, scene.author)
    assert mail["Content-Language"] == "fr"
    assert subject_of(mail) == fr(SUBJECT)
    assert french in body_of(mail)
    await sign_in_as(client, scene.author)
    assert shown(french) in (await client.get("/notifications")).text
    assert french != commented(scene.commenter), "the French catalogue has no translation of the notification"
    assert fr(SUBJECT) != SUBJECT


async def test_the_commenter_is_not_told_of_their_own_comment(client, db, clock, received):
    scene = await arrange(db, clock.now())
    await sign_in_as(client, scene.commenter)
    await comment(client, scene.idea.id)
    await comment(client, scene.idea.id, "And the Sunday market?")

    page = (await client.get("/")).text

    assert bell(page) is None
    assert await notifications_of(db, scene.commenter) == []
    assert await mails_to(client, received, scene.commenter) == []
    assert len(await notifications_of(db, scene.author)) == 2, "the author is told of each"


async def test_mark_all_as_read_clears_the_count(client, db, clock):
    scene = await arrange(db, clock.now())
    await sign_in_as(client, scene.commenter)
    await comment(client, scene.idea.id)
    await comment(client, scene.idea.id, "And the Sunday market?")
    await sign_in_as(client, scene.author)
    assert bell((await client.get("/")).text) == "2"

    response = await post_form(client, "/notifications/read", {})

    assert response.status_code == 303
    assert response.headers["location"] == "/notifications"
    listing = (await client.get("/notifications")).text
    assert bell(listing) is None
    assert 'class="unread"' not in listing
    assert shown(commented(scene.commenter)) in listing, "read news stay in the list"


# --- 9. following -----------------------------------------------------------------------------------


async def test_following_a_challenge_turns_the_button_to_following(client, db, clock):
    scene = await arrange(db, clock.now())
    follower = await make_user(db, "fatou@example.org", "Fatou Follower")
    await sign_in_as(client, follower)
    before = (await client.get(f"/challenges/{scene.challenge.id}")).text
    assert 'aria-pressed="false">Follow</button>' in before

    response = await follow(client, "challenge", scene.challenge.id)

    assert response.status_code == 303
    after = (await client.get(f"/challenges/{scene.challenge.id}")).text
    assert 'aria-pressed="true">Following</button>' in after
    assert '<input type="hidden" name="action" value="unfollow">' in after


async def test_followers_hear_of_a_phase_override_naming_the_new_phase(client, db, clock, received):
    scene = await arrange(db, clock.now())
    follower = await make_user(db, "fatou@example.org", "Fatou Follower")
    await sign_in_as(client, follower)
    await follow(client, "challenge", scene.challenge.id)

    await override_phase(client, scene, Phase.VOTING)

    news = NEW_PHASE % {"title": scene.challenge.title, "phase": "Voting"}
    assert await notifications_of(db, follower) == [("phase", news, f"/challenges/{scene.challenge.id}")]
    [mail] = await mails_to(client, received, follower)
    assert news in body_of(mail)
    await sign_in_as(client, follower)
    assert shown(news) in (await client.get("/notifications")).text


async def test_unfollowing_a_challenge_stops_its_news(client, db, clock, received):
    scene = await arrange(db, clock.now())
    leaver = await make_user(db, "lea@example.org", "Léa Leaver")
    stayer = await make_user(db, "sam@example.org", "Sam Stayer")
    for who in (leaver, stayer):
        await sign_in_as(client, who)
        await follow(client, "challenge", scene.challenge.id)
    await sign_in_as(client, leaver)

    response = await follow(client, "challenge", scene.challenge.id, action="unfollow")
    await override_phase(client, scene, Phase.VOTING)

    assert response.status_code == 303
    assert await notifications_of(db, leaver) == []
    assert await mails_to(client, received, leaver) == []
    assert len(await notifications_of(db, stayer)) == 1, "someone still following hears of it"


async def test_following_an_idea_brings_its_comments(client, db, clock, received):
    scene = await arrange(db, clock.now())
    follower = await make_user(db, "fatou@example.org", "Fatou Follower")
    await sign_in_as(client, follower)
    response = await follow(client, "idea", scene.idea.id)
    assert response.status_code == 303
    assert 'aria-pressed="true">Following</button>' in (await client.get(f"/ideas/{scene.idea.id}")).text

    await sign_in_as(client, scene.commenter)
    await comment(client, scene.idea.id)

    assert await notifications_of(db, follower) == [
        ("comment", commented(scene.commenter), f"/ideas/{scene.idea.id}")
    ]
    [mail] = await mails_to(client, received, follower)
    assert commented(scene.commenter) in body_of(mail)


async def test_following_twice_keeps_one_follow(client, db, clock):
    scene = await arrange(db, clock.now())
    follower = await make_user(db, "fatou@example.org", "Fatou Follower")
    await sign_in_as(client, follower)

    await follow(client, "challenge", scene.challenge.id)
    await follow(client, "challenge", scene.challenge.id)

    assert await db.scalar(select(func.count()).select_from(Follow).where(Follow.user_id == follower.id)) == 1


@pytest.mark.parametrize("target", ["draft challenge", "unknown challenge", "unknown idea", "unknown type"])
async def test_following_what_one_cannot_see_is_a_404_that_creates_nothing(client, db, clock, target):
    scene = await arrange(db, clock.now())
    draft = await make_challenge(db, scene.org, clock.now(), Phase.DRAFT)
    target_type, target_id = {
        "draft challenge": ("challenge", draft.id),
        "unknown challenge": ("challenge", 999_999),
        "unknown idea": ("idea", 999_999),
        "unknown type": ("organisation", scene.org.organisation.id),
    }[target]
    follows_before = await count(db, Follow)
    await sign_in_as(client, scene.commenter)

    response = await follow(client, target_type, target_id)

    assert response.status_code == 404
    assert await count(db, Follow) == follows_before


# --- 10. no news of what did not happen ------------------------------------------------------------


@pytest.mark.parametrize(
    ("phase", "body", "message"),
    [
        (Phase.RESULTS, "Too late?", COMMENTS_CLOSED),
        (Phase.SUBMISSION, "   ", "This field is required."),
    ],
    ids=["results phase", "empty comment"],
)
async def test_a_refused_comment_sends_no_notification_and_no_mail(
    client, db, clock, received, phase, body, message
):
    scene = await arrange(db, clock.now(), phase)
    await sign_in_as(client, scene.commenter)

    response = await comment(client, scene.idea.id, body)

    page = (await client.get(response.headers["location"])).text
    assert shown(message) in page
    assert await count(db, Comment) == 0
    assert await count(db, Notification) == 0
    assert await all_mail(client, received) == []

"""Similar ideas while typing, the duplicate interstitial and its ways out, and search by meaning."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ideaforge.app import create_app
from ideaforge.notifications.models import Notification
from ideas.models import CoAuthor, CoAuthorStatus, DuplicatePair, Idea, Vote
from ideas.similarity import SimilarityUnavailable
from ml.dedup import slug
from ml.embedding import DEFAULT_MODEL
from tests.challenge_helpers import make_challenge, make_organisation
from tests.helpers import post_form, shown
from tests.idea_helpers import make_user
from tests.ideas.test_idea_pages import sign_in, switch_to, switch_to_new

PLANTED_TITLE = "Drinking fountains in every park"
PLANTED_BODY = (
    "Install free drinking water fountains in all the city parks so people can refill their bottles."
)
TWIN_TITLE = "Water fountains in the parks"
TWIN_BODY = "Free public drinking fountains in parks, to refill water bottles when it is hot."


async def _challenge(db: AsyncSession, now: datetime, **overrides: Any) -> int:
    admin = await make_user(db, "organiser@example.org", "Organiser")
    org = await make_organisation(db, admin)
    overrides.setdefault("voting_starts_at", now - timedelta(hours=1))
    challenge = await make_challenge(db, org, now, tags=[], votes_per_user=None, **overrides)
    return challenge.id


async def _plant(client: Any, db: AsyncSession, app: Litestar, challenge_id: int) -> int:
    """The planted idea, submitted through the page by its author and embedded by the after-commit job."""
    await sign_in(client, db, "author@example.org", "Author")
    response = await post_form(client, f"/challenges/{challenge_id}/ideas/new",
                               {"title": PLANTED_TITLE, "body": PLANTED_BODY, "language": "en"})  # fmt: skip
    assert response.status_code == 303, response.text
    await app.state.jobs.drain()
    return int(response.headers["location"].rsplit("/", 1)[-1])


async def test_the_panel_names_a_planted_duplicate_with_its_votes(client, db, app, clock):
    challenge_id = await _challenge(db, clock.now())
    await _plant(client, db, app, challenge_id)
    await switch_to_new(client, db, "citizen@example.org", "Citizen")

    panel = await post_form(client, f"/challenges/{challenge_id}/ideas/similar",
                            {"title": TWIN_TITLE, "body": TWIN_BODY})  # fmt: skip
    assert panel.status_code == 200
    assert PLANTED_TITLE in panel.text
    assert "Very likely the same idea" in panel.text
    assert "0 votes" in panel.text

    unrelated = await post_form(client, f"/challenges/{challenge_id}/ideas/similar",
                                {"title": "Night buses on weekends", "body": "Run buses all night long."})  # fmt: skip
    assert PLANTED_TITLE not in unrelated.text
    for text in ("", "fountains"):  # empty or one word: nothing rather than noise
        quiet = await post_form(
            client, f"/challenges/{challenge_id}/ideas/similar", {"title": text, "body": ""}
        )
        assert quiet.status_code == 200
        assert PLANTED_TITLE not in quiet.text


async def test_a_duplicate_submission_is_stopped_and_nothing_is_written(client, db, app, clock):
    challenge_id = await _challenge(db, clock.now())
    planted = await _plant(client, db, app, challenge_id)
    await switch_to_new(client, db, "citizen@example.org", "Citizen")

    response = await post_form(client, f"/challenges/{challenge_id}/ideas/new",
                               {"title": TWIN_TITLE, "body": TWIN_BODY, "language": ""})  # fmt: skip
    assert response.status_code == 200
    assert "This idea may already exist" in response.text
    assert f'action="/ideas/{planted}/support-instead"' in response.text
    assert TWIN_BODY in response.text  # the draft is kept on the page
    assert await db.scalar(select(func.count()).select_from(Idea)) == 1

    anyway = await post_form(client, f"/challenges/{challenge_id}/ideas/new",
                             {"title": TWIN_TITLE, "body": TWIN_BODY, "language": "", "despite": str(planted)})  # fmt: skip
    assert anyway.status_code == 303
    await app.state.jobs.drain()
    twin = await db.scalar(select(Idea).where(Idea.title == TWIN_TITLE))
    assert twin is not None
    assert twin.submitted_despite_id == planted
    pair = await db.scalar(select(DuplicatePair).where(DuplicatePair.idea_id == twin.id))
    assert pair is not None
    assert pair.existing_id == planted  # the moderators' queue has it


async def test_supporting_instead_votes_and_keeps_the_draft(client, db, app, clock):
    challenge_id = await _challenge(db, clock.now())
    planted = await _plant(client, db, app, challenge_id)
    citizen = await switch_to_new(client, db, "citizen@example.org", "Citizen")

    response = await post_form(
        client, f"/ideas/{planted}/support-instead", {"title": TWIN_TITLE, "body": TWIN_BODY}
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/ideas/{planted}"
    assert await db.scalar(select(Vote.id).where(Vote.idea_id == planted, Vote.user_id == citizen.id))
    assert await db.scalar(select(Idea.vote_count).where(Idea.id == planted)) == 1
    kept = await db.scalar(select(Notification.text).where(Notification.user_id == citizen.id,
                                                           Notification.kind == "draft_kept"))  # fmt: skip
    assert kept is not None
    assert TWIN_BODY in kept
    assert await db.scalar(select(func.count()).select_from(Idea)) == 1


async def test_supporting_before_voting_opens_follows_the_idea_and_still_keeps_the_draft(
    client, db, app, clock
):
    challenge_id = await _challenge(db, clock.now(), voting_starts_at=clock.now() + timedelta(days=3))
    planted = await _plant(client, db, app, challenge_id)
    citizen = await switch_to_new(client, db, "citizen@example.org", "Citizen")

    response = await post_form(
        client, f"/ideas/{planted}/support-instead", {"title": TWIN_TITLE, "body": TWIN_BODY}
    )
    assert response.status_code == 303
    page = await client.get(f"/ideas/{planted}")
    assert "You now follow this idea instead" in shown(page.text)
    assert await db.scalar(select(func.count()).select_from(Vote)) == 0
    assert await db.scalar(select(Notification.id).where(Notification.user_id == citizen.id,
                                                         Notification.kind == "draft_kept"))  # fmt: skip


async def test_asking_to_join_reaches_the_author_who_can_accept(client, db, app, clock):
    challenge_id = await _challenge(db, clock.now())
    planted = await _plant(client, db, app, challenge_id)
    citizen = await switch_to_new(client, db, "citizen@example.org", "Citizen")

    response = await post_form(
        client, f"/ideas/{planted}/join-request", {"title": TWIN_TITLE, "body": TWIN_BODY}
    )
    assert response.status_code == 303
    request = await db.scalar(select(CoAuthor).where(CoAuthor.idea_id == planted))
    assert request is not None
    assert request.status is CoAuthorStatus.REQUESTED
    assert TWIN_BODY in request.message
    # The requester cannot accept their own request.
    assert (await post_form(client, f"/ideas/{planted}/coauthors/accept", {})).status_code == 403

    await switch_to(client, "author@example.org")
    page = await client.get(f"/ideas/{planted}")
    assert "proposes to join as co-author" in shown(page.text)
    assert TWIN_BODY in page.text
    answer = await post_form(client, f"/ideas/{planted}/join-requests/{citizen.id}", {"action": "accept"})
    assert answer.status_code == 303
    status = await db.scalar(select(CoAuthor.status).where(CoAuthor.id == request.id).execution_options(
        populate_existing=True))  # fmt: skip
    assert status is CoAuthorStatus.ACCEPTED
    told = await db.scalar(select(Notification.text).where(Notification.user_id == citizen.id,
                                                           Notification.kind == "join_answer"))  # fmt: skip
    assert told is not None
    assert PLANTED_TITLE in told


async def test_search_by_meaning_finds_ideas_in_other_words(client, db, app, clock):
    challenge_id = await _challenge(db, clock.now())
    await _plant(client, db, app, challenge_id)
    response = await post_form(client, f"/challenges/{challenge_id}/ideas/new",
                               {"title": "Night buses on weekends", "body": "Run buses all night on Fridays "
                                "and Saturdays so people get home safely.", "language": "en"})  # fmt: skip
    assert response.status_code == 303
    await app.state.jobs.drain()

    found = await client.get(
        f"/challenges/{challenge_id}/ideas", params={"q": "somewhere to get water when thirsty"}
    )
    text = shown(found.text)
    assert text.index(PLANTED_TITLE) < text.index("Night buses on weekends")
    transport = await client.get(
        f"/challenges/{challenge_id}/ideas", params={"q": "public transport at night"}
    )
    text = shown(transport.text)
    assert text.index("Night buses on weekends") < text.index(PLANTED_TITLE)


async def test_the_directory_searches_challenges_by_meaning(client, db, clock):
    admin = await make_user(db, "organiser@example.org", "Organiser")
    org = await make_organisation(db, admin)
    await make_challenge(db, org, clock.now(), title="Cooler streets in summer",
                         summary="Shade, trees and water against heatwaves.")  # fmt: skip
    await make_challenge(db, org, clock.now(), title="Faster permits for small shops",
                         summary="Less paperwork for opening a business.")  # fmt: skip
    words = await client.get("/challenges/", params={"q": "hot weather"})
    assert "Cooler streets in summer" not in words.text  # no shared word
    meaning = await client.get("/challenges/", params={"q": "hot weather", "meaning": "1"})
    text = shown(meaning.text)
    assert "Cooler streets in summer" in text
    if "Faster permits for small shops" in text:
        assert text.index("Cooler streets in summer") < text.index("Faster permits for small shops")


SHIPPED = Path(__file__).resolve().parents[2] / "ml" / "fitted" / f"dedup-{slug(DEFAULT_MODEL)}.json"


def _scorer_for(model: str, tmp_path: Path) -> Path:
    path = tmp_path / "scorer.json"
    path.write_text(SHIPPED.read_text().replace(f'"model": "{DEFAULT_MODEL}"', f'"model": "{model}"'))
    return path


async def _start_up_error(app: Litestar) -> str:
    """The start-up failure's message (Litestar raises it inside an exception group)."""
    with pytest.raises(BaseException) as caught:  # noqa: PT011  # the group's inner error is checked below
        async with AsyncTestClient(app):
            pass
    errors: list[BaseException] = [caught.value]
    while isinstance(errors[-1], BaseExceptionGroup):
        errors.append(errors[-1].exceptions[0])
    assert isinstance(errors[-1], SimilarityUnavailable), errors
    return str(errors[-1])


@pytest.mark.parametrize("model", ["/nonexistent/sentence-model", "not-a-model-anywhere"])
async def test_a_broken_model_setting_stops_start_up_naming_the_setting(sqlite_backend, tmp_path, model):
    settings = sqlite_backend.settings.model_copy(
        update={"embedding_model": model, "dedup_scorer": _scorer_for(model, tmp_path)}
    )
    message = await _start_up_error(create_app(settings))
    assert "IDEAFORGE_EMBEDDING_MODEL" in message
    assert model in message


async def test_a_scorer_fitted_for_another_model_stops_start_up(sqlite_backend, embedder, tmp_path):
    settings = sqlite_backend.settings.model_copy(
        update={"dedup_scorer": _scorer_for("another-model", tmp_path)}
    )
    message = await _start_up_error(create_app(settings, embedder=embedder))
    assert "another-model" in message
    assert "IDEAFORGE_DEDUP_SCORER" in message


async def test_a_corrupt_index_snapshot_is_rebuilt_not_trusted(backend, embedder, db, clock):
    settings = backend.settings
    challenge_id = await _challenge(db, clock.now())
    app = create_app(settings, clock=clock, embedder=embedder)
    async with AsyncTestClient(app, base_url="http://testserver.local") as client:
        planted = await _plant(client, db, app, challenge_id)
    snapshot = settings.data_dir / "index" / slug(DEFAULT_MODEL)
    parts = sorted(snapshot.glob("*.faiss"))
    assert parts, "the snapshot is written at shutdown"
    for part in parts:
        part.write_bytes(b"\x00garbage" * 10)

    app = create_app(settings, clock=clock, embedder=embedder)
    async with AsyncTestClient(app, base_url="http://testserver.local") as client:
        await sign_in(client, db, "citizen@example.org", "Citizen")
        panel = await post_form(client, f"/challenges/{challenge_id}/ideas/similar",
                                {"title": TWIN_TITLE, "body": TWIN_BODY})  # fmt: skip
        assert PLANTED_TITLE in panel.text
        assert planted in app.state.similarity.index.get(f"challenge:{challenge_id}").ids()

"""Live vote counts: published on a channel per challenge after commit, streamed as SSE.

Event names are ``votes-<idea id>`` and the data is the new count, which is what htmx's SSE
extension swaps into the element marked ``sse-swap="votes-<idea id>"``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any

from litestar import Litestar
from litestar.channels import ChannelsPlugin
from litestar.response.sse import ServerSentEventMessage


def channel(app: Litestar, challenge_id: int) -> str:
    return f"{app.state.settings.redis_prefix}:challenge:{challenge_id}"


def publish_votes(app: Litestar, challenge_id: int, idea_id: int, votes: int) -> None:
    app.plugins.get(ChannelsPlugin).publish(
        {"idea": idea_id, "votes": votes}, channels=[channel(app, challenge_id)]
    )


async def vote_stream(app: Litestar, challenge_id: int) -> AsyncGenerator[ServerSentEventMessage, None]:
    plugin = app.plugins.get(ChannelsPlugin)
    # An opening comment tells the browser the stream is live before the first vote arrives.
    yield ServerSentEventMessage(comment="connected")
    async with plugin.start_subscription([channel(app, challenge_id)]) as subscriber:
        async for raw in subscriber.iter_events():
            event: dict[str, Any] = json.loads(raw)
            yield ServerSentEventMessage(event=f"votes-{int(event['idea'])}", data=str(int(event["votes"])))

"""The ideas package's jobs: storing vectors after commit (``Similarity`` queues them by name).

Each runs with the process's own ``Similarity`` (``context.services["similarity"]``), and each is
idempotent: a vector is stored once per object (a unique row, replaced only when the text changed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ideaforge.jobs import Handler, JobContext

if TYPE_CHECKING:
    from ideas.similarity import Similarity

EMBED_IDEA = "ideas.embed_idea"
EMBED_PROFILE = "ideas.embed_profile"
REEMBED = "ideas.reembed"


def _similarity(context: JobContext) -> Similarity:
    similarity: Similarity = context.services["similarity"]
    return similarity


async def embed_idea(context: JobContext, payload: dict[str, Any]) -> None:
    await _similarity(context).embed_idea(int(payload["idea_id"]))


async def embed_profile(context: JobContext, payload: dict[str, Any]) -> None:
    await _similarity(context).embed_profile(str(payload["kind"]), int(payload["object_id"]))


async def reembed(context: JobContext, payload: dict[str, Any]) -> None:
    """Every idea and profile without a vector from the current model (a new model, `demo load`)."""
    await _similarity(context).reembed()


IDEA_JOBS: dict[str, Handler] = {EMBED_IDEA: embed_idea, EMBED_PROFILE: embed_profile, REEMBED: reembed}

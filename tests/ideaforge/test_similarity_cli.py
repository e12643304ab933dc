"""`ideaforge index`, `eval dedup` and `dedup fit`, run in-process with click's runner.

The commands get the session's loaded model through ``obj={"embedder": ...}`` (otherwise they load the
model the settings name); the bad-model tests give none, so the settings' loading path runs.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from ideaforge.cli import main
from ideaforge.settings import Settings
from ml.dedup import DuplicateScorer, default_scorer_path, slug
from ml.embedding import DEFAULT_MODEL, Embedder
from ml.index import IndexSet
from tests.conftest import SECRET, Backend
from tests.idea_helpers import make_idea, make_user
from tests.ideas.test_idea_api import open_challenge, token_for

BAD_MODEL = "/nonexistent/embedding-model"
PAIRS = [
    ("Share unsold bread with food banks", "Bakeries donate their leftover loaves to charities", True, "en"),
    (
        "Protected bike lanes on the ring road",
        "Separate cycle paths along the ring road for commuters",
        True,
        "en",
    ),
    ("Solar panels on school roofs", "Put photovoltaic panels on the roofs of our schools", True, "en"),
    ("Water fountains in every park", "Free drinking water taps in the city's parks", True, "en"),
    ("Night buses on weekends", "Buses running all night on Friday and Saturday", True, "en"),
    ("Share unsold bread with food banks", "A weekly farmers' market in the old town", False, "en"),
    ("Protected bike lanes on the ring road", "More benches along the river walk", False, "en"),
    ("Solar panels on school roofs", "Longer opening hours for the public library", False, "en"),
    ("Water fountains in every park", "A repair café for broken appliances", False, "en"),
    ("Night buses on weekends", "Compost bins in every courtyard", False, "en"),
    (
        "Des fontaines à eau dans chaque parc",
        "Installer des points d'eau potable gratuits dans les parcs",
        True,
        "fr",
    ),
    ("Des fontaines à eau dans chaque parc", "Un marché de producteurs le samedi matin", False, "fr"),
    ("Solar panels on school roofs", "Des panneaux solaires sur les toits des écoles", True, "en-fr"),
    ("Solar panels on school roofs", "Des bancs le long de la rivière", False, "en-fr"),
]
REPORT_KEYS = {"pairs", "threshold", "precision", "recall", "f1", "by_lang", "retrieval_recall_at_5"}


def write_pairs(path: Path, pairs: list[tuple[str, str, bool, str]] = PAIRS) -> Path:
    lines = [
        json.dumps({"a": a, "b": b, "duplicate": d, "lang": lang}, ensure_ascii=False)
        for a, b, d, lang in pairs
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def env_for(settings: Settings, **overrides: str | None) -> dict[str, str | None]:
    """The command's environment: this test's data and database; the model settings at their defaults."""
    return {
        "IDEAFORGE_DATA_DIR": str(settings.data_dir),
        "IDEAFORGE_DATABASE_URL": settings.resolved_database_url,
        "IDEAFORGE_SECRET_KEY": SECRET,
        "IDEAFORGE_EMBEDDING_MODEL": None,
        "IDEAFORGE_DEDUP_SCORER": None,
    } | overrides


def invoke(args: list[str], env: dict[str, str | None], embedder: Embedder | None = None) -> Result:
    obj: dict[str, Any] | None = {"embedder": embedder} if embedder is not None else None
    return CliRunner().invoke(main, args, env=env, obj=obj)


async def ainvoke(args: list[str], env: dict[str, str | None], embedder: Embedder | None = None) -> Result:
    """From an async test: the command runs its own event loop, so it runs in a thread."""
    return await asyncio.to_thread(invoke, args, env, embedder)


def assert_clean_failure(result: Result, code: int) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(env="test", data_dir=tmp_path, secret_key=SECRET)


# --- eval dedup ----------------------------------------------------------------------------------


def test_eval_dedup_prints_one_json_report_with_the_shipped_threshold(tmp_path, settings, embedder):
    result = invoke(
        ["eval", "dedup", str(write_pairs(tmp_path / "pairs.jsonl"))], env_for(settings), embedder
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # one JSON object and nothing else
    assert set(report) >= REPORT_KEYS
    assert report["pairs"] == len(PAIRS)
    shipped = DuplicateScorer.load(default_scorer_path(DEFAULT_MODEL))
    assert report["threshold"] == round(shipped.threshold, 4)
    for key in ("precision", "recall", "f1", "retrieval_recall_at_5"):
        assert 0 <= report[key] <= 1, key
    assert set(report["by_lang"]) == {"en", "fr", "en-fr"}
    assert sum(part["pairs"] for part in report["by_lang"].values()) == len(PAIRS)
    assert report["f1"] > 0.5, "the shipped scorer recognises plain paraphrases"


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ('{"a": "one", "b": "two", "duplicate": true}\n{"a": "broken"\n', "pairs.jsonl:2"),
        ('{"a": "one", "duplicate": true}\n', "pairs.jsonl:1"),
        ("", "no pairs"),
        (None, "does not exist"),
    ],
)
def test_eval_dedup_explains_a_missing_or_malformed_file(tmp_path, settings, content, says):
    path = tmp_path / "pairs.jsonl"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    result = invoke(["eval", "dedup", str(path)], env_for(settings))  # fails before any model is loaded
    assert_clean_failure(result, 2)
    assert says in result.stderr
    assert result.stdout == ""


# --- dedup fit -----------------------------------------------------------------------------------
# A dozen pairs is enough to fit; sklearn warns that the smallest language group is below five per fold.
small_folds = pytest.mark.filterwarnings("ignore:The least populated class:UserWarning")


@small_folds
def test_dedup_fit_writes_a_scorer_the_app_can_load(tmp_path, settings, embedder):
    from ideas.similarity import load_scorer

    out = tmp_path / "fitted" / "scorer.json"
    args = ["dedup", "fit", str(write_pairs(tmp_path / "pairs.jsonl")), "--out", str(out)]
    result = invoke(args, env_for(settings), embedder)
    assert result.exit_code == 0, result.output
    assert "cross-validated" in result.stdout
    assert f"IDEAFORGE_DEDUP_SCORER={out}" in result.stdout
    scorer = load_scorer(DEFAULT_MODEL, out)
    assert scorer.cross_validation["all"]["pairs"] == len(PAIRS)

    again = invoke(args, env_for(settings), embedder)
    assert_clean_failure(again, 2)
    assert "--force" in again.stderr, "an existing scorer is replaced only when asked"
    assert invoke([*args, "--force"], env_for(settings), embedder).exit_code == 0


@small_folds
def test_dedup_fit_writes_where_the_setting_points_by_default(tmp_path, settings, embedder):
    target = tmp_path / "mine.json"
    pairs = str(write_pairs(tmp_path / "pairs.jsonl"))
    result = invoke(["dedup", "fit", pairs], env_for(settings, IDEAFORGE_DEDUP_SCORER=str(target)), embedder)
    assert result.exit_code == 0, result.output
    assert DuplicateScorer.load(target).model == DEFAULT_MODEL


def test_dedup_fit_refuses_pairs_of_one_kind(tmp_path, settings):
    pairs = write_pairs(tmp_path / "pairs.jsonl", [p for p in PAIRS if p[2]])
    result = invoke(["dedup", "fit", str(pairs), "--out", str(tmp_path / "s.json")], env_for(settings))
    assert_clean_failure(result, 2)
    assert "non-duplicates" in result.stderr
    assert not (tmp_path / "s.json").exists()


# --- index rebuild and status --------------------------------------------------------------------


async def test_index_rebuild_embeds_what_is_missing_and_rewrites_the_snapshot(
    client, app, db, clock, backend: Backend, embedder
):
    settings = backend.settings
    challenge = await open_challenge(db, clock.now())
    auth = await token_for(client, db, "author@example.org")
    planted = []
    for title in ("Share unsold bread with food banks", "Protected bike lanes on the ring road"):
        idea = {"title": title, "body": f"{title}, for everyone.", "language": "en"}
        response = await client.post(f"/api/v1/challenges/{challenge.id}/ideas", headers=auth, json=idea)
        assert response.status_code == 201, response.text
        planted.append(response.json()["id"])
    await app.state.jobs.drain()
    # An idea written without the app (so with no vector yet), and no snapshot on disk.
    author = await make_user(db, "other@example.org")
    quiet = (await make_idea(db, challenge, author, clock.now(), title="Solar panels on school roofs")).id
    snapshot = settings.data_dir / "index" / slug(DEFAULT_MODEL)
    shutil.rmtree(snapshot, ignore_errors=True)

    before = await ainvoke(["index", "status"], env_for(settings))
    assert before.exit_code == 0, before.output
    assert "ideas needing embedding: 1" in before.stdout
    assert "(missing)" in before.stdout

    rebuilt = await ainvoke(["index", "rebuild"], env_for(settings), embedder)
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "embedded 1 ideas" in rebuilt.stdout
    assert "holds 3 vectors" in rebuilt.stdout

    loaded = IndexSet.load(snapshot, DEFAULT_MODEL, embedder.dimension)
    part = loaded.get(f"challenge:{challenge.id}")
    assert part is not None
    assert all(i in part for i in [*planted, quiet])

    after = await ainvoke(["index", "status"], env_for(settings))
    assert after.exit_code == 0, after.output
    assert "ideas needing embedding: 0" in after.stdout
    assert "stored vectors: 3" in after.stdout
    assert f"snapshot: {snapshot} (3 vectors)" in after.stdout


async def test_a_model_that_cannot_be_loaded_is_a_one_line_error_naming_the_setting(sqlite_backend, tmp_path):
    settings = sqlite_backend.settings
    shipped = DuplicateScorer.load(default_scorer_path(DEFAULT_MODEL))
    scorer = tmp_path / "for-bad-model.json"
    replace(shipped, model=BAD_MODEL).save(scorer)  # a scorer exists, so the model itself is loaded and fails
    pairs = str(write_pairs(tmp_path / "pairs.jsonl"))
    no_scorer = env_for(settings, IDEAFORGE_EMBEDDING_MODEL=BAD_MODEL)
    for env in (no_scorer, no_scorer | {"IDEAFORGE_DEDUP_SCORER": str(scorer)}):
        for args in (["index", "rebuild"], ["eval", "dedup", pairs]):
            result = await ainvoke(args, env)
            assert_clean_failure(result, 1)
            assert "IDEAFORGE_EMBEDDING_MODEL" in result.stderr, result.stderr
            assert BAD_MODEL in result.stderr
            assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        if env["IDEAFORGE_DEDUP_SCORER"] is not None:
            assert "cannot be loaded" in result.stderr, "the model itself was tried"

"""The ``ideaforge`` command."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click

from ideaforge.settings import get_settings

T = TypeVar("T")


@click.group()
def main() -> None:
    """IdeaForge: open-innovation platform."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--workers", default=1, show_default=True, type=int, help="Processes (needs IDEAFORGE_REDIS_URL)."
)
def serve(host: str, port: int, workers: int) -> None:
    """Serve the web app (migrates the database first)."""
    import uvicorn

    from ideaforge.db.migrate import upgrade

    settings = get_settings()
    if workers > 1 and not settings.redis_url:
        raise click.UsageError(
            "several workers share sessions and limits through Redis: set IDEAFORGE_REDIS_URL"
        )
    _prepare_metrics_dir(settings.data_dir, workers)
    upgrade(settings.resolved_database_url)
    uvicorn.run(
        "ideaforge.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,  # our own access log leaves tokens in URLs out
        proxy_headers=True,
        log_config=None,
    )


def _prepare_metrics_dir(data_dir: Path, workers: int) -> None:
    """Several workers write their metrics to files that /metrics sums (see ideaforge.metrics): use the
    PROMETHEUS_MULTIPROC_DIR given, else ``DATA_DIR/prometheus``, emptied of the previous run's values. Set
    here, before any worker starts and imports prometheus_client, which picks its storage at import."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not given and workers <= 1:
        return  # one process: its own registry
    path = Path(given) if given else data_dir / "prometheus"
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)


@main.command()
def worker() -> None:
    """Run background jobs (email, embedding) from the Redis queue until SIGTERM or Ctrl-C; the job under
    way finishes first. The web processes queue them there with IDEAFORGE_JOBS=redis."""
    import signal

    from ideaforge.app import run_worker
    from ideaforge.logs import configure_logging

    settings = get_settings()
    if not settings.redis_url:
        raise click.UsageError("the worker takes its jobs from Redis: set IDEAFORGE_REDIS_URL")
    configure_logging(json=settings.is_production)

    async def work() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await run_worker(settings, stop, _given_embedder())

    _run(work())


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: the latest)."""
    from ideaforge.db.migrate import upgrade

    upgrade(get_settings().resolved_database_url, revision)
    click.echo("database is up to date")


@db.command("check")
def db_check() -> None:
    """Fail when the models and the migrations disagree."""
    from ideaforge.db.migrate import drift

    differences = asyncio.run(drift(get_settings().resolved_database_url))
    if differences:
        for difference in differences:
            click.echo(f"drift: {difference}", err=True)
        sys.exit(1)
    click.echo("models and migrations agree")


@db.command("revision")
@click.option("-m", "--message", required=True)
def db_revision(message: str) -> None:
    """Write a new migration from the models' changes (review it before committing)."""
    from ideaforge.db.migrate import revision

    revision(get_settings().resolved_database_url, message)


BACKUP_FILE = click.Path(dir_okay=False, path_type=Path)


def _print_counts(counts: dict[str, int]) -> None:
    for table, count in counts.items():
        click.echo(f"{table}: {count}")


@main.command("export")
@click.argument("file", type=BACKUP_FILE)
def export_command(file: Path) -> None:
    """Write the whole instance (every table, vectors included) to FILE, a gzip'd JSON lines backup. It holds
    password hashes: keep it like a database dump."""
    from ideaforge.backup import BackupRefused, export_database

    try:
        counts = asyncio.run(export_database(get_settings().resolved_database_url, file))
    except BackupRefused as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    _print_counts(counts)
    click.echo(f"exported {sum(counts.values())} rows to {file}")


@main.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path))
def import_command(file: Path) -> None:
    """Load a backup made by `ideaforge export` into an empty database, all or nothing. A new database is
    first migrated to the file's revision; run `ideaforge db upgrade` afterwards when the code is newer."""
    from alembic.util import CommandError

    from ideaforge.backup import BackupRefused, import_database, is_new, read_header
    from ideaforge.db.migrate import upgrade

    url = get_settings().resolved_database_url
    try:
        revision = read_header(file).get("alembic_revision")
        if is_new(url):
            try:
                upgrade(url, str(revision))
            except CommandError:
                raise BackupRefused(
                    f"the file is at migration {revision}, which this version does not know"
                ) from None
        counts = asyncio.run(import_database(url, file))
    except BackupRefused as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    _print_counts(counts)
    click.echo(f"imported {sum(counts.values())} rows from {file}")


@main.group()
def demo() -> None:
    """Demo data."""


@demo.command("load")
def demo_load() -> None:
    """Load the demo organisations and users (safe to run again)."""
    from ideaforge.app import load_demo
    from ideaforge.db.migrate import upgrade

    settings = get_settings()
    upgrade(settings.resolved_database_url)
    created = asyncio.run(load_demo(settings))
    click.echo("demo data loaded" if created else "demo data already present")


@main.group()
def user() -> None:
    """User accounts."""


@user.command("create")
@click.option("--email", required=True)
@click.option("--name", "display_name", required=True)
@click.option("--password-stdin", is_flag=True, required=True, help="Read the password from standard input.")
@click.option("--superuser", is_flag=True)
def user_create(email: str, display_name: str, password_stdin: bool, superuser: bool) -> None:
    """Create a user; the password comes from standard input so it stays out of shell history."""
    from ideaforge.accounts.services import register_user
    from ideaforge.db import Database
    from ideaforge.errors import ValidationFailed

    password = sys.stdin.readline().rstrip("\n")
    settings = get_settings()

    async def create() -> int:
        database = Database(settings.resolved_database_url)
        try:
            async with database.sessionmaker() as session:
                created = await register_user(
                    session, email=email, display_name=display_name, password=password, is_superuser=superuser
                )
                return created.id
        finally:
            await database.dispose()

    try:
        user_id = asyncio.run(create())
    except ValidationFailed as exc:
        for field, message in exc.errors.items():
            click.echo(f"{field}: {message}", err=True)
        sys.exit(2)
    click.echo(f"created user {user_id} <{email.strip().lower()}>")


# --- similarity: the vector index and the duplicate scorer ----------------------------------------------
# The work is in ideaforge.app (the composition root). A caller that already holds a loaded model can pass
# it as ``main(obj={"embedder": model})`` (the tests do, to load it once); otherwise the settings name it.


def _given_embedder() -> Any:
    obj = click.get_current_context().obj
    return obj.get("embedder") if isinstance(obj, dict) else None


def _run(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work``; a setting that names an unusable model or scorer is one line and exit code 1."""
    from ideaforge.app import SettingUnusable

    try:
        return asyncio.run(work)
    except SettingUnusable as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


def _pairs(path: Path) -> Any:
    from ideaforge.app import read_pair_file

    try:
        return read_pair_file(path)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="FILE") from None


PAIRS_FILE = click.Path(exists=True, dir_okay=False, readable=True, path_type=Path)


@main.group()
def index() -> None:
    """The vector index of ideas (a cache of the vectors stored in the database)."""


@index.command("rebuild")
def index_rebuild() -> None:
    """Embed every idea that has no vector from IDEAFORGE_EMBEDDING_MODEL, then rebuild and save the
    snapshot. Run it after changing the model; restart the app afterwards to load the new snapshot."""
    from ideaforge.app import RebuildReport, ideas_needing_embedding, rebuild_vector_index, similarity_service

    settings = get_settings()

    async def rebuild() -> RebuildReport:
        async with similarity_service(settings, _given_embedder()) as similarity:
            total = await ideas_needing_embedding(similarity)
            with click.progressbar(length=total, label="embedding ideas", show_pos=True) as bar:
                return await rebuild_vector_index(similarity, bar.update)

    report = _run(rebuild())
    click.echo(
        f"embedded {report.embedded} ideas with {report.model}; the index holds {report.indexed} vectors, "
        f"saved in {report.snapshot}"
    )


@index.command("status")
def index_status() -> None:
    """The model, what the database and the snapshot hold, and how many ideas wait for a vector."""
    from ideaforge.app import index_status as status_of

    status = asyncio.run(status_of(get_settings()))
    snapshot = "missing" if status.snapshot_vectors is None else f"{status.snapshot_vectors} vectors"
    click.echo(f"model: {status.model}")
    click.echo(f"stored vectors: {status.stored_vectors}")
    click.echo(f"ideas: {status.ideas}")
    click.echo(f"ideas needing embedding: {status.needing_embedding}")
    click.echo(f"snapshot: {status.snapshot} ({snapshot})")


@main.group("eval")
def evaluation() -> None:
    """Measure the app's models on labelled data."""


@evaluation.command("dedup")
@click.argument("file", type=PAIRS_FILE)
def eval_dedup(file: Path) -> None:
    """Judge the app's duplicate scorer, model and threshold on FILE (JSON lines {"a", "b", "duplicate",
    "lang"}); prints one JSON object. Nothing is fitted on FILE."""
    from ideaforge.app import evaluate_dedup

    pairs = _pairs(file)
    report = _run(evaluate_dedup(get_settings(), pairs, _given_embedder()))
    click.echo(json.dumps(report, ensure_ascii=False))


@evaluation.command("match")
@click.argument("file", type=PAIRS_FILE)
def eval_match(file: Path) -> None:
    """Judge expert and partner matching on FILE (JSON {"experts", "ideas", "partners", "challenges"}, the
    format of match_dev.json) with the app's model; prints one JSON object. Nothing is fitted on FILE."""
    from ideaforge.app import evaluate_match_file, read_match_file

    try:
        data = read_match_file(file)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="FILE") from None
    report = _run(evaluate_match_file(get_settings(), data, _given_embedder()))
    click.echo(json.dumps(report, ensure_ascii=False))


@main.group()
def dedup() -> None:
    """The duplicate scorer."""


@dedup.command("fit")
@click.argument("file", type=PAIRS_FILE)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the scorer (default: IDEAFORGE_DEDUP_SCORER, else the model's shipped path).",
)
@click.option("--force", is_flag=True, help="Replace an existing scorer file.")
def dedup_fit(file: Path, out: Path | None, force: bool) -> None:
    """Fit a duplicate scorer for IDEAFORGE_EMBEDDING_MODEL on the labelled pairs in FILE, write it, and
    print its cross-validated figures."""
    from ideaforge.app import fit_dedup_scorer, scorer_destination

    settings = get_settings()
    pairs = _pairs(file)
    destination = scorer_destination(settings, out)
    if destination.exists() and not force:
        raise click.UsageError(f"{destination} exists (the scorer the app loads?): add --force to replace it")
    try:
        scorer = _run(fit_dedup_scorer(settings, pairs, destination, _given_embedder()))
    except ValueError as exc:
        raise click.BadParameter(f"cannot fit on these pairs: {exc}", param_hint="FILE") from None
    click.echo(f"fitted on {len(pairs)} pairs for {scorer.model}; threshold {scorer.threshold:.4f}")
    click.echo(f"written to {destination}")
    if destination != scorer_destination(settings):
        click.echo(f"the app loads it with IDEAFORGE_DEDUP_SCORER={destination}")
    click.echo("cross-validated: " + json.dumps(scorer.cross_validation, ensure_ascii=False))

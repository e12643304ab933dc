"""The ``ideaforge`` command."""

from __future__ import annotations

import asyncio
import sys

import click

from ideaforge.settings import get_settings


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

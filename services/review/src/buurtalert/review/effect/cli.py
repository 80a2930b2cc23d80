"""``buurtalert effect``: the figures per district of a municipality."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from buurtalert.review.effect.figures import as_csv, as_table
from buurtalert.review.effect.stores import effect_report
from buurtalert.shared.models import utcnow
from buurtalert.shared.mongo import Database
from buurtalert.shared.settings import Settings
from buurtalert.shared.topics import REVIEW

#: The period when --since is not given.
DEFAULT_WEEKS = 12


@click.group()
def effect() -> None:
    """Effect per district: figures for the municipality and the police."""


@effect.command("report")
@click.option("--municipality", required=True, help="The municipality's id (its directory's)")
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help=f"First day of the period (default: {DEFAULT_WEEKS} weeks ago)",
)
@click.option("--format", "form", type=click.Choice(["table", "json", "csv"]), default="table")
def report(municipality: str, since: datetime | None, form: str) -> None:
    """The figures per district (counts from 1 to 4 shown as "< 5")."""
    start = since.replace(tzinfo=UTC) if since else utcnow() - timedelta(weeks=DEFAULT_WEEKS)

    async def run() -> dict[str, Any] | None:
        db = Database.connect(Settings(), REVIEW)
        try:
            return await effect_report(db, municipality, start)
        finally:
            await db.close()

    shown = asyncio.run(run())
    if shown is None:
        raise click.ClickException(f"no directory for municipality {municipality!r}")
    if form == "json":
        click.echo(json.dumps(shown, indent=2, ensure_ascii=False))
    elif form == "csv":
        click.echo(as_csv(shown), nl=False)
    else:
        click.echo(as_table(shown), nl=False)

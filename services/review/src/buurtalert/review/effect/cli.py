"""``buurtalert effect``: the figures per district of a municipality."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from buurtalert.directory.store import fetch_directory
from buurtalert.review.effect.figures import as_csv, as_table
from buurtalert.review.effect.rules import read_crime_csv
from buurtalert.review.effect.stores import RegisteredCrime, effect_report
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


@effect.group()
def crime() -> None:
    """Registered crime per district and month, imported from the police's figures."""


@crime.command("import")
@click.option("--municipality", required=True, help="The municipality's id (its directory's)")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def crime_import(municipality: str, file: str) -> None:
    """Import FILE (CSV: district,month,count; month YYYY-MM). Nothing is imported when a
    line is wrong: each wrong line is named with the reason (exit 2). Importing a month
    again replaces its count."""
    text = Path(file).read_text(encoding="utf-8-sig")

    async def run() -> tuple[int, list[str]] | None:
        db = Database.connect(Settings(), REVIEW)
        try:
            directory = await fetch_directory(db, municipality)
            if directory is None:
                return None
            found, problems = read_crime_csv(text, directory)
            if problems:
                return 0, problems
            store = RegisteredCrime(db)
            for district, month, count in found:
                await store.put(municipality, district, month, count)
            return len(found), []
        finally:
            await db.close()

    outcome = asyncio.run(run())
    if outcome is None:
        raise click.ClickException(f"no directory for municipality {municipality!r}")
    imported, problems = outcome
    if problems:
        for problem in problems:
            click.echo(problem, err=True)
        raise SystemExit(2)
    click.echo(f"{imported} months imported for {municipality}")

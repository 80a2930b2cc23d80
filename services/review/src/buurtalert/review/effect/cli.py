"""``buurtalert effect``: the figures per district of a municipality, and its polls."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import ValidationError

from buurtalert.directory.store import fetch_directory
from buurtalert.review.effect import polling
from buurtalert.review.effect.figures import as_csv, as_table
from buurtalert.review.effect.polls import Invitee, Poll, PollDraft, as_csv_rows, results
from buurtalert.review.effect.polls import as_table as poll_table
from buurtalert.review.effect.rules import read_crime_csv
from buurtalert.review.effect.stores import Polls, RegisteredCrime, effect_report
from buurtalert.shared.kafka import create_broker, topic_publisher
from buurtalert.shared.models import Delivery, utcnow
from buurtalert.shared.mongo import Database
from buurtalert.shared.settings import MunicipalityConfig, Settings, load_municipality_config
from buurtalert.shared.topics import REVIEW, REVIEW_NOTICES

T = TypeVar("T")

#: The period when --since is not given.
DEFAULT_WEEKS = 12


def with_review_db(work: Callable[[Database], Awaitable[T]], settings: Settings | None = None) -> T:
    """Run ``work`` with the review service's database, closed afterwards."""

    async def run() -> T:
        db = Database.connect(settings or Settings(), REVIEW)
        try:
            return await work(db)
        finally:
            await db.close()

    return asyncio.run(run())


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

    async def run(db: Database) -> dict[str, Any] | None:
        return await effect_report(db, municipality, start)

    shown = with_review_db(run)
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

    async def run(db: Database) -> tuple[int, list[str]] | None:
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

    outcome = with_review_db(run)
    if outcome is None:
        raise click.ClickException(f"no directory for municipality {municipality!r}")
    imported, problems = outcome
    if problems:
        for problem in problems:
            click.echo(problem, err=True)
        raise SystemExit(2)
    click.echo(f"{imported} months imported for {municipality}")


@effect.group()
def poll() -> None:
    """Short polls to the members of a district who consented, answered anonymously."""


async def _send(
    settings: Settings,
    config: MunicipalityConfig,
    sent: Poll,
    invited: list[Invitee],
    name: str,
) -> polling.Sent:
    broker = create_broker(settings, REVIEW)
    notices = topic_publisher(broker, settings, REVIEW_NOTICES)
    await broker.connect()
    try:

        async def notify(notice: Delivery) -> None:
            await notices.publish(notice, key=notice.destination.key.encode())

        return await polling.send(sent, invited, config, name, notify)
    finally:
        await broker.stop()


@poll.command("create")
@click.option("--municipality", required=True, help="The municipality's id (its directory's)")
@click.option("--district", "districts", multiple=True, required=True, help="A district asked (repeatable)")
@click.option("--question", required=True, help="The question, in the poll's language (up to 300 characters)")
@click.option(
    "--options", required=True, help="The answers, separated by commas (2 to 10, each up to 20 characters)"
)
@click.option("--language", default="nl", type=click.Choice(["nl", "en", "fr", "de"]), show_default=True)
@click.option("--days", default=14, show_default=True, type=click.IntRange(1, 90), help="Days it stays open")
@click.option("--by", "created_by", default="", help="Who asks it (kept with the poll)")
def poll_create(
    municipality: str,
    districts: tuple[str, ...],
    question: str,
    options: str,
    language: str,
    days: int,
    created_by: str,
) -> None:
    """Create a poll and send it to the members of the districts who consented to
    one-to-one messages: WhatsApp with answer buttons, email with a link to a form.
    Prints the poll's id."""
    settings = Settings()
    config = load_municipality_config(settings.municipality_file)
    if config.id != municipality:
        raise click.ClickException(f"the municipality file is {config.id!r}'s, not {municipality!r}'s")
    try:
        draft = PollDraft(
            municipality=municipality,
            districts=districts,
            question=question,
            options=tuple(o for o in options.split(",")),
            language=language,
            open_days=days,
        )
    except ValidationError as exc:
        raise click.ClickException(
            "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        ) from None

    async def run(db: Database) -> polling.Sent:
        try:
            directory = await fetch_directory(db, municipality)
            if directory is None:
                raise click.ClickException(f"no directory for municipality {municipality!r}")
            planned, invited = polling.plan(draft, directory, config, utcnow(), created_by)
            await Polls(db).add(planned)
            return await _send(settings, config, planned, invited, directory.municipality.name)
        except polling.PollProblem as exc:
            raise click.ClickException(str(exc)) from None

    sent = with_review_db(run, settings)
    channels = ", ".join(f"{n} by {c}" for c, n in sorted(sent.by_channel.items()))
    click.echo(f"{sent.poll.id}: {sent.invitations} members invited ({channels})", err=True)
    click.echo(sent.poll.id)


@poll.command("send")
@click.argument("poll_id")
def poll_send(poll_id: str) -> None:
    """Send a poll's invitations again (after a failure: no member gets one twice),
    including members of its districts who consented since."""
    settings = Settings()
    config = load_municipality_config(settings.municipality_file)

    async def run(db: Database) -> polling.Sent:
        try:
            store = Polls(db)
            found = await store.get(poll_id)
            if found is None or found.municipality != config.id:
                raise click.ClickException(f"no poll {poll_id!r} of {config.id!r}")
            directory = await fetch_directory(db, found.municipality)
            if directory is None:
                raise click.ClickException(f"no directory for municipality {found.municipality!r}")
            draft = PollDraft(
                municipality=found.municipality,
                districts=found.districts,
                question=found.question,
                options=found.options,
                language=found.language,
            )
            _, invited = polling.plan(draft, directory, config, found.created_at, found.created_by)
            await store.invited(found.id, invited)
            return await _send(settings, config, found, invited, directory.municipality.name)
        except polling.PollProblem as exc:
            raise click.ClickException(str(exc)) from None

    sent = with_review_db(run, settings)
    click.echo(f"{sent.poll.id}: {sent.invitations} invitations sent (each member once)")


@poll.command("results")
@click.argument("poll_id")
@click.option("--format", "form", type=click.Choice(["table", "json", "csv"]), default="table")
def poll_results(poll_id: str, form: str) -> None:
    """A poll's answers per district: anonymous counts, 1 to 4 shown as "< 5"."""

    async def run(db: Database) -> dict[str, Any] | None:
        store = Polls(db)
        found = await store.get(poll_id)
        return None if found is None else results(found, await store.answers(poll_id))

    shown = with_review_db(run)
    if shown is None:
        raise click.ClickException(f"no poll {poll_id!r}")
    if form == "json":
        click.echo(json.dumps(shown, indent=2, ensure_ascii=False))
    elif form == "csv":
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(as_csv_rows(shown))
        click.echo(out.getvalue(), nl=False)
    else:
        click.echo(poll_table(shown), nl=False)


@poll.command("list")
@click.option("--municipality", required=True, help="The municipality's id (its directory's)")
def poll_list(municipality: str) -> None:
    """The municipality's latest polls: id, districts, until when open, the question."""

    async def run(db: Database) -> list[Poll]:
        return await Polls(db).of(municipality)

    for found in with_review_db(run):
        click.echo(f"{found.id}  {','.join(found.districts)}  {found.closes_at:%Y-%m-%d}  {found.question}")

"""``buurtalert directory`` (validate, load) and ``buurtalert route`` (a dry run)."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import click
from pydantic import ValidationError

from buurtalert.routing.rules import Context, UnknownGroup
from buurtalert.routing.rules import route as route_message
from buurtalert.shared.directory import Directory, load_directory, store_directory
from buurtalert.shared.models import Decision, InboundMessage, ModeratedMessage, ModerationResult
from buurtalert.shared.mongo import mongo_client
from buurtalert.shared.settings import Settings, load_municipality
from buurtalert.shared.yamlfile import ConfigFileError


def _load(path: Path) -> Directory:
    try:
        return load_directory(path)
    except ConfigFileError as exc:
        for problem in exc.problems:
            click.echo(f"{path}: {problem}", err=True)
        sys.exit(2)


@click.group()
def directory() -> None:
    """The directory: districts, groups, members, agreements (one YAML file per municipality)."""


@directory.command()
@click.argument("path", type=click.Path(path_type=Path))
def validate(path: Path) -> None:
    """Check PATH; exit 0 if valid, 2 with each error and its line if not."""
    found = _load(path)
    click.echo(
        f"{path}: valid: {len(found.districts)} districts, {len(found.groups)} groups, "
        f"{len(found.members)} members of {found.municipality.id}"
    )


@directory.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--municipality-file",
    type=click.Path(path_type=Path),
    default=None,
    help="The municipality file with the pseudonymisation key (default: the configured one).",
)
def load(path: Path, municipality_file: Path | None) -> None:
    """Validate PATH, pseudonymise its members and store it in the database."""
    found = _load(path)
    settings = Settings()
    try:
        municipality = load_municipality(municipality_file or settings.municipality_file)
    except ConfigFileError as exc:
        click.echo(f"invalid municipality file: {exc}", err=True)
        sys.exit(2)
    if municipality.id != found.municipality.id:
        click.echo(
            f"{path} is the directory of {found.municipality.id}, but the municipality file is "
            f"{municipality.id}'s: pass --municipality-file",
            err=True,
        )
        sys.exit(2)

    async def store() -> int:
        client = mongo_client(settings)
        try:
            return await store_directory(
                client[settings.database], found.pseudonymised(municipality.pseudonym_key)
            )
        finally:
            await client.close()

    click.echo(f"loaded {asyncio.run(store())} groups of {found.municipality.id}")


@click.command()
@click.option("--directory", "directory_path", type=click.Path(path_type=Path), required=True)
@click.option(
    "--partner",
    "partner_paths",
    type=click.Path(path_type=Path),
    multiple=True,
    help="A partner municipality's directory (cross-border); repeatable.",
)
@click.option(
    "--now",
    type=click.DateTime(formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S"]),
    default=None,
    help="The moment to route at (quiet hours); default now, UTC if no offset is given.",
)
@click.argument("message_path", type=click.Path(path_type=Path))
def route(
    directory_path: Path, partner_paths: tuple[Path, ...], now: datetime | None, message_path: Path
) -> None:
    """Dry run: print the deliveries MESSAGE (an InboundMessage as JSON) would get, with the rules."""
    found = _load(directory_path)
    partners = {p.municipality.id: p for p in map(_load, partner_paths)}
    try:
        message = InboundMessage.model_validate_json(message_path.read_bytes())
    except (OSError, ValidationError) as exc:
        click.echo(f"{message_path}: not a valid message: {exc}".splitlines()[0], err=True)
        sys.exit(2)
    approved = ModeratedMessage(
        message=message,
        moderation=ModerationResult(
            message_id=message.id, decision=Decision.FORWARD, policy_version="dry-run"
        ),
    )
    if now is None:
        context = Context(directory=found, partners=partners)
    else:
        context = Context(
            directory=found, partners=partners, now=now if now.tzinfo else now.replace(tzinfo=UTC)
        )
    try:
        result = route_message(approved, context)
    except UnknownGroup as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    click.echo(
        json.dumps(
            {
                "message_id": message.id,
                "rules": list(result.rules),
                "deliveries": [
                    d.model_dump(
                        mode="json", include={"id", "destination", "rules", "notice", "deliver_after"}
                    )
                    for d in result.deliveries
                ],
            },
            indent=2,
            ensure_ascii=False,
        )
    )

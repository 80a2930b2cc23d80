"""``buurtalert route``: a dry run of the routing rules."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import click
from pydantic import ValidationError

from buurtalert.directory.cli import load_or_exit
from buurtalert.routing.rules import Context, UnknownGroup
from buurtalert.routing.rules import route as route_message
from buurtalert.shared.models import Decision, InboundMessage, ModeratedMessage, ModerationResult


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
    found = load_or_exit(directory_path)
    partners = {p.municipality.id: p for p in map(load_or_exit, partner_paths)}
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

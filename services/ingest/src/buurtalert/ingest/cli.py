"""``buurtalert ingest parse``: the service's parsers on a file, for operators and
partners checking what a payload becomes. Nothing is published or stored."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from buurtalert.directory.model import load_directory
from buurtalert.ingest.parsers import email, facebook, whatsapp
from buurtalert.ingest.parsers.common import Batch, InvalidInput, Resolver, raw_id
from buurtalert.shared.settings import Settings, load_municipality_config
from buurtalert.shared.yamlfile import ConfigFileError


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


@click.group()
def ingest() -> None:
    """Ingest's tools."""


@ingest.command()
@click.argument("channel", type=click.Choice(["whatsapp", "facebook", "email"]))
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--municipality-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The municipality file (default: BUURTALERT_MUNICIPALITY_FILE).",
)
@click.option(
    "--directory",
    "directory_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="A directory file to resolve senders and groups (default: none; every sender is unknown).",
)
def parse(channel: str, file: Path, municipality_file: Path | None, directory_file: Path | None) -> None:
    """Print what FILE (a webhook body, or an email) becomes, as JSON: messages, status
    events, reactions, membership requests and what was ignored. Exits with status 2
    and a one-line error when the input is invalid. Signatures are not checked."""
    try:
        municipality = load_municipality_config(municipality_file or Settings().municipality_file)
        directory = (
            load_directory(directory_file).pseudonymised(municipality.pseudonym_key)
            if directory_file
            else None
        )
        body = file.read_bytes()
    except ConfigFileError as exc:
        _fail(str(exc))
        return
    except OSError as exc:
        _fail(f"{file}: {exc.strerror}")
        return
    resolver = Resolver(municipality, directory)
    batch: Batch
    try:
        if channel == "whatsapp":
            batch = whatsapp.parse(
                body, resolver=resolver, config=municipality.ingest.whatsapp, raw_ref=raw_id(body)
            )
        elif channel == "facebook":
            batch = facebook.parse(
                body, resolver=resolver, config=municipality.ingest.facebook, raw_ref=raw_id(body)
            )
        else:
            batch, _ = email.parse(
                body, resolver=resolver, config=municipality.ingest.email, raw_ref=raw_id(body)
            )
    except InvalidInput as exc:
        _fail(f"invalid {channel} input: {exc}")
        return
    click.echo(json.dumps(batch.as_json(), indent=2, ensure_ascii=False))

"""``buurtalert directory``: validate a directory file, load it into the database."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from buurtalert.directory.model import Directory, load_directory
from buurtalert.directory.store import store_directory
from buurtalert.shared.collections import DIRECTORY
from buurtalert.shared.mongo import Database
from buurtalert.shared.settings import Settings, load_municipality_config
from buurtalert.shared.yamlfile import ConfigFileError


def load_or_exit(path: Path) -> Directory:
    """The directory file, or exit 2 with each problem and its line."""
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
    found = load_or_exit(path)
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
    found = load_or_exit(path)
    settings = Settings()
    try:
        municipality = load_municipality_config(municipality_file or settings.municipality_file)
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
        db = Database.connect(settings, DIRECTORY)
        try:
            return await store_directory(db, found.pseudonymised(municipality.pseudonym_key))
        finally:
            await db.close()

    click.echo(f"loaded {asyncio.run(store())} groups of {found.municipality.id}")

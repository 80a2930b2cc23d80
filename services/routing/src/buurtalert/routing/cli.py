"""``buurtalert directory``: validate and load a municipality's directory file."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from buurtalert.routing.directory import Directory, load_directory, store_directory
from buurtalert.shared.mongo import mongo_client
from buurtalert.shared.settings import Settings
from buurtalert.shared.yamlfile import ConfigFileError


@click.group()
def directory() -> None:
    """The directory of groups (MongoDB), from one YAML file per municipality."""


def _load(path: Path) -> Directory:
    try:
        return load_directory(path)
    except ConfigFileError as exc:
        for problem in exc.problems:
            click.echo(f"{path}: {problem}", err=True)
        sys.exit(2)


@directory.command()
@click.argument("path", type=click.Path(path_type=Path))
def validate(path: Path) -> None:
    """Check PATH; exit 0 if valid, 2 with the errors if not."""
    found = _load(path)
    click.echo(f"{path}: {len(found.groups)} groups of {found.municipality}: valid")


@directory.command()
@click.argument("path", type=click.Path(path_type=Path))
def load(path: Path) -> None:
    """Validate PATH and store its groups in the database."""
    found = _load(path)
    settings = Settings()

    async def store() -> int:
        client = mongo_client(settings)
        try:
            return await store_directory(client[settings.database], found)
        finally:
            await client.close()

    click.echo(f"loaded {asyncio.run(store())} groups of {found.municipality}")

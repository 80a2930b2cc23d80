"""``buurtalert channels``: the channel adapters, and a development mailbox."""

from __future__ import annotations

from importlib.metadata import entry_points

import click

from buurtalert.shared.channels import ENTRY_POINT_GROUP


@click.group()
def channels() -> None:
    """Channel adapters."""


@channels.command("list")
def list_adapters() -> None:
    """List the registered channel adapters and their capabilities."""
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            cls = ep.load()
        except Exception as exc:  # report, never crash, on a broken plugin
            click.echo(f"{ep.name:12} failed to load: {exc}")
            continue
        click.echo(
            f"{ep.name:12} max_text_length={cls.max_text_length} media={cls.supports_media}  ({ep.value})"
        )

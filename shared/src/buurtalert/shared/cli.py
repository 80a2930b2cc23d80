"""The ``buurtalert`` command. Services add their own subcommands through the
entry-point group ``buurtalert.commands`` (a click command or group each)."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from importlib.metadata import entry_points
from pathlib import Path

import click

from buurtalert.shared.logging import configure_logging, get_logger
from buurtalert.shared.service import asyncapi_document, service_factories
from buurtalert.shared.settings import Settings, load_municipality_config
from buurtalert.shared.topics import TOPICS, deployment_topics

COMMANDS_GROUP = "buurtalert.commands"
log = get_logger(__name__)


class _PluginGroup(click.Group):
    """A click group whose subcommands also come from entry points; a command
    that fails to load is reported and left out, never breaking the others."""

    def _plugins(self) -> dict[str, click.Command]:
        found: dict[str, click.Command] = {}
        for ep in entry_points(group=COMMANDS_GROUP):
            try:
                found[ep.name] = ep.load()
            except Exception as exc:  # a broken plugin must not break the tool
                click.echo(f"buurtalert: command {ep.name!r} failed to load: {exc}", err=True)
        return found

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._plugins()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, cmd_name) or self._plugins().get(cmd_name)


@click.group(cls=_PluginGroup)
def main() -> None:
    """buurtalert: routes neighbourhood-watch messages between groups, municipality and police."""


def _add_operator_commands() -> None:
    from buurtalert.shared.ops import COMMANDS

    for command in COMMANDS:
        main.add_command(command)


_add_operator_commands()


@main.command()
@click.argument("service")
def run(service: str) -> None:
    """Run SERVICE (ingest, moderation, routing, channels) until interrupted."""
    factories = service_factories()
    if service not in factories:
        raise click.BadParameter(f"unknown service; choose from {', '.join(sorted(factories))}")
    settings = Settings()
    configure_logging(json=settings.environment == "production", level=settings.log_level)
    app = factories[service](settings)
    log.info(
        "service_starting",
        service=service,
        kafka=settings.kafka_bootstrap,
        topic_prefix=settings.topic_prefix,
    )
    asyncio.run(
        app.run(
            log_level=logging.INFO,
            # log_config=None: uvicorn (ingest) logs through our handler instead of its own.
            run_extra_options={"host": settings.http_host, "port": settings.http_port, "log_config": None},
        )
    )


@main.group()
def topics() -> None:
    """The declared topics."""


@topics.command("list")
def topics_list() -> None:
    """Print every topic with its key, owner and consumers."""
    for t in TOPICS:
        consumers = ", ".join(t.consumers) or "-"
        click.echo(f"{t.name:28} owner={t.owner:11} consumers={consumers:20} key={t.key}")


@topics.command("create")
def topics_create() -> None:
    """Create every declared topic (with the configured prefix), and the delivery topics
    of the partner adapters the municipality file configures; existing ones are kept."""
    from buurtalert.shared.admin import create_topics

    settings = Settings()
    wanted = deployment_topics(load_municipality_config(settings.municipality_file).channels)
    created = asyncio.run(create_topics(settings, wanted))
    click.echo(f"{len(created)} topics created, {len(wanted) - len(created)} already there")


@main.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("docs/asyncapi"), show_default=True)
@click.option("--check", is_flag=True, help="Exit 1 if a committed document differs.")
def asyncapi(out: Path, check: bool) -> None:
    """Write (or --check) each service's AsyncAPI document, generated from its code."""
    settings = Settings(topic_prefix="")
    stale = []
    for name, factory in sorted(service_factories().items()):
        text = json.dumps(asyncapi_document(name, factory(settings)), indent=2, sort_keys=True) + "\n"
        path = out / f"{name}.json"
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
        else:
            out.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            click.echo(f"wrote {path}")
    if stale:
        click.echo(f"out of date: {', '.join(stale)}; run `make asyncapi`", err=True)
        sys.exit(1)

"""The ``buurtalert`` command. Services add their own subcommands through the
entry-point group ``buurtalert.commands`` (a click command or group each)."""

from __future__ import annotations

import asyncio
import fnmatch
import json
import logging
import secrets
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import click
import uvloop

from buurtalert.shared.logging import configure_logging, get_logger
from buurtalert.shared.service import asyncapi_document, service_factories
from buurtalert.shared.settings import MIN_SECRET_LENGTH, Settings, load_municipality_config, token_sha256
from buurtalert.shared.topics import (
    BUILTIN_CHANNELS,
    TOPICS,
    Topic,
    delivery_topic,
    deployment_topics,
    retry_topic,
)

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
    # uvloop: the event loop of uvicorn's standard install, faster than asyncio's own for
    # every service's Kafka, database and HTTP traffic (docs/benchmarks.md)
    uvloop.run(
        app.run(
            # the configured level (set on the root logger above) for FastStream's and uvicorn's
            # own loggers too, which would otherwise log at INFO (uvicorn: every request)
            log_level=logging.getLogger().level,
            # log_config=None: uvicorn (ingest) logs through our handler instead of its own.
            # timeout_graceful_shutdown: open event streams (the review console) do not hold up a stop.
            run_extra_options={
                "host": settings.http_host,
                "port": settings.http_port,
                "log_config": None,
                "timeout_graceful_shutdown": 5,
            },
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


#: Topics whose records carry personal data: message texts, authors' pseudonyms with what they
#: wrote, destination addresses, the raw input ingest refused, a failed record with its payload,
#: or a pointer to a resident's photo (``ingest.media``: the provider's media id, fetchable with
#: the token). They get the short retention (``kafka.retention.personalDataMs``, 24 h by default);
#: any other topic the default one. Today every declared topic matches.
PERSONAL_DATA_TOPICS = (
    "messages.*",
    "moderation.*",
    "deliveries.*",
    "ingest.quarantine",
    "ingest.media",
    "ingest.outcome-commands",
    "incidents.outcomes",
    "*.retry",
    "*.deadletter",
)
#: Where ``buurtalert topics manifest --format strimzi`` writes by default (from the repository root).
STRIMZI_MANIFEST = Path("deploy/helm/buurtalert/templates/topics.yaml")


def carries_personal_data(topic: Topic) -> bool:
    return any(fnmatch.fnmatchcase(topic.name, pattern) for pattern in PERSONAL_DATA_TOPICS)


def partition_bounds(topics: tuple[Topic, ...]) -> dict[str, Topic]:
    """Per consumer, the topic with the fewest partitions among those it reads, its own retry
    topic aside (one partition on purpose: one replica takes the retries, the others idle there).
    A consumer group gives each partition to one member, so a replica beyond that count would get
    no partition of that topic."""
    bounds: dict[str, Topic] = {}
    for topic in topics:
        for consumer in topic.consumers:
            if topic.name == retry_topic(consumer).name:
                continue
            held = bounds.get(consumer)
            if held is None or (topic.partitions, topic.name) < (held.partitions, held.name):
                bounds[consumer] = topic
    return dict(sorted(bounds.items()))


def _strimzi_topic(topic: Topic, name: str, ctx: str) -> str:
    """One KafkaTopic of the chart; ``name`` is a template expression giving the topic's name."""
    retention = "personalData" if carries_personal_data(topic) else "default"
    values = ".Values" if ctx == "." else f"{ctx}.Values"
    return f"""---
apiVersion: {{{{ {values}.kafka.strimzi.apiVersion }}}}
kind: KafkaTopic
metadata:
  name: {{{{ include "buurtalert.topicResourceName" (list {ctx} {name}) }}}}
  {{{{- with {values}.kafka.strimzi.namespace }}}}
  namespace: {{{{ . }}}}
  {{{{- end }}}}
  labels:
    {{{{- include "buurtalert.topicLabels" {ctx} | nindent 4 }}}}
  annotations:
    buurtalert.nl/owner: {topic.owner}
    buurtalert.nl/consumers: "{", ".join(topic.consumers) or "-"}"
    buurtalert.nl/retention-class: {retention}
spec:
  topicName: {{{{ include "buurtalert.topicName" (list {ctx} {name}) }}}}
  partitions: {topic.partitions}
  replicas: {{{{ {values}.kafka.replicationFactor }}}}
  config:
    {{{{- include "buurtalert.topicConfig" (list {ctx} {name} "{retention}") | nindent 4 }}}}
"""


def _listing(label: str, names: list[str]) -> str:
    return textwrap.fill(
        ", ".join(names) or "-",
        width=100,
        initial_indent=f"  {label}: ",
        subsequent_indent="    ",
        break_on_hyphens=False,
    )


def strimzi_manifest() -> str:
    """The chart's ``templates/topics.yaml``: a Strimzi ``KafkaTopic`` for every declared topic,
    one per partner adapter the values name (``kafka.partnerChannels``), and the partition bound
    of each consumer, which the Deployments check their replicas against."""
    topics = deployment_topics(())
    partner = delivery_topic("partner")
    personal = [t.name for t in topics if carries_personal_data(t)]
    other = [t.name for t in topics if not carries_personal_data(t)]
    bounds = "\n".join(
        f"{consumer}: {{topic: {t.name}, partitions: {t.partitions}}}"
        for consumer, t in partition_bounds(topics).items()
    )
    header = f"""{{{{- /*
GENERATED by `buurtalert topics manifest --format strimzi` (make helm-topics) from the topic
declarations in shared/src/buurtalert/shared/topics.py (deployment_topics). Do not edit by hand:
tests/unit/test_deploy.py fails when this file is out of date.

Retention (retention.ms): topics that carry personal data get kafka.retention.personalDataMs
(24 h by default), the others kafka.retention.defaultMs; kafka.retentionOverrides sets one topic's.
{_listing("personal data", personal)}
{_listing("other", other)}
Partner adapters' delivery topics (kafka.partnerChannels) carry personal data too.
*/ -}}}}
{{{{- /* Per consumer: the topic it reads with the fewest partitions (its retry topic aside);
the Deployments fail rendering when a service has more replicas than that. */ -}}}}
{{{{- define "buurtalert.partitionBounds" }}}}
{bounds}
{{{{- end }}}}
{{{{- /* The built-in channel adapters (their delivery topics are above): no partner may take a name. */ -}}}}
{{{{- define "buurtalert.builtinChannels" }}}}
[{", ".join(BUILTIN_CHANNELS)}]
{{{{- end }}}}
{{{{- if .Values.kafka.strimzi.enabled }}}}
"""
    body = "".join(_strimzi_topic(t, f'"{t.name}"', ".") for t in topics)
    partners = (
        "{{- range $channel := .Values.kafka.partnerChannels }}\n"
        '{{- include "buurtalert.checkPartnerChannel" (list $ $channel) }}\n'
        + _strimzi_topic(partner, '(printf "deliveries.%s" $channel)', "$")
        + "{{- end }}\n"
    )
    return header + body + partners + "{{- end }}\n"


@topics.command("manifest")
@click.option("--format", "fmt", type=click.Choice(["strimzi"]), default="strimzi", show_default=True)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=STRIMZI_MANIFEST,
    show_default=True,
    help="The file to write ('-': standard output).",
)
@click.option("--check", is_flag=True, help="Exit 1 if the file differs from what would be written.")
def topics_manifest(fmt: str, out: Path, check: bool) -> None:
    """Write the Helm chart's Strimzi KafkaTopic resources, generated from the declared topics."""
    text = strimzi_manifest()
    if str(out) == "-":
        click.echo(text, nl=False)
    elif check:
        if not out.exists() or out.read_text() != text:
            click.echo(f"out of date: {out}; run `make helm-topics`", err=True)
            sys.exit(1)
    else:
        out.write_text(text)
        click.echo(f"wrote {out}")


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


@main.group()
def token() -> None:
    """API client tokens and form access codes (the municipality file keeps their hash)."""


@token.command("new")
def token_new() -> None:
    """A new random token, and the ``token_sha256`` line for the municipality file."""
    value = secrets.token_urlsafe(32)
    click.echo(f"token:        {value}\ntoken_sha256: {token_sha256(value)}")


@token.command("hash")
def token_hash() -> None:
    """The ``token_sha256`` of a token read from standard input (one line)."""
    value = sys.stdin.readline().strip()
    if len(value) < MIN_SECRET_LENGTH:
        click.echo(f"a token needs at least {MIN_SECRET_LENGTH} characters", err=True)
        sys.exit(1)
    click.echo(token_sha256(value))

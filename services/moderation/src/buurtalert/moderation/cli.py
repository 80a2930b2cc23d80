"""``buurtalert moderate``: the service's rules on JSON Lines, for operators."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import IO

import click
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from buurtalert.moderation.policy import default_policy, load_policy
from buurtalert.moderation.rules import Scorer
from buurtalert.shared.models import Role
from buurtalert.shared.yamlfile import ConfigFileError


class _Line(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1)
    text: str
    channel: str | None = None
    municipality: str | None = None
    author_role: Role = Role.UNKNOWN
    language: str | None = None


@click.command()
@click.argument("source", type=click.File("r", encoding="utf-8"), default="-")
@click.option(
    "--policy",
    "policy_path",
    type=click.Path(path_type=Path),
    default=None,
    help="A municipality's moderation policy file (default: the country's).",
)
@click.option("--country", type=click.Choice(["NL", "BE"]), default="NL", show_default=True)
def moderate(source: IO[str], policy_path: Path | None, country: str) -> None:
    """Moderate JSON Lines from SOURCE (a file, or - for standard input).

    Each line needs "id" and "text" (optional "channel", "municipality",
    "author_role", "language"); one JSON result per line is written to standard
    output. The default policies cover Dutch, Flemish, French, German and English.
    Malformed lines are reported on standard error and the command exits with
    status 2 after the valid lines are processed."""
    try:
        policy = load_policy(policy_path) if policy_path else default_policy(country)
    except ConfigFileError as exc:
        click.echo(f"invalid policy: {exc}", err=True)
        sys.exit(2)
    scorer = Scorer(policy)
    bad = 0
    for number, line in enumerate(source, start=1):
        if not line.strip():
            continue
        try:
            item = _Line.model_validate_json(line)
        except ValidationError as exc:
            bad += 1
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "line"
            click.echo(f"line {number}: {where}: {first['msg']}", err=True)
            continue
        result = scorer.decide(item.id, item.text, author_role=item.author_role, language=item.language)
        click.echo(
            json.dumps(
                {
                    "id": item.id,
                    "decision": result.decision.value,
                    "reasons": [r.code for r in result.reasons],
                    "scores": {r.code: r.score for r in result.reasons},
                    "explanation": result.explanation,
                },
                ensure_ascii=False,
            )
        )
    if bad:
        sys.exit(2)

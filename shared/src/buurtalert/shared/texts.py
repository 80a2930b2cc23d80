"""The lines buurtalert itself writes to people (explanations to authors, the SAAR
reminder, the cross-border notice), per language, from ``texts.yaml``. Only our own
lines are translated: a message's free text is never machine-translated."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

import yaml

LANGUAGES = ("nl", "fr", "de", "en")
FALLBACK = ("en", "nl")


@cache
def texts() -> dict[str, dict[str, str]]:
    loaded: dict[str, dict[str, str]] = yaml.safe_load(
        (files("buurtalert.shared") / "texts.yaml").read_text(encoding="utf-8")
    )
    return loaded


def line(key: str, language: str | None, **fields: str) -> str:
    """The line ``key`` in ``language`` (English, then Dutch, where it has none), with
    ``fields`` filled in."""
    versions = texts()[key]
    for wanted in (language, *FALLBACK):
        if wanted and wanted in versions:
            return versions[wanted].format(**fields)
    raise KeyError(f"no text for {key!r}")

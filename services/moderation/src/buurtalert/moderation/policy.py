"""The moderation policy of a municipality: what each reason does, the country's
police numbers, and extra words; validated, versioned, recorded in every result."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from buurtalert.shared.models import Decision
from buurtalert.shared.yamlfile import load_yaml

POLICIES = files("buurtalert.moderation") / "policies"


class StrikePolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    expire_after_days: int = Field(default=90, ge=1)
    warn_at: int = Field(default=2, ge=1)
    propose_removal_at: int = Field(default=3, ge=1)


class RulePolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Decision
    threshold: float = Field(default=0.5, ge=0, le=1)


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1)
    country: Literal["NL", "BE"]
    police_numbers: tuple[str, ...] = Field(min_length=1)
    police_call_required: bool = False
    languages: tuple[Literal["nl", "fr", "de", "en"], ...] = Field(
        default=("nl", "fr", "de", "en"),
        min_length=1,
        description="Languages this policy moderates; a message in another goes to review",
    )
    model: str | None = Field(
        default=None, description="The packaged model (models/<name>.json) beside the rules; None: rules only"
    )
    # The model's probabilities a decision needs. None (the default): the thresholds the
    # model was shipped with, chosen in training by grouped cross-validation under the
    # safety goals (``models/<name>.json``); a policy may set its own.
    forward_at: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="The model's probability of forward needed (its likeliest class), with evidence",
    )
    forward_unmarked_at: float | None = Field(
        default=None, ge=0, le=1, description="The same where the rules found no evidence of an alert"
    )
    reject_at: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="The model's probability of reject needed to reject as noise the rules also found"
        " (a reaction, off-topic, a joke, a chain message); never with evidence of an alert",
    )
    reject_unmarked_at: float | None = Field(
        default=None, ge=0, le=1, description="The same where the rules found no noise: the model alone"
    )
    reject_alerted_at: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="The same for a joke, a chain message or a reaction that carries alert words"
        " (never when it says the police were called)",
    )
    rules: dict[str, RulePolicy]
    extra_words: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    strikes: StrikePolicy = Field(default_factory=StrikePolicy)


def load_policy(path: Path) -> Policy:
    """A policy file; raises ConfigFileError naming the line of each problem."""
    return load_yaml(path, Policy)


@cache
def default_policy(country: str = "NL") -> Policy:
    text = (POLICIES / f"{country.lower()}.yaml").read_text(encoding="utf-8")
    return Policy.model_validate(yaml.safe_load(text))


WORD_LANGUAGES = ("nl", "fr", "de", "en")


@cache
def language_word_lists(language: str) -> dict[str, object]:
    """The word lists of one language (``policies/words/<language>.yaml``)."""
    lists: dict[str, object] = yaml.safe_load(
        (POLICIES / "words" / f"{language}.yaml").read_text(encoding="utf-8")
    )
    return lists


def merge_word_lists(parts: Iterable[Mapping[str, object]]) -> dict[str, object]:
    """Word lists merged per list (and per group of a grouped list)."""
    merged: dict[str, object] = {}
    for lists in parts:
        for key, words in lists.items():
            if isinstance(words, dict):
                groups = merged.setdefault(key, {})
                assert isinstance(groups, dict)
                for group, more in words.items():
                    groups[group] = [*groups.get(group, []), *more]
            else:
                previous = merged.setdefault(key, [])
                assert isinstance(previous, list)
                assert isinstance(words, list)
                previous.extend(words)
    return merged


@cache
def word_lists() -> dict[str, object]:
    """The word lists of every language, merged per list: what a message is matched
    against when its language is unknown (detection fails on short texts)."""
    return merge_word_lists(language_word_lists(language) for language in WORD_LANGUAGES)

"""The moderation policy of a municipality: what each reason does, the country's
police numbers, and extra words; validated, versioned, recorded in every result."""

from __future__ import annotations

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


@cache
def word_lists() -> dict[str, object]:
    loaded: dict[str, object] = yaml.safe_load((POLICIES / "words.yaml").read_text(encoding="utf-8"))
    return loaded

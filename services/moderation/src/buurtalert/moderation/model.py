"""The learned part of moderation: a linear model over word and character n-grams and
the rules' findings, free of I/O and of any machine-learning library at run time.

It is trained in the repository from the labelled corpus (``make train``, see
:mod:`buurtalert.moderation.training`) and shipped as a JSON file of weights next to
the policies: reproducible, reviewable, versioned with the policy that names it, and
loaded once at start-up. Scoring a message is a few hundred dictionary lookups.
"""

from __future__ import annotations

import heapq
import itertools
import json
import math
import re
import sys
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

from pydantic import BaseModel, ConfigDict, Field

#: Longest text moderation looks at: longer texts are cut before any expensive step.
MAX_TEXT_CHARS = 16_384
CLASSES = ("forward", "review", "reject")
MODELS = files("buurtalert.moderation") / "models"

_WORD = re.compile(r"[^\W\d_]+|\d+|[\U0001F300-\U0001FAFF\u2600-\u27BF]", re.UNICODE)
_DIGITS = re.compile(r"\d")
#: Every format character (Unicode category Cf), to be deleted with ``str.translate``.
_FORMAT_CHARACTERS: dict[int, None] = {
    cp: None for cp in range(sys.maxunicode + 1) if unicodedata.category(chr(cp)) == "Cf"
}


def normalise_text(text: str) -> str:
    """The text as moderation scores it and as it is forwarded: at most
    :data:`MAX_TEXT_CHARS` characters, Unicode NFKC (full-width digits and letters
    become plain ones) and no format characters (zero-width spaces and joiners, soft
    hyphens, direction marks), which hide names and numbers from the rules."""
    text = text[:MAX_TEXT_CHARS]
    if text.isascii():
        return text  # plain ASCII is already in NFKC and has no format characters
    return unicodedata.normalize("NFKC", text).translate(_FORMAT_CHARACTERS)


_TIME = re.compile(r"\b\d{1,2}[:.h]\d{2}\b|\b\d{1,2}\s?(?:am|pm|uur|u|h|uhr|heures?)\b", re.IGNORECASE)
_EMOJI = re.compile(r"[\U0001F300-\U0001FAFF\u2600-\u27BF]")
_URL = re.compile(r"https?://|www\.", re.IGNORECASE)


#: Letters of a word's prefix feature (``p:``).
PREFIX = 5


def fold_accents(text: str) -> str:
    """``text`` without diacritics (é -> e, ü -> u), for matching the way people type."""
    if text.isascii():
        return text
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def shape(text: str) -> set[str]:
    """Language-free traits of a message: a clock time, digits, a question, repeated
    exclamation marks, shouting, emoji, a link."""
    found = set()
    if _TIME.search(text):
        found.add("s:time")
    if _DIGITS.search(text):
        found.add("s:digit")
    stripped = text.strip()
    if "?" in stripped:
        found.add("s:question")
    if stripped.endswith("?"):
        found.add("s:ends_question")
    if "!!" in stripped:
        found.add("s:exclaim")
    sample = stripped[:500]
    upper, lower = sum(map(str.isupper, sample)), sum(map(str.islower, sample))
    if upper + lower >= 10 and upper > 0.6 * (upper + lower):
        found.add("s:caps")
    if _EMOJI.search(stripped):
        found.add("s:emoji")
    if _URL.search(stripped):
        found.add("s:url")
    return found


def features(text: str, findings: Iterable[str], role: str, language: str | None) -> set[str]:
    """What the model sees of a message: its words and word pairs, the rules' findings
    (the part that carries across languages: the word lists of every language map onto
    the same findings), language-free traits (:func:`shape`), the author's role, the
    language and a length class. Digits are folded to 0, so no number is learned by
    heart; accents are dropped (people type "enleve", "ca" as often as "enlevé", "ça"),
    and each longer word also counts by its first :data:`PREFIX` letters, a crude stem
    that joins inflections and compounds ("cambriolage", "cambrioleurs"; "einbrecher",
    "einbruch"; "inbraak", "inbreker"). Character n-grams were dropped: on data written
    by others they learned the language and the source more than the message (grouped
    cross-validation 0.72 with them, 0.80 without)."""
    lowered = _DIGITS.sub("0", fold_accents(text.lower()))
    words = [m.group() for m in _WORD.finditer(lowered)]
    found = {f"w:{w}" for w in words}
    found.update(f"b:{a} {b}" for a, b in itertools.pairwise(words))
    found.update(f"p:{w[:PREFIX]}" for w in words if len(w) > PREFIX)
    found.update(f"r:{code}" for code in findings)
    found.update(shape(text))
    found.add(f"role:{role}")
    found.add(f"lang:{language or 'unknown'}")
    found.add(f"len:{min(len(words) // 8, 6)}")
    return found


@dataclass(frozen=True)
class Verdict:
    """The model's probabilities per class and the features that pushed hardest
    towards its most likely class."""

    probabilities: Mapping[str, float]
    strongest: tuple[str, ...]


class Thresholds(BaseModel):
    """The model's probabilities a decision needs. Training chooses them by grouped
    cross-validation inside the training data (:func:`buurtalert.moderation.training.fit`)
    and ships them with the weights, since they belong to this model's calibration; a
    policy may still set its own. The defaults are those used before they were chosen."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    forward_at: float = Field(default=0.5, ge=0, le=1)
    forward_unmarked_at: float = Field(default=0.6, ge=0, le=1)
    reject_at: float = Field(default=0.7, ge=0, le=1)
    reject_unmarked_at: float = Field(default=0.8, ge=0, le=1)
    reject_alerted_at: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Reject noise the rules found (a joke, a chain message, a reaction) although it"
        " carries alert words, from this probability; None: never",
    )


class ModelFile(BaseModel):
    """The JSON file a model is shipped as."""

    model_config = ConfigDict(extra="forbid")

    version: str
    classes: tuple[str, str, str]
    intercepts: tuple[float, float, float]
    temperature: float = Field(gt=0)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    weights: dict[str, tuple[float, float, float]]


class LinearModel:
    """A linear model with one score per decision (trained one-vs-rest: alert or not,
    noise or not, for a person or not): one weight per feature and class, an intercept
    per class, a temperature that calibrates the softmax of the scores, and the
    thresholds training chose for it."""

    def __init__(
        self,
        version: str,
        weights: Mapping[str, tuple[float, float, float]],
        intercepts: tuple[float, float, float],
        temperature: float = 1.0,
        thresholds: Thresholds | None = None,
    ) -> None:
        self.version = version
        self.weights = weights
        self.intercepts = intercepts
        self.temperature = temperature
        self.thresholds = thresholds or Thresholds()

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> LinearModel:
        stored = ModelFile.model_validate(data)
        if stored.classes != CLASSES:
            raise ValueError(f"a model for classes {CLASSES} was expected")
        return cls(stored.version, stored.weights, stored.intercepts, stored.temperature, stored.thresholds)

    def to_json(self) -> dict[str, object]:
        return {
            "version": self.version,
            "classes": list(CLASSES),
            "intercepts": [round(x, 6) for x in self.intercepts],
            "temperature": round(self.temperature, 6),
            "thresholds": self.thresholds.model_dump(),
            "weights": {k: [round(x, 5) for x in v] for k, v in sorted(self.weights.items())},
        }

    def logits(self, present: Iterable[str]) -> tuple[float, float, float]:
        """The model's scores per class before calibration."""
        forward, review, reject = self.intercepts
        for feature in present:
            w = self.weights.get(feature)
            if w is not None:
                forward += w[0]
                review += w[1]
                reject += w[2]
        return forward, review, reject

    def verdict(self, present: Iterable[str], strongest: int = 5) -> Verdict:
        forward, review, reject = self.intercepts
        matched: list[tuple[tuple[float, float, float], str]] = []
        weights = self.weights
        for feature in present:
            w = weights.get(feature)
            if w is not None:
                forward += w[0]
                review += w[1]
                reject += w[2]
                matched.append((w, feature))
        scores = (forward, review, reject)
        probabilities = calibrated(scores, self.temperature)
        top = max(scores)
        best = scores.index(top)
        # The weight for the best class ranks the features that pushed towards it.
        pushed = heapq.nlargest(strongest, ((w[best], f) for w, f in matched))
        return Verdict(probabilities, tuple(f for weight, f in pushed if weight > 0))


def calibrated(scores: tuple[float, float, float], temperature: float) -> dict[str, float]:
    """Probabilities per class from the model's scores, softened by ``temperature``."""
    top = max(scores)
    exps = [math.exp((s - top) / temperature) for s in scores]
    total = sum(exps)
    return {c: e / total for c, e in zip(CLASSES, exps, strict=True)}


@cache
def packaged_model(name: str) -> LinearModel:
    """A model shipped with the package (``models/<name>.json``), loaded once."""
    return LinearModel.from_json(json.loads((MODELS / f"{name}.json").read_text(encoding="utf-8")))

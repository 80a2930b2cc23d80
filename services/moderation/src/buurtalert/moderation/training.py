"""Training moderation's model from the labelled corpus (``make train``), and the data
it is trained and judged on. Needs scikit-learn, a development dependency: the
service itself only reads the trained weights (:mod:`buurtalert.moderation.model`).

The corpus (``services/moderation/corpus/messages.jsonl``) holds real messages quoted
by public sources and messages written for it, each with its source ``group`` (a
site, or a batch of written items). A part of it is held back, chosen by source:
every item of a source whose group hashes into the held-back tenth stays out of
training and out of cross-validation, so no site is on both sides.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from buurtalert.moderation.language import language_of
from buurtalert.moderation.model import CLASSES, LinearModel, Thresholds, calibrated, features, normalise_text
from buurtalert.moderation.policy import default_policy
from buurtalert.moderation.rules import Scorer, Signals, cascade, findings
from buurtalert.shared.models import Decision, Reason, Role, Span

CORPUS = Path(__file__).parents[3] / "corpus" / "messages.jsonl"
MODEL_NAME = "moderation-2026.11"
#: Feature kinds weighted up in training (the value a present feature has), so that the
#: regularisation leans on what carries across languages (the rules' findings, the
#: author's role, the length) rather than on words of one language.
SCALES = {"r": 2.5, "role": 2.5, "len": 2.5}
HELD_BACK = 3  # tenths of the quoted sources
#: The thresholds training chooses between, each listed from the most cautious. Neither
#: forwarding nor rejecting is ever made easier than the hand-set values were (forward 0.5,
#: 0.6; reject 0.7, 0.8): an unsafe message forwarded and an alert rejected are the costly
#: errors. Lower reject thresholds, chosen by cross-validation inside the corpus (0.5 and
#: 0.65), rejected a genuine alert in the held-back part and one in the unseen set.
THRESHOLD_GRID: dict[str, tuple[float | None, ...]] = {
    "forward_at": (0.6, 0.5),
    "forward_unmarked_at": (0.7, 0.6),
    "reject_at": (0.9, 0.8, 0.7),
    "reject_unmarked_at": (0.9, 0.85, 0.8),
    "reject_alerted_at": (None, 0.9),
}
#: A genuine alert left out must stay unrejected even were its probability of reject this
#: much higher: a margin for messages unlike any in the corpus.
SAFETY_MARGIN = 0.1
#: At most this share of the messages that must not be forwarded may be forwarded (the goal).
UNSAFE_FORWARDED = 0.01


@dataclass(frozen=True)
class Item:
    id: str
    text: str
    language: str
    country: str
    role: Role
    expected: str
    reasons: tuple[str, ...]
    kind: str
    source: str
    group: str

    @property
    def held_back(self) -> bool:
        return held_back(self.group)


def held_back(group: str) -> bool:
    """Whether a source's items are kept out of training: quoted sources whose name
    hashes into the held-back tenths (written batches are all used for training)."""
    if group.startswith("written"):
        return False
    return int(hashlib.sha256(group.encode()).hexdigest(), 16) % 10 < HELD_BACK


def load_corpus(path: Path = CORPUS) -> list[Item]:
    items = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        raw: dict[str, Any] = json.loads(line)
        items.append(
            Item(
                id=raw["id"],
                text=raw["text"],
                language=raw["language"],
                country=raw["country"],
                role=Role(raw.get("author_role", "unknown")),
                expected=raw["expected"],
                reasons=tuple(raw.get("reasons", ())),
                kind=raw["kind"],
                source=raw["source"],
                group=raw["group"],
            )
        )
    return items


def policy_country(item: Item) -> str:
    """Belgian items under the Belgian policy (101 first), all others under the Dutch one."""
    return "BE" if item.country == "BE" else "NL"


@cache
def rules_only(country: str) -> Scorer:
    """The country's default policy without its model (compiled once)."""
    return Scorer(default_policy(country).model_copy(update={"model": None}))


def _assessed(item: Item) -> tuple[Scorer, str, str | None, list[Reason], dict[str, list[Span]]]:
    """An item read as at run time: normalised, its language read from the text (the
    service is given none), its rules' findings."""
    scorer = rules_only(policy_country(item))
    text = normalise_text(item.text)
    language = language_of(text)
    reasons, hits = scorer.assess(text, author_role=item.role, language=language)
    return scorer, text, language, reasons, hits


def feature_set(item: Item) -> set[str]:
    """The model's features of an item: the same as at run time, rule findings included."""
    _, text, language, reasons, hits = _assessed(item)
    return features(text, findings(reasons, hits), item.role.value, language)


def item_signals(item: Item) -> Signals:
    """What the decision needs of the rules' findings on an item, as at run time."""
    scorer, _, _, reasons, hits = _assessed(item)
    return scorer.signals(reasons, hits, author_role=item.role)


def fit(
    feature_sets: Sequence[set[str]],
    labels: Sequence[str],
    *,
    version: str = MODEL_NAME,
    regularisation: float = 1.0,
    min_count: int = 2,
    groups: Sequence[str] | None = None,
    signals: Sequence[Signals] | None = None,
) -> LinearModel:
    """A logistic model on ``feature_sets``; with ``groups``, its temperature is fitted
    on predictions for groups left out (grouped cross-validation), and with ``signals``
    (the rules' findings on the same messages) so are its thresholds
    (:func:`choose_thresholds`)."""
    import numpy
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    counts: dict[str, int] = {}
    for present in feature_sets:
        for feature in present:
            counts[feature] = counts.get(feature, 0) + 1

    def value(feature: str) -> float:
        return SCALES.get(feature.split(":", 1)[0], 1.0)

    kept = [{f: value(f) for f in present if counts[f] >= min_count} for present in feature_sets]
    vectoriser = DictVectorizer()
    matrix = vectoriser.fit_transform(kept)
    # One logistic model per decision against the other two (one-vs-rest), each with its
    # classes balanced: "is it an alert?", "is it noise?", "does it need a person?" are
    # three questions, and the middle one (review) no longer has to be the complement of
    # the others. The three scores are then made probabilities by a softmax with a fitted
    # temperature, as before.
    classifier = OneVsRestClassifier(
        LogisticRegression(C=regularisation, class_weight="balanced", max_iter=5000)
    )
    classifier.fit(matrix, list(labels))
    order = [list(classifier.classes_).index(c) for c in CLASSES]
    coefficients = numpy.vstack([classifier.estimators_[i].coef_ for i in order])
    # A feature's value is folded into its weights: at run time a present feature adds its weights.
    weights = {
        name: (
            float(coefficients[0, i]) * value(name),
            float(coefficients[1, i]) * value(name),
            float(coefficients[2, i]) * value(name),
        )
        for i, name in enumerate(vectoriser.feature_names_)
        if max(abs(coefficients[:, i])) >= 1e-4
    }
    intercepts = tuple(float(classifier.estimators_[i].intercept_[0]) for i in order)
    model = LinearModel(version, weights, (intercepts[0], intercepts[1], intercepts[2]))
    if groups is not None:
        logits = _left_out_logits(feature_sets, labels, groups, version, regularisation, min_count)
        model.temperature = _temperature(logits, labels)
        if signals is not None:
            probabilities = [calibrated(scores, model.temperature) for scores in logits]
            model.thresholds = choose_thresholds(probabilities, labels, signals)
    return model


def _left_out_logits(
    feature_sets: Sequence[set[str]],
    labels: Sequence[str],
    groups: Sequence[str],
    version: str,
    regularisation: float,
    min_count: int,
) -> list[tuple[float, float, float]]:
    """Each message's scores from a model trained on the other groups (five folds)."""
    from sklearn.model_selection import GroupKFold

    logits: list[tuple[float, float, float]] = [(0.0, 0.0, 0.0)] * len(labels)
    for train, test in GroupKFold(n_splits=5).split(list(feature_sets), list(labels), list(groups)):
        fold = fit(
            [feature_sets[i] for i in train],
            [labels[i] for i in train],
            version=version,
            regularisation=regularisation,
            min_count=min_count,
        )
        for i in test:
            logits[i] = fold.logits(feature_sets[i])
    return logits


def _temperature(logits: Sequence[tuple[float, float, float]], labels: Sequence[str]) -> float:
    """The temperature that makes out-of-group probabilities honest (least log loss)."""

    def loss(t: float) -> float:
        total = 0.0
        for scores, label in zip(logits, labels, strict=True):
            total -= math.log(max(calibrated(scores, t)[label], 1e-300))
        return total / len(logits)

    return min((0.5 + 0.1 * k for k in range(46)), key=loss)


def choose_thresholds(
    probabilities: Sequence[Mapping[str, float]], labels: Sequence[str], signals: Sequence[Signals]
) -> Thresholds:
    """The thresholds (from :data:`THRESHOLD_GRID`) that decide the most messages right,
    judged on probabilities for messages left out of the model's training, under the
    safety goals: no genuine alert rejected, even were its probability of reject
    :data:`SAFETY_MARGIN` higher, and no more unsafe messages forwarded than
    :data:`UNSAFE_FORWARDED` of them (or than the default thresholds forward, if more).
    Among equals the most cautious wins; where none is safe, the most cautious of all."""
    rows = list(zip(probabilities, labels, signals, strict=True))
    alerts = [(p, s) for p, label, s in rows if label == "forward"]
    must_hold = sum(label != "forward" for label in labels)

    def unsafe_forwarded(t: Thresholds) -> int:
        return sum(label != "forward" and cascade(s, p, t)[0] is Decision.FORWARD for p, label, s in rows)

    allowed = max(UNSAFE_FORWARDED * must_hold, unsafe_forwarded(Thresholds()))
    best: tuple[int, Thresholds] | None = None
    names = list(THRESHOLD_GRID)
    for values in itertools.product(*THRESHOLD_GRID.values()):
        t = Thresholds.model_validate(dict(zip(names, values, strict=True)))
        cautious = t.model_copy(
            update={
                name: max(0.0, value - SAFETY_MARGIN)
                for name in ("reject_at", "reject_unmarked_at", "reject_alerted_at")
                if (value := getattr(t, name)) is not None
            }
        )
        if any(cascade(s, p, cautious)[0] is Decision.REJECT for p, s in alerts):
            continue
        if unsafe_forwarded(t) > allowed:
            continue
        right = sum(cascade(s, p, t)[0].value == label for p, label, s in rows)
        if best is None or right > best[0]:
            best = (right, t)
    if best is None:  # nothing keeps every alert out of reach: the most cautious there is
        return Thresholds.model_validate({name: values[0] for name, values in THRESHOLD_GRID.items()})
    return best[1]


def train(path: Path = CORPUS, out: Path | None = None) -> tuple[LinearModel, int]:
    """Train on every item that is not held back; write ``models/<name>.json``."""
    items = [i for i in load_corpus(path) if not i.held_back]
    model = fit(
        [feature_set(i) for i in items],
        [i.expected for i in items],
        groups=[i.group for i in items],
        signals=[item_signals(i) for i in items],
    )
    target = out or Path(__file__).parent / "models" / f"{MODEL_NAME}.json"
    target.write_text(json.dumps(model.to_json(), ensure_ascii=False, separators=(",", ":")) + "\n")
    return model, len(items)


def main() -> None:
    model, trained_on = train()
    print(
        f"trained {model.version} on {trained_on} messages: {len(model.weights)} weights, "
        f"temperature {model.temperature:.2f}, thresholds {model.thresholds.model_dump()}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()

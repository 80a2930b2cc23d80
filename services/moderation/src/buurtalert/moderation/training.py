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
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from buurtalert.moderation.model import CLASSES, LinearModel, features, normalise_text
from buurtalert.moderation.policy import default_policy
from buurtalert.moderation.rules import Scorer, findings
from buurtalert.shared.models import Role

CORPUS = Path(__file__).parents[3] / "corpus" / "messages.jsonl"
MODEL_NAME = "moderation-2026.11"
#: Feature kinds weighted up in training (the value a present feature has), so that the
#: regularisation leans on what carries across languages (the rules' findings, the
#: author's role, the length) rather than on words of one language.
SCALES = {"r": 2.5, "role": 2.5, "len": 2.5}
HELD_BACK = 3  # tenths of the quoted sources


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


def feature_set(item: Item) -> set[str]:
    """The model's features of an item: the same as at run time, rule findings included."""
    scorer = rules_only(policy_country(item))
    text = normalise_text(item.text)
    reasons, hits = scorer.assess(text, author_role=item.role, language=item.language)
    return features(text, findings(reasons, hits), item.role.value, item.language)


def fit(
    feature_sets: Sequence[set[str]],
    labels: Sequence[str],
    *,
    version: str = MODEL_NAME,
    regularisation: float = 1.0,
    min_count: int = 2,
    groups: Sequence[str] | None = None,
) -> LinearModel:
    """A logistic model on ``feature_sets``; with ``groups``, its temperature is fitted
    on predictions for groups left out (grouped cross-validation)."""
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LogisticRegression

    counts: dict[str, int] = {}
    for present in feature_sets:
        for feature in present:
            counts[feature] = counts.get(feature, 0) + 1

    def value(feature: str) -> float:
        return SCALES.get(feature.split(":", 1)[0], 1.0)

    kept = [{f: value(f) for f in present if counts[f] >= min_count} for present in feature_sets]
    vectoriser = DictVectorizer()
    matrix = vectoriser.fit_transform(kept)
    classifier = LogisticRegression(C=regularisation, class_weight="balanced", max_iter=5000)
    classifier.fit(matrix, list(labels))
    order = [list(classifier.classes_).index(c) for c in CLASSES]
    coefficients = classifier.coef_[order]
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
    intercepts = tuple(float(classifier.intercept_[i]) for i in order)
    model = LinearModel(version, weights, (intercepts[0], intercepts[1], intercepts[2]))
    if groups is not None:
        model.temperature = _temperature(feature_sets, labels, groups, version, regularisation, min_count)
    return model


def _temperature(
    feature_sets: Sequence[set[str]],
    labels: Sequence[str],
    groups: Sequence[str],
    version: str,
    regularisation: float,
    min_count: int,
) -> float:
    """The temperature that makes out-of-group probabilities honest (least log loss)."""
    from sklearn.model_selection import GroupKFold

    logits: list[tuple[list[float], str]] = []
    for train, test in GroupKFold(n_splits=5).split(list(feature_sets), list(labels), list(groups)):
        fold = fit(
            [feature_sets[i] for i in train],
            [labels[i] for i in train],
            version=version,
            regularisation=regularisation,
            min_count=min_count,
        )
        for i in test:
            scores = list(fold.intercepts)
            for feature in feature_sets[i]:
                if (w := fold.weights.get(feature)) is not None:
                    scores = [s + x for s, x in zip(scores, w, strict=True)]
            logits.append((scores, labels[i]))

    def loss(t: float) -> float:
        total = 0.0
        for scores, label in logits:
            top = max(scores)
            exps = [math.exp((s - top) / t) for s in scores]
            total -= math.log(exps[CLASSES.index(label)] / sum(exps))
        return total / len(logits)

    return min((0.5 + 0.1 * k for k in range(46)), key=loss)


def train(path: Path = CORPUS, out: Path | None = None) -> tuple[LinearModel, int]:
    """Train on every item that is not held back; write ``models/<name>.json``."""
    items = [i for i in load_corpus(path) if not i.held_back]
    model = fit(
        [feature_set(i) for i in items],
        [i.expected for i in items],
        groups=[i.group for i in items],
    )
    target = out or Path(__file__).parent / "models" / f"{MODEL_NAME}.json"
    target.write_text(json.dumps(model.to_json(), ensure_ascii=False, separators=(",", ":")) + "\n")
    return model, len(items)


def main() -> None:
    model, trained_on = train()
    print(
        f"trained {model.version} on {trained_on} messages: {len(model.weights)} weights, "
        f"temperature {model.temperature:.2f}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()

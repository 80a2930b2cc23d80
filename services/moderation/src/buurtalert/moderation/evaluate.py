"""Moderation judged on messages it was not fitted on (``make eval``).

Three measurements, all on data the model never saw:

* grouped cross-validation over the training part of the corpus: five folds by
  source (a site, or a batch of written items), each fold's model trained on the
  other four;
* the held-back part: quoted sources kept out of training altogether, judged with
  the model that ships (``models/<name>.json``);
* the unseen part (``corpus/unseen-*.jsonl``): real messages from sites the corpus
  does not use, gathered and labelled by a second labeller while the model was being
  tuned by someone else; neither training nor tuning reads it.

Each reports accuracy, precision and recall per decision, the confusion matrix, the
two safety figures (messages that should be held or rejected but were forwarded;
genuine alerts that were rejected) and the same per language, beside the rules
alone as a baseline. Exits 1 when a goal is missed: accuracy at least 0.90, at most
1% of unsafe messages forwarded, no genuine alert rejected.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from buurtalert.moderation.model import LinearModel, packaged_model
from buurtalert.moderation.policy import default_policy
from buurtalert.moderation.rules import Scorer
from buurtalert.moderation.training import (
    CORPUS,
    MODEL_NAME,
    Item,
    feature_set,
    fit,
    item_signals,
    load_corpus,
    policy_country,
    rules_only,
)
from buurtalert.shared.models import Decision

DECISIONS = [d.value for d in Decision]
GOAL_ACCURACY = 0.90
GOAL_UNSAFE_FORWARDED = 0.01
UNSEEN = CORPUS.parent / "unseen-2026-11.jsonl"


@dataclass
class Evaluation:
    name: str
    decided: list[tuple[Item, str, str]] = field(default_factory=list)  # item, decision, reasons

    def add(self, item: Item, decision: str, reasons: str) -> None:
        self.decided.append((item, decision, reasons))

    def only(self, language: str) -> Evaluation:
        return Evaluation(f"{self.name} [{language}]", [d for d in self.decided if d[0].language == language])

    def only_kind(self, kind: str) -> Evaluation:
        """The messages quoted from public sources ("quote"), or those written for the corpus."""
        return Evaluation(
            f"{self.name} [{'quoted' if kind == 'quote' else kind}]",
            [d for d in self.decided if d[0].kind == kind],
        )

    @property
    def total(self) -> int:
        return len(self.decided)

    @property
    def accuracy(self) -> float:
        return sum(i.expected == d for i, d, _ in self.decided) / self.total if self.total else 0.0

    @property
    def confusion(self) -> Counter[tuple[str, str]]:
        return Counter((i.expected, d) for i, d, _ in self.decided)

    @property
    def unsafe_forwarded(self) -> list[str]:
        return [i.id for i, d, _ in self.decided if i.expected != "forward" and d == "forward"]

    @property
    def unsafe_share(self) -> float:
        unsafe = sum(i.expected != "forward" for i, _, _ in self.decided)
        return len(self.unsafe_forwarded) / unsafe if unsafe else 0.0

    @property
    def alerts_rejected(self) -> list[str]:
        return [i.id for i, d, _ in self.decided if i.expected == "forward" and d == "reject"]

    def precision_recall(self, decision: str) -> tuple[float, float]:
        c = self.confusion
        decided = sum(c[(e, decision)] for e in DECISIONS)
        expected = sum(c[(decision, d)] for d in DECISIONS)
        hit = c[(decision, decision)]
        return (hit / decided if decided else 0.0, hit / expected if expected else 0.0)

    @property
    def goals_met(self) -> bool:
        return (
            self.accuracy >= GOAL_ACCURACY
            and self.unsafe_share <= GOAL_UNSAFE_FORWARDED
            and not self.alerts_rejected
        )

    def summary(self) -> str:
        return (
            f"{self.name}: {self.total} messages, accuracy {self.accuracy:.3f}, "
            f"unsafe forwarded {len(self.unsafe_forwarded)} ({self.unsafe_share:.1%}), "
            f"alerts rejected {len(self.alerts_rejected)}"
        )


def judge(items: Sequence[Item], scorer_for: Callable[[Item], Scorer], name: str) -> Evaluation:
    evaluation = Evaluation(name)
    for item in items:
        # No language given: the service reads it from the text, as the decision does here.
        result = scorer_for(item).decide(item.id, item.text, author_role=item.role)
        evaluation.add(item, result.decision.value, ",".join(r.code for r in result.reasons))
    return evaluation


def with_model(model: LinearModel) -> Callable[[Item], Scorer]:
    scorers = {c: Scorer(default_policy(c), model) for c in ("NL", "BE")}
    return lambda item: scorers[policy_country(item)]


def cross_validated(items: Sequence[Item], folds: int = 5) -> Evaluation:
    """Each fold's messages decided by a model trained on the other folds' sources."""
    from sklearn.model_selection import GroupKFold

    sets = [feature_set(i) for i in items]
    signals = [item_signals(i) for i in items]
    labels = [i.expected for i in items]
    groups = [i.group for i in items]
    evaluation = Evaluation("grouped cross-validation")
    for train, test in GroupKFold(n_splits=folds).split(sets, labels, groups):
        # Trained as the shipped model is, temperature and thresholds included (chosen
        # within the fold, on its own messages left out in turn: nested cross-validation).
        model = fit(
            [sets[i] for i in train],
            [labels[i] for i in train],
            version=f"{MODEL_NAME}-fold",
            groups=[groups[i] for i in train],
            signals=[signals[i] for i in train],
        )
        fold = judge([items[i] for i in test], with_model(model), "fold")
        evaluation.decided.extend(fold.decided)
    return evaluation


def report(evaluation: Evaluation, *, misses: bool = False) -> str:
    lines = [evaluation.summary(), "  decision   precision  recall"]
    for decision in DECISIONS:
        p, r = evaluation.precision_recall(decision)
        lines.append(f"  {decision:9}  {p:9.3f}  {r:6.3f}")
    lines.append("  confusion (rows expected, columns decided): " + " ".join(f"{d:>7}" for d in DECISIONS))
    for expected in DECISIONS:
        lines.append(
            f"  {expected:>43}: " + " ".join(f"{evaluation.confusion[(expected, d)]:>7}" for d in DECISIONS)
        )
    for language in ("nl", "fr", "de", "en"):
        part = evaluation.only(language)
        if part.total:
            lines.append("  " + part.summary())
    # Written items are easier than real ones: the quoted part is the figure to trust.
    for kind in ("quote", "written"):
        part = evaluation.only_kind(kind)
        if part.total and part.total != evaluation.total:
            lines.append("  " + part.summary())
    if misses:
        lines.append("  misses (id, language, expected -> decided, reasons):")
        lines += [
            f"    {i.id:10} {i.language} {i.expected:>7} -> {d:<7} {r}"
            for i, d, r in evaluation.decided
            if i.expected != d
        ]
    return "\n".join(lines)


def main() -> None:
    show_misses = "--misses" in sys.argv
    items = load_corpus()
    training = [i for i in items if not i.held_back]
    held = [i for i in items if i.held_back]
    quoted = sum(i.kind == "quote" for i in items)
    print(
        f"corpus: {len(items)} messages ({quoted} quoted from public sources); {len(training)} "
        f"for training and cross-validation, {len(held)} held back by source\n"
    )
    baseline = judge(training, lambda i: rules_only(policy_country(i)), "rules alone (cross-validation part)")
    print(report(baseline) + "\n")
    validated = cross_validated(training)
    print(report(validated, misses=show_misses) + "\n")
    shipped = packaged_model(MODEL_NAME)
    held_out = judge(held, with_model(shipped), f"held back, shipped model {shipped.version}")
    print(report(held_out, misses=show_misses) + "\n")
    goals = {
        "cross-validation": validated.goals_met,
        "held back": held_out.goals_met,
    }
    # Labelled by a second labeller from sites the corpus does not use, never read by
    # training or tuning: the nearest we have to messages the project has never seen.
    if UNSEEN.exists():
        unseen = judge(
            load_corpus(UNSEEN), with_model(shipped), f"unseen sources, shipped model {shipped.version}"
        )
        print(report(unseen, misses=show_misses) + "\n")
        goals["unseen"] = unseen.goals_met
    print(
        f"goals (accuracy >= {GOAL_ACCURACY}, unsafe forwarded <= {GOAL_UNSAFE_FORWARDED:.0%}, "
        "no alert rejected): " + ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in goals.items())
    )
    sys.exit(0 if all(goals.values()) else 1)


if __name__ == "__main__":
    main()

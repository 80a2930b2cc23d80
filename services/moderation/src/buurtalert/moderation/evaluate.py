"""Evaluate the moderation rules on a labelled corpus (``make eval``).

Prints accuracy, the confusion matrix, the two safety figures (messages that
should be held or rejected but were forwarded; genuine alerts that were
rejected) and every miss; exits 1 if a goal is not met (accuracy at least 90%,
both safety figures zero)."""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from buurtalert.moderation.policy import default_policy
from buurtalert.moderation.rules import scorer_for
from buurtalert.shared.models import Decision, Role

DECISIONS = [d.value for d in Decision]


@dataclass(frozen=True)
class Evaluation:
    total: int
    correct: int
    confusion: Counter[tuple[str, str]]
    unsafe_forwards: list[str]
    rejected_alerts: list[str]
    misses: list[tuple[str, str, str, str]]

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    @property
    def goals_met(self) -> bool:
        return self.accuracy >= 0.9 and not self.unsafe_forwards and not self.rejected_alerts


def evaluate(corpus: Path) -> Evaluation:
    confusion: Counter[tuple[str, str]] = Counter()
    unsafe, rejected_alerts, misses = [], [], []
    total = correct = 0
    for line in corpus.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        scorer = scorer_for(default_policy(item.get("country", "NL")))
        result = scorer.decide(item["id"], item["text"], author_role=Role(item.get("author_role", "unknown")))
        expected, got = item["expected"], result.decision.value
        total += 1
        correct += expected == got
        confusion[(expected, got)] += 1
        if expected != "forward" and got == "forward":
            unsafe.append(item["id"])
        if expected == "forward" and got == "reject":
            rejected_alerts.append(item["id"])
        if expected != got:
            misses.append((item["id"], expected, got, ",".join(r.code for r in result.reasons)))
    return Evaluation(total, correct, confusion, unsafe, rejected_alerts, misses)


def report(evaluation: Evaluation) -> str:
    lines = [
        f"messages: {evaluation.total}   accuracy: {evaluation.accuracy:.1%}",
        "",
        "confusion (rows: expected, columns: decided)",
        "            " + "".join(f"{d:>9}" for d in DECISIONS),
    ]
    for expected in DECISIONS:
        lines.append(
            f"  {expected:>9} " + "".join(f"{evaluation.confusion[(expected, d)]:>9}" for d in DECISIONS)
        )
    lines += [
        "",
        f"should be held or rejected but forwarded: {len(evaluation.unsafe_forwards)} "
        f"{evaluation.unsafe_forwards or ''}",
        f"genuine alerts rejected: {len(evaluation.rejected_alerts)} {evaluation.rejected_alerts or ''}",
    ]
    if evaluation.misses:
        lines += ["", "misses (id, expected, decided, reasons):"]
        lines += [f"  {m[0]}  {m[1]:>7} -> {m[2]:<7}  {m[3]}" for m in evaluation.misses]
    return "\n".join(lines)


def main() -> None:
    corpus = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("tests/moderation/corpus.jsonl")
    evaluation = evaluate(corpus)
    print(report(evaluation))
    sys.exit(0 if evaluation.goals_met else 1)


if __name__ == "__main__":
    main()

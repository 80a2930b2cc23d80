"""The moderation rules meet their goals on the labelled corpora."""

from __future__ import annotations

from pathlib import Path

import pytest

from buurtalert.moderation.evaluate import evaluate

CORPORA = Path(__file__).parents[1] / "moderation"


@pytest.mark.parametrize("corpus", ["corpus.jsonl", "holdout.jsonl"])
def test_nothing_unsafe_and_at_least_90_percent_right(corpus: str) -> None:
    """No message that should be held or rejected is forwarded, no genuine alert is
    rejected, and at least 90% of decisions match the labels."""
    result = evaluate(CORPORA / corpus)
    assert result.unsafe_forwards == []
    assert result.rejected_alerts == []
    assert result.accuracy >= 0.9, result.misses

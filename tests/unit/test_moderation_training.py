"""Moderation's training chooses the model's thresholds on messages left out, under the
safety goals (the figures ``make eval`` reports rest on this)."""

from __future__ import annotations

from buurtalert.moderation.rules import Signals
from buurtalert.moderation.training import SAFETY_MARGIN, THRESHOLD_GRID, choose_thresholds


def p(forward: float, review: float, reject: float) -> dict[str, float]:
    return {"forward": forward, "review": review, "reject": reject}


NOTHING = Signals()


def test_thresholds_reject_as_much_noise_as_the_alerts_left_out_allow() -> None:
    """Noise the model is fairly sure of is rejected by the lowest model-alone threshold
    that keeps every genuine alert out of reach, with the safety margin to spare."""
    noise = [(p(0.05, 0.1, 0.85), "reject", NOTHING)] * 10
    alert = [(p(0.3, 0.2, 0.5), "forward", NOTHING)]  # an alert the model misreads as noise
    rows = noise + alert
    chosen = choose_thresholds([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
    assert chosen.reject_unmarked_at == 0.85
    assert chosen.reject_unmarked_at - SAFETY_MARGIN >= 0.5  # the alert stays out of reach


def test_an_alert_close_to_the_noise_keeps_the_threshold_high() -> None:
    """Where a genuine alert's probability of reject is within the margin of the noise,
    training gives up that noise rather than risk the alert."""
    noise = [(p(0.05, 0.1, 0.85), "reject", NOTHING)] * 10
    alert = [(p(0.1, 0.1, 0.8), "forward", NOTHING)]
    rows = noise + alert
    chosen = choose_thresholds([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
    assert chosen.reject_unmarked_at >= 0.8 + SAFETY_MARGIN
    assert all(v is None or v >= 0.7 for v in (chosen.reject_at, chosen.reject_alerted_at))


def test_forwarding_and_rejecting_are_never_made_easier_than_by_hand() -> None:
    """The grid never goes below the hand-set thresholds: an unsafe message forwarded and
    an alert rejected are the costly errors (lower reject thresholds rejected alerts in the
    held-back part and the unseen set)."""
    assert min(v for v in THRESHOLD_GRID["forward_at"] if v is not None) >= 0.5
    assert min(v for v in THRESHOLD_GRID["forward_unmarked_at"] if v is not None) >= 0.6
    assert min(v for v in THRESHOLD_GRID["reject_at"] if v is not None) >= 0.7
    assert min(v for v in THRESHOLD_GRID["reject_unmarked_at"] if v is not None) >= 0.8
    assert min(v for v in THRESHOLD_GRID["reject_alerted_at"] if v is not None) >= 0.9

"""The small-number rule on every figure shown, and the server-rendered charts."""

from __future__ import annotations

from buurtalert.review.effect.charts import grouped_bars
from buurtalert.review.effect.figures import HEADINGS, count, median, per_thousand, share
from buurtalert.review.effect.texts import STRINGS


def test_counts_from_one_to_four_are_shown_as_under_five_and_zero_as_zero() -> None:
    assert [count(n) for n in (0, 1, 4, 5, 120)] == [0, "< 5", "< 5", 5, 120]


def test_a_share_is_hidden_when_its_part_or_its_rest_is_a_small_count() -> None:
    """With the whole shown, 3 of 40 (or 37 of 40) would give a count of 3 away."""
    assert share(3, 40) == "< 5"
    assert share(37, 40) == "< 5"
    assert share(10, 40) == 0.25
    assert share(0, 40) == 0.0 and share(40, 40) == 1.0
    assert share(0, 0) is None


def test_rates_and_medians_resting_on_a_small_count_are_hidden() -> None:
    assert per_thousand(3, 1000) == "< 5"
    assert per_thousand(5, 2000) == 2.5
    assert per_thousand(7, None) is None
    assert median([1.0, 2.0, 3.0, 4.0]) == "< 5"
    assert median([1.0, 2.0, 3.0, 4.0, 50.0]) == 3.0


def test_a_chart_draws_hidden_values_as_a_labelled_gap_never_their_number() -> None:
    svg = grouped_bars("Reports <per> week", ["2026-W45"], {"boshoven": [6.29], "leuken": ["< 5"]})
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "&lt;per&gt;" in svg  # text escaped
    assert svg.count("<rect") == 1 + 2  # one bar, two legend keys
    assert "&lt; 5" in svg


def test_every_heading_of_the_dashboard_is_in_dutch_and_english() -> None:
    for heading in HEADINGS:
        assert set(STRINGS[f"col.{heading}"]) == {"nl", "en"}, heading

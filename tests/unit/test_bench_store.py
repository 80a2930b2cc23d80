"""The store benchmark's goals and report section: growth checked on the chosen backend only,
today's shapes reported without a goal, the section replaced in place on each run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.report import goals, missed
from bench.store import BEGIN, END, goals_met, write_section


def results(growth_chosen: float) -> dict[str, Any]:
    def op(growth: float, today: bool = False) -> dict[str, Any]:
        return {"1x_ms": 1.0, "10x_ms": 1.0, "100x_ms": growth, "growth": growth, "runs": {}, "today": today}

    return {
        "chosen": "postgresql",
        "goal": 1.2,
        "base": 1000,
        "backends": {
            "sqlite": {"seeded": {}, "operations": {"by _id": op(300.0)}},
            "postgresql": {
                "seeded": {},
                "operations": {"by _id": op(growth_chosen), "$or": op(40.0, today=True)},
            },
        },
    }


def test_only_the_chosen_backends_operations_with_a_goal_are_checked() -> None:
    """SQLite's growth and today's ``$or`` carry no goal; the chosen backend's lookup does."""
    assert goals_met(results(1.1)) == [("by _id", 1.1, True)]
    assert goals_met(results(1.5)) == [("by _id", 1.5, False)]
    checked = [g for g in goals({"store": results(1.5)}) if g.benchmark.startswith("Store")]
    assert len(checked) == 1 and "by _id" in checked[0].benchmark
    assert missed(checked) == checked
    assert not missed([g for g in goals({"store": results(1.0)}) if g.benchmark.startswith("Store")])


def test_the_section_is_replaced_not_appended(tmp_path: Path) -> None:
    page = tmp_path / "benchmarks.md"
    page.write_text("# Benchmarks\n\nprose kept\n")
    write_section(results(1.1), page)
    write_section(results(1.0), page)
    text = page.read_text()
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    assert "prose kept" in text and "FerretDB v1 on postgresql (the one checked)" in text
    assert "$or *(today's shape)*" in text

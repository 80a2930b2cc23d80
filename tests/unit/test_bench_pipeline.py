"""The pipeline benchmark's goals are checked: a figure on the wrong side of its goal is
reported missed (so `make bench` exits non-zero)."""

from __future__ import annotations

import os
import time
from typing import Any

from bench.pipeline import _cpu_seconds, _machine_busy_seconds
from bench.report import cpu_lines, missed, pipeline_goals


def _figures(ratio: float, p50: float, p99: float, growth: float) -> dict[str, Any]:
    return {
        "hops": 3,
        "throughput": {"raw_chain_per_s": 1000.0, "pipeline_per_s": 1000.0 * ratio, "ratio": ratio},
        "latency": {
            "http_request": {"p50_ms": 1.0, "p99_ms": 2.0, "max_ms": 3.0},
            "at_10pct": {
                "rate_per_s": 10.0,
                "pipeline": {"p50_ms": 10.0 * p50, "p99_ms": 20.0 * p99, "max_ms": 99.0},
                "baseline": {"p50_ms": 10.0, "p99_ms": 20.0, "max_ms": 30.0},
                "ratio_p50": p50,
                "ratio_p99": p99,
            },
        },
        "cost_growth": {
            "empty_ms_per_message": 1.0,
            "x10_documents": 90,
            "x10_ms_per_message": growth,
            "x10_ratio": growth,
            "x100_documents": 900,
            "x100_ms_per_message": growth,
            "x100_ratio": growth,
        },
    }


def test_a_pipeline_within_every_goal_misses_none() -> None:
    assert missed(pipeline_goals(_figures(0.6, 1.5, 2.5, 1.1))) == []


def test_each_pipeline_goal_can_be_missed() -> None:
    """Slow throughput, slow p50, slow p99 and growing cost: each one goal missed."""
    assert [g.benchmark for g in missed(pipeline_goals(_figures(0.4, 1.5, 2.5, 1.1)))] == [
        "Whole pipeline (3 hops, four services), throughput"
    ]
    assert len(missed(pipeline_goals(_figures(0.6, 2.5, 2.5, 1.1)))) == 1
    assert len(missed(pipeline_goals(_figures(0.6, 1.5, 3.5, 1.1)))) == 1
    assert len(missed(pipeline_goals(_figures(0.6, 1.5, 2.5, 1.3)))) == 2


def test_the_report_shows_where_the_cpu_went_and_the_ceiling_it_implies() -> None:
    cpu = {"ingest": 3.0, "routing": 5.0, "rest of the machine": 2.0, "total": 10.0}
    lines = cpu_lines({"cpu_ms_per_message": cpu, "cpu_ceiling_per_s": 200.0})
    assert "| routing | 5.0 | 50% |" in lines and "| ingest | 3.0 | 30% |" in lines
    assert "| **machine in all** | **10.0** | |" in lines
    assert any("at most 200.0 messages/s" in line for line in lines)
    assert cpu_lines({}) == []


def test_cpu_time_of_a_process_is_read_as_it_grows() -> None:
    before, machine = _cpu_seconds(os.getpid()), _machine_busy_seconds()
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:  # burn 0.3 s of CPU in this process
        pass
    assert _cpu_seconds(os.getpid()) - before >= 0.25
    assert _machine_busy_seconds() - machine >= 0.25

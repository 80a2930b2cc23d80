"""Strikes in the database: counted once per rejection, expiring after the period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from buurtalert.moderation.policy import StrikePolicy
from buurtalert.moderation.rules import StrikeOutcome, outcome
from buurtalert.moderation.stores import Strikes
from buurtalert.shared.mongo import Database, mongo_client
from buurtalert.shared.settings import Settings
from buurtalert.shared.topics import MODERATION

POLICY = StrikePolicy(expire_after_days=30, warn_at=2, propose_removal_at=3)
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def test_outcome_warns_then_proposes_removal_once() -> None:
    """One strike: nothing; two: a warning; three: a removal proposal; four: no second proposal."""
    assert [outcome(n, POLICY) for n in (1, 2, 3, 4)] == [
        StrikeOutcome.NONE,
        StrikeOutcome.WARNING,
        StrikeOutcome.REMOVAL_PROPOSED,
        StrikeOutcome.NONE,
    ]


async def test_a_rejection_counts_once_and_old_strikes_expire(settings: Settings) -> None:
    """A redelivered rejection is not a second strike; a strike older than the period no longer counts."""
    client = mongo_client(settings)
    try:
        strikes = Strikes(Database(client[settings.database], MODERATION))
        assert await strikes.record("m", "p_a", "msg1", "g", T0, POLICY) == 1
        assert await strikes.record("m", "p_a", "msg1", "g", T0, POLICY) == 1
        assert await strikes.record("m", "p_a", "msg2", "g", T0 + timedelta(days=10), POLICY) == 2
        assert await strikes.record("m", "p_b", "msg3", "g", T0 + timedelta(days=10), POLICY) == 1
        assert await strikes.record("m", "p_a", "msg4", "g", T0 + timedelta(days=35), POLICY) == 2
    finally:
        await client.close()

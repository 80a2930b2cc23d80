"""Strikes in the database: counted once per rejection, expiring after the period, and
shown beside a held message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from buurtalert.moderation.handlers import Moderator
from buurtalert.moderation.policy import StrikePolicy, default_policy
from buurtalert.moderation.rules import StrikeOutcome, outcome
from buurtalert.moderation.stores import Strikes
from buurtalert.shared.models import Decision, ModeratedMessage, RemovalProposal
from buurtalert.shared.mongo import Audit, Database, mongo_client
from buurtalert.shared.settings import Settings
from buurtalert.shared.topics import MODERATION
from tests.review_support import held_message

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


async def test_a_held_message_of_a_verified_author_carries_their_live_strikes(settings: Settings) -> None:
    """What the review console shows beside a held message: its verified author's strikes
    that count when it was held; none for a sender who was not verified."""
    client = mongo_client(settings)
    try:
        db = Database(client[settings.database], MODERATION)
        strikes = Strikes(db)
        published: list[ModeratedMessage] = []

        async def publish(item: ModeratedMessage) -> None:
            published.append(item)

        async def propose(proposal: RemovalProposal) -> None:
            raise AssertionError(f"no removal is proposed for a held message: {proposal}")

        moderator = Moderator(default_policy("NL"), strikes, Audit(db), publish, propose)
        held = held_message("msg_held").message
        policy = moderator.policy.strikes
        for n in (1, 2):  # two earlier rejections of the same author, within the period
            await strikes.record(
                held.municipality,
                held.author.pseudonym,
                f"msg_old_{n}",
                held.group_id,
                held.received_at,
                policy,
            )
        await moderator(held)
        unverified = held.model_copy(
            update={"id": "msg_unverified", "author": held.author.model_copy(update={"verified": False})}
        )
        await moderator(unverified)
    finally:
        await client.close()
    assert [p.moderation.decision for p in published] == [Decision.REVIEW, Decision.REVIEW]
    assert [p.moderation.strikes for p in published] == [2, None]

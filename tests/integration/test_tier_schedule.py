"""Two channels processes sharing one business number's tier through the database
(``TierSchedules`` + ``SharedThrottle``), on the wall clock: together they never send
more than the tier in any second, and a process with nothing to send leaves the whole
tier to the other, which a share by partitions would not."""

from __future__ import annotations

import asyncio
import time

from pymongo import AsyncMongoClient

from buurtalert.channels.pacing import SharedThrottle, Throttle
from buurtalert.channels.stores import TierSchedules
from buurtalert.shared.collections import TIER_SCHEDULES
from buurtalert.shared.mongo import Database, mongo_client
from buurtalert.shared.settings import Settings
from buurtalert.shared.topics import CHANNELS
from tests.unit.test_pacing import max_in_window

RATE = 40
ACCOUNT = "whatsapp:106540352242922"


async def _send_for(throttle: SharedThrottle, seconds: float, sent: list[float]) -> None:
    """A process with deliveries to send for ``seconds``: eight sends in hand at once."""
    end = time.time() + seconds

    async def sender() -> None:
        while time.time() < end:
            await throttle.acquire()
            sent.append(time.time())

    await asyncio.gather(*(sender() for _ in range(8)))


def _rate(sent: list[float]) -> float:
    return (len(sent) - 1) / (max(sent) - min(sent))


async def test_two_processes_share_the_tier_by_what_each_has_to_send(settings: Settings) -> None:
    clients = [mongo_client(settings), mongo_client(settings)]
    try:
        # each process also holds half the partitions: its pace if the schedule were away
        first, second = (
            SharedThrottle(
                TierSchedules(Database(c[settings.database], CHANNELS)),
                ACCOUNT,
                RATE,
                fallback=Throttle(RATE / 2),
            )
            for c in clients
        )
        one: list[float] = []
        other: list[float] = []
        await asyncio.gather(_send_for(first, 2.0, one), _send_for(second, 2.0, other))
        both = one + other
        assert max_in_window(both) <= RATE
        assert _rate(both) / RATE >= 0.9
        assert min(len(one), len(other)) >= 0.3 * len(both)  # both had their turns
        alone: list[float] = []
        await _send_for(first, 1.5, alone)  # the second has nothing to send now
        assert max_in_window(alone) <= RATE
        assert _rate(alone) / RATE >= 0.9  # the whole tier, not its half by partitions
    finally:
        for c in clients:
            await c.close()


async def test_a_process_holding_every_partition_paces_alone_without_round_trips(settings: Settings) -> None:
    client = mongo_client(settings)
    try:
        db = Database(client[settings.database], CHANNELS)
        throttle = SharedThrottle(TierSchedules(db), ACCOUNT, RATE, fallback=Throttle(RATE))
        sent: list[float] = []
        await _send_for(throttle, 1.0, sent)
        assert max_in_window(sent) <= RATE and _rate(sent) / RATE >= 0.9
        assert await client[settings.database][TIER_SCHEDULES.name].count_documents({}) == 0
        throttle.fallback.pace(RATE / 2)  # a second process took half the partitions
        await _send_for(throttle, 0.5, sent)
        assert await client[settings.database][TIER_SCHEDULES.name].count_documents({}) >= 1
    finally:
        await client.close()


async def test_without_the_database_a_process_sends_at_its_share_by_partitions(settings: Settings) -> None:
    unreachable: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        "mongodb://127.0.0.1:9/", serverSelectionTimeoutMS=100
    )
    try:
        throttle = SharedThrottle(
            TierSchedules(Database(unreachable[settings.database], CHANNELS)),
            ACCOUNT,
            RATE,
            fallback=Throttle(RATE / 4),
        )
        sent: list[float] = []
        await _send_for(throttle, 1.5, sent)
        # one try of the schedule, then the fallback's pace for the next seconds
        assert 0.8 <= _rate(sent) / (RATE / 4) <= 1.0
    finally:
        await unreachable.close()

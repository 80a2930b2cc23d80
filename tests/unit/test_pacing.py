"""The throttle and recipient pacing of channel adapters, on a simulated clock."""

from __future__ import annotations

import asyncio
import gc
import random
from typing import Any

import pytest
from pydantic import SecretStr

from buurtalert.channels.adapters.whatsapp import WhatsAppAdapter, WhatsAppConfig
from buurtalert.channels.pacing import Paced, RecipientPacing, SharedThrottle, Throttle


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def max_in_window(times: list[float], window: float = 1.0) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


@pytest.mark.parametrize("rate", [80, 1000])
async def test_throttle_never_exceeds_the_cap_in_any_second_and_stays_close_to_it(rate: int) -> None:
    """No one-second window holds more sends than the cap, and a busy sender gets close to it."""
    clock = Clock()
    throttle = Throttle(rate, clock=clock, sleep=clock.sleep)
    sent = []
    for _ in range(rate * 5):
        await throttle.acquire()
        sent.append(clock.now)
    assert max_in_window(sent) <= rate
    achieved = (len(sent) - 1) / (sent[-1] - sent[0])
    assert achieved / rate >= 0.95


@pytest.mark.parametrize("rate", [10, 80, 1000])
async def test_throttle_catches_up_on_a_late_sender_but_never_exceeds_the_cap(rate: int) -> None:
    """A sender that is sometimes late (a slow response, a busy event loop) still gets
    close to the cap, and no one-second window ever holds more than the cap."""
    clock = Clock()
    throttle = Throttle(rate, clock=clock, sleep=clock.sleep)
    lateness = random.Random(7)
    sent = []
    for _ in range(rate * 5):
        await throttle.acquire()
        sent.append(clock.now)
        clock.now += lateness.uniform(0, 0.6 / rate)  # up to 60% of an interval late
    assert max_in_window(sent) <= rate
    assert (len(sent) - 1) / (sent[-1] - sent[0]) / rate >= 0.95


async def test_throttle_does_not_catch_up_after_a_delay() -> None:
    """After a pause the throttle does not burst beyond its small catch-up allowance."""
    clock = Clock()
    throttle = Throttle(10, clock=clock, sleep=clock.sleep)
    await throttle.acquire()
    clock.now += 5.0  # the sender was busy
    sent = []
    for _ in range(11):
        await throttle.acquire()
        sent.append(clock.now)
    assert max_in_window(sent) <= 10


async def test_throttle_serialises_concurrent_senders() -> None:
    """Concurrent senders share one schedule: together they stay under the cap."""
    clock = Clock()
    throttle = Throttle(50, clock=clock, sleep=clock.sleep)
    sent: list[float] = []

    async def send() -> None:
        await throttle.acquire()
        sent.append(clock.now)

    await asyncio.gather(*(send() for _ in range(200)))
    assert max_in_window(sent) <= 50


async def test_recipient_pacing_spaces_messages_to_one_recipient_only() -> None:
    """Two sends to one recipient are spaced by the interval; sends to others are not held up."""
    clock = Clock()
    pacing = RecipientPacing(6.0, max_wait=10.0, clock=clock, sleep=clock.sleep)
    await pacing.acquire("a")
    await pacing.acquire("b")
    assert clock.now == 0.0
    await pacing.acquire("a")
    assert clock.now == 6.0


async def test_recipient_pacing_refuses_to_hold_up_the_sender_for_long() -> None:
    """A second message to the same person within six seconds is sent later, not waited for."""
    clock = Clock()
    pacing = RecipientPacing(6.0, max_wait=1.0, clock=clock, sleep=clock.sleep)
    await pacing.acquire("a")
    clock.now = 2.0
    with pytest.raises(Paced) as paced:
        await pacing.acquire("a")
    assert paced.value.wait == pytest.approx(4.0)
    clock.now = 5.5
    await pacing.acquire("a")  # half a second to wait: waited for
    assert clock.now == 6.0


async def test_a_turn_given_back_leaves_the_recipient_as_before() -> None:
    """A send refused by the provider gives its turn back: the next message to that
    person is due as if the refused one had not been tried."""
    clock = Clock()
    pacing = RecipientPacing(6.0, max_wait=1.0, clock=clock, sleep=clock.sleep)
    first = await pacing.acquire("a")
    assert first is None
    clock.now = 7.0
    before = await pacing.acquire("a")
    assert before == 0.0
    pacing.give_back("a", before)
    clock.now = 7.5
    await pacing.acquire("a")  # due at 6.0 again: no wait, no Paced
    assert clock.now == 7.5
    fresh = await pacing.acquire("b")
    pacing.give_back("b", fresh)
    await pacing.acquire("b")  # never sent to: no turn to wait for
    assert clock.now == 7.5


async def test_two_processes_at_their_shares_of_the_tier_stay_under_it_together() -> None:
    """Two channels processes hold 2 and 1 of the 3 partitions: each paces at its share of
    the business number's tier, so their sends together (two schedules on one wall clock)
    never exceed it in any second and come close to it; a process holding no partition
    keeps a sixth of the tier (it still sends review notices)."""
    config = WhatsAppConfig(phone_number_id="1", access_token=SecretStr("t"), messages_per_second=80)
    sent: list[float] = []
    for share in (2 / 3, 1 / 3):
        clock = Clock()  # each process's own schedule, from the same moment
        adapter = WhatsAppAdapter(config)
        adapter.own_pace = Throttle(80, clock=clock, sleep=clock.sleep)
        adapter.share(share)
        for _ in range(round(80 * 5 * share)):
            await adapter.own_pace.acquire()
            sent.append(clock.now)
    assert max_in_window(sent) <= 80
    assert (len(sent) - 1) / (max(sent) - min(sent)) / 80 >= 0.95
    unshared = Throttle(80, clock=Clock(), sleep=Clock().sleep)
    assert unshared.rate == 80  # without a share, one process alone takes the whole tier
    idle = WhatsAppAdapter(config)
    idle.share(0.0)
    assert idle.own_pace.rate == pytest.approx(80 / 6)


async def test_a_block_taken_ahead_is_left_when_the_process_paces_alone() -> None:
    """A process that took every partition paces alone: the block it was taking ahead is
    no longer waited for, and its failure (the database went away meanwhile) is neither
    reported as never retrieved nor a reason to fall back later."""
    reported: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, context: reported.append(context))
    away = asyncio.Event()

    class Schedule:  # the second block, the one taken ahead, fails once the database is away
        calls = 0

        async def reserve(self, account: str, now: float, count: int, interval: float) -> float:
            self.calls += 1
            if self.calls == 2:
                await away.wait()
                raise ConnectionError("the database went away")
            return now

    clock = Clock()
    fallback = Throttle(40, clock=clock, sleep=clock.sleep)
    throttle = SharedThrottle(
        Schedule(), "waba", 80, fallback=fallback, block=0.1, clock=clock, sleep=clock.sleep
    )
    for _ in range(throttle.count // 2 + 1):  # half the block sent: the next is being taken
        await throttle.acquire()
    fallback.pace(80)  # a rebalance gave this process every partition
    await throttle.acquire()
    away.set()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    fallback.pace(40)  # shared again: the failed block ahead is not the schedule's state now
    await throttle.acquire()
    assert throttle._unreachable_until == float("-inf")
    del throttle
    gc.collect()
    await asyncio.sleep(0)
    assert reported == []

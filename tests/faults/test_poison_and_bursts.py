"""A poison message does not stall its partition; a burst of transient failures
drains from the retry topic in batches, not one record after the other."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict

import pytest
from aiokafka import AIOKafkaProducer

from buurtalert.shared.kafka import Reliable, create_broker
from buurtalert.shared.models import Delivery, Destination
from buurtalert.shared.settings import Settings
from buurtalert.shared.topics import DELIVERY_TOPICS
from tests.support import eventually, read_topic

pytestmark = pytest.mark.faults

BURST = 10_000
KEYS = 500
ROUND_TRIP = 0.005  # each handler call waits this long, as a provider's round trip would


def _delivery(n: int, key: str) -> Delivery:
    return Delivery(
        id=f"dlv_{n}",
        message_id=f"msg_{n}",
        municipality="m",
        text="t",
        rules=("r",),
        destination=Destination(group_id=key, channel="email", address="a@b.test"),
    )


async def _produce(settings: Settings, items: list[tuple[Delivery, str]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=5)
    await producer.start()
    try:
        for item, key in items:
            await producer.send(
                settings.topic("deliveries.email"), item.model_dump_json().encode(), key=key.encode()
            )
        await producer.flush()
    finally:
        await producer.stop()


async def test_a_poison_message_is_dead_lettered_while_its_partition_moves_on(settings: Settings) -> None:
    """The poison fails every attempt and ends on the dead-letter topic after its
    retries; the messages behind it on the same partition (same key) are handled
    while it waits for its retries: all of them before its first retry."""
    settings = settings.model_copy(update={"retry_delays": (3.0, 3.0)})
    handled: dict[str, float] = {}
    poison_attempts: list[float] = []

    async def handle(delivery: Delivery) -> None:
        if delivery.id == "dlv_poison":
            poison_attempts.append(time.monotonic())
            raise RuntimeError("poison: the handler always fails on this one")
        handled[delivery.id] = time.monotonic()

    broker = create_broker(settings, "channels")
    Reliable(broker, settings, "channels").subscriber(DELIVERY_TOPICS["email"])(handle)
    async with broker:
        await broker.start()
        poison = Delivery.model_validate({**_delivery(0, "g").model_dump(), "id": "dlv_poison"})
        await _produce(settings, [(poison, "g")] + [(_delivery(n, "g"), "g") for n in range(1, 51)])
        [letter] = await read_topic(settings, "channels.deadletter", 1, timeout=60)
    assert letter["attempts"] == 1 + len(settings.retry_delays) == len(poison_attempts)
    assert "poison" in letter["error"]
    assert len(handled) == 50
    assert max(handled.values()) < poison_attempts[1], "the partition waited for the poison's retries"


async def test_a_burst_of_transient_failures_drains_in_batches(settings: Settings) -> None:
    """10,000 records fail once each (a provider's outage), then succeed. Drained one
    record at a time, each retry would cost at least its handler's round trip
    (10,000 × 5 ms = 50 s, before any waiting for retry_at); drained in batches,
    due records of different keys are handled concurrently. Each key's records are
    handled in the order they were produced, and each exactly once after its failure."""
    settings = settings.model_copy(update={"retry_delays": (0.5,)})
    attempts: Counter[str] = Counter()
    order: dict[str, list[int]] = defaultdict(list)
    in_flight = 0
    peak_retries_in_flight = 0

    async def handle(delivery: Delivery) -> None:
        nonlocal in_flight, peak_retries_in_flight
        attempts[delivery.id] += 1
        if attempts[delivery.id] == 1:
            raise RuntimeError("provider outage")
        in_flight += 1
        peak_retries_in_flight = max(peak_retries_in_flight, in_flight)
        try:
            await asyncio.sleep(ROUND_TRIP)
        finally:
            in_flight -= 1
        order[delivery.destination.group_id].append(int(delivery.id.removeprefix("dlv_")))

    broker = create_broker(settings, "channels")
    Reliable(broker, settings, "channels").batch_subscriber(DELIVERY_TOPICS["email"])(handle)
    async with broker:
        await broker.start()
        await _produce(settings, [(_delivery(n, f"g{n % KEYS}"), f"g{n % KEYS}") for n in range(BURST)])
        started = time.monotonic()
        await eventually(lambda: len(attempts) == BURST, timeout=60, what="every record's first attempt")
        await eventually(
            lambda: sum(len(v) for v in order.values()) == BURST, timeout=60, what="every retry handled"
        )
        drained = time.monotonic() - started
        print(f"burst of {BURST}: drained in {drained:.1f} s, peak {peak_retries_in_flight} in flight")
        await asyncio.sleep(1.0)  # nothing handled a third time
    assert all(count == 2 for count in attempts.values())
    assert all(seen == sorted(seen) for seen in order.values()), "a key's records out of order"
    assert peak_retries_in_flight > 10, "retries were handled one at a time"
    assert drained < 25, f"{drained:.1f} s: not faster than one by one could be"
    assert await read_topic(settings, "channels.deadletter", 1, timeout=1) == []

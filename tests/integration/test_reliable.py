"""At-least-once consumption with the retry → dead-letter path, on a real broker."""

from __future__ import annotations

import asyncio
from collections import Counter

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from faststream.kafka.annotations import KafkaMessage
from opentelemetry.sdk.trace import TracerProvider

from buurtalert.shared.kafka import PermanentError, Reliable, create_broker
from buurtalert.shared.metrics import PUBLISHED
from buurtalert.shared.models import Delivery, Destination
from buurtalert.shared.settings import Settings
from buurtalert.shared.topics import DELIVERY_TOPICS
from tests.support import eventually, read_topic


def _delivery(n: int) -> Delivery:
    return Delivery(
        id=f"dlv_{n}",
        message_id=f"msg_{n}",
        municipality="m",
        text="t",
        rules=("r",),
        destination=Destination(group_id="g", channel="email", address="a@b.test"),
    )


async def test_failing_handler_is_retried_until_it_succeeds(settings: Settings) -> None:
    """A handler that fails twice gets the message again, later, and then handles it."""
    calls: Counter[str] = Counter()

    async def handle(delivery: Delivery) -> None:
        calls[delivery.id] += 1
        if calls[delivery.id] <= 2:
            raise RuntimeError("provider hiccup")

    settings = settings.model_copy(update={"retry_delays": (0.2, 0.2, 0.2)})
    broker = create_broker(settings, "channels")
    Reliable(broker, settings, "channels").subscriber(DELIVERY_TOPICS["email"])(handle)
    async with broker:
        await broker.start()
        await broker.publish(_delivery(1), topic=settings.topic("deliveries.email"), key=b"g")
        await eventually(lambda: calls["dlv_1"] == 3, what="third attempt")
        await asyncio.sleep(1.0)
    assert calls["dlv_1"] == 3
    assert await read_topic(settings, "channels.deadletter", 1, timeout=2) == []


async def test_handler_that_keeps_failing_ends_on_the_dead_letter_topic(settings: Settings) -> None:
    """After the last retry the message lands on the dead-letter topic with the error."""
    attempts = 0

    async def handle(delivery: Delivery) -> None:
        nonlocal attempts
        attempts += 1
        raise RuntimeError("SMTP server on fire")

    broker = create_broker(settings, "channels")
    Reliable(broker, settings, "channels").subscriber(DELIVERY_TOPICS["email"])(handle)
    async with broker:
        await broker.start()
        await broker.publish(_delivery(2), topic=settings.topic("deliveries.email"), key=b"g")
        [letter] = await read_topic(settings, "channels.deadletter", 1)
    assert attempts == 1 + len(settings.retry_delays)
    assert letter["attempts"] == attempts
    assert "SMTP server on fire" in letter["error"]
    assert Delivery.model_validate_json(letter["payload"]).id == "dlv_2"


async def test_unparseable_and_permanent_failures_skip_the_retries(settings: Settings) -> None:
    """Bad input and permanent errors go straight to the dead-letter topic, with the reason."""
    seen: list[str] = []

    async def handle(delivery: Delivery) -> None:
        seen.append(delivery.id)
        raise PermanentError("unknown group")

    broker = create_broker(settings, "channels")
    Reliable(broker, settings, "channels").subscriber(DELIVERY_TOPICS["email"])(handle)
    async with broker:
        await broker.start()
        topic = settings.topic("deliveries.email")
        await broker.publish(b'{"this is": "not a delivery"}', topic=topic, key=b"g")
        await broker.publish(_delivery(3), topic=topic, key=b"g")
        letters = await read_topic(settings, "channels.deadletter", 2)
    assert seen == ["dlv_3"]
    errors = sorted(letter["error"] for letter in letters)
    assert errors[0].startswith("PermanentError: unknown group")
    assert "ValidationError" in errors[1]
    assert all(letter["attempts"] == 1 for letter in letters)


async def test_two_processes_of_a_batch_subscriber_hear_their_shares_of_the_partitions(
    settings: Settings,
) -> None:
    """Two consumers of one topic in one group (two channels processes) are told the share of
    the partitions each holds after the rebalance: together all of them, each some (the
    WhatsApp adapter paces itself at its share of the business number's tier); during the
    rebalance the one that held them all is told the smallest share."""
    shares: dict[str, list[float]] = {"first": [], "second": []}
    brokers = []
    for name in shares:
        broker = create_broker(settings, "channels")

        async def handle(delivery: Delivery) -> None:
            return None

        Reliable(broker, settings, "channels").batch_subscriber(
            DELIVERY_TOPICS["whatsapp"], on_share=shares[name].append
        )(handle)
        brokers.append(broker)
    async with brokers[0], brokers[1]:
        await brokers[0].start()
        await eventually(lambda: shares["first"][-1:] == [1.0], what="the first holding every partition")
        await brokers[1].start()

        def settled() -> bool:
            if not (shares["first"] and shares["second"]):
                return False
            return shares["first"][-1] + shares["second"][-1] == 1.0 and 0 < shares["second"][-1] < 1

        await eventually(settled, timeout=90, what="the partitions shared by the two")
    assert sorted([shares["first"][-1], shares["second"][-1]]) == [1 / 3, 2 / 3]
    # while the partitions moved, the first sent at one partition's share, not all of them
    assert shares["first"][:3] == [1.0, 1 / 3, shares["first"][-1]]


async def test_a_published_record_carries_the_handlings_trace_and_is_decoded_downstream(
    settings: Settings,
) -> None:
    """What a handler publishes through the Sender carries the trace context of the span it
    was handled in (W3C traceparent) and a content type a FastStream subscriber decodes;
    it is counted by topic."""
    sent = _delivery(7)
    received: list[tuple[Delivery, str]] = []

    async def downstream(delivery: Delivery, msg: KafkaMessage) -> None:
        received.append((delivery, msg.headers.get("traceparent", "")))

    broker = create_broker(settings, "channels")
    reliable = Reliable(broker, settings, "channels")
    broker.subscriber(
        settings.topic("deliveries.webhook"), group_id="downstream", auto_offset_reset="earliest"
    )(downstream)
    out = broker.publisher(settings.topic("deliveries.webhook"))
    before = PUBLISHED.labels(settings.topic("deliveries.webhook"))._value.get()
    tracer = TracerProvider().get_tracer("test")
    async with broker:
        await reliable.start()
        await broker.start()
        try:
            with tracer.start_as_current_span("handling") as span:
                await reliable.publish(out, sent, key=b"g")
            await eventually(lambda: received, what="the record to reach the subscriber")
        finally:
            await reliable.stop()
    [(delivery, traceparent)] = received
    assert delivery == sent
    assert traceparent.split("-")[1] == format(span.get_span_context().trace_id, "032x")
    assert PUBLISHED.labels(settings.topic("deliveries.webhook"))._value.get() == before + 1


async def test_a_slow_key_holds_up_no_other_key_and_its_partition_is_committed_only_up_to_it(
    settings: Settings,
) -> None:
    """A batch subscriber in lanes (a paced adapter's deliveries) does not wait for a slow
    record before it polls again: records of other keys that came after it, in the same
    partition and a later poll, are handled while it is in hand. The partition is committed
    only up to the slow record until it is done (a crash meanwhile brings it back), then
    past all of them."""
    in_hand, release = asyncio.Event(), asyncio.Event()
    handled: list[str] = []

    async def handle(delivery: Delivery) -> None:
        if delivery.id == "dlv_0":
            in_hand.set()
            await release.wait()
        handled.append(delivery.id)

    broker = create_broker(settings, "channels")
    reliable = Reliable(broker, settings, "channels", commit_interval=0.05)
    reliable.batch_subscriber(DELIVERY_TOPICS["email"], lanes=True)(handle)
    topic = settings.topic("deliveries.email")
    group = f"{settings.group_id('channels')}.deliveries.email"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()

    async def committed() -> int | None:
        offsets = await admin.list_consumer_group_offsets(group)
        found = offsets.get(TopicPartition(topic, 0))
        return found.offset if found is not None and found.offset >= 0 else None

    async def committed_past_all() -> bool:
        return await committed() == 6

    try:
        async with broker:
            await reliable.start()
            await broker.start()
            await broker.publish(_delivery(0), topic=topic, key=b"slow", partition=0)
            await eventually(in_hand.is_set, what="the slow record in hand")
            for n in range(1, 6):
                await broker.publish(_delivery(n), topic=topic, key=f"fast-{n}".encode(), partition=0)
            await eventually(lambda: len(handled) == 5, what="the later keys handled meanwhile")
            assert handled == [f"dlv_{n}" for n in range(1, 6)]
            await asyncio.sleep(0.5)  # commits come every 0.05 s
            assert await committed() in (None, 0), "committed past a record still in hand"
            release.set()
            await eventually(lambda: committed_past_all(), what="committed past all six", timeout=10)
            await reliable.stop()
    finally:
        await admin.close()

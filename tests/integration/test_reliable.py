"""At-least-once consumption with the retry → dead-letter path, on a real broker."""

from __future__ import annotations

import asyncio
from collections import Counter

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

"""The parts of the Kafka layer that can be checked without a broker: the commit
tracker (on a fake consumer and a simulated clock), the retry → dead-letter path
(on fake publishers), the grouping of a batch by key, and the middleware that
composes them."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition
from pydantic import ValidationError

from buurtalert.shared.kafka import (
    CommitTracker,
    PermanentError,
    Reliable,
    RetryPath,
    backoff,
    by_key,
    create_broker,
    decode_payload,
    encode_payload,
)
from buurtalert.shared.kafka.commits import Position
from buurtalert.shared.kafka.reliable import Lanes, Left, Turn
from buurtalert.shared.models import DeadLetter, Delivery, Destination, utcnow
from buurtalert.shared.settings import Settings
from buurtalert.shared.topics import DELIVERY_TOPICS

DELAYS = (1.0, 5.0, 30.0)
TOPIC = "t.deliveries.email"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeConsumer:
    """Counts commits and rewinds (``seek_to_committed``)."""

    def __init__(self) -> None:
        self.commits = 0
        self.rewinds = 0

    async def commit(self, offsets: Any = None) -> None:
        self.commits += 1

    async def seek_to_committed(self) -> None:
        self.rewinds += 1


class FakePublisher:
    """Keeps what is published to it, or fails with ``error``."""

    def __init__(self, error: Exception | None = None) -> None:
        self.sent: list[tuple[DeadLetter, bytes | None]] = []
        self.error = error

    async def publish(self, message: DeadLetter, *, key: bytes | None) -> None:
        if self.error:
            raise self.error
        self.sent.append((message, key))


def settings() -> Settings:
    return Settings(topic_prefix="t.", retry_delays=DELAYS)


def delivery(n: int = 1) -> Delivery:
    return Delivery(
        id=f"dlv_{n}",
        message_id=f"msg_{n}",
        municipality="m",
        text="t",
        rules=("r",),
        destination=Destination(group_id="g", channel="email", address="a@b.test"),
    )


def tracker_with_position(**kwargs: Any) -> tuple[CommitTracker, Any, FakeConsumer]:
    tracker = CommitTracker(**kwargs)
    position = tracker.track(TOPIC)
    consumer = FakeConsumer()
    position.consumer = consumer
    return tracker, position, consumer


async def handled_nothing(delivery: Delivery) -> None:
    pass


def retry_path(*, registered: bool = True) -> tuple[RetryPath, FakePublisher, FakePublisher]:
    retry, dead = FakePublisher(), FakePublisher()
    path = RetryPath(settings(), "channels", retry=retry, dead=dead)
    if registered:
        path.register(TOPIC, Delivery, handled_nothing)
    return path, retry, dead


def validation_error() -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        Delivery.model_validate_json(b'{"this is": "not a delivery"}')
    return caught.value


# --- the commit tracker


async def test_no_commit_happens_while_a_publish_is_unconfirmed() -> None:
    """A commit waits for every publish handed to the tracker; it happens once they are confirmed."""
    tracker, position, consumer = tracker_with_position(commit_every=1)
    confirmation: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    tracker.unconfirmed(confirmation)
    committing = asyncio.create_task(tracker.handled(position, 1))
    await asyncio.sleep(0.05)
    assert not committing.done()
    assert consumer.commits == 0
    confirmation.set_result(None)
    await committing
    assert (consumer.commits, consumer.rewinds, position.uncommitted) == (1, 0, 0)


async def test_a_failed_publish_rewinds_to_the_last_commit_instead_of_committing() -> None:
    """If a publish was not confirmed, nothing is committed and the consumer goes back to
    its last commit; the failed publish is not awaited again, so the next commit proceeds."""
    tracker, position, consumer = tracker_with_position(commit_every=1)
    failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    failed.set_exception(ConnectionError("broker gone"))
    tracker.unconfirmed(failed)
    await tracker.handled(position, 1)
    assert (consumer.commits, consumer.rewinds, position.uncommitted) == (0, 1, 0)
    await tracker.handled(position, 1)
    assert (consumer.commits, consumer.rewinds) == (1, 1)


async def test_commits_every_n_messages() -> None:
    """With time standing still, a position is committed at its ``commit_every``-th message."""
    clock = Clock()
    tracker, position, consumer = tracker_with_position(commit_every=3, commit_interval=60, clock=clock)
    await tracker.handled(position, 1)
    await tracker.handled(position, 1)
    assert consumer.commits == 0
    await tracker.handled(position, 1)
    assert (consumer.commits, position.uncommitted) == (1, 0)


async def test_commits_after_t_seconds() -> None:
    """A slow trickle is committed once ``commit_interval`` passed since the last commit."""
    clock = Clock()
    tracker, position, consumer = tracker_with_position(commit_every=500, commit_interval=0.2, clock=clock)
    clock.now = 0.1
    await tracker.handled(position, 1)
    assert consumer.commits == 0
    clock.now = 0.2
    await tracker.handled(position, 1)
    assert consumer.commits == 1
    clock.now = 0.3  # the interval counts from the last commit
    await tracker.handled(position, 1)
    assert consumer.commits == 1


async def test_nothing_is_committed_without_handled_messages_or_a_consumer() -> None:
    tracker, position, consumer = tracker_with_position()
    await tracker.commit(position)
    unassigned = tracker.track("t.other")
    unassigned.uncommitted = 1
    await tracker.commit(unassigned)
    assert (consumer.commits, consumer.rewinds) == (0, 0)


async def test_the_periodic_commit_skips_a_subscriber_with_a_message_in_hand() -> None:
    """A commit never covers a message still in hand: the periodic commit passes over a
    locked position, and commits it once the message is done."""
    tracker, position, consumer = tracker_with_position(commit_interval=0.01)
    position.uncommitted = 1
    await tracker.start()
    try:
        async with position.lock:
            await asyncio.sleep(0.1)
            assert consumer.commits == 0
        await asyncio.sleep(0.1)
        assert consumer.commits == 1
    finally:
        await tracker.stop()


async def test_stop_commits_what_was_handled_once_the_message_in_hand_is_done() -> None:
    tracker, position, consumer = tracker_with_position(commit_interval=60)
    await tracker.start()
    position.uncommitted = 2
    async with position.lock:
        stopping = asyncio.create_task(tracker.stop())
        await asyncio.sleep(0.05)
        assert consumer.commits == 0
    await stopping
    assert (consumer.commits, position.uncommitted) == (1, 0)


def _records(partition: int, offsets: range, key: bytes | None = b"k") -> list[Any]:
    return [SimpleNamespace(topic=TOPIC, partition=partition, offset=o, key=key) for o in offsets]


def test_a_position_committed_by_offsets_stops_at_the_first_record_in_hand() -> None:
    """A batch subscriber's records outlive their poll: each partition is committed up to
    its first record still in hand, past the last one handed out when none is, and not at
    all once a rebalance took it away."""
    position = Position(0.0)
    p0, p1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)
    first = position.taken(_records(0, range(10, 15)))
    second = position.taken(_records(1, range(3, 5)))
    position.done([first[0], first[1], first[3]])
    assert position.offsets({p0, p1}) == {p0: 12, p1: 3}
    assert position.uncommitted == 3
    position.done([first[2], first[4], *second])
    assert position.offsets({p0, p1}) == {p0: 15, p1: 5}
    assert position.offsets({p0}) == {p0: 15}, "a partition no longer assigned is not committed"
    left = position.taken(_records(0, range(15, 17)))
    position.done(left, handled=False)  # left to the new holder: nothing handled here
    assert position.uncommitted == 7
    position.forget([p0])
    assert position.offsets({p0, p1}) == {p1: 5}


def test_a_record_taken_before_a_rebalance_does_not_mark_its_copy_read_again_done() -> None:
    """A rebalance hands a partition back from its last commit: the records in hand come
    again while the earlier copies are still being handled. An earlier copy that ends (or
    is left) then must not count for the copy read again, which is still in hand."""
    position = Position(0.0)
    p0 = TopicPartition(TOPIC, 0)
    before = position.taken(_records(0, range(0, 3)))
    position.forget([p0])  # revoked, then assigned again
    again = position.taken(_records(0, range(0, 3)))
    position.done(before, handled=False)
    assert position.offsets({p0}) == {p0: 0}, "the copies read again are still in hand"
    position.done(again)
    assert position.offsets({p0}) == {p0: 3}


async def test_lanes_keep_each_keys_order_across_polls_and_no_key_waits_for_a_slow_one() -> None:
    """A slow key holds up neither the other keys nor the next poll; a key's records of a
    later poll wait for its earlier ones, and those that came while it was busy are handled
    together; its partition is committed only up to the slow record while that is in hand."""
    position = Position(0.0)
    p0 = TopicPartition(TOPIC, 0)
    release = asyncio.Event()
    calls: list[list[int]] = []
    handled: list[int] = []

    async def work(records: Any) -> int:
        calls.append([r.offset for r in records])
        for record in records:
            if record.offset == 0:
                await release.wait()
            handled.append(record.offset)
        return 0

    async def rewind() -> None:
        raise AssertionError("nothing failed")

    lanes = Lanes(position, bound=100, work=work, rewind=rewind)
    lanes.add(_records(0, range(0, 1), b"slow"))
    lanes.add(_records(0, range(1, 3), b"fast"))
    await lanes.room()  # the next poll goes on at once
    await asyncio.sleep(0.01)
    lanes.add(_records(0, range(3, 4), b"slow"))
    lanes.add(_records(0, range(4, 5), b"fast"))
    await asyncio.sleep(0.01)
    lanes.add(_records(0, range(5, 6), b"slow"))
    await asyncio.sleep(0.05)
    assert handled == [1, 2, 4]
    assert position.offsets({p0}) == {p0: 0}
    release.set()
    await lanes.drain()
    assert handled == [1, 2, 4, 0, 3, 5]
    assert calls == [[0], [1, 2], [4], [3, 5]], "what came while the slow key was busy went together"
    assert position.offsets({p0}) == {p0: 6}


async def test_lanes_make_a_full_poll_wait_for_room() -> None:
    position = Position(0.0)
    release = asyncio.Event()

    async def work(records: Any) -> int:
        await release.wait()
        return 0

    async def rewind() -> None:
        return None

    lanes = Lanes(position, bound=3, work=work, rewind=rewind)
    lanes.add(_records(0, range(0, 3), b"a"))
    waiting = asyncio.create_task(lanes.room())
    await asyncio.sleep(0.05)
    assert not waiting.done(), "three records in hand: the next poll waits"
    release.set()
    await asyncio.wait_for(waiting, timeout=1)


async def test_a_lane_whose_retry_path_is_unreachable_keeps_its_records_and_rewinds() -> None:
    """A lane whose records could be neither handled nor handed to the retry path does not
    mark them done: the subscriber goes back to its last commit, nothing is committed for
    the partition until its records come again, and then not past them."""
    tracker, position, consumer = tracker_with_position()
    p0 = TopicPartition(TOPIC, 0)

    async def rewind() -> None:
        await tracker.rewind(position)

    async def broken(records: Any) -> int:
        raise ConnectionError("retry topic unreachable")

    lanes = Lanes(position, bound=100, work=broken, rewind=rewind)

    position.done(position.taken(_records(0, range(0, 1), b"before")))
    lanes.add(_records(0, range(1, 3), b"k"))
    await lanes.drain()
    assert consumer.rewinds == 1
    assert position.offsets({p0}) == {}, "after the rewind, nothing until they come again"
    position.taken(_records(0, range(1, 3), b"k"))
    assert position.offsets({p0}) == {p0: 1}


# --- the retry → dead-letter path


@pytest.mark.parametrize("attempts", [0, 1, 2])
async def test_a_failure_goes_to_the_retry_topic_after_its_attempts_delay_with_jitter(attempts: int) -> None:
    """The n-th failure waits ``retry_delays[n-1]`` ±50% and keeps topic, key and payload."""
    path, retry, dead = retry_path()
    before = utcnow()
    await path.send_back(TOPIC, "g", attempts, "{}", "utf-8", RuntimeError("provider hiccup"))
    after = utcnow()
    assert dead.sent == []
    [(letter, key)] = retry.sent
    assert key == b"g"
    assert (letter.topic, letter.key, letter.payload, letter.consumer) == (TOPIC, "g", "{}", "channels")
    assert letter.attempts == attempts + 1
    assert letter.error == "RuntimeError: provider hiccup"
    assert letter.retry_at is not None
    delay = DELAYS[attempts]
    assert (
        before + timedelta(seconds=delay * 0.5) <= letter.retry_at <= after + timedelta(seconds=delay * 1.5)
    )


async def test_after_the_last_delay_a_failure_goes_to_the_dead_letter_topic() -> None:
    path, retry, dead = retry_path()
    await path.send_back(TOPIC, None, len(DELAYS), "{}", "utf-8", RuntimeError("SMTP server on fire"))
    assert retry.sent == []
    [(letter, key)] = dead.sent
    assert (letter.attempts, letter.retry_at, key) == (len(DELAYS) + 1, None, None)
    assert "SMTP server on fire" in letter.error


@pytest.mark.parametrize(
    ("exc", "registered"),
    [
        (PermanentError("unknown group"), True),
        (validation_error(), True),
        (RuntimeError("no handler to go back to"), False),
    ],
    ids=["permanent-error", "unparseable-input", "topic-without-handler"],
)
async def test_failures_retrying_cannot_help_go_straight_to_the_dead_letter_topic(
    exc: Exception, registered: bool
) -> None:
    path, retry, dead = retry_path(registered=registered)
    assert path.is_permanent(TOPIC, exc)
    await path.send_back(TOPIC, "g", 0, "{}", "utf-8", exc)
    assert retry.sent == []
    [(letter, _)] = dead.sent
    assert (letter.attempts, letter.retry_at) == (1, None)
    assert letter.error.startswith(type(exc).__name__)


async def test_an_ordinary_error_is_retried() -> None:
    path, _, _ = retry_path()
    assert not path.is_permanent(TOPIC, RuntimeError("provider hiccup"))


async def test_the_error_kept_with_a_letter_is_cut_at_4000_characters() -> None:
    path, _, _ = retry_path()
    letter = path.next_letter(TOPIC, None, 0, "{}", "utf-8", RuntimeError("x" * 10_000))
    assert len(letter.error) == 4000


async def test_a_consumed_records_first_failure_carries_its_key_and_payload() -> None:
    path, retry, _ = retry_path()
    body = delivery().model_dump_json().encode()
    await path.failed_record(TOPIC, b"g", body, RuntimeError("provider hiccup"))
    [(letter, key)] = retry.sent
    assert (letter.topic, letter.key, key, letter.attempts) == (TOPIC, "g", b"g", 1)
    assert decode_payload(letter) == body


async def test_a_retry_that_fails_again_goes_on_from_the_attempts_it_had() -> None:
    """A failure on the retry topic continues the carried message's count, under its own topic and key."""
    path, retry, dead = retry_path()
    previous = path.next_letter(TOPIC, "g", 1, "{}", "utf-8", RuntimeError("first"))
    await path.failed_record(
        path.retry_name, b"g", previous.model_dump_json().encode(), RuntimeError("again")
    )
    [(letter, key)] = retry.sent
    assert (letter.topic, letter.key, key, letter.attempts, letter.error) == (
        TOPIC,
        "g",
        b"g",
        3,
        "RuntimeError: again",
    )
    assert dead.sent == []
    assert path.retry_name == "t.channels.retry"


async def test_retry_later_hands_a_message_handled_outside_a_consumer_to_the_retry_path() -> None:
    path, retry, _ = retry_path()
    message = delivery()
    await path.retry_later(DELIVERY_TOPICS["email"], message, "g", RuntimeError("provider hiccup"))
    [(letter, key)] = retry.sent
    assert (letter.topic, letter.attempts, key) == (TOPIC, 1, b"g")
    assert Delivery.model_validate_json(letter.payload) == message


@pytest.mark.parametrize(
    ("body", "encoding"),
    [(b'{"text": "Verdacht \xc3\xa9\xc3\xa9n"}', "utf-8"), (b"\xff\xfe\x00binary", "base64")],
    ids=["utf-8", "binary"],
)
def test_a_payload_travels_as_text_when_it_can_and_comes_back_byte_for_byte(
    body: bytes, encoding: str
) -> None:
    payload, used = encode_payload(body)
    assert used == encoding
    letter = DeadLetter(
        topic=TOPIC, consumer="c", key=None, attempts=1, error="e", payload=payload, payload_encoding=used
    )
    assert decode_payload(letter) == body


def test_backoff_spreads_a_delay_within_half_of_it_either_way() -> None:
    """Jitter: failures at the same moment do not all come back at the same moment."""
    samples = [backoff(10.0) for _ in range(1000)]
    assert all(5.0 <= s <= 15.0 for s in samples)
    assert len(set(samples)) > 900


async def test_a_retry_is_handed_back_no_earlier_than_its_retry_at() -> None:
    path, _, _ = retry_path(registered=False)
    received: list[tuple[Delivery, float]] = []

    async def handle(message: Delivery) -> None:
        received.append((message, time.monotonic()))

    path.register(TOPIC, Delivery, handle)
    sent = delivery()
    letter = path.next_letter(TOPIC, "g", 0, *encode_payload(sent.model_dump_json().encode()), RuntimeError())
    letter = letter.model_copy(update={"retry_at": utcnow() + timedelta(seconds=0.2)})
    start = time.monotonic()
    await path.on_retry(letter)
    [(message, at)] = received
    assert message == sent
    assert at - start >= 0.15


# --- batches


def test_a_batch_is_grouped_by_key_each_key_in_order_and_keyless_records_apart() -> None:
    records = [
        SimpleNamespace(key=b"a", offset=0),
        SimpleNamespace(key=None, offset=1),
        SimpleNamespace(key=b"b", offset=2),
        SimpleNamespace(key=b"a", offset=3),
        SimpleNamespace(key=None, offset=4),
        SimpleNamespace(key=b"a", offset=5),
    ]
    groups = [[r.offset for r in group] for group in by_key(records)]  # type: ignore[arg-type]
    assert sorted(groups) == [[0, 3, 5], [1], [2], [4]]


# --- the middleware composing both (a broker object, never started: no connection)


def reliable_with(retry: FakePublisher) -> Reliable:
    config = settings()
    reliable = Reliable(create_broker(config, "channels"), config, "channels", commit_interval=3600)
    reliable.subscriber(DELIVERY_TOPICS["email"])(handled_nothing)
    reliable.retry.retry_publisher = retry
    return reliable


def consumed(body: bytes, consumer: FakeConsumer) -> Any:
    return SimpleNamespace(raw_message=SimpleNamespace(topic=TOPIC, key=b"g"), body=body, consumer=consumer)


async def test_a_handler_failure_takes_the_retry_path_and_counts_as_handled() -> None:
    retry, consumer = FakePublisher(), FakeConsumer()
    reliable = reliable_with(retry)

    async def failing(msg: Any) -> None:
        raise RuntimeError("provider hiccup")

    assert await reliable.handle(consumed(b"{}", consumer), failing) is None
    [(letter, _)] = retry.sent
    assert (letter.topic, letter.attempts) == (TOPIC, 1)
    position = reliable.commits.position(TOPIC)
    assert position is not None
    assert (position.uncommitted, consumer.rewinds) == (1, 0)


async def test_when_the_retry_path_is_unreachable_the_subscriber_rewinds() -> None:
    """A message neither handled nor handed to the retry path is not skipped: the
    subscriber goes back to its last commit and gets it again."""
    consumer = FakeConsumer()
    reliable = reliable_with(FakePublisher(error=ConnectionError("broker gone")))

    async def failing(msg: Any) -> None:
        raise RuntimeError("provider hiccup")

    assert await reliable.handle(consumed(b"{}", consumer), failing) is None
    position = reliable.commits.position(TOPIC)
    assert position is not None
    assert (position.uncommitted, consumer.rewinds, consumer.commits) == (0, 1, 0)


async def test_messages_of_topics_not_subscribed_reliably_pass_through() -> None:
    reliable = reliable_with(FakePublisher())
    msg = SimpleNamespace(raw_message=SimpleNamespace(topic="t.elsewhere", key=None), body=b"")

    async def handler(m: Any) -> str:
        return "handled"

    assert await reliable.handle(msg, handler) == "handled"


async def test_a_record_whose_partition_moved_while_it_waited_for_its_turn_is_left() -> None:
    """A batch's records wait for a turn among those in hand; one whose partition a
    rebalance took meanwhile is left to the new holder (Left), and its wait gives the
    turn back; one still held gets the turn and keeps it while it works."""
    limit = asyncio.Semaphore(1)
    holds = {"moved": True}
    await limit.acquire()  # another record is in hand
    waiting = asyncio.create_task(Turn(limit, lambda: not holds["moved"]).__aenter__())
    await asyncio.sleep(0)
    assert not waiting.done(), "it waits for its turn"
    limit.release()  # the other record is done; meanwhile a rebalance moved this one's partition
    with pytest.raises(Left):
        await waiting
    assert not limit.locked(), "a record that was left gives its turn back"
    held = Turn(limit, lambda: True)
    async with held:
        assert limit.locked(), "a held record keeps the turn while it works"
    assert not limit.locked()


def test_a_failure_that_says_when_retrying_can_help_is_not_retried_sooner() -> None:
    """Another process's send under way (``retry_after``): the retry waits at least that
    long, whatever the first delay is; a failure without it keeps the delays."""
    path, _, _ = retry_path()
    under_way = RuntimeError("claimed 1 s ago by another send")
    under_way.retry_after = 9.0  # type: ignore[attr-defined]
    letter = path.next_letter(TOPIC, "k", 0, "{}", "utf-8", under_way)
    assert letter.retry_at is not None
    assert (letter.retry_at - utcnow()).total_seconds() > 8.5
    plain = path.next_letter(TOPIC, "k", 0, "{}", "utf-8", RuntimeError("hiccup"))
    assert plain.retry_at is not None
    assert (plain.retry_at - utcnow()).total_seconds() < path.settings.retry_delays[0] * 1.5 + 0.1


async def test_a_batch_subscriber_polls_again_at_once_after_an_empty_poll() -> None:
    """FastStream's batch poll (``BatchSubscriber.get_msg``) sleeps ``batch_timeout_ms``
    after an empty one, and a record arriving meanwhile waits; each batch subscriber polls
    with ours instead, which asks again at once. Fails if FastStream renames the method it
    calls (our poll would then be set on nothing)."""
    from faststream.kafka.subscriber.usecase import BatchSubscriber

    from buurtalert.shared.kafka.reliable import BATCH_WAIT_MS, _poll

    assert "get_msg" in vars(BatchSubscriber)
    config = settings()
    reliable = Reliable(create_broker(config, "channels"), config, "channels", commit_interval=3600)
    subscriber: Any = reliable._subscribe("t.topic", "g", "a topic", batch=True, max_records=7)
    assert subscriber.get_msg.__func__ is _poll

    asked: list[dict[str, int]] = []

    class Idle:
        async def getmany(self, *, timeout_ms: int, max_records: int) -> dict[str, list[int]]:
            asked.append({"timeout_ms": timeout_ms, "max_records": max_records})
            return {} if len(asked) == 1 else {"tp": [1, 2]}

    idle = Idle()
    assert await subscriber.get_msg(idle) == ()
    assert await subscriber.get_msg(idle) == (1, 2)
    assert asked == [{"timeout_ms": BATCH_WAIT_MS, "max_records": 7}] * 2

"""A service's subscribers, composed from the commit tracker and the retry path.

Guarantees: every consumed message is handled, or handed to the retry path
(:mod:`.retry`), before its position is committed, and it is committed only once
what its handler published was confirmed (:mod:`.commits`). If even the retry path
is unreachable, the subscriber goes back to its last commit and handles the
messages again. Records of one key are handled in the order consumed.

A batch subscriber handles a poll's keys at once and polls again when they are done,
or, with ``lanes`` (channels' deliveries: a fan-out at a provider's pace must not pause
between polls), does not wait for the slowest key of a poll: each key's records go on in
a lane of their own (:class:`Lanes`), after that key's records of earlier polls, and its
position is committed up to the first record still in hand.
"""

from __future__ import annotations

import asyncio
import itertools
import types
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any, TypeAlias, cast

from aiokafka import ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from faststream import AckPolicy, BaseMiddleware, ContextRepo
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.publisher.usecase import DefaultPublisher
from faststream.message import StreamMessage
from pydantic import BaseModel

from buurtalert.shared.kafka.broker import Sender
from buurtalert.shared.kafka.commits import CommitTracker, Position
from buurtalert.shared.kafka.retry import Handler, M, RetryPath
from buurtalert.shared.logging import get_logger
from buurtalert.shared.settings import Settings
from buurtalert.shared.topics import Topic

log = get_logger(__name__)

_Record: TypeAlias = ConsumerRecord[bytes, bytes]
#: A handler of one key's messages of a batch, in order: per message None or its failure.
KeyBatchHandler: TypeAlias = Callable[[list[M]], Awaitable[Sequence[BaseException | None]]]


def _undecoded(message: Any) -> None:
    """A batch subscriber's decoder: its records are parsed one by one where they are
    handled, which is cheaper than FastStream's own decoding and validation of a batch."""
    return None


def by_key(records: Sequence[_Record]) -> list[list[_Record]]:
    """``records`` grouped by key, each group in the order consumed. A record without
    a key has no order to keep and goes in a group of its own."""
    groups: dict[bytes | None, list[_Record]] = defaultdict(list)
    for record in records:
        groups[record.key if record.key is not None else b"%d" % record.offset].append(record)
    return list(groups.values())


def _lane(records: Sequence[_Record]) -> object:
    """The lane of a key's records (see :func:`by_key`); keyless ones, by their place."""
    first = records[0]
    return first.key if first.key is not None else (first.partition, first.offset)


#: How long a stopping subscriber waits for the records in its lanes (seconds).
DRAIN_SECONDS = 10.0


class Lanes:
    """The records of a batch subscriber in hand, across its polls: each key's in order,
    after that key's records of earlier polls; the keys at once; a poll does not wait for
    the slowest key of the one before. The records of a key that came while its lane was
    busy go to ``work`` together (a busy key is handled in batches, a quiet one at once).
    Up to ``bound`` records are in hand: a poll with more waits for room (:meth:`room`).

    Each record is marked done on the subscriber's ``position`` when its handling ends, so
    a commit covers no record still in hand. When even the retry path fails (``work``
    raises), those records stay in hand, and the subscriber goes back to its last commit
    (``rewind``) and gets them again."""

    def __init__(
        self,
        position: Position,
        bound: int,
        work: Callable[[Sequence[_Record]], Awaitable[int]],
        rewind: Callable[[], Awaitable[None]],
    ) -> None:
        """``work`` handles one key's records in order and answers how many of the last
        it left to another process (their partition moved)."""
        self.position = position
        self.bound = bound
        self._work = work
        self._rewind = rewind
        #: Per busy lane, what came meanwhile (each record with its partition's epoch).
        self._waiting: dict[object, list[tuple[_Record, int]]] = {}
        self._lanes: dict[object, asyncio.Task[None]] = {}
        self._in_hand = 0
        self._room = asyncio.Event()
        self._room.set()

    def add(self, records: Sequence[_Record]) -> None:
        """Hand one key's records of a poll on, after that key's earlier ones."""
        lane = _lane(records)
        taken = self.position.taken(records)
        self._in_hand += len(records)
        if self._in_hand >= self.bound:
            self._room.clear()
        waiting = self._waiting.get(lane)
        if waiting is not None:  # the lane is busy: these go with its next turn
            waiting.extend(taken)
            return
        self._waiting[lane] = taken
        self._lanes[lane] = asyncio.create_task(self._run(lane))

    async def _run(self, lane: object) -> None:
        try:
            while taken := self._waiting[lane]:
                self._waiting[lane] = []
                await self._handle(taken)
        finally:
            del self._waiting[lane], self._lanes[lane]

    async def _handle(self, taken: list[tuple[_Record, int]]) -> None:
        try:
            left = await self._work([record for record, _ in taken])
            self.position.done(taken[: len(taken) - left])
            self.position.done(taken[len(taken) - left :], handled=False)
        except Exception:  # the retry path is unreachable: get these again from the last commit
            log.exception("retry_path_unavailable", topic=taken[0][0].topic)
            await asyncio.sleep(1.0)
            await self._rewind()
        finally:
            self._in_hand -= len(taken)
            if self._in_hand < self.bound:
                self._room.set()

    async def room(self) -> None:
        """Wait until fewer than ``bound`` records are in hand."""
        await self._room.wait()

    async def drain(self) -> None:
        """Wait (up to :data:`DRAIN_SECONDS`) until the records in hand now are done."""
        if self._lanes:
            await asyncio.wait(list(self._lanes.values()), timeout=DRAIN_SECONDS)


class Forget(ConsumerRebalanceListener):  # type: ignore[misc]
    """Tells a position which partitions a rebalance took away (nothing of theirs is
    committed any more, see :meth:`Position.forget`), then ``then``'s listener hears it."""

    def __init__(self, position: Position, then: ConsumerRebalanceListener | None = None) -> None:
        self.position, self.then = position, then

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self.position.forget(revoked)
        if self.then is not None:
            await self.then.on_partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        if self.then is not None:
            await self.then.on_partitions_assigned(assigned)


def _held_by(consumer: Any) -> Callable[[_Record], bool]:
    """Whether ``consumer`` still holds a record's partition. Records of a partition a
    rebalance took away are left (not handled, not committed): the consumer that holds it
    now reads them from the last commit, so two processes do not handle them at once."""
    if consumer is None:
        return lambda record: True

    def held(record: _Record) -> bool:
        return TopicPartition(record.topic, record.partition) in consumer.assignment()

    return held


class Left(Exception):
    """A rebalance took the record's partition away while it waited for its turn."""


class Turn:
    """A record's turn among the handlings a batch subscriber has in hand at once: the
    shared ``limit``, and then the check that this process still holds the record's
    partition (``held``), raising :class:`Left` if not. The check comes after the wait:
    the records of a large batch wait here, some of them for longer than a rebalance
    takes, and a record whose partition moved is the new holder's to handle."""

    def __init__(self, limit: asyncio.Semaphore, held: Callable[[], bool]) -> None:
        self.limit, self.held = limit, held

    async def __aenter__(self) -> None:
        await self.limit.acquire()
        if not self.held():
            self.limit.release()
            raise Left

    async def __aexit__(self, *exc: object) -> None:
        self.limit.release()


class Shares(ConsumerRebalanceListener):  # type: ignore[misc]
    """Tells ``on_share`` the share of ``topic``'s partitions this consumer holds after
    each rebalance (aiokafka hands the whole new assignment to ``on_partitions_assigned``).
    While a rebalance is under way (partitions revoked, the new assignment not yet known)
    the share is the smallest there is, one partition's: the sends still in hand then go
    slowly, so that this process and one that just took partitions over never send at
    more than their cap together."""

    def __init__(self, topic: str, partitions: int, on_share: Callable[[float], None]) -> None:
        self.topic, self.partitions, self.on_share = topic, partitions, on_share

    async def on_partitions_revoked(self, revoked: Any) -> None:
        if self.partitions and any(tp.topic == self.topic for tp in revoked):
            self.on_share(1 / self.partitions)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        held = sum(1 for tp in assigned if tp.topic == self.topic)
        share = held / self.partitions if self.partitions else 1.0
        log.info("partitions_assigned", topic=self.topic, held=held, share=round(share, 3))
        self.on_share(share)


#: How long one poll of an idle batch consumer waits for records (milliseconds); it
#: returns as soon as some come.
BATCH_WAIT_MS = 200


async def _poll(subscriber: Any, consumer: Any) -> tuple[Any, ...]:
    """A batch subscriber's poll: the records that came within ``batch_timeout_ms``, and
    when none came, none, at once. FastStream's own poll sleeps ``batch_timeout_ms`` after
    an empty one, so that a record arriving in that sleep waits for it, on every hop."""
    records = await consumer.getmany(
        timeout_ms=subscriber.batch_timeout_ms, max_records=subscriber.max_records
    )
    return tuple(itertools.chain.from_iterable(records.values()))


class Reliable:
    """The consuming side of one service: subscribes handlers to topics, commits
    in batches after confirming what they published, and owns the service's retry
    and dead-letter topics."""

    def __init__(
        self,
        broker: KafkaBroker,
        settings: Settings,
        service: str,
        *,
        commit_every: int = 500,
        commit_interval: float = 0.2,
        retry_batch: int = 5000,
        retry_concurrency: int = 256,
    ) -> None:
        self.broker = broker
        self.settings = settings
        self.service = service
        self.commits = CommitTracker(commit_every=commit_every, commit_interval=commit_interval)
        self.retry = RetryPath.on(broker, settings, service)
        self.sender = Sender(settings, service)
        self._all_lanes: dict[str, Lanes] = {}
        self._subscribe_batch(
            self.retry.retry_name,
            f"{settings.group_id(service)}.retry",
            "Consumed in batches: each key's messages in order, each handed to its handler "
            "again once its retry_at is reached; the keys concurrently.",
            self.retry.retry_record,
            max_records=retry_batch,
            concurrency=retry_concurrency,
        )
        broker.add_middleware(self._guard)

    def subscriber(self, topic: Topic) -> Callable[[Handler[M]], Handler[M]]:
        """Decorator: consume ``topic`` in this service's consumer group for it.

        One group per topic (``<service>.<topic>``), not one per service: the
        consumers of one process would otherwise rebalance each other as each joins,
        and a service with many subscribers would wait for every one of those
        rebalances at start. Processes of one service still share each topic's
        partitions."""
        name = self.settings.topic(topic.name)

        def decorate(handler: Handler[M]) -> Handler[M]:
            self.retry.register(name, topic.payload, handler)
            self._subscribe(name, f"{self.settings.group_id(self.service)}.{topic.name}", topic.description)(
                handler
            )
            return handler

        return decorate

    def batch_subscriber(
        self,
        topic: Topic,
        *,
        max_records: int = 5000,
        concurrency: int = 256,
        on_share: Callable[[float], None] | None = None,
        lanes: bool = False,
    ) -> Callable[[Handler[M]], Handler[M]]:
        """Decorator: like :meth:`subscriber`, but consume up to ``max_records`` at a
        time and handle up to ``concurrency`` keys at once, each key's records in
        order (a fan-out keeps a provider's rate instead of waiting a round trip per
        record). A record whose handling fails takes the retry path alone; the batch
        is committed once every record in it was handled or handed to that path.
        ``on_share`` hears, after each rebalance, the share of the topic's partitions
        this process now consumes (of those the topology declares). With ``lanes``, the
        next poll does not wait for the slowest key of the last (:class:`Lanes`)."""
        name = self.settings.topic(topic.name)

        def decorate(handler: Handler[M]) -> Handler[M]:
            self.retry.register(name, topic.payload, handler)

            async def handle_record(record: _Record, turn: Turn) -> None:
                async with turn:
                    await handler(cast(M, topic.payload.model_validate_json(record.value)))

            handle_record.__name__ = handler.__name__
            self._subscribe_batch(
                name,
                f"{self.settings.group_id(self.service)}.{topic.name}",
                topic.description,
                handle_record,
                max_records=max_records,
                concurrency=concurrency,
                listener=Shares(name, topic.partitions, on_share) if on_share else None,
                lanes=lanes,
            )
            return handler

        return decorate

    def key_batch_subscriber(
        self, topic: Topic, *, max_records: int = 5000, concurrency: int = 256
    ) -> Callable[[KeyBatchHandler[M]], KeyBatchHandler[M]]:
        """Decorator: like :meth:`batch_subscriber`, but hand each key's records of a
        batch to the handler at once, in the order consumed: a handler that does its
        reads for them together and its publishing in order keeps a busy key (one group
        reporting a fire) from waiting a round trip per record. The handler answers, per
        record, None or the exception that sends that record alone to the retry path."""
        name = self.settings.topic(topic.name)

        def decorate(handler: KeyBatchHandler[M]) -> KeyBatchHandler[M]:
            async def one(message: M) -> None:  # a retry comes back alone
                [failure] = await handler([message])
                if failure is not None:
                    raise failure

            one.__name__ = handler.__name__
            self.retry.register(name, topic.payload, one)
            limit = asyncio.Semaphore(concurrency)

            async def handle_key(records: Sequence[_Record]) -> None:
                parsed: list[tuple[_Record, M]] = []
                for record in records:
                    try:
                        parsed.append((record, cast(M, topic.payload.model_validate_json(record.value))))
                    except Exception as exc:  # unparseable: the retry path sends it to dead letter
                        await self.retry.failed_record(record.topic, record.key, record.value, exc)
                if not parsed:
                    return
                async with limit:
                    try:
                        failures: Sequence[BaseException | None] = await handler([m for _, m in parsed])
                    except Exception as exc:  # the handler failed as a whole: each record retries
                        failures = [exc] * len(parsed)
                for (record, _), failure in zip(parsed, failures, strict=True):
                    if failure is not None:
                        await self.retry.failed_record(record.topic, record.key, record.value, failure)

            async def consume_batch(body: Any, msg: KafkaMessage) -> None:
                await asyncio.gather(*(handle_key(records) for records in by_key(msg.raw_message)))

            consume_batch.__name__ = handler.__name__
            self._subscribe(
                name,
                f"{self.settings.group_id(self.service)}.{topic.name}",
                topic.description,
                batch=True,
                max_records=max_records,
                decoder=_undecoded,
            )(consume_batch)
            return handler

        return decorate

    def _subscribe_batch(
        self,
        name: str,
        group_id: str,
        description: str,
        handle_record: Callable[[_Record, Turn], Awaitable[None]],
        *,
        max_records: int,
        concurrency: int,
        listener: ConsumerRebalanceListener | None = None,
        lanes: bool = False,
    ) -> None:
        """Consume ``name`` in batches of up to ``max_records``: the records of each key
        in the order consumed, up to ``concurrency`` of them handled at once (the
        :class:`Turn` ``handle_record`` holds while it works, not while it waits; a record
        whose partition a rebalance moved meanwhile is left, with the rest of its key's,
        to the new holder). A record whose handling fails takes the retry path alone; the
        batch is committed once every record in it was handled or handed to that path,
        or, with ``lanes`` (:class:`Lanes`), each record once it and every record before
        it in its partition were."""
        limit = asyncio.Semaphore(concurrency)

        async def in_order(records: Sequence[_Record], held: Callable[[_Record], bool]) -> int:
            """Handle ``records`` in turn; the number left to the process that holds their
            partition now (a rebalance moved it while they were in hand)."""
            for n, record in enumerate(records):
                try:
                    await handle_record(record, Turn(limit, partial(held, record)))
                except Left:
                    log.info("records_left_to_new_owner", topic=name, records=len(records) - n)
                    return len(records) - n
                except Exception as exc:  # this record alone takes the retry path
                    async with limit:
                        await self.retry.failed_record(record.topic, record.key, record.value, exc)
            return 0

        if lanes:

            async def handle_lane(records: Sequence[_Record]) -> int:
                return await in_order(records, _held_by(in_lanes.position.consumer))

            in_lanes = self._lanes(name, max_records, handle_lane)

            async def consume_batch(body: Any, msg: KafkaMessage) -> None:
                # undecoded: each record is validated where it is handled
                for records in by_key(msg.raw_message):
                    in_lanes.add(records)
                await in_lanes.room()

            listener = Forget(in_lanes.position, listener)
        else:

            async def consume_batch(body: Any, msg: KafkaMessage) -> None:
                held = _held_by(getattr(msg, "consumer", None))
                await asyncio.gather(*(in_order(records, held) for records in by_key(msg.raw_message)))

        consume_batch.__name__ = handle_record.__name__
        extra: dict[str, Any] = {"listener": listener} if listener is not None else {}
        self._subscribe(
            name, group_id, description, batch=True, max_records=max_records, decoder=_undecoded, **extra
        )(consume_batch)

    def _lanes(self, name: str, bound: int, work: Callable[[Sequence[_Record]], Awaitable[int]]) -> Lanes:
        """The lanes of the batch subscriber of ``name``, committed by offsets."""
        position = self.commits.track(name)
        position.by_offsets = True

        async def rewind() -> None:
            async with position.lock:
                await self.commits.rewind(position)

        lanes = self._all_lanes[name] = Lanes(position, bound, work, rewind)
        return lanes

    def _subscribe(self, name: str, group_id: str, description: str, **batch: Any) -> Callable[[Any], Any]:
        if self.commits.position(name) is None:
            self.commits.track(name)
        if batch.get("batch"):
            batch.setdefault("batch_timeout_ms", BATCH_WAIT_MS)
        subscriber = self.broker.subscriber(
            name,
            group_id=group_id,
            ack_policy=AckPolicy.MANUAL,
            auto_offset_reset="earliest",
            title=f"{name}:consume",
            description=description,
            **batch,
        )
        if batch.get("batch"):
            subscriber.get_msg = types.MethodType(_poll, subscriber)  # no sleep after an empty poll
        return cast(Callable[[Any], Any], subscriber)

    async def publish(self, publisher: DefaultPublisher, message: BaseModel, *, key: bytes | None) -> None:
        """Publish without waiting for the broker; confirmed before the next commit."""
        self.commits.unconfirmed(await self.sender.send(publisher.topic, message, key=key))

    def attach(self, app: Any) -> None:
        """Start the sender before the broker consumes and the periodic commit after it
        started; when ``app`` stops, commit what was handled, and close the sender once
        the broker's handlers are done."""
        app.on_startup(self.sender.start)
        app.after_startup(self.commits.start)
        app.on_shutdown(self._stop_committing)
        app.after_shutdown(self.sender.stop)

    async def start(self) -> None:
        """Start the sender and the periodic commit (without an app: before the broker
        starts, whose consumers hand records to the handlers at once)."""
        await self.sender.start()
        await self.commits.start()

    async def stop(self) -> None:
        """Commit what was handled, then close the sender (before the broker stops)."""
        await self._stop_committing()
        await self.sender.stop()

    async def _stop_committing(self) -> None:
        """Let the records in the lanes finish (for a while), then commit what was handled."""
        await asyncio.gather(*(lanes.drain() for lanes in self._all_lanes.values()))
        await self.commits.stop()

    async def failed(self, msg: StreamMessage[Any], exc: BaseException) -> None:
        """Send a consumed message whose handling raised ``exc`` to retry or dead letter."""
        await self.retry.failed(msg, exc)

    async def retry_later(
        self, topic: Topic, message: BaseModel, key: str | None, exc: BaseException
    ) -> None:
        """Hand ``message`` of ``topic``, whose handling outside a consumer failed, to the retry path."""
        await self.retry.retry_later(topic, message, key, exc)

    async def handle(self, msg: Any, call_next: Callable[[Any], Awaitable[Any]]) -> Any:
        """Handle a consumed message (or batch) with its subscriber's lock held; a
        failure takes the retry path; then count it handled, committing when due."""
        records = msg.raw_message if isinstance(msg.raw_message, tuple) else (msg.raw_message,)
        position = self.commits.position(records[0].topic) if records else None
        if position is None:  # not one of ours
            return await call_next(msg)
        if position.by_offsets:  # handed to its lanes, which mark each record done
            position.consumer = msg.consumer
            result = await call_next(msg)
            async with position.lock:
                await self.commits.handled(position, 0)
            return result
        async with position.lock:
            position.consumer = msg.consumer
            try:
                try:
                    result = await call_next(msg)
                except Exception as exc:  # every handler failure takes the retry path
                    if isinstance(msg.raw_message, tuple):
                        raise  # a batch handler hands failed records on itself: this is the broker
                    await self.failed(msg, exc)
                    result = None
            except Exception:
                # The broker is unreachable: handle these messages again later.
                log.exception("retry_path_unavailable", topic=records[0].topic)
                await asyncio.sleep(1.0)
                await self.commits.rewind(position)
                return None
            await self.commits.handled(position, len(records))
            return result

    def _guard(self, msg: Any, /, *, context: ContextRepo) -> BaseMiddleware:
        return _Guard(msg, context=context, reliable=self)


class _Guard(BaseMiddleware):
    """Routes every consumed message through :meth:`Reliable.handle`."""

    def __init__(self, msg: Any, /, *, context: ContextRepo, reliable: Reliable) -> None:
        super().__init__(msg, context=context)
        self.reliable = reliable

    async def consume_scope(self, call_next: Callable[[Any], Awaitable[Any]], msg: StreamMessage[Any]) -> Any:
        return await self.reliable.handle(msg, call_next)

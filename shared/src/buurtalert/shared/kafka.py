"""Kafka with at-least-once semantics, batched commits, and a retry → dead-letter path.

* The producer is idempotent (``enable_idempotence``, ``acks=all``).
* A consumer's position is committed only after the messages before it were
  handled *and* everything their handlers published was confirmed by the broker:
  handlers publish through :meth:`Reliable.publish`, which does not wait for each
  confirmation; :class:`Reliable` confirms them all and then commits, every
  ``commit_every`` messages or ``commit_interval`` seconds (Kafka Streams' model).
  A crash redelivers what was not committed, so handlers must be idempotent:
  their output is a function of their input with deterministic ids, so handling
  a message twice publishes the same records again, which the next stage absorbs;
  the one effect that cannot be repeated, a send, is guarded by the channels ledger.
* :meth:`Reliable.batch_subscriber` consumes a topic in batches and handles the
  records of different keys concurrently, each key's in order (channels: a fan-out
  of thousands of deliveries keeps the provider's rate, not one round trip each).
* A handler that raises does not skip its message: :class:`Reliable` publishes it
  to the service's retry topic with a delay, and after the last delay to its
  dead-letter topic with the error. Input that cannot be parsed, and
  :class:`PermanentError`, go straight to the dead-letter topic.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any, Literal, TypeAlias, TypeVar, cast

from aiokafka import ConsumerRecord
from faststream import AckPolicy, BaseMiddleware, ContextRepo
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.publisher.usecase import DefaultPublisher
from faststream.message import StreamMessage
from pydantic import BaseModel, ValidationError

from buurtalert.shared.logging import KAFKA_LOGGER, get_logger
from buurtalert.shared.models import DeadLetter, utcnow
from buurtalert.shared.settings import Settings
from buurtalert.shared.topics import Topic, dead_letter_topic, retry_topic

log = get_logger(__name__)

M = TypeVar("M", bound=BaseModel)
_Record: TypeAlias = ConsumerRecord[bytes, bytes]
Handler = Callable[[M], Awaitable[None]]


def backoff(delay: float, spread: float = 0.5) -> float:
    """``delay`` with jitter: uniformly within ±``spread`` of it, so that many
    messages failing together (a provider's outage, a rate limit) do not all come
    back at the same moment. The delays themselves grow (``retry_delays``)."""
    return delay * random.uniform(1 - spread, 1 + spread)


def _undecoded(message: Any) -> None:
    """A batch subscriber's decoder: its records are parsed one by one where they are
    handled (FastStream's own decoding and validation of a batch cost 0.01 of the
    WhatsApp cap in the fan-out benchmark)."""
    return None


class PermanentError(Exception):
    """Raised by a handler when retrying cannot help (unknown group, bad data)."""


def create_broker(settings: Settings, service: str) -> KafkaBroker:
    return KafkaBroker(
        settings.kafka_bootstrap,
        client_id=f"buurtalert-{service}",
        enable_idempotence=True,
        acks="all",
        linger_ms=2,
        logger=KAFKA_LOGGER,
        log_level=logging.DEBUG,
        graceful_timeout=15.0,
    )


def topic_publisher(broker: KafkaBroker, settings: Settings, topic: Topic) -> DefaultPublisher:
    """The publisher of ``topic`` (with the deployment's prefix), documented from the topology."""
    return broker.publisher(
        settings.topic(topic.name),
        schema=topic.payload,
        title=f"{topic.name}:publish",
        description=topic.description,
    )


def _encode(body: bytes) -> tuple[str, Literal["utf-8", "base64"]]:
    try:
        return body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(body).decode("ascii"), "base64"


def _decode(letter: DeadLetter) -> bytes:
    if letter.payload_encoding == "base64":
        return base64.b64decode(letter.payload)
    return letter.payload.encode("utf-8")


class _Position:
    """The uncommitted progress of one subscriber. Its lock is held while a message
    is handled, so a commit never covers a message still in hand."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.consumer: Any = None
        self.uncommitted = 0
        self.since = time.monotonic()


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
    ) -> None:
        self.broker = broker
        self.settings = settings
        self.service = service
        self.commit_every = commit_every
        self.commit_interval = commit_interval
        self._handlers: dict[str, tuple[type[BaseModel], Handler[Any]]] = {}
        self._positions: dict[str, _Position] = {}
        self._unconfirmed: list[asyncio.Future[Any]] = []
        self._committer: asyncio.Task[None] | None = None
        self.retry_name = settings.topic(retry_topic(service).name)
        self.dead_name = settings.topic(dead_letter_topic(service).name)
        self.retry_publisher = topic_publisher(broker, settings, retry_topic(service))
        self.dead_publisher = topic_publisher(broker, settings, dead_letter_topic(service))
        self._subscribe(
            self.retry_name,
            f"{settings.group_id(service)}.retry",
            "Waits until each message's retry_at, then hands it to its handler again.",
        )(self._on_retry)
        broker.add_middleware(self._guard)

    def subscriber(self, topic: Topic) -> Callable[[Handler[M]], Handler[M]]:
        """Decorator: consume ``topic`` in this service's consumer group for it.

        One group per topic (``<service>.<topic>``), not one per service: the
        consumers of one process would otherwise rebalance each other as each joins
        (3 s apiece; 30 s for the ten of channels). Processes of one service still
        share each topic's partitions."""
        name = self.settings.topic(topic.name)

        def decorate(handler: Handler[M]) -> Handler[M]:
            self._handlers[name] = (topic.payload, handler)
            self._subscribe(name, f"{self.settings.group_id(self.service)}.{topic.name}", topic.description)(
                handler
            )
            return handler

        return decorate

    def batch_subscriber(
        self, topic: Topic, *, max_records: int = 5000, concurrency: int = 256
    ) -> Callable[[Handler[M]], Handler[M]]:
        """Decorator: like :meth:`subscriber`, but consume up to ``max_records`` at a
        time and handle up to ``concurrency`` keys at once, each key's records in
        order. A record whose handling fails takes the retry path alone; the batch is
        committed once every record in it was handled or handed to that path."""
        name = self.settings.topic(topic.name)

        def decorate(handler: Handler[M]) -> Handler[M]:
            self._handlers[name] = (topic.payload, handler)
            limit = asyncio.Semaphore(concurrency)

            async def in_order(records: Sequence[_Record]) -> None:
                async with limit:
                    for record in records:
                        try:
                            await handler(cast(M, topic.payload.model_validate_json(record.value)))
                        except Exception as exc:  # this record alone takes the retry path
                            key = record.key.decode("utf-8", "replace") if record.key else None
                            await self._send_back(record.topic, key, 0, *_encode(record.value), exc)

            async def consume_batch(body: Any, msg: KafkaMessage) -> None:
                by_key: dict[bytes | None, list[_Record]] = defaultdict(list)
                for record in msg.raw_message:  # undecoded: validated one by one in in_order
                    # A record without a key has no order to keep.
                    by_key[record.key if record.key is not None else b"%d" % record.offset].append(record)
                await asyncio.gather(*(in_order(records) for records in by_key.values()))

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

    def _subscribe(self, name: str, group_id: str, description: str, **batch: Any) -> Callable[[Any], Any]:
        self._positions[name] = _Position()
        return cast(
            Callable[[Any], Any],
            self.broker.subscriber(
                name,
                group_id=group_id,
                ack_policy=AckPolicy.MANUAL,
                auto_offset_reset="earliest",
                title=f"{name}:consume",
                description=description,
                **batch,
            ),
        )

    async def publish(self, publisher: DefaultPublisher, message: BaseModel, *, key: bytes | None) -> None:
        """Publish without waiting for the broker; confirmed before the next commit."""
        self._unconfirmed.append(await publisher.publish(message, key=key, no_confirm=True))

    def attach(self, app: Any) -> None:
        """Start the periodic commit with ``app`` and commit what was handled when it stops."""
        app.after_startup(self.start)
        app.on_shutdown(self.stop)

    async def start(self) -> None:
        """Start the periodic commit (after the broker started)."""
        self._committer = asyncio.create_task(self._commit_periodically())

    async def stop(self) -> None:
        """Commit what was handled (before the broker stops)."""
        if self._committer:
            self._committer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._committer
        for position in self._positions.values():
            async with position.lock:
                await self._commit(position)

    async def _commit_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.commit_interval)
            for position in self._positions.values():
                if position.uncommitted and not position.lock.locked():
                    async with position.lock:
                        await self._commit(position)

    async def _commit(self, position: _Position) -> None:
        """Confirm every publish, then commit; with the position's lock held."""
        if not position.uncommitted or position.consumer is None:
            return
        pending, self._unconfirmed = self._unconfirmed, []
        try:
            await asyncio.gather(*pending)
        except Exception:
            # Something handled since the last commit may not have reached Kafka:
            # go back to the last commit and handle it all again.
            log.exception("publish_unconfirmed_rewinding")
            await position.consumer.seek_to_committed()
            position.uncommitted = 0
            return
        await position.consumer.commit()
        position.uncommitted = 0
        position.since = time.monotonic()

    async def _on_retry(self, letter: DeadLetter) -> None:
        if letter.retry_at is not None:
            wait = (letter.retry_at - utcnow()).total_seconds()
            if wait > 0:
                await asyncio.sleep(wait)
        payload_type, handler = self._handlers[letter.topic]
        await handler(payload_type.model_validate_json(_decode(letter)))

    async def failed(self, msg: StreamMessage[Any], exc: BaseException) -> None:
        """Send a consumed message whose handling raised ``exc`` to retry or dead letter."""
        record = msg.raw_message
        if record.topic == self.retry_name:
            previous = DeadLetter.model_validate_json(msg.body)
            await self._send_back(
                previous.topic,
                previous.key,
                previous.attempts,
                previous.payload,
                previous.payload_encoding,
                exc,
            )
        else:
            key = record.key.decode("utf-8", "replace") if record.key else None
            await self._send_back(record.topic, key, 0, *_encode(msg.body), exc)

    async def retry_later(
        self, topic: Topic, message: BaseModel, key: str | None, exc: BaseException
    ) -> None:
        """Hand ``message`` of ``topic``, whose handling outside a consumer failed, to the retry path."""
        await self._send_back(
            self.settings.topic(topic.name), key, 0, message.model_dump_json(), "utf-8", exc
        )

    async def _send_back(
        self,
        topic: str,
        key: str | None,
        attempts: int,
        payload: str,
        encoding: Literal["utf-8", "base64"],
        exc: BaseException,
    ) -> None:
        attempts += 1
        error = f"{type(exc).__name__}: {exc}"[:4000]
        permanent = isinstance(exc, ValidationError | PermanentError) or topic not in self._handlers
        delays = self.settings.retry_delays
        last = permanent or attempts > len(delays)
        letter = DeadLetter(
            topic=topic,
            consumer=self.service,
            key=key,
            attempts=attempts,
            error=error,
            payload=payload,
            payload_encoding=encoding,
            retry_at=None if last else utcnow() + timedelta(seconds=backoff(delays[attempts - 1])),
        )
        publisher = self.dead_publisher if last else self.retry_publisher
        await publisher.publish(letter, key=key.encode() if key else None)
        if last:
            log.error("dead_lettered", topic=topic, attempts=attempts, error=error)
        else:
            log.warning("retry_scheduled", topic=topic, attempts=attempts, error=error)

    async def handle(self, msg: Any, call_next: Callable[[Any], Awaitable[Any]]) -> Any:
        records = msg.raw_message if isinstance(msg.raw_message, tuple) else (msg.raw_message,)
        position = self._positions.get(records[0].topic) if records else None
        if position is None:  # not one of ours
            return await call_next(msg)
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
                await msg.consumer.seek_to_committed()
                position.uncommitted = 0
                return None
            position.uncommitted += len(records)
            due = time.monotonic() - position.since >= self.commit_interval
            if position.uncommitted >= self.commit_every or due:
                await self._commit(position)
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

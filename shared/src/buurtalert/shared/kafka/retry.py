"""The retry → dead-letter path: a message whose handling failed is not skipped.

Guarantees:

* A failed message goes to the service's retry topic (``<service>.retry``) with a
  ``retry_at`` one delay of ``Settings.retry_delays`` later (a delay per attempt,
  with jitter); after the last delay it goes to the dead-letter topic
  (``<service>.deadletter``) with the error.
* Retrying cannot help input that cannot be parsed (a pydantic ``ValidationError``),
  a :class:`PermanentError`, or a message of a topic with no handler to go back to:
  these go straight to the dead-letter topic.
* The payload travels as it was consumed, as text when it is UTF-8 and base64
  otherwise, and is handed back to the handler byte for byte.
* A retry is handed back to its topic's handler no earlier than its ``retry_at``;
  if it fails again, it goes on from the attempts it had. The retry topic is
  consumed in batches (:meth:`RetryPath.retry_record`): each key's retries in the
  order they were sent back, the keys concurrently, so a burst of failures drains
  at the handlers' pace, not one ``retry_at`` after the other.
* A record on the retry topic that is not a retry (it cannot be parsed) goes to
  the dead-letter topic rather than stalling the retry topic.

The path publishes through two :class:`Publisher` objects, so it can be checked
without a broker.
"""

from __future__ import annotations

import asyncio
import base64
import random
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from typing import Any, Literal, Protocol, TypeAlias, TypeVar

from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker
from faststream.message import StreamMessage
from pydantic import BaseModel, ValidationError

from buurtalert.shared.kafka.broker import topic_publisher
from buurtalert.shared.logging import get_logger
from buurtalert.shared.metrics import DEAD_LETTERS
from buurtalert.shared.models import DeadLetter, utcnow
from buurtalert.shared.settings import Settings
from buurtalert.shared.topics import Topic, dead_letter_topic, retry_topic

log = get_logger(__name__)

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[M], Awaitable[None]]
Encoding: TypeAlias = Literal["utf-8", "base64"]


class PermanentError(Exception):
    """Raised by a handler when retrying cannot help (unknown group, bad data)."""


def backoff(delay: float, spread: float = 0.5) -> float:
    """``delay`` with jitter: uniformly within ±``spread`` of it, so that many
    messages failing together (a provider's outage, a rate limit) do not all come
    back at the same moment. The delays themselves grow (``retry_delays``)."""
    return delay * random.uniform(1 - spread, 1 + spread)


def encode_payload(body: bytes) -> tuple[str, Encoding]:
    """``body`` as the text of a :class:`DeadLetter`: itself if it is UTF-8, else base64."""
    try:
        return body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(body).decode("ascii"), "base64"


def decode_payload(letter: DeadLetter) -> bytes:
    """The bytes ``letter`` was made from (the inverse of :func:`encode_payload`)."""
    if letter.payload_encoding == "base64":
        return base64.b64decode(letter.payload)
    return letter.payload.encode("utf-8")


class Publisher(Protocol):
    """What the retry path uses of a topic's publisher."""

    async def publish(self, message: DeadLetter, *, key: bytes | None) -> object: ...


class RetryPath:
    """One service's retry and dead-letter topics, and the handlers a retry goes back to."""

    def __init__(self, settings: Settings, service: str, *, retry: Publisher, dead: Publisher) -> None:
        self.settings = settings
        self.service = service
        self.retry_publisher = retry
        self.dead_publisher = dead
        self.retry_name = settings.topic(retry_topic(service).name)
        self.dead_name = settings.topic(dead_letter_topic(service).name)
        self._handlers: dict[str, tuple[type[BaseModel], Handler[Any]]] = {}

    @classmethod
    def on(cls, broker: KafkaBroker, settings: Settings, service: str) -> RetryPath:
        """The retry path of ``service``, publishing on ``broker``."""
        retry = topic_publisher(broker, settings, retry_topic(service))
        dead = topic_publisher(broker, settings, dead_letter_topic(service))
        return cls(settings, service, retry=retry, dead=dead)

    def register(self, topic: str, payload: type[BaseModel], handler: Handler[Any]) -> None:
        """Hand retries of ``topic`` (its full name), parsed as ``payload``, to ``handler``."""
        self._handlers[topic] = (payload, handler)

    def is_permanent(self, topic: str, exc: BaseException) -> bool:
        """Whether retrying cannot help: unparseable input, a :class:`PermanentError`,
        or a topic without a handler to go back to."""
        return isinstance(exc, ValidationError | PermanentError) or topic not in self._handlers

    def next_letter(
        self, topic: str, key: str | None, attempts: int, payload: str, encoding: Encoding, exc: BaseException
    ) -> DeadLetter:
        """The record of one more failed attempt after ``attempts``: with a ``retry_at``
        if it goes to the retry topic, without one if to the dead-letter topic. A failure
        that knows how long retrying cannot help (its ``retry_after``, in seconds: another
        process's send under way) is not retried sooner."""
        attempts += 1
        delays = self.settings.retry_delays
        last = self.is_permanent(topic, exc) or attempts > len(delays)
        delay = 0.0 if last else max(backoff(delays[attempts - 1]), float(getattr(exc, "retry_after", 0.0)))
        return DeadLetter(
            topic=topic,
            consumer=self.service,
            key=key,
            attempts=attempts,
            error=f"{type(exc).__name__}: {exc}"[:4000],
            payload=payload,
            payload_encoding=encoding,
            retry_at=None if last else utcnow() + timedelta(seconds=delay),
        )

    async def send_back(
        self, topic: str, key: str | None, attempts: int, payload: str, encoding: Encoding, exc: BaseException
    ) -> None:
        """Publish one more failed attempt to the retry or the dead-letter topic."""
        letter = self.next_letter(topic, key, attempts, payload, encoding, exc)
        last = letter.retry_at is None
        publisher = self.dead_publisher if last else self.retry_publisher
        await publisher.publish(letter, key=key.encode() if key else None)
        if last:
            DEAD_LETTERS.labels(self.service).inc()
            log.error("dead_lettered", topic=topic, attempts=letter.attempts, error=letter.error)
        else:
            log.warning("retry_scheduled", topic=topic, attempts=letter.attempts, error=letter.error)

    async def failed_record(self, topic: str, key: bytes | None, body: bytes, exc: BaseException) -> None:
        """A consumed record whose handling raised ``exc``: its first failure, or, on
        the retry topic, one more failure of the message it carries."""
        if topic == self.retry_name:
            try:
                previous = DeadLetter.model_validate_json(body)
            except ValidationError:  # not a retry of ours: nothing to go back to
                text_key = key.decode("utf-8", "replace") if key else None
                await self.send_back(topic, text_key, 0, *encode_payload(body), exc)
                return
            await self.send_back(
                previous.topic,
                previous.key,
                previous.attempts,
                previous.payload,
                previous.payload_encoding,
                exc,
            )
        else:
            text_key = key.decode("utf-8", "replace") if key else None
            await self.send_back(topic, text_key, 0, *encode_payload(body), exc)

    async def failed(self, msg: StreamMessage[Any], exc: BaseException) -> None:
        """Send a consumed message whose handling raised ``exc`` to retry or dead letter."""
        record = msg.raw_message
        await self.failed_record(record.topic, record.key, msg.body, exc)

    async def retry_later(
        self, topic: Topic, message: BaseModel, key: str | None, exc: BaseException
    ) -> None:
        """Hand ``message`` of ``topic``, whose handling outside a consumer failed, to the retry path."""
        await self.send_back(self.settings.topic(topic.name), key, 0, message.model_dump_json(), "utf-8", exc)

    async def on_retry(
        self, letter: DeadLetter, limit: AbstractAsyncContextManager[None] | None = None
    ) -> None:
        """Wait until ``letter``'s ``retry_at``, then hand its payload to its topic's
        handler again (holding ``limit``, if given, while the handler works, not while
        waiting)."""
        if letter.retry_at is not None:
            wait = (letter.retry_at - utcnow()).total_seconds()
            if wait > 0:
                await asyncio.sleep(wait)
        payload_type, handler = self._handlers[letter.topic]
        message = payload_type.model_validate_json(decode_payload(letter))
        if limit is None:
            await handler(message)
            return
        async with limit:
            await handler(message)

    async def retry_record(
        self, record: ConsumerRecord[bytes, bytes], limit: AbstractAsyncContextManager[None]
    ) -> None:
        """A record of the retry topic, consumed in a batch (``Reliable``): each key's
        records are handed here one after the other, the keys concurrently, so a batch
        waits for the earliest retry_at not yet reached rather than for each in turn."""
        await self.on_retry(DeadLetter.model_validate_json(record.value), limit)

"""Kafka with at-least-once semantics, and a retry → dead-letter path.

* The producer is idempotent (``enable_idempotence``, ``acks=all``).
* Consumers commit only after handling (``AckPolicy.ACK``; no auto-commit).
* A handler that raises does not skip its message: :class:`Reliable` catches the
  error, publishes the message to the service's retry topic with a delay, and after
  the last delay to its dead-letter topic with the error. Input that cannot be
  parsed goes straight to the dead-letter topic: retrying cannot mend it.

Handlers must be idempotent (see :class:`buurtalert.shared.mongo.ProcessedKeys`):
a crash between handling and commit redelivers the message.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from faststream import AckPolicy, BaseMiddleware, ContextRepo
from faststream.kafka import KafkaBroker
from faststream.message import StreamMessage
from pydantic import BaseModel, ValidationError

from buurtalert.shared.logging import get_logger
from buurtalert.shared.models import DeadLetter, utcnow
from buurtalert.shared.settings import Settings
from buurtalert.shared.topics import Topic, dead_letter_topic, retry_topic

log = get_logger(__name__)

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[M], Awaitable[None]]


class PermanentError(Exception):
    """Raised by a handler when retrying cannot help (unknown group, bad data)."""


def create_broker(settings: Settings, service: str) -> KafkaBroker:
    return KafkaBroker(
        settings.kafka_bootstrap,
        client_id=f"buurtalert-{service}",
        enable_idempotence=True,
        acks="all",
        log_level=logging.DEBUG,
        graceful_timeout=15.0,
    )


def _encode(body: bytes) -> tuple[str, str]:
    try:
        return body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(body).decode("ascii"), "base64"


def _decode(letter: DeadLetter) -> bytes:
    if letter.payload_encoding == "base64":
        return base64.b64decode(letter.payload)
    return letter.payload.encode("utf-8")


class Reliable:
    """The consuming side of one service: subscribes handlers to topics with explicit
    commits, and owns the service's retry and dead-letter topics."""

    def __init__(self, broker: KafkaBroker, settings: Settings, service: str) -> None:
        self.broker = broker
        self.settings = settings
        self.service = service
        self._handlers: dict[str, tuple[type[BaseModel], Handler[Any]]] = {}
        self.retry_name = settings.topic(retry_topic(service).name)
        self.dead_name = settings.topic(dead_letter_topic(service).name)
        self.retry_publisher = broker.publisher(
            self.retry_name, schema=DeadLetter, title=f"{self.retry_name}:publish",
            description=retry_topic(service).description,
        )
        self.dead_publisher = broker.publisher(
            self.dead_name, schema=DeadLetter, title=f"{self.dead_name}:publish",
            description=dead_letter_topic(service).description,
        )
        broker.subscriber(
            self.retry_name,
            group_id=f"{settings.group_id(service)}.retry",
            ack_policy=AckPolicy.ACK,
            auto_offset_reset="earliest",
            title=f"{self.retry_name}:consume",
            description="Waits until each message's retry_at, then hands it to its handler again.",
        )(self._on_retry)
        broker.add_middleware(self._guard)

    def subscriber(self, topic: Topic) -> Callable[[Handler[M]], Handler[M]]:
        """Decorator: consume ``topic`` in this service's consumer group."""
        name = self.settings.topic(topic.name)

        def decorate(handler: Handler[M]) -> Handler[M]:
            self._handlers[name] = (topic.payload, handler)
            self.broker.subscriber(
                name,
                group_id=self.settings.group_id(self.service),
                ack_policy=AckPolicy.ACK,
                auto_offset_reset="earliest",
                title=f"{name}:consume",
                description=topic.description,
            )(handler)
            return handler

        return decorate

    async def _on_retry(self, letter: DeadLetter) -> None:
        if letter.retry_at is not None:
            wait = (letter.retry_at - utcnow()).total_seconds()
            if wait > 0:
                await asyncio.sleep(wait)
        payload_type, handler = self._handlers[letter.topic]
        await handler(payload_type.model_validate_json(_decode(letter)))

    async def failed(self, msg: StreamMessage[Any], exc: BaseException) -> None:
        """Send a message whose handling raised ``exc`` to retry or dead letter."""
        record = msg.raw_message
        if record.topic == self.retry_name:
            previous = DeadLetter.model_validate_json(msg.body)
            topic, key, attempts = previous.topic, previous.key, previous.attempts
            payload, encoding = previous.payload, previous.payload_encoding
        else:
            topic, attempts = record.topic, 0
            key = record.key.decode("utf-8", "replace") if record.key else None
            payload, encoding = _encode(msg.body)
        attempts += 1
        error = f"{type(exc).__name__}: {exc}"[:4000]
        permanent = isinstance(exc, ValidationError | PermanentError) or topic not in self._handlers
        delays = self.settings.retry_delays
        if permanent or attempts > len(delays):
            letter = DeadLetter(topic=topic, consumer=self.service, key=key, attempts=attempts,
                                error=error, payload=payload, payload_encoding=encoding)
            await self.dead_publisher.publish(letter, key=key.encode() if key else None)
            log.error("dead_lettered", topic=topic, attempts=attempts, error=error)
        else:
            retry_at = utcnow() + timedelta(seconds=delays[attempts - 1])
            letter = DeadLetter(topic=topic, consumer=self.service, key=key, attempts=attempts,
                                error=error, payload=payload, payload_encoding=encoding,
                                retry_at=retry_at)
            await self.retry_publisher.publish(letter, key=key.encode() if key else None)
            log.warning("retry_scheduled", topic=topic, attempts=attempts, retry_at=retry_at.isoformat(),
                        error=error)

    def _guard(self, msg: Any, /, *, context: ContextRepo) -> BaseMiddleware:
        return _FailureGuard(msg, context=context, reliable=self)


class _FailureGuard(BaseMiddleware):
    """Catches what a handler raises and hands the message to the retry path; the
    message is then committed, because it is safe on the retry or dead-letter topic.
    If even that publish fails (the broker is unreachable), the message is not
    committed but sought back (``nack``) and consumed again a second later."""

    def __init__(self, msg: Any, /, *, context: ContextRepo, reliable: Reliable) -> None:
        super().__init__(msg, context=context)
        self.reliable = reliable

    async def consume_scope(self, call_next: Callable[[Any], Awaitable[Any]], msg: StreamMessage[Any]) -> Any:
        try:
            return await call_next(msg)
        except Exception as exc:  # every handler failure takes the retry path
            try:
                await self.reliable.failed(msg, exc)
            except Exception:
                log.exception("retry_path_unavailable", topic=msg.raw_message.topic)
                await asyncio.sleep(1.0)
                await msg.nack()
            return None

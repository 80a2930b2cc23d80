"""The broker, its publishers and the message path's :class:`Sender`.

Guarantees: every producer (the broker's and the Sender's) is idempotent and every
write is acknowledged by all in-sync replicas (``enable_idempotence``, ``acks=all``),
so a publish the broker confirmed is neither lost nor duplicated by the producer's own
retries; a topic's publisher uses the deployment's topic name and carries the topic's
payload and description from the topology into the AsyncAPI document. Every consumed
message is traced, and what a handler publishes carries its trace context
(:mod:`buurtalert.shared.tracing`).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata
from faststream.kafka import KafkaBroker
from faststream.kafka.publisher.usecase import DefaultPublisher
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from opentelemetry.propagate import inject
from prometheus_client import Counter
from pydantic import BaseModel

from buurtalert.shared.logging import KAFKA_LOGGER
from buurtalert.shared.metrics import PUBLISHED
from buurtalert.shared.settings import Settings
from buurtalert.shared.topics import Topic
from buurtalert.shared.tracing import telemetry_middleware


def kafka_security(settings: Settings) -> BaseSecurity | None:
    """TLS and SASL for the Kafka clients, as the deployment's settings say
    (``BUURTALERT_KAFKA_SECURITY_PROTOCOL`` and friends); None for plaintext."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    tls = protocol in ("SSL", "SASL_SSL")
    context = ssl.create_default_context(cafile=settings.kafka_ssl_cafile) if tls else None
    if protocol == "SSL":
        return BaseSecurity(ssl_context=context, use_ssl=True)
    user = settings.kafka_sasl_username or ""
    password = settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else ""
    sasl = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}
    return sasl[settings.kafka_sasl_mechanism](user, password, ssl_context=context, use_ssl=tls)


def kafka_client_options(settings: Settings) -> dict[str, Any]:
    """The same security as keyword arguments of aiokafka's own clients (the admin client)."""
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = ssl.create_default_context(cafile=settings.kafka_ssl_cafile)
    if protocol.startswith("SASL_"):
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = (
            settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else None
        )
    return options


def create_broker(settings: Settings, service: str) -> KafkaBroker:
    """The broker of ``service``: an idempotent producer, writes acknowledged by all
    replicas, with the deployment's TLS and SASL settings."""
    return KafkaBroker(
        settings.kafka_bootstrap,
        security=kafka_security(settings),
        client_id=f"buurtalert-{service}",
        enable_idempotence=True,
        acks="all",
        linger_ms=2,
        logger=KAFKA_LOGGER,
        log_level=logging.DEBUG,
        graceful_timeout=15.0,
        middlewares=[telemetry_middleware(settings, service)],
    )


def topic_publisher(broker: KafkaBroker, settings: Settings, topic: Topic) -> DefaultPublisher:
    """The publisher of ``topic`` (with the deployment's prefix), documented from the topology."""
    return broker.publisher(
        settings.topic(topic.name),
        schema=topic.payload,
        title=f"{topic.name}:publish",
        description=topic.description,
    )


#: What every record we publish carries besides its trace context: FastStream's
#: subscribers decode a body by its content type.
JSON = ("content-type", b"application/json")


class Sender:
    """The message path's producer: publishes a pydantic model as JSON with the current
    span's trace context (W3C ``traceparent``) and returns the broker's confirmation, to
    be awaited later. It skips FastStream's publishing pipeline (a command object, a
    middleware stack and two spans per record), which cost more CPU than Kafka itself
    for each record a service passes on (docs/benchmarks.md); the producer's settings
    are the broker's: idempotent, acknowledged by all in-sync replicas, the deployment's
    TLS and SASL. Counted in ``buurtalert_published_messages_total`` by topic."""

    def __init__(self, settings: Settings, service: str) -> None:
        self._settings, self._service = settings, service
        self._producer: AIOKafkaProducer | None = None
        self._counted: dict[str, Counter] = {}

    async def start(self) -> None:
        """Connect (within the event loop, which aiokafka's clients need from their start)."""
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._settings.kafka_bootstrap,
            client_id=f"buurtalert-{self._service}-sender",
            enable_idempotence=True,
            acks="all",
            linger_ms=2,
            **kafka_client_options(self._settings),
        )
        await self._producer.start()

    async def stop(self) -> None:
        """Send what is buffered, then close."""
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def send(
        self, topic: str, message: BaseModel, *, key: bytes | None
    ) -> asyncio.Future[RecordMetadata]:
        """Hand ``message`` to the producer for ``topic``; the future resolves once the
        broker confirmed it (and fails if it could not)."""
        if self._producer is None:
            raise RuntimeError("the sender was not started (Reliable.attach or Reliable.start)")
        carrier: dict[str, str] = {}
        inject(carrier)
        headers = [JSON, *((name, value.encode()) for name, value in carrier.items())]
        sent: asyncio.Future[RecordMetadata] = await self._producer.send(
            topic, message.model_dump_json().encode(), key=key, headers=headers
        )
        if (counter := self._counted.get(topic)) is None:
            counter = self._counted[topic] = PUBLISHED.labels(topic)
        counter.inc()
        return sent

"""The broker and its publishers.

Guarantees: the producer is idempotent and every write is acknowledged by all
in-sync replicas (``enable_idempotence``, ``acks=all``), so a publish the broker
confirmed is neither lost nor duplicated by the producer's own retries; a topic's
publisher uses the deployment's topic name and carries the topic's payload and
description from the topology into the AsyncAPI document. Every consumed and
published message is traced (:mod:`buurtalert.shared.tracing`).
"""

from __future__ import annotations

import logging
import ssl
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.kafka.publisher.usecase import DefaultPublisher
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from buurtalert.shared.logging import KAFKA_LOGGER
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

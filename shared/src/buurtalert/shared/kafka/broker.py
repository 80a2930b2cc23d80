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

from faststream.kafka import KafkaBroker
from faststream.kafka.publisher.usecase import DefaultPublisher

from buurtalert.shared.logging import KAFKA_LOGGER
from buurtalert.shared.settings import Settings
from buurtalert.shared.topics import Topic
from buurtalert.shared.tracing import telemetry_middleware


def create_broker(settings: Settings, service: str) -> KafkaBroker:
    """The broker of ``service``: an idempotent producer, writes acknowledged by all replicas."""
    return KafkaBroker(
        settings.kafka_bootstrap,
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

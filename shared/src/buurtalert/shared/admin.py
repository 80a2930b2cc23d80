"""Kafka administration: create the declared topics."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from buurtalert.shared.kafka.broker import kafka_client_options
from buurtalert.shared.settings import Settings
from buurtalert.shared.topics import Topic


async def create_topics(
    settings: Settings, topics: Iterable[Topic], replication_factor: int = 1
) -> list[str]:
    """Create ``topics`` under ``settings.topic_prefix``; return the new ones."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id="buurtalert-admin",
        **kafka_client_options(settings),
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(settings.topic(t.name), t.partitions, replication_factor)
            for t in topics
            if settings.topic(t.name) not in existing
        ]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(wanted)
        return [t.name for t in wanted]
    finally:
        await admin.close()

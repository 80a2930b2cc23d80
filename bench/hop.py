"""One hop of our Kafka layer, in a process of its own as a service's is.

``python -m bench.hop`` (settings from the ``BUURTALERT_*`` environment, as a service
reads them): a FastStream batch subscriber of ours (``Reliable``: many keys at once, in
order per key, batched commits after confirmed publishes, the retry guard, pydantic
validation of an ``InboundMessage``) that publishes each message to ``bench.out``.

:func:`hop_throughput` starts that process, waits until a warm-up message came through
(its consumer joined its group and holds the partitions), then times N messages from
the first produced to the last read back, produced and read by the benchmark's process
exactly as the raw produce→consume baseline produces and reads them.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import uvloop
from aiokafka import AIOKafkaConsumer

from buurtalert.devkit.testing import settings_environment
from buurtalert.shared.kafka import Reliable, create_broker
from buurtalert.shared.models import InboundMessage
from buurtalert.shared.settings import Settings
from buurtalert.shared.topics import MESSAGES_INBOUND

ROOT = Path(__file__).resolve().parents[1]
OUT = "bench.out"
#: The topics the hop needs besides its own retry and dead-letter topics.
TOPICS = (MESSAGES_INBOUND.name, OUT, "bench.retry", "bench.deadletter")


async def serve(settings: Settings) -> None:
    """The hop: consume ``messages.inbound``, validate, publish to ``bench.out``, until killed."""
    broker = create_broker(settings, "bench")
    reliable = Reliable(broker, settings, "bench")
    out = broker.publisher(settings.topic(OUT))

    @reliable.batch_subscriber(MESSAGES_INBOUND)
    async def hop(message: InboundMessage) -> None:
        await reliable.publish(out, message, key=message.partition_key)

    async with broker:
        await reliable.start()  # the sender first: the broker's consumers hand records over at once
        await broker.start()
        try:
            await asyncio.Event().wait()
        finally:
            await reliable.stop()


def start(settings: Settings) -> subprocess.Popen[bytes]:
    """The hop's process, with ``settings``."""
    env = {**os.environ, **settings_environment(settings), "BUURTALERT_LOG_LEVEL": "WARNING"}
    return subprocess.Popen([sys.executable, "-m", "bench.hop"], cwd=ROOT, env=env)


async def read(consumer: AIOKafkaConsumer, count: int, within: float = 300.0) -> None:
    """Read ``count`` records from ``consumer``; fail after ``within`` seconds."""
    seen, deadline = 0, time.monotonic() + within
    while seen < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the hop passed {seen} of {count} messages")
        batch = await consumer.getmany(timeout_ms=500)
        seen += sum(len(records) for records in batch.values())


if __name__ == "__main__":
    uvloop.run(serve(Settings()))  # the event loop `buurtalert run` gives every service

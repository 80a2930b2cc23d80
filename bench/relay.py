"""``python -m bench.relay BOOTSTRAP SOURCE TARGET GROUP``: one hop of the raw relay
chain, the baseline of the pipeline benchmark (:mod:`bench.pipeline`), in a process of
its own as each service is. It consumes ``SOURCE`` in batches and produces each record
to ``TARGET`` with the producer settings our services use (idempotent, acks=all), and
commits after the batch was acknowledged: the least any at-least-once relay does."""

from __future__ import annotations

import asyncio
import sys

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer


async def relay(bootstrap: str, source: str, target: str, group: str) -> None:
    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=5)
    await consumer.start()
    await producer.start()
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            sent = [
                await producer.send(target, record.value, key=record.key)
                for records in batch.values()
                for record in records
            ]
            if sent:
                await asyncio.gather(*sent)
                await consumer.commit()
    finally:
        await producer.stop()
        await consumer.stop()


if __name__ == "__main__":
    bootstrap, source, target, group = sys.argv[1:5]
    asyncio.run(relay(bootstrap, source, target, group))

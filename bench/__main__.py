"""``python -m bench``: Kafka throughput, raw aiokafka against one FastStream hop of ours;
ingest's webhook throughput and response times (:mod:`bench.ingest`); WhatsApp fan-out
against the throughput cap (:mod:`bench.fanout`); moderation; the database operations of the
message path as the data grows, on both FerretDB backends (:mod:`bench.store`).

* baseline: raw aiokafka, an idempotent producer (acks=all) sending N messages and
  a consumer reading them back: produce→consume messages per second.
* ours: the same N messages produced the same way, then one hop of ours in a process
  of its own, as a service runs (:mod:`bench.hop`: a batch subscriber of ``Reliable``,
  many keys at once, in order per key, pydantic validation of an ``InboundMessage``,
  published through the ``Sender``, batched commits after confirmed publishes, the
  retry guard), read back by a raw consumer in this process. In one process with the
  producer and the reader, a hop could never reach half of produce→consume: it does a
  consume and a produce of its own.

Consumers join their groups before the clock starts, in both cases. The two run in
turn, three rounds, and their medians are compared.

The machines are noisy, so the figure that matters is the ratio of the two (goal:
at least 0.5). Every goal is checked (:mod:`bench.report`): the report goes into
docs/benchmarks.md with a chart, and the command exits non-zero when a goal is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench import hop
from bench.fanout import fan_out_benchmark, kafka_fan_out_benchmark
from bench.ingest import report, webhook_benchmark
from bench.pipeline import pipeline_benchmark
from bench.report import missed, write
from bench.store import store_benchmark, write_section
from buurtalert.devkit.testing import delete_prefixed_topics, isolated_settings, provide_infrastructure
from buurtalert.shared.models import Author, InboundMessage, ProviderRef, SourceChannel, utcnow
from buurtalert.shared.settings import Settings
from buurtalert.shared.topics import MESSAGES_INBOUND

PARTITIONS = 3
#: Rounds of the Kafka benchmark, raw and ours in turn; the medians are compared.
ROUNDS = 3


def _messages(count: int) -> list[bytes]:
    now = utcnow()
    return [
        InboundMessage(
            id=f"msg_{n:08d}",
            provider=ProviderRef(channel=SourceChannel.WEB, message_id=f"r{n}", account="bench"),
            municipality="weert-demo",
            group_id=f"group-{n % 50}",
            author=Author(pseudonym=f"p_{n:032x}"),
            text="Verdachte man met rode jas en rugzak probeert autodeuren aan de Dorpstraat, 112 gebeld.",
            sent_at=now,
            raw_ref=f"raw_{n}",
        )
        .model_dump_json()
        .encode()
        for n in range(count)
    ]


async def _create(settings: Settings, *names: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(settings.topic(n), PARTITIONS, 1) for n in names])
    finally:
        await admin.close()


async def _produce(settings: Settings, topic: str, payloads: list[bytes]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, enable_idempotence=True, acks="all", linger_ms=5
    )
    await producer.start()
    try:
        pending = []
        for n, value in enumerate(payloads):
            pending.append(await producer.send(settings.topic(topic), value, key=f"group-{n % 50}".encode()))
            if len(pending) >= 2000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def _started_consumer(settings: Settings, topic: str) -> AIOKafkaConsumer:
    """A consumer that has joined its group and holds its partitions."""
    consumer = AIOKafkaConsumer(
        settings.topic(topic),
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=f"bench-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    while not consumer.assignment():
        await consumer.getmany(timeout_ms=100)
    return consumer


async def _drain(consumer: AIOKafkaConsumer, count: int) -> None:
    try:
        seen = 0
        while seen < count:
            batch = await consumer.getmany(timeout_ms=1000)
            seen += sum(len(records) for records in batch.values())
    finally:
        await consumer.stop()


async def raw_produce_consume(settings: Settings, payloads: list[bytes]) -> float:
    await _create(settings, "bench.raw")
    consumer = await _started_consumer(settings, "bench.raw")
    start = time.perf_counter()
    await asyncio.gather(_produce(settings, "bench.raw", payloads), _drain(consumer, len(payloads)))
    return len(payloads) / (time.perf_counter() - start)


async def faststream_hop(settings: Settings, payloads: list[bytes]) -> float:
    """Messages per second through one hop of ours in a process of its own (:mod:`bench.hop`),
    produced and read back by this process as :func:`raw_produce_consume` does."""
    await _create(settings, *hop.TOPICS)
    process = hop.start(settings)
    try:
        consumer = await _started_consumer(settings, hop.OUT)
        try:
            await _produce(settings, MESSAGES_INBOUND.name, payloads[:1])  # the hop joined its group
            await hop.read(consumer, 1, within=120)
            start = time.perf_counter()
            await asyncio.gather(
                _produce(settings, MESSAGES_INBOUND.name, payloads), hop.read(consumer, len(payloads))
            )
            return len(payloads) / (time.perf_counter() - start)
        finally:
            await consumer.stop()
    finally:
        process.terminate()
        process.wait(30)


def moderation_throughput(repeat: int = 60) -> dict[str, float]:
    """Messages per second on one core: the full decision (word lists, deduce, policy),
    checked against the absolute goal of 2,000 messages/s on one core; next to it the
    floor of any scoring, tokenising the same texts (a ratio to it says how much of
    the time is spent deciding, not whether that is too slow)."""
    from buurtalert.moderation.rules import PRIVACY, scorer_for, tokenise
    from buurtalert.moderation.training import load_corpus

    texts = [item.text for item in load_corpus()] * repeat
    scorer = scorer_for()
    PRIVACY.load()
    start = time.perf_counter()
    for text in texts:
        tokenise(text)
    baseline = len(texts) / (time.perf_counter() - start)
    start = time.perf_counter()
    for n, text in enumerate(texts):
        scorer.decide(str(n), text)
    ours = len(texts) / (time.perf_counter() - start)
    print(f"moderation, {len(texts)} messages on one core")
    print(f"  baseline tokenise only                : {baseline:10.0f} msg/s")
    print(f"  full decision (rules, model, policy)  : {ours:10.0f} msg/s   (goal: at least 2000)")
    print(f"  ratio decision / tokenise             : {ours / baseline:10.3f}")
    return {
        "messages": len(texts),
        "tokenise_per_s": round(baseline),
        "decide_per_s": round(ours),
        "ratio_decide_to_tokenise": round(ours / baseline, 4),
    }


async def main(count: int) -> dict[str, object]:
    infra = provide_infrastructure()
    payloads = _messages(count)
    size = len(payloads[0])
    print(f"kafka throughput, {count} messages of {size} bytes, {PARTITIONS} partitions ({infra.origin})")
    raws, hops = [], []
    for _ in range(ROUNDS):  # in turn, each round on topics of its own
        settings = isolated_settings(infra)
        raws.append(await raw_produce_consume(settings, payloads))
        hops.append(await faststream_hop(settings, payloads))
        await delete_prefixed_topics(settings)
    raw, ours = statistics.median(raws), statistics.median(hops)
    results: dict[str, object] = {
        "kafka": {
            "messages": count,
            "rounds": ROUNDS,
            "raw_aiokafka_produce_consume_per_s": round(raw),
            "faststream_hop_per_s": round(ours),
            "ratio_hop_to_raw": round(ours / raw, 3),
            "raw_rounds_per_s": [round(r) for r in raws],
            "hop_rounds_per_s": [round(h) for h in hops],
        }
    }
    print(f"  baseline raw aiokafka produce→consume : {raw:10.0f} msg/s (median of {raws})")
    print(f"  one hop of ours                       : {ours:10.0f} msg/s (median of {hops})")
    print(f"  ratio hop / raw                       : {ours / raw:10.3f}")
    results["ingest"] = await webhook_benchmark(infra, Path(".local/bench/ingest"))
    report(results["ingest"])  # type: ignore[arg-type]
    print(f"the whole pipeline, four services as processes, against a raw relay chain ({infra.origin})")
    results["pipeline"] = await pipeline_benchmark(infra, Path(".local/bench/pipeline"))
    print("channels: one alert fanned out to the Graph API emulator")
    results["fanout"] = await fan_out_benchmark()
    results["fanout_through_kafka"] = await kafka_fan_out_benchmark(infra, Path(".local/bench/fanout"))
    infra.stop()
    results["moderation"] = moderation_throughput()
    results["store"] = await store_benchmark()
    return results


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=30_000)
    parser.add_argument("--output", type=Path, default=Path(".local/bench/results.json"))
    parser.add_argument("--report", type=Path, default=Path("docs/benchmarks.md"))
    args = parser.parse_args(argv)
    figures = asyncio.run(main(args.messages))
    figures["cpus"] = os.cpu_count() or 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"results written to {args.output}")
    checked = write(figures, args.report)
    if "store" in figures:
        write_section(figures["store"], args.report)  # type: ignore[arg-type]
    print(f"report written to {args.report} (chart {args.report.with_suffix('.svg')})")
    for goal in checked:
        print(
            f"  {'ok    ' if goal.met else 'MISSED'} {goal.benchmark}: {goal.value:g} (goal {goal.goal_text})"
        )
    failed = missed(checked)
    if failed:
        print(f"{len(failed)} goal(s) missed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run())

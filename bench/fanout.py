"""One alert fanned out to 10,000 opted-in recipients, against the Graph API emulator
(its own process) capped at a throughput tier, measured twice: through the WhatsApp
adapter alone, and through Kafka (``deliveries.whatsapp`` → the channels service as
a process, with its ledger, statuses and audit trail → the emulator).

The baseline is the cap itself: the figure is achieved rate / cap (goal at least
0.95), together with the emulator's count of rate-limit refusals (goal zero)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from aiokafka import AIOKafkaProducer
from pydantic import SecretStr

from buurtalert.channels.adapters.whatsapp import WhatsAppAdapter, WhatsAppConfig
from buurtalert.devkit.testing import (
    Infrastructure,
    delete_prefixed_topics,
    free_port,
    isolated_settings,
    provide_infrastructure,
    settings_environment,
)
from buurtalert.shared.admin import create_topics
from buurtalert.shared.models import Delivery, Destination, stable_id
from buurtalert.shared.mongo import mongo_client
from buurtalert.shared.topics import TOPICS

ROOT = Path(__file__).parents[1]

IN_FLIGHT = 64  # sends under way at once, as many deliveries in hand


def _deliveries(count: int) -> list[Delivery]:
    """As routing makes them for a group addressed as ``members``."""
    return [
        Delivery(
            id=stable_id("dlv", "msg_fanout", str(n)),
            message_id="msg_fanout",
            municipality="weert-demo",
            destination=Destination(
                group_id="boshoven-noord",
                channel="whatsapp",
                address=f"316{n:08d}",
                recipient_type="individual",
                recipient=f"p_{n:032x}",
            ),
            text="Let op: woninginbraken in Boshoven. Sluit ramen en deuren. Zie je iets verdachts? Bel 112.",
            rules=("authority_alert_area",),
        )
        for n in range(count)
    ]


def _start_emulator(cap: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    emulator = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "buurtalert"),
            "graph-emulator",
            "--port",
            str(port),
            "--messages-per-second",
            str(cap),
            "--log-level",
            "warning",
        ],
        env=os.environ.copy(),
    )
    return emulator, f"http://127.0.0.1:{port}"


async def _stats(client: httpx.AsyncClient, base: str) -> dict[str, Any]:
    for _ in range(100):
        try:
            return dict((await client.get(f"{base}/_emulator/stats")).json())
        except httpx.HTTPError:
            await asyncio.sleep(0.1)
    raise RuntimeError("the Graph API emulator did not start")


async def fan_out(cap: int, count: int) -> dict[str, Any]:
    emulator, base = _start_emulator(cap)
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            await _stats(client, base)
            config = WhatsAppConfig(
                phone_number_id="106540352242922",
                access_token=SecretStr("demo-graph-token"),
                graph_url=f"{base}/v21.0",
                messages_per_second=cap,
            )
            adapter = WhatsAppAdapter(config)  # with its own client, as channels runs it
            await adapter.start()
            queue = _deliveries(count)
            queue.reverse()
            failures = 0

            async def sender() -> None:
                nonlocal failures
                while queue:
                    item = queue.pop()
                    try:
                        await adapter.send(item, item.text)
                    except Exception:  # counted: a fan-out must not stop at one failure
                        failures += 1

            started = time.monotonic()
            await asyncio.gather(*(sender() for _ in range(IN_FLIGHT)))
            elapsed = time.monotonic() - started
            await adapter.close()
            stats = (await client.get(f"{base}/_emulator/stats")).json()
    finally:
        emulator.terminate()
        emulator.wait(10)
    achieved = stats["sent"] / elapsed
    return {
        "cap_per_s": cap,
        "recipients": count,
        "sent": stats["sent"],
        "seconds": round(elapsed, 2),
        "achieved_per_s": round(achieved, 1),
        "ratio_achieved_to_cap": round(achieved / cap, 3),
        "rate_limit_errors": stats["refused"].get("130429", 0) + stats["refused"].get("131056", 0),
        "failures": failures,
    }


async def fan_out_through_kafka(
    infra: Infrastructure, cap: int, count: int, workdir: Path, processes: int = 1
) -> dict[str, Any]:
    """The deliveries wait on ``deliveries.whatsapp`` (as routing left them); the
    channels service starts (``processes`` of it, sharing one business number) and
    sends them. The rate is the emulator's: messages accepted over the time from the
    first to the last."""
    emulator, base = _start_emulator(cap)
    workdir.mkdir(parents=True, exist_ok=True)
    data = yaml.safe_load((ROOT / "deploy/demo/weert/municipality.yaml").read_text())
    data["channels"] = {
        "whatsapp": {**data["channels"]["whatsapp"], "graph_url": f"{base}/v21.0", "messages_per_second": cap}
    }
    path = workdir / f"municipality-{cap}.yaml"
    path.write_text(yaml.safe_dump(data))
    # channels serves /health, /ready and /metrics: on a port of its own
    settings = isolated_settings(infra, municipality_file=path, http_port=free_port(), log_level="WARNING")
    await create_topics(settings, TOPICS)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=5)
    await producer.start()
    try:
        for item in _deliveries(count):
            await producer.send(
                settings.topic("deliveries.whatsapp"),
                item.model_dump_json().encode(),
                key=item.destination.key.encode(),
            )
        await producer.flush()
    finally:
        await producer.stop()
    # the demo file's secrets: refused under BUURTALERT_ENVIRONMENT=production, so "local" here
    env = {**os.environ, **settings_environment(settings), "BUURTALERT_ENVIRONMENT": "local"}
    channels = []
    for n in range(processes):
        log = (workdir / f"channels-{cap}-{processes}-{n}.log").open("wb")
        own = {**env, "BUURTALERT_HTTP_PORT": str(free_port())}  # /health, /metrics: a port each
        channels.append(
            subprocess.Popen(
                [str(Path(sys.executable).parent / "buurtalert"), "run", "channels"],
                env=own,
                stdout=log,
                stderr=log,
            )
        )
    started = time.monotonic()
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            stats = await _stats(client, base)
            deadline = started + 60 + 3 * count / cap
            while stats["sent"] < count and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
                stats = await _stats(client, base)
            elapsed = time.monotonic() - started
    finally:
        for process in channels:
            process.terminate()
        for process in channels:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:  # a slow shutdown must not lose the figures
                process.kill()
                process.wait(10)
        emulator.terminate()
        emulator.wait(10)
        client_db = mongo_client(settings)
        await client_db.drop_database(settings.database)
        await client_db.close()
        await delete_prefixed_topics(settings)
    span = stats["first_to_last_s"]
    achieved = (stats["sent"] - 1) / span if span else 0.0
    return {
        "cap_per_s": cap,
        "processes": processes,
        "recipients": count,
        "sent": stats["sent"],
        "seconds_from_start_to_last": round(elapsed, 2),
        "seconds_first_to_last_send": round(span, 2),
        "achieved_per_s": round(achieved, 1),
        "ratio_achieved_to_cap": round(achieved / cap, 3),
        "rate_limit_errors": stats["refused"].get("130429", 0) + stats["refused"].get("131056", 0),
    }


def _report(kind: str, count: int, cap: int, figures: dict[str, Any]) -> None:
    print(
        f"  {kind}: fan-out to {count} at cap {cap}/s: {figures['achieved_per_s']}/s "
        f"({figures['sent']} sent), "
        f"ratio {figures['ratio_achieved_to_cap']}, rate-limit errors {figures['rate_limit_errors']}"
    )


async def fan_out_benchmark(count: int = 10_000) -> dict[str, Any]:
    results = {}
    for cap in (80, 1000):
        figures = await fan_out(cap, count)
        results[f"cap_{cap}"] = figures
        _report("adapter alone", count, cap, figures)
    return results


async def kafka_fan_out_benchmark(
    infra: Infrastructure, workdir: Path, count: int = 10_000
) -> dict[str, Any]:
    results = {}
    for cap in (80, 1000):
        figures = await fan_out_through_kafka(infra, cap, count, workdir)
        results[f"cap_{cap}"] = figures
        _report("through Kafka and the channels service", count, cap, figures)
    # Scale-out: two channels processes share the number's tier by their partitions.
    figures = await fan_out_through_kafka(infra, 80, count, workdir, processes=2)
    results["cap_80_two_processes"] = figures
    _report("through Kafka, two channels processes", count, 80, figures)
    return results


if __name__ == "__main__":
    recipients = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    print(asyncio.run(fan_out_benchmark(recipients)))
    infrastructure = provide_infrastructure()
    try:
        print(asyncio.run(kafka_fan_out_benchmark(infrastructure, Path(".local/bench/fanout"), recipients)))
    finally:
        infrastructure.stop()

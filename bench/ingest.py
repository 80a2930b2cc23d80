"""Webhook throughput and response time of the ingest service, as a real process.

A light client (pre-built, signed HTTP/1.1 requests over keep-alive connections,
so the client spends little of the machine's two cores) posts WhatsApp webhooks:

* statuses: sent/delivered/read events, ``STATUSES_PER_CALL`` per call, as Meta
  batches them in a burst;
* messages: one text message per call, each a new message id;
* mixed: messages while a status burst runs, to see that statuses never stall them.

The baseline is the same client against a bare Starlette endpoint on uvicorn that
only reads the body and answers 200 (:mod:`bench.floor`), served by a process of its
own as ingest is: the HTTP floor of this machine. Goal: message webhooks at least
0.25 of that floor (ingest validates, signs, claims the id in the database and
publishes to Kafka for each; the floor does nothing)."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from buurtalert.devkit.testing import (
    Infrastructure,
    delete_prefixed_topics,
    free_port,
    isolated_settings,
    settings_environment,
)
from buurtalert.directory.model import load_directory
from buurtalert.directory.store import store_directory
from buurtalert.shared.admin import create_topics
from buurtalert.shared.mongo import Database, mongo_client
from buurtalert.shared.settings import Settings, load_municipality_config
from buurtalert.shared.topics import TOPICS
from tests.meta import signed, wa_message, wa_messages, wa_status, wa_statuses

ROOT = Path(__file__).parents[1]
SECRET = "demo-whatsapp-app-secret"
STATUSES_PER_CALL = 10
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "32"))


def _request(port: int, body: bytes) -> bytes:
    headers = signed(body, SECRET)
    head = f"POST /webhooks/whatsapp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode() + b"\r\n" + body


def status_calls(port: int, calls: int, tag: str) -> list[bytes]:
    return [
        _request(
            port,
            wa_statuses(
                *(
                    wa_status(f"wamid.{tag}{n}.{i // 3}", ("sent", "delivered", "read")[i % 3])
                    for i in range(STATUSES_PER_CALL)
                )
            ),
        )
        for n in range(calls)
    ]


def message_calls(port: int, calls: int, tag: str) -> list[bytes]:
    return [
        _request(
            port,
            wa_messages(
                wa_message(
                    "31600000002",
                    f"wamid.{tag}{n}",
                    group_id="120363041234567890",
                    text={"body": f"Verdachte man met rode jas bij de school, 112 is gebeld ({n})"},
                )
            ),
        )
        for n in range(calls)
    ]


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    return status


async def drive(port: int, requests: list[bytes], connections: int = CONNECTIONS) -> dict[str, Any]:
    """Send every request over ``connections`` keep-alive connections; per-call latency."""
    queue = list(reversed(requests))
    latencies: list[float] = []
    failures = 0

    async def worker() -> None:
        nonlocal failures
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while queue:
                request = queue.pop()
                started = time.perf_counter()
                writer.write(request)
                status = await _read_response(reader)
                latencies.append(time.perf_counter() - started)
                failures += status != 200
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "calls": len(requests),
        "calls_per_s": len(requests) / elapsed,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99) - 1],
        "failures": failures,
    }


def _start_floor(port: int) -> subprocess.Popen[bytes]:
    """The bare-HTTP floor (:mod:`bench.floor`) in a process of its own."""
    return subprocess.Popen([sys.executable, "-m", "bench.floor", str(port)], cwd=ROOT)


async def _listening(port: int, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.2)
    raise RuntimeError(f"nothing listens on port {port}")


async def _start_ingest(infra: Infrastructure, workdir: Path) -> tuple[Settings, subprocess.Popen[bytes]]:
    data = yaml.safe_load((ROOT / "deploy/demo/weert/municipality.yaml").read_text())
    data["ingest"]["email"] = {"smtp_port": None, "imap": []}
    path = workdir / "municipality.yaml"
    path.write_text(yaml.safe_dump(data))
    settings = isolated_settings(infra, municipality_file=path, http_port=free_port(), log_level="WARNING")
    await create_topics(settings, TOPICS)
    client = mongo_client(settings)
    key = load_municipality_config(path).pseudonym_key
    await store_directory(
        Database(client[settings.database], "directory"),
        load_directory(ROOT / "deploy/demo/weert/directory.yaml").pseudonymised(key),
    )
    await client.close()
    # the demo file's secrets: refused under BUURTALERT_ENVIRONMENT=production, so "local" here
    env = {**os.environ, **settings_environment(settings), "BUURTALERT_ENVIRONMENT": "local"}
    log = (workdir / "ingest.log").open("wb")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "buurtalert"), "run", "ingest"], env=env, stdout=log, stderr=log
    )
    await _listening(settings.http_port)
    await asyncio.sleep(2.0)  # the consumers of ingest.media join their group
    return settings, proc


async def webhook_benchmark(infra: Infrastructure, workdir: Path, calls: int = 2000) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    floor_port = free_port()
    floor = _start_floor(floor_port)
    try:
        await _listening(floor_port)
        await drive(floor_port, status_calls(floor_port, 200, "warm"))
        floor_statuses = await drive(floor_port, status_calls(floor_port, calls, "f"))
        floor_messages = await drive(floor_port, message_calls(floor_port, calls, "f"))
    finally:
        floor.terminate()
        floor.wait(10)

    settings, proc = await _start_ingest(infra, workdir)
    port = settings.http_port
    try:
        await drive(port, message_calls(port, 200, "warm") + status_calls(port, 200, "warm"))
        statuses = await drive(port, status_calls(port, calls, "s"))
        messages = await drive(port, message_calls(port, calls, "m"))
        burst = asyncio.create_task(drive(port, status_calls(port, calls * 2, "b"), connections=12))
        mixed_messages = await drive(port, message_calls(port, calls // 4, "x"), connections=4)
        mixed_statuses = await burst
    finally:
        proc.terminate()
        proc.wait(30)
        await delete_prefixed_topics(settings)

    def summary(run: dict[str, Any], events_per_call: int, floor_run: dict[str, Any]) -> dict[str, Any]:
        return {
            "events_per_s": round(run["calls_per_s"] * events_per_call),
            "calls_per_s": round(run["calls_per_s"]),
            "p50_ms": round(run["p50_ms"], 1),
            "p99_ms": round(run["p99_ms"], 1),
            "failures": run["failures"],
            "floor_calls_per_s": round(floor_run["calls_per_s"]),
            "ratio_to_floor": round(run["calls_per_s"] / floor_run["calls_per_s"], 3),
        }

    return {
        "connections": CONNECTIONS,
        "statuses": {
            **summary(statuses, STATUSES_PER_CALL, floor_statuses),
            "statuses_per_call": STATUSES_PER_CALL,
        },
        "messages": summary(messages, 1, floor_messages),
        "messages_during_status_burst": {
            "messages_p50_ms": round(mixed_messages["p50_ms"], 1),
            "messages_p99_ms": round(mixed_messages["p99_ms"], 1),
            "messages_per_s": round(mixed_messages["calls_per_s"]),
            "statuses_per_s": round(mixed_statuses["calls_per_s"] * STATUSES_PER_CALL),
            "failures": mixed_messages["failures"] + mixed_statuses["failures"],
        },
    }


def report(figures: dict[str, Any]) -> None:
    s, m, x = figures["statuses"], figures["messages"], figures["messages_during_status_burst"]
    print(f"ingest webhooks, {figures['connections']} keep-alive connections")
    print(
        f"  statuses ({s['statuses_per_call']}/call)  : {s['events_per_s']:8} events/s  "
        f"p50 {s['p50_ms']} ms  p99 {s['p99_ms']} ms  "
        f"({s['calls_per_s']} calls/s; bare HTTP floor {s['floor_calls_per_s']}, "
        f"ratio {s['ratio_to_floor']})"
    )
    print(
        f"  messages (1/call)    : {m['events_per_s']:8} events/s  "
        f"p50 {m['p50_ms']} ms  p99 {m['p99_ms']} ms  "
        f"(bare HTTP floor {m['floor_calls_per_s']} calls/s, ratio {m['ratio_to_floor']})"
    )
    print(
        f"  messages during a status burst: {x['messages_per_s']} msg/s, p50 {x['messages_p50_ms']} ms, "
        f"p99 {x['messages_p99_ms']} ms, while {x['statuses_per_s']} statuses/s"
    )
    print(json.dumps(figures))

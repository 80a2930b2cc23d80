"""The whole pipeline against a raw relay chain with the same number of hops, on the
same broker, in the same run.

* ours: ingest, moderation, routing and channels as processes of their own (as
  ``make run`` starts them); web reports posted to ingest's ``/reports`` by
  ``CLIENTS`` concurrent clients; each counted when its email reaches an SMTP sink
  (the regiegroep of the report's district). Each report is a distinct event (its own
  street), so none is merged into another's incident.
* baseline: the same number of Kafka hops (``HOPS``: messages.inbound → approved →
  deliveries.email, each consumed by a process of its own) relayed by raw aiokafka
  processes (:mod:`bench.relay`), messages produced by this process and counted by a
  consumer in it. Nothing validated, stored or sent: the floor of any pipeline here.

Figures: throughput (messages/s, ratio ours / baseline; goal ≥ 0.5); latency from the
scheduled post to delivery under open-loop load at 10% and 50% of our measured
capacity (p50, p99, max) against the relay chain's latency at the same rate plus one
HTTP request to a bare endpoint (goal p50 ≤ 2×, p99 ≤ 3×); cost growth: time per
message with 10× and 100× more documents already in the database (goal ≤ 1.2× the
empty run).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import httpx
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiosmtpd.controller import Controller

from bench.ingest import _listening, _start_floor
from bench.store import analyze, postgresql_url
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
from buurtalert.shared.models import stable_id, utcnow
from buurtalert.shared.mongo import Database, mongo_client
from buurtalert.shared.settings import Settings, load_municipality_config
from buurtalert.shared.topics import deployment_topics

ROOT = Path(__file__).parents[1]
BIN = Path(sys.executable).parent / "buurtalert"
SERVICES = ("ingest", "moderation", "routing", "channels")
HOPS = 3
CLIENTS = 16
TOKEN = "demo-token-buurtpreventie"
#: Buurtgroepen whose reports go to their district's regiegroep by email.
GROUPS = ("boshoven-noord", "leuken-west", "centrum-oost")
STREETS = ("Kerk", "Molen", "School", "Dorps", "Beuken", "Eiken", "Linden", "Akker", "Veld", "Hoeve")
PARTITIONS = 3


def report(n: int, tag: str, groups: tuple[str, ...] = GROUPS) -> dict[str, Any]:
    """Report ``n``: a distinct event (its own street) that moderation forwards."""
    street = f"{STREETS[n % len(STREETS)]}{tag}{n}straat"  # tags are letters and digits
    return {
        "report_id": f"{tag}-{n}",
        "group": groups[n % len(groups)],
        "reporter": f"+31 6 {10_000_000 + n % 90_000_000}",
        "text": f"Verdachte man met rode jas probeert autodeuren bij de {street}, 112 gebeld. [{tag}-{n}]",
    }


# --- the SMTP sink: when each report's email arrived ---------------------------------


TAG = re.compile(r"\[([A-Za-z0-9]+-[0-9]+)\]")


@dataclass
class Arrivals:
    at: dict[str, float] = field(default_factory=dict)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        body = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        text = str(body.get_body(preferencelist=("plain",)).get_content())  # type: ignore[union-attr]
        # the report's own tag ("[run-12]"), not the brackets of the lines we add below it
        # (a regiegroep's "UITKOMST 3FA9C1 ... [toelichting]")
        found = TAG.search(text)
        if found:
            self.at.setdefault(found.group(1), time.perf_counter())
        return "250 OK"


# --- our pipeline, as processes ------------------------------------------------------


@dataclass
class Pipeline:
    settings: Settings
    processes: list[subprocess.Popen[bytes]]
    sink: Controller
    arrivals: Arrivals
    #: Each process's HTTP port (its /metrics; ingest's also takes reports), as ``processes``.
    ports: list[int] = field(default_factory=list)

    def ingest_ports(self) -> list[int]:
        return [port for n, port in enumerate(self.ports) if SERVICES[n % len(SERVICES)] == "ingest"]

    def stop(self) -> None:
        for proc in self.processes:
            proc.terminate()
        for proc in self.processes:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.sink.stop()

    async def dispose(self) -> None:
        """Stop it, and remove its database and topics."""
        self.stop()
        client = mongo_client(self.settings)
        await client.drop_database(self.settings.database)
        await client.close()
        await delete_prefixed_topics(self.settings)


#: Districts added to the demo directory for the scale-out run, each with a buurtgroep
#: and a regiegroep by email: enough keys to spread over the partitions (three demo
#: districts are three keys, which two processes need not share at all).
WIJKEN = tuple(f"wijk-{n:02d}" for n in range(1, 25))
WIJK_GROUPS = tuple(f"{wijk}-buurt" for wijk in WIJKEN)


def _with_wijken(directory: dict[str, Any]) -> dict[str, Any]:
    for wijk in WIJKEN:
        directory["districts"].append({"id": wijk, "name": wijk.title(), "neighbours": []})
        directory["groups"] += [
            {"id": f"{wijk}-buurt", "name": f"Buurtpreventie {wijk}", "kind": "buurtgroep", "district": wijk,
             "channel": "email", "address": f"{wijk}-buurt@lists.weert-demo.buurtalert.test"},
            {"id": f"{wijk}-regie", "name": f"Regiegroep {wijk}", "kind": "regiegroep", "district": wijk,
             "channel": "email", "address": f"regie-{wijk}@lists.weert-demo.buurtalert.test"},
        ]  # fmt: skip
    return directory


async def start_pipeline(
    infra: Infrastructure, workdir: Path, *, copies: int = 1, wijken: bool = False
) -> Pipeline:
    """The four services (``copies`` processes of each, sharing their consumer groups);
    ``wijken``: with the districts of :data:`WIJKEN` in the directory."""
    workdir.mkdir(parents=True, exist_ok=True)
    arrivals = Arrivals()
    sink = Controller(arrivals, hostname="127.0.0.1", port=free_port())
    sink.start()
    data = yaml.safe_load((ROOT / "deploy/demo/weert/municipality.yaml").read_text())
    data["channels"]["email"]["port"] = sink.port
    data["ingest"]["email"] = {"smtp_port": None, "imap": []}
    for client in data["api_clients"]:
        client["rate_per_minute"] = 100_000
        if wijken:
            client["districts"] = [*client["districts"], *WIJKEN]
    path = workdir / "municipality.yaml"
    path.write_text(yaml.safe_dump(data))
    settings = isolated_settings(infra, municipality_file=path, http_port=free_port(), log_level="WARNING")
    await create_topics(settings, deployment_topics(load_municipality_config(path).channels))
    client = mongo_client(settings)
    key = load_municipality_config(path).pseudonym_key
    for municipality in ("weert", "bocholt"):
        source = ROOT / "deploy/demo" / municipality / "directory.yaml"
        if wijken and municipality == "weert":
            source = workdir / "directory.yaml"
            source.write_text(
                yaml.safe_dump(
                    _with_wijken(yaml.safe_load((ROOT / "deploy/demo/weert/directory.yaml").read_text()))
                )
            )
        directory = load_directory(source)
        await store_directory(Database(client[settings.database], "directory"), directory.pseudonymised(key))
    await client.close()
    processes, ports = [], []
    for copy in range(copies):
        for name in SERVICES:
            port = settings.http_port if name == "ingest" and copy == 0 else free_port()
            env = {**os.environ, **settings_environment(settings.model_copy(update={"http_port": port}))}
            log = (workdir / f"{name}-{copy}.log").open("wb")
            processes.append(subprocess.Popen([str(BIN), "run", name], env=env, stdout=log, stderr=log))
            ports.append(port)
    pipeline = Pipeline(settings, processes, sink, arrivals, ports)
    try:
        for port in pipeline.ingest_ports():
            await _listening(port, within=120)
        await all_ready(pipeline)
        await warm_up(pipeline, workdir)
    except BaseException:
        pipeline.stop()
        raise
    return pipeline


async def all_ready(pipeline: Pipeline, within: float = 240.0) -> None:
    """Every process answers /ready (its consumers hold partitions): a process still
    loading would otherwise leave its share to the others."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=5) as http:
        for port in pipeline.ports:
            while True:
                try:
                    if (await http.get(f"http://127.0.0.1:{port}/ready")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the process on port {port} was not ready within {within:.0f} s")
                await asyncio.sleep(0.5)


async def warm_up(pipeline: Pipeline, workdir: Path) -> None:
    """Every service consuming: a few reports through, end to end."""
    async with httpx.AsyncClient(timeout=30) as http:
        await post_all(http, pipeline.settings.http_port, [report(n, "warm") for n in range(6)])
    deadline = time.monotonic() + 180
    while sum(k.startswith("warm-") for k in pipeline.arrivals.at) < 6:
        if time.monotonic() > deadline:
            logs = "\n".join(p.read_text(errors="replace")[-2000:] for p in sorted(workdir.glob("*.log")))
            raise RuntimeError(f"the pipeline did not deliver the warm-up reports\n{logs}")
        await asyncio.sleep(0.2)


#: Posts ingest answered 503 ("temporarily unavailable, please retry"), retried as a client would.
UNAVAILABLE = {"answers": 0}


async def post(http: httpx.AsyncClient, port: int, body: dict[str, Any]) -> None:
    for _ in range(20):
        response = await http.post(
            f"http://127.0.0.1:{port}/reports", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        if response.status_code in (200, 202):
            return
        if response.status_code != 503:
            raise RuntimeError(f"ingest answered {response.status_code}: {response.text}")
        UNAVAILABLE["answers"] += 1
        await asyncio.sleep(0.5)
    raise RuntimeError("ingest answered 503 twenty times in a row")


async def post_all(http: httpx.AsyncClient, port: int | list[int], reports: list[dict[str, Any]]) -> None:
    """Post every report with ``CLIENTS`` clients; with several ingest ports, the clients
    take turns among them (as a load balancer in front of ingest's processes would)."""
    queue = list(reversed(reports))
    targets = port if isinstance(port, list) else [port]

    async def client(n: int) -> None:
        while queue:
            await post(http, targets[n % len(targets)], queue.pop())

    await asyncio.gather(*(client(n) for n in range(CLIENTS)))


async def wait_for(arrivals: dict[str, float], keys: set[str], within: float) -> None:
    deadline = time.monotonic() + within
    while not keys <= arrivals.keys():
        if time.monotonic() > deadline:
            missing = len(keys - arrivals.keys())
            raise RuntimeError(f"{missing} of {len(keys)} messages not delivered within {within:.0f} s")
        await asyncio.sleep(0.05)


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time a process used so far (Linux ``/proc``)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_busy_seconds() -> float:
    """CPU time every process on the machine used so far, all cores together."""
    user, nice, system, _idle, _iowait, irq, softirq, steal, *_ = (
        int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    )
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _pid_file(name: str) -> int | None:
    local = Path(os.environ.get("BUURTALERT_LOCAL_DIR", ROOT / ".local"))
    try:
        return int((local / name / f"{name}.pid").read_text().split()[0])
    except (OSError, ValueError):
        return None


@dataclass
class CpuMeter:
    """Where the machine's CPU went while the pipeline worked: each service's processes,
    this benchmark process (the 16 HTTP clients and the SMTP sink), Kafka, FerretDB, and
    the rest of the machine (PostgreSQL's processes among it)."""

    processes: dict[str, list[int]]
    start: dict[str, float] = field(default_factory=dict)
    used: dict[str, float] = field(default_factory=dict)
    busy: float = 0.0
    machine: float = 0.0

    @classmethod
    def of(cls, pipeline: Pipeline) -> CpuMeter:
        parts: dict[str, list[int]] = {name: [] for name in SERVICES}
        copies = len(pipeline.processes) // len(SERVICES)
        for name, proc in zip(SERVICES * copies, pipeline.processes, strict=True):
            parts[name].append(proc.pid)
        parts["load generator and SMTP sink"] = [os.getpid()]
        for name in ("kafka", "ferretdb"):
            pid = _pid_file(name)
            if pid is not None:
                parts[name] = [pid]
        return cls(parts)

    def __enter__(self) -> CpuMeter:
        self.start = {k: sum(map(_cpu_seconds, pids)) for k, pids in self.processes.items()}
        self.busy = _machine_busy_seconds()
        return self

    def __exit__(self, *_: object) -> None:
        self.used = {k: sum(map(_cpu_seconds, pids)) - self.start[k] for k, pids in self.processes.items()}
        self.machine = _machine_busy_seconds() - self.busy

    def per_message_ms(self, count: int) -> dict[str, float]:
        shares = {k: round(1000 * v / count, 2) for k, v in self.used.items()}
        rest = max(0.0, self.machine - sum(self.used.values()))
        shares["rest of the machine"] = round(1000 * rest / count, 2)
        shares["total"] = round(1000 * self.machine / count, 2)
        return shares


async def pipeline_throughput(
    pipeline: Pipeline, count: int, tag: str, groups: tuple[str, ...] = GROUPS
) -> float:
    """Messages per second from the first post to the last delivery."""
    reports = [report(n, tag, groups) for n in range(count)]
    start = time.perf_counter()
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=CLIENTS)) as http:
        await post_all(http, pipeline.ingest_ports(), reports)
    keys = {r["report_id"] for r in reports}
    await wait_for(pipeline.arrivals.at, keys, within=120 + count / 5)
    return count / (max(pipeline.arrivals.at[k] for k in keys) - start)


COUNTED = re.compile(
    r"^(?:faststream_(received)|buurtalert_(published))_messages_total"
    r'\{[^}]*(?:handler|topic)="([^"]+)"[^}]*\} ([0-9.e+]+)$',
    re.M,
)


async def handled(port: int) -> float:
    """The work a process did so far, from its /metrics: messages it consumed from the
    pipeline's topics (its retry topic left out) or, for ingest, published on
    messages.inbound (by its Sender)."""
    async with httpx.AsyncClient(timeout=10) as http:
        text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    return sum(
        float(n)
        for received, published, topic, n in COUNTED.findall(text)
        if (received and not topic.endswith(".retry")) or (published and topic.endswith("messages.inbound"))
    )


async def scale_out(infra: Infrastructure, workdir: Path, count: int) -> dict[str, Any]:
    """Two processes of each service (consumer groups; ingest's behind alternating
    clients): each report delivered, and each process's share of its service's work."""
    pipeline = await start_pipeline(infra, workdir, copies=2, wijken=True)
    try:
        before = [await handled(port) for port in pipeline.ports]
        per_s = await pipeline_throughput(pipeline, count, "two", WIJK_GROUPS)
        after = [await handled(port) for port in pipeline.ports]
    finally:
        await pipeline.dispose()
    shares: dict[str, list[float]] = {}
    for n, name in enumerate(SERVICES * 2):
        shares.setdefault(name, []).append(after[n] - before[n])
    smallest = {name: round(min(done) / sum(done), 3) if sum(done) else 0.0 for name, done in shares.items()}
    return {"processes_per_service": 2, "per_s": round(per_s, 1), "smallest_share": smallest}


async def pipeline_latency(pipeline: Pipeline, rate: float, seconds: float, tag: str) -> list[float]:
    """Open loop: report n posted at start + n / rate whatever happened before; its
    latency from that scheduled moment to its delivery, in milliseconds."""
    count = max(20, int(rate * seconds))
    scheduled: dict[str, float] = {}
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=200)) as http:
        start = time.perf_counter() + 0.2
        tasks = []
        for n in range(count):
            body = report(n, tag)
            at = start + n / rate
            scheduled[body["report_id"]] = at
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(post(http, pipeline.settings.http_port, body)))
        await asyncio.gather(*tasks)
    await wait_for(pipeline.arrivals.at, set(scheduled), within=120 + count / 5)
    return [(pipeline.arrivals.at[k] - at) * 1000 for k, at in scheduled.items()]


# --- the baseline: a raw relay chain --------------------------------------------------


@dataclass
class Chain:
    settings: Settings
    topics: list[str]
    relays: list[subprocess.Popen[bytes]]
    producer: AIOKafkaProducer
    consumer: AIOKafkaConsumer
    arrivals: dict[str, float] = field(default_factory=dict)
    reader: asyncio.Task[None] | None = None

    async def read(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=200)
            now = time.perf_counter()
            for records in batch.values():
                for record in records:
                    self.arrivals.setdefault(json.loads(record.value)["report_id"], now)

    async def send(self, body: dict[str, Any]) -> None:
        await self.producer.send(self.topics[0], json.dumps(body).encode(), key=body["group"].encode())

    async def stop(self) -> None:
        if self.reader:
            self.reader.cancel()
        for relay in self.relays:
            relay.terminate()
        for relay in self.relays:
            relay.wait(30)
        await self.producer.stop()
        await self.consumer.stop()
        await delete_prefixed_topics(self.settings)


async def start_chain(infra: Infrastructure) -> Chain:
    settings = isolated_settings(infra)
    topics = [settings.topic(f"bench.relay.{n}") for n in range(HOPS + 1)]
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in topics])
    finally:
        await admin.close()
    relays = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.relay",
                settings.kafka_bootstrap,
                topics[n],
                topics[n + 1],
                f"relay-{n}-{uuid.uuid4().hex[:6]}",
            ],
            cwd=ROOT,
        )
        for n in range(HOPS)
    ]
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, enable_idempotence=True, acks="all", linger_ms=5
    )
    consumer = AIOKafkaConsumer(
        topics[-1],
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=f"bench-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
    )
    await producer.start()
    await consumer.start()
    chain = Chain(settings, topics, relays, producer, consumer)
    chain.reader = asyncio.create_task(chain.read())
    for n in range(20):  # every relay has joined its group and holds its partitions
        await chain.send(report(n, "warm"))
    deadline = time.monotonic() + 120
    while sum(k.startswith("warm-") for k in chain.arrivals) < 20:
        if time.monotonic() > deadline:
            raise RuntimeError("the relay chain did not pass the warm-up messages")
        await asyncio.sleep(0.1)
    return chain


async def chain_throughput(chain: Chain, count: int, tag: str) -> float:
    reports = [report(n, tag) for n in range(count)]
    start = time.perf_counter()
    for body in reports:
        await chain.send(body)
    keys = {r["report_id"] for r in reports}
    await wait_for(chain.arrivals, keys, within=120)
    return count / (max(chain.arrivals[k] for k in keys) - start)


async def chain_latency(chain: Chain, rate: float, seconds: float, tag: str) -> list[float]:
    count = max(20, int(rate * seconds))
    scheduled = {}
    start = time.perf_counter() + 0.2
    for n in range(count):
        body = report(n, tag)
        at = start + n / rate
        scheduled[body["report_id"]] = at
        delay = at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await chain.send(body)
    await wait_for(chain.arrivals, set(scheduled), within=120)
    return [(chain.arrivals[k] - at) * 1000 for k, at in scheduled.items()]


async def http_request_ms(requests: int = 300) -> list[float]:
    """One HTTP request to a bare endpoint in a process of its own (:mod:`bench.floor`)."""
    port = free_port()
    floor = _start_floor(port)
    try:
        await _listening(port)
        times = []
        async with httpx.AsyncClient(timeout=30) as http:
            for _ in range(requests):
                start = time.perf_counter()
                await http.post(f"http://127.0.0.1:{port}/webhooks/whatsapp", content=b"{}")
                times.append((time.perf_counter() - start) * 1000)
        return times
    finally:
        floor.terminate()
        floor.wait(10)


# --- the data already there: 10x and 100x -------------------------------------------


def _history(messages: int, start: int) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """What ``messages`` earlier messages left behind, in batches per collection, in the
    shapes the services write: raw inputs and claims, audit entries (four stages each),
    incidents, their reports and the groups they told, group rates, delivery claims,
    memberships (members who left)."""
    now = utcnow() - timedelta(days=3)
    step = 2000
    for first in range(start, start + messages, step):
        ids = [f"msg_hist_{n:09d}" for n in range(first, min(first + step, start + messages))]
        yield (
            "raw_inputs",
            [
                {
                    "_id": f"raw_{m}",
                    "source": "web",
                    "body": b"x" * 200,
                    "content_type": "application/json",
                    "received_at": now,
                }
                for m in ids
            ],
        )
        yield "claims.ingest", [{"_id": m, "at": now} for m in ids]
        yield (
            "audit",
            [
                {
                    "_id": stable_id("aud", m, stage, ""),
                    "message_id": m,
                    "stage": stage,
                    "data": {"n": 1},
                    "at": now,
                }
                for m in ids
                for stage in ("ingest", "moderation", "routing", "deliveries.x")
            ],
        )
        yield (
            "incidents",
            [
                {
                    "_id": f"inc_{m}",
                    "municipality": "weert-demo",
                    "district": "boshoven",
                    "category": None,
                    "text": "oud",
                    "location": None,
                    "opened_at": now,
                    "last_seen": now,
                    "closed_at": now,
                    "reports": 1,
                }
                for m in ids
            ],
        )
        yield "incident_reports", [{"_id": m, "incident": f"inc_{m}", "at": now} for m in ids]
        told = "weert-demo/boshoven-regie"
        yield (
            "incident_tellings",
            [
                {"_id": f"inc_{m}|{told}", "incident": f"inc_{m}", "group": told, "message": m, "at": now}
                for m in ids
            ],
        )
        yield (
            "group_rates",  # ten messages counted per group and hour, an hour further back each ten
            [
                {"_id": f"{hour}:{m}", "group_hour": hour, "at": now}
                for n, m in enumerate(ids, first)
                for hour in [f"boshoven-noord:{now - timedelta(hours=n // 10):%Y%m%d%H}"]
            ],
        )
        yield (
            "deliveries",
            [
                {
                    "_id": f"dlv_{m}",
                    "message_id": m,
                    "channel": "email",
                    "group_id": "boshoven-regie",
                    "created_at": now,
                }
                for m in ids
            ],
        )
        # Members who left: the municipality's register grows with them.
        yield (
            "memberships",
            [
                {
                    "_id": f"weert-demo:p_{m}",
                    "municipality": "weert-demo",
                    "pseudonym": f"p_{m}",
                    "state": "left",
                    "groups": [],
                    "requested": [],
                    "address": None,
                    "consent_one_to_one": False,
                    "changed_at": now,
                }
                for m in ids
            ],
        )


async def seed(settings: Settings, messages: int, start: int, *, on_postgresql: bool) -> int:
    """Insert the history of ``messages`` earlier messages; the documents inserted. Then a
    local PostgreSQL is settled as one that grew over weeks would be (:func:`settle`)."""
    client = mongo_client(settings)
    db = client[settings.database]
    inserted = 0
    try:
        for name, docs in _history(messages, start):
            await db[name].insert_many(docs, ordered=False)
            inserted += len(docs)
    finally:
        await client.close()
    if on_postgresql:
        await asyncio.to_thread(settle)
    return inserted


def on_local_postgresql(infra: Infrastructure) -> bool:
    """Whether the database is FerretDB on the local stack's PostgreSQL (not containers)."""
    return infra.origin == "local stack (FerretDB on postgresql)"


def settle() -> None:
    """The local PostgreSQL's vacuum and statistics that autovacuum would have done long
    ago in a database that grew over weeks, and a checkpoint of the bulk load's writes,
    now rather than during the timing that follows (a probe: autovacuum worked on the
    seeded tables for about ten seconds after a seed of 1.2 million documents, half a run)."""
    analyze(postgresql_url(), checkpoint=True)


# --- the benchmark ---------------------------------------------------------------------


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50_ms": round(statistics.median(ordered), 1),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 1),
        "max_ms": round(ordered[-1], 1),
    }


async def pipeline_benchmark(infra: Infrastructure, workdir: Path, count: int = 1000) -> dict[str, Any]:
    results: dict[str, Any] = {"hops": HOPS, "messages": count}
    pipeline = await start_pipeline(infra, workdir)
    try:
        # The better of two runs: runs differ by up to a third on these machines (45
        # then 58-62 msg/s in one bench, 60 then 54 in the next), and capacity is what
        # the latency runs below take their loads from.
        with CpuMeter.of(pipeline) as meter:
            runs = [await pipeline_throughput(pipeline, count, tag) for tag in ("run", "again")]
        ours = max(runs)
        print(f"  whole pipeline ({HOPS} hops + HTTP, SMTP) : {ours:10.1f} msg/s (better of {runs})")
        cpu = meter.per_message_ms(2 * count)
        results["cpu_ms_per_message"] = cpu
        cores = os.cpu_count() or 1
        # The most this machine could carry if the pipeline had it to itself: its cores
        # over the CPU time one message cost everything that ran.
        results["cpu_ceiling_per_s"] = round(cores * 1000 / cpu["total"], 1) if cpu["total"] else None
        print(f"  CPU per message (ms): {cpu}")
        latencies = {}
        for share in (0.1, 0.5):
            rate = max(1.0, ours * share)
            latencies[share] = (
                rate,
                _percentiles(await pipeline_latency(pipeline, rate, 20, f"lat{share:.0%}"[:-1])),
            )
            print(f"  latency at {rate:.1f}/s: {latencies[share][1]}")
        # Cost growth: the same run with 10x and 100x the data a run leaves behind.
        # Each size's figure is the better of two runs, as the empty one's above: the
        # same estimate on both sides of the ratio.
        empty = ours
        growth: dict[str, Any] = {"empty_ms_per_message": round(1000 / empty, 3)}
        seeded = history = 0
        for factor in (10, 100):
            seeded += await seed(
                pipeline.settings, factor * count - history, history, on_postgresql=on_local_postgresql(infra)
            )
            history = factor * count
            per_s = max([await pipeline_throughput(pipeline, count, f"x{factor}{n}") for n in "ab"])
            growth[f"x{factor}_documents"] = seeded
            growth[f"x{factor}_ms_per_message"] = round(1000 / per_s, 3)
            growth[f"x{factor}_ratio"] = round(empty / per_s, 3)
            print(f"  with {seeded:,} documents there: {per_s:.1f} msg/s ({empty / per_s:.2f}x the time)")
        results["cost_growth"] = growth
    finally:
        await pipeline.dispose()
    # The baseline, alone on the machine as the pipeline was.
    chain = await start_chain(infra)
    try:
        raw = max([await chain_throughput(chain, count, tag) for tag in ("raw", "again")])  # as ours
        print(f"  raw relay chain ({HOPS} hops)            : {raw:10.1f} msg/s")
        results["throughput"] = {
            "raw_chain_per_s": round(raw, 1),
            "pipeline_per_s": round(ours, 1),
            "pipeline_runs_per_s": [round(r, 1) for r in runs],
            "ratio": round(ours / raw, 3),
        }
        http = _percentiles(await http_request_ms())
        results["latency"] = {"http_request": http}
        for share, (rate, mine) in latencies.items():
            base = _percentiles(await chain_latency(chain, rate, 20, f"rlat{share:.0%}"[:-1]))
            baseline = {k: round(base[k] + http[k], 1) for k in ("p50_ms", "p99_ms", "max_ms")}
            results["latency"][f"at_{share:.0%}"[:-1] + "pct"] = {
                "rate_per_s": round(rate, 1),
                "pipeline": mine,
                "baseline": baseline,
                "ratio_p50": round(mine["p50_ms"] / baseline["p50_ms"], 2),
                "ratio_p99": round(mine["p99_ms"] / baseline["p99_ms"], 2),
            }
            print(f"  latency at {rate:.1f}/s: pipeline {mine}, baseline {baseline}")
    finally:
        await chain.stop()
    results["scale_out"] = two = await scale_out(infra, workdir / "two", count)
    two["one_process_per_s"] = round(ours, 1)
    print(f"  two processes per service: {two}")
    results["unavailable_answers"] = UNAVAILABLE["answers"]
    return results

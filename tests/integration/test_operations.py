"""Operations on a real broker and database: a service's /health, /ready and /metrics
as a process, and the operator's commands (dlq, member, retention, status)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import SecretStr

from buurtalert.devkit.testing import free_port, settings_environment
from buurtalert.directory.model import load_directory
from buurtalert.directory.store import store_directory
from buurtalert.shared.collections import DIRECTORY
from buurtalert.shared.models import DeadLetter, utcnow
from buurtalert.shared.mongo import Database, Document, mongo_client
from buurtalert.shared.ops import (
    dead_letters,
    erase_member,
    export_member,
    format_status,
    purge,
    replay,
    status,
)
from buurtalert.shared.pseudonym import pseudonymise
from buurtalert.shared.settings import Settings, load_municipality_config
from tests.conftest import DEMO
from tests.support import BIN, ServiceProcess, eventually, wait_http

ADDRESS = "+31 6 12345678"
#: The forms the address is stored in: as typed, WhatsApp's digits, 00- and national form.
FORMS = ("+31 6 12345678", "31612345678", "0031612345678", "0612345678")


async def command(settings: Settings, *args: str) -> str:
    """What ``buurtalert ARGS`` prints, run against this test's broker and database."""
    return await asyncio.to_thread(
        lambda: (
            subprocess.run(
                [str(BIN), *args],
                env={**os.environ, **settings_environment(settings)},
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            ).stdout
        )
    )


async def get(url: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.get(url, timeout=5)


async def test_a_service_process_is_healthy_ready_once_consuming_and_counts_dead_letters(
    settings: Settings, tmp_path: Path
) -> None:
    """routing as a process: /health answers at once, /ready turns 200 once its
    consumers hold partitions and the database answers; after an unparseable message
    /metrics shows our dead-letter counter and FastStream's message counters."""
    process = ServiceProcess("routing", settings, tmp_path)
    process.start()
    base = f"http://127.0.0.1:{settings.http_port}"
    try:
        await wait_http(f"{base}/health")
        ready = await eventually(
            lambda: _status_is(f"{base}/ready", 200), timeout=90, what="routing to be ready"
        )
        assert ready["ready"] is True and ready["reasons"] == []
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
        await producer.start()
        try:
            garbage = b'{"not": "a message"}'
            await producer.send_and_wait(settings.topic("messages.approved"), garbage, key=b"g")
        finally:
            await producer.stop()

        async def counted() -> str | None:
            text = (await get(f"{base}/metrics")).text
            return text if 'buurtalert_dead_letters_total{service="routing"} 1.0' in text else None

        metrics = await eventually(counted, timeout=30, what="the dead letter to be counted")
        assert "faststream_received_messages_total" in metrics
        assert "trace_id=" in process.log(), "log lines carry the trace id of the message's span"
        assert "buurtalert_consumer_lag" in metrics or "# HELP buurtalert_consumer_lag" in metrics
    finally:
        process.stop()
        if "Traceback" in process.log():
            print(process.log()[-4000:])


async def test_ready_is_503_while_the_database_is_unreachable(settings: Settings, tmp_path: Path) -> None:
    """A service whose database does not answer is alive (/health 200) but not ready
    (/ready 503, naming the database)."""
    unreachable = settings.model_copy(
        update={"mongo_url": SecretStr(f"mongodb://127.0.0.1:{free_port()}/"), "http_port": free_port()}
    )
    process = ServiceProcess("routing", unreachable, tmp_path)
    process.start()
    base = f"http://127.0.0.1:{unreachable.http_port}"
    try:
        await wait_http(f"{base}/health", timeout=90)
        answer = await eventually(
            lambda: _status_is(f"{base}/ready", 503), timeout=30, what="/ready to answer 503"
        )
        assert "database unreachable" in answer["reasons"]
    finally:
        process.stop()


async def _status_is(url: str, code: int) -> dict[str, Any] | None:
    try:
        response = await get(url)
    except httpx.HTTPError:
        return None
    return dict(response.json()) if response.status_code == code else None


async def publish_dead_letter(settings: Settings, service: str, topic: str, payload: bytes, key: str) -> None:
    letter = DeadLetter(
        topic=settings.topic(topic),
        consumer=service,
        key=key,
        attempts=3,
        error="RuntimeError: provider down",
        payload=payload.decode(),
    )
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(
            settings.topic(f"{service}.deadletter"), letter.model_dump_json().encode(), key=key.encode()
        )
    finally:
        await producer.stop()


async def test_dlq_replay_twice_publishes_the_original_payload_once_with_its_key(settings: Settings) -> None:
    """Replaying a dead letter re-publishes its payload to its original topic with its
    key; replaying again (by id or --all) publishes nothing and says so."""
    await publish_dead_letter(settings, "routing", "messages.approved", b'{"replayed": true}', "boshoven")
    letters = await dead_letters(settings, "routing")
    assert len(letters) == 1 and letters[0].letter.key == "boshoven"

    first = await replay(settings, "routing", [letters[0].id])
    second = await replay(settings, "routing", None)
    assert "replayed to" in first[0], first
    assert second == [f"{letters[0].id}: already replayed, skipped"]
    assert await replay(settings, "routing", ["9:9"]) == ["9:9: no such dead letter on routing"]
    listed = await command(settings, "dlq", "list", "routing")
    assert listed.startswith("routing 0:0 (replayed) topic=") and "key=boshoven" in listed, listed

    consumer = AIOKafkaConsumer(
        settings.topic("messages.approved"),
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        records = []
        for _ in range(10):
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
    finally:
        await consumer.stop()
    assert [(r.key, r.value) for r in records] == [(b"boshoven", b'{"replayed": true}')]


def seeded(pseudonym: str) -> dict[str, list[Document]]:
    """One person's traces in every collection that can hold them, next to another person's."""
    now = utcnow()
    body = json.dumps({"entry": [{"changes": [{"value": {"messages": [{"from": "31612345678"}]}}]}]})
    return {
        "raw_inputs": [
            {"_id": "raw_1", "source": "whatsapp", "body": body.encode(), "received_at": now},
            {"_id": "raw_2", "source": "email", "body": b"From: jan@example.org\n\nHi", "received_at": now},
            {"_id": "raw_3", "source": "web", "body": b'{"reporter": "+31 6 1234 5678"}', "received_at": now},
        ],
        "contacts": [
            {"_id": f"weert:{pseudonym}", "address": "31612345678", "channel": "whatsapp"},
            {"_id": "weert:p_other", "address": "jan@example.org", "channel": "email"},
        ],
        "memberships": [{"_id": f"weert:{pseudonym}", "groups": ["centrum-west"], "address": "0612345678"}],
        "strikes": [{"_id": f"weert:{pseudonym}:m1", "member": pseudonym, "message_id": "m1", "at": now}],
        "held_deliveries": [
            {"_id": "d1", "due": now, "delivery": {"destination": {"address": "+31612345678"}}},
            {"_id": "d2", "due": now, "delivery": {"destination": {"address": "group@example.org"}}},
        ],
        "media": [
            {"_id": "med1", "message_id": "m1", "data": b"\x89PNG", "stored_at": now},
            {"_id": "med2", "message_id": "m2", "data": b"\x89PNG", "stored_at": now},
        ],
        "audit": [
            {"_id": "a1", "message_id": "m1", "stage": "ingest", "data": {"author": pseudonym}, "at": now},
            {"_id": "a2", "message_id": "m2", "stage": "ingest", "data": {"author": "p_other"}, "at": now},
        ],
        "incidents": [{"_id": "inc1", "text": "Bel 06 12345678 als je iets ziet", "opened_at": now}],
        "directories": [
            {"_id": "weert", "members": [{"id": pseudonym, "address": "+31 6 12345678"}, {"id": "p_other"}]}
        ],
    }


def as_text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def traces(documents: dict[str, list[Document]], needles: list[str]) -> list[str]:
    """Every (collection, _id) whose text contains a needle: the raw address, its
    normalised forms (with and without spaces) or the pseudonym."""
    found = []
    for name, docs in documents.items():
        for doc in docs:
            text = json.dumps(doc, default=as_text)
            flat = text.replace(" ", "").lower()
            if any(n.replace(" ", "").lower() in flat for n in needles):
                found.append(f"{name}:{doc['_id']}")
    return found


async def every_collection(settings: Settings) -> dict[str, list[Document]]:
    client = mongo_client(settings)
    try:
        db = client[settings.database]
        return {name: await db[name].find({}).to_list() for name in await db.list_collection_names()}
    finally:
        await client.close()


async def test_member_erase_leaves_no_trace_of_the_address_or_its_pseudonym_in_any_collection(
    settings: Settings,
) -> None:
    """After `member erase`, no document of any collection in the database contains the
    address in any stored form or its pseudonym; other people's documents stay, the
    records keep their entries scrubbed, and running it again changes nothing."""
    municipality = load_municipality_config(settings.municipality_file)
    pseudonym = pseudonymise(municipality.pseudonym_key, ADDRESS)
    client = mongo_client(settings)
    try:
        for name, docs in seeded(pseudonym).items():
            await client[settings.database][name].insert_many(docs)
    finally:
        await client.close()
    needles = [*FORMS, pseudonym]
    assert len(traces(await every_collection(settings), needles)) == 9  # all but the media

    exported = await export_member(settings, ADDRESS, municipality)
    assert exported["pseudonym"] == pseudonym
    assert {d["_id"] for d in exported["collections"]["media"]} == {"med1"}
    assert {d["_id"] for d in exported["collections"]["raw_inputs"]} == {"raw_1", "raw_3"}

    report = await erase_member(settings, ADDRESS, municipality)
    assert report["raw_inputs"] == "2 deleted" and report["audit"] == "1 scrubbed", report
    after = await every_collection(settings)
    assert traces(after, needles) == []
    remaining = {name: {d["_id"] for d in docs} for name, docs in after.items()}
    assert remaining["raw_inputs"] == {"raw_2"} and remaining["media"] == {"med2"}
    assert remaining["contacts"] == {"weert:p_other"} and remaining["audit"] == {"a1", "a2"}
    assert await erase_member(settings, ADDRESS, municipality) == {}


async def test_retention_purge_deletes_documents_past_their_period_and_keeps_newer_ones(
    settings: Settings,
) -> None:
    """Raw inputs older than 30 days, audit entries older than 365 days and claims older
    than 30 days go; newer ones and contacts (no date purge) stay; --dry-run only counts."""
    now = utcnow()
    old, recent = now - timedelta(days=400), now - timedelta(days=3)
    client = mongo_client(settings)
    try:
        db = client[settings.database]
        await db["raw_inputs"].insert_many(
            [{"_id": "old", "received_at": now - timedelta(days=31)}, {"_id": "new", "received_at": recent}]
        )
        await db["audit"].insert_many(
            [{"_id": "old", "at": old}, {"_id": "new", "at": now - timedelta(days=300)}]
        )
        await db["claims.ingest"].insert_many([{"_id": "old", "at": old}, {"_id": "new", "at": recent}])
        await db["contacts"].insert_one({"_id": "weert:p_x", "address": "x@example.org", "updated_at": old})
    finally:
        await client.close()
    municipality = load_municipality_config(settings.municipality_file)

    counted = await purge(settings, municipality, dry_run=True)
    assert counted["raw_inputs"] == 1 and counted["audit"] == 1 and counted["claims.ingest"] == 1
    assert "contacts" not in counted
    assert len((await every_collection(settings))["raw_inputs"]) == 2

    deleted = await purge(settings, municipality, dry_run=False)
    assert deleted["raw_inputs"] == 1 and deleted["audit"] == 1 and deleted["claims.ingest"] == 1
    left = {name: {d["_id"] for d in docs} for name, docs in (await every_collection(settings)).items()}
    assert left["raw_inputs"] == {"new"} and left["audit"] == {"new"} and left["claims.ingest"] == {"new"}
    assert left["contacts"] == {"weert:p_x"}


async def test_status_shows_records_waiting_their_age_and_dead_letters_per_service(
    settings: Settings,
) -> None:
    """Three records on messages.inbound with moderation's group committed after the
    first: moderation has 2 waiting, with an age; routing's dead letter is counted;
    `buurtalert status` prints a table a person can read."""
    topic = settings.topic("messages.inbound")
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        for _ in range(3):
            await producer.send_and_wait(topic, b"{}", key=b"k", partition=0)
    finally:
        await producer.stop()
    group = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=f"{settings.group_id('moderation')}.messages.inbound",
        enable_auto_commit=False,
    )
    await group.start()
    try:
        group.assign([TopicPartition(topic, 0)])
        await group.commit({TopicPartition(topic, 0): 1})
    finally:
        await group.stop()
    await publish_dead_letter(settings, "routing", "messages.approved", b"{}", "g")

    rows = {row.service: row for row in await status(settings)}
    assert rows["moderation"].lag == 2 and rows["moderation"].oldest_waiting is not None
    assert rows["routing"].dead_letters == 1 and rows["routing"].replayed == 0
    assert rows["ingest"].lag == 0 and rows["ingest"].dead_letters == 0

    printed = await command(settings, "status")
    assert printed.splitlines()[0].split()[:2] == ["service", "waiting"]
    moderation = next(line for line in printed.splitlines() if line.startswith("moderation"))
    assert moderation.split()[1] == "2"
    assert format_status([]).startswith("service")


async def test_member_erase_after_a_real_report_through_ingest_leaves_no_trace_in_any_collection(
    settings: Settings, tmp_path: Path
) -> None:
    """A web report whose reporter is the person, taken by the ingest service as a process
    (its raw input and the contact that reaches the author): after `member erase` no
    collection holds the address in any form or its pseudonym."""
    municipality = load_municipality_config(settings.municipality_file)
    client = mongo_client(settings)
    try:
        key = municipality.pseudonym_key
        directory = load_directory(DEMO / "weert" / "directory.yaml").pseudonymised(key)
        await store_directory(Database(client[settings.database], DIRECTORY), directory)
    finally:
        await client.close()
    process = ServiceProcess("ingest", settings, tmp_path)
    process.start()
    try:
        base = f"http://127.0.0.1:{settings.http_port}"
        await wait_http(f"{base}/health")
        await process.started()
        report = {
            "report_id": "erase-1",
            "group": "boshoven-noord",
            "reporter": ADDRESS,
            "text": "Verdachte man bij de Dorpstraat, 112 gebeld. Bel me terug op 06-12345678.",
        }
        async with httpx.AsyncClient() as http:
            answer = await http.post(
                f"{base}/reports", json=report, headers={"authorization": "Bearer demo-token-buurtpreventie"}
            )
        assert answer.status_code == 202, answer.text
        needles = [*FORMS, pseudonymise(municipality.pseudonym_key, ADDRESS)]
        await eventually(
            lambda: _with_traces(settings, needles, at_least=2), timeout=30, what="the report to be stored"
        )
    finally:
        process.stop()
    report_of_erasure = await erase_member(settings, ADDRESS, municipality)
    assert report_of_erasure == {"raw_inputs": "1 deleted", "contacts": "1 deleted"}, report_of_erasure
    assert traces(await every_collection(settings), needles) == []


async def _with_traces(settings: Settings, needles: list[str], *, at_least: int) -> list[str] | None:
    found = traces(await every_collection(settings), needles)
    return found if len(found) >= at_least else None


async def test_two_processes_of_a_service_are_both_ready_though_one_holds_no_retry_partition(
    settings: Settings, tmp_path: Path
) -> None:
    """routing's retry topic has one partition: of two routing processes one holds it and
    the other none. Both are ready (a replica that is never ready would stall a rollout)."""
    ports = [settings.http_port, free_port()]
    processes = [
        ServiceProcess("routing", settings.model_copy(update={"http_port": port}), tmp_path) for port in ports
    ]
    for n, process in enumerate(processes):
        process.log_path = tmp_path / f"routing-{n}.log"
        process.start()
    try:
        for port in ports:
            ready = await eventually(
                lambda port=port: _status_is(f"http://127.0.0.1:{port}/ready", 200),
                timeout=120,
                what="both routing processes ready",
            )
            assert ready["reasons"] == []
    finally:
        for process in processes:
            process.stop()

"""The operator's commands: ``buurtalert dlq``, ``member``, ``retention`` and ``status``.

The operator is a party of its own for the collection rules (``collections.OPERATOR``):
it reads every collection, deletes and scrubs documents for retention and erasure,
and owns ``dlq_replays``, the record of the dead letters it replayed. Each command's
work is an async function returning a report, so it can be checked without a shell.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import click
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from buurtalert.shared.collections import (
    COLLECTIONS,
    DLQ_REPLAYS,
    MEDIA,
    OPERATOR,
    Collection,
    Retention,
)
from buurtalert.shared.kafka.retry import decode_payload
from buurtalert.shared.models import DeadLetter, utcnow
from buurtalert.shared.mongo import Database, Document
from buurtalert.shared.observability import consumer_lags
from buurtalert.shared.pseudonym import normalise_address, pseudonymise
from buurtalert.shared.settings import MunicipalityConfig, Settings, load_municipality_config
from buurtalert.shared.topics import SERVICES, dead_letter_topic

ERASED = "[erased]"
#: A phone number as people write it: digits with spaces, dashes, dots or brackets between.
_NUMBER = re.compile(r"\+?\d[\d \-().]{6,}\d")

# ---------------------------------------------------------------- dead letters


@dataclass(frozen=True, slots=True)
class Letter:
    """A dead letter as it sits on its topic."""

    topic: str
    partition: int
    offset: int
    letter: DeadLetter

    @property
    def id(self) -> str:
        return f"{self.partition}:{self.offset}"

    @property
    def record_id(self) -> str:
        return f"{self.topic}:{self.partition}:{self.offset}"


async def read_topic_records(
    settings: Settings, topic: str, partitions: int
) -> list[tuple[int, int, bytes, int]]:
    """``(partition, offset, value, timestamp_ms)`` of every record now on ``topic``
    (of ``partitions`` partitions, as declared)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        if topic not in await consumer.topics():  # not created (yet): nothing on it
            return []
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
        for tp in tps:
            consumer.seek(tp, starts[tp])
        expected = sum(ends[tp] - starts[tp] for tp in tps)
        found: list[tuple[int, int, bytes, int]] = []
        deadline = asyncio.get_running_loop().time() + 30
        while len(found) < expected and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for tp, records in batch.items():
                found.extend(
                    (tp.partition, r.offset, r.value or b"", r.timestamp)
                    for r in records
                    if r.offset < ends[tp]
                )
        return sorted(found)
    finally:
        await consumer.stop()


async def dead_letters(settings: Settings, service: str) -> list[Letter]:
    """Every letter now on ``service``'s dead-letter topic, oldest first per partition."""
    declared = dead_letter_topic(service)
    topic = settings.topic(declared.name)
    return [
        Letter(topic, partition, offset, DeadLetter.model_validate_json(value))
        for partition, offset, value, _ in await read_topic_records(settings, topic, declared.partitions)
    ]


async def replayed_ids(db: Database, letters: Iterable[Letter]) -> set[str]:
    ids = [letter.record_id for letter in letters]
    cursor = db.read(DLQ_REPLAYS).find({"_id": {"$in": ids}}, projection={"_id": 1})
    return {doc["_id"] async for doc in cursor}


async def replay(settings: Settings, service: str, ids: Iterable[str] | None) -> list[str]:
    """Publish each chosen dead letter's original payload to its original topic with its
    key, once: a replayed letter is recorded in ``dlq_replays`` and skipped afterwards.
    ``ids`` None: every letter. Returns one line per letter considered."""
    letters = await dead_letters(settings, service)
    wanted = None if ids is None else set(ids)
    chosen = [letter for letter in letters if wanted is None or letter.id in wanted]
    missing = sorted((wanted or set()) - {c.id for c in chosen})
    report = [f"{i}: no such dead letter on {service}" for i in missing]
    db = Database.connect(settings, OPERATOR)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, enable_idempotence=True, acks="all"
    )
    await producer.start()
    try:
        done = await replayed_ids(db, chosen)
        for item in chosen:
            if item.record_id in done:
                report.append(f"{item.id}: already replayed, skipped")
                continue
            key = item.letter.key.encode() if item.letter.key is not None else None
            await producer.send_and_wait(item.letter.topic, decode_payload(item.letter), key=key)
            # Recorded after the broker confirmed: a crash in between replays it once more,
            # which the handlers' idempotency absorbs (at least once, as everywhere).
            await db.write(DLQ_REPLAYS).insert_one(
                {
                    "_id": item.record_id,
                    "topic": item.letter.topic,
                    "key": item.letter.key,
                    "replayed_at": utcnow(),
                }
            )
            report.append(f"{item.id}: replayed to {item.letter.topic} (key {item.letter.key})")
    finally:
        await producer.stop()
        await db.close()
    return report


# ---------------------------------------------------------------- members (GDPR)


@dataclass
class Person:
    """The forms in which one person's address can be stored."""

    address: str
    pseudonym: str
    needles: set[str] = field(default_factory=set)
    digits: str | None = None

    @classmethod
    def of(cls, address: str, municipality: MunicipalityConfig) -> Person:
        normal = normalise_address(address)
        person = cls(address, pseudonymise(municipality.pseudonym_key, address))
        person.needles = {address.strip().lower(), normal, person.pseudonym}
        if "@" not in normal and ":" not in normal and len(normal) >= 8:
            person.digits = normal
            person.needles |= {f"+{normal}", f"00{normal}"}
            for country in ("31", "32", "49"):
                if normal.startswith(country):
                    person.needles.add(f"0{normal[len(country) :]}")
        return person

    def in_text(self, text: str) -> bool:
        lowered = text.lower()
        if any(needle in lowered for needle in self.needles):
            return True
        if self.digits is not None:  # a number written with spaces, dashes or brackets
            national = [n for n in self.needles if n.startswith("0") and not n.startswith("00")]
            for run in _NUMBER.findall(text):
                digits = re.sub(r"\D", "", run)
                if self.digits in digits or any(n in digits for n in national):
                    return True
        return False

    def in_value(self, value: Any) -> bool:
        if isinstance(value, str):
            return self.in_text(value)
        if isinstance(value, bytes):
            return self.in_text(value.decode("utf-8", "replace"))
        if isinstance(value, dict):
            return any(self.in_value(k) or self.in_value(v) for k, v in value.items())
        if isinstance(value, list | tuple):
            return any(self.in_value(v) for v in value)
        return False

    def scrub(self, value: Any) -> Any:
        """``value`` with every form of the address replaced by ``[erased]``."""
        if isinstance(value, str | bytes):
            return ERASED if self.in_value(value) else value
        if isinstance(value, dict):
            return {k: self.scrub(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.scrub(v) for v in value]
        return value


def _erased_by_scrubbing(collection: Collection) -> bool:
    """Records and configuration keep their documents, with the person scrubbed out;
    everything else that mentions them is deleted."""
    return collection.retention in (Retention.RECORD, Retention.CONFIGURATION)


async def _mentions(db: Database, collection: Collection, person: Person) -> list[Document]:
    return [doc async for doc in db.read(collection).find({}) if person.in_value(doc)]


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


async def export_member(settings: Settings, address: str, municipality: MunicipalityConfig) -> Document:
    """Everything held about the person with ``address``, per collection (GDPR access)."""
    person = Person.of(address, municipality)
    db = Database.connect(settings, OPERATOR)
    try:
        found: Document = {"address": address, "pseudonym": person.pseudonym, "collections": {}}
        message_ids: set[str] = set()
        for collection in COLLECTIONS:
            docs = await _mentions(db, collection, person)
            message_ids |= {d["message_id"] for d in docs if isinstance(d.get("message_id"), str)}
            if docs:
                found["collections"][collection.name] = docs
        media = [d async for d in db.read(MEDIA).find({"message_id": {"$in": sorted(message_ids)}})]
        known = {d["_id"] for d in found["collections"].get(MEDIA.name, [])}
        media = [d for d in media if d["_id"] not in known]
        if media:
            found["collections"].setdefault(MEDIA.name, []).extend(media)
        return dict(_jsonable(found))
    finally:
        await db.close()


async def erase_member(settings: Settings, address: str, municipality: MunicipalityConfig) -> dict[str, str]:
    """Delete every document that mentions the person (address in any form, pseudonym),
    and the media of their messages; scrub them out of records and configuration.
    Returns what changed per collection; running it again changes nothing."""
    person = Person.of(address, municipality)
    db = Database.connect(settings, OPERATOR)
    report: dict[str, str] = {}
    try:
        message_ids: set[str] = set()
        for collection in COLLECTIONS:
            docs = await _mentions(db, collection, person)
            message_ids |= {d["message_id"] for d in docs if isinstance(d.get("message_id"), str)}
            if not docs:
                continue
            target = db.erasable(collection)
            scrubbed = 0
            deleted: list[Any] = []
            for doc in docs:
                if _erased_by_scrubbing(collection) and not person.in_value(doc["_id"]):
                    await target.replace(person.scrub(doc) | {"_id": doc["_id"]})
                    scrubbed += 1
                else:
                    deleted.append(doc["_id"])
            if deleted:
                await target.delete_many({"_id": {"$in": deleted}})
            parts = [f"{len(deleted)} deleted" if deleted else "", f"{scrubbed} scrubbed" if scrubbed else ""]
            report[collection.name] = ", ".join(part for part in parts if part)
        if message_ids:
            count = await db.erasable(MEDIA).delete_many({"message_id": {"$in": sorted(message_ids)}})
            if count:
                report[f"{MEDIA.name} (of their messages)"] = f"{count} deleted"
        return report
    finally:
        await db.close()


# ---------------------------------------------------------------- retention


async def purge(settings: Settings, municipality: MunicipalityConfig, *, dry_run: bool) -> dict[str, int]:
    """Delete documents older than their class's period (by each collection's declared
    date field); with ``dry_run`` only count them. Returns the count per collection."""
    periods = municipality.retention.model_dump()
    now = utcnow()
    db = Database.connect(settings, OPERATOR)
    counts: dict[str, int] = {}
    try:
        for collection in COLLECTIONS:
            days = periods.get(collection.retention.value)
            if collection.dated_by is None or days is None:
                continue
            query = {collection.dated_by: {"$lt": now - timedelta(days=days)}}
            if dry_run:
                counts[collection.name] = await db.read(collection).count_documents(query)
            else:
                counts[collection.name] = await db.erasable(collection).delete_many(query)
        return counts
    finally:
        await db.close()


# ---------------------------------------------------------------- status


@dataclass
class ServiceStatus:
    service: str
    lag: int = 0
    oldest_waiting: float | None = None
    dead_letters: int = 0
    replayed: int = 0


async def _oldest_waiting(settings: Settings, waiting: list[tuple[str, int, int]]) -> float | None:
    """Age in seconds of the oldest record not yet committed among ``(topic, partition, offset)``."""
    if not waiting:
        return None
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    oldest: float | None = None
    try:
        for topic, partition, offset in waiting[:50]:
            tp = TopicPartition(topic, partition)
            consumer.assign([tp])
            consumer.seek(tp, max(offset, 0))
            batch = await consumer.getmany(tp, timeout_ms=1000, max_records=1)
            for record in batch.get(tp, []):
                age = utcnow().timestamp() - record.timestamp / 1000
                oldest = age if oldest is None else max(oldest, age)
    finally:
        await consumer.stop()
    return oldest


async def status(settings: Settings) -> list[ServiceStatus]:
    """Per service: records waiting in its consumer groups, the age of the oldest of
    them, and its dead letters (and how many were replayed)."""
    lags = await consumer_lags(settings)
    db = Database.connect(settings, OPERATOR)
    result = []
    try:
        for service in SERVICES:
            mine = [lag for lag in lags if lag.group.startswith(f"{settings.group_id(service)}.")]
            letters = await dead_letters(settings, service)
            waiting = [(lag.topic, lag.partition, lag.committed) for lag in mine if lag.behind]
            result.append(
                ServiceStatus(
                    service,
                    lag=sum(lag.behind for lag in mine),
                    oldest_waiting=await _oldest_waiting(settings, waiting),
                    dead_letters=len(letters),
                    replayed=len(await replayed_ids(db, letters)),
                )
            )
    finally:
        await db.close()
    return result


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


def format_status(rows: list[ServiceStatus]) -> str:
    lines = [f"{'service':12} {'waiting':>8} {'oldest waiting':>15} {'dead letters':>13}  replayed"]
    for row in rows:
        age = _age(row.oldest_waiting)
        lines.append(f"{row.service:12} {row.lag:>8} {age:>15} {row.dead_letters:>13}  {row.replayed}")
    return "\n".join(lines)


# ---------------------------------------------------------------- the commands

_service = click.Choice(SERVICES)
_municipality_file = click.option(
    "--municipality-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The municipality file (default: BUURTALERT_MUNICIPALITY_FILE).",
)


def _municipality(settings: Settings, path: Path | None) -> MunicipalityConfig:
    return load_municipality_config(path or settings.municipality_file)


@click.group()
def dlq() -> None:
    """The dead-letter topics: list and replay."""


@dlq.command("list")
@click.argument("service", type=_service, required=False)
def dlq_list(service: str | None) -> None:
    """List the dead letters of SERVICE (default: every service)."""
    settings = Settings()

    async def run() -> list[str]:
        lines = []
        db = Database.connect(settings, OPERATOR)
        try:
            for name in [service] if service else SERVICES:
                letters = await dead_letters(settings, name)
                done = await replayed_ids(db, letters)
                for item in letters:
                    mark = " (replayed)" if item.record_id in done else ""
                    letter = item.letter
                    lines.append(
                        f"{name} {item.id}{mark} topic={letter.topic} key={letter.key} "
                        f"attempts={letter.attempts} failed_at={letter.failed_at:%Y-%m-%d %H:%M:%S} "
                        f"error={letter.error[:200]}"
                    )
        finally:
            await db.close()
        return lines

    lines = asyncio.run(run())
    click.echo("\n".join(lines) if lines else "no dead letters")


@dlq.command("replay")
@click.argument("service", type=_service)
@click.option("--id", "ids", multiple=True, help="A letter's PARTITION:OFFSET (see `dlq list`); repeatable.")
@click.option("--all", "everything", is_flag=True, help="Every letter of SERVICE not replayed before.")
def dlq_replay(service: str, ids: tuple[str, ...], everything: bool) -> None:
    """Publish dead letters of SERVICE again to their original topic, with their key;
    a letter replayed before is skipped."""
    if bool(ids) == everything:
        raise click.UsageError("give --id ID (one or more) or --all")
    for line in asyncio.run(replay(Settings(), service, None if everything else ids)):
        click.echo(line)


@click.group()
def member() -> None:
    """One person's data (GDPR): export and erase."""


@member.command("export")
@click.argument("address")
@_municipality_file
def member_export(address: str, municipality_file: Path | None) -> None:
    """Print as JSON everything held about the person with ADDRESS (phone number, email
    address or platform id), found by the address in its forms and by its pseudonym."""
    settings = Settings()
    found = asyncio.run(export_member(settings, address, _municipality(settings, municipality_file)))
    click.echo(json.dumps(found, indent=2, ensure_ascii=False, sort_keys=True, default=str))


@member.command("erase")
@click.argument("address")
@_municipality_file
def member_erase(address: str, municipality_file: Path | None) -> None:
    """Remove the person with ADDRESS from every collection: documents that mention them
    are deleted, records (audit trail, incidents) and the stored directory keep their
    entries with the person replaced by [erased]. Safe to run twice. Remove them from the
    directory file as well, or the next `directory load` brings them back."""
    settings = Settings()
    report = asyncio.run(erase_member(settings, address, _municipality(settings, municipality_file)))
    if not report:
        click.echo("nothing held about this person")
    for name, what in report.items():
        click.echo(f"{name}: {what}")


@click.group()
def retention() -> None:
    """Retention periods per class, from the municipality file's `retention` section."""


@retention.command("purge")
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
@_municipality_file
def retention_purge(dry_run: bool, municipality_file: Path | None) -> None:
    """Delete documents older than their retention class's period."""
    settings = Settings()
    counts = asyncio.run(purge(settings, _municipality(settings, municipality_file), dry_run=dry_run))
    verb = "would delete" if dry_run else "deleted"
    for name, count in counts.items():
        click.echo(f"{name}: {verb} {count}")


@click.command("status")
def status_command() -> None:
    """Per service: records waiting, the oldest one's age, dead letters."""
    try:
        rows = asyncio.run(status(Settings()))
    except Exception as exc:  # Kafka or the database unreachable: say so, not a traceback
        click.echo(f"status unavailable: {type(exc).__name__}: {exc}", err=True)
        sys.exit(1)
    click.echo(format_status(rows))


COMMANDS: tuple[click.Command, ...] = (dlq, member, retention, status_command)

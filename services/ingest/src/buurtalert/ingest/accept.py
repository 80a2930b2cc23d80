"""Accepting what the parsers produced: deduplicate, archive the raw input, publish,
record. Every channel ends here, so every channel behaves the same way.

Order matters for "nothing lost": the raw input is archived and every record is
confirmed by Kafka *before* the message is marked as handled (its ``ingest`` stage in
the audit trail) and before the provider hears 200. A crash in between means the
provider retries and the message is published again under the same id, which
moderation absorbs. Statuses go through a producer of their own, so a burst of them
never queues in front of messages."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from faststream.kafka import KafkaBroker
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from buurtalert.directory.store import Directories, Memberships
from buurtalert.ingest.parsers.common import Batch, MembershipRequest
from buurtalert.ingest.parsers.email import EmailAttachment
from buurtalert.shared.contacts import Contacts
from buurtalert.shared.kafka import topic_publisher
from buurtalert.shared.logging import get_logger
from buurtalert.shared.models import InboundMessage, Quarantined, stable_id, utcnow
from buurtalert.shared.mongo import Audit, GroupInserts
from buurtalert.shared.settings import MunicipalityConfig, Settings
from buurtalert.shared.topics import (
    INGEST,
    INGEST_MEDIA,
    INGEST_QUARANTINE,
    MESSAGES_INBOUND,
    MESSAGES_REACTIONS,
    PROVIDER_STATUS,
)

log = get_logger(__name__)
Document = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Outcome:
    accepted: int
    duplicates: int
    statuses: int
    reactions: int
    memberships: int
    ignored: int

    def as_json(self) -> dict[str, int]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "statuses": self.statuses,
            "reactions": self.reactions,
            "memberships": self.memberships,
            "ignored": self.ignored,
        }


class Intake:
    def __init__(
        self,
        broker: KafkaBroker,
        status_broker: KafkaBroker,
        settings: Settings,
        db: AsyncDatabase[Document],
        municipality: MunicipalityConfig,
        directories: Directories,
    ) -> None:
        self.municipality = municipality
        self.directories = directories
        self._inbound = topic_publisher(broker, settings, MESSAGES_INBOUND)
        self._quarantine = topic_publisher(broker, settings, INGEST_QUARANTINE)
        self._reactions = topic_publisher(broker, settings, MESSAGES_REACTIONS)
        self._media = topic_publisher(broker, settings, INGEST_MEDIA)
        self._statuses = topic_publisher(status_broker, settings, PROVIDER_STATUS)
        self._audit = Audit(db)
        self._claims = GroupInserts(db[f"claims.{INGEST}"])
        self._files = db.media
        self._contacts = Contacts(db)
        self._known_contacts: dict[str, tuple[str, str]] = {}
        self._memberships = Memberships(db)

    async def quarantine(self, source: str, body: bytes, reason: str, content_type: str | None) -> str:
        """Keep input we cannot accept, with the reason; returns the quarantine id."""
        record = Quarantined(
            id=stable_id("qua", source, body.hex(), reason),
            source=source,
            reason=reason,
            content_type=content_type,
            body=body.decode("utf-8", "replace"),
        )
        await self._quarantine.publish(record, key=source.encode())
        log.warning("input_quarantined", source=source, reason=reason, quarantine_id=record.id)
        return record.id

    async def handled(self, ids: Iterable[str]) -> set[str]:
        """Which of these message ids ingest accepted before.

        Each id is claimed with an insert first; only when the claim already exists is
        the audit trail asked whether the earlier attempt finished (its ``ingest``
        stage). A fresh message thus costs no read: on FerretDB v1 a lookup of a
        missing ``_id`` scans the collection, while inserts take constant time. An
        attempt that crashed before recording is published again, under the same id."""

        async def done_before(message_id: str) -> bool:
            if await self._claims.insert({"_id": message_id, "at": utcnow()}):
                return False
            return await self._audit.recorded(message_id, INGEST)

        wanted = list(ids)
        answers = await asyncio.gather(*(done_before(i) for i in wanted))
        return {i for i, done in zip(wanted, answers, strict=True) if done}

    async def accept(
        self,
        batch: Batch,
        *,
        source: str,
        body: bytes,
        content_type: str | None,
        attachments: Iterable[EmailAttachment] = (),
    ) -> Outcome:
        statuses = [
            self._statuses.publish(s, key=s.provider_message_id.encode(), no_confirm=True)
            for s in batch.statuses
        ]
        status_confirms = await asyncio.gather(*statuses)

        async def archive() -> None:
            if batch.messages or batch.reactions or batch.memberships or batch.ignored:
                await self._audit.archive_raw(batch.raw_ref, source, body, content_type)
            for file in attachments:
                await self._store_file(file)

        done, _ = await asyncio.gather(self.handled(m.id for m in batch.messages), archive())
        fresh = [m for m in batch.messages if m.id not in done]

        confirms = [
            *[await self._inbound.publish(m, key=m.partition_key, no_confirm=True) for m in fresh],
            *[
                await self._media.publish(f, key=f.message_id.encode(), no_confirm=True)
                for f in batch.media
                if f.message_id not in done
            ],
            *[
                await self._reactions.publish(r, key=(r.group_id or r.id).encode(), no_confirm=True)
                for r in batch.reactions
            ],
        ]
        await asyncio.gather(*confirms, *status_confirms)

        for request in batch.memberships:
            await self._apply(request, batch.raw_ref)
        for ignored in batch.ignored:
            await self._audit.record(
                stable_id("ign", source, ignored.provider_id),
                "ingest",
                {"channel": source, "ignored": ignored.reason, "raw_ref": batch.raw_ref},
            )
        await asyncio.gather(*(self._record(message, batch.contacts) for message in fresh))
        outcome = Outcome(
            accepted=len(fresh),
            duplicates=len(batch.messages) - len(fresh),
            statuses=len(batch.statuses),
            reactions=len(batch.reactions),
            memberships=len(batch.memberships),
            ignored=len(batch.ignored),
        )
        if fresh or outcome.duplicates or batch.memberships or batch.ignored:
            log.info("input_accepted", source=source, **outcome.as_json())
        return outcome

    async def _record(self, message: InboundMessage, contacts: dict[str, tuple[str, str]]) -> None:
        """The author's address (for feedback; written when new or changed) and the
        ``ingest`` stage, which marks the message as handled."""
        contact = contacts.get(message.author.pseudonym)
        if contact and self._known_contacts.get(message.author.pseudonym) != contact:
            await self._contacts.remember(self.municipality.id, message.author.pseudonym, *contact)
            self._known_contacts[message.author.pseudonym] = contact
        await self._audit.record(
            message.id,
            INGEST,
            {
                "channel": message.provider.channel,
                "raw_ref": message.raw_ref,
                "group_id": message.group_id,
                "flags": list(message.flags),
            },
            once=True,
        )

    async def _store_file(self, file: EmailAttachment) -> None:
        document = {
            "_id": file.storage_ref,
            "data": file.data,
            "mime_type": file.mime_type,
            "filename": file.filename,
            "size": len(file.data),
            "stored_at": utcnow(),
        }
        with contextlib.suppress(DuplicateKeyError):
            await self._files.insert_one(document)

    async def _apply(self, request: MembershipRequest, raw_ref: str) -> None:
        municipality = self.municipality.id
        if request.action == "leave":
            await self._memberships.leave(municipality, request.pseudonym, request.at)
            outcome = "left"
        elif request.group_id is None:
            outcome = f"unknown code {request.code}"
        else:
            await self._memberships.join(
                municipality, request.pseudonym, request.address, request.group_id, request.at
            )
            outcome = f"joined {request.group_id}"
        self.directories.forget(municipality)
        await self._audit.record(
            stable_id("mbr", request.provider_message_id),
            "ingest",
            {"channel": "whatsapp", "membership": outcome, "member": request.pseudonym, "raw_ref": raw_ref},
        )
        log.info("membership_changed", outcome=outcome, member=request.pseudonym)

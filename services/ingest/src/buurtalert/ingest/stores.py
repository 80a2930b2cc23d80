"""Everything ingest keeps in the database, in one place: the claims that deduplicate
messages, the raw-input archive, the audit entries, the media files, the authors'
contacts, the membership register, and the directories it reads. No other module of
ingest touches a collection.

What every message costs is inserts and lookups by ``_id``: on FerretDB v1 those take
constant time, while updates and queries on other fields scan the collection. The
updates here (a contact, a membership) happen only when one is new or changed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from pymongo.errors import DuplicateKeyError

from buurtalert.directory.store import Directories, Memberships
from buurtalert.ingest.parsers.polls import PollView
from buurtalert.shared.collections import INGEST_CLAIMS, MEDIA, POLLS, RAW_INPUTS
from buurtalert.shared.contacts import Contacts
from buurtalert.shared.models import MembershipDecision, utcnow
from buurtalert.shared.mongo import Audit, Database, Document, GroupInserts
from buurtalert.shared.settings import Settings
from buurtalert.shared.topics import INGEST


@dataclass(frozen=True, slots=True)
class MediaFile:
    """A medium ingest keeps in ``media`` (an email attachment, a WhatsApp medium), or
    the record that it was refused: ``data`` is None exactly when ``refused`` is set.
    ``mime_type`` is sniffed from the bytes; ``declared_type`` is what the sender said."""

    storage_ref: str
    message_id: str
    channel: str
    data: bytes | None
    mime_type: str | None
    declared_type: str | None
    filename: str | None = None
    refused: str | None = None
    #: the size when known without the bytes (a refusal): ``len(data)`` otherwise
    declared_size: int | None = None

    def __post_init__(self) -> None:
        if (self.data is None) == (self.refused is None):
            raise ValueError(f"medium {self.storage_ref}: either its data or why it was refused")

    def document(self, stored_at: datetime) -> Document:
        """The one shape of a ``media`` document: ``data`` or ``refused``, never both."""
        document: Document = {
            "_id": self.storage_ref,
            "message_id": self.message_id,
            "channel": self.channel,
            "size": len(self.data) if self.data is not None else self.declared_size,
            "mime_type": self.mime_type,
            "declared_type": self.declared_type,
            "filename": self.filename,
            "stored_at": stored_at,
        }
        if self.refused is not None:
            document["refused"] = self.refused
        else:
            document["data"] = self.data
        return document


class IngestStores:
    """Ingest's reads and writes. One instance per process: the claims and the audit
    trail gather concurrent inserts into one write (group commit)."""

    def __init__(self, db: Database) -> None:
        self.directories = Directories(db)
        self._audit = Audit(db)
        self._raw = GroupInserts(db.write(RAW_INPUTS))
        self._claims = GroupInserts(db.write(INGEST_CLAIMS))
        self._media = db.write(MEDIA)
        self._contacts = Contacts(db)
        self._known_contacts: dict[tuple[str, str], tuple[str, str]] = {}
        self._memberships = Memberships(db)
        self._polls = db.read(POLLS)

    @classmethod
    def connect(cls, settings: Settings) -> IngestStores:
        """The stores in the deployment's database."""
        return cls(Database.connect(settings, INGEST))

    # --- polls (the review service's) ----------------------------------------------------

    async def poll(self, poll_id: str) -> PollView | None:
        """The poll a form's link names, for its page and its answers."""
        doc = await self._polls.find_one({"_id": poll_id})
        if doc is None:
            return None
        closes_at = doc["closes_at"]
        return PollView(
            id=doc["_id"],
            question=doc["question"],
            options=tuple(doc["options"]),
            districts=tuple(doc["districts"]),
            language=doc.get("language", "nl"),
            closes_at=closes_at if closes_at.tzinfo else closes_at.replace(tzinfo=UTC),
        )

    # --- deduplication ----------------------------------------------------------------

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

    # --- raw input and audit trail ------------------------------------------------------

    async def archive_raw(self, raw_ref: str, source: str, body: bytes, content_type: str | None) -> None:
        """Keep the input as received (``raw_inputs``); the id is the body's hash, so
        archiving it twice keeps one copy."""
        document = {
            "_id": raw_ref,
            "source": source,
            "body": body,
            "content_type": content_type,
            "received_at": utcnow(),
        }
        await self._raw.insert(document)  # False if archived already

    async def record(self, message_id: str, stage: str, data: Document, *, once: bool = False) -> bool:
        """An audit entry (see :meth:`Audit.record <buurtalert.shared.mongo.Audit.record>`)."""
        return await self._audit.record(message_id, stage, data, once=once)

    # --- contacts and memberships -----------------------------------------------------

    async def remember_contact(self, municipality: str, pseudonym: str, channel: str, address: str) -> None:
        """How to answer an author (rejection feedback); written when new or changed."""
        key, contact = (municipality, pseudonym), (channel, address)
        if self._known_contacts.get(key) == contact:
            return
        await self._contacts.remember(municipality, pseudonym, channel, address)
        self._known_contacts[key] = contact

    async def join(self, municipality: str, pseudonym: str, address: str, group: str, at: datetime) -> bool:
        """A member asks to join ``group`` (pending approval in the membership register);
        False if a newer event of theirs was applied already."""
        return await self._memberships.join(municipality, pseudonym, address, group, at)

    async def leave(self, municipality: str, pseudonym: str, at: datetime) -> bool:
        """A member opts out everywhere; the number is forgotten. False if a newer event
        of theirs was applied already."""
        return await self._memberships.leave(municipality, pseudonym, at)

    async def remove_member(self, municipality: str, pseudonym: str, group: str, at: datetime) -> bool | None:
        """A removal agreed by two (moderation.decisions), applied to the register; None for
        a member the register does not know (only the directory file lists them)."""
        return await self._memberships.remove(municipality, pseudonym, group, at)

    async def vet(self, decision: MembershipDecision) -> bool:
        """A coordinator's decision on a pending join (review.memberships), applied to the
        register; False if the join was decided already or changed since."""
        return await self._memberships.vet(
            decision.municipality,
            decision.member,
            decision.group_id,
            decision.approved,
            decision.requested_at,
            decision.decided_at,
        )

    # --- media ------------------------------------------------------------------------

    async def media_stored(self, storage_ref: str) -> bool:
        """Whether ``media`` holds this medium (stored or refused) already."""
        return await self._media.find_one({"_id": storage_ref}, projection={"_id": 1}) is not None

    async def store_media(self, file: MediaFile) -> None:
        """Keep a medium, or that it was refused; a second write of the same
        ``storage_ref`` keeps the first."""
        with contextlib.suppress(DuplicateKeyError):
            await self._media.insert_one(file.document(utcnow()))

"""MongoDB access through PyMongo's async API, kept to what FerretDB v1 also supports
(no transactions, change streams, TTL indexes or $lookup; unique indexes work)."""

from __future__ import annotations

import contextlib
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from buurtalert.shared.models import utcnow
from buurtalert.shared.settings import Settings

Document = dict[str, Any]


def mongo_client(settings: Settings) -> AsyncMongoClient[Document]:
    return AsyncMongoClient(
        settings.mongo_url.get_secret_value(),
        tz_aware=True,
        serverSelectionTimeoutMS=10_000,
        appname="buurtalert",
    )


class Audit:
    """The audit trail of every message: one document per message id, one field per
    stage. Writing a stage twice leaves the same document, so handlers stay idempotent."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._audit = db.audit
        self._raw = db.raw_inputs

    async def archive_raw(self, raw_id: str, source: str, body: bytes, content_type: str | None) -> None:
        document = {"source": source, "body": body, "content_type": content_type, "received_at": utcnow()}
        with contextlib.suppress(DuplicateKeyError):  # archived already: the id is the body's hash
            await self._raw.update_one({"_id": raw_id}, {"$setOnInsert": document}, upsert=True)

    async def record(self, message_id: str, stage: str, data: Document) -> None:
        update = {"$set": {f"stages.{stage}": {**data, "at": utcnow()}, "updated_at": utcnow()}}
        try:
            await self._audit.update_one({"_id": message_id}, update, upsert=True)
        except DuplicateKeyError:
            # Two stages upserted the same new document at once; it exists now.
            await self._audit.update_one({"_id": message_id}, update)


class ProcessedKeys:
    """Which inputs a consumer has fully handled, for duplicate suppression.

    ``_id`` is the key itself, so the unique primary index does the work on
    MongoDB and FerretDB alike."""

    def __init__(self, db: AsyncDatabase[Document], consumer: str) -> None:
        self._collection = db[f"processed.{consumer}"]

    async def seen(self, key: str) -> bool:
        return await self._collection.find_one({"_id": key}, projection={"_id": 1}) is not None

    async def mark(self, key: str) -> bool:
        """Record ``key``; False if it was already recorded."""
        try:
            await self._collection.insert_one({"_id": key, "at": utcnow()})
        except DuplicateKeyError:
            return False
        return True

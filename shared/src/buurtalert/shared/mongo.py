"""MongoDB access through PyMongo's async API, kept to what FerretDB v1 also supports
(no transactions, change streams, TTL indexes or $lookup; unique indexes work).

A service reaches its collections through :class:`Database` only, which holds it to
the declarations in :mod:`buurtalert.shared.collections`."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Iterable
from typing import Any, TypeVar

from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.cursor import AsyncCursor
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from buurtalert.shared.collections import AUDIT, COLLECTIONS, EVERY_SERVICE, OPERATOR, Collection
from buurtalert.shared.models import stable_id, utcnow
from buurtalert.shared.settings import Settings

#: A MongoDB document as PyMongo gives it.
Document = dict[str, Any]
T = TypeVar("T")


def mongo_client(settings: Settings, timeout_ms: int = 10_000) -> AsyncMongoClient[Document]:
    """The process's client. Its pool is small on purpose (``mongo_pool_size``): FerretDB v1
    holds two of its backend connections for every update (the query's iterator and the
    write's transaction) from a pool of 100 per database on SQLite (``pool_max_conns`` on
    PostgreSQL) and waits for them without a timeout, so as many concurrent updates as its
    pool has connections deadlock it for good. Every process's pool together stays under it."""
    return AsyncMongoClient(
        settings.mongo_url.get_secret_value(),
        tz_aware=True,
        serverSelectionTimeoutMS=timeout_ms,
        appname="buurtalert",
        maxPoolSize=settings.mongo_pool_size,
    )


async def one_statement_each(updates: Iterable[Awaitable[T]]) -> list[T]:
    """Run ``updates`` (``update_one`` calls), each its own command: never one command of
    many statements, which FerretDB v1 runs holding a backend connection per statement
    until the last (its update handler closes each statement's iterator only at the end),
    so that a bulk of 100 exhausts its pool and hangs it. Concurrency is the client pool's.
    Answers their results, in order."""
    return list(await asyncio.gather(*updates))


class DocumentLocks:
    """One update at a time per document in this process. FerretDB v1 applies an update
    by reading the document, changing it and writing all of it back, so two concurrent
    updates of one document (two ``$addToSet`` on ``told``) can lose one of them, and two
    updates conditional on the same version can both succeed. Only the documents in use
    hold a lock. Across processes the hazard remains."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (None, 0))
        lock = lock or asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            _, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


class CollectionNotAllowed(PermissionError):
    """Code touched a collection that is not declared, or wrote one it does not own,
    or read one it is not declared a reader of."""


class ReadOnly:
    """A collection as its readers see it: lookups only."""

    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self._collection = collection

    async def find_one(self, *args: Any, **kwargs: Any) -> Document | None:
        return await self._collection.find_one(*args, **kwargs)

    def find(self, *args: Any, **kwargs: Any) -> AsyncCursor[Document]:
        return self._collection.find(*args, **kwargs)

    async def count_documents(self, query: Document) -> int:
        return await self._collection.count_documents(query)


class Erasable(ReadOnly):
    """A collection as the operator's retention and erasure commands see it: lookups,
    deleting documents, and replacing one by its scrubbed copy (same ``_id``)."""

    async def delete_many(self, query: Document) -> int:
        return (await self._collection.delete_many(query)).deleted_count

    async def replace(self, document: Document) -> None:
        await self._collection.replace_one({"_id": document["_id"]}, document)


class Database:
    """One service's (or tool's) access to the database: only declared collections,
    written only by their owner, read only by their declared readers."""

    def __init__(self, db: AsyncDatabase[Document], who: str) -> None:
        self._db = db
        self.who = who

    @classmethod
    def connect(cls, settings: Settings, who: str, timeout_ms: int = 10_000) -> Database:
        return cls(mongo_client(settings, timeout_ms)[settings.database], who)

    @staticmethod
    def _declared(collection: Collection) -> Collection:
        if collection not in COLLECTIONS:
            raise CollectionNotAllowed(f"collection {collection.name!r} is not declared")
        return collection

    def write(self, collection: Collection) -> AsyncCollection[Document]:
        """The collection to write, for its owner."""
        if not self._declared(collection).writable_by(self.who):
            raise CollectionNotAllowed(
                f"{self.who} may not write {collection.name!r}: its owner is {collection.owner}"
            )
        return self._db[collection.name]

    def read(self, collection: Collection) -> ReadOnly:
        """The collection to look things up in, for its owner and declared readers."""
        if not self._declared(collection).readable_by(self.who):
            raise CollectionNotAllowed(f"{self.who} is not a declared reader of {collection.name!r}")
        return ReadOnly(self._db[collection.name])

    def erasable(self, collection: Collection) -> Erasable:
        """The collection to purge or erase documents in: for the operator only."""
        if self.who != OPERATOR:
            raise CollectionNotAllowed(f"only the operator deletes for retention and erasure, not {self.who}")
        return Erasable(self._db[self._declared(collection).name])

    async def ensure_indexes(self) -> list[str]:
        """Create the declared indexes (``Collection.indexes``) of every collection this
        party owns (every service: those written by every service, such as the audit
        trail); idempotent (an index that exists is left alone). Their names."""
        created = []
        for collection in COLLECTIONS:
            if collection.owner not in (self.who, EVERY_SERVICE):
                continue
            for field in collection.indexes:
                created.append(await self._db[collection.name].create_index(field))
        return created

    async def ping(self) -> bool:
        """Whether the database answers (within the client's server-selection timeout)."""
        try:
            await self._db.command("ping")
        except Exception:  # unreachable, timed out, refused: not ready
            return False
        return True

    async def close(self) -> None:
        await self._db.client.close()


class GroupInserts:
    """Inserts into one collection, gathered while the previous write is under way and
    written with one ``insert_many(ordered=False)``: many inserts, one transaction
    (group commit), which costs far less per document than concurrent single inserts
    on FerretDB v1 (see docs/benchmarks.md). A duplicate ``_id`` is not an
    error: :meth:`insert` returns False for it."""

    def __init__(self, collection: AsyncCollection[Document], max_batch: int = 500) -> None:
        self._collection = collection
        self._max_batch = max_batch
        self._pending: list[tuple[Document, asyncio.Future[bool]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def insert(self, document: Document) -> bool:
        """Write ``document``; True once it is stored, False if its ``_id`` already was."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((document, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        return await done

    async def _write(self) -> None:
        await asyncio.sleep(0)  # let the inserts of this moment join
        while self._pending:
            batch, self._pending = self._pending[: self._max_batch], self._pending[self._max_batch :]
            duplicates: set[int] = set()
            failure: BaseException | None = None
            try:
                await self._collection.insert_many([d for d, _ in batch], ordered=False)
            except BulkWriteError as exc:
                errors = exc.details.get("writeErrors", [])
                duplicates = {e["index"] for e in errors if e.get("code") == 11000}
                if len(duplicates) < len(errors):
                    failure = exc
            except Exception as exc:  # the database is unreachable: every waiting insert fails
                failure = exc
            for index, (_, done) in enumerate(batch):
                if done.done():
                    continue
                if failure is not None and index not in duplicates:
                    done.set_exception(failure)
                else:
                    done.set_result(index not in duplicates)


class Audit:
    """The audit trail of every message: append-only entries, one per (message, stage,
    content). Writing the same entry twice leaves one, so handlers stay idempotent;
    a stage that changes (a delivery sent, then failed) keeps its history.

    Only inserts and lookups by ``_id`` on the message path: those take constant time
    on FerretDB v1 on PostgreSQL (with the GIN twins of deploy/local/postgres), while
    queries on other fields scan the collection, so their cost grows with the data
    (docs/benchmarks.md); :meth:`history` and :meth:`trail` do, for people and tests."""

    def __init__(self, db: Database) -> None:
        self._audit = db.read(AUDIT)
        self._entries = GroupInserts(db.write(AUDIT))

    async def record(self, message_id: str, stage: str, data: Document, *, once: bool = False) -> bool:
        """Append an entry; False if it was there already. With ``once``, a stage has one
        entry whatever its content, and :meth:`recorded` tells whether it exists."""
        content = "" if once else json.dumps(data, sort_keys=True, default=str)
        entry = {
            "_id": stable_id("aud", message_id, stage, content),
            "message_id": message_id,
            "stage": stage,
            "data": data,
            "at": utcnow(),
        }
        return await self._entries.insert(entry)

    async def entry(self, message_id: str, stage: str) -> Document | None:
        """The data of a ``once`` stage, if recorded (one lookup by ``_id``)."""
        found = await self._audit.find_one({"_id": stable_id("aud", message_id, stage, "")})
        return found["data"] if found else None

    async def recorded(self, message_id: str, stage: str) -> bool:
        """Whether a ``once`` stage was recorded (one lookup by ``_id``)."""
        found = await self._audit.find_one(
            {"_id": stable_id("aud", message_id, stage, "")}, projection={"_id": 1}
        )
        return found is not None

    async def history(self, message_id: str) -> list[Document]:
        """Every entry of a message in the order written (stage, data, at), where
        :meth:`trail` keeps the latest of each stage (one read on the indexed ``message_id``)."""
        cursor = self._audit.find({"message_id": message_id}).sort("at", 1)
        return [{"stage": e["stage"], "data": e["data"], "at": e["at"]} async for e in cursor]

    async def trail(self, message_id: str) -> Document:
        """Every stage of a message, the latest entry of each; ``a.b`` stages nest as
        ``{"a": {"b": ...}}`` (``deliveries.<id>``); one read on the indexed ``message_id``."""
        stages: Document = {}
        cursor = self._audit.find({"message_id": message_id}).sort("at", 1)
        async for entry in cursor:
            *parents, leaf = entry["stage"].split(".", 1) if entry["stage"].count(".") else [entry["stage"]]
            target = stages
            for parent in parents:
                target = target.setdefault(parent, {})
            target[leaf] = {**entry["data"], "at": entry["at"]}
        return stages

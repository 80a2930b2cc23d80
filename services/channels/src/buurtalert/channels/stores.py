"""Channels' stores: the delivery ledger (``deliveries``, with the outcome in the
audit trail), held deliveries (``held_deliveries``), the media it sends along
(``media``, ingest's, read only) and the providers' tiers shared by the channels
processes (``tier_schedules``).

The ledger: a delivery id is claimed before sending and its outcome recorded after,
so a redelivered delivery is never sent twice once it was settled. The outcome is the
delivery's entry in the audit trail (``deliveries.<id>``, written once), so a send
costs two inserts. Both are inserts keyed by the delivery id, which take constant
time on FerretDB v1 (updates by ``_id`` scan the collection there), gathered into one
``insert_many`` per moment when many deliveries go out at once (fan-out)."""

from __future__ import annotations

import asyncio
import math
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from pymongo.errors import DuplicateKeyError

from buurtalert.shared.channels import Attachment, TransientDeliveryError
from buurtalert.shared.collections import DELIVERIES, HELD_DELIVERIES, MEDIA, MEDIA_WAIT, TIER_SCHEDULES
from buurtalert.shared.logging import get_logger
from buurtalert.shared.models import Delivery, DeliveryStatus, MediaRef, utcnow
from buurtalert.shared.mongo import Audit, Database, Document, GroupInserts

log = get_logger(__name__)


def outcome_stage(delivery_id: str) -> str:
    """The audit stage of a delivery (``Audit.trail`` nests it under ``deliveries``)."""
    return f"deliveries.{delivery_id}"


#: A claim without an outcome younger than this is a send under way in another process
#: (one that held the delivery's partition before a rebalance): it is not sent again yet.
#: A record that finds such a claim is retried once the claim is this old (``retry_after``).
IN_FLIGHT = timedelta(seconds=10)


class DeliveryInProgress(TransientDeliveryError):
    """Another process claimed the delivery moments ago and has not recorded an outcome:
    it is sending it. The retry path looks again once the claim is older than
    :data:`IN_FLIGHT` (``retry_after``): then its outcome is there, or its sender died."""

    def __init__(self, age: timedelta) -> None:
        super().__init__(f"claimed {age} ago by another send")
        self.retry_after = max((IN_FLIGHT - age).total_seconds(), 0.0)


class Ledger:
    """The delivery ledger (``deliveries``): ``claim`` before sending, ``settle`` with
    the outcome after, ``release`` a claim whose send failed for now.

    A delivery claimed but never settled (a crash mid-send) is sent again when it comes
    back after :data:`IN_FLIGHT`, with the same provider idempotency key or Message-ID;
    a settled one is never sent again; one claimed moments ago is another process's
    send under way (two processes hold the same records while their partitions move)."""

    def __init__(self, db: Database, audit: Audit) -> None:
        self._deliveries = db.write(DELIVERIES)
        self._claims = GroupInserts(self._deliveries)
        self._audit = audit

    async def claim(self, delivery: Delivery) -> DeliveryStatus | None:
        """None if the delivery is to be sent now; its recorded outcome if it was settled.
        Raises :class:`DeliveryInProgress` if another claim of it is under way."""
        now = utcnow()
        claimed = await self._claims.insert(
            {
                "_id": delivery.id,
                "message_id": delivery.message_id,
                "channel": delivery.destination.channel,
                "group_id": delivery.destination.group_id,
                "created_at": now,
            }
        )
        if claimed:
            return None
        outcome = await self._audit.entry(
            delivery.message_id, outcome_stage(delivery.id)
        )  # only when it came back
        if outcome:
            return DeliveryStatus.model_validate(outcome)
        earlier = await self._deliveries.find_one({"_id": delivery.id})
        if earlier is not None and now - earlier["created_at"] < IN_FLIGHT:
            raise DeliveryInProgress(now - earlier["created_at"])
        if earlier is None:  # released meanwhile: claim it again
            return await self.claim(delivery)
        return None

    async def release(self, delivery: Delivery) -> None:
        """Give up the claim of a send that failed for now: its retry claims it afresh."""
        await self._deliveries.delete_one({"_id": delivery.id})

    async def find(self, delivery_id: str) -> Document | None:
        """The claim of a delivery that was sent (its message id, channel, group)."""
        return await self._deliveries.find_one({"_id": delivery_id})

    async def settle(self, status: DeliveryStatus) -> None:
        """Record the outcome in the audit trail; the first one recorded stands."""
        await self._audit.record(
            status.message_id, outcome_stage(status.delivery_id), status.model_dump(mode="json"), once=True
        )


#: How far back a channels process that starts looks for held deliveries still due.
HELD_LOOKBACK = timedelta(days=8)
_HOUR = timedelta(hours=1)


def due_hour(at: datetime) -> str:
    """The hour (UTC, ``YYYYMMDDHH``) by which a held delivery due at ``at`` is found."""
    return f"{at.astimezone(UTC):%Y%m%d%H}"


class HeldDeliveries:
    """Deliveries routing held (quiet hours, a group's rate limit), kept in
    ``held_deliveries`` until due. Once stored, the Kafka message is committed: the
    delivery is safe in the database, not lost.

    The due ones are found by the hour they are due (``due_hour``, an indexed equality;
    a range on ``due`` would scan the collection on FerretDB v1): each round asks for the
    hours not yet known to be empty, from the oldest to this one, oldest first. At
    start-up that is the hours of the last ``lookback`` (:data:`HELD_LOOKBACK`), after
    that the previous hour (another process may still hold into it) and this one, so the
    cost does not grow with the deliveries held for later."""

    def __init__(self, db: Database, lookback: timedelta = HELD_LOOKBACK) -> None:
        self._held = db.write(HELD_DELIVERIES)
        self._lookback = lookback
        self._empty_before: datetime | None = None  # hours before this one held nothing due
        self._adopted = False

    async def hold(self, delivery: Delivery) -> None:
        """Keep ``delivery`` until its ``deliver_after``; holding it twice changes nothing."""
        due = delivery.deliver_after or utcnow()
        await self._held.update_one(
            {"_id": delivery.id},
            {
                "$setOnInsert": {
                    "due": due,
                    "due_hour": due_hour(due),
                    "delivery": delivery.model_dump(mode="json"),
                }
            },
            upsert=True,
        )

    async def _adopt(self) -> None:
        """Once per process: give deliveries held before ``due_hour`` existed their hour
        (the one scan, at start-up, off the message path)."""
        async for doc in self._held.find({"due_hour": {"$exists": False}}, projection={"due": 1}):
            await self._held.update_one({"_id": doc["_id"]}, {"$set": {"due_hour": due_hour(doc["due"])}})
        self._adopted = True

    async def due(self, now: datetime, limit: int = 100) -> list[Delivery]:
        """Up to ``limit`` held deliveries due at ``now``, the oldest hours first."""
        if not self._adopted:
            await self._adopt()
        current = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        hour = min(self._empty_before or current - self._lookback, current - _HOUR)
        found: list[Document] = []
        first_held: datetime | None = None
        while hour <= current and len(found) < limit:
            query = {"due_hour": due_hour(hour), "due": {"$lte": now}}
            cursor = self._held.find(query).limit(limit - len(found))
            docs = [doc async for doc in cursor]
            if docs and first_held is None:
                first_held = hour
            found += docs
            hour += _HOUR
        self._empty_before = min(first_held or current, current - _HOUR)
        found.sort(key=lambda doc: doc["due"])
        return [Delivery.model_validate(doc["delivery"]) for doc in found]

    async def release(self, delivery_id: str) -> None:
        await self._held.delete_one({"_id": delivery_id})


class MediaStore:
    """Media to send along with a delivery, read from ingest's ``media`` collection.

    Ingest fetches WhatsApp media after it published the message, so a delivery can
    come before its medium: as the collection's declaration says, it is waited for up
    to :data:`~buurtalert.shared.collections.MEDIA_WAIT` seconds, then the delivery
    goes without it. An alert is never held back by its photo. A fan-out reads each
    medium once."""

    def __init__(self, db: Database, *, wait: float = MEDIA_WAIT, keep: int = 16) -> None:
        self._media = db.read(MEDIA)
        self._wait = wait
        self._keep = keep
        self._recent: OrderedDict[str, Attachment | None] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}

    async def attachments(self, refs: Sequence[MediaRef]) -> list[Attachment]:
        found = [await self._one(ref.storage_ref) for ref in refs if ref.storage_ref]
        return [a for a in found if a is not None]

    async def _one(self, storage_ref: str) -> Attachment | None:
        if storage_ref in self._recent:
            return self._recent[storage_ref]
        async with self._locks.setdefault(storage_ref, asyncio.Lock()):  # one read per medium
            if storage_ref in self._recent:
                return self._recent[storage_ref]
            attachment = await self._read(storage_ref)
            self._recent[storage_ref] = attachment
            if len(self._recent) > self._keep:
                forgotten, _ = self._recent.popitem(last=False)
                self._locks.pop(forgotten, None)
            return attachment

    async def _read(self, storage_ref: str) -> Attachment | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait
        while True:
            doc = await self._media.find_one({"_id": storage_ref})
            if doc is not None:
                if not doc.get("data"):  # refused by ingest (too large): nothing to send
                    log.info("medium_not_sent", storage_ref=storage_ref, why=doc.get("refused", "no data"))
                    return None
                return Attachment(
                    storage_ref=storage_ref,
                    mime_type=doc.get("mime_type") or "application/octet-stream",
                    data=bytes(doc["data"]),
                    filename=doc.get("filename"),
                )
            if loop.time() >= deadline:
                log.warning("medium_missing_sent_without", storage_ref=storage_ref)
                return None
            await asyncio.sleep(0.5)


class ContendedSchedule(Exception):
    """Other processes had taken every block this one tried."""


class TierSchedules:
    """The send times of each provider account's tier (``tier_schedules``), shared by the
    channels processes (:class:`~buurtalert.channels.pacing.SharedThrottle`). Time is cut
    into blocks of ``count`` sends ``interval`` apart, numbered from the epoch; a process
    takes a block by inserting its document (``<account>#<number>``), which only one
    insert can do. FerretDB v1 does not apply a conditional update atomically (two
    processes both "win" a compare-and-set), a unique ``_id`` it does. One round trip
    per block; a process deletes its own blocks once they are a second past (beside
    taking the next one, not before it)."""

    ATTEMPTS = 50

    def __init__(self, db: Database) -> None:
        self._collection = db.write(TIER_SCHEDULES)
        self._taken: dict[str, list[tuple[float, str]]] = {}  # per account: own blocks (end, _id)

    async def reserve(self, account: str, now: float, count: int, interval: float) -> float:
        span = count * interval
        taken = self._taken.setdefault(account, [])
        number = math.floor(now / span)
        if taken:  # after this process's last block (it may lie ahead: the next is taken early)
            number = max(number, round(taken[-1][0] / span))
        past = [block for end, block in taken if end < now - 1.0]
        del taken[: len(past)]
        deletes = (self._collection.delete_one({"_id": block}) for block in past)
        _, first = await asyncio.gather(asyncio.gather(*deletes), self._take(account, number, span))
        return first

    async def _take(self, account: str, number: int, span: float) -> float:
        """The first free block from ``number`` on: its start."""
        for _ in range(self.ATTEMPTS):
            block = f"{account}#{number}"
            try:
                await self._collection.insert_one({"_id": block, "at": utcnow()})
            except DuplicateKeyError:
                number += 1  # another process's block
                continue
            self._taken[account].append(((number + 1) * span, block))
            return number * span
        raise ContendedSchedule(f"{self.ATTEMPTS} blocks of {account} in a row were taken")

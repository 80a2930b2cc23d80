"""The review console's stores, one class per collection it owns: the queue
(``review_items``), its users (``review_users``) and their sessions (``review_sessions``).

A scoped user's queue is read per group or per district (an equality on an indexed field
each, concurrently), never by loading the municipality's queue and filtering it here.

Every change to an item is one conditional update on its ``_id`` and ``version``, made
while this process holds the item's lock: of two moderators acting on the same version, one
wins and the other is told it is stale. The lock is needed because FerretDB v1 checks the
condition and writes the document in two steps (two clients can both "win"), so the console
runs as one process (the Helm chart refuses a second replica). The records an
item holds travel as JSON text, as GeoJSON does elsewhere (FerretDB v1 stores no nested
arrays, and an authority alert's polygon is one)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo.errors import DuplicateKeyError
from pymongo.results import UpdateResult

from buurtalert.review.rules import Account, Claim, Item, Scope
from buurtalert.shared.collections import (
    REVIEW_DEADLINES,
    REVIEW_ITEMS,
    REVIEW_SESSIONS,
    REVIEW_USERS,
    REVIEW_VETTINGS,
    STRIKES,
)
from buurtalert.shared.models import (
    MembershipDecision,
    ModeratedMessage,
    RemovalProposal,
    ReviewDecision,
    Role,
)
from buurtalert.shared.mongo import Database, Document, DocumentLocks

#: How long a publication taken by a sender may take before another sender takes it over.
SENDING_TIMEOUT = timedelta(seconds=30)
_RECORDS: dict[str, type[ModeratedMessage | RemovalProposal | ReviewDecision]] = {
    "held": ModeratedMessage,
    "proposal": RemovalProposal,
    "decision": ReviewDecision,
}


def to_document(item: Item) -> Document:
    doc = item.model_dump(exclude=set(_RECORDS))
    doc["_id"] = doc.pop("id")
    for field in _RECORDS:
        record = getattr(item, field)
        doc[field] = record.model_dump_json() if record is not None else None
    return doc


def from_document(doc: Document) -> Item:
    data = {k: v for k, v in doc.items() if k != "_id"}
    for field, model in _RECORDS.items():
        text = data.get(field)
        data[field] = model.model_validate_json(text) if text else None
    return Item.model_validate({"id": doc["_id"], **data})


class Items:
    """The queue (``review_items``)."""

    def __init__(self, db: Database) -> None:
        self._items = db.write(REVIEW_ITEMS)
        self._locks = DocumentLocks()

    async def _update(self, item_id: str, condition: Document, update: Document) -> UpdateResult:
        """Update item ``item_id`` if it meets ``condition``, no other update of it in this
        process meanwhile: FerretDB v1 checks the condition and writes the item back in two
        steps, so two moderators' concurrent decisions on one version could otherwise both
        succeed."""
        async with self._locks.hold(item_id):
            return await self._items.update_one({"_id": item_id, **condition}, update)

    async def add(self, item: Item) -> bool:
        """Queue ``item``; False if it was queued before (a redelivered record)."""
        try:
            await self._items.insert_one(to_document(item))
        except DuplicateKeyError:
            return False
        return True

    async def get(self, item_id: str) -> Item | None:
        doc = await self._items.find_one({"_id": item_id})
        return from_document(doc) if doc else None

    async def open_items(self, municipality: str, scope: Scope | None = None) -> list[Item]:
        """The municipality's open items, or only those within ``scope`` (of its groups or
        its districts: one query per value, each on an indexed field)."""
        return [from_document(d) for d in await self._open(municipality, scope)]

    async def _open(
        self, municipality: str, scope: Scope | None, projection: Document | None = None
    ) -> list[Document]:
        if scope is None or scope.field is None:
            cursor = self._items.find({"municipality": municipality, "state": "open"}, projection=projection)
            return [d async for d in cursor]
        read = self._open_in_group if scope.field == "group_id" else self._open_in_district
        found = await asyncio.gather(
            *(read(municipality, value, projection) for value in sorted(set(scope.values)))
        )
        return list({d["_id"]: d for part in found for d in part}.values())

    async def _open_in_group(
        self, municipality: str, group_id: str, projection: Document | None
    ) -> list[Document]:
        query = {"group_id": group_id, "municipality": municipality, "state": "open"}
        return [d async for d in self._items.find(query, projection=projection)]

    async def _open_in_district(
        self, municipality: str, district: str, projection: Document | None
    ) -> list[Document]:
        query = {"district": district, "municipality": municipality, "state": "open"}
        return [d async for d in self._items.find(query, projection=projection)]

    async def oldest_open(self, urgent: bool) -> dict[str, datetime]:
        """Per municipality, when its oldest open item (urgent or not) was received."""
        cursor = self._items.find(
            {"state": "open", "urgent": urgent}, projection={"municipality": 1, "received_at": 1}
        )
        oldest: dict[str, datetime] = {}
        async for doc in cursor:
            municipality, received = doc["municipality"], doc["received_at"]
            if municipality not in oldest or received < oldest[municipality]:
                oldest[municipality] = received
        return oldest

    async def fingerprint(self, municipality: str, scope: Scope | None = None) -> tuple[Any, ...]:
        """What changes whenever the user's queue does (the municipality's, or within
        ``scope``): its open items' ids, versions and claims (for the live view of a process
        that did not make the change)."""
        docs = await self._open(municipality, scope, {"_id": 1, "version": 1, "claim": 1})
        found = [
            (
                d["_id"],
                d["version"],
                (d.get("claim") or {}).get("by"),
                str((d.get("claim") or {}).get("until")),
            )
            for d in docs
        ]
        return tuple(sorted(found))

    async def _swap(self, item_id: str, version: int, update: Document) -> bool:
        """Apply ``update`` if the item is still open at ``version``; raises the version."""
        result = await self._update(
            item_id,
            {"version": version, "state": "open"},
            {**update, "$inc": {"version": 1}},
        )
        return result.modified_count == 1

    async def claim(self, item: Item, claim: Claim) -> bool:
        """Set ``claim`` if nobody changed the item meanwhile (claims do not raise the
        version: the content did not change)."""
        result = await self._update(
            item.id,
            {"version": item.version, "state": "open", **_claimed_as(item.claim)},
            {"$set": {"claim": _claim_doc(claim)}},
        )
        return result.modified_count == 1

    async def release(self, item_id: str, user: str) -> None:
        await self._update(item_id, {"claim.by": user}, {"$set": {"claim": None}})

    async def escalate(self, item: Item, by: str, note: str) -> bool:
        """Hand the item to the wijkagent (a new version; the claim released)."""
        return await self._swap(
            item.id, item.version, {"$set": {"escalated_by": by, "escalation_note": note, "claim": None}}
        )

    async def agree(self, item: Item, agreed_by: tuple[str, ...]) -> bool:
        return await self._swap(item.id, item.version, {"$set": {"agreed_by": list(agreed_by)}})

    async def decide(
        self, item: Item, decision: ReviewDecision, publish_after: datetime | None = None
    ) -> bool:
        """Record ``decision`` on ``item`` if it is still open at the version decided on; it
        is published from ``publish_after`` on (until then it can be undone)."""
        return await self._swap(
            item.id,
            item.version,
            {
                "$set": {
                    "state": "decided",
                    "decision": decision.model_dump_json(),
                    "decision_id": decision.id,
                    "published": False,
                    "sending": False,
                    "publish_after": publish_after,
                    "claim": None,
                }
            },
        )

    async def sending(self, decision: ReviewDecision, now: datetime) -> bool:
        """Take the publication of ``decision`` (it can no longer be undone): False if it was
        undone (the item is open again), is published, or another sender took it less than
        :data:`SENDING_TIMEOUT` ago (one that died with it leaves it to the next)."""
        mine = {"$set": {"sending": True, "sending_at": now}}
        taken = {"state": "decided", "decision_id": decision.id, "published": False}
        result = await self._update(decision.subject_id, {**taken, "sending": False}, mine)
        if result.modified_count == 1:
            return True
        stale = await self._update(
            decision.subject_id, {**taken, "sending_at": {"$lt": now - SENDING_TIMEOUT}}, mine
        )
        return stale.modified_count == 1

    async def undo(self, item: Item, claim: Claim) -> bool:
        """Take back the decision on ``item`` if its publication has not begun: the item is
        open again (at a new version), claimed by whoever undid it."""
        assert item.decision is not None
        return await self._swap_decided(
            item,
            {
                "$set": {
                    "state": "open",
                    "decision": None,
                    "decision_id": None,
                    "published": False,
                    "sending": False,
                    "publish_after": None,
                    "claim": _claim_doc(claim),
                }
            },
        )

    async def _swap_decided(self, item: Item, update: Document) -> bool:
        assert item.decision is not None
        result = await self._update(
            item.id,
            {
                "version": item.version,
                "state": "decided",
                "decision_id": item.decision.id,
                "published": False,
                "sending": False,
            },
            {**update, "$inc": {"version": 1}},
        )
        return result.modified_count == 1

    async def published(self, item_id: str) -> None:
        await self._update(item_id, {}, {"$set": {"published": True}})

    async def unpublished(self, now: datetime | None = None) -> list[ReviewDecision]:
        """Decisions taken whose publication was not confirmed (the broker was away), and
        whose undo window (if any) has passed by ``now``."""
        cursor = self._items.find(
            {"state": "decided", "published": False}, projection={"decision": 1, "publish_after": 1}
        )
        return [
            ReviewDecision.model_validate_json(d["decision"])
            async for d in cursor
            if d.get("decision")
            and (now is None or d.get("publish_after") is None or d["publish_after"] <= now)
        ]


@dataclass(frozen=True)
class Strike:
    """One of a member's rejections, as a removal proposal's page lists them."""

    message_id: str
    group_id: str | None
    at: datetime
    reasons: tuple[str, ...]


class MemberStrikes:
    """A member's rejections (moderation's ``strikes``, read only), newest first: what the
    admins and coordinators deciding on a removal base it on. One read on the indexed
    ``member``, at most :attr:`SHOWN` of them."""

    SHOWN = 20

    def __init__(self, db: Database) -> None:
        self._strikes = db.read(STRIKES)

    async def of(self, municipality: str, member: str) -> list[Strike]:
        cursor = (
            self._strikes.find({"member": member, "municipality": municipality})
            .sort("at", -1)
            .limit(self.SHOWN)
        )
        return [
            Strike(d["message_id"], d.get("group_id"), d["at"], tuple(d.get("reasons") or ()))
            async for d in cursor
        ]


def _claimed_as(claim: Claim | None) -> Document:
    """A filter matching an item whose claim is still ``claim``."""
    if claim is None:
        return {"claim": None}
    return {"claim.by": claim.by, "claim.until": claim.until}


def _claim_doc(claim: Claim | None) -> Document | None:
    return claim.model_dump() if claim is not None else None


class Deadlines:
    """The deadlines of the open urgent items (``review_deadlines``): one document per item,
    deleted once it is decided. The look for overdue items reads this small collection
    (bounded by the urgent items waiting), never the queue."""

    def __init__(self, db: Database) -> None:
        self._deadlines = db.write(REVIEW_DEADLINES)

    async def ensure_indexes(self) -> None:
        """``due`` indexed, so the look for overdue items is a range read where the server
        uses indexes (MongoDB; FerretDB v1 reads the small collection through)."""
        await self._deadlines.create_index("due")

    async def add(self, item_id: str, municipality: str, due: datetime) -> bool:
        """The deadline of a newly queued urgent item; False if it was there (redelivery)."""
        try:
            await self._deadlines.insert_one(
                {"_id": item_id, "municipality": municipality, "due": due, "notified_at": None}
            )
        except DuplicateKeyError:
            return False
        return True

    async def passed(self, now: datetime) -> list[Document]:
        """The deadlines passed by ``now``, notified or not."""
        return [d async for d in self._deadlines.find({"due": {"$lte": now}})]

    async def notified(self, item_id: str, at: datetime) -> None:
        await self._deadlines.update_one({"_id": item_id}, {"$set": {"notified_at": at}})

    async def done(self, item_id: str) -> None:
        """The item was decided: its deadline no longer matters."""
        await self._deadlines.delete_one({"_id": item_id})


class Vettings:
    """Coordinators' decisions on pending joins (``review_vettings``), inserted once: a
    join is decided once, and each decision is published until the broker confirmed it."""

    def __init__(self, db: Database) -> None:
        self._vettings = db.write(REVIEW_VETTINGS)

    async def add(self, decision: MembershipDecision) -> bool:
        """Record ``decision``; False if its join was decided before."""
        try:
            await self._vettings.insert_one(
                {"_id": decision.id, **decision.model_dump(exclude={"id"}), "published": False}
            )
        except DuplicateKeyError:
            return False
        return True

    async def get(self, decision_id: str) -> MembershipDecision | None:
        doc = await self._vettings.find_one({"_id": decision_id})
        if doc is None:
            return None
        fields = {k: v for k, v in doc.items() if k not in ("_id", "published")}
        return MembershipDecision.model_validate({"id": doc["_id"], **fields})

    async def decided(self, decision_ids: list[str]) -> set[str]:
        """Which of these joins were decided here (the register may not show it yet)."""
        if not decision_ids:
            return set()
        found = await asyncio.gather(
            *(self._vettings.find_one({"_id": i}, projection={"_id": 1}) for i in sorted(set(decision_ids)))
        )
        return {d["_id"] for d in found if d is not None}

    async def published(self, decision_id: str) -> None:
        await self._vettings.update_one({"_id": decision_id}, {"$set": {"published": True}})

    async def unpublished(self) -> list[MembershipDecision]:
        cursor = self._vettings.find({"published": False}, projection={"_id": 1})
        found = [await self.get(d["_id"]) async for d in cursor]
        return [d for d in found if d is not None]


class Users:
    """Console users (``review_users``): argon2 hashes, never passwords."""

    def __init__(self, db: Database) -> None:
        self._users = db.write(REVIEW_USERS)

    async def put(self, account: Account, password_hash: str) -> None:
        """Add or replace a user (a new password unlocks the account)."""
        doc = {**account.model_dump(exclude={"name"}), "failures": 0, "locked_until": None}
        await self._users.replace_one(
            {"_id": account.name}, {**doc, "password_hash": password_hash}, upsert=True
        )

    async def get(self, name: str) -> tuple[Account, str] | None:
        """The account and its password hash."""
        doc = await self._users.find_one({"_id": name})
        if doc is None:
            return None
        return _account(doc), doc["password_hash"]

    async def of(self, municipality: str) -> list[Account]:
        """The municipality's accounts, by name (for ``buurtalert review user list``)."""
        cursor = self._users.find({"municipality": municipality}, projection={"password_hash": 0})
        return sorted([_account(d) async for d in cursor], key=lambda a: a.name)

    async def failed(self, name: str, failures: int, locked_until: datetime | None) -> None:
        await self._users.update_one(
            {"_id": name}, {"$set": {"failures": failures, "locked_until": locked_until}}
        )

    async def succeeded(self, name: str, password_hash: str | None) -> None:
        """Reset the failures; store a rehashed password when argon2's parameters changed."""
        update: Document = {"failures": 0, "locked_until": None}
        if password_hash:
            update["password_hash"] = password_hash
        await self._users.update_one({"_id": name}, {"$set": update})


def _account(doc: Document) -> Account:
    """An account as stored; one stored before scopes existed has none (see ``SCOPED``)."""
    return Account(
        name=doc["_id"],
        municipality=doc["municipality"],
        role=Role(doc["role"]),
        groups=tuple(doc.get("groups") or ()),
        districts=tuple(doc.get("districts") or ()),
        failures=doc.get("failures", 0),
        locked_until=doc.get("locked_until"),
    )


class Sessions:
    """Console sessions (``review_sessions``), by the hash of their token."""

    def __init__(self, db: Database) -> None:
        self._sessions = db.write(REVIEW_SESSIONS)

    async def create(self, token_hash: str, account: Account, csrf: str, expires: datetime) -> None:
        with contextlib.suppress(DuplicateKeyError):  # 256 random bits: never in practice
            await self._sessions.insert_one(
                {
                    "_id": token_hash,
                    "user": account.name,
                    "municipality": account.municipality,
                    "role": account.role.value,
                    "groups": list(account.groups),
                    "districts": list(account.districts),
                    "csrf": csrf,
                    "expires": expires,
                }
            )

    async def get(self, token_hash: str) -> Document | None:
        return await self._sessions.find_one({"_id": token_hash})

    async def delete(self, token_hash: str) -> None:
        await self._sessions.delete_one({"_id": token_hash})

    async def end_all(self, user: str) -> int:
        """End every session of ``user`` (their account was replaced: a new role, scope or
        password holds from their next login)."""
        result = await self._sessions.delete_many({"user": user})
        return result.deleted_count

"""The directory in MongoDB: one document per municipality (``directories``), the
membership register (``memberships``) applied on top of it, and a cache."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.errors import DuplicateKeyError

from buurtalert.directory.model import Directory, Membership, MembershipState, apply_memberships
from buurtalert.shared.collections import DIRECTORIES, MEMBERSHIP_VERSIONS, MEMBERSHIPS
from buurtalert.shared.mongo import Database, DocumentLocks


async def store_directory(db: Database, directory: Directory) -> int:
    """Replace the municipality's directory; loading the same file twice changes nothing.

    GeoJSON geometries are stored as JSON text: FerretDB v1 cannot store nested arrays."""
    doc = directory.model_dump(mode="json")
    for district in doc["districts"]:
        if district["geometry"] is not None:
            district["geometry"] = json.dumps(district["geometry"])
    await db.write(DIRECTORIES).replace_one(
        {"_id": directory.municipality.id}, {"_id": directory.municipality.id, **doc}, upsert=True
    )
    return len(directory.groups)


async def fetch_directory(db: Database, municipality: str) -> Directory | None:
    """The stored directory with the membership register applied (see :class:`Memberships`)."""
    directory = await _stored_directory(db, municipality)
    if directory is None:
        return None
    return apply_memberships(directory, await Memberships(db).of(municipality))


async def _stored_directory(db: Database, municipality: str) -> Directory | None:
    doc = await db.read(DIRECTORIES).find_one({"_id": municipality})
    if doc is None:
        return None
    doc.pop("_id")
    for district in doc["districts"]:
        if isinstance(district.get("geometry"), str):
            district["geometry"] = json.loads(district["geometry"])
    return Directory.model_validate(doc)


Document = dict[str, Any]


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class Memberships:
    """The membership register (``memberships``), one document per member."""

    def __init__(self, db: Database) -> None:
        self._db = db
        # FerretDB v1 writes a whole document back: a conditional replace or an $inc is
        # only safe against the other writes of this process when they take turns.
        self._locks = DocumentLocks()

    @staticmethod
    def _id(municipality: str, pseudonym: str) -> str:
        return f"{municipality}:{pseudonym}"

    async def _change(
        self, municipality: str, pseudonym: str, at: datetime, change: Callable[[Document | None], Document]
    ) -> bool:
        """Apply ``change`` to the member's document if ``at`` is newer than the last
        event applied; False (nothing done) for an older or concurrent event."""
        key = self._id(municipality, pseudonym)
        register = self._db.write(MEMBERSHIPS)
        current = await register.find_one({"_id": key})
        if current is not None and _utc(current["changed_at"]) >= _utc(at):
            return False
        changed = change(current)
        new = {
            **changed,
            "asking": bool(changed.get("requested")),
            "_id": key,
            "municipality": municipality,
            "pseudonym": pseudonym,
            "changed_at": at,
        }
        if current is None:
            try:
                await register.insert_one(new)
            except DuplicateKeyError:
                return False
            await self._changed(municipality)
            return True
        async with self._locks.hold(key):
            replaced = await register.replace_one({"_id": key, "changed_at": current["changed_at"]}, new)
        if replaced.matched_count == 1:
            await self._changed(municipality)
        return replaced.matched_count == 1

    async def _changed(self, municipality: str) -> None:
        """Give the municipality's register a new version, so cached directories reload it.
        The version is the time of the change in nanoseconds, set, not raised: of two
        processes' concurrent ``$inc`` FerretDB v1 can lose one, and the version would not
        change for the second change; a ``$set`` written after the change always does."""
        await self._db.write(MEMBERSHIP_VERSIONS).update_one(
            {"_id": municipality}, {"$set": {"version": time.time_ns()}}, upsert=True
        )

    async def version(self, municipality: str) -> int:
        doc = await self._db.read(MEMBERSHIP_VERSIONS).find_one({"_id": municipality})
        return int(doc["version"]) if doc else 0

    async def join(self, municipality: str, pseudonym: str, address: str, group: str, at: datetime) -> bool:
        """Ask to join ``group``: PENDING until a coordinator approves (an approved
        member stays ACTIVE for its other groups). False if a newer event was applied."""

        def joined(current: Document | None) -> Document:
            state = (current or {}).get("state", MembershipState.ACTIVE if current else None)
            groups = list((current or {}).get("groups", [])) if state == MembershipState.ACTIVE else []
            requested = list((current or {}).get("requested", [])) if state != MembershipState.LEFT else []
            if group not in groups and group not in requested:
                requested.append(group)
            active = state == MembershipState.ACTIVE
            return {
                "state": (MembershipState.ACTIVE if active else MembershipState.PENDING).value,
                "groups": groups,
                "requested": requested,
                "address": address,
                "consent_one_to_one": True,
            }

        return await self._change(municipality, pseudonym, at, joined)

    async def leave(self, municipality: str, pseudonym: str, at: datetime) -> bool:
        """Opt out of one-to-one delivery everywhere; the address itself is forgotten."""

        def left(_: Document | None) -> Document:
            return {
                "state": MembershipState.LEFT.value,
                "groups": [],
                "requested": [],
                "address": None,
                "consent_one_to_one": False,
            }

        return await self._change(municipality, pseudonym, at, left)

    async def vet(
        self,
        municipality: str,
        pseudonym: str,
        group: str,
        approved: bool,
        requested_at: datetime,
        at: datetime,
    ) -> bool:
        """A coordinator's decision on the member's request to join ``group`` (asked at
        ``requested_at``): approved, the group becomes theirs and they are active; refused,
        the request is dropped, and a member left with no group and no request is LEFT (their
        address forgotten). False, nothing done, when the request is no longer there as it was
        decided on (a newer event of the member's, or this decision applied already)."""
        key = self._id(municipality, pseudonym)
        current = await self._db.write(MEMBERSHIPS).find_one({"_id": key})
        if (
            current is None
            or group not in current.get("requested", [])
            or _utc(current["changed_at"]) != _utc(requested_at)
        ):
            return False

        def vetted(doc: Document | None) -> Document:
            assert doc is not None
            groups = list(doc.get("groups", []))
            requested = [g for g in doc.get("requested", []) if g != group]
            if approved and group not in groups:
                groups.append(group)
            if groups:
                state = MembershipState.ACTIVE
            elif requested:
                state = MembershipState.PENDING
            else:
                state = MembershipState.LEFT
            keep = state is not MembershipState.LEFT
            return {
                "state": state.value,
                "groups": groups,
                "requested": requested,
                "removed": [g for g in doc.get("removed", []) if not (approved and g == group)],
                "address": doc.get("address") if keep else None,
                "consent_one_to_one": bool(doc.get("consent_one_to_one")) and keep,
            }

        # after the request, however the clocks differ (the register keeps milliseconds)
        moment = max(_utc(at), _utc(requested_at) + timedelta(milliseconds=1))
        return await self._change(municipality, pseudonym, moment, vetted)

    async def remove(self, municipality: str, pseudonym: str, group: str, at: datetime) -> bool | None:
        """A removal agreed by two admins or coordinators: the member no longer belongs to
        ``group`` (the file's groups included); with no group left they are LEFT and their
        address forgotten. None when the member is not in the register (known only from the
        directory file, which the operator edits); False when a newer event was applied or
        the removal was applied already."""
        current = await self._db.write(MEMBERSHIPS).find_one({"_id": self._id(municipality, pseudonym)})
        if current is None:
            return None
        if group in current.get("removed", []) and group not in current.get("groups", []):
            return False

        def removed(doc: Document | None) -> Document:
            assert doc is not None
            groups = [g for g in doc.get("groups", []) if g != group]
            requested = [g for g in doc.get("requested", []) if g != group]
            state = MembershipState(doc.get("state", MembershipState.ACTIVE.value))
            if state is not MembershipState.LEFT and not groups and not requested:
                state = MembershipState.LEFT
            keep = state is not MembershipState.LEFT
            return {
                "state": state.value,
                "groups": groups,
                "requested": requested,
                "removed": [*[g for g in doc.get("removed", []) if g != group], group],
                "address": doc.get("address") if keep else None,
                "consent_one_to_one": bool(doc.get("consent_one_to_one")) and keep,
            }

        moment = max(_utc(at), _utc(current["changed_at"]) + timedelta(milliseconds=1))
        return await self._change(municipality, pseudonym, moment, removed)

    async def find(self, municipality: str, pseudonym: str) -> Membership | None:
        """The member's entry in the register, if any."""
        doc = await self._db.read(MEMBERSHIPS).find_one(
            {"_id": self._id(municipality, pseudonym)}, projection={"_id": 0}
        )
        return Membership.model_validate(doc) if doc else None

    async def pending(self, municipality: str, group: str | None = None) -> list[Membership]:
        """The joins awaiting a coordinator's approval (for the review console): all of the
        municipality's, or of the members asking for ``group`` (among others, maybe). An
        active member asking for another group is among them (``asking``); so is a pending
        member written before ``asking`` was."""
        asking = {"municipality": municipality, "asking": True}
        pending = {"municipality": municipality, "state": MembershipState.PENDING.value}
        if group is not None:  # an element of the array, as MongoDB matches arrays
            asking["requested"] = pending["requested"] = group
        register = self._db.read(MEMBERSHIPS)
        found: dict[str, Membership] = {}
        for cursor in (
            register.find(asking, projection={"_id": 0}),
            register.find(pending, projection={"_id": 0}),
        ):
            async for doc in cursor:
                found.setdefault(doc["pseudonym"], Membership.model_validate(doc))
        return [found[p] for p in sorted(found)]

    async def consents(self, municipality: str, pseudonym: str) -> bool | None:
        """Whether the member's own latest choice allows one-to-one delivery: False after
        STOP or while pending, True when active, None when they never chose by message."""
        doc = await self._db.read(MEMBERSHIPS).find_one({"_id": self._id(municipality, pseudonym)})
        if doc is None:
            return None
        return bool(doc.get("consent_one_to_one")) and doc.get("state", "active") == "active"

    async def of(self, municipality: str) -> list[Membership]:
        cursor = self._db.read(MEMBERSHIPS).find({"municipality": municipality}, projection={"_id": 0})
        return [Membership.model_validate(doc) async for doc in cursor]


@dataclass
class _Register:
    """A municipality's register as read: its version, each member's consent, when read
    and when its version was last looked up, and whether that version is still current."""

    version: int
    consents: dict[str, bool]
    read_at: float
    checked_at: float
    current: bool = True


class RegisterConsents:
    """Members' consent to one-to-one delivery (as :meth:`Memberships.consents`), answered
    from the municipality's register as read at its current version: the version is looked
    up at most every ``fresh`` seconds, so a fan-out to thousands of members does not ask
    the database once per recipient. A member's STOP is heeded within ``fresh`` seconds:
    after a change, each answer comes from the database until the register was read
    again, which happens at most every ``reload`` seconds (a large register is not read
    for every change)."""

    def __init__(
        self,
        memberships: Memberships,
        *,
        fresh: float = 1.0,
        reload: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._memberships = memberships
        self._fresh, self._reload, self._clock = fresh, reload, clock
        self._registers: dict[str, _Register] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def __call__(self, municipality: str, pseudonym: str) -> bool | None:
        register = self._registers.get(municipality)
        if register is None or self._clock() - register.checked_at >= self._fresh:
            register = await self._check(municipality)
        if register.current:
            return register.consents.get(pseudonym)
        return await self._memberships.consents(municipality, pseudonym)

    async def _check(self, municipality: str) -> _Register:
        """Look the register's version up (one lookup for all who ask at once), and read
        the register again if it changed and was read long enough ago."""
        async with self._locks.setdefault(municipality, asyncio.Lock()):
            register = self._registers.get(municipality)
            now = self._clock()
            if register is not None and now - register.checked_at < self._fresh:
                return register  # checked while this one waited
            version = await self._memberships.version(municipality)
            if register is not None and register.version == version:
                register.checked_at = now
                return register
            if register is None or now - register.read_at >= self._reload:
                members = await self._memberships.of(municipality)  # a change meanwhile: a new version
                consents = {
                    m.pseudonym: m.consent_one_to_one and m.state == MembershipState.ACTIVE for m in members
                }
                register = _Register(version, consents, now, now)
            else:
                register.current, register.checked_at = False, now  # answers from the database
            self._registers[municipality] = register
            return register


#: How long a process keeps a directory it read: a reload, or a change of the membership
#: register (a join approved, a member who left), shows in routing within this time.
DIRECTORY_CACHE_SECONDS = 10.0


class Directories:
    """Directories from MongoDB, cached for ``ttl`` seconds (a reload shows within that).

    A reload reads the directory (one document) and the register's version; the register
    itself, which grows with the members, is read again only when its version changed,
    or every ``full_reload`` seconds in case a raise of the version was lost in a crash."""

    def __init__(
        self, db: Database, ttl: float = DIRECTORY_CACHE_SECONDS, full_reload: float = 600.0
    ) -> None:
        self._db, self._ttl, self._full = db, ttl, full_reload
        self._memberships = Memberships(db)
        self._cache: dict[str, tuple[float, Directory | None]] = {}
        #: Per municipality: when read, the version read, the register.
        self._registers: dict[str, tuple[float, int, list[Membership]]] = {}

    async def get(self, municipality: str) -> Directory | None:
        cached = self._cache.get(municipality)
        if cached is None or time.monotonic() - cached[0] > self._ttl:
            cached = (time.monotonic(), await self._load(municipality))
            self._cache[municipality] = cached
        return cached[1]

    async def _load(self, municipality: str) -> Directory | None:
        directory = await _stored_directory(self._db, municipality)
        if directory is None:
            return None
        version = await self._memberships.version(municipality)
        known = self._registers.get(municipality)
        if known is None or known[1] != version or time.monotonic() - known[0] > self._full:
            known = (time.monotonic(), version, await self._memberships.of(municipality))
            self._registers[municipality] = known
        return apply_memberships(directory, known[2])

    def forget(self, municipality: str) -> None:
        """Drop the cached copy, after the membership register changed."""
        self._cache.pop(municipality, None)
        self._registers.pop(municipality, None)

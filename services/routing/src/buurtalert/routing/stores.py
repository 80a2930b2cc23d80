"""Routing's stores: incidents (``incidents``, ``incident_reports``,
``incident_tellings``, ``open_incidents``) and group rates (``group_rates``).

Every operation is a lookup or an update by ``_id``, so its cost does not grow with the
history: a report's incident is found through its own small document in
``incident_reports``, and the incidents a new report may join are one short document per
district in ``open_incidents`` (its newest entries, the rest in immutable segments that
each process reads once), pruned to the time window.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, DuplicateKeyError
from pymongo.results import UpdateResult

from buurtalert.directory.model import Directory
from buurtalert.routing.rules import WINDOW, Incident, matching_incident
from buurtalert.shared.collections import (
    GROUP_RATES,
    INCIDENT_REPORTS,
    INCIDENT_TELLINGS,
    INCIDENTS,
    OPEN_INCIDENTS,
)
from buurtalert.shared.models import InboundMessage, Location, short_reference, stable_id, utcnow
from buurtalert.shared.mongo import Database, Document, DocumentLocks, one_statement_each

#: At most this many incidents per district are open to new reports at once.
OPEN_PER_DISTRICT = 200
#: A district's next version taken by a writer that died before writing it is free again after this.
CLAIM_EXPIRES = timedelta(seconds=30)
#: A district's open incidents as this process last read or wrote them are used for this long
#: without reading them again (seconds). Writing a district checks its version, so a stale copy
#: never loses an incident; it can only miss, for this long, an incident that another routing
#: process opened in a neighbouring district.
SLOT_FRESH_FOR = 2.0
#: A district's document holds up to this many of its newest entries; a write that would
#: hold more moves them, as they are, into a segment of their own (one small insert) and
#: the document starts afresh. So a report rewrites a few entries, not the district's
#: hundreds (FerretDB v1 reads and writes a document whole: at 200 entries, ~70 KB per
#: write, the district's write was routing's largest cost).
HEAD_ENTRIES = 16
#: At most this many segments per district; beyond, the oldest is dropped (its entries
#: are older than those of the :data:`OPEN_PER_DISTRICT` kept).
MAX_SEGMENTS = 2 * OPEN_PER_DISTRICT // HEAD_ENTRIES


async def insert_new(collection: AsyncCollection[Document], docs: list[Document]) -> set[str]:
    """Insert ``docs``, each unless its ``_id`` is there already (an earlier attempt, or
    another process, inserted it); the ids inserted now."""
    if not docs:
        return set()
    try:
        await collection.insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(e.get("code") != 11000 for e in errors):
            raise
        duplicates = {docs[e["index"]]["_id"] for e in errors}
        return {d["_id"] for d in docs} - duplicates
    return {d["_id"] for d in docs}


async def by_ids(collection: AsyncCollection[Document], ids: Iterable[str]) -> dict[str, Document]:
    """The documents with these ``_id`` values, one lookup by ``_id`` each, at once: the
    one query shape every backend answers from its primary key."""
    wanted = sorted(set(ids))
    found = await asyncio.gather(*(collection.find_one({"_id": i}) for i in wanted))
    return {doc["_id"]: doc for doc in found if doc is not None}


class GroupRates:
    """Non-urgent messages delivered per group and hour: one document per group, hour and
    message (``_id`` group:YYYYMMDDHH:message id), counted on the indexed ``group_hour``.
    Counting is an insert, so it is idempotent (a redelivered message finds its own
    document) and nothing is lost when two routing processes count one group at once: a
    counter or a set in one document would be read and written back whole by FerretDB v1,
    and of two processes' updates one would be lost; the database's primary key keeps every
    insert. A group-hour's documents are bounded by the group's ``max_per_hour``."""

    def __init__(self, db: Database) -> None:
        self._rates = db.write(GROUP_RATES)

    @staticmethod
    def _key(group_id: str, at: datetime) -> str:
        return f"{group_id}:{at:%Y%m%d%H}"

    async def counts(self, group_ids: Iterable[str], at: datetime) -> dict[str, int]:
        """This hour's count of each group that has one."""
        wanted = sorted(set(group_ids))
        found = await asyncio.gather(
            *(self._rates.count_documents({"group_hour": self._key(g, at)}) for g in wanted)
        )
        return {g: n for g, n in zip(wanted, found, strict=True) if n}

    async def count(self, group_ids: Iterable[str], message_id: str, at: datetime) -> None:
        docs = [
            {"_id": f"{key}:{message_id}", "group_hour": key, "at": at}
            for key in sorted({self._key(g, at) for g in group_ids})
        ]
        await insert_new(self._rates, docs)


def _latest(batch: list[_Waiting], chosen: dict[str, tuple[str, str]]) -> dict[str, datetime]:
    """The latest report of the batch per incident it joined or opened."""
    latest: dict[str, datetime] = {}
    for w in batch:
        if w.message.id in chosen:
            incident_id = chosen[w.message.id][1]
            latest[incident_id] = max(latest.get(incident_id, w.message.sent_at), w.message.sent_at)
    return latest


def _slot(municipality: str, district: str | None) -> str:
    return f"open:{municipality}:{district or '-'}"


def _pruned(entries: Iterable[Document]) -> list[Document]:
    """The entries open to new reports: within the time window of the newest, at most
    :data:`OPEN_PER_DISTRICT` of them, the most recently seen, oldest first."""
    entries = list(entries)
    if not entries:
        return []
    newest = max(e["last_seen"] for e in entries)
    kept = sorted((e for e in entries if newest - e["last_seen"] <= WINDOW), key=lambda e: e["last_seen"])
    return kept[-OPEN_PER_DISTRICT:]


def _view(head: list[Document], segments: Iterable[list[Document]]) -> list[Document]:
    """A district's open incidents from its segments (oldest first) and its own newest
    entries: each incident as its latest source has it (a later copy replaces an earlier
    one, a closed one, marked ``gone``, is left out), pruned."""
    latest: dict[str, Document] = {}
    for entries in (*segments, head):
        for e in entries:
            latest[e["id"]] = e
    return _pruned(e for e in latest.values() if not e.get("gone"))


def _merged(head: list[Document], changes: list[Document]) -> list[Document]:
    """``head`` with ``changes``: a changed entry replaces its earlier copy."""
    changed = {e["id"] for e in changes}
    return [e for e in head if e["id"] not in changed] + changes


def _drop_unused(
    head: list[Document], segments: dict[str, list[Document]]
) -> tuple[list[Document], list[str]]:
    """The district's entries from ``head`` and ``segments`` (oldest first), after taking
    out of ``segments`` the oldest that add nothing to them (each of their entries
    replaced by a later copy, closed or out of the window; a closing in the oldest segment
    hides nothing older) or exceed :data:`MAX_SEGMENTS`; and the ids taken out."""
    dropped: list[str] = []
    while True:
        entries = _view(head, segments.values())
        if not segments:
            return entries, dropped
        oldest = next(iter(segments))
        shown = {id(e) for e in entries}
        if len(segments) <= MAX_SEGMENTS and any(id(e) in shown for e in segments[oldest]):
            return entries, dropped
        dropped.append(oldest)
        del segments[oldest]


@dataclass(frozen=True)
class _District:
    """A district's open incidents as read or written: the ``version`` of its document,
    the newest entries the document holds itself (``head``), its segments' entries by id
    (oldest first) and what they add up to (``entries``, see :func:`_view`)."""

    version: int
    head: list[Document]
    segments: dict[str, list[Document]]
    entries: list[Document]


def _telling_id(incident_id: str, group: tuple[str, str]) -> str:
    municipality, group_id = group
    return f"{incident_id}|{municipality}/{group_id}"


def _group(key: str) -> tuple[str, str]:
    """``(municipality, group id)`` of a stored ``municipality/group`` key."""
    municipality, group_id = key.split("/", 1)
    return municipality, group_id


def _incident(
    doc: Document, *, closed: bool | None = None, told: dict[tuple[str, str], str] | None = None
) -> Incident:
    location = Location.model_validate(doc["location"]) if doc.get("location") else None
    return Incident(
        id=doc.get("_id") or doc["id"],
        municipality=doc["municipality"],
        district=doc.get("district"),
        text=doc["text"],
        location=location,
        last_seen=doc["last_seen"],
        category=doc.get("category"),
        told=told or {},
        closed=doc.get("closed_at") is not None if closed is None else closed,
    )


@dataclass(frozen=True)
class Attached:
    """A report's incident, and whether it joined one that another report opened;
    ``written``: done once the incident and the report's membership are stored (nothing
    about the report may be published before)."""

    incident: Incident
    joined: bool
    written: Awaitable[Any] | None = None


@dataclass
class _Waiting:
    message: InboundMessage
    district: str | None
    directory: Directory
    done: asyncio.Future[Attached]


class SlotWriter:
    """Attaches reports of one district one batch at a time: the reports that arrive while
    a batch is written wait and go together in the next (one read and one conditional
    write of the district's open incidents per batch, not per report)."""

    def __init__(self, write: Callable[[list[_Waiting]], Awaitable[None]]) -> None:
        self._write = write
        self._pending: dict[str, list[_Waiting]] = {}
        self._writers: dict[str, asyncio.Task[None]] = {}

    async def submit(self, slot: str, waiting: _Waiting) -> Attached:
        self._pending.setdefault(slot, []).append(waiting)
        writer = self._writers.get(slot)
        if writer is None or writer.done():
            self._writers[slot] = asyncio.create_task(self._drain(slot))
        return await waiting.done

    async def _drain(self, slot: str) -> None:
        await asyncio.sleep(0)  # let the reports of this moment join
        while batch := self._pending.pop(slot, []):
            try:
                await self._write(batch)
            except Exception as exc:  # every waiting report fails alike and is retried
                for w in batch:
                    if not w.done.done():
                        w.done.set_exception(exc)
        self._writers.pop(slot, None)


T = TypeVar("T")

#: How often a district's open incidents are read and written again when another writer
#: changed them first, a little later each time (5 ms more per attempt).
ATTEMPTS = 20


async def _again_until_done(attempt_once: Callable[[int], Awaitable[T | None]], what: str) -> T:
    """``attempt_once(n)`` for n = 0, 1, ... until it answers (not None): None means another
    writer changed the district meanwhile. Raises after :data:`ATTEMPTS`, so the message
    takes the retry path instead of being decided on a district that never settled."""
    for attempt in range(ATTEMPTS):
        done = await attempt_once(attempt)
        if done is not None:
            return done
        await asyncio.sleep(0.005 * attempt)
    raise RuntimeError(f"{what}: open incidents changed under every attempt")


class Incidents:
    """Incidents: each report attached to the event it reports, the groups each incident
    reached (and which report told them), and its closing. Two routing processes may
    attach to one district at once: the district's open incidents carry a version, a
    writer takes the next version by inserting a claim (one writer per version, in any
    process), and a write that finds another version reads again and retries.

    A district's document holds its newest entries and the ids of its segments, each an
    immutable document of earlier entries (``<slot>#<version>.<random>``), written before
    the version that lists it and deleted only after a version no longer lists it; each
    process reads a segment once."""

    def __init__(self, db: Database) -> None:
        self._incidents = db.write(INCIDENTS)
        self._reports = db.write(INCIDENT_REPORTS)
        self._tellings = db.write(INCIDENT_TELLINGS)
        self._open = db.write(OPEN_INCIDENTS)
        self._writer = SlotWriter(self._attach_batch)
        self._locks = DocumentLocks()
        #: Each district's open incidents as this process last read or wrote them (None: no
        #: document), with the moment (``time.monotonic``).
        self._slots: dict[str, tuple[float, _District | None]] = {}
        #: Segments' entries by id (segments never change), the most recently used last.
        self._segments: OrderedDict[str, list[Document]] = OrderedDict()
        #: The incidents of those entries as parsed for matching, by id.
        self._parsed: dict[str, Incident] = {}

    def _remembered(self, keys: list[str]) -> dict[str, _District] | None:
        """The districts' open incidents as last seen here, if all were seen recently."""
        now = time.monotonic()
        found: dict[str, _District] = {}
        for key in keys:
            seen = self._slots.get(key)
            if seen is None or now - seen[0] > SLOT_FRESH_FOR:
                return None
            if seen[1] is not None:
                found[key] = seen[1]
        return found

    def _remember(self, key: str, district: _District | None) -> None:
        self._slots[key] = (time.monotonic(), district)

    def _keep_segment(self, segment_id: str, entries: list[Document]) -> None:
        self._segments[segment_id] = entries
        self._segments.move_to_end(segment_id)
        while len(self._segments) > 64 * MAX_SEGMENTS:
            self._segments.popitem(last=False)

    async def _read(self, keys: list[str]) -> dict[str, _District] | None:
        """The districts' open incidents as stored now (each remembered); None if a
        segment a district listed was gone when looked up (read again)."""
        heads = await by_ids(self._open, keys)
        listed = {s for head in heads.values() for s in head.get("segments", ())}
        segments = {s: self._segments[s] for s in listed if s in self._segments}
        if missing := listed - segments.keys():
            found = await by_ids(self._open, missing)
            if found.keys() != missing:  # dropped since its district was read
                for key in keys:
                    self._slots.pop(key, None)
                return None
            for segment_id, doc in found.items():
                self._keep_segment(segment_id, doc["entries"])
                segments[segment_id] = doc["entries"]
        districts: dict[str, _District] = {}
        for key in keys:
            head = heads.get(key)
            if head is None:
                self._remember(key, None)
                continue
            own = {s: segments[s] for s in head.get("segments", [])}
            entries = _view(head.get("entries", []), own.values())
            districts[key] = _District(head["version"], head.get("entries", []), own, entries)
            self._remember(key, districts[key])
        return districts

    async def open_in(self, municipality: str, district: str | None) -> list[Incident]:
        """The incidents of a district open to new reports, as stored now."""
        key = _slot(municipality, district)

        async def read(_attempt: int) -> list[Incident] | None:
            districts = await self._read([key])
            if districts is None:
                return None  # a segment went meanwhile: read again
            found = districts.get(key)
            return [_incident(e, closed=False) for e in (found.entries if found else [])]

        return await _again_until_done(read, "reading open incidents")

    def _candidates(self, entries: dict[str, list[Document]]) -> dict[str, Incident]:
        """The open incidents of these districts' entries, each parsed once while it is
        unchanged (a busy district holds hundreds, matched against every report)."""
        parsed: dict[str, Incident] = {}
        for key in sorted(entries):
            for e in entries[key]:
                known = self._parsed.get(e["id"])
                parsed[e["id"]] = (
                    known
                    if known is not None and known.last_seen == e["last_seen"]
                    else _incident(e, closed=False)
                )
        self._parsed.update(parsed)
        if len(self._parsed) > 4 * len(parsed) + 1000:  # incidents no district offers any more
            self._parsed = dict(parsed)
        return dict(parsed)

    async def _update(
        self, incident_id: str, query: Document, update: Document, **options: Any
    ) -> UpdateResult:
        """Update incident ``incident_id``, no other update of it in this process at the same time."""
        async with self._locks.hold(incident_id):
            try:
                return await self._incidents.update_one({"_id": incident_id, **query}, update, **options)
            except DuplicateKeyError:
                # Two processes upserted a new incident at once (one opened it, the other's
                # report joined it): the loser's document is there now, so it updates it.
                return await self._incidents.update_one({"_id": incident_id, **query}, update, **options)

    async def containing(self, ref: str) -> Incident | None:
        """The incident with id ``ref`` or holding the report ``ref``, with the groups it told."""
        doc = await self._incidents.find_one({"_id": ref})
        if doc is None:
            report = await self._reports.find_one({"_id": ref})
            doc = await self._incidents.find_one({"_id": report["incident"]}) if report else None
        if doc is None:
            return None
        # An incident from before incident_tellings kept its groups in its own "told".
        earlier = {_group(key): min(tellers) for key, tellers in (doc.get("told") or {}).items() if tellers}
        return _incident(doc, told=earlier | await self.told(doc["_id"]))

    async def told(self, incident_id: str) -> dict[tuple[str, str], str]:
        """The groups the incident reached, each with the report that told it."""
        found: dict[tuple[str, str], str] = {}
        async for telling in self._tellings.find({"incident": incident_id}):
            found[_group(telling["group"])] = telling["message"]
        return found

    async def tell(
        self, wanted: list[tuple[str, str, list[tuple[str, str]]]]
    ) -> dict[str, dict[tuple[str, str], str]]:
        """Take the telling of groups: for each ``(message id, incident id, groups)``, which
        report tells each group, per incident. A group goes to the first report that asks
        (in this list, or earlier, in this process or another) and stays with it: asking
        again (a redelivery) answers the same. One insert for all, then one lookup by ``_id``
        of each group another report had taken; the database's primary key decides, so no
        two reports (nor two processes) tell one group."""
        at = utcnow()
        first: dict[str, Document] = {}
        for message_id, incident_id, groups in wanted:
            for group in groups:
                telling_id = _telling_id(incident_id, group)
                first.setdefault(
                    telling_id,
                    {
                        "_id": telling_id,
                        "incident": incident_id,
                        "group": "/".join(group),
                        "message": message_id,
                        "at": at,
                    },
                )
        inserted = await insert_new(self._tellings, list(first.values()))
        taken = await by_ids(self._tellings, first.keys() - inserted)
        tellers: dict[str, dict[tuple[str, str], str]] = {}
        for telling_id, doc in first.items():
            teller = taken[telling_id]["message"] if telling_id in taken else doc["message"]
            tellers.setdefault(doc["incident"], {})[_group(doc["group"])] = teller
        return tellers

    async def attach(self, message: InboundMessage, district: str | None, directory: Directory) -> Attached:
        """The incident ``message`` belongs to: the one it already joined (a redelivery), an
        open one reporting the same event, or a new one; once it is stored."""
        attached = await self.attaching(message, district, directory)
        if attached.written is not None:
            await attached.written
        return attached

    async def attaching(
        self, message: InboundMessage, district: str | None, directory: Directory
    ) -> Attached:
        """Like :meth:`attach`, but as soon as the incident is decided: ``written`` is done
        once it is stored (await it before publishing anything about ``message``)."""
        waiting = _Waiting(message, district, directory, asyncio.get_running_loop().create_future())
        return await self._writer.submit(_slot(message.municipality, district), waiting)

    async def _attach_batch(self, batch: list[_Waiting]) -> None:
        async def attach(attempt: int) -> bool | None:
            # The first attempt may use the districts as this process last saw them; after
            # another writer got there first, they are read again.
            return await self._try_attach(batch, remembered=attempt == 0) or None

        await _again_until_done(attach, "attaching reports")

    async def _try_attach(self, batch: list[_Waiting], *, remembered: bool) -> bool:
        first = batch[0]
        municipality, district, directory = first.message.municipality, first.district, first.directory
        own = _slot(municipality, district)
        found = directory.district(district) if district else None
        keys = [own, *(_slot(municipality, n) for n in (found.neighbours if found else ()))]
        reports = [w.message.id for w in batch]
        seen = self._remembered(keys) if remembered else None
        claimed = None  # the version after the remembered one of its own district, taken early
        if seen is None:
            read, known = await asyncio.gather(self._read(keys), by_ids(self._reports, reports))
            if read is None:
                return False
            slots = read
        elif own in seen:
            # A batch nearly always writes its own district: its claim is taken while the
            # reports are looked up (and given back below if it was not needed).
            slots = seen
            known, taken = await asyncio.gather(
                by_ids(self._reports, reports), self._claim(own, seen[own].version)
            )
            if not taken:
                return False
            claimed = seen[own].version
        else:
            slots, known = seen, await by_ids(self._reports, reports)
        try:
            return await self._attach_on(batch, slots, known, keys, claimed=claimed is not None)
        finally:
            if claimed is not None and self._version(own) != claimed + 1:  # own district not written
                await self._open.delete_one({"_id": f"{own}@{claimed + 1}"})  # its claim given back

    def _version(self, key: str) -> int | None:
        """The version of a district's open incidents this process last read or wrote."""
        _, district = self._slots.get(key, (0.0, None))
        return district.version if district is not None else None

    async def _attach_on(
        self,
        batch: list[_Waiting],
        slots: dict[str, _District],
        known: dict[str, Document],
        keys: list[str],
        *,
        claimed: bool,
    ) -> bool:
        """Attach ``batch`` on these open incidents of its districts (its own first in
        ``keys``), ``claimed``: the next version of its own is taken already."""
        first = batch[0]
        municipality, district, directory = first.message.municipality, first.district, first.directory
        own = keys[0]
        # Copies of the lists (an entry that changes is replaced, never changed in place): a
        # remembered district must not change unless its write succeeds.
        entries = {key: list(district.entries) for key, district in slots.items()}
        entries.setdefault(own, [])
        changed: set[str] = set()
        chosen: dict[str, tuple[str, str]] = {}  # message id -> (slot, incident id)
        candidates = self._candidates(entries)
        for w in batch:
            message = w.message
            if message.id in known:
                continue
            match = matching_incident(message, district, list(candidates.values()), directory)
            if match is not None:
                key = _slot(municipality, match.district)
                for n, e in enumerate(entries[key]):
                    if e["id"] == match.id and e["last_seen"] < message.sent_at:
                        entries[key][n] = {**e, "last_seen": message.sent_at}
                        candidates[match.id] = replace(match, last_seen=message.sent_at)
                chosen[message.id] = (key, match.id)
            else:
                incident_id = stable_id("inc", message.id)
                entry = {
                    "id": incident_id,
                    "municipality": municipality,
                    "district": district,
                    "category": message.category,
                    "text": message.text[:2000],
                    "location": message.location.model_dump() if message.location else None,
                    "opened_at": message.sent_at,
                    "last_seen": message.sent_at,
                }
                entries[own].append(entry)
                candidates[incident_id] = _incident(entry, closed=False)
                chosen[message.id] = (own, incident_id)
            changed.add(chosen[message.id][0])
        for key in sorted(changed):
            if not await self._write_slot(key, slots.get(key), entries[key], claimed=claimed and key == own):
                return False
        # The district is written: now each incident (created if new) and each report's own
        # document (an incident's reports are counted from these: inserts, so two processes
        # lose none), at once. A crash in between may leave a report whose incident is not
        # written yet: its redelivery writes it from the district's entry (below).
        entry_of = {e["id"]: e for key in entries for e in entries[key]}
        latest = _latest(batch, chosen)
        written = asyncio.gather(  # under way from here
            one_statement_each(self._upsert(entry_of[i], sent_at) for i, sent_at in latest.items()),
            self._insert_reports(
                [(message_id, incident_id) for message_id, (_, incident_id) in chosen.items()]
            ),
        )
        # A report attached now has its incident as its district's entry says (no need to read
        # it back); routing goes on with it while those writes are under way, and awaits them
        # before it publishes anything.
        for w in batch:
            if w.message.id in chosen:
                incident_id = chosen[w.message.id][1]
                doc = {**entry_of[incident_id], "last_seen": latest[incident_id]}
                joined = incident_id != stable_id("inc", w.message.id)
                w.done.set_result(Attached(_incident(doc), joined=joined, written=written))
        await written
        earlier = {doc["incident"] for doc in known.values()}
        docs = await by_ids(self._incidents, earlier)
        for incident_id in earlier - docs.keys():  # a report whose incident a crash left unwritten
            if incident_id not in entry_of:
                raise RuntimeError(f"incident {incident_id} is neither stored nor open")
            await self._upsert(entry_of[incident_id], entry_of[incident_id]["last_seen"])
            docs[incident_id] = entry_of[incident_id]
        for w in batch:
            if (report := known.get(w.message.id)) is not None:
                incident_id = report["incident"]
                joined = incident_id != stable_id("inc", w.message.id)
                w.done.set_result(Attached(_incident(docs[incident_id]), joined=joined))
        return True

    async def _upsert(self, entry: Document, last_seen: datetime) -> UpdateResult:
        """Write the incident of a district's ``entry``: created with its first report's
        fields if new, its latest report at least ``last_seen``."""
        first_fields = ("municipality", "district", "category", "text", "location", "opened_at")
        return await self._update(
            entry["id"],
            {},
            {
                "$setOnInsert": {k: entry[k] for k in first_fields}
                | {"ref": short_reference(entry["id"]), "closed_at": None},
                "$max": {"last_seen": last_seen},
            },
            upsert=True,
        )

    async def _write_slot(
        self, key: str, before: _District | None, entries: list[Document], *, claimed: bool = False
    ) -> bool:
        """Write a district's open incidents, now ``entries``, if no one else did since
        ``before`` was read (``claimed``: its next version is taken already). Entries are
        replaced when they change, never changed in place: what differs from ``before``
        is what changed."""
        if before is None:
            kept = _pruned(entries)
            try:
                await self._open.insert_one(
                    {"_id": key, "version": 1, "entries": kept, "segments": [], "updated_at": utcnow()}
                )
            except DuplicateKeyError:
                self._slots.pop(key, None)
                return False
            self._remember(key, _District(1, kept, {}, kept))
            return True
        earlier = {id(e) for e in before.entries}
        changes = [e for e in entries if id(e) not in earlier]
        return await self._swap_slot(key, before, changes, claimed=claimed)

    async def _swap_slot(
        self, key: str, before: _District, changes: list[Document], *, claimed: bool = False
    ) -> bool:
        """Write ``changes`` (new and changed entries, closed ones marked ``gone``) into a
        district's open incidents as of ``before`` (the next version), unless another
        writer got there first.

        FerretDB v1 checks an update's condition and writes the document back in two steps,
        so two writers conditional on one version could both succeed, and one's incidents
        would vanish. So the writer first takes the next version by inserting its claim
        (``<slot>@<version>``): the primary key lets one writer, in any process, have it.
        A claim whose writer died before writing is freed after :data:`CLAIM_EXPIRES`.

        ``before`` may be a version this process remembers and others have passed: then either
        the claim is taken, or it was deleted with the version after it and is taken now, but
        the update finds another version and changes nothing, and the claim (and the segment
        written for it) is deleted.

        When the district's own entries would be more than :data:`HEAD_ENTRIES`, they go
        into a new segment first (a name no other writer can have), and the document lists
        it; segments that add nothing any more are deleted once the document is written."""
        version = before.version
        claim = f"{key}@{version + 1}"
        if not claimed and not await self._claim(key, version):
            return False
        head, segments = _merged(before.head, changes), dict(before.segments)
        new_segment: tuple[str, list[Document]] | None = None
        if len(head) > HEAD_ENTRIES:
            new_segment = (f"{key}#{version + 1}.{secrets.token_hex(4)}", head)
            segments[new_segment[0]] = head
            head = []
        entries, dropped = _drop_unused(head, segments)
        now = utcnow()
        if new_segment is not None:  # stored before any version lists it
            await self._open.insert_one({"_id": new_segment[0], "entries": new_segment[1], "updated_at": now})
        async with self._locks.hold(key):
            # The claim that made ``version`` is no use to anyone once the slot is there:
            # it goes while this writer writes, not after (one round trip less per report).
            result, _ = await asyncio.gather(
                self._open.update_one(
                    {"_id": key, "version": version},
                    {
                        "$set": {"entries": head, "segments": list(segments), "updated_at": now},
                        "$inc": {"version": 1},
                    },
                ),
                self._open.delete_one({"_id": f"{key}@{version}"}),
            )
        if result.matched_count != 1:
            self._slots.pop(key, None)
            given_back = [claim, *([new_segment[0]] if new_segment else [])]  # taken for a version long gone
            await asyncio.gather(*(self._open.delete_one({"_id": i}) for i in given_back))
            return False
        if new_segment is not None:
            self._keep_segment(*new_segment)
        self._remember(key, _District(version + 1, head, segments, entries))
        if dropped:  # no version from now on lists them
            await asyncio.gather(*(self._open.delete_one({"_id": s}) for s in dropped))
            for segment_id in dropped:
                self._segments.pop(segment_id, None)
        return True

    async def _claim(self, key: str, version: int) -> bool:
        """Take the version after ``version`` of a district's open incidents (see
        :meth:`_swap_slot`); False if another writer has it."""
        claim = f"{key}@{version + 1}"
        now = utcnow()
        try:
            await self._open.insert_one({"_id": claim, "claim": True, "updated_at": now})
        except DuplicateKeyError:
            self._slots.pop(key, None)
            taken = await self._open.find_one({"_id": claim})
            if taken is not None and now - taken["updated_at"] > CLAIM_EXPIRES:
                await self._open.delete_one({"_id": claim, "updated_at": taken["updated_at"]})
            return False
        return True

    async def _insert_reports(self, pairs: list[tuple[str, str]]) -> None:
        """Insert each report's membership (a redelivered report's is there already)."""
        at = utcnow()
        await insert_new(self._reports, [{"_id": m, "incident": i, "at": at} for m, i in pairs])

    async def close(self, incident: Incident, message_id: str, at: datetime) -> None:
        await self._update(
            incident.id, {"closed_at": None}, {"$set": {"closed_at": at, "closed_by": message_id}}
        )
        await self._leave_open(incident.municipality, incident.district, incident.id)

    async def _leave_open(self, municipality: str, district: str | None, incident_id: str) -> None:
        """Take the incident out of its district's open incidents: it takes no new reports."""
        key = _slot(municipality, district)

        async def leave(_attempt: int) -> bool | None:
            districts = await self._read([key])
            if districts is None:
                return None  # a segment went meanwhile: read again
            found = districts.get(key)
            gone = [{**e, "gone": True} for e in (found.entries if found else []) if e["id"] == incident_id]
            if found is None or not gone or await self._swap_slot(key, found, gone):
                return True
            return None  # another writer changed the district first

        await _again_until_done(leave, "closing an incident")

    async def fed_back(
        self, incident_id: str, outcome_id: str, outcome: str, at: datetime, told: bool
    ) -> None:
        """The incident has its outcome, and ``told``: routing sent it to the groups it reached
        (``fed_back_at``; not when it reached none). It is over: closed, if it was open, and
        no longer open to new reports. Repeating it changes nothing."""
        await self._update(
            incident_id,
            {"outcome_id": None},
            {"$set": {"outcome_id": outcome_id, "outcome": outcome, "fed_back_at": at if told else None}},
        )
        await self._update(
            incident_id, {"closed_at": None}, {"$set": {"closed_at": at, "closed_by": outcome_id}}
        )
        doc = await self._incidents.find_one({"_id": incident_id})
        if doc is not None:
            await self._leave_open(doc["municipality"], doc.get("district"), incident_id)

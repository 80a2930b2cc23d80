"""Effect's stores: the outcomes it records (``incident_outcomes``, owned by review), the
polls and their answers (``polls``, ``poll_answers``) and what it reads of routing's
incidents (``incidents``, read only)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.cursor import AsyncCursor
from pymongo.errors import DuplicateKeyError

from buurtalert.directory.store import fetch_directory
from buurtalert.review.effect.figures import Tally, disclosed
from buurtalert.review.effect.polls import Invitee, Poll
from buurtalert.review.effect.rules import IncidentView
from buurtalert.shared.collections import (
    AUDIT,
    INCIDENT_OUTCOMES,
    INCIDENT_REPORTS,
    INCIDENT_TELLINGS,
    INCIDENTS,
    POLL_ANSWERS,
    POLLS,
    REGISTERED_CRIME,
    REVIEW_ITEMS,
)
from buurtalert.shared.models import SHORT_REFERENCE, IncidentOutcome, PollAnswer, utcnow
from buurtalert.shared.mongo import Database


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


async def _groups(tellings: AsyncCursor[dict[str, Any]]) -> list[str]:
    return [t["group"] async for t in tellings]


def incident_view(doc: dict[str, Any], told: Iterable[str] = (), reports: int = 0) -> IncidentView:
    """An incident as effect sees it; ``told``: the groups it reached ("municipality/group"),
    from ``incident_tellings`` (and, for an incident from before them, its own "told");
    ``reports``: how many reports it merged."""
    groups = {*told, *(doc.get("told") or {})}
    return IncidentView(
        id=doc["_id"],
        municipality=doc["municipality"],
        district=doc.get("district"),
        opened_at=_utc(doc.get("opened_at")),
        groups=tuple(sorted((m, g) for m, g in (key.split("/", 1) for key in groups))),
        category=doc.get("category"),
        reports=reports,
        outcome=doc.get("outcome"),
        fed_back_at=_utc(doc.get("fed_back_at")),
    )


def _newest_first(doc: dict[str, Any]) -> tuple[float, str]:
    opened = _utc(doc.get("opened_at"))
    return (-(opened.timestamp() if opened else 0.0), doc["_id"])


class IncidentsView:
    """Routing's incidents, read only."""

    def __init__(self, db: Database) -> None:
        self._incidents = db.read(INCIDENTS)
        self._reports = db.read(INCIDENT_REPORTS)
        self._tellings = db.read(INCIDENT_TELLINGS)

    async def _view(self, doc: dict[str, Any]) -> IncidentView:
        """The incident with the groups it told and its reports counted (routing keeps both
        as documents of their own: inserts, which two processes cannot lose)."""
        tellings = self._tellings.find({"incident": doc["_id"]}, projection={"group": 1})
        told, reports = await asyncio.gather(
            _groups(tellings), self._reports.count_documents({"incident": doc["_id"]})
        )
        return incident_view(doc, told, max(reports, int(doc.get("reports", 0))))

    async def _views(self, docs: list[dict[str, Any]]) -> list[IncidentView]:
        return list(await asyncio.gather(*(self._view(doc) for doc in docs)))

    async def containing(self, ref: str, municipality: str) -> IncidentView | None:
        """The incident with id ``ref``, or short reference ``ref`` (as the regiegroep saw it)
        in ``municipality``, or holding the message ``ref`` (as routing finds it: through the
        report's own document in ``incident_reports``)."""
        if SHORT_REFERENCE.match(ref):
            found = await self._incidents.find_one({"ref": ref.upper(), "municipality": municipality})
            return await self._view(found) if found else None
        doc = await self._incidents.find_one({"_id": ref})
        if doc is None and not ref.startswith("inc_"):
            report = await self._reports.find_one({"_id": ref})
            doc = await self._incidents.find_one({"_id": report["incident"]}) if report else None
        return await self._view(doc) if doc else None

    async def recent(
        self,
        municipality: str,
        districts: tuple[str, ...] | None = None,
        limit: int = 50,
        since: datetime | None = None,
    ) -> list[IncidentView]:
        """The municipality's latest incidents (a page of the console: bounded), or only those
        of ``districts`` (read per district, on the indexed field); only those opened at
        ``since`` or later, if given."""
        opened = {"opened_at": {"$gte": since}} if since is not None else {}
        if districts is None:
            query = {"municipality": municipality, **opened}
            cursor = self._incidents.find(query).sort("opened_at", -1).limit(limit)
            return await self._views([doc async for doc in cursor])
        wanted = sorted(set(districts))
        found = await asyncio.gather(*(self._recent_in(municipality, d, limit, opened) for d in wanted))
        merged = sorted((doc for part in found for doc in part), key=_newest_first)
        return await self._views(merged[:limit])

    async def _recent_in(
        self, municipality: str, district: str, limit: int, opened: dict[str, Any]
    ) -> list[dict[str, Any]]:
        query = {"district": district, "municipality": municipality, **opened}
        cursor = self._incidents.find(query).sort("opened_at", -1).limit(limit)
        return [doc async for doc in cursor]


class Outcomes:
    """One outcome per incident (``_id`` the incident id), and whether it was published."""

    def __init__(self, db: Database) -> None:
        self._outcomes = db.write(INCIDENT_OUTCOMES)

    async def add(self, outcome: IncidentOutcome) -> bool:
        """Record ``outcome``; False if the incident has one already."""
        doc = {"_id": outcome.incident_id, **outcome.model_dump(mode="python"), "published": False}
        try:
            await self._outcomes.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def get(self, incident_id: str) -> IncidentOutcome | None:
        doc = await self._outcomes.find_one({"_id": incident_id})
        return _outcome(doc) if doc else None

    async def published(self, incident_id: str) -> None:
        await self._outcomes.update_one({"_id": incident_id}, {"$set": {"published": True}})


def _outcome(doc: dict[str, Any]) -> IncidentOutcome:
    fields = {k: v for k, v in doc.items() if k not in ("_id", "published")}
    for name in ("decided_at", "reported_at"):
        fields[name] = _utc(fields.get(name))
    return IncidentOutcome.model_validate(fields)


class EffectRecords:
    """What the figures are made of, streamed into a :class:`Tally`: each query is bounded
    by the period and, where the collection has it, the municipality; nothing is loaded at
    once (cursors in batches). A report, not the message path."""

    BATCH = 1000

    def __init__(self, db: Database) -> None:
        self._audit = db.read(AUDIT)
        self._incidents = db.read(INCIDENTS)
        self._outcomes = db.read(INCIDENT_OUTCOMES)
        self._items = db.read(REVIEW_ITEMS)
        self._crime = db.read(REGISTERED_CRIME)

    async def tally(self, tally: Tally) -> Tally:
        municipality, since = tally.municipality, tally.since
        async for entry in self._audit.find({"at": {"$gte": since}}, batch_size=self.BATCH):
            entry["at"] = _utc(entry["at"])
            tally.audit(entry)
        outcomes: dict[str, dict[str, Any]] = {}
        query = {"municipality": municipality, "decided_at": {"$gte": since}}
        async for doc in self._outcomes.find(query, {"outcome": 1, "decided_at": 1}, batch_size=self.BATCH):
            outcomes[doc["_id"]] = {"outcome": doc["outcome"], "decided_at": _utc(doc["decided_at"])}
        query = {"municipality": municipality, "opened_at": {"$gte": since}}
        fields = {"district": 1, "opened_at": 1, "closed_at": 1, "fed_back_at": 1}
        async for doc in self._incidents.find(query, fields, batch_size=self.BATCH):
            for name in ("opened_at", "closed_at", "fed_back_at"):
                doc[name] = _utc(doc.get(name))
            tally.incident(doc, outcomes.get(doc["_id"]))
        query = {"municipality": municipality, "received_at": {"$gte": since}, "kind": "message"}
        fields = {"kind": 1, "group_id": 1, "urgent": 1, "received_at": 1, "decision": 1}
        async for doc in self._items.find(query, fields, batch_size=self.BATCH):
            decision = json.loads(doc["decision"]) if doc.get("decision") else None
            tally.review_item(
                {
                    **doc,
                    "received_at": _utc(doc["received_at"]),
                    "decided_at": datetime.fromisoformat(decision["decided_at"]) if decision else None,
                }
            )
        # the whole history of the municipality: before and after its groups started
        async for doc in self._crime.find({"municipality": municipality}, batch_size=self.BATCH):
            tally.crime(doc)
        return tally


def _poll(doc: dict[str, Any]) -> Poll:
    return Poll(
        id=doc["_id"],
        municipality=doc["municipality"],
        districts=tuple(doc["districts"]),
        question=doc["question"],
        options=tuple(doc["options"]),
        language=doc.get("language", "nl"),
        created_at=_utc(doc["created_at"]) or utcnow(),
        closes_at=_utc(doc["closes_at"]) or utcnow(),
        invited={str(k): int(v) for k, v in (doc.get("invited") or {}).items()},
        created_by=doc.get("created_by", ""),
    )


class Polls:
    """The polls (``_id`` the poll id) and their answers, one per poll and member (``_id``
    the answer's, from both): a later answer of the member replaces theirs."""

    def __init__(self, db: Database) -> None:
        self._polls = db.write(POLLS)
        self._answers = db.write(POLL_ANSWERS)

    async def add(self, poll: Poll) -> None:
        await self._polls.insert_one(poll.document())

    async def invited(self, poll_id: str, invited: list[Invitee]) -> None:
        """The members invited per district, after the invitations were sent again."""
        counts: dict[str, int] = {}
        for invitee in invited:
            counts[invitee.district] = counts.get(invitee.district, 0) + 1
        await self._polls.update_one({"_id": poll_id}, {"$set": {"invited": counts}})

    async def get(self, poll_id: str) -> Poll | None:
        doc = await self._polls.find_one({"_id": poll_id})
        return _poll(doc) if doc else None

    async def of(self, municipality: str, limit: int = 20) -> list[Poll]:
        """The municipality's latest polls (a page of the console: bounded)."""
        cursor = self._polls.find({"municipality": municipality}).sort("created_at", -1).limit(limit)
        return [_poll(doc) async for doc in cursor]

    async def answer(self, answer: PollAnswer) -> bool:
        """Keep ``answer`` unless the member's kept answer is as new or newer (the same
        answer again, or one overtaken): True when it was kept."""
        doc = {
            "_id": answer.id,
            "poll_id": answer.poll_id,
            "district": answer.district,
            "option": answer.option,
            "channel": answer.channel,
            "answered_at": answer.answered_at,
        }
        for _ in range(2):  # a concurrent first answer of the same member: look again once
            kept = await self._answers.find_one({"_id": answer.id}, {"answered_at": 1})
            if kept is not None:
                if (_utc(kept["answered_at"]) or answer.answered_at) >= answer.answered_at:
                    return False
                replaced = await self._answers.replace_one(
                    {"_id": answer.id, "answered_at": kept["answered_at"]}, doc
                )
                return replaced.matched_count == 1
            try:
                await self._answers.insert_one(doc)
                return True
            except DuplicateKeyError:
                continue
        return False

    async def answers(self, poll_id: str) -> list[tuple[str, int]]:
        """(district, option) of every answer kept (a report: by the poll's index)."""
        cursor = self._answers.find({"poll_id": poll_id}, {"district": 1, "option": 1}, batch_size=1000)
        return [(doc["district"], int(doc["option"])) async for doc in cursor]


class RegisteredCrime:
    """Registered crime per district and month, as the municipality imports it."""

    def __init__(self, db: Database) -> None:
        self._crime = db.write(REGISTERED_CRIME)

    async def put(self, municipality: str, district: str, month: str, count: int) -> None:
        """Store one month's count; importing the same file again changes nothing."""
        await self._crime.replace_one(
            {"_id": f"{municipality}:{district}:{month}"},
            {"municipality": municipality, "district": district, "month": month, "count": count},
            upsert=True,
        )


async def effect_report(db: Database, municipality: str, since: datetime) -> dict[str, Any] | None:
    """The disclosed figures of ``municipality`` since ``since`` (None: no such directory)."""
    directory = await fetch_directory(db, municipality)
    if directory is None:
        return None
    tally = await EffectRecords(db).tally(Tally(directory, since, utcnow()))
    return disclosed(tally.report())

"""Effect's stores: the outcomes it records (``incident_outcomes``, owned by review) and
what it reads of routing's incidents (``incidents``, read only)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from buurtalert.directory.store import fetch_directory
from buurtalert.review.effect.figures import Tally, disclosed
from buurtalert.review.effect.rules import IncidentView
from buurtalert.shared.collections import (
    AUDIT,
    INCIDENT_OUTCOMES,
    INCIDENT_REPORTS,
    INCIDENTS,
    REGISTERED_CRIME,
    REVIEW_ITEMS,
)
from buurtalert.shared.models import IncidentOutcome, utcnow
from buurtalert.shared.mongo import Database


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def incident_view(doc: dict[str, Any]) -> IncidentView:
    return IncidentView(
        id=doc["_id"],
        municipality=doc["municipality"],
        district=doc.get("district"),
        opened_at=_utc(doc.get("opened_at")),
        groups=tuple(sorted(tuple(key.split("/", 1)) for key in doc.get("told") or {})),
        category=doc.get("category"),
        reports=int(doc.get("reports", 0)),
        outcome=doc.get("outcome"),
        fed_back_at=_utc(doc.get("fed_back_at")),
    )


class IncidentsView:
    """Routing's incidents, read only."""

    def __init__(self, db: Database) -> None:
        self._incidents = db.read(INCIDENTS)
        self._reports = db.read(INCIDENT_REPORTS)

    async def containing(self, ref: str) -> IncidentView | None:
        """The incident with id ``ref`` or holding the message ``ref`` (as routing finds it:
        through the report's own document in ``incident_reports``)."""
        doc = await self._incidents.find_one({"_id": ref})
        if doc is None and not ref.startswith("inc_"):
            report = await self._reports.find_one({"_id": ref})
            doc = await self._incidents.find_one({"_id": report["incident"]}) if report else None
        return incident_view(doc) if doc else None

    async def recent(self, municipality: str, limit: int = 50) -> list[IncidentView]:
        """The municipality's latest incidents (a page of the console: bounded)."""
        cursor = self._incidents.find({"municipality": municipality}).sort("opened_at", -1).limit(limit)
        return [incident_view(doc) async for doc in cursor]


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

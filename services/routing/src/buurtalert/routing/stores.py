"""Routing's stores: incidents (``incidents``) and group rates (``group_rates``)."""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from buurtalert.directory.model import Directory
from buurtalert.routing.rules import WINDOW, Incident, same_event
from buurtalert.shared.collections import GROUP_RATES, INCIDENTS
from buurtalert.shared.models import InboundMessage, Location, stable_id
from buurtalert.shared.mongo import Database


class GroupRates:
    """Non-urgent messages delivered per group and hour, counted idempotently by message id."""

    def __init__(self, db: Database) -> None:
        self._rates = db.write(GROUP_RATES)

    @staticmethod
    def _key(group_id: str, at: datetime) -> str:
        return f"{group_id}:{at:%Y%m%d%H}"

    async def counts(self, group_ids: list[str], at: datetime) -> dict[str, int]:
        keys = {self._key(g, at): g for g in group_ids}
        cursor = self._rates.find({"_id": {"$in": list(keys)}})
        return {keys[doc["_id"]]: len(doc["messages"]) async for doc in cursor}

    async def count(self, group_id: str, message_id: str, at: datetime) -> None:
        await self._rates.update_one(
            {"_id": self._key(group_id, at)}, {"$addToSet": {"messages": message_id}}, upsert=True
        )


def _incident(doc: dict[str, Any]) -> Incident:
    location = Location.model_validate(doc["location"]) if doc.get("location") else None
    return Incident(
        id=doc["_id"],
        municipality=doc["municipality"],
        district=doc.get("district"),
        text=doc["text"],
        location=location,
        last_seen=doc["last_seen"],
        groups=tuple((g["municipality"], g["group"]) for g in doc.get("groups", [])),
        closed=doc.get("closed_at") is not None,
    )


class Incidents:
    """Incidents (``incidents``): each message attached to the event it reports, the
    groups each incident reached, and its closing."""

    def __init__(self, db: Database) -> None:
        self._incidents = db.write(INCIDENTS)

    async def containing(self, ref: str) -> Incident | None:
        """The incident with id ``ref`` or holding the message ``ref``."""
        doc = await self._incidents.find_one({"$or": [{"_id": ref}, {"message_ids": ref}]})
        return _incident(doc) if doc else None

    async def attach(self, message: InboundMessage, district: str | None, directory: Directory) -> Incident:
        """The incident ``message`` belongs to: one it already joined (a redelivery),
        an open one reporting the same event, or a new one."""
        existing = await self.containing(message.id)
        if existing is not None:
            return existing
        since = message.sent_at - WINDOW
        cursor = self._incidents.find(
            {"municipality": message.municipality, "closed_at": None, "last_seen": {"$gte": since}}
        ).limit(100)
        candidates = [_incident(doc) async for doc in cursor]
        match = next((i for i in candidates if same_event(message, district, i, directory)), None)
        if match is not None:
            await self._incidents.update_one(
                {"_id": match.id},
                {"$addToSet": {"message_ids": message.id}, "$max": {"last_seen": message.sent_at}},
            )
            return match
        incident_id = stable_id("inc", message.id)
        doc = {
            "_id": incident_id,
            "municipality": message.municipality,
            "district": district,
            "category": message.category,
            "text": message.text,
            "location": message.location.model_dump() if message.location else None,
            "opened_at": message.sent_at,
            "last_seen": message.sent_at,
            "closed_at": None,
            "message_ids": [message.id],
            "groups": [],
        }
        with contextlib.suppress(DuplicateKeyError):  # opened by an earlier attempt at this message
            await self._incidents.insert_one(doc)
        return _incident(doc)

    async def reached(self, incident_id: str, groups: list[tuple[str, str]]) -> None:
        if groups:
            await self._incidents.update_one(
                {"_id": incident_id},
                # Documents, not pairs: FerretDB v1 cannot store nested arrays.
                {"$addToSet": {"groups": {"$each": [{"municipality": m, "group": g} for m, g in groups]}}},
            )

    async def close(self, incident_id: str, message_id: str, at: datetime) -> None:
        await self._incidents.update_one(
            {"_id": incident_id, "closed_at": None}, {"$set": {"closed_at": at, "closed_by": message_id}}
        )

    async def fed_back(
        self, incident_id: str, outcome_id: str, outcome: str, at: datetime, told: bool
    ) -> None:
        """The incident has its outcome, and ``told``: routing sent it to the groups it reached
        (``fed_back_at``; not when it reached none). It is over: closed, if it was open.
        Repeating it changes nothing."""
        await self._incidents.update_one(
            {"_id": incident_id, "outcome_id": None},
            {"$set": {"outcome_id": outcome_id, "outcome": outcome, "fed_back_at": at if told else None}},
        )
        await self._incidents.update_one(
            {"_id": incident_id, "closed_at": None}, {"$set": {"closed_at": at, "closed_by": outcome_id}}
        )

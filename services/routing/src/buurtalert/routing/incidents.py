"""Incidents: reports of the same event from several groups, merged.

Matching is pure (:func:`same_event`); :class:`Incidents` keeps them in MongoDB
(``incidents``) with every message and every group each incident reached, so a
closing message (found, false alarm, resolved) reaches all of those groups.
"""

from __future__ import annotations

import contextlib
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from buurtalert.directory.model import Directory
from buurtalert.shared.models import InboundMessage, Location, stable_id

WINDOW = timedelta(hours=2)
SIMILAR_TEXT = 0.3
NEAR_METRES = 1_000.0
_WORD = re.compile(r"\w{3,}", re.UNICODE)
STOPWORDS = frozenset(
    "een het van dat die met voor aan bij ook nog maar naar wel niet zijn "
    "was wordt door heeft hebben zojuist net gezien gebeld zag zien deze dit daar hier".split()
)


def words(text: str) -> frozenset[str]:
    return frozenset(w for w in (m.group().lower() for m in _WORD.finditer(text)) if w not in STOPWORDS)


def similarity(a: str, b: str) -> float:
    """Jaccard similarity of the content words of two texts (0 to 1)."""
    wa, wb = words(a), words(b)
    return len(wa & wb) / len(wa | wb) if wa and wb else 0.0


def distance_m(a: Location, b: Location) -> float:
    """Great-circle distance in metres (haversine)."""
    p1, p2 = math.radians(a.latitude), math.radians(b.latitude)
    dp, dl = p2 - p1, math.radians(b.longitude - a.longitude)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_000 * math.asin(math.sqrt(h))


@dataclass(frozen=True)
class Incident:
    id: str
    municipality: str
    district: str | None
    text: str
    location: Location | None
    last_seen: datetime
    groups: tuple[tuple[str, str], ...] = ()
    closed: bool = False


def same_event(
    message: InboundMessage, district: str | None, incident: Incident, directory: Directory
) -> bool:
    """Whether ``message`` reports the event of ``incident``: the same or an adjacent
    district, within the time window, and similar words or a nearby place."""
    if incident.closed or message.municipality != incident.municipality:
        return False
    if message.sent_at - incident.last_seen > WINDOW or incident.last_seen - message.sent_at > WINDOW:
        return False
    if district and incident.district and district != incident.district:
        found = directory.district(district)
        if found is None or incident.district not in found.neighbours:
            return False
    if (
        message.location
        and incident.location
        and distance_m(message.location, incident.location) <= NEAR_METRES
    ):
        return True
    return similarity(message.text, incident.text) >= SIMILAR_TEXT


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
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._incidents = db.incidents

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

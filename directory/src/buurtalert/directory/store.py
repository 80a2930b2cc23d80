"""The directory in MongoDB: one document per municipality (``directories``), the
membership register (``memberships``) applied on top of it, and a cache."""

from __future__ import annotations

import json
import time
from datetime import datetime

from buurtalert.directory.model import Directory, Membership, apply_memberships
from buurtalert.shared.collections import DIRECTORIES, MEMBERSHIPS
from buurtalert.shared.mongo import Database


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
    doc = await db.read(DIRECTORIES).find_one({"_id": municipality})
    if doc is None:
        return None
    doc.pop("_id")
    for district in doc["districts"]:
        if isinstance(district.get("geometry"), str):
            district["geometry"] = json.loads(district["geometry"])
    directory = Directory.model_validate(doc)
    return apply_memberships(directory, await Memberships(db).of(municipality))


class Memberships:
    """The membership register (``memberships``), one document per member."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @staticmethod
    def _id(municipality: str, pseudonym: str) -> str:
        return f"{municipality}:{pseudonym}"

    async def join(self, municipality: str, pseudonym: str, address: str, group: str, at: datetime) -> None:
        await self._db.write(MEMBERSHIPS).update_one(
            {"_id": self._id(municipality, pseudonym)},
            {
                "$set": {"address": address, "consent_one_to_one": True, "changed_at": at},
                "$addToSet": {"groups": group},
                "$setOnInsert": {"municipality": municipality, "pseudonym": pseudonym},
            },
            upsert=True,
        )

    async def leave(self, municipality: str, pseudonym: str, at: datetime) -> None:
        """Opt out of one-to-one delivery everywhere; the address itself is forgotten."""
        await self._db.write(MEMBERSHIPS).update_one(
            {"_id": self._id(municipality, pseudonym)},
            {
                "$set": {"address": None, "consent_one_to_one": False, "changed_at": at, "groups": []},
                "$setOnInsert": {"municipality": municipality, "pseudonym": pseudonym},
            },
            upsert=True,
        )

    async def of(self, municipality: str) -> list[Membership]:
        cursor = self._db.read(MEMBERSHIPS).find({"municipality": municipality}, projection={"_id": 0})
        return [Membership.model_validate(doc) async for doc in cursor]


class Directories:
    """Directories from MongoDB, cached for ``ttl`` seconds (a reload shows within that)."""

    def __init__(self, db: Database, ttl: float = 10.0) -> None:
        self._db, self._ttl = db, ttl
        self._cache: dict[str, tuple[float, Directory | None]] = {}

    async def get(self, municipality: str) -> Directory | None:
        cached = self._cache.get(municipality)
        if cached is None or time.monotonic() - cached[0] > self._ttl:
            cached = (time.monotonic(), await fetch_directory(self._db, municipality))
            self._cache[municipality] = cached
        return cached[1]

    def forget(self, municipality: str) -> None:
        """Drop the cached copy, after the membership register changed."""
        self._cache.pop(municipality, None)

"""How to reach an author again (to explain a rejection): the one place where a
reporter's address is kept next to their pseudonym. Written by ingest, read by
channels; nothing else needs the address itself."""

from __future__ import annotations

from pymongo.errors import DuplicateKeyError

from buurtalert.shared.collections import CONTACTS
from buurtalert.shared.models import utcnow
from buurtalert.shared.mongo import Database


class Contacts:
    """The ``contacts`` collection: ingest remembers, channels finds."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def remember(self, municipality: str, pseudonym: str, channel: str, address: str) -> None:
        """``address`` on ``channel`` reaches the author: an email address, a WhatsApp
        number, a page-scoped id on Messenger."""
        key = {"_id": f"{municipality}:{pseudonym}"}
        update = {"$set": {"address": address, "channel": channel, "updated_at": utcnow()}}
        contacts = self._db.write(CONTACTS)
        try:
            await contacts.update_one(key, update, upsert=True)
        except DuplicateKeyError:  # FerretDB v1: a concurrent upsert of the same _id created it
            await contacts.update_one(key, update)

    async def find(self, municipality: str, pseudonym: str) -> tuple[str, str] | None:
        """The author's (channel, address), if known."""
        doc = await self._db.read(CONTACTS).find_one({"_id": f"{municipality}:{pseudonym}"})
        return (doc["channel"], doc["address"]) if doc else None

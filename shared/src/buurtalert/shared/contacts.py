"""How to reach an author again (to explain a rejection): the one place where a
reporter's address is kept next to their pseudonym. Written by ingest, read by
channels; nothing else needs the address itself."""

from __future__ import annotations

from buurtalert.shared.collections import CONTACTS
from buurtalert.shared.models import utcnow
from buurtalert.shared.mongo import Database, GroupInserts


class Contacts:
    """The ``contacts`` collection: ingest remembers, channels finds."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._new: GroupInserts | None = None

    async def remember(self, municipality: str, pseudonym: str, channel: str, address: str) -> None:
        """``address`` on ``channel`` reaches the author: an email address, a WhatsApp
        number, a page-scoped id on Messenger."""
        key = {"_id": f"{municipality}:{pseudonym}"}
        fields = {"address": address, "channel": channel, "updated_at": utcnow()}
        contacts = self._db.write(CONTACTS)
        if self._new is None:
            self._new = GroupInserts(contacts)
        # A new author (most of them) costs a share of one insert of many; a known one
        # whose address changed, an update.
        if not await self._new.insert(key | fields):
            await contacts.update_one(key, {"$set": fields})

    async def find(self, municipality: str, pseudonym: str) -> tuple[str, str] | None:
        """The author's (channel, address), if known."""
        doc = await self._db.read(CONTACTS).find_one({"_id": f"{municipality}:{pseudonym}"})
        return (doc["channel"], doc["address"]) if doc else None

"""Media to send along with a delivery, read from where ingest stored them (``media``:
the bytes, and the type sniffed from them).

Ingest fetches WhatsApp media after it answered the webhook, so a delivery can come
before its medium: it is waited for a few seconds, then the delivery goes without
it. An alert is never held back by its photo. A fan-out reads each medium once."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from buurtalert.shared.channels import Attachment
from buurtalert.shared.logging import get_logger
from buurtalert.shared.models import MediaRef

log = get_logger(__name__)


class MediaStore:
    def __init__(self, db: AsyncDatabase[dict[str, Any]], *, wait: float = 5.0, keep: int = 16) -> None:
        self._media = db.media
        self._wait = wait
        self._keep = keep
        self._recent: OrderedDict[str, Attachment | None] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}

    async def attachments(self, refs: Sequence[MediaRef]) -> list[Attachment]:
        found = [await self._one(ref.storage_ref) for ref in refs if ref.storage_ref]
        return [a for a in found if a is not None]

    async def _one(self, storage_ref: str) -> Attachment | None:
        if storage_ref in self._recent:
            return self._recent[storage_ref]
        async with self._locks.setdefault(storage_ref, asyncio.Lock()):  # one read per medium
            if storage_ref in self._recent:
                return self._recent[storage_ref]
            attachment = await self._read(storage_ref)
            self._recent[storage_ref] = attachment
            if len(self._recent) > self._keep:
                forgotten, _ = self._recent.popitem(last=False)
                self._locks.pop(forgotten, None)
            return attachment

    async def _read(self, storage_ref: str) -> Attachment | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait
        while True:
            doc = await self._media.find_one({"_id": storage_ref})
            if doc is not None:
                if not doc.get("data"):  # refused by ingest (too large): nothing to send
                    log.info("medium_not_sent", storage_ref=storage_ref, why=doc.get("refused", "no data"))
                    return None
                return Attachment(
                    storage_ref=storage_ref,
                    mime_type=doc.get("mime_type") or "application/octet-stream",
                    data=bytes(doc["data"]),
                    filename=doc.get("filename"),
                )
            if loop.time() >= deadline:
                log.warning("medium_missing_sent_without", storage_ref=storage_ref)
                return None
            await asyncio.sleep(0.5)

"""The delivery ledger: one document per delivery id (MongoDB ``deliveries``),
claimed before sending so that a redelivered delivery is not sent twice."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from buurtalert.shared.models import Delivery, utcnow


class Claim(StrEnum):
    NEW = "new"
    """Never tried: send."""
    UNCONFIRMED = "unconfirmed"
    """Tried before without a recorded outcome (a crash, a transient error): send again
    with the same provider idempotency key / Message-ID."""
    SENT = "sent"
    FAILED = "failed"


class Ledger:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._deliveries = db.deliveries

    async def claim(self, delivery: Delivery) -> Claim:
        try:
            await self._deliveries.insert_one({
                "_id": delivery.id, "message_id": delivery.message_id, "state": "sending",
                "channel": delivery.destination.channel, "group_id": delivery.destination.group_id,
                "attempts": 1, "created_at": utcnow(),
            })
            return Claim.NEW
        except DuplicateKeyError:
            pass
        doc = await self._deliveries.find_one_and_update(
            {"_id": delivery.id, "state": "sending"}, {"$inc": {"attempts": 1}},
            return_document=ReturnDocument.AFTER,
        )
        if doc is not None:
            return Claim.UNCONFIRMED
        existing = await self._deliveries.find_one({"_id": delivery.id}, projection={"state": 1})
        return Claim.SENT if existing and existing["state"] == "sent" else Claim.FAILED

    async def settle(self, delivery_id: str, state: str, **fields: Any) -> None:
        await self._deliveries.update_one(
            {"_id": delivery_id}, {"$set": {"state": state, "settled_at": utcnow(), **fields}}
        )

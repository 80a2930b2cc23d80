"""The delivery ledger: one document per delivery id (MongoDB ``deliveries``),
claimed before sending so that a redelivered delivery is not sent twice."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from buurtalert.shared.models import Delivery, DeliveryStatus, utcnow


class Ledger:
    """``claim`` before sending, ``settle`` with the outcome after.

    A delivery claimed but never settled (a crash mid-send, a transient error) is
    sent again when it comes back, with the same provider idempotency key or
    Message-ID; a settled one is never sent again."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._deliveries = db.deliveries

    async def claim(self, delivery: Delivery) -> DeliveryStatus | None:
        """None if the delivery is to be sent now; its recorded outcome if it was settled."""
        try:
            await self._deliveries.insert_one(
                {
                    "_id": delivery.id,
                    "message_id": delivery.message_id,
                    "channel": delivery.destination.channel,
                    "group_id": delivery.destination.group_id,
                    "attempts": 1,
                    "created_at": utcnow(),
                }
            )
            return None
        except DuplicateKeyError:
            pass
        doc = await self._deliveries.find_one_and_update({"_id": delivery.id}, {"$inc": {"attempts": 1}})
        if doc is None or "outcome" not in doc:
            return None
        return DeliveryStatus.model_validate(doc["outcome"])

    async def settle(self, status: DeliveryStatus) -> None:
        await self._deliveries.update_one(
            {"_id": status.delivery_id},
            {"$set": {"outcome": status.model_dump(mode="json"), "settled_at": utcnow()}},
        )

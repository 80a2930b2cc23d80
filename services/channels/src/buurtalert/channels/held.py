"""Deliveries that routing held (quiet hours, a group's rate limit), kept in MongoDB
(``held_deliveries``) until they are due. Once stored, the Kafka message is
committed: the delivery is safe in the database, not lost."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from buurtalert.shared.models import Delivery


class HeldDeliveries:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._held = db.held_deliveries

    async def hold(self, delivery: Delivery) -> None:
        """Keep ``delivery`` until its ``deliver_after``; holding it twice changes nothing."""
        await self._held.update_one(
            {"_id": delivery.id},
            {"$setOnInsert": {"due": delivery.deliver_after, "delivery": delivery.model_dump(mode="json")}},
            upsert=True,
        )

    async def due(self, now: datetime, limit: int = 100) -> list[Delivery]:
        cursor = self._held.find({"due": {"$lte": now}}).sort("due", 1).limit(limit)
        return [Delivery.model_validate(doc["delivery"]) async for doc in cursor]

    async def release(self, delivery_id: str) -> None:
        await self._held.delete_one({"_id": delivery_id})

"""The delivery ledger: a delivery id is claimed (``deliveries``) before sending, and
its outcome recorded (``delivery_outcomes``) after, so that a redelivered delivery
is never sent twice once it was settled.

Both are inserts keyed by the delivery id, which take constant time on FerretDB v1
(updates by ``_id`` scan the collection there) and are gathered into one
``insert_many`` per moment when many deliveries go out at once (fan-out)."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from buurtalert.shared.models import Delivery, DeliveryStatus, utcnow
from buurtalert.shared.mongo import GroupInserts


class Ledger:
    """``claim`` before sending, ``settle`` with the outcome after.

    A delivery claimed but never settled (a crash mid-send, a transient error) is
    sent again when it comes back, with the same provider idempotency key or
    Message-ID; a settled one is never sent again."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._deliveries = db.deliveries
        self._claims = GroupInserts(db.deliveries)
        self._outcomes = db.delivery_outcomes
        self._settlements = GroupInserts(db.delivery_outcomes)

    async def claim(self, delivery: Delivery) -> DeliveryStatus | None:
        """None if the delivery is to be sent now; its recorded outcome if it was settled."""
        claimed = await self._claims.insert(
            {
                "_id": delivery.id,
                "message_id": delivery.message_id,
                "channel": delivery.destination.channel,
                "group_id": delivery.destination.group_id,
                "created_at": utcnow(),
            }
        )
        if claimed:
            return None
        doc = await self._outcomes.find_one({"_id": delivery.id})  # only when it came back
        return DeliveryStatus.model_validate(doc["outcome"]) if doc else None

    async def find(self, delivery_id: str) -> dict[str, Any] | None:
        """The claim of a delivery that was sent (its message id, channel, group)."""
        return await self._deliveries.find_one({"_id": delivery_id})

    async def settle(self, status: DeliveryStatus) -> None:
        """Record the outcome; the first one recorded stands."""
        await self._settlements.insert(
            {"_id": status.delivery_id, "outcome": status.model_dump(mode="json"), "settled_at": utcnow()}
        )

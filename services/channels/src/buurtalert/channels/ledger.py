"""The delivery ledger: a delivery id is claimed (``deliveries``) before sending, and
its outcome recorded after, so that a redelivered delivery is never sent twice once
it was settled. The outcome is the delivery's entry in the audit trail
(``deliveries.<id>``, written once), so a send costs two inserts, not three.

Both are inserts keyed by the delivery id, which take constant time on FerretDB v1
(updates by ``_id`` scan the collection there) and are gathered into one
``insert_many`` per moment when many deliveries go out at once (fan-out)."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from buurtalert.shared.models import Delivery, DeliveryStatus, utcnow
from buurtalert.shared.mongo import Audit, GroupInserts


def outcome_stage(delivery_id: str) -> str:
    """The audit stage of a delivery (``Audit.trail`` nests it under ``deliveries``)."""
    return f"deliveries.{delivery_id}"


class Ledger:
    """``claim`` before sending, ``settle`` with the outcome after.

    A delivery claimed but never settled (a crash mid-send, a transient error) is
    sent again when it comes back, with the same provider idempotency key or
    Message-ID; a settled one is never sent again."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]], audit: Audit) -> None:
        self._deliveries = db.deliveries
        self._claims = GroupInserts(db.deliveries)
        self._audit = audit

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
        outcome = await self._audit.entry(
            delivery.message_id, outcome_stage(delivery.id)
        )  # only when it came back
        return DeliveryStatus.model_validate(outcome) if outcome else None

    async def find(self, delivery_id: str) -> dict[str, Any] | None:
        """The claim of a delivery that was sent (its message id, channel, group)."""
        return await self._deliveries.find_one({"_id": delivery_id})

    async def settle(self, status: DeliveryStatus) -> None:
        """Record the outcome in the audit trail; the first one recorded stands."""
        await self._audit.record(
            status.message_id, outcome_stage(status.delivery_id), status.model_dump(mode="json"), once=True
        )

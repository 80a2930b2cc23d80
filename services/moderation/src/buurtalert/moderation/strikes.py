"""Strikes: rejections per member, counted over a period. After a warning, removal
is proposed to the group's admin, who decides; strikes older than the period no
longer count. Kept in MongoDB (``strikes``, one document per rejected message, so
counting the same rejection twice is impossible)."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError


class StrikePolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    expire_after_days: int = Field(default=90, ge=1)
    warn_at: int = Field(default=2, ge=1)
    propose_removal_at: int = Field(default=3, ge=1)


class StrikeOutcome(StrEnum):
    NONE = "none"
    WARNING = "warning"
    REMOVAL_PROPOSED = "removal_proposed"


def outcome(count: int, policy: StrikePolicy) -> StrikeOutcome:
    """What ``count`` live strikes lead to; the proposal is made once, at the threshold."""
    if count == policy.propose_removal_at:
        return StrikeOutcome.REMOVAL_PROPOSED
    if policy.warn_at <= count < policy.propose_removal_at:
        return StrikeOutcome.WARNING
    return StrikeOutcome.NONE


WARNING_NL = (
    "Let op: dit is een waarschuwing. Bij nog een overtreding van de groepsregels stellen we de "
    "beheerder voor je uit de groep te verwijderen."
)
WARNING_EN = (
    "Please note: this is a warning. If the group rules are broken again, we will propose to the "
    "admin that you are removed from the group."
)


class Strikes:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self._strikes = db.strikes

    async def record(
        self,
        municipality: str,
        member: str,
        message_id: str,
        group_id: str | None,
        at: datetime,
        policy: StrikePolicy,
    ) -> int:
        """Record a rejection of ``member``'s ``message_id``; the member's live strikes."""
        with contextlib.suppress(DuplicateKeyError):  # a redelivered rejection counts once
            await self._strikes.insert_one(
                {
                    "_id": f"{municipality}:{member}:{message_id}",
                    "municipality": municipality,
                    "member": member,
                    "message_id": message_id,
                    "group_id": group_id,
                    "at": at,
                }
            )
        since = at - timedelta(days=policy.expire_after_days)
        return await self._strikes.count_documents(
            {"municipality": municipality, "member": member, "at": {"$gt": since, "$lte": at}}
        )

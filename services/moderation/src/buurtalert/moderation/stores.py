"""Moderation's store: strikes (``strikes``), one document per rejected message, so
counting the same rejection twice is impossible; strikes older than the policy's
period no longer count."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import datetime, timedelta

from pymongo.errors import DuplicateKeyError

from buurtalert.moderation.policy import StrikePolicy
from buurtalert.shared.collections import STRIKES
from buurtalert.shared.mongo import Database


class Strikes:
    """Rejections per member (``strikes``), one document per rejected message."""

    def __init__(self, db: Database) -> None:
        self._strikes = db.write(STRIKES)

    async def record(
        self,
        municipality: str,
        member: str,
        message_id: str,
        group_id: str | None,
        at: datetime,
        policy: StrikePolicy,
        reasons: Sequence[str] = (),
    ) -> int:
        """Record a rejection of ``member``'s ``message_id`` for ``reasons`` (reason codes,
        which an admin deciding on a removal sees); the member's live strikes."""
        with contextlib.suppress(DuplicateKeyError):  # a redelivered rejection counts once
            await self._strikes.insert_one(
                {
                    "_id": f"{municipality}:{member}:{message_id}",
                    "municipality": municipality,
                    "member": member,
                    "message_id": message_id,
                    "group_id": group_id,
                    "at": at,
                    "reasons": list(reasons),
                }
            )
        return await self.live(municipality, member, at, policy)

    async def live(self, municipality: str, member: str, at: datetime, policy: StrikePolicy) -> int:
        """``member``'s strikes that count at ``at`` (within the policy's period)."""
        since = at - timedelta(days=policy.expire_after_days)
        return await self._strikes.count_documents(
            {"municipality": municipality, "member": member, "at": {"$gt": since, "$lte": at}}
        )

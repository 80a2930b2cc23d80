"""The review queue's store on a real MongoDB-wire server: a conditional change of an
item succeeds once per version, also when many arrive at the same moment. FerretDB v1
checks the condition and writes the item back in two steps, so without the store's
DocumentLocks two of twenty concurrent changes were seen to succeed (CI, 2026-11-30)."""

from __future__ import annotations

import asyncio

from buurtalert.review.rules import Item
from buurtalert.review.stores import Items
from buurtalert.shared.models import utcnow
from buurtalert.shared.mongo import Database, mongo_client
from buurtalert.shared.settings import Settings
from buurtalert.shared.topics import REVIEW


async def test_of_many_concurrent_changes_at_one_version_exactly_one_succeeds(settings: Settings) -> None:
    """Twenty moderators agree to one removal proposal at version 0 at once: one wins,
    the item is at version 1, and the rest are told it changed (their 409)."""
    client = mongo_client(settings)
    try:
        items = Items(Database(client[settings.database], REVIEW))
        item = Item(id="rvi_1", kind="proposal", municipality="weert-demo", received_at=utcnow())
        assert await items.add(item)
        won = await asyncio.gather(*(items.agree(item, (f"admin-{n}",)) for n in range(20)))
        assert won.count(True) == 1
        stored = await items.get(item.id)
        assert stored is not None and stored.version == 1
        assert stored.agreed_by == (f"admin-{won.index(True)}",)
    finally:
        await client.close()

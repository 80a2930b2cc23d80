"""Declared indexes are created at start-up, idempotently; held deliveries are found by the
hour they are due (an indexed equality), not by a range over the whole collection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from buurtalert.channels.stores import HELD_LOOKBACK, HeldDeliveries, due_hour
from buurtalert.shared.collections import COLLECTIONS, EVERY_SERVICE, HELD_DELIVERIES
from buurtalert.shared.models import Delivery, Destination
from buurtalert.shared.mongo import Database, mongo_client
from buurtalert.shared.settings import Settings
from buurtalert.shared.topics import CHANNELS, SERVICES

NOW = datetime(2026, 11, 29, 16, 30, tzinfo=UTC)


def delivery(n: int, due: datetime) -> Delivery:
    destination = Destination(group_id="g", channel="email", address="g@example.org")
    return Delivery(
        id=f"d{n}", message_id=f"m{n}", municipality="m", destination=destination, text="t", rules=("r",),
        deliver_after=due,
    )  # fmt: skip


async def test_each_service_creates_the_indexes_of_what_it_owns_once(settings: Settings) -> None:
    """Every declared index exists after its owner's start-up (the audit trail's, written by
    every service, after any's); a second start-up changes nothing."""
    client = mongo_client(settings)
    try:
        for service in SERVICES:
            db = Database(client[settings.database], service)
            first = await db.ensure_indexes()
            assert await db.ensure_indexes() == first
        for collection in COLLECTIONS:
            if collection.owner not in (*SERVICES, EVERY_SERVICE) or not collection.indexes:
                continue
            info = await client[settings.database][collection.name].index_information()
            keys = {spec["key"][0][0] for spec in info.values()}
            assert set(collection.indexes) <= keys, (collection.name, info)
    finally:
        await client.close()


async def test_held_deliveries_come_out_when_due_oldest_first_and_not_before(settings: Settings) -> None:
    """Due ones from hours and days ago come out, the oldest first, once; later ones stay
    held; a process that starts finds those held by another within the look-back."""
    client = mongo_client(settings)
    try:
        db = Database(client[settings.database], CHANNELS)
        held = HeldDeliveries(db)
        dues = {
            1: NOW - timedelta(days=3),
            2: NOW - timedelta(hours=2, minutes=5),
            3: NOW - timedelta(minutes=20),
            4: NOW + timedelta(minutes=10),  # this hour, not yet due
            5: NOW + timedelta(hours=9),
        }
        for n, due in dues.items():
            await held.hold(delivery(n, due))
        await held.hold(delivery(1, NOW))  # held twice: the first stands
        stored = await client[settings.database][HELD_DELIVERIES.name].find_one({"_id": "d1"})
        assert stored is not None and stored["due_hour"] == due_hour(dues[1])

        assert [d.id for d in await held.due(NOW, limit=2)] == ["d1", "d2"]
        for name in ("d1", "d2"):
            await held.release(name)
        assert [d.id for d in await held.due(NOW)] == ["d3"]
        await held.release("d3")
        assert await held.due(NOW) == []
        assert [d.id for d in await held.due(NOW + timedelta(minutes=15))] == ["d4"]

        later = NOW + timedelta(hours=10)
        elsewhere = HeldDeliveries(db)  # another process, started later
        assert [d.id for d in await elsewhere.due(later)] == ["d4", "d5"]
        old = HeldDeliveries(db)
        await old.hold(delivery(6, later - HELD_LOOKBACK + timedelta(hours=2)))
        assert next(d.id for d in await HeldDeliveries(db).due(later)) == "d6"
    finally:
        await client.close()


async def test_deliveries_held_before_due_hour_existed_are_released(settings: Settings) -> None:
    """A document stored without ``due_hour`` (before this version) gets it at start-up."""
    client = mongo_client(settings)
    try:
        collection = client[settings.database][HELD_DELIVERIES.name]
        old = delivery(7, NOW - timedelta(hours=1))
        await collection.insert_one(
            {"_id": old.id, "due": old.deliver_after, "delivery": old.model_dump(mode="json")}
        )
        assert [
            d.id for d in await HeldDeliveries(Database(client[settings.database], CHANNELS)).due(NOW)
        ] == ["d7"]
    finally:
        await client.close()

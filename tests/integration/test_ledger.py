"""The delivery ledger against the real database, as two channels processes share it while
their partitions move: a delivery another process claimed moments ago is not sent again
(it is being sent), one claimed long ago and never settled is (its sender died), one
settled never is, and a claim given up after a failed send is taken afresh."""

from __future__ import annotations

from datetime import timedelta

import pytest

from buurtalert.channels.stores import IN_FLIGHT, DeliveryInProgress, Ledger
from buurtalert.shared.models import Delivery, DeliveryState, DeliveryStatus, Destination, utcnow
from buurtalert.shared.mongo import Audit, Database, mongo_client
from buurtalert.shared.settings import Settings
from buurtalert.shared.topics import CHANNELS


def _delivery(n: int) -> Delivery:
    return Delivery(
        id=f"dlv_{n}",
        message_id=f"msg_{n}",
        municipality="weert-demo",
        destination=Destination(group_id="g", channel="whatsapp", address="31612345678"),
        text="t",
        rules=("r",),
    )


async def test_two_processes_send_a_delivery_once_while_it_is_under_way(settings: Settings) -> None:
    clients = [mongo_client(settings), mongo_client(settings)]
    try:
        first, second = (Ledger(db := Database(c[settings.database], CHANNELS), Audit(db)) for c in clients)
        delivery = _delivery(1)
        assert await first.claim(delivery) is None  # the first sends it
        with pytest.raises(DeliveryInProgress) as under_way:
            await second.claim(delivery)  # the second holds the record too: not yet
        # its retry waits until the claim could be a dead sender's, not less
        assert 0 < under_way.value.retry_after <= IN_FLIGHT.total_seconds()
        assert under_way.value.retry_after > IN_FLIGHT.total_seconds() - 5
        await first.release(delivery)  # the first's send failed for now
        assert await second.claim(delivery) is None  # taken afresh by whoever retries
        sent = DeliveryStatus(
            delivery_id=delivery.id,
            message_id=delivery.message_id,
            channel="whatsapp",
            state=DeliveryState.SENT,
        )
        await second.settle(sent)
        settled = await first.claim(delivery)
        assert settled is not None and settled.state is DeliveryState.SENT  # never sent again

        crashed = _delivery(2)
        await clients[0][settings.database].deliveries.insert_one(
            {
                "_id": crashed.id,
                "message_id": crashed.message_id,
                "channel": "whatsapp",
                "group_id": "g",
                "created_at": utcnow() - IN_FLIGHT - timedelta(seconds=1),
            }
        )
        assert await second.claim(crashed) is None  # its sender died: sent again
    finally:
        for client in clients:
            await client.close()

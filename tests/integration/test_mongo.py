"""The database helpers on a real MongoDB-wire server: group commit, the append-only
audit trail, and ingest's claims."""

from __future__ import annotations

import asyncio

from buurtalert.ingest.accept import Intake
from buurtalert.ingest.stores import IngestStores
from buurtalert.shared.collections import CONTACTS
from buurtalert.shared.contacts import Contacts
from buurtalert.shared.kafka import Sender, create_broker
from buurtalert.shared.mongo import Audit, Database, GroupInserts, mongo_client
from buurtalert.shared.settings import Settings, load_municipality_config
from buurtalert.shared.topics import INGEST


async def test_group_inserts_write_concurrent_documents_and_report_duplicates(settings: Settings) -> None:
    """Concurrent inserts are written together; a duplicate _id answers False instead of raising."""
    client = mongo_client(settings)
    try:
        collection = client[settings.database].things
        inserts = GroupInserts(collection)
        first = await asyncio.gather(*(inserts.insert({"_id": f"k{i % 50}", "n": i}) for i in range(100)))
        assert first.count(True) == 50 and first.count(False) == 50
        assert await collection.count_documents({}) == 50
        assert await inserts.insert({"_id": "k3"}) is False
    finally:
        await client.close()


async def test_audit_trail_keeps_each_stage_and_its_history(settings: Settings) -> None:
    """Each stage is kept once per content; a changed stage keeps its history; the trail shows the latest."""
    client = mongo_client(settings)
    try:
        audit = Audit(Database(client[settings.database], "moderation"))
        assert await audit.record("msg_1", "ingest", {"raw_ref": "raw_1"}, once=True)
        assert not await audit.record("msg_1", "ingest", {"raw_ref": "other"}, once=True)
        assert await audit.recorded("msg_1", "ingest") and not await audit.recorded("msg_2", "ingest")
        await audit.record("msg_1", "moderation", {"decision": "forward"})
        await audit.record("msg_1", "moderation", {"decision": "forward"})  # redelivered: no second entry
        await audit.record("msg_1", "deliveries.dlv_a", {"state": "sent"})
        await audit.record("msg_1", "deliveries.dlv_a", {"state": "delivered"})
        trail = await audit.trail("msg_1")
        assert trail["ingest"]["raw_ref"] == "raw_1" and trail["moderation"]["decision"] == "forward"
        assert trail["deliveries"]["dlv_a"]["state"] == "delivered"  # the latest of its history
        assert await client[settings.database].audit.count_documents({"message_id": "msg_1"}) == 4
    finally:
        await client.close()


async def test_a_claim_without_a_recorded_ingest_stage_is_not_a_duplicate(settings: Settings) -> None:
    """A crash between claiming and recording: the provider's retry is accepted again."""
    client = mongo_client(settings)
    db = Database(client[settings.database], INGEST)
    municipality = load_municipality_config(settings.municipality_file)
    broker = create_broker(settings, INGEST)
    sender = Sender(settings, INGEST)  # not started: nothing is published here
    intake = Intake(broker, settings, IngestStores(db), municipality, sender=sender, status_sender=sender)
    try:
        assert await intake.handled(["msg_a", "msg_b"]) == set()  # both claimed now
        assert await intake.handled(["msg_a"]) == set()  # claimed, never recorded: accept again
        await Audit(db).record("msg_a", INGEST, {}, once=True)
        assert await intake.handled(["msg_a", "msg_b"]) == {"msg_a"}
    finally:
        await client.close()


async def test_contacts_keep_each_authors_latest_address(settings: Settings) -> None:
    """Many new authors at once are all remembered; an author who writes from a new
    address is found at that one; remembering the same again changes nothing."""
    client = mongo_client(settings)
    try:
        contacts = Contacts(Database(client[settings.database], INGEST))
        await asyncio.gather(
            *(contacts.remember("weert-demo", f"p_{n}", "email", f"a{n}@example.test") for n in range(40))
        )
        await contacts.remember("weert-demo", "p_7", "whatsapp", "31612345678")
        await contacts.remember("weert-demo", "p_8", "email", "a8@example.test")
        assert await contacts.find("weert-demo", "p_7") == ("whatsapp", "31612345678")
        assert await contacts.find("weert-demo", "p_8") == ("email", "a8@example.test")
        assert await contacts.find("weert-demo", "p_39") == ("email", "a39@example.test")
        assert await contacts.find("other-town", "p_1") is None
        assert await client[settings.database][CONTACTS.name].count_documents({}) == 40
    finally:
        await client.close()

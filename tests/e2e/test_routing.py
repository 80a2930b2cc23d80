"""Routing end to end: the directories in the database, messages through Kafka,
emails arriving at the groups the rules chose."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from buurtalert.devkit.graph_emulator import GraphEmulator
from buurtalert.shared.models import Delivery, Destination, utcnow
from buurtalert.shared.mongo import mongo_client
from tests.e2e.conftest import System
from tests.support import eventually

RESIDENT = {"authorization": "Bearer demo-token-buurtpreventie"}
POLICE = {"authorization": "Bearer demo-token-politie"}
LISTS = "lists.weert-demo.buurtalert.test"


async def _post(system: System, headers: dict[str, str], **report: Any) -> str:
    body = {"reporter": "+31 6 99999999", **report}
    async with httpx.AsyncClient() as http:
        response = await http.post(system.reports_url, json=body, headers=headers)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def _count(system: System) -> int:
    return len(system.mailbox.mailbox.snapshot())


async def test_missing_person_reaches_adjacent_districts_and_the_partner_across_the_border(
    system: System,
) -> None:
    """A missing person reported in Boshoven reaches its regiegroep, the neighbouring
    districts' regiegroepen and the Belgian partner's regiegroep, labelled with its origin."""
    await _post(
        system,
        RESIDENT,
        report_id="vermist-1",
        group="boshoven-noord",
        category="missing_person",
        text="Vermist: man van 82 met blauwe jas, verward, laatst gezien bij de Boshoverweg. 112 gebeld.",
    )
    expected = {
        f"regie-boshoven@{LISTS}",
        f"regie-leuken@{LISTS}",
        f"regie-centrum@{LISTS}",
        "regie-kaulille@lists.bocholt-demo.buurtalert.test",
    }
    inbox = await eventually(
        lambda: (box := system.inbox()) and set(box) == expected and box, what="four regiegroepen"
    )
    belgian = inbox["regie-kaulille@lists.bocholt-demo.buurtalert.test"][0]
    assert "Melding uit Weert (NL)" in belgian and "zonder spoed 101" in belgian
    assert "Melding uit" not in inbox[f"regie-leuken@{LISTS}"][0]


async def test_authority_alert_reaches_every_group_of_the_target_districts(system: System) -> None:
    """The wijkagent's alert for Leuken reaches Leuken's buurtgroep and regiegroep only."""
    await _post(
        system,
        POLICE,
        report_id="alert-1",
        category="burglary_wave",
        target={"districts": ["leuken"]},
        text="Let op: meerdere woninginbraken in Leuken deze week. Sluit ramen en deuren.",
    )
    await eventually(
        lambda: set(system.inbox()) == {f"leuken-west@{LISTS}", f"regie-leuken@{LISTS}"},
        what="the two Leuken groups",
    )
    await asyncio.sleep(1.0)
    assert set(system.inbox()) == {f"leuken-west@{LISTS}", f"regie-leuken@{LISTS}"}


async def test_a_group_reached_member_by_member_gets_one_whatsapp_message_each(
    system: System, graph: GraphEmulator
) -> None:
    """Centrum-West is addressed as ``members``: the alert reaches each member who
    opted in one to one from the municipality's number, and no one else."""
    await _post(
        system,
        POLICE,
        report_id="alert-centrum",
        category="burglary_wave",
        target={"districts": ["centrum"]},
        text="Let op: inbraakgolf in Centrum. Sluit ramen en deuren.",
    )
    await eventually(lambda: len(graph.sent) >= 2, what="two one-to-one WhatsApp messages")
    await eventually(
        lambda: set(system.inbox()) == {f"centrum-oost@{LISTS}", f"regie-centrum@{LISTS}"},
        what="the two Centrum email groups",
    )
    await asyncio.sleep(1.0)
    assert sorted(m["to"] for m in graph.sent) == ["31600000011", "31600000012"]
    assert {m["recipient_type"] for m in graph.sent} == {"individual"}
    assert all("inbraakgolf in Centrum" in m["text"]["body"] for m in graph.sent)


async def test_municipal_issue_is_escalated_to_the_municipality(system: System) -> None:
    """A loose paving stone goes to the municipality's reporting address, not to the groups."""
    await _post(
        system,
        RESIDENT,
        report_id="tegel-1",
        group="boshoven-zuid",
        category="loose_paving",
        text="Losliggende stoeptegel bij de bushalte, iemand is bijna gevallen.",
    )
    await eventually(
        lambda: set(system.inbox()) == {"openbareruimte@weert-demo.buurtalert.test"},
        what="the municipality's email",
    )


async def test_reports_of_one_event_form_an_incident_whose_closing_reaches_every_group(
    system: System,
) -> None:
    """Two groups report the same fleeing suspect: one incident, whose groups are told
    once. The wijkagent's closing message reaches every group the incident reached."""
    first = await _post(
        system,
        RESIDENT,
        report_id="vlucht-1",
        group="boshoven-noord",
        category="suspect_fleeing",
        text="Man op zwarte scooter vlucht na inbraak richting Leuken, 112 gebeld.",
    )
    reached = {
        f"regie-boshoven@{LISTS}",
        f"regie-leuken@{LISTS}",
        f"regie-centrum@{LISTS}",
        "regie-kaulille@lists.bocholt-demo.buurtalert.test",
    }
    await eventually(
        lambda: set(system.inbox()) == reached and _count(system) == 4,
        what="the first report at four regiegroepen",
    )
    second = await _post(
        system,
        RESIDENT,
        report_id="vlucht-2",
        group="boshoven-zuid",
        category="suspect_fleeing",
        text="Zwarte scooter met man rijdt hard richting Leuken na inbraak, 112 gebeld.",
    )
    client = mongo_client(system.settings)
    db = client[system.settings.database]
    try:

        async def second_routed() -> Any:
            return await db.audit.find_one({"message_id": second, "stage": "routing"})

        routing = await eventually(second_routed, what="the second report routed")
        [incident] = await db.incidents.find().to_list()
        memberships = [await db.incident_reports.find_one({"_id": m}) for m in (first, second)]
        tellings = await db.incident_tellings.find({"incident": incident["_id"]}).to_list()
    finally:
        await client.close()
    assert [m["incident"] for m in memberships if m] == [incident["_id"]] * 2
    assert {t["group"]: t["message"] for t in tellings}["weert-demo/boshoven-regie"] == first
    assert routing["data"]["deliveries"] == []
    assert "incident_already_told:boshoven-regie" in routing["data"]["rules"]
    assert _count(system) == 4, "the groups the incident told are not told again"

    await _post(
        system,
        POLICE,
        report_id="vlucht-einde",
        group="boshoven-regie",
        closes=first,
        text="Verdachte van de inbraak is aangehouden. Dank voor de oplettendheid.",
    )
    await eventually(lambda: _count(system) == 7, what="the closing message at three groups")
    closing = {
        address for address, bodies in system.inbox().items() if any("aangehouden" in b for b in bodies)
    }
    assert closing == reached - {f"regie-boshoven@{LISTS}"}  # not back to the sender's group


async def test_held_delivery_waits_in_the_database_and_goes_when_due(system: System) -> None:
    """A delivery held by quiet hours or a rate limit is not sent before its time, and is sent then."""
    due = utcnow() + timedelta(seconds=3)
    delivery = Delivery(
        id="dlv_held_1",
        message_id="msg_held_1",
        municipality="weert-demo",
        text="Na de stille uren.",
        rules=("buurtgroep_to_regiegroep", "quiet_hours"),
        deliver_after=due,
        destination=Destination(
            group_id="boshoven-regie", channel="email", address=f"regie-boshoven@{LISTS}"
        ),
    )
    producer = AIOKafkaProducer(bootstrap_servers=system.settings.kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(
            system.settings.topic("deliveries.email"),
            delivery.model_dump_json().encode(),
            key=b"boshoven-regie",
        )
    finally:
        await producer.stop()
    await asyncio.sleep(1.5)
    assert system.inbox() == {}
    await eventually(lambda: system.inbox(), what="the held delivery")
    assert utcnow() >= due

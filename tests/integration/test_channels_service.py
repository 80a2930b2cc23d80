"""The channels service as a process delivers ``deliveries.whatsapp`` through the
WhatsApp adapter to the Graph API emulator, and ``deliveries.webhook`` to a signed
webhook receiver, once per delivery, and reports it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from aiokafka import AIOKafkaProducer
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from buurtalert.shared.graph_emulator import GraphEmulator
from buurtalert.shared.models import Delivery, DeliveryState, Destination, ProviderStatus, stable_id, utcnow
from buurtalert.shared.settings import Settings
from buurtalert.shared.webhooks import SIGNATURE_HEADER, signature_problem
from tests.conftest import TEST_FAILED
from tests.support import ServiceProcess, read_topic, served


@pytest.fixture
async def graph() -> AsyncIterator[GraphEmulator]:
    emulator = GraphEmulator(access_token="demo-graph-token")
    async with served(emulator.app) as port:
        emulator.base_url = f"http://127.0.0.1:{port}"
        yield emulator


@pytest.fixture
async def channels(
    settings: Settings, graph: GraphEmulator, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Settings]:
    data = yaml.safe_load(settings.municipality_file.read_text())
    data["channels"]["whatsapp"]["graph_url"] = f"{graph.base_url}/v21.0"
    path = tmp_path / "channels-municipality.yaml"
    path.write_text(yaml.safe_dump(data))
    own = settings.model_copy(update={"municipality_file": path})
    process = ServiceProcess("channels", own, tmp_path)
    process.start()
    try:
        await process.started()
        yield own
    finally:
        process.stop()
        if request.node.stash.get(TEST_FAILED, False):
            print(process.log()[-6000:])


async def test_whatsapp_deliveries_are_sent_once_and_reported(
    channels: Settings, graph: GraphEmulator
) -> None:
    deliveries = [
        Delivery(
            id=stable_id("dlv", "msg_wa", group),
            message_id="msg_wa",
            municipality="weert-demo",
            destination=Destination(group_id=group, channel="whatsapp", address=address),
            text="Verdachte man met rode jas bij de school, 112 is gebeld.",
            rules=("buurtgroep_to_regiegroep",),
        )
        for group, address in (
            ("centrum-regie", "120363049876543210"),
            ("leuken-regie", "120363041111111111"),
        )
    ]
    producer = AIOKafkaProducer(bootstrap_servers=channels.kafka_bootstrap)
    await producer.start()
    try:
        for _ in range(2):  # delivered twice, as at-least-once allows: sent once
            for item in deliveries:
                await producer.send_and_wait(
                    channels.topic("deliveries.whatsapp"),
                    item.model_dump_json().encode(),
                    key=item.destination.group_id.encode(),
                )
    finally:
        await producer.stop()
    statuses = await read_topic(channels, "deliveries.status", 4)
    assert {s["delivery_id"] for s in statuses} == {d.id for d in deliveries}
    assert {s["state"] for s in statuses} == {"sent"}
    await asyncio.sleep(1.0)
    assert sorted(m["to"] for m in graph.sent) == ["120363041111111111", "120363049876543210"]
    assert {s["provider_message_id"] for s in statuses} == {m["id"] for m in graph.sent}
    assert all(m["recipient_type"] == "group" for m in graph.sent)

    # WhatsApp's status webhook (through ingest) echoes our delivery id: recorded against the delivery
    wamid = graph.sent[0]["id"]
    status = ProviderStatus(
        id=stable_id("pst", wamid, "delivered"),
        channel="whatsapp",
        account="106540352242922",
        provider_message_id=wamid,
        reference=graph.sent[0]["biz_opaque_callback_data"],
        state=DeliveryState.DELIVERED,
        at=utcnow(),
    )
    producer = AIOKafkaProducer(bootstrap_servers=channels.kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(
            channels.topic("deliveries.provider-status"), status.model_dump_json().encode()
        )
    finally:
        await producer.stop()
    after = await read_topic(channels, "deliveries.status", 5)
    [delivered] = [s for s in after if s["state"] == "delivered"]
    assert delivered["delivery_id"] == status.reference and delivered["message_id"] == "msg_wa"


@dataclass
class Receiver:
    url: str
    bodies: list[bytes] = field(default_factory=list)

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        if signature_problem(SecretStr("demo-webhook-secret"), body, request.headers.get(SIGNATURE_HEADER)):
            return Response(status_code=401)
        self.bodies.append(body)
        return Response(status_code=204)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A partner's system: accepts only posts signed with the shared secret."""
    found = Receiver("")
    async with served(Starlette(routes=[Route("/hook", found.hook, methods=["POST"])])) as port:
        found.url = f"http://127.0.0.1:{port}/hook"
        yield found


async def test_webhook_deliveries_reach_the_receiver_signed_and_once(
    channels: Settings, receiver: Receiver
) -> None:
    item = Delivery(
        id=stable_id("dlv", "msg_hook", "meldpunt"),
        message_id="msg_hook",
        municipality="weert-demo",
        destination=Destination(group_id="meldpunt", channel="webhook", address=receiver.url),
        text="Losse stoeptegel aan de Molenstraat",
        rules=("municipal_escalation",),
    )
    producer = AIOKafkaProducer(bootstrap_servers=channels.kafka_bootstrap)
    await producer.start()
    try:
        for _ in range(2):  # delivered twice: posted once
            await producer.send_and_wait(
                channels.topic("deliveries.webhook"), item.model_dump_json().encode()
            )
    finally:
        await producer.stop()
    statuses = await read_topic(channels, "deliveries.status", 2)
    assert {s["state"] for s in statuses} == {"sent"} and {s["delivery_id"] for s in statuses} == {item.id}
    await asyncio.sleep(1.0)
    assert len(receiver.bodies) == 1 and b"Losse stoeptegel" in receiver.bodies[0]

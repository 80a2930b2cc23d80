"""The channels service as a process delivers every adapter's topic, once per
delivery, and reports it on ``deliveries.status``: ``deliveries.whatsapp`` and
``deliveries.facebook`` to the Graph API emulator, ``deliveries.webhook`` to a
signed webhook receiver, ``deliveries.apprise`` through Apprise's ``json://``
service, and ``deliveries.meldingenportaal`` through the example partner adapter,
which the municipality file configures like any other; and ``review.group-changes``, a
removed member taken out of a WhatsApp group through the Groups API, once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from aiokafka import AIOKafkaProducer
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from buurtalert.devkit.graph_emulator import GraphEmulator
from buurtalert.shared.admin import create_topics
from buurtalert.shared.contacts import Contacts
from buurtalert.shared.models import (
    Author,
    Decision,
    Delivery,
    DeliveryState,
    Destination,
    GroupRemoval,
    InboundMessage,
    MediaRef,
    ModeratedMessage,
    ModerationResult,
    ProviderRef,
    ProviderStatus,
    Reason,
    SourceChannel,
    stable_id,
    utcnow,
)
from buurtalert.shared.mongo import Audit, Database, mongo_client
from buurtalert.shared.settings import Settings, load_municipality_config
from buurtalert.shared.topics import REVIEW_GROUP_CHANGES, deployment_topics
from buurtalert.shared.webhooks import SIGNATURE_HEADER, signature_problem
from tests.conftest import TEST_FAILED
from tests.support import ServiceProcess, eventually, read_topic, served

PAGE = "102030405060708"


@dataclass
class Receiver:
    """A partner's system: accepts only posts signed with the shared secret."""

    url: str = ""
    bodies: list[bytes] = field(default_factory=list)

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        if signature_problem(SecretStr("demo-webhook-secret"), body, request.headers.get(SIGNATURE_HEADER)):
            return Response(status_code=401)
        self.bodies.append(body)
        return Response(status_code=204)


@dataclass
class Portal:
    """A municipality's case system as the example partner adapter expects it: a
    bearer token, a case per Idempotency-Key (409 for a repeat), and, for the first
    ``outages`` calls, 503."""

    url: str = ""
    outages: int = 0
    cases: dict[str, dict[str, object]] = field(default_factory=dict)
    calls: int = 0

    async def create(self, request: Request) -> Response:
        self.calls += 1
        if request.headers.get("authorization") != "Bearer portal-token":
            return Response(status_code=401)
        if self.calls <= self.outages:
            return Response(status_code=503)
        key = request.headers["idempotency-key"]
        if key in self.cases:
            return JSONResponse({"case_id": f"Z-{list(self.cases).index(key)}"}, status_code=409)
        self.cases[key] = await request.json()
        return JSONResponse({"case_id": f"Z-{len(self.cases) - 1}"}, status_code=201)


@dataclass
class Notified:
    """What Apprise's ``json://`` service posts."""

    port: int = 0
    bodies: list[dict[str, object]] = field(default_factory=list)

    async def notify(self, request: Request) -> Response:
        self.bodies.append(await request.json())
        return Response(status_code=200)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    async with served(Starlette(routes=[Route("/hook", found.hook, methods=["POST"])])) as port:
        found.url = f"http://127.0.0.1:{port}/hook"
        yield found


@pytest.fixture
async def portal() -> AsyncIterator[Portal]:
    found = Portal()
    async with served(Starlette(routes=[Route("/api/cases", found.create, methods=["POST"])])) as port:
        found.url = f"http://127.0.0.1:{port}/api/"
        yield found


@pytest.fixture
async def notified() -> AsyncIterator[Notified]:
    found = Notified()
    async with served(Starlette(routes=[Route("/notify", found.notify, methods=["POST"])])) as port:
        found.port = port
        yield found


@pytest.fixture
async def channels(
    settings: Settings,
    graph: GraphEmulator,
    portal: Portal,
    notified: Notified,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> AsyncIterator[Settings]:
    data = yaml.safe_load(settings.municipality_file.read_text())  # the Graph API at `graph` already
    data["channels"]["apprise"] = {"targets": {"wijkteam": f"json://127.0.0.1:{notified.port}/notify"}}
    data["channels"]["meldingenportaal"] = {"base_url": portal.url, "token": "portal-token"}
    path = tmp_path / "channels-municipality.yaml"
    path.write_text(yaml.safe_dump(data))
    own = settings.model_copy(update={"municipality_file": path})
    await create_topics(own, deployment_topics(load_municipality_config(path).channels))
    process = ServiceProcess("channels", own, tmp_path)
    process.start()
    try:
        await process.started()
        yield own
    finally:
        process.stop()
        if request.node.stash.get(TEST_FAILED, False):
            print(process.log()[-6000:])


async def publish_twice(settings: Settings, topic: str, deliveries: Sequence[Delivery]) -> None:
    """Each delivery twice, as at-least-once delivery allows."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        for _ in range(2):
            for item in deliveries:
                await producer.send_and_wait(
                    settings.topic(topic),
                    item.model_dump_json().encode(),
                    key=item.destination.group_id.encode(),
                )
    finally:
        await producer.stop()


def delivery(channel: str, group_id: str, address: str, kind: str = "group", **extra: object) -> Delivery:
    return Delivery(
        id=stable_id("dlv", f"msg_{channel}", group_id, address),
        message_id=f"msg_{channel}",
        municipality="weert-demo",
        destination=Destination(group_id=group_id, channel=channel, address=address, recipient_type=kind),  # type: ignore[arg-type]
        text="Let op: woninginbraken in Leuken, sluit ramen en deuren.",
        rules=("authority_alert_area",),
        **extra,  # type: ignore[arg-type]
    )


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
    await publish_twice(channels, "deliveries.whatsapp", deliveries)  # sent once each
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
    await publish_twice(channels, "deliveries.webhook", [item])  # posted once
    statuses = await read_topic(channels, "deliveries.status", 2)
    assert {s["state"] for s in statuses} == {"sent"} and {s["delivery_id"] for s in statuses} == {item.id}
    await asyncio.sleep(1.0)
    assert len(receiver.bodies) == 1 and b"Losse stoeptegel" in receiver.bodies[0]


async def test_facebook_deliveries_become_a_page_post_and_a_messenger_reply_once(
    channels: Settings, graph: GraphEmulator
) -> None:
    post = delivery("facebook", "weert-pagina", PAGE)
    reply = delivery("facebook", "author-p1", "6783412", "individual")
    await publish_twice(channels, "deliveries.facebook", [post, reply])
    statuses = await read_topic(channels, "deliveries.status", 4)
    assert {s["delivery_id"] for s in statuses} == {post.id, reply.id} and {s["state"] for s in statuses} == {
        "sent"
    }
    await asyncio.sleep(1.0)
    assert [p["message"] for p in graph.posts] == [post.text]
    [sent] = graph.sent
    assert sent["recipient"] == {"id": "6783412"} and sent["message"]["metadata"] == reply.id
    by_delivery = {s["delivery_id"]: s["provider_message_id"] for s in statuses}
    assert by_delivery == {post.id: graph.posts[0]["id"], reply.id: sent["id"]}


async def test_apprise_deliveries_reach_the_named_target_once(channels: Settings, notified: Notified) -> None:
    item = delivery("apprise", "wijkteam", "wijkteam", subject="Buurtalert: woninginbraken")
    await publish_twice(channels, "deliveries.apprise", [item])
    statuses = await read_topic(channels, "deliveries.status", 2)
    assert {(s["delivery_id"], s["state"]) for s in statuses} == {(item.id, "sent")}
    await asyncio.sleep(1.0)
    [body] = notified.bodies
    assert body["title"] == "Buurtalert: woninginbraken" and body["message"] == item.text


async def test_a_partner_adapter_delivers_its_own_topic_through_the_retry_path(
    channels: Settings, portal: Portal
) -> None:
    """The example partner's portal is down for the first two calls: the delivery takes
    the retry path and becomes one case."""
    portal.outages = 2
    item = delivery("meldingenportaal", "openbare-ruimte", "openbare-ruimte")
    await publish_twice(channels, "deliveries.meldingenportaal", [item])
    await eventually(lambda: portal.cases, what="the case to be created")
    statuses = await read_topic(channels, "deliveries.status", 2)
    assert {(s["delivery_id"], s["state"]) for s in statuses} == {(item.id, "sent")}
    await asyncio.sleep(1.0)
    assert list(portal.cases) == [item.id] and portal.calls >= 3
    assert portal.cases[item.id]["department"] == "openbare-ruimte"


async def test_an_alert_photo_is_read_from_the_media_store_and_sent_to_each_member(
    channels: Settings, graph: GraphEmulator
) -> None:
    """Ingest stored the wijkagent's photo; channels uploads it once and sends it to
    every member of the fan-out, with the text as caption."""
    jpeg = b"\xff\xd8\xff\xe0" + b"\x20" * 4096
    client = mongo_client(channels)
    try:
        await client[channels.database].media.insert_one(
            {"_id": "med_alert", "data": jpeg, "mime_type": "image/jpeg", "size": len(jpeg)}
        )
    finally:
        await client.close()
    photo = MediaRef(kind="image", storage_ref="med_alert", mime_type="image/jpeg")
    members = [
        delivery("whatsapp", "centrum-west", f"3160000001{n}", "individual", media=(photo,)) for n in (1, 2)
    ]
    await publish_twice(channels, "deliveries.whatsapp", members)
    statuses = await read_topic(channels, "deliveries.status", 4)
    assert {(s["delivery_id"], s["state"]) for s in statuses} == {(m.id, "sent") for m in members}
    await asyncio.sleep(1.0)
    [media_id] = graph.uploads
    assert graph.media[media_id].data == jpeg
    assert sorted(m["to"] for m in graph.sent) == ["31600000011", "31600000012"]
    assert all(m["image"] == {"id": media_id, "caption": members[0].text} for m in graph.sent)


async def test_a_rejected_messenger_author_gets_the_explanation_as_a_messenger_reply(
    channels: Settings, graph: GraphEmulator
) -> None:
    """Ingest remembered that the author wrote through the Page's Messenger; channels
    answers there, with the reason, in Dutch and English."""
    client = mongo_client(channels)
    try:
        await Contacts(Database(client[channels.database], "ingest")).remember(
            "weert-demo", "p_fb", "facebook", "7001"
        )
    finally:
        await client.close()
    rejected = ModeratedMessage(
        message=InboundMessage(
            id="msg_rejected",
            provider=ProviderRef(channel=SourceChannel.FACEBOOK, message_id="m_1", account=PAGE),
            municipality="weert-demo",
            group_id="boshoven-noord",
            author=Author(pseudonym="p_fb", verified=True),
            text="Die vent ziet er buitenlands uit, pak hem aan",
            sent_at=utcnow(),
            raw_ref="raw_1",
        ),
        moderation=ModerationResult(
            message_id="msg_rejected",
            decision=Decision.REJECT,
            reasons=(Reason(code="vigilantism", score=0.9),),
            policy_version="t",
            explanation="Je bericht roept op tot eigenrichting.",
            explanation_en="Your message calls for taking the law into your own hands.",
        ),
    )
    producer = AIOKafkaProducer(bootstrap_servers=channels.kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(channels.topic("messages.rejected"), rejected.model_dump_json().encode())
    finally:
        await producer.stop()
    await eventually(lambda: graph.sent, what="the Messenger reply")
    [reply] = graph.sent
    assert reply["recipient"] == {"id": "7001"} and reply["messaging_type"] == "RESPONSE"
    assert (
        "eigenrichting" in reply["message"]["text"] and "law into your own hands" in reply["message"]["text"]
    )


async def test_a_record_that_is_not_a_delivery_goes_to_the_dead_letter_topic_and_the_rest_is_sent(
    channels: Settings, receiver: Receiver
) -> None:
    """One bad record does not hold its batch back: it is dead-lettered with the reason."""
    good = delivery("webhook", "meldpunt", receiver.url)
    producer = AIOKafkaProducer(bootstrap_servers=channels.kafka_bootstrap)
    await producer.start()
    try:
        batch = producer.create_batch()
        for value in (b'{"id": "not a delivery"}', good.model_dump_json().encode()):
            batch.append(key=b"meldpunt", value=value, timestamp=None)
        await producer.send_batch(batch, channels.topic("deliveries.webhook"), partition=0)
        await producer.flush()
    finally:
        await producer.stop()
    [dead] = await read_topic(channels, "channels.deadletter", 1)
    assert dead["payload"] == '{"id": "not a delivery"}' and "ValidationError" in dead["error"]
    statuses = await read_topic(channels, "deliveries.status", 1)
    assert statuses[0]["delivery_id"] == good.id and len(receiver.bodies) == 1


REGIE_GROUP = "120363041234567890"


def group_removal(whatsapp_group: str = REGIE_GROUP, number: str = "31677777777") -> GroupRemoval:
    return GroupRemoval(
        id=GroupRemoval.removal_id("dec_rmv", whatsapp_group),
        decision_id="dec_rmv",
        subject_id="rmv_1",
        municipality="weert-demo",
        group_id="boshoven-regie",
        whatsapp_group_id=whatsapp_group,
        member="p_troublemaker",
        participant=SecretStr(number),
        reason="off_topic",
        agreed_by=("anna", "carl"),
        decided_at=utcnow(),
    )


async def publish_removals(settings: Settings, removals: Sequence[GroupRemoval]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        for removal in removals:
            await producer.send_and_wait(
                settings.topic(REVIEW_GROUP_CHANGES.name),
                removal.model_dump_json().encode(),
                key=removal.partition_key,
            )
    finally:
        await producer.stop()


async def audit_entry(settings: Settings, subject: str, stage: str) -> dict[str, object] | None:
    client = mongo_client(settings)
    try:
        return await Audit(Database(client[settings.database], "tests")).entry(subject, stage)
    finally:
        await client.close()


async def test_a_removed_member_leaves_the_whatsapp_group_once_however_often_asked(
    channels: Settings, graph: GraphEmulator
) -> None:
    """A removal on review.group-changes, published twice: the member is taken out of the
    emulator's group by one DELETE, the outcome recorded once on the proposal's trail; asked
    again afterwards, channels calls the Graph API no more."""
    graph.groups[REGIE_GROUP] = {"31600000001", "31677777777"}
    removal = group_removal()
    await publish_removals(channels, [removal, removal])
    stage = f"group_changes.{removal.id}"
    entry = await eventually(lambda: audit_entry(channels, "rmv_1", stage), what="the removal recorded")
    assert entry is not None and entry["outcome"] == "removed"
    assert entry["whatsapp_group_id"] == REGIE_GROUP and "31677777777" not in str(entry)
    assert graph.participants(REGIE_GROUP) == {"31600000001"}
    await publish_removals(channels, [removal])
    await asyncio.sleep(2.0)
    assert graph.calls == [("DELETE", f"/v21.0/{REGIE_GROUP}/participants")]


async def test_a_rate_limited_removal_is_retried_and_an_unknown_group_is_dead_lettered(
    channels: Settings, graph: GraphEmulator
) -> None:
    """The Groups API's rate limit (131208) sends the removal round the retry path until it is
    done; a group the API does not know (131041) is permanent: dead-lettered with its reason,
    the failure in the audit trail, and no number in either."""
    graph.groups[REGIE_GROUP] = {"31677777777"}
    graph.group_rate_limited_calls = 1
    unknown = group_removal("120363000000000000")
    await publish_removals(channels, [group_removal(), unknown])
    [dead] = await read_topic(channels, "channels.deadletter", 1, timeout=60)
    assert "131041" in dead["error"] and "31677777777" not in dead["error"]
    assert dead["topic"].endswith("review.group-changes")

    async def removed() -> bool:
        return graph.participants(REGIE_GROUP) == set()

    await eventually(removed, what="the removal after its retry")
    assert (131208, REGIE_GROUP) in graph.refused
    assert await audit_entry(channels, "rmv_1", f"group_changes.{group_removal().id}") is not None
    assert await audit_entry(channels, "rmv_1", f"group_changes.{unknown.id}") is None
    failures = await channels_failures(channels, unknown.id)
    assert failures and failures[0]["data"]["error_code"] == "131041"
    assert "31677777777" not in str(failures)


async def channels_failures(settings: Settings, removal_id: str) -> list[dict[str, object]]:
    client = mongo_client(settings)
    try:
        query = {"message_id": "rmv_1", "stage": f"group_change_failures.{removal_id}"}
        return [d async for d in client[settings.database]["audit"].find(query)]
    finally:
        await client.close()

"""The ingest service as a real process: Meta's webhooks, SMTP, IMAP (Dovecot), the
report form; into a real Kafka broker and MongoDB-wire server, with media fetched from
a local Graph API emulator. And ``Intake.take``, the one path of every lane, and the
media lane on their own against the same Kafka and database."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import httpx
import pytest
import yaml
from aioimaplib import IMAP4

from buurtalert.devkit.graph_emulator import GraphEmulator
from buurtalert.devkit.testing import ImapServer, free_port, provide_imap_server
from buurtalert.directory.model import load_directory
from buurtalert.directory.store import Memberships, fetch_directory, store_directory
from buurtalert.ingest.accept import Accepted, Intake, Refused
from buurtalert.ingest.lanes.media import MediaFetcher
from buurtalert.ingest.parsers import email, whatsapp
from buurtalert.ingest.parsers.common import Batch, Resolver, raw_id
from buurtalert.ingest.stores import IngestStores
from buurtalert.shared.collections import DIRECTORY
from buurtalert.shared.kafka import Sender, create_broker
from buurtalert.shared.models import MediaFetch
from buurtalert.shared.mongo import Database, mongo_client
from buurtalert.shared.pseudonym import pseudonymise
from buurtalert.shared.settings import Settings, load_municipality_config
from buurtalert.shared.topics import INGEST
from tests.conftest import DEMO, TEST_FAILED
from tests.meta import (
    PAGE_ID,
    REGIE_GROUP,
    fb_feed,
    signed,
    wa_message,
    wa_messages,
    wa_status,
    wa_statuses,
)
from tests.support import ServiceProcess, eventually, read_topic, wait_http

WA_SECRET = "demo-whatsapp-app-secret"
FB_SECRET = "demo-facebook-app-secret"
COORDINATOR = "31600000002"
LIST = "boshoven-zuid@lists.weert-demo.buurtalert.test"


@pytest.fixture(scope="session")
def imap_server() -> ImapServer:
    return provide_imap_server()


@dataclass
class Ingest:
    settings: Settings
    url: str
    smtp_port: int
    mailbox_user: str
    imap: ImapServer
    process: ServiceProcess

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        async with httpx.AsyncClient() as client:
            return await client.post(f"{self.url}{path}", content=body, headers=headers)

    async def topic(self, name: str, count: int, timeout: float = 20.0) -> list[Any]:
        return await read_topic(self.settings, name, count, timeout)

    async def db_find(self, collection: str, query: dict[str, Any]) -> list[dict[str, Any]]:
        client = mongo_client(self.settings)
        try:
            return [d async for d in client[self.settings.database][collection].find(query)]
        finally:
            await client.close()


@pytest.fixture
async def ingest(
    settings: Settings,
    tmp_path: Path,
    graph: GraphEmulator,
    imap_server: ImapServer,
    request: pytest.FixtureRequest,
) -> AsyncIterator[Ingest]:
    data = yaml.safe_load(settings.municipality_file.read_text())
    smtp_port = free_port()
    user = f"meldingen-{uuid.uuid4().hex[:8]}@weert-demo.buurtalert.test"
    data["ingest"]["whatsapp"]["graph_url"] = f"{graph.base_url}/v21.0"
    data["ingest"]["email"]["smtp_port"] = smtp_port
    data["ingest"]["email"]["imap"] = [
        {
            "host": imap_server.host,
            "port": imap_server.port,
            "tls": False,
            "username": user,
            "password": imap_server.password,
            "group": "leuken-west",
        }
    ]
    path = tmp_path / "ingest-municipality.yaml"
    path.write_text(yaml.safe_dump(data))
    own = settings.model_copy(update={"municipality_file": path})
    client = mongo_client(own)
    muni = load_municipality_config(path)
    await store_directory(
        Database(client[own.database], DIRECTORY),
        load_directory(DEMO / "weert" / "directory.yaml").pseudonymised(muni.pseudonym_key),
    )
    await client.close()
    process = ServiceProcess("ingest", own, tmp_path)
    process.start()
    try:
        await wait_http(f"http://127.0.0.1:{own.http_port}/health")
        await process.started()
        yield Ingest(own, f"http://127.0.0.1:{own.http_port}", smtp_port, user, imap_server, process)
    finally:
        process.stop()
        if request.node.stash.get(TEST_FAILED, False):
            print(process.log()[-6000:])


# --- WhatsApp -------------------------------------------------------------------------------


async def test_whatsapp_verification_handshake(ingest: Ingest) -> None:
    """Meta's GET handshake echoes hub.challenge only with the right verify token."""
    async with httpx.AsyncClient() as client:
        params = {
            "hub.mode": "subscribe",
            "hub.verify_token": "demo-verify-token",
            "hub.challenge": "1158201444",
        }
        ok = await client.get(f"{ingest.url}/webhooks/whatsapp", params=params)
        wrong = await client.get(
            f"{ingest.url}/webhooks/whatsapp", params={**params, "hub.verify_token": "guess"}
        )
    assert (ok.status_code, ok.text) == (200, "1158201444")
    assert wrong.status_code == 403


async def test_signed_whatsapp_message_reaches_kafka_once(ingest: Ingest) -> None:
    """Meta retries for days: the second delivery is recognised and not published again."""
    body = wa_messages(
        wa_message(
            COORDINATOR,
            "wamid.HBgL1",
            group_id=REGIE_GROUP,
            text={"body": "Verdachte man bij de kerk, 112 gebeld"},
        )
    )
    first = await ingest.post("/webhooks/whatsapp", body, signed(body, WA_SECRET))
    again = await ingest.post("/webhooks/whatsapp", body, signed(body, WA_SECRET))
    assert first.status_code == again.status_code == 200
    assert first.json()["accepted"] == 1 and again.json() == {**again.json(), "accepted": 0, "duplicates": 1}
    messages = await ingest.topic("messages.inbound", 2, timeout=5)
    assert len(messages) == 1
    [message] = messages
    assert message["group_id"] == "boshoven-regie"
    assert COORDINATOR not in json.dumps(message)
    [raw] = await ingest.db_find("raw_inputs", {"_id": message["raw_ref"]})
    assert raw["body"] == body and raw["source"] == "whatsapp"


@pytest.mark.parametrize(
    ("body", "headers", "status", "reason"),
    [
        (
            b'{"object":"whatsapp_business_account","entry":[]}',
            {"X-Hub-Signature-256": "sha256=" + "0" * 64},
            401,
            "does not match",
        ),
        (b'{"object":"whatsapp_business_account","entry":[]}', {}, 401, "missing X-Hub-Signature-256"),
        (b"{not json", None, 422, "not a WhatsApp webhook"),
        (b'{"object":"instagram","entry":[]}', None, 422, "unknown object"),
    ],
)
async def test_bad_whatsapp_input_gets_4xx_and_is_quarantined(
    ingest: Ingest, body: bytes, headers: dict[str, str] | None, status: int, reason: str
) -> None:
    response = await ingest.post(
        "/webhooks/whatsapp", body, headers if headers is not None else signed(body, WA_SECRET)
    )
    assert response.status_code == status and reason in response.json()["error"]
    [kept] = await ingest.topic("ingest.quarantine", 1)
    assert kept["id"] == response.json()["quarantine_id"] and reason in kept["reason"]
    assert kept["body"] == body.decode() and kept["source"] == "whatsapp"


async def test_oversized_webhook_is_refused(ingest: Ingest) -> None:
    """A body over the limit is refused with 413 and kept in quarantine, never read whole."""
    body = b"x" * (3 * 1024 * 1024 + 1)
    response = await ingest.post("/webhooks/whatsapp", body, signed(body, WA_SECRET))
    assert response.status_code == 413


async def test_status_burst_reaches_the_provider_status_topic(ingest: Ingest) -> None:
    """A burst of WhatsApp statuses lands on deliveries.provider-status, none lost."""
    statuses = [wa_status(f"wamid.OUT{i}", s) for i in range(50) for s in ("sent", "delivered", "read")]
    body = wa_statuses(*statuses)
    response = await ingest.post("/webhooks/whatsapp", body, signed(body, WA_SECRET))
    assert response.json()["statuses"] == 150
    records = await ingest.topic("deliveries.provider-status", 150)
    assert len(records) == 150 and {r["state"] for r in records} == {"sent", "delivered", "read"}


async def test_media_is_fetched_from_the_graph_api_and_stored(ingest: Ingest, graph: GraphEmulator) -> None:
    photo = b"\xff\xd8\xff\xe0" + b"jpeg" * 500
    medium = graph.add_medium("1037543291543636", photo, "image/jpeg")
    item = {
        "id": "1037543291543636",
        "mime_type": "image/jpeg",
        "sha256": medium.sha256,
        "caption": "Scooter zonder kenteken",
    }
    body = wa_messages(wa_message(COORDINATOR, "wamid.IMG1", "image", image=item))
    assert (await ingest.post("/webhooks/whatsapp", body, signed(body, WA_SECRET))).json()["accepted"] == 1
    [message] = await ingest.topic("messages.inbound", 1)
    ref = message["media"][0]["storage_ref"]

    async def stored() -> list[dict[str, Any]]:
        return await ingest.db_find("media", {"_id": ref})

    await eventually(stored, what="the photo to be stored")
    [doc] = await stored()
    assert doc["data"] == photo and doc["mime_type"] == "image/jpeg" and doc["message_id"] == message["id"]
    assert ("GET", "/v21.0/1037543291543636") in graph.calls


async def test_unknown_media_goes_to_the_dead_letter_topic_with_the_graph_error(ingest: Ingest) -> None:
    item = {"id": "404404", "mime_type": "image/jpeg", "sha256": "x"}
    body = wa_messages(wa_message(COORDINATOR, "wamid.IMG2", "image", image=item))
    await ingest.post("/webhooks/whatsapp", body, signed(body, WA_SECRET))
    [letter] = await ingest.topic("ingest.deadletter", 1)
    assert "code 100" in letter["error"] and letter["topic"].endswith("ingest.media")


async def test_membership_by_keyword_is_recorded_in_the_directory(ingest: Ingest) -> None:
    member = "31687654321"
    join = wa_messages(wa_message(member, "wamid.J1", text={"body": "AANMELDEN LW-8R3T6V1P"}))
    assert (await ingest.post("/webhooks/whatsapp", join, signed(join, WA_SECRET))).json()["memberships"] == 1
    client = mongo_client(ingest.settings)
    db = Database(client[ingest.settings.database], INGEST)
    pseudonym = pseudonymise(
        load_municipality_config(ingest.settings.municipality_file).pseudonym_key, member
    )
    try:
        directory = await fetch_directory(db, "weert-demo")
        assert directory is not None
        assert directory.member(pseudonym) is None  # pending: a coordinator approves first
        [pending] = await Memberships(db).pending("weert-demo")
        assert pending.pseudonym == pseudonym and pending.requested == ("leuken-west",)
        stop = wa_messages(wa_message(member, "wamid.J2", text={"body": "STOP"}))
        await ingest.post("/webhooks/whatsapp", stop, signed(stop, WA_SECRET))
        directory = await fetch_directory(db, "weert-demo")
        assert directory is not None
        left = directory.member(pseudonym)
        assert left is None or (not left.consent_one_to_one and left.address is None)
    finally:
        await client.close()
    assert await ingest.topic("messages.inbound", 1, timeout=3) == []


async def test_reaction_goes_to_the_reactions_topic(ingest: Ingest) -> None:
    body = wa_messages(
        wa_message(COORDINATOR, "wamid.R1", "reaction", reaction={"message_id": "wamid.HBgL1", "emoji": "👍"})
    )
    assert (await ingest.post("/webhooks/whatsapp", body, signed(body, WA_SECRET))).json()["reactions"] == 1
    [reaction] = await ingest.topic("messages.reactions", 1)
    assert reaction["emoji"] == "👍" and reaction["reacts_to"] == "wamid.HBgL1"


# --- Facebook -------------------------------------------------------------------------------


async def test_facebook_comment_reaches_kafka_and_bad_signature_does_not(ingest: Ingest) -> None:
    body = fb_feed(
        "comment",
        post_id=f"{PAGE_ID}_1",
        comment_id="1_2",
        message="Ook bij ons is aangebeld, 112 gebeld",
        **{"from": {"id": "555"}},
    )
    assert (await ingest.post("/webhooks/facebook", body, signed(body, FB_SECRET))).json()["accepted"] == 1
    assert (await ingest.post("/webhooks/facebook", body, signed(body, WA_SECRET))).status_code == 401
    [message] = await ingest.topic("messages.inbound", 1)
    assert message["provider"]["channel"] == "facebook" and message["group_id"] == "boshoven-noord"
    assert message["reply_to"] is not None


# --- email ----------------------------------------------------------------------------------


def report_mail(**headers: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = headers.get("From", "bewoner1@example.test")
    msg["To"] = headers.get("To", LIST)
    msg["Subject"] = "Inbraak"
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@example.test>"
    msg.set_content("Er is ingebroken aan de Kerkstraat, de politie is gebeld.")
    return msg


async def test_smtp_receiver_accepts_list_mail_and_refuses_strangers(ingest: Ingest) -> None:
    await aiosmtplib.send(report_mail(), hostname="127.0.0.1", port=ingest.smtp_port)
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
        await aiosmtplib.send(
            report_mail(To="niemand@example.test"), hostname="127.0.0.1", port=ingest.smtp_port
        )
    with pytest.raises(aiosmtplib.SMTPDataError) as refused:
        await aiosmtplib.send(
            b"Subject: no sender\r\n\r\nbody\r\n",
            sender="x@example.test",
            recipients=[LIST],
            hostname="127.0.0.1",
            port=ingest.smtp_port,
        )
    assert refused.value.code == 554 and "no sender" in refused.value.message
    [message] = await ingest.topic("messages.inbound", 1)
    assert message["group_id"] == "boshoven-zuid" and message["subject"] == "Inbraak"
    [kept] = await ingest.topic("ingest.quarantine", 1)
    assert kept["source"] == "email" and "no sender" in kept["reason"]


async def test_imap_reader_picks_up_new_mail_with_idle(ingest: Ingest) -> None:
    imap = IMAP4(ingest.imap.host, ingest.imap.port)
    await imap.wait_hello_from_server()
    await imap.login(ingest.mailbox_user, ingest.imap.password)
    await eventually(lambda: "imap_reading" in ingest.process.log(), what="the reader to connect")
    raw = report_mail(To=ingest.mailbox_user).as_bytes()
    await imap.append(raw, mailbox="INBOX")
    [message] = await ingest.topic("messages.inbound", 1)
    assert message["group_id"] == "leuken-west" and message["provider"]["channel"] == "email"

    async def seen() -> bool:
        await imap.select("INBOX")
        response = await imap.search("SEEN")
        return bool(response.lines[0].split())

    await eventually(seen, what="the mail to be flagged seen")
    await imap.logout()


# --- web --------------------------------------------------------------------------------------


async def test_report_form_is_served_and_accepted(ingest: Ingest) -> None:
    async with httpx.AsyncClient() as client:
        page = await client.get(f"{ingest.url}/report")
        form = {
            "token": "demo-token-buurtpreventie",
            "group": "boshoven-noord",
            "reporter": "+31 6 11111111",
            "text": "Man met koevoet bij de garageboxen, 112 gebeld",
        }
        sent = await client.post(f"{ingest.url}/reports", data=form)
        refused = await client.post(f"{ingest.url}/reports", data={**form, "token": "fout"})
    assert page.status_code == 200 and 'name="text"' in page.text and "112" in page.text
    assert sent.status_code == 200 and "ontvangen" in sent.text
    assert refused.status_code == 401
    [message] = await ingest.topic("messages.inbound", 1)
    assert message["group_id"] == "boshoven-noord" and message["provider"]["channel"] == "web"
    # the access code is kept nowhere: not in the archive, not in quarantine
    [archived] = await ingest.db_find("raw_inputs", {"_id": message["raw_ref"]})
    assert b"token" not in archived["body"] and b"demo-token" not in archived["body"]
    [kept] = await ingest.topic("ingest.quarantine", 1)
    assert "fout" not in kept["body"] and "token" not in kept["body"]


# --- Intake.take and the media lane, without the service process ---------------------------


@dataclass
class Taking:
    intake: Intake
    stores: IngestStores
    settings: Settings

    async def db_find(self, collection: str, query: dict[str, Any]) -> list[dict[str, Any]]:
        client = mongo_client(self.settings)
        try:
            return [d async for d in client[self.settings.database][collection].find(query)]
        finally:
            await client.close()


@pytest.fixture
async def taking(settings: Settings) -> AsyncIterator[Taking]:
    """An Intake on this test's topics and database, its broker and sender started; the demo
    directory stored."""
    client = mongo_client(settings)
    db = Database(client[settings.database], INGEST)
    municipality = load_municipality_config(settings.municipality_file)
    await store_directory(
        Database(client[settings.database], DIRECTORY),
        load_directory(DEMO / "weert" / "directory.yaml").pseudonymised(municipality.pseudonym_key),
    )
    stores = IngestStores(db)
    broker = create_broker(settings, INGEST)
    sender = Sender(settings, INGEST)
    intake = Intake(broker, settings, stores, municipality, sender=sender, status_sender=sender)
    try:
        async with broker:
            await broker.start()
            await sender.start()
            try:
                yield Taking(intake, stores, settings)
            finally:
                await sender.stop()
    finally:
        await client.close()


def parse_whatsapp(body: bytes, resolver: Resolver) -> Batch:
    return whatsapp.parse(body, resolver=resolver, config=None, raw_ref=raw_id(body))


async def test_take_quarantines_input_the_parser_refuses_and_tells_the_lane_why(taking: Taking) -> None:
    body = b'{"object": "instagram", "entry": []}'
    taken = await taking.intake.take("whatsapp", body, parse_whatsapp, content_type="application/json")
    assert isinstance(taken, Refused) and taken.status == 422 and "unknown object" in taken.reason
    [kept] = await read_topic(taking.settings, "ingest.quarantine", 1)
    assert (kept["id"], kept["reason"], kept["source"]) == (taken.quarantine_id, taken.reason, "whatsapp")
    assert kept["body"] == body.decode() and kept["content_type"] == "application/json"
    assert await taking.db_find("raw_inputs", {}) == []  # refused input is not archived


async def test_take_quarantines_input_on_which_a_parser_fails_unexpectedly(taking: Taking) -> None:
    """Attack: an unexpected parser exception was re-read for ever (IMAP) or a 503 (HTTP)."""

    def broken(body: bytes, resolver: Resolver) -> Batch:
        raise RecursionError("maximum recursion depth exceeded")

    taken = await taking.intake.take("email", b"x" * 300_000, broken, content_type="message/rfc822")
    assert isinstance(taken, Refused) and taken.status == 422 and "RecursionError" in taken.reason
    [kept] = await read_topic(taking.settings, "ingest.quarantine", 1)
    assert kept["reason"] == taken.reason and kept["truncated"] and kept["size"] == 300_000
    assert len(kept["body"]) == 256 * 1024  # what goes onto Kafka is bounded


async def test_take_refuses_a_record_larger_than_kafka_takes_with_the_reason(taking: Taking) -> None:
    """Attack: a message over Kafka's limit was retried for ever."""

    def huge(body: bytes, resolver: Resolver) -> Batch:
        batch = parse_whatsapp(body, resolver)
        message = batch.messages[0]
        batch.messages[0] = message.model_copy(update={"subject": "x" * 1_000_000})
        return batch

    body = wa_messages(wa_message(COORDINATOR, "wamid.BIG", text={"body": "Verdachte man bij de school"}))
    taken = await taking.intake.take("whatsapp", body, huge, content_type="application/json")
    assert isinstance(taken, Refused) and taken.status == 413 and "larger than" in taken.reason
    assert await taking.db_find("raw_inputs", {}) == []


async def test_take_accepts_a_message_once_archives_it_and_records_its_ingest_stage(taking: Taking) -> None:
    """The directory resolves the sender; the same input taken again is a duplicate."""
    body = wa_messages(wa_message(COORDINATOR, "wamid.T1", text={"body": "Verdachte man bij de school"}))
    first = await taking.intake.take("whatsapp", body, parse_whatsapp, content_type="application/json")
    again = await taking.intake.take("whatsapp", body, parse_whatsapp, content_type="application/json")
    assert isinstance(first, Accepted) and isinstance(again, Accepted)
    assert (first.outcome.accepted, again.outcome.accepted, again.outcome.duplicates) == (1, 0, 1)
    [message] = first.batch.messages
    assert message.group_id == "boshoven-noord" and message.flags == ()
    assert [m["id"] for m in await read_topic(taking.settings, "messages.inbound", 2, timeout=5)] == [
        message.id
    ]
    [raw] = await taking.db_find("raw_inputs", {"_id": raw_id(body)})
    assert raw["body"] == body and raw["source"] == "whatsapp"
    assert await taking.intake.handled([message.id]) == {message.id}


async def test_take_stores_an_email_attachment_in_the_one_media_shape(taking: Taking) -> None:
    msg = report_mail()
    photo = b"\x89PNG\r\n\x1a\n" + b"0" * 100
    msg.add_attachment(photo, maintype="image", subtype="jpeg", filename="../foto.jpg")
    raw = msg.as_bytes()

    def parse(body: bytes, resolver: Resolver) -> Batch:
        return email.parse(body, resolver=resolver, config=None, raw_ref=raw_id(body), recipients=(LIST,))[0]

    taken = await taking.intake.take("email", raw, parse, content_type="message/rfc822")
    assert isinstance(taken, Accepted) and taken.outcome.accepted == 1
    [message] = taken.batch.messages
    [doc] = await taking.db_find("media", {"_id": message.media[0].storage_ref})
    assert {k: v for k, v in doc.items() if k != "stored_at"} == {
        "_id": message.media[0].storage_ref,
        "message_id": message.id,
        "channel": "email",
        "data": photo,
        "size": len(photo),
        "mime_type": "image/png",
        "declared_type": "image/jpeg",
        "filename": "foto.jpg",
    }


async def test_media_lane_keeps_a_whatsapp_medium_and_records_one_over_the_limit_as_refused(
    taking: Taking, graph: GraphEmulator
) -> None:
    """Stored and refused media have the shape of email attachments; refused ones carry no data."""
    config = taking.intake.municipality.ingest.whatsapp
    assert config is not None
    small, large = b"\xff\xd8\xff\xe0" + b"j" * 100, b"\xff\xd8\xff\xe0" + b"j" * 5000
    graph.add_medium("M-SMALL", small, "image/jpeg")
    graph.add_medium("M-LARGE", large, "image/jpeg")
    async with httpx.AsyncClient() as client:
        lane = MediaFetcher(config.model_copy(update={"media_max_bytes": 1000}), taking.stores, client)
        outcomes = [
            await lane.handle(
                MediaFetch(
                    message_id=f"msg_{name}",
                    municipality="weert-demo",
                    channel="whatsapp",
                    provider_media_id=f"M-{name.upper()}",
                    storage_ref=f"med_{name}",
                    mime_type="image/png",
                )
            )
            for name in ("small", "large")
        ]
    assert outcomes == ["stored", "refused: too large"]
    [stored] = await taking.db_find("media", {"_id": "med_small"})
    [refused] = await taking.db_find("media", {"_id": "med_large"})
    assert (
        stored["data"] == small
        and stored["mime_type"] == "image/jpeg"
        and stored["declared_type"] == "image/png"
    )
    assert "data" not in refused and refused["refused"] == f"{len(large)} bytes; at most 1000"
    assert refused["size"] == len(large) and refused["message_id"] == "msg_large"
    assert set(stored) - {"data"} == set(refused) - {"refused"}

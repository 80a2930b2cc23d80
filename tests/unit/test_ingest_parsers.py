"""The channel parsers of ingest: WhatsApp, Facebook and email into one schema (no I/O);
and the pure parts around ``Intake.take``: what a lane hands it, what a lane answers,
and the one shape of a stored medium."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest
from pydantic import SecretStr

from buurtalert.directory.model import load_directory
from buurtalert.ingest.accept import Accepted, Outcome, Refused
from buurtalert.ingest.lanes.smtp import reply
from buurtalert.ingest.parsers import email, facebook, whatsapp
from buurtalert.ingest.parsers.common import Batch, InvalidInput, Resolver, raw_id, refuse
from buurtalert.ingest.parsers.mediafiles import safe_filename, sniff
from buurtalert.ingest.stores import MediaFile
from buurtalert.shared.models import DeliveryState, Role
from buurtalert.shared.settings import EmailIngest, load_municipality_config
from buurtalert.shared.webhooks import sign, signature_problem
from tests.conftest import DEMO
from tests.meta import (
    PAGE_ID,
    PHONE_NUMBER_ID,
    REGIE_GROUP,
    fb_feed,
    fb_messenger,
    wa_message,
    wa_messages,
    wa_status,
    wa_statuses,
)
from tests.meta import (
    whatsapp as wa_payload,
)

MUNI = load_municipality_config(DEMO / "weert" / "municipality.yaml")
DIRECTORY = load_directory(DEMO / "weert" / "directory.yaml").pseudonymised(MUNI.pseudonym_key)
RESOLVER = Resolver(MUNI, DIRECTORY)
COORDINATOR = "31600000002"  # +31 6 00000002 in the demo directory: boshoven-noord and boshoven-regie
STRANGER = "31699999999"
WA = MUNI.ingest.whatsapp


def parse_wa(body: bytes) -> whatsapp.Batch:
    return whatsapp.parse(body, resolver=RESOLVER, config=WA, raw_ref=raw_id(body))


# --- signatures ---------------------------------------------------------------------------


def test_signature_of_the_raw_body_is_accepted_and_any_change_refused() -> None:
    secret, body = SecretStr("app-secret"), b'{"object":"page"}'
    header = sign(secret, body)
    assert header.startswith("sha256=") and signature_problem(secret, body, header) is None
    assert signature_problem(secret, body + b" ", header) == "X-Hub-Signature-256 does not match the body"
    assert signature_problem(SecretStr("other"), body, header) is not None
    assert signature_problem(secret, body, None) == "missing X-Hub-Signature-256 header"
    assert signature_problem(secret, body, header.removeprefix("sha256=")) is not None


# --- WhatsApp -----------------------------------------------------------------------------


def test_one_to_one_text_from_a_member_belongs_to_their_buurtgroep() -> None:
    body = wa_messages(
        wa_message(COORDINATOR, "wamid.A1", text={"body": "Verdachte man bij de school, 112 gebeld"})
    )
    batch = parse_wa(body)
    [message] = batch.messages
    assert message.group_id == "boshoven-noord"
    assert message.author.role is Role.COORDINATOR and message.flags == ()
    assert message.language is None  # moderation reads it from the text
    assert message.provider.message_id == "wamid.A1" and message.provider.account == PHONE_NUMBER_ID
    assert message.raw_ref == raw_id(body)
    assert COORDINATOR not in message.model_dump_json()  # pseudonymised
    assert batch.contacts[message.author.pseudonym] == ("whatsapp", COORDINATOR)  # for feedback only


def test_groups_api_message_belongs_to_the_group_it_was_posted_in() -> None:
    batch = parse_wa(
        wa_messages(
            wa_message(
                COORDINATOR, "wamid.G1", group_id=REGIE_GROUP, text={"body": "Dader vlucht richting Leuken"}
            )
        )
    )
    assert batch.messages[0].group_id == "boshoven-regie"


def test_unknown_sender_is_kept_and_flagged() -> None:
    [message] = parse_wa(
        wa_messages(wa_message(STRANGER, "wamid.U1", text={"body": "Inbraak aan de Molenstraat"}))
    ).messages
    assert (
        message.group_id is None and "unknown_sender" in message.flags and message.author.role is Role.UNKNOWN
    )


def test_same_provider_message_gets_the_same_id_whatever_the_envelope() -> None:
    one = parse_wa(wa_messages(wa_message(COORDINATOR, "wamid.D1", text={"body": "a"})))
    two = parse_wa(wa_messages(wa_message(COORDINATOR, "wamid.D1", text={"body": "a"}), name="Other name"))
    assert one.messages[0].id == two.messages[0].id and one.raw_ref != two.raw_ref


@pytest.mark.parametrize("kind", ["image", "video", "audio", "document", "sticker"])
def test_media_message_keeps_a_reference_and_asks_for_the_file(kind: str) -> None:
    item = {
        "id": f"MEDIA-{kind}",
        "mime_type": "image/jpeg",
        "sha256": "abc=",
        "caption": "Zwarte scooter zonder kenteken",
    }
    if kind == "document":
        item["filename"] = "../../etc/passwd"
    batch = parse_wa(wa_messages(wa_message(COORDINATOR, f"wamid.M{kind}", kind, **{kind: item})))
    [message] = batch.messages
    [ref] = message.media
    assert ref.kind == kind and ref.provider_media_id == f"MEDIA-{kind}" and ref.storage_ref
    assert message.text == "Zwarte scooter zonder kenteken"
    [fetch] = batch.media
    assert fetch.storage_ref == ref.storage_ref and fetch.message_id == message.id
    if kind == "document":
        assert ref.filename == "passwd"


def test_location_and_contacts_and_unsupported_types() -> None:
    """A location becomes the place; shared contacts and unsupported types are kept and flagged."""
    batch = parse_wa(
        wa_messages(
            wa_message(
                COORDINATOR,
                "wamid.L",
                "location",
                location={"latitude": 51.25, "longitude": 5.7, "name": "Molenplein"},
            ),
            wa_message(
                COORDINATOR,
                "wamid.C",
                "contacts",
                contacts=[{"name": {"formatted_name": "X"}, "phones": [{"phone": "+31 6 1"}]}],
            ),
            wa_message(
                COORDINATOR,
                "wamid.X",
                "unsupported",
                errors=[{"code": 131051, "title": "Message type unknown"}],
            ),
        )
    )
    location, contacts, unsupported = batch.messages
    assert (
        location.location is not None
        and location.location.latitude == 51.25
        and location.text == "Molenplein"
    )
    assert "contacts_shared" in contacts.flags and "+31 6 1" not in contacts.model_dump_json()
    assert "unsupported_type:unsupported" in unsupported.flags and "empty" in unsupported.flags


def test_reaction_is_an_event_not_a_message() -> None:
    batch = parse_wa(
        wa_messages(
            wa_message(COORDINATOR, "wamid.R", "reaction", reaction={"message_id": "wamid.A1", "emoji": "👍"})
        )
    )
    assert batch.messages == []
    [reaction] = batch.reactions
    assert (
        reaction.reacts_to == "wamid.A1" and reaction.emoji == "👍" and reaction.group_id == "boshoven-noord"
    )


def test_statuses_become_provider_statuses_with_the_error() -> None:
    batch = parse_wa(
        wa_statuses(
            wa_status("wamid.OUT1", "sent"),
            wa_status("wamid.OUT1", "delivered"),
            wa_status("wamid.OUT1", "read"),
            wa_status("wamid.OUT2", "failed", error=131056),
        )
    )
    assert [s.state for s in batch.statuses] == [
        DeliveryState.SENT,
        DeliveryState.DELIVERED,
        DeliveryState.READ,
        DeliveryState.FAILED,
    ]
    failed = batch.statuses[3]
    assert failed.error_code == "131056" and "Too many messages" in (failed.error_detail or "")
    assert "31612345678" not in failed.model_dump_json()  # the recipient is pseudonymised
    assert len({s.id for s in batch.statuses}) == 4 and batch.messages == []
    echoed = parse_wa(wa_statuses(wa_status("wamid.OUT3", "delivered", reference="dlv_abc")))
    assert echoed.statuses[0].reference == "dlv_abc"  # our delivery id, echoed by WhatsApp


@pytest.mark.parametrize(
    ("text", "action", "group"),
    [
        ("AANMELDEN bn-4q7x9k2m", "join", "boshoven-noord"),
        ("aanmelden LW-8R3T6V1P", "join", "leuken-west"),
        ("AANMELDEN ONBEKEND", "join", None),
        ("STOP", "leave", None),
        (" afmelden ", "leave", None),
    ],
)
def test_membership_keywords(text: str, action: str, group: str | None) -> None:
    """AANMELDEN <code> asks to join the code's group; STOP and AFMELDEN leave everywhere."""
    batch = parse_wa(wa_messages(wa_message(STRANGER, "wamid.K", text={"body": text})))
    assert batch.messages == []
    [request] = batch.memberships
    assert request.action == action and request.group_id == group and request.address == STRANGER


def test_keyword_in_a_group_is_an_ordinary_message() -> None:
    batch = parse_wa(
        wa_messages(wa_message(COORDINATOR, "wamid.S", group_id=REGIE_GROUP, text={"body": "STOP"}))
    )
    assert batch.memberships == [] and len(batch.messages) == 1


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "not a WhatsApp webhook"),
        (b'{"object": "page", "entry": []}', "unknown object 'page'"),
        (
            json.dumps({"object": "whatsapp_business_account", "entry": [{"id": 1}]}).encode(),
            "not a WhatsApp webhook",
        ),
        (
            json.dumps(
                wa_payload({"messages": [{"from": "1", "id": "x", "timestamp": "soon", "type": "text"}]})
            ).encode(),
            "timestamp",
        ),
        (json.dumps(wa_payload({"messages": [{"id": "x"}]})).encode(), "malformed messages change"),
    ],
)
def test_malformed_whatsapp_input_is_refused_with_the_reason(body: bytes, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason) as caught:
        parse_wa(body)
    assert caught.value.status == 422


def test_other_business_number_is_refused() -> None:
    payload = wa_payload({"messages": []})
    payload["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = "999"
    with pytest.raises(InvalidInput, match="not one of this municipality's numbers"):
        parse_wa(json.dumps(payload).encode())


def test_other_webhook_fields_are_ignored_with_a_reason() -> None:
    batch = parse_wa(
        json.dumps(wa_payload({"event": "APPROVED"}, field="message_template_status_update")).encode()
    )
    assert [i.reason for i in batch.ignored] == ["field message_template_status_update not used"]


# --- Facebook -----------------------------------------------------------------------------


def parse_fb(body: bytes) -> facebook.Batch:
    return facebook.parse(body, resolver=RESOLVER, config=MUNI.ingest.facebook, raw_ref=raw_id(body))


def test_page_post_and_its_comment_are_linked() -> None:
    post = parse_fb(
        fb_feed(
            "status",
            post_id=f"{PAGE_ID}_1",
            message="Fietsendief actief bij station",
            **{"from": {"id": "555", "name": "A"}},
        )
    )
    comment = parse_fb(
        fb_feed(
            "comment",
            post_id=f"{PAGE_ID}_1",
            comment_id="1_2",
            parent_id=f"{PAGE_ID}_1",
            message="Ook bij de Aldi",
            **{"from": {"id": "556", "name": "B"}},
        )
    )
    [p], [c] = post.messages, comment.messages
    assert p.group_id == c.group_id == "boshoven-noord"
    assert c.reply_to == p.id and "unknown_sender" in c.flags


def test_page_own_posts_edits_and_removals_are_not_forwarded() -> None:
    own = parse_fb(fb_feed("status", post_id=f"{PAGE_ID}_9", message="x", **{"from": {"id": PAGE_ID}}))
    edited = parse_fb(
        fb_feed("comment", "edited", post_id="p", comment_id="c", message="y", **{"from": {"id": "5"}})
    )
    assert own.messages == edited.messages == []
    assert {i.reason for i in own.ignored + edited.ignored} == {
        "posted by the Page itself",
        "comment edited: only new posts are forwarded",
    }


def test_messenger_message_reaction_echo_and_delivery() -> None:
    message = parse_fb(
        fb_messenger("7001", message={"mid": "m_1", "text": "Er staat een busje met draaiende motor"})
    )
    reaction = parse_fb(
        fb_messenger("7001", reaction={"mid": "m_0", "action": "react", "emoji": "😮", "reaction": "wow"})
    )
    echo = parse_fb(fb_messenger("7001", message={"mid": "m_2", "text": "Bedankt", "is_echo": True}))
    delivered = parse_fb(fb_messenger("7001", delivery={"mids": ["m_out"], "watermark": 1795436000000}))
    assert message.messages[0].group_id == "boshoven-noord" and "messenger" in message.messages[0].flags
    # the author can be answered by a Messenger reply (a rejection's explanation)
    assert message.contacts[message.messages[0].author.pseudonym] == ("facebook", "7001")
    assert reaction.reactions[0].emoji == "😮" and reaction.messages == []
    assert echo.messages == [] and echo.ignored[0].reason == "echo of a message the Page sent"
    assert (
        delivered.statuses[0].state is DeliveryState.DELIVERED
        and delivered.statuses[0].provider_message_id == "m_out"
    )


def test_malformed_facebook_input_is_refused() -> None:
    with pytest.raises(InvalidInput, match="unknown object 'whatsapp_business_account'"):
        parse_fb(b'{"object": "whatsapp_business_account", "entry": []}')
    with pytest.raises(InvalidInput, match="not a Facebook webhook"):
        parse_fb(b'{"object": "page", "entry": [{"changes": 3}]}')


# --- email --------------------------------------------------------------------------------

LIST = "boshoven-noord@lists.weert-demo.buurtalert.test"


def mail(
    body: str = "Verdachte auto met draaiende motor bij de school. 112 is gebeld.", **headers: str
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = headers.pop("From", "Bewoner <bewoner1@example.test>")
    msg["To"] = headers.pop("To", LIST)
    msg["Subject"] = headers.pop("Subject", "Verdachte auto")
    msg["Message-ID"] = headers.pop("Message_ID", "<abc123@example.test>")
    msg["Date"] = "Sun, 23 Nov 2026 10:00:00 +0100"
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg


def parse_mail(raw: bytes, **kwargs: object) -> tuple[email.Batch, list[email.EmailAttachment]]:
    return email.parse(raw, resolver=RESOLVER, config=MUNI.ingest.email, raw_ref=raw_id(raw), **kwargs)  # type: ignore[arg-type]


def test_email_to_a_list_address_from_a_member() -> None:
    msg = mail(
        Authentication_Results="mx.weert-demo.buurtalert.test; spf=pass smtp.mailfrom=example.test; "
        "dkim=pass header.d=example.test; dmarc=fail"
    )
    batch, attachments = parse_mail(msg.as_bytes())
    [message] = batch.messages
    assert message.group_id == "boshoven-noord" and message.author.role is Role.RESIDENT
    assert message.subject == "Verdachte auto" and message.provider.message_id == "abc123@example.test"
    assert message.authentication == {"spf": "pass", "dkim": "pass", "dmarc": "fail"}
    assert not message.author.verified and "unverified_sender" in message.flags
    assert message.sent_at.isoformat() == "2026-11-23T10:00:00+01:00"
    assert attachments == []


WIJKAGENT_MAIL = "wijkagent@politie.example.test"


def _wijkagent_resolver() -> Resolver:
    """The demo directory with a wijkagent who writes by email."""
    raw = load_directory(DEMO / "weert" / "directory.yaml")
    agent = raw.members[0].model_copy(update={"id": "wijkagent-mail", "address": WIJKAGENT_MAIL})
    extended = raw.model_copy(update={"members": (*raw.members, agent)})
    return Resolver(MUNI, extended.pseudonymised(MUNI.pseudonym_key))


def _mail_as(resolver: Resolver, msg: EmailMessage) -> email.Batch:
    raw = msg.as_bytes()
    return email.parse(raw, resolver=resolver, config=MUNI.ingest.email, raw_ref=raw_id(raw))[0]


def test_a_forged_wijkagent_with_a_self_written_dmarc_pass_stays_a_flagged_resident() -> None:
    """Attack: From: the wijkagent plus the sender's own "Authentication-Results: ... dmarc=pass"."""
    resolver = _wijkagent_resolver()
    forged = mail(
        From=f"Wijkagent <{WIJKAGENT_MAIL}>",
        Authentication_Results="mx.evil.test; spf=pass; dkim=pass; "
        "dmarc=pass header.from=politie.example.test",
    )
    [message] = _mail_as(resolver, forged).messages
    assert message.author.role is Role.RESIDENT and not message.author.verified
    assert "unverified_sender" in message.flags and message.authentication == {}
    # a header naming our server but not the topmost trusted one cannot be smuggled in below ours
    ours_fail = mail(From=WIJKAGENT_MAIL, Authentication_Results="mx.weert-demo.buurtalert.test; dmarc=fail")
    ours_fail["Authentication-Results"] = "mx.weert-demo.buurtalert.test; dmarc=pass"
    [message] = _mail_as(resolver, ours_fail).messages
    assert message.author.role is Role.RESIDENT and message.authentication == {"dmarc": "fail"}


def test_dmarc_pass_from_our_own_server_verifies_the_wijkagent() -> None:
    resolver = _wijkagent_resolver()
    genuine = mail(
        From=WIJKAGENT_MAIL,
        Authentication_Results="mx.weert-demo.buurtalert.test; spf=pass; dkim=pass; "
        "dmarc=pass header.from=politie.example.test",
    )
    [message] = _mail_as(resolver, genuine).messages
    assert message.author.role is Role.WIJKAGENT and message.author.verified
    assert "unverified_sender" not in message.flags
    # a pass for another domain than the From's does not count
    other = mail(
        From=WIJKAGENT_MAIL,
        Authentication_Results="mx.weert-demo.buurtalert.test; dmarc=pass header.from=evil.test",
    )
    [message] = _mail_as(resolver, other).messages
    assert message.author.role is Role.RESIDENT and not message.author.verified


def test_quoted_reply_and_signature_are_removed() -> None:
    body = "Ik zag hem ook, richting Leuken.\n\n-- \nJan\nBuurtpreventie\n"
    assert email.strip_reply(body) == "Ik zag hem ook, richting Leuken."
    quoted = (
        "Klopt, hij is weg.\n\nOp zo 23 nov 2026 om 10:00 schreef Piet <p@example.test>:\n> Verdachte auto\n"
    )
    assert email.strip_reply(quoted) == "Klopt, hij is weg."
    outlook = "Bedankt.\nVan: Piet\nVerzonden: zondag 23 november 2026\nAan: lijst\n\nOude tekst"
    assert email.strip_reply(outlook) == "Bedankt."
    assert email.strip_reply("Kijk uit.\n\nVerzonden vanaf mijn iPhone") == "Kijk uit."
    assert email.strip_reply("Eerste regel\n> geciteerd\nTweede regel") == "Eerste regel\nTweede regel"


def test_html_only_mail_becomes_safe_text() -> None:
    msg = mail()
    msg.set_content(
        "<html><head><style>p{}</style><script>alert(1)</script></head><body><p>Inbraak bij <b>nr 4</b></p>"
        "<blockquote>oud bericht</blockquote></body></html>",
        subtype="html",
    )
    [message] = parse_mail(msg.as_bytes())[0].messages
    assert message.text == "Inbraak bij\nnr 4" and "html_only" in message.flags
    assert "alert" not in message.text and "oud bericht" not in message.text


def test_attachments_get_safe_names_sniffed_types_and_a_size_limit() -> None:
    msg = mail()
    msg.add_attachment(
        b"\x89PNG\r\n\x1a\n" + b"0" * 100, maintype="image", subtype="png", filename="../../etc/passwd"
    )
    msg.add_attachment(b"MZ\x90\x00 evil", maintype="image", subtype="jpeg", filename="foto.jpg")
    msg.add_attachment(b"x" * 2048, maintype="application", subtype="octet-stream", filename="groot.bin")
    config = EmailIngest(attachment_max_bytes=1024)
    raw = msg.as_bytes()
    batch, files = email.parse(raw, resolver=RESOLVER, config=config, raw_ref=raw_id(raw))
    [message] = batch.messages
    assert [f.filename for f in files] == ["passwd", "foto.jpg"]
    assert [f.mime_type for f in files] == ["image/png", "application/x-msdownload"]
    assert (
        "attachment_type_mismatch:foto.jpg" in message.flags
        and "attachment_too_large:groot.bin" in message.flags
    )
    assert [m.storage_ref for m in message.media] == [f.storage_ref for f in files]


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto_Submitted": "auto-replied"},
        {"Subject": "Automatisch antwoord: Verdachte auto"},
        {"Subject": "Out of Office: Verdachte auto"},
        {"Precedence": "bulk"},
        {"X_Autoreply": "yes"},
        {"Message_ID": "<dlv_123@weert-demo.buurtalert.test>"},  # our own delivery, looping back
        {"List_Id": "<weert-demo.buurtalert.test>"},
    ],
)
def test_auto_replies_and_loops_are_recognised_and_not_forwarded(headers: dict[str, str]) -> None:
    batch, _ = parse_mail(mail(**headers).as_bytes())
    assert batch.messages == [] and len(batch.ignored) == 1


def test_bad_charset_and_mime_defects_are_survived() -> None:
    raw = (
        b"From: bewoner1@example.test\r\nTo: "
        + LIST.encode()
        + b"\r\nSubject: test\r\nMessage-ID: <x1@example.test>\r\n"
        b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b'--b\r\nContent-Type: text/plain; charset="x-no-such-charset"\r\n\r\n'
        b"Auto met open kofferbak \xe9\xe9n\r\n"
        # the closing boundary is missing: a MIME defect
    )
    [message] = parse_mail(raw)[0].messages
    assert message.text.startswith("Auto met open kofferbak") and "mime_defects" in message.flags


def test_mail_without_a_sender_or_too_large_is_refused() -> None:
    with pytest.raises(InvalidInput, match="no sender"):
        parse_mail(b"Subject: hi\r\n\r\nbody")
    with pytest.raises(InvalidInput, match="at most") as caught:
        email.parse(
            b"From: a@b.c\r\n\r\n" + b"x" * 200,
            resolver=RESOLVER,
            config=EmailIngest(max_bytes=100),
            raw_ref="r",
        )
    assert caught.value.status == 413


def test_unknown_list_and_unknown_sender_are_flagged() -> None:
    [message] = parse_mail(mail(From="iemand@elders.test", To="nergens@example.test").as_bytes())[0].messages
    assert message.group_id is None and {"unknown_sender", "unknown_group"} <= set(message.flags)


def test_email_attachments_travel_in_the_batch_with_their_message_id_and_declared_type() -> None:
    """What take() stores in ``media`` comes with the batch; the bytes stay out of its JSON."""
    msg = mail()
    msg.add_attachment(
        b"\x89PNG\r\n\x1a\n" + b"0" * 100, maintype="image", subtype="jpeg", filename="foto.jpg"
    )
    batch, files = parse_mail(msg.as_bytes())
    [message], [file] = batch.messages, files
    assert batch.attachments == files
    assert (
        file.message_id == message.id and file.declared_type == "image/jpeg" and file.mime_type == "image/png"
    )
    assert "attachments" not in batch.as_json()


# --- around take(): what a lane hands it, what a lane answers -------------------------------


def test_input_a_lane_could_not_read_is_refused_by_a_parser_with_the_given_status() -> None:
    """A body over the limit goes through take() like any refused input: refuse() is its parser."""
    with pytest.raises(InvalidInput, match="body too large") as caught:
        refuse("body too large", 413)(b"", RESOLVER)
    assert caught.value.status == 413


@pytest.mark.parametrize(
    ("taken", "answer"),
    [
        (Accepted(Batch(raw_ref="raw_1"), Outcome(1, 0, 0, 0, 0, 0)), "250 2.0.0 Accepted"),
        (Accepted(Batch(raw_ref="raw_1"), Outcome(0, 1, 0, 0, 0, 0)), "250 2.0.0 Accepted"),
        (Refused("no sender address in From", 422, "qua_1"), "554 5.6.0 no sender address in From"),
        (
            Refused("message is 200 bytes; at most 100", 413, "qua_2"),
            "552 5.3.4 message is 200 bytes; at most 100",
        ),
    ],
)
def test_smtp_replies_250_to_accepted_mail_552_to_mail_too_large_and_554_to_other_refusals(
    taken: Accepted | Refused, answer: str
) -> None:
    assert reply(taken) == answer


def test_a_stored_and_a_refused_medium_have_one_document_shape() -> None:
    """Email attachments and WhatsApp media alike: ``data`` when stored, ``refused`` when not."""
    at = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    photo = b"\x89PNG\r\n\x1a\n" + b"0" * 100
    stored = MediaFile(
        storage_ref="med_1",
        message_id="msg_1",
        channel="email",
        data=photo,
        mime_type=sniff(photo),
        declared_type="image/jpeg",
        filename="foto.jpg",
    ).document(at)
    refused = MediaFile(
        storage_ref="med_2",
        message_id="msg_2",
        channel="whatsapp",
        data=None,
        mime_type=None,
        declared_type="video/mp4",
        refused="9000000 bytes; at most 1000",
        declared_size=9_000_000,
    ).document(at)
    shared = {"_id", "message_id", "channel", "size", "mime_type", "declared_type", "filename", "stored_at"}
    assert stored.keys() == shared | {"data"} and refused.keys() == shared | {"refused"}
    assert stored["size"] == len(photo) and stored["mime_type"] == "image/png" and stored["stored_at"] == at
    assert refused["size"] == 9_000_000 and refused["filename"] is None


def test_a_medium_has_either_its_data_or_the_reason_it_was_refused() -> None:
    with pytest.raises(ValueError, match="either its data or why it was refused"):
        MediaFile("med_3", "msg_3", "email", data=None, mime_type=None, declared_type=None)
    with pytest.raises(ValueError, match="either its data or why it was refused"):
        MediaFile("med_3", "msg_3", "email", b"x", "text/plain", None, refused="too large")


# --- helpers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Windows\\evil.exe", "evil.exe"),
        (".hidden", "hidden"),
        ("a\x00b<script>.txt", "ab_script_.txt"),
        ("", "attachment"),
        ("x" * 300 + ".pdf", "x" * 96 + ".pdf"),
    ],
)
def test_safe_filename(name: str, safe: str) -> None:
    """An attachment's name loses its path, control characters and leading dots."""
    assert safe_filename(name) == safe


def test_sniff_trusts_bytes_not_names() -> None:
    assert sniff(b"%PDF-1.7") == "application/pdf" and sniff(b"\xff\xd8\xff\xe0") == "image/jpeg"
    assert (
        sniff("héhé".encode()) == "text/plain"
        and sniff(b"\x00\xff\xfe\x00" * 4) == "application/octet-stream"
    )

"""Issue #13: who a sender really is. No feedback nor strikes for a sender the channel
did not verify (anyone can claim an address), and explanations never quote the text."""

from __future__ import annotations

from typing import Any

from buurtalert.channels.handlers import AuthorFeedback
from buurtalert.channels.render import render_feedback
from buurtalert.moderation.handlers import Moderator
from buurtalert.moderation.policy import default_policy
from buurtalert.shared.models import (
    Author,
    Decision,
    Delivery,
    InboundMessage,
    ModeratedMessage,
    ModerationResult,
    ProviderRef,
    Reason,
    SourceChannel,
    utcnow,
)

HATE = "Die vent ziet er buitenlands uit, pak hem aan en sla hem in elkaar"


class FakeAudit:
    def __init__(self) -> None:
        self.entries: list[tuple[str, str, dict[str, Any]]] = []

    async def record(self, message_id: str, stage: str, data: dict[str, Any], *, once: bool = False) -> bool:
        self.entries.append((message_id, stage, data))
        return True


class FakeContacts:
    async def find(self, municipality: str, pseudonym: str) -> tuple[str, str] | None:
        return ("email", "victim@example.test")


class FakeStrikes:
    def __init__(self) -> None:
        self.counted: list[str] = []

    async def record(self, municipality: str, pseudonym: str, message_id: str, *rest: Any) -> int:
        self.counted.append(pseudonym)
        return len(self.counted)


def message(verified: bool, text: str = HATE) -> InboundMessage:
    return InboundMessage(
        id="msg_t",
        provider=ProviderRef(channel=SourceChannel.EMAIL, message_id="x@example.test"),
        municipality="weert-demo",
        group_id="boshoven-noord",
        author=Author(pseudonym="p_claimed", verified=verified),
        text=text,
        sent_at=utcnow(),
        raw_ref="raw_t",
    )


def rejected(verified: bool) -> ModeratedMessage:
    return ModeratedMessage(
        message=message(verified),
        moderation=ModerationResult(
            message_id="msg_t",
            decision=Decision.REJECT,
            reasons=(Reason(code="vigilantism", score=0.9),),
            policy_version="t",
            explanation="Je bericht roept op tot eigenrichting.",
            explanation_en="Your message calls for taking the law into your own hands.",
        ),
    )


async def test_no_feedback_to_an_unverified_sender_and_the_audit_says_why() -> None:
    """Attack: a rejected message 'from' someone else's address made us write to them."""
    sent: list[Delivery] = []

    async def deliver(delivery: Delivery) -> None:
        sent.append(delivery)

    audit = FakeAudit()
    feedback = AuthorFeedback(FakeContacts(), audit, {"email": deliver})  # type: ignore[arg-type]
    await feedback(rejected(verified=False))
    assert sent == []
    assert audit.entries == [("msg_t", "author_feedback", {"sent": False, "why": "sender not verified"})]
    await feedback(rejected(verified=True))
    [answer] = sent
    assert "eigenrichting" in answer.text and "buitenlands" not in answer.text  # never quotes the text


async def test_no_strike_against_an_unverified_sender() -> None:
    """Attack: strikes accrued against whoever was impersonated."""
    published: list[ModeratedMessage] = []

    async def publish(item: ModeratedMessage) -> None:
        published.append(item)

    async def propose(_: object) -> None:
        raise AssertionError("no removal proposal")

    strikes, audit = FakeStrikes(), FakeAudit()
    moderator = Moderator(default_policy("NL"), strikes, audit, publish, propose)  # type: ignore[arg-type]
    await moderator(message(verified=False))
    assert published[-1].moderation.decision is Decision.REJECT
    assert strikes.counted == [] and published[-1].moderation.strikes is None
    assert ("msg_t", "strike", {"counted": False, "why": "sender not verified"}) in audit.entries
    await moderator(message(verified=True))
    assert strikes.counted == ["p_claimed"]


# --- lanes that cannot be stalled or poisoned ---------------------------------------------

import hashlib  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import pytest  # noqa: E402

from buurtalert.directory.model import load_directory  # noqa: E402
from buurtalert.ingest.parsers import email, facebook, whatsapp  # noqa: E402
from buurtalert.ingest.parsers.common import MAX_TEXT_BYTES, InvalidInput, Resolver, raw_id  # noqa: E402
from buurtalert.shared.settings import load_municipality_config  # noqa: E402
from tests.conftest import DEMO  # noqa: E402
from tests.meta import fb_feed, wa_message, wa_messages  # noqa: E402

MUNI = load_municipality_config(DEMO / "weert" / "municipality.yaml")
RESOLVER = Resolver(MUNI, load_directory(DEMO / "weert" / "directory.yaml").pseudonymised(MUNI.pseudonym_key))
MEMBER = "31600000002"
WHO = {"from": {"id": "4001", "name": "Kerry"}}


def test_a_long_mail_is_cut_to_the_text_limit_and_flagged() -> None:
    raw = (
        f"From: bewoner1@example.test\r\nTo: boshoven-noord@lists.weert-demo.buurtalert.test\r\n"
        f"Message-ID: <long@example.test>\r\nSubject: lang\r\n\r\n{'woord ' * 200_000}"
    ).encode()
    started = time.monotonic()
    batch, _ = email.parse(raw, resolver=RESOLVER, config=MUNI.ingest.email, raw_ref=raw_id(raw))
    [message] = batch.messages
    assert len(message.text.encode()) <= MAX_TEXT_BYTES and "text_truncated" in message.flags
    assert time.monotonic() - started < 10.0


def test_a_mail_the_email_package_chokes_on_is_refused_not_raised() -> None:
    """Attack: a deeply nested multipart made the IMAP lane re-read it for ever."""
    nested = b"".join(
        f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n'.encode() for i in range(3000)
    )
    raw = b"From: bewoner1@example.test\r\nMessage-ID: <<<@@>>\r\nMIME-Version: 1.0\r\n" + nested
    try:
        email.parse(raw, resolver=RESOLVER, config=MUNI.ingest.email, raw_ref=raw_id(raw))
    except InvalidInput as exc:
        assert exc.status < 500


def _wa(**fields: object) -> bytes:
    message = wa_message(MEMBER, "wamid.X", text={"body": "Verdachte auto bij de school"})
    message.update(fields)
    return wa_messages(message)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (_wa(id="w" * 5000), "id"),
        (_wa(type="location", location={"latitude": 1000, "longitude": 5}), "latitude"),
        (
            _wa(type="location", location={"latitude": 1, "longitude": 5}).replace(
                b'"latitude": 1,', b'"latitude": 1e999,'
            ),
            "latitude",
        ),
        (_wa(type="interactive", interactive={"button_reply": "not an object"}), "interactive"),
        (_wa(type="interactive", interactive=["a list"]), "interactive"),
        (_wa(timestamp="9" * 400), "timestamp"),
        (_wa(timestamp="99999999999"), "century"),
        (_wa(**{"from": "3" * 500}), "from"),
    ],
)
def test_signed_but_malformed_whatsapp_input_is_a_4xx_with_the_reason(body: bytes, reason: str) -> None:
    """Attack: these were 503s, so Meta retried them for ever."""
    with pytest.raises(InvalidInput, match=reason) as caught:
        whatsapp.parse(body, resolver=RESOLVER, config=MUNI.ingest.whatsapp, raw_ref=raw_id(body))
    assert 400 <= caught.value.status < 500


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            fb_feed("status", post_id="1_2", message="hoi", created_time="2026-11-23T10:00:00", **WHO),
            "time zone",
        ),
        (fb_feed("status", post_id="p" * 5000, message="hoi", **WHO), "post_id"),
        (fb_feed("status", post_id="1_2", message="hoi", created_time=10**400), "created_time"),
        (
            json.dumps({"object": "page", "entry": [{"id": "1", "time": "x" * 20}]}).encode(),
            "time",
        ),
    ],
)
def test_signed_but_malformed_facebook_input_is_a_4xx_with_the_reason(body: bytes, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason) as caught:
        facebook.parse(body, resolver=RESOLVER, config=None, raw_ref=raw_id(body))
    assert 400 <= caught.value.status < 500


# --- scoped clients, hashed tokens, secrets ------------------------------------------------

from urllib.parse import urlencode  # noqa: E402

from pydantic import SecretStr, ValidationError  # noqa: E402

from buurtalert.ingest.lanes.http import TokenBuckets  # noqa: E402
from buurtalert.ingest.parsers import web  # noqa: E402
from buurtalert.shared.settings import (  # noqa: E402
    DemoSecretsInProduction,
    WhatsAppIngest,
    token_sha256,
)

APP, POLICE = "demo-token-buurtpreventie", "demo-token-politie"


def report(**fields: object) -> bytes:
    base: dict[str, object] = {
        "report_id": "r1",
        "group": "boshoven-noord",
        "reporter": "06 12345678",
        "text": "Verdachte auto bij de school",
    }
    return json.dumps({**base, **fields}).encode()


def test_tokens_are_stored_as_hashes_and_the_demo_tokens_still_work() -> None:
    assert all(len(c.token_sha256) == 64 for c in MUNI.api_clients)
    assert APP not in (DEMO / "weert" / "municipality.yaml").read_text().split("#")[0]
    assert web.client_for(APP, MUNI) is not None and web.client_for(POLICE, MUNI) is not None
    assert web.client_for(token_sha256(APP), MUNI) is None  # the hash is not the token
    assert web.client_for("short", MUNI) is None


@pytest.mark.parametrize(
    ("body", "token", "reason"),
    [
        (report(group="kaulille-noord"), APP, "may not post to group"),
        (report(forward_to=["elsewhere"]), POLICE, "may not post to group"),
        (report(target={"districts": ["kaulille"]}), POLICE, "may not alert district"),
        (report(closes="inc_1"), APP, "coordinator or an authority"),
        (report(target={"center": {"latitude": 51.2, "longitude": 5.7}, "radius_m": 500}), APP, "polygon"),
    ],
)
def test_a_client_posts_only_within_its_scope(body: bytes, token: str, reason: str) -> None:
    """Attack: any token could post to any group with any category and close any incident."""
    with pytest.raises(InvalidInput, match=reason) as caught:
        web.parse(body, resolver=RESOLVER, form=False, bearer=token)
    assert caught.value.status == 403


def test_the_police_may_close_and_a_category_list_is_enforced() -> None:
    [message] = web.parse(report(closes="inc_1"), resolver=RESOLVER, form=False, bearer=POLICE).messages
    assert message.closes == "inc_1"
    client = MUNI.api_clients[0].model_copy(update={"categories": ("burglary",)})
    muni = MUNI.model_copy(update={"api_clients": (client,)})
    resolver = Resolver(muni, RESOLVER.directory)
    web.parse(report(category="burglary"), resolver=resolver, form=False, bearer=APP)
    with pytest.raises(InvalidInput, match="category") as caught:
        web.parse(report(category="vigilante"), resolver=resolver, form=False, bearer=APP)
    assert caught.value.status == 403


def test_the_form_keeps_no_access_code_and_its_report_id_is_keyed() -> None:
    """Attack: the access code was archived with the body; the report id an unkeyed hash."""
    fields = {"group": "boshoven-noord", "reporter": "0612345678", "text": "Man met koevoet bij de garages"}
    body = urlencode({**fields, "token": APP}).encode()
    batch = web.parse(body, resolver=RESOLVER, form=True)
    assert web.redacted(body) == urlencode(fields).encode()
    assert batch.raw_ref == raw_id(web.redacted(body))
    [message] = batch.messages
    unkeyed = hashlib.sha256("\x1f".join(fields[k] for k in ("group", "reporter", "text")).encode())
    assert message.provider.message_id != "form-" + unkeyed.hexdigest()[:32]
    other = MUNI.model_copy(update={"pseudonym_key": SecretStr("another-key-of-16-chars")})
    assert web.form_report(body, other.pseudonym_key)[1].report_id != message.provider.message_id


def test_short_meta_secrets_are_refused_and_demo_secrets_not_in_production() -> None:
    with pytest.raises(ValidationError):
        WhatsAppIngest(app_secret=SecretStr(""), verify_token=SecretStr("long-enough-verify-token"))
    with pytest.raises(ValidationError):
        WhatsAppIngest(app_secret=SecretStr("long-enough-app-secret"), verify_token=SecretStr("short"))
    with pytest.raises(DemoSecretsInProduction, match="pseudonym_key"):
        load_municipality_config(DEMO / "weert" / "municipality.yaml", environment="production")
    load_municipality_config(DEMO / "weert" / "municipality.yaml", environment="local")


def test_a_client_is_rate_limited_by_a_token_bucket() -> None:
    now = [0.0]
    buckets = TokenBuckets(clock=lambda: now[0])
    assert all(buckets.allow("app", 3) for _ in range(3))
    assert not buckets.allow("app", 3) and buckets.allow("police", 3)
    now[0] += 20.0  # a third of a minute: one report's worth
    assert buckets.allow("app", 3) and not buckets.allow("app", 3)


# --- pseudonyms ----------------------------------------------------------------------------

import logging  # noqa: E402

from buurtalert.shared.logging import DropQueryStrings  # noqa: E402
from buurtalert.shared.pseudonym import pseudonymise, redact  # noqa: E402
from tests.meta import wa_status, wa_statuses  # noqa: E402


def test_one_person_one_pseudonym_whatever_way_the_number_is_written() -> None:
    """Attack: 06… and 316… gave the same person several pseudonyms."""
    key = SecretStr("k" * 16)
    forms = ["06 12345678", "0612345678", "+31 6 12345678", "31612345678", "0031 6 1234 5678"]
    assert len({pseudonymise(key, f, "NL") for f in forms}) == 1
    belgian = ["0470 12 34 56", "+32 470 12 34 56", "32470123456"]
    assert len({pseudonymise(key, f, "BE") for f in belgian}) == 1
    # a web reporter's 06… is the WhatsApp sender 316…
    body = report(reporter="06 00000002")
    [message] = web.parse(body, resolver=RESOLVER, form=False, bearer=APP).messages
    assert message.author.pseudonym == RESOLVER.pseudonym("31600000002")


def test_provider_errors_and_statuses_carry_no_raw_number() -> None:
    assert redact("Recipient +31 6 12345678 (31612345678) is not on WhatsApp; a@b.test") == (
        "Recipient <number> (<number>) is not on WhatsApp; <address>"
    )
    failed = wa_status("wamid.F", "failed", recipient="31612345678", error=131026)
    failed["errors"][0]["error_data"]["details"] = "Receiver 31612345678 is incapable of receiving"
    [status] = whatsapp.parse(
        wa_statuses(failed), resolver=RESOLVER, config=MUNI.ingest.whatsapp, raw_ref="r"
    ).statuses
    assert "12345678" not in status.model_dump_json()


def test_the_access_log_keeps_no_query_string() -> None:
    """Attack: uvicorn's access log printed hub.verify_token."""
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        "",
        0,
        '%s - "%s %s HTTP/%s" %d',
        ("1.2.3.4:5", "GET", "/webhooks/whatsapp?hub.verify_token=secret&hub.challenge=1", "1.1", 200),
        None,
    )
    DropQueryStrings().filter(record)
    assert "secret" not in record.getMessage() and "/webhooks/whatsapp" in record.getMessage()


# --- membership with consent and order ------------------------------------------------------

from buurtalert.channels.handlers import Deliverer  # noqa: E402
from buurtalert.directory.model import Group, Membership, MembershipState, apply_memberships  # noqa: E402
from buurtalert.shared.models import DeliveryState, DeliveryStatus, Destination  # noqa: E402


def test_join_codes_must_be_random_not_the_group_name() -> None:
    group = {"id": "g", "name": "G", "kind": "buurtgroep", "district": "d", "channel": "whatsapp"}
    with pytest.raises(ValidationError, match="join code"):
        Group.model_validate({**group, "address": "members", "join_code": "CENTRUM-WEST"})
    Group.model_validate({**group, "address": "members", "join_code": "CW-5H2J9N4D"})


def test_a_pending_member_receives_nothing() -> None:
    directory = RESOLVER.directory
    assert directory is not None
    pending = Membership(
        municipality="weert-demo",
        pseudonym="p_new",
        state=MembershipState.PENDING,
        requested=("centrum-west",),
        address="31612345678",
        consent_one_to_one=True,
        changed_at=utcnow(),
    )
    applied = apply_memberships(directory, [pending])
    assert applied.member("p_new") is None
    group = applied.group("centrum-west")
    assert group is not None and all(m.pseudonym != "p_new" for m in applied.recipients(group))


class FakeLedger:
    def __init__(self) -> None:
        self.settled: list[DeliveryStatus] = []

    async def claim(self, delivery: Delivery) -> None:
        return None

    async def settle(self, status: DeliveryStatus) -> None:
        self.settled.append(status)

    async def release(self, delivery: Delivery) -> None:
        return None


class FakeAdapter:
    name = "whatsapp"
    max_text_length = 4096
    supports_media = False

    def __init__(self) -> None:
        self.sent: list[Delivery] = []

    async def send(self, delivery: Delivery, text: str) -> Any:
        self.sent.append(delivery)
        return type("Sent", (), {"provider_message_id": "wamid.OUT"})()


async def test_consent_is_checked_again_just_before_a_member_delivery() -> None:
    """Attack: held deliveries were sent after STOP."""
    stopped = {"p_stopped"}

    async def consents(municipality: str, pseudonym: str) -> bool | None:
        return False if pseudonym in stopped else None

    reports: list[DeliveryStatus] = []

    async def report(status: DeliveryStatus) -> None:
        reports.append(status)

    adapter, ledger = FakeAdapter(), FakeLedger()
    deliver = Deliverer(adapter, ledger, None, None, report, consents)  # type: ignore[arg-type]

    def to(member: str) -> Delivery:
        destination = Destination(
            group_id="centrum-west",
            channel="whatsapp",
            address="31612345678",
            recipient_type="individual",
            recipient=member,
        )
        return Delivery.for_destination(message(verified=True, text="Let op"), destination, ("r",))

    await deliver(to("p_stopped"))
    await deliver(to("p_still_in"))
    assert [d.destination.recipient for d in adapter.sent] == ["p_still_in"]
    refused = next(s for s in reports if s.state is DeliveryState.FAILED)
    assert refused.error_code == "no_consent" and "opted out" in (refused.error_detail or "")


# --- Kafka security ------------------------------------------------------------------------

from faststream.security import SASLScram512  # noqa: E402

from buurtalert.shared.kafka.broker import create_broker, kafka_client_options, kafka_security  # noqa: E402
from buurtalert.shared.settings import Settings  # noqa: E402


def test_kafka_tls_and_sasl_come_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert kafka_security(Settings()) is None
    monkeypatch.setenv("BUURTALERT_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("BUURTALERT_KAFKA_SASL_USERNAME", "ingest")
    monkeypatch.setenv("BUURTALERT_KAFKA_SASL_PASSWORD", "kafka-password-123")
    settings = Settings()
    assert "kafka-password-123" not in repr(settings)
    security = kafka_security(settings)
    assert isinstance(security, SASLScram512) and security.use_ssl and security.ssl_context is not None
    options = kafka_client_options(settings)
    assert options["sasl_mechanism"] == "SCRAM-SHA-512" and options["security_protocol"] == "SASL_SSL"
    create_broker(settings, "ingest")  # the broker takes it
    monkeypatch.delenv("BUURTALERT_KAFKA_SASL_PASSWORD")
    with pytest.raises(ValidationError, match="SASL"):
        Settings()


async def test_a_transient_provider_error_goes_on_without_the_number() -> None:
    from buurtalert.shared.channels import TransientDeliveryError

    class Flaky(FakeAdapter):
        async def send(self, delivery: Delivery, text: str) -> Any:
            raise TransientDeliveryError("rate limit for +31 6 12345678")

    async def report(status: DeliveryStatus) -> None:
        pass

    deliver = Deliverer(Flaky(), FakeLedger(), None, None, report)  # type: ignore[arg-type]
    destination = Destination(group_id="g", channel="whatsapp", address="31612345678")
    with pytest.raises(TransientDeliveryError) as caught:
        await deliver(Delivery.for_destination(message(verified=True, text="x"), destination, ("r",)))
    assert "12345678" not in str(caught.value) and "<number>" in str(caught.value)


def test_feedback_to_an_author_in_a_language_without_lines_is_in_english_once() -> None:
    """Moderation tags a Polish message "pl"; there are no Polish lines, so the author
    reads the English explanation once, not twice; a Dutch author gets both."""
    item = rejected(True)
    english = item.moderation.explanation_en
    polish = item.model_copy(update={"message": item.message.model_copy(update={"language": "pl"})})
    assert render_feedback(polish, english, english).count(english) == 1
    dutch = item.model_copy(update={"message": item.message.model_copy(update={"language": "nl"})})
    both = render_feedback(dutch, item.moderation.explanation, english)
    assert item.moderation.explanation in both and english in both

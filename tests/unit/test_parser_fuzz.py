"""Fuzzing the parsers (issue #13): whatever a provider, a mail server or a client
sends, a parser answers a Batch or InvalidInput (a 4xx with its reason), never
another exception (which a lane would answer with a 5xx and the sender retry for ever)."""

from __future__ import annotations

import json
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from buurtalert.directory.model import load_directory
from buurtalert.ingest.parsers import email, facebook, web, whatsapp
from buurtalert.ingest.parsers.common import Batch, InvalidInput, Resolver, raw_id
from buurtalert.shared.settings import load_municipality_config
from tests.conftest import DEMO
from tests.meta import fb_feed, fb_messenger, wa_message, wa_messages, wa_status, wa_statuses

MUNI = load_municipality_config(DEMO / "weert" / "municipality.yaml")
RESOLVER = Resolver(MUNI, load_directory(DEMO / "weert" / "directory.yaml").pseudonymised(MUNI.pseudonym_key))
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: JSON values of any shape, with the numbers and strings that broke parsers before
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(["", "9" * 400, "1e999", "2026-11-23T10:00:00", "x" * 5000, "31612345678"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)


def mutate(document: Any, draw: st.DrawFn) -> Any:
    """``document`` with one value somewhere replaced by an arbitrary one."""
    if isinstance(document, dict) and document:
        key = draw(st.sampled_from(sorted(document)))
        if draw(st.booleans()):
            return {**document, key: draw(json_values)}
        return {**document, key: mutate(document[key], draw)}
    if isinstance(document, list) and document:
        index = draw(st.integers(min_value=0, max_value=len(document) - 1))
        return [*document[:index], mutate(document[index], draw), *document[index + 1 :]]
    return draw(json_values)


def outcome(parse: Any, body: bytes) -> Batch | InvalidInput:
    try:
        result = parse(body)
    except InvalidInput as exc:
        assert 400 <= exc.status < 500, exc
        return exc
    assert isinstance(result, Batch)
    return result


WA_SEEDS = [
    wa_messages(wa_message("31600000002", "wamid.A", text={"body": "Verdachte man bij de school"})),
    wa_messages(
        wa_message("31600000002", "wamid.L", "location", location={"latitude": 51.2, "longitude": 5.7})
    ),
    wa_messages(
        wa_message("31699999999", "wamid.I", "interactive", interactive={"button_reply": {"title": "Ja"}})
    ),
    wa_messages(wa_message("31699999999", "wamid.M", "image", image={"id": "1", "mime_type": "image/jpeg"})),
    wa_statuses(wa_status("wamid.S", "failed", error=131026)),
]
FB_SEEDS = [
    fb_feed("status", post_id="1_2", message="Inbraak", **{"from": {"id": "4001"}}),
    fb_messenger("4001", message={"mid": "m_1", "text": "Verdachte auto", "reply_to": {"mid": "m_0"}}),
    fb_messenger("4001", reaction={"mid": "m_1", "action": "react", "emoji": "👍"}),
    fb_messenger("4001", delivery={"mids": ["m_1"], "watermark": 1795436000000}),
]


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    seed = json.loads(draw(st.sampled_from(seeds)))
    return json.dumps(mutate(seed, draw)).encode()


@FUZZ
@given(st.one_of(mutated(WA_SEEDS), st.binary(max_size=200)))
def test_whatsapp_parser_answers_a_batch_or_invalid_input(body: bytes) -> None:
    outcome(
        lambda b: whatsapp.parse(b, resolver=RESOLVER, config=MUNI.ingest.whatsapp, raw_ref=raw_id(b)), body
    )


@FUZZ
@given(st.one_of(mutated(FB_SEEDS), st.binary(max_size=200)))
def test_facebook_parser_answers_a_batch_or_invalid_input(body: bytes) -> None:
    outcome(
        lambda b: facebook.parse(b, resolver=RESOLVER, config=MUNI.ingest.facebook, raw_ref=raw_id(b)), body
    )


header_values = st.one_of(
    st.text(max_size=60),
    st.sampled_from(
        ["<<<@@>>", "<>", "=?utf-8?q?=ff?=", "mx.weert-demo.buurtalert.test; dmarc=pass", "\x00"]
    ),
)


@st.composite
def mails(draw: st.DrawFn) -> bytes:
    msg = EmailMessage()
    msg["From"] = draw(st.sampled_from(["bewoner1@example.test", "x", "<@>", "a@b"]))
    msg["To"] = "boshoven-noord@lists.weert-demo.buurtalert.test"
    msg.set_content(draw(st.text(max_size=200)) or "x")
    raw = msg.as_bytes()
    headers = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["Message-ID", "Date", "Subject", "Authentication-Results", "Content-Type"]),
                header_values,
            ),
            max_size=4,
        )
    )
    extra = b"".join(f"{k}: {v}\r\n".encode("utf-8", "replace") for k, v in headers)
    if draw(st.booleans()):  # a multipart nested deep, or cut short
        depth = draw(st.integers(min_value=1, max_value=400))
        extra += b"MIME-Version: 1.0\r\n" + b"".join(
            f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n'.encode() for i in range(depth)
        )
        return extra + raw
    cut = draw(st.integers(min_value=0, max_value=len(raw)))
    return extra + raw[:cut] + draw(st.binary(max_size=40))


@FUZZ
@given(st.one_of(mails(), st.binary(max_size=300)))
def test_email_parser_answers_a_batch_or_invalid_input(raw: bytes) -> None:
    outcome(lambda b: email.parse(b, resolver=RESOLVER, config=MUNI.ingest.email, raw_ref=raw_id(b))[0], raw)


REPORT = {
    "report_id": "r1",
    "group": "boshoven-noord",
    "reporter": "06 12345678",
    "text": "Verdachte auto",
    "location": {"latitude": 51.2, "longitude": 5.7},
    "sent_at": "2026-11-23T10:00:00+01:00",
    "target": {"districts": ["boshoven"], "polygon": [[5.6, 51.2], [5.7, 51.2], [5.7, 51.3]]},
}


@st.composite
def reports(draw: st.DrawFn) -> tuple[bytes, bool]:
    if draw(st.booleans()):
        return json.dumps(mutate(REPORT, draw)).encode(), False
    fields = {
        "group": "boshoven-noord",
        "reporter": "0612345678",
        "text": "Auto",
        "token": "demo-token-politie",
    }
    changed = {
        **fields,
        **draw(
            st.dictionaries(
                st.sampled_from([*fields, "latitude", "longitude"]), st.text(max_size=30), max_size=3
            )
        ),
    }
    return urlencode(changed).encode(), True


@FUZZ
@given(reports())
def test_web_parser_answers_a_batch_or_invalid_input(case: tuple[bytes, bool]) -> None:
    body, form = case
    outcome(lambda b: web.parse(b, resolver=RESOLVER, form=form, bearer="demo-token-politie"), body)

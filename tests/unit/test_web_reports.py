"""Web reports: the token, parsing and normalising (no I/O)."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from pydantic import SecretStr

from buurtalert.ingest.parsers import web
from buurtalert.ingest.parsers.common import InvalidInput, Resolver
from buurtalert.ingest.parsers.web import MAX_BODY_BYTES, normalise, parse_report
from buurtalert.shared.settings import ApiClient, MunicipalityConfig, token_sha256

MUNI = MunicipalityConfig(id="m", name="M", country="NL", pseudonym_key=SecretStr("k" * 16))
TOKEN = "app-token-0123456789"
CLIENT = ApiClient(organisation="app", token_sha256=token_sha256(TOKEN), groups=("g",))
RESOLVER = Resolver(MUNI.model_copy(update={"api_clients": (CLIENT,)}), None)


def _body(**fields: object) -> bytes:
    base: dict[str, object] = {
        "report_id": "r1",
        "group": "g",
        "reporter": "06 12345678",
        "text": "Verdachte auto",
    }
    return json.dumps({**base, **fields}).encode()


def test_report_is_normalised_with_a_pseudonymous_author() -> None:
    """The reporter's phone number never reaches the canonical message."""
    body = _body()
    message = normalise(parse_report(body), municipality=MUNI, client=CLIENT, body=body)
    assert "12345678" not in message.model_dump_json()
    assert message.author.pseudonym.startswith("p_")
    assert message.group_id == "g" and message.municipality == "m"


def test_same_report_id_gives_the_same_message_id() -> None:
    """Posting a report twice (a client retry) is recognisable as the same message."""
    a, b = _body(), _body(text="Verdachte auto!")
    assert (
        normalise(parse_report(a), municipality=MUNI, client=CLIENT, body=a).id
        == normalise(parse_report(b), municipality=MUNI, client=CLIENT, body=b).id
    )


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"{not json", "Invalid JSON"),
        (_body(text=""), "text"),
        (_body(location={"latitude": 200, "longitude": 5}), "location.latitude"),
        (_body(unexpected=1), "unexpected"),
        (b"x" * (MAX_BODY_BYTES + 1), "at most"),
    ],
)
def test_invalid_reports_name_the_problem(body: bytes, needle: str) -> None:
    """Every kind of bad input gets an error that says what is wrong."""
    with pytest.raises(InvalidInput, match=needle):
        parse_report(body)


def test_a_report_with_a_known_token_becomes_a_batch_of_one_message_and_its_reporter() -> None:
    """What the HTTP lane hands to take(): the reporter's number is kept only as a contact."""
    body = _body()
    batch = web.parse(body, resolver=RESOLVER, form=False, bearer=TOKEN)
    [message] = batch.messages
    assert message.provider.account == "app" and batch.raw_ref == message.raw_ref
    assert batch.contacts == {message.author.pseudonym: ("whatsapp", "06 12345678")}


@pytest.mark.parametrize("bearer", ["", "guess"])
def test_a_missing_or_unknown_bearer_token_is_refused_with_401_before_the_report_is_read(bearer: str) -> None:
    with pytest.raises(InvalidInput, match=r"^missing or unknown bearer token$") as caught:
        web.parse(b"{not json", resolver=RESOLVER, form=False, bearer=bearer)
    assert caught.value.status == 401


def test_the_form_carries_its_access_code_and_an_unknown_one_is_refused_with_401() -> None:
    fields = {"group": "g", "reporter": "buur@example.test", "text": "Verdachte auto"}
    batch = web.parse(urlencode({**fields, "token": TOKEN}).encode(), resolver=RESOLVER, form=True)
    [message] = batch.messages
    assert message.group_id == "g" and batch.contacts[message.author.pseudonym][0] == "email"
    with pytest.raises(InvalidInput, match=r"^missing or unknown access code$") as caught:
        web.parse(urlencode({**fields, "token": "fout"}).encode(), resolver=RESOLVER, form=True)
    assert caught.value.status == 401


def test_an_invalid_report_is_refused_as_an_invalid_report_naming_the_problem() -> None:
    with pytest.raises(InvalidInput, match=r"^invalid report: .*text") as caught:
        web.parse(_body(text=""), resolver=RESOLVER, form=False, bearer=TOKEN)
    assert caught.value.status == 422


def test_only_a_client_that_logs_its_reporters_in_verifies_them_and_never_on_the_form() -> None:
    """A verifying client's API reports have verified authors (feedback, strikes); the
    same client's form does not, since anyone with the access code can type any reporter."""
    verifying = CLIENT.model_copy(update={"verifies_reporters": True})
    resolver = Resolver(MUNI.model_copy(update={"api_clients": (verifying,)}), None)
    [api] = web.parse(_body(), resolver=resolver, form=False, bearer=TOKEN).messages
    assert api.author.verified
    fields = {"group": "g", "reporter": "buur@example.test", "text": "Verdachte auto", "token": TOKEN}
    [typed] = web.parse(urlencode(fields).encode(), resolver=resolver, form=True).messages
    assert not typed.author.verified
    [plain] = web.parse(_body(), resolver=RESOLVER, form=False, bearer=TOKEN).messages
    assert not plain.author.verified

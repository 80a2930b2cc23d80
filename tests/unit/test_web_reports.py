"""Web reports: parsing and normalising (no I/O)."""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr

from buurtalert.ingest.parsers.common import InvalidInput
from buurtalert.ingest.parsers.web import MAX_BODY_BYTES, normalise, parse_report
from buurtalert.shared.settings import ApiClient, MunicipalityConfig

MUNI = MunicipalityConfig(id="m", name="M", country="NL", pseudonym_key=SecretStr("k" * 16))
CLIENT = ApiClient(organisation="app", token=SecretStr("t"))


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

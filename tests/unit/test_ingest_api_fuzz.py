"""schemathesis against ingest's HTTP API (docs/ingest-openapi.yaml), in process
through the ASGI app, offline: the real lane and the real ``Intake.take`` (its
refusal path, parser failures, record sizes), with Kafka and the database replaced
by lists. Bounded to a few hundred cases. No answer is a 5xx, and every refused
input is quarantined with its reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from buurtalert.directory.model import load_directory
from buurtalert.ingest.accept import Intake, Outcome
from buurtalert.ingest.lanes.http import routes
from buurtalert.ingest.parsers.common import Batch, Resolver
from buurtalert.shared.settings import load_municipality_config
from buurtalert.shared.webhooks import SIGNATURE_HEADER, sign
from tests.conftest import DEMO

MUNI = load_municipality_config(DEMO / "weert" / "municipality.yaml")
DIRECTORY = load_directory(DEMO / "weert" / "directory.yaml").pseudonymised(MUNI.pseudonym_key)
SCHEMA = Path(__file__).parents[2] / "docs" / "ingest-openapi.yaml"


class OfflineIntake(Intake):
    """The real ``take`` (the Intake's own code), its quarantine and acceptance kept in lists."""

    def __init__(self) -> None:  # no broker, no database
        self.municipality = MUNI
        self.quarantined: list[tuple[str, str, bytes]] = []
        self.accepted: list[Batch] = []

    async def resolver(self) -> Resolver:
        return Resolver(MUNI, DIRECTORY)

    async def quarantine(self, source: str, body: bytes, reason: str, content_type: str | None) -> str:
        assert reason
        self.quarantined.append((source, reason, body))
        return f"qua_{len(self.quarantined)}"

    async def accept(self, batch: Batch, *, source: str, body: bytes, content_type: str | None) -> Outcome:
        self.accepted.append(batch)
        return Outcome(
            len(batch.messages), 0, len(batch.statuses), len(batch.reactions), 0, len(batch.ignored)
        )


def signing(app: ASGIApp) -> ASGIApp:
    """Meta signs every webhook: sign the generated body, so the fuzz reaches the parsers."""

    async def signed(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/webhooks/"):
            await app(scope, receive, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        config = MUNI.ingest.whatsapp if scope["path"].endswith("whatsapp") else MUNI.ingest.facebook
        assert config is not None
        headers = [(k, v) for k, v in scope["headers"] if k.lower() != SIGNATURE_HEADER.lower().encode()]
        headers.append((SIGNATURE_HEADER.lower().encode(), sign(config.app_secret, body).encode()))
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await app({**scope, "headers": headers}, replay, send)

    return signed


INTAKE = OfflineIntake()
APP = signing(routes(INTAKE, MUNI))
schema = schemathesis.openapi.from_path(SCHEMA)
schema.app = APP


@schema.parametrize()
@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_5xx_and_every_refusal_is_quarantined_with_its_reason(case: Any) -> None:
    before = len(INTAKE.quarantined)
    response = case.call()
    assert response.status_code < 500, response.text
    # schemathesis also tries methods we do not serve (405, or the GET handshake's 403)
    refused = 400 <= response.status_code < 500 and response.status_code not in (405, 429)
    if case.method.upper() == "POST" and refused:
        body = response.json()
        assert body["error"] and body["quarantine_id"]
        assert len(INTAKE.quarantined) == before + 1 and INTAKE.quarantined[-1][1] == body["error"]
        # the credential (Authorization) is never kept; what the sender put in the body is
        # the body (the fuzzer also writes the schema's token strings into body fields)
        sent = response.request.body or b""
        sent = sent.encode() if isinstance(sent, str) else sent
        assert b"demo-token" not in INTAKE.quarantined[-1][2] or b"demo-token" in sent

"""The Apprise adapter passes the conformance kit through Apprise's own ``json://``
service, pointed at a receiver served over real HTTP on loopback that demands the
credential in the URL (Basic auth) and answers 200, 503 or 404 (no such channel) as
asked. Apprise only says whether a notification went: the adapter cannot tell the
404 from the outage, so the kit checks that both are transient (retried, then
dead-lettered, never lost); and no Apprise service takes an idempotency key, so a
resend reaches the channel twice."""

from __future__ import annotations

import base64
import contextlib
from typing import Any, ClassVar

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from buurtalert.channels.adapters.apprise import AppriseAdapter, AppriseConfig
from buurtalert.shared.channels import ChannelAdapter
from buurtalert.shared.conformance import AdapterConformance, Behaviour
from tests.support import served

USER, PASSWORD = "wijkteam", "apprise-geheim-wachtwoord"
ANSWERS = {"accept": 200, "transient": 503, "permanent": 404}


def target(port: int) -> str:
    return f"json://{USER}:{PASSWORD}@127.0.0.1:{port}/notify"


CONFIG: dict[str, Any] = {"targets": {"wijkteam": target(8080)}, "timeout": 5}


class Receiver:
    """A chat service's JSON endpoint: checks the credential, keeps what it accepted."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.status = ANSWERS[behaviour]
        self.accepted: list[dict[str, Any]] = []

    async def notify(self, request: Request) -> JSONResponse:
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if request.headers.get("authorization") != expected:
            return JSONResponse({"error": "unauthorised"}, status_code=401)
        if self.status == 200:
            self.accepted.append(await request.json())
        return JSONResponse({}, status_code=self.status)

    @property
    def app(self) -> Starlette:
        return Starlette(routes=[Route("/notify", self.notify, methods=["POST"])])


class TestAppriseConformance(AdapterConformance):
    """The Apprise adapter meets the kit, declaring that it takes no idempotency key and
    cannot tell a refusal from an outage."""

    adapter_class = AppriseAdapter
    valid_config: ClassVar[dict[str, Any]] = CONFIG
    invalid_configs: ClassVar[list[tuple[dict[str, Any], str]]] = [
        ({"targets": {}}, "targets"),
        ({"targets": {"kapot": "nosuchservice://geheim@host"}}, "kapot"),
        ({**CONFIG, "timeout": 0}, "timeout"),
    ]
    address = "wijkteam"  # a destination names a target; the URL stays in the configuration
    sends_idempotency_key = False
    detects_permanent_failures = False
    stand_ins: contextlib.AsyncExitStack

    async def adapter_against(self, behaviour: Behaviour) -> ChannelAdapter[Any]:
        self.receiver = Receiver(behaviour)
        port = await self.stand_ins.enter_async_context(served(self.receiver.app))
        return AppriseAdapter(AppriseConfig.model_validate({**CONFIG, "targets": {"wijkteam": target(port)}}))

    def keys_received(self) -> list[str]:
        return []  # never asked: sends_idempotency_key is False

    def texts_received(self) -> list[str]:
        return [body["message"] for body in self.receiver.accepted]

"""The webhook adapter passes the conformance kit against a partner's receiver served
over real HTTP on loopback: it checks ``X-Hub-Signature-256`` with the shared secret
(401 otherwise), and answers 200, 503 (down for maintenance) or 410 (the hook is
gone) as asked."""

from __future__ import annotations

import contextlib
import json
from typing import Any, ClassVar

from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from buurtalert.channels.adapters.webhook import WebhookAdapter, WebhookConfig
from buurtalert.shared.channels import ChannelAdapter
from buurtalert.shared.conformance import AdapterConformance, Behaviour
from buurtalert.shared.webhooks import SIGNATURE_HEADER, signature_problem
from tests.support import served

SECRET = "webhook-gedeeld-geheim"
CONFIG: dict[str, Any] = {"secret": SECRET, "insecure_hosts": ["127.0.0.1"]}
ANSWERS = {"accept": 200, "transient": 503, "permanent": 410}


class Receiver:
    """A partner's endpoint: checks the signature, keeps what it accepted."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.status = ANSWERS[behaviour]
        self.accepted: list[tuple[str, dict[str, Any]]] = []

    async def hook(self, request: Request) -> JSONResponse:
        body = await request.body()
        problem = signature_problem(SecretStr(SECRET), body, request.headers.get(SIGNATURE_HEADER))
        if problem:
            return JSONResponse({"error": problem}, status_code=401)
        if self.status == 200:
            self.accepted.append((request.headers["idempotency-key"], json.loads(body)))
        return JSONResponse({}, status_code=self.status)

    @property
    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])


class TestWebhookConformance(AdapterConformance):
    """The webhook adapter meets the kit with signed posts to a receiver that checks them."""

    adapter_class = WebhookAdapter
    valid_config: ClassVar[dict[str, Any]] = CONFIG
    invalid_configs: ClassVar[list[tuple[dict[str, Any], str]]] = [
        ({"insecure_hosts": ["127.0.0.1"]}, "secret"),
        ({**CONFIG, "insecure_hosts": "127.0.0.1"}, "insecure_hosts"),
        ({**CONFIG, "timeout": "lang"}, "timeout"),
    ]
    stand_ins: contextlib.AsyncExitStack

    async def adapter_against(self, behaviour: Behaviour) -> ChannelAdapter[Any]:
        self.receiver = Receiver(behaviour)
        port = await self.stand_ins.enter_async_context(served(self.receiver.app))
        self.address = f"http://127.0.0.1:{port}/hook"  # a destination's address is the URL
        return WebhookAdapter(WebhookConfig.model_validate(CONFIG))

    def keys_received(self) -> list[str]:
        """The ``Idempotency-Key`` headers."""
        return [key for key, _ in self.receiver.accepted]

    def texts_received(self) -> list[str]:
        return [body["text"] for _, body in self.receiver.accepted]

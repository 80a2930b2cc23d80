"""The partner's own tests: buurtalert's conformance kit against the adapter, with a
local stand-in of the portal that behaves as each check asks."""

from __future__ import annotations

from typing import Any, ClassVar

import httpx
from buurtalert_example_partner.adapter import MeldingenportaalAdapter, MeldingenportaalConfig
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from buurtalert.shared.channels import ChannelAdapter
from buurtalert.shared.conformance import AdapterConformance, Behaviour, sample_delivery

CONFIG = {"base_url": "https://portaal.weert.test/api/", "token": "portal-token-123"}


class Portal:
    """The portal as its documentation describes it, in miniature."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.keys: list[str] = []
        self.texts: list[str] = []  # the descriptions of the cases it accepted
        self.cases: dict[str, int] = {}

    async def create_case(self, request: Request) -> JSONResponse:
        if request.headers.get("authorization") != f"Bearer {CONFIG['token']}":
            return JSONResponse({"error": "unauthorised"}, status_code=401)
        key = request.headers["idempotency-key"]
        self.keys.append(key)
        if self.behaviour == "transient":
            return JSONResponse({"error": "maintenance"}, status_code=503)
        if self.behaviour == "permanent":
            return JSONResponse({"error": "unknown department"}, status_code=404)
        self.texts.append((await request.json())["description"])
        if key in self.cases:
            return JSONResponse({"case_id": self.cases[key]}, status_code=409)
        self.cases[key] = len(self.cases) + 1
        return JSONResponse({"case_id": self.cases[key]}, status_code=201)

    @property
    def app(self) -> Starlette:
        return Starlette(routes=[Route("/api/cases", self.create_case, methods=["POST"])])


class TestMeldingenportaal(AdapterConformance):
    adapter_class = MeldingenportaalAdapter
    valid_config: ClassVar[dict[str, Any]] = CONFIG
    invalid_configs: ClassVar[list[tuple[dict[str, Any], str]]] = [
        ({"base_url": "not a url", "token": "t"}, "base_url"),
        ({"base_url": "https://portaal.weert.test/"}, "token"),
        ({**CONFIG, "timeout": 0}, "timeout"),
    ]
    address = "openbare-ruimte"

    async def adapter_against(self, behaviour: Behaviour) -> ChannelAdapter[Any]:
        self.portal = Portal(behaviour)
        config = MeldingenportaalConfig.model_validate(CONFIG)
        return MeldingenportaalAdapter(config, transport=httpx.ASGITransport(app=self.portal.app))

    def keys_received(self) -> list[str]:
        return self.portal.keys

    def texts_received(self) -> list[str]:
        return self.portal.texts


async def test_a_repeated_delivery_makes_one_case() -> None:
    """The portal's own idempotency: the second post finds the first case."""
    portal = Portal("accept")
    adapter = MeldingenportaalAdapter(
        MeldingenportaalConfig.model_validate(CONFIG), transport=httpx.ASGITransport(app=portal.app)
    )
    delivery = sample_delivery("meldingenportaal", "openbare-ruimte")
    first = await adapter.send(delivery, delivery.text)
    second = await adapter.send(delivery, delivery.text)
    await adapter.close()
    assert first.provider_message_id == second.provider_message_id == "1" and len(portal.cases) == 1

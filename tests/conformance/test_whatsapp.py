"""The WhatsApp adapter passes the conformance kit against the Graph API emulator,
served over real HTTP: the Cloud API's messages endpoint with its bearer token, an
outage (503, Meta's temporary error 133004) and a recipient WhatsApp cannot reach
(131026)."""

from __future__ import annotations

import contextlib
from typing import Any, ClassVar

from buurtalert.channels.adapters.whatsapp import WhatsAppAdapter, WhatsAppConfig
from buurtalert.devkit.graph_emulator import GraphEmulator
from buurtalert.shared.channels import ChannelAdapter
from buurtalert.shared.conformance import AdapterConformance, Behaviour
from tests.support import served

NUMBER = "106540352242922"
TOKEN = "whatsapp-conformance-token"
# The kit resends a delivery at once (a resend after a crash): no pacing per
# recipient here, in the adapter or the emulator. test_whatsapp_adapter checks pacing.
CONFIG: dict[str, Any] = {"phone_number_id": NUMBER, "access_token": TOKEN, "recipient_interval": 0}


class TestWhatsAppConformance(AdapterConformance):
    """The WhatsApp adapter meets the kit sending to a regiegroep through the Cloud API."""

    adapter_class = WhatsAppAdapter
    valid_config: ClassVar[dict[str, Any]] = CONFIG
    invalid_configs: ClassVar[list[tuple[dict[str, Any], str]]] = [
        ({"access_token": TOKEN}, "phone_number_id"),
        ({"phone_number_id": NUMBER}, "access_token"),
        ({**CONFIG, "messages_per_second": 1001}, "messages_per_second"),
    ]
    address = "120363041234567890"  # a regiegroep's Groups API id
    stand_ins: contextlib.AsyncExitStack

    async def adapter_against(self, behaviour: Behaviour) -> ChannelAdapter[Any]:
        self.graph = GraphEmulator(access_token=TOKEN, pair_interval=0)
        if behaviour == "transient":
            self.graph.outage_calls = 1_000
        elif behaviour == "permanent":
            self.graph.unknown_recipients = {self.address}
        port = await self.stand_ins.enter_async_context(served(self.graph.app))
        self.graph.base_url = f"http://127.0.0.1:{port}"
        config = {**CONFIG, "graph_url": f"{self.graph.base_url}/{self.graph.version}"}
        return WhatsAppAdapter(WhatsAppConfig.model_validate(config))

    def keys_received(self) -> list[str]:
        """``biz_opaque_callback_data``, which WhatsApp echoes in its status webhooks."""
        return [m["biz_opaque_callback_data"] for m in self.graph.sent]

    def texts_received(self) -> list[str]:
        return [m["text"]["body"] for m in self.graph.sent]

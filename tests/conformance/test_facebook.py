"""The Facebook adapter passes the conformance kit against the Graph API emulator,
served over real HTTP, on both of its paths: a Messenger reply to a person (the
delivery id travels as Messenger's ``metadata``) and a post on the Page (the feed
endpoint takes no idempotency key, so a resend is a second post). Failures: an
outage (503, Meta's code 2), a person Messenger does not know (100, subcode 2018001),
a Page the token no longer acts for (100)."""

from __future__ import annotations

import contextlib
from typing import Any, ClassVar

from buurtalert.channels.adapters.facebook import FacebookAdapter, FacebookConfig
from buurtalert.devkit.graph_emulator import GraphEmulator
from buurtalert.shared.channels import ChannelAdapter
from buurtalert.shared.conformance import AdapterConformance, Behaviour
from tests.support import served

PAGE = "102030405060708"
TOKEN = "facebook-page-conformance-token"
CONFIG: dict[str, Any] = {"page_id": PAGE, "page_access_token": TOKEN}


class FacebookConformance(AdapterConformance):
    """What both Facebook paths share: the configuration and the emulator."""

    adapter_class = FacebookAdapter
    valid_config: ClassVar[dict[str, Any]] = CONFIG
    invalid_configs: ClassVar[list[tuple[dict[str, Any], str]]] = [
        ({"page_id": PAGE}, "page_access_token"),
        ({**CONFIG, "message_tag": "MARKETING"}, "message_tag"),
        ({**CONFIG, "calls_per_second": 301}, "calls_per_second"),
    ]
    stand_ins: contextlib.AsyncExitStack

    def refuse(self, graph: GraphEmulator) -> None:
        """Make ``graph`` refuse this class's deliveries for good."""
        raise NotImplementedError

    async def adapter_against(self, behaviour: Behaviour) -> ChannelAdapter[Any]:
        self.graph = GraphEmulator(access_token=TOKEN)
        if behaviour == "transient":
            self.graph.outage_calls = 1_000
        elif behaviour == "permanent":
            self.refuse(self.graph)
        port = await self.stand_ins.enter_async_context(served(self.graph.app))
        self.graph.base_url = f"http://127.0.0.1:{port}"
        config = {**CONFIG, "graph_url": f"{self.graph.base_url}/{self.graph.version}"}
        return FacebookAdapter(FacebookConfig.model_validate(config))


class TestFacebookMessengerConformance(FacebookConformance):
    """The Facebook adapter meets the kit with Messenger replies, the delivery id as metadata."""

    recipient_type = "individual"
    address = "6783412"  # a person's page-scoped id

    def refuse(self, graph: GraphEmulator) -> None:
        graph.unknown_recipients = {self.address}

    def keys_received(self) -> list[str]:
        """Messenger's ``metadata``, which comes back in the Page's webhooks."""
        return [m["message"]["metadata"] for m in self.graph.sent]

    def texts_received(self) -> list[str]:
        return [m["message"]["text"] for m in self.graph.sent]


class TestFacebookPageConformance(FacebookConformance):
    """The Facebook adapter meets the kit with posts on the Page, declaring that the feed
    endpoint takes no idempotency key."""

    recipient_type = "group"
    address = PAGE
    sends_idempotency_key = False  # the feed endpoint has none: a resend posts twice

    def refuse(self, graph: GraphEmulator) -> None:
        graph.page_ids = set()

    def keys_received(self) -> list[str]:
        return []  # never asked: sends_idempotency_key is False

    def texts_received(self) -> list[str]:
        return [p["message"] for p in self.graph.posts]

"""The Apprise adapter posts through Apprise's own ``json://`` service to a local
receiver: what Apprise sends, what a failure becomes, and that URLs stay secret."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from buurtalert.channels.adapters.apprise import AppriseAdapter, AppriseConfig
from buurtalert.shared.channels import PermanentDeliveryError, TransientDeliveryError, load_adapters
from buurtalert.shared.models import Delivery, Destination, stable_id
from tests.support import served


@dataclass
class Receiver:
    port: int = 0
    answer: int = 200
    received: list[tuple[str, dict[str, object]]] = field(default_factory=list)

    async def notify(self, request: Request) -> Response:
        self.received.append((request.headers.get("authorization", ""), await request.json()))
        return Response(status_code=self.answer)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    async with served(Starlette(routes=[Route("/notify", found.notify, methods=["POST"])])) as port:
        found.port = port
        yield found


def delivery(target: str) -> Delivery:
    return Delivery(
        id=stable_id("dlv", "msg_ap", target),
        message_id="msg_ap",
        municipality="weert-demo",
        destination=Destination(group_id="wijkteam", channel="apprise", address=target),
        text="Vermiste man (82) in Leuken, grijze jas.",
        subject="Buurtalert: vermissing",
        rules=("authority_alert_area",),
    )


def adapter_for(receiver: Receiver) -> AppriseAdapter:
    url = f"json://wijkteam:geheim-wachtwoord@127.0.0.1:{receiver.port}/notify"
    return AppriseAdapter(AppriseConfig.model_validate({"targets": {"wijkteam": url}, "timeout": 5}))


async def test_a_delivery_reaches_the_named_target_with_its_title(receiver: Receiver) -> None:
    await adapter_for(receiver).send(delivery("wijkteam"), "Vermiste man (82) in Leuken, grijze jas.")
    [(authorization, body)] = receiver.received
    assert (
        body["title"] == "Buurtalert: vermissing"
        and body["message"] == "Vermiste man (82) in Leuken, grijze jas."
    )
    assert authorization.startswith("Basic ")  # the credential in the URL reached the service


async def test_a_failing_service_is_transient_with_apprise_s_reason(receiver: Receiver) -> None:
    receiver.answer = 503
    with pytest.raises(TransientDeliveryError, match="503") as failed:
        await adapter_for(receiver).send(delivery("wijkteam"), "x")
    assert "geheim-wachtwoord" not in str(failed.value)


async def test_an_unknown_target_is_permanent(receiver: Receiver) -> None:
    with pytest.raises(PermanentDeliveryError, match="no Apprise target"):
        await adapter_for(receiver).send(delivery("elders"), "x")
    assert receiver.received == []


def test_urls_are_checked_on_loading_and_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ValidationError, match="'kapot'") as invalid:
        AppriseConfig.model_validate({"targets": {"kapot": "nosuchservice://geheim@host"}})
    assert "geheim" not in str(invalid.value) and "geheim" not in caplog.text
    adapters = load_adapters({"apprise": {"targets": {"wijkteam": "json://u:geheim@127.0.0.1/x"}}})
    assert isinstance(adapters["apprise"], AppriseAdapter)
    assert "geheim" not in repr(adapters["apprise"].config)

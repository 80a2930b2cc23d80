"""The webhook adapter against a receiver that checks the signature as a partner would."""

from __future__ import annotations

import json

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from buurtalert.channels.adapters.webhook import WebhookAdapter, WebhookConfig
from buurtalert.shared.channels import PermanentDeliveryError, TransientDeliveryError, load_adapters
from buurtalert.shared.models import Delivery, Destination
from buurtalert.shared.webhooks import SIGNATURE_HEADER, signature_problem

SECRET = SecretStr("gedeeld-geheim")


class Receiver:
    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[tuple[dict[str, object], dict[str, str]]] = []

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        if signature_problem(SECRET, body, request.headers.get(SIGNATURE_HEADER)):
            return Response(status_code=401)
        self.received.append((json.loads(body), dict(request.headers)))
        return Response(status_code=self.status)

    def adapter(self, **config: object) -> WebhookAdapter:
        app = Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])
        settings = WebhookConfig.model_validate(
            {"secret": SECRET, "insecure_hosts": ("partner.test",), **config}
        )
        return WebhookAdapter(settings, client=httpx.AsyncClient(transport=httpx.ASGITransport(app=app)))


def delivery(url: str = "http://partner.test/hook") -> Delivery:
    return Delivery(
        id="dlv_1",
        message_id="msg_1",
        municipality="weert-demo",
        destination=Destination(group_id="partner", channel="webhook", address=url),
        text="Let op",
        rules=("municipal_escalation",),
    )


async def test_signed_post_with_idempotency_key() -> None:
    """A delivery is POSTed with an HMAC signature of its body and the delivery id as Idempotency-Key."""
    receiver = Receiver()
    result = await receiver.adapter().send(delivery(), "Let op: losse stoeptegel")
    [(body, headers)] = receiver.received
    assert body["delivery_id"] == "dlv_1" and body["text"] == "Let op: losse stoeptegel"
    assert headers["idempotency-key"] == "dlv_1" and result.provider_message_id == "dlv_1"


async def test_wrong_secret_is_refused_by_the_receiver_and_permanent() -> None:
    """A receiver that cannot verify the signature refuses; the adapter treats that as permanent."""
    receiver = Receiver()
    with pytest.raises(PermanentDeliveryError) as refused:
        await receiver.adapter(secret=SecretStr("fout")).send(delivery(), "x")
    assert refused.value.provider_code == "401" and receiver.received == []


@pytest.mark.parametrize(
    ("status", "error"),
    [(503, TransientDeliveryError), (429, TransientDeliveryError), (404, PermanentDeliveryError)],
)
async def test_answers_map_to_transient_or_permanent(status: int, error: type[Exception]) -> None:
    """408, 425, 429 and 5xx answers are retried; other 4xx answers are final."""
    with pytest.raises(error):
        await Receiver(status).adapter().send(delivery(), "x")


async def test_plain_http_is_refused_except_for_named_hosts() -> None:
    """Only https URLs are accepted, unless the host is named in insecure_hosts."""
    with pytest.raises(PermanentDeliveryError, match="https only"):
        await Receiver().adapter().send(delivery("http://elders.test/hook"), "x")


def test_found_through_its_entry_point_with_the_secret_kept_secret() -> None:
    """The adapter loads through its entry point and its secret never shows in a repr."""
    adapter = load_adapters({"webhook": {"secret": "s3cr3t-value"}})["webhook"]
    assert isinstance(adapter, WebhookAdapter) and "s3cr3t-value" not in repr(adapter.config)

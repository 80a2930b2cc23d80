"""The Facebook adapter, for what Meta still allows since the Groups API went (April
2024): a post on the municipality's Page (a destination of type ``group`` whose
address is the Page id) and a Messenger reply to a person who wrote to the Page (type
``individual``, the address their page-scoped id).

Messenger answers within 24 hours of the person's last message (``RESPONSE``); after
that Meta refuses (code 10, subcode 2018278) unless a message tag applies, and the
adapter resends with the configured tag. The Send API allows about 300 calls per
second per Page; the adapter paces itself under ``calls_per_second``. Rate limits
(4, 17, 32, 613, 80001, 80006) and Meta's temporary failures (1, 2, 5xx) are
transient; the delivery id travels as Messenger's ``metadata``."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr

from buurtalert.channels.adapters.graph import GraphError, GraphSession
from buurtalert.channels.pacing import Throttle
from buurtalert.shared.channels import (
    AdapterConfig,
    ChannelAdapter,
    PermanentDeliveryError,
    SendResult,
    TransientDeliveryError,
)
from buurtalert.shared.models import Delivery

TRANSIENT = {1, 2, 4, 17, 32, 613, 80001, 80006}
OUTSIDE_WINDOW = (10, 2018278)
MESSENGER_TEXT_LIMIT = 2000

MessageTag = Literal["ACCOUNT_UPDATE", "CONFIRMED_EVENT_UPDATE", "POST_PURCHASE_UPDATE", "HUMAN_AGENT"]


class FacebookConfig(AdapterConfig):
    page_id: str = Field(min_length=1, description="The municipality's Page")
    page_access_token: SecretStr
    graph_url: str = "https://graph.facebook.com/v21.0"
    calls_per_second: float = Field(default=250, gt=0, le=300, description="Send API calls per second")
    message_tag: MessageTag | None = Field(
        default=None, description="Messenger tag for replies outside the 24-hour window, if one applies"
    )
    timeout: float = 15.0


class FacebookAdapter(ChannelAdapter[FacebookConfig]):
    name: ClassVar[str] = "facebook"
    config_model: ClassVar[type[AdapterConfig]] = FacebookConfig
    max_text_length: ClassVar[int] = MESSENGER_TEXT_LIMIT  # a Page post takes more; one limit serves both

    def __init__(self, config: FacebookConfig) -> None:
        super().__init__(config)
        self.graph = GraphSession(config.graph_url, config.page_access_token, config.timeout)
        self.throttle = Throttle(config.calls_per_second)

    async def start(self) -> None:
        await self.graph.start()

    async def close(self) -> None:
        await self.graph.close()

    def messenger_reply(
        self, delivery: Delivery, text: str, *, tag: MessageTag | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "recipient": {"id": delivery.destination.address},
            "messaging_type": "MESSAGE_TAG" if tag else "RESPONSE",
            "message": {"text": text, "metadata": delivery.id},
        }
        if tag:
            body["tag"] = tag
        return body

    async def send(self, delivery: Delivery, text: str) -> SendResult:
        destination = delivery.destination
        if destination.recipient_type == "group":
            if destination.address != self.config.page_id:
                raise PermanentDeliveryError(
                    f"the Page {destination.address!r} is not this adapter's", provider_code="100"
                )
            answer = await self._call(f"{self.config.page_id}/feed", {"message": text})
            return SendResult(provider_message_id=answer.get("id"))
        path = f"{self.config.page_id}/messages"
        try:
            answer = await self._call(path, self.messenger_reply(delivery, text))
        except _OutsideWindow as exc:
            if self.config.message_tag is None:
                raise PermanentDeliveryError(str(exc), provider_code="10") from exc
            answer = await self._call(path, self.messenger_reply(delivery, text, tag=self.config.message_tag))
        return SendResult(provider_message_id=answer.get("message_id"))

    async def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        await self.throttle.acquire()
        answer = await self.graph.post(path, json=body)
        if not isinstance(answer, GraphError):
            return answer
        if (answer.code, answer.subcode) == OUTSIDE_WINDOW:
            raise _OutsideWindow(answer.detail, provider_code=answer.provider_code)
        if answer.code in TRANSIENT or answer.status == 429 or answer.status >= 500:
            raise TransientDeliveryError(answer.detail, provider_code=answer.provider_code)
        raise PermanentDeliveryError(answer.detail, provider_code=answer.provider_code)


class _OutsideWindow(PermanentDeliveryError):
    """Messenger refused a reply after the 24-hour window."""

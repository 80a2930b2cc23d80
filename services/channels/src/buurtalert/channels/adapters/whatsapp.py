"""The WhatsApp Cloud API adapter: text to a Groups API group (a regiegroep of up to
8 participants) or to one person, paced to the business number's throughput tier
and one message per recipient per ``recipient_interval``.

Outside the 24-hour customer-service window WhatsApp refuses free text (error
131047); the adapter then sends the approved template named in its configuration,
with the text as its one body parameter. Rate-limit errors (130429, 131056, 131048,
and Graph's 4 and 80007) are transient: the delivery takes the retry path. The
delivery id travels as ``biz_opaque_callback_data``, which WhatsApp echoes in its
status webhooks."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from pydantic import Field, SecretStr

from buurtalert.channels.adapters.graph import GraphError, GraphSession
from buurtalert.channels.pacing import Paced, RecipientPacing, Throttle
from buurtalert.shared.channels import (
    AdapterConfig,
    ChannelAdapter,
    PermanentDeliveryError,
    SendResult,
    TransientDeliveryError,
)
from buurtalert.shared.models import Delivery

RATE_LIMITED = {4, 80007, 130429, 131048, 131056}
OUTSIDE_WINDOW = 131047


def wa_id(phone: str) -> str:
    """A phone number as WhatsApp names its users: the digits with the country code
    (``+31 6 1234 5678`` is ``31612345678``)."""
    digits = re.sub(r"\D", "", phone)
    return digits[2:] if digits.startswith("00") else digits


class WhatsAppConfig(AdapterConfig):
    phone_number_id: str = Field(min_length=1, description="The business number's id in the Cloud API")
    access_token: SecretStr
    graph_url: str = "https://graph.facebook.com/v21.0"
    messages_per_second: float = Field(default=80, gt=0, le=1000, description="The number's throughput tier")
    recipient_interval: float = Field(
        default=6.0, ge=0, description="Seconds between two messages to one user"
    )
    template_name: str | None = Field(
        default=None, description="Approved template for outside the 24-hour window"
    )
    template_language: str = "nl"
    timeout: float = 15.0


class WhatsAppAdapter(ChannelAdapter[WhatsAppConfig]):
    name: ClassVar[str] = "whatsapp"
    config_model: ClassVar[type[AdapterConfig]] = WhatsAppConfig
    max_text_length: ClassVar[int] = 4096
    supports_media: ClassVar[bool] = True
    send_rate: ClassVar[float | None] = 80.0
    recipient_pacing: ClassVar[float | None] = 6.0

    def __init__(self, config: WhatsAppConfig) -> None:
        super().__init__(config)
        self.graph = GraphSession(config.graph_url, config.access_token, config.timeout)
        self.throttle = Throttle(config.messages_per_second)
        self.pacing = RecipientPacing(config.recipient_interval)

    async def start(self) -> None:
        await self.graph.start()

    async def close(self) -> None:
        await self.graph.close()

    def payload(self, delivery: Delivery, text: str, *, template: bool = False) -> dict[str, Any]:
        destination = delivery.destination
        body: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "recipient_type": destination.recipient_type,
            "to": wa_id(destination.address)
            if destination.recipient_type == "individual"
            else destination.address,
            "biz_opaque_callback_data": delivery.id,
        }
        if template and self.config.template_name:
            body |= {
                "type": "template",
                "template": {
                    "name": self.config.template_name,
                    "language": {"code": self.config.template_language},
                    "components": [{"type": "body", "parameters": [{"type": "text", "text": text[:1024]}]}],
                },
            }
        else:
            body |= {"type": "text", "text": {"body": text, "preview_url": False}}
        return body

    async def send(self, delivery: Delivery, text: str) -> SendResult:
        try:
            return await self._post(delivery, self.payload(delivery, text))
        except PermanentDeliveryError as exc:
            if exc.provider_code == str(OUTSIDE_WINDOW) and self.config.template_name:
                # The text was refused, so the recipient's pacing was not used up.
                return await self._post(delivery, self.payload(delivery, text, template=True), pace=False)
            raise

    async def _post(self, delivery: Delivery, body: dict[str, Any], *, pace: bool = True) -> SendResult:
        if pace:
            try:
                await self.pacing.acquire(body["to"])
            except Paced as exc:  # not now: the retry path brings it back after a delay
                raise TransientDeliveryError(str(exc), provider_code="131056") from exc
        await self.throttle.acquire()
        answer = await self.graph.post(f"{self.config.phone_number_id}/messages", json=body)
        if isinstance(answer, GraphError):
            if answer.code in RATE_LIMITED or answer.status == 429 or answer.status >= 500:
                raise TransientDeliveryError(answer.detail, provider_code=answer.provider_code)
            raise PermanentDeliveryError(answer.detail, provider_code=answer.provider_code)
        messages = answer.get("messages") or [{}]
        return SendResult(provider_message_id=messages[0].get("id"))

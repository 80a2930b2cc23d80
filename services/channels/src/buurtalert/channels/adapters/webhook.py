"""The webhook adapter: an HTTP POST of the delivery as JSON to the destination's
URL, signed like Meta signs its webhooks (``X-Hub-Signature-256: sha256=HMAC(secret,
body)``), with the delivery id as ``Idempotency-Key`` so a resend is recognisable.

2xx is delivered; 408, 425, 429 and 5xx are transient (the retry path); any other
answer is permanent. Only ``https://`` URLs are accepted, and ``http://`` only for
the hosts named in ``insecure_hosts`` (loopback in development)."""

from __future__ import annotations

import json
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx
from pydantic import Field, SecretStr

from buurtalert.shared.channels import (
    AdapterConfig,
    ChannelAdapter,
    PermanentDeliveryError,
    SendResult,
    TransientDeliveryError,
)
from buurtalert.shared.models import Delivery
from buurtalert.shared.webhooks import SIGNATURE_HEADER, sign

TRANSIENT_STATUSES = {408, 425, 429}


class WebhookConfig(AdapterConfig):
    secret: SecretStr = Field(description="Shared with the receiver, who checks the signature")
    insecure_hosts: tuple[str, ...] = Field(default=(), description="Hosts allowed over plain http")
    timeout: float = 10.0


class WebhookAdapter(ChannelAdapter[WebhookConfig]):
    name: ClassVar[str] = "webhook"
    config_model: ClassVar[type[AdapterConfig]] = WebhookConfig
    max_text_length: ClassVar[int] = 20_000

    def __init__(self, config: WebhookConfig, *, client: httpx.AsyncClient | None = None) -> None:
        super().__init__(config)
        self._client = client

    async def start(self) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.config.timeout, follow_redirects=False)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    @staticmethod
    def body(delivery: Delivery, text: str) -> bytes:
        document: dict[str, Any] = {
            "delivery_id": delivery.id,
            "message_id": delivery.message_id,
            "municipality": delivery.municipality,
            "group_id": delivery.destination.group_id,
            "text": text,
            "rules": list(delivery.rules),
            "incident_id": delivery.incident_id,
            "created_at": delivery.created_at.isoformat(),
        }
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()

    async def send(self, delivery: Delivery, text: str) -> SendResult:
        url = delivery.destination.address
        parts = urlsplit(url)
        if not (
            parts.scheme == "https"
            or (parts.scheme == "http" and parts.hostname in self.config.insecure_hosts)
        ):
            raise PermanentDeliveryError(f"refusing to post to {parts.scheme}://{parts.hostname}: https only")
        if self._client is None:
            await self.start()
        assert self._client is not None
        body = self.body(delivery, text)
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self.config.secret, body),
            "Idempotency-Key": delivery.id,
            "User-Agent": "buurtalert-webhook/1",
        }
        try:
            response = await self._client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise TransientDeliveryError(f"webhook unreachable: {type(exc).__name__}") from exc
        if 200 <= response.status_code < 300:
            return SendResult(provider_message_id=delivery.id)
        detail = f"webhook answered {response.status_code}"
        if response.status_code in TRANSIENT_STATUSES or response.status_code >= 500:
            raise TransientDeliveryError(detail, provider_code=str(response.status_code))
        raise PermanentDeliveryError(detail, provider_code=str(response.status_code))

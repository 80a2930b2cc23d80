"""Deliveries to a municipality's case system (a "meldingenportaal"): each becomes a
case, created with ``POST {base_url}/cases`` and a bearer token. The portal treats
``Idempotency-Key`` as the case's identity: a repeated key answers 409 with the
existing case, which is a success for us."""

from __future__ import annotations

from typing import ClassVar

import httpx
from pydantic import Field, HttpUrl, SecretStr

from buurtalert.shared.channels import (
    AdapterConfig,
    ChannelAdapter,
    PermanentDeliveryError,
    SendResult,
    TransientDeliveryError,
)
from buurtalert.shared.models import Delivery


class MeldingenportaalConfig(AdapterConfig):
    base_url: HttpUrl
    token: SecretStr
    timeout: float = Field(default=10.0, gt=0, le=60)


class MeldingenportaalAdapter(ChannelAdapter[MeldingenportaalConfig]):
    name: ClassVar[str] = "meldingenportaal"
    config_model: ClassVar[type[AdapterConfig]] = MeldingenportaalConfig
    max_text_length: ClassVar[int] = 8000

    def __init__(
        self, config: MeldingenportaalConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        super().__init__(config)
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        self._client = httpx.AsyncClient(
            base_url=str(self.config.base_url), timeout=self.config.timeout, transport=self._transport
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def send(self, delivery: Delivery, text: str) -> SendResult:
        if self._client is None:
            await self.start()
        assert self._client is not None
        case = {
            "department": delivery.destination.address,
            "description": text,
            "source": "buurtalert",
            "reference": delivery.message_id,
        }
        headers = {
            "Authorization": f"Bearer {self.config.token.get_secret_value()}",
            "Idempotency-Key": delivery.id,
        }
        try:
            response = await self._client.post("cases", json=case, headers=headers)
        except httpx.HTTPError as exc:
            raise TransientDeliveryError(f"portal unreachable: {type(exc).__name__}") from exc
        if response.status_code in (200, 201, 409):
            return SendResult(provider_message_id=str(response.json().get("case_id")))
        if response.status_code in (408, 429) or response.status_code >= 500:
            raise TransientDeliveryError(
                f"portal answered {response.status_code}", provider_code=str(response.status_code)
            )
        raise PermanentDeliveryError(
            f"portal answered {response.status_code}", provider_code=str(response.status_code)
        )

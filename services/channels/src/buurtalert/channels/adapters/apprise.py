"""The Apprise adapter: one adapter for the hundred-odd services Apprise reaches by
URL (Telegram, Signal via signal-cli, Matrix, Microsoft Teams, Slack, ntfy, plain
JSON posts...).

An Apprise URL usually holds a credential (``tgram://<bot-token>/<chat>``), so URLs
live in the adapter's configuration as secrets under a name, and a destination's
address is that name: the directory never holds a token and nothing logs one. Every
URL is checked when the configuration is loaded. Apprise tells success from failure
but not a refusal from an outage, so a failure is transient (the retry path, then
the dead-letter topic with Apprise's warnings); a name that is not configured is
permanent."""

from __future__ import annotations

import logging
from typing import ClassVar

import apprise
from pydantic import Field, SecretStr, field_validator

from buurtalert.shared.channels import (
    AdapterConfig,
    ChannelAdapter,
    PermanentDeliveryError,
    SendResult,
    TransientDeliveryError,
)
from buurtalert.shared.models import Delivery

DEFAULT_TITLE = "Buurtalert"


class AppriseConfig(AdapterConfig):
    targets: dict[str, SecretStr] = Field(
        min_length=1, description="Apprise URLs by name; a destination's address names one"
    )
    timeout: float = Field(default=15.0, gt=0, le=120)

    @field_validator("targets")
    @classmethod
    def _understood(cls, targets: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name, url in targets.items():
            if _understood_quietly(url) is None:
                # The URL itself is a secret: name the target, not the URL.
                raise ValueError(f"target {name!r}: Apprise does not understand this URL")
        return targets


def _understood_quietly(url: SecretStr) -> object | None:
    """Apprise's plugin for ``url``, or None; Apprise logs a URL it cannot parse, secret and all,
    so its logger is silenced meanwhile."""
    logger = logging.getLogger("apprise")
    disabled, logger.disabled = logger.disabled, True
    try:
        return apprise.Apprise.instantiate(url.get_secret_value())
    finally:
        logger.disabled = disabled


class AppriseAdapter(ChannelAdapter[AppriseConfig]):
    name: ClassVar[str] = "apprise"
    config_model: ClassVar[type[AdapterConfig]] = AppriseConfig
    max_text_length: ClassVar[int] = 4000  # within what most services take; Apprise splits the rest

    def __init__(self, config: AppriseConfig) -> None:
        super().__init__(config)
        self._targets: dict[str, apprise.Apprise] = {}
        for name, url in config.targets.items():
            notifier = apprise.Apprise()
            notifier.add(url.get_secret_value())
            self._targets[name] = notifier

    async def send(self, delivery: Delivery, text: str) -> SendResult:
        target = self._targets.get(delivery.destination.address)
        if target is None:
            raise PermanentDeliveryError(f"no Apprise target named {delivery.destination.address!r}")
        result = await target.async_notify(
            body=text,
            title=delivery.subject or DEFAULT_TITLE,
            body_format=apprise.NotifyFormat.TEXT,
            timeout=self.config.timeout,
        )
        if result:
            return SendResult(provider_message_id=None)
        warnings = [entry.message for entry in result.logs() if entry.level in ("WARNING", "ERROR")]
        raise TransientDeliveryError(
            "Apprise could not deliver: " + ("; ".join(warnings)[:500] or result.status.name),
            provider_code=result.status.name,
        )

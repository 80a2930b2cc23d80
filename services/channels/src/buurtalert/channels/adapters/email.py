"""The email adapter: SMTP through aiosmtplib, with threading and list headers; an
authority's photos and documents go along as attachments, under safe names."""

from __future__ import annotations

from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate
from typing import ClassVar

import aiosmtplib
from pydantic import Field, SecretStr

from buurtalert.shared.channels import (
    AdapterConfig,
    Attachment,
    ChannelAdapter,
    PermanentDeliveryError,
    SendResult,
    TransientDeliveryError,
)
from buurtalert.shared.models import Delivery


class EmailConfig(AdapterConfig):
    host: str = "127.0.0.1"
    port: int = Field(default=25, ge=1, le=65535)
    from_address: str
    list_id: str = "buurtalert.local"
    username: str | None = None
    password: SecretStr | None = None
    start_tls: bool = False
    timeout: float = 20.0


class EmailAdapter(ChannelAdapter[EmailConfig]):
    name: ClassVar[str] = "email"
    config_model: ClassVar[type[AdapterConfig]] = EmailConfig
    max_text_length: ClassVar[int] = 20_000
    supports_media: ClassVar[bool] = True

    def message_for(
        self, delivery: Delivery, text: str, attachments: Sequence[Attachment] = ()
    ) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.config.from_address
        msg["To"] = delivery.destination.address
        msg["Subject"] = delivery.subject or (
            f"[buurtalert] Melding voor {delivery.destination.label or delivery.destination.group_id}"
        )
        msg["Date"] = formatdate(localtime=False, usegmt=True)
        # The delivery id is the Message-ID, so a resend is recognisable as the same mail.
        msg["Message-ID"] = f"<{delivery.id}@{self.config.list_id}>"
        msg["References"] = f"<{delivery.message_id}@{self.config.list_id}>"
        msg["List-Id"] = f"<{delivery.destination.group_id}.{self.config.list_id}>"
        msg["Auto-Submitted"] = "auto-generated"
        msg["X-Buurtalert-Delivery"] = delivery.id
        msg.set_content(text)
        for number, attachment in enumerate(attachments, 1):
            maintype, _, subtype = attachment.mime_type.partition("/")
            msg.add_attachment(
                attachment.data,
                maintype=maintype,
                subtype=subtype or "octet-stream",
                filename=attachment.filename or f"bijlage-{number}",  # sanitised by ingest
            )
        return msg

    async def send(self, delivery: Delivery, text: str) -> SendResult:
        return await self._send(self.message_for(delivery, text))

    async def send_with_media(
        self, delivery: Delivery, text: str, attachments: Sequence[Attachment]
    ) -> SendResult:
        return await self._send(self.message_for(delivery, text, attachments))

    async def _send(self, msg: EmailMessage) -> SendResult:
        try:
            await aiosmtplib.send(
                msg,
                hostname=self.config.host,
                port=self.config.port,
                username=self.config.username,
                password=self.config.password.get_secret_value() if self.config.password else None,
                start_tls=self.config.start_tls,
                timeout=self.config.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            # A 4xx at RCPT (greylisting, a full mailbox) is worth retrying; a 5xx is final.
            codes = [refusal.code for refusal in exc.recipients]
            error = PermanentDeliveryError if all(500 <= c < 600 for c in codes) else TransientDeliveryError
            raise error(f"recipient refused: {exc}", provider_code=str(max(codes, default=550))) from exc
        except aiosmtplib.SMTPResponseException as exc:
            error = PermanentDeliveryError if 500 <= exc.code < 600 else TransientDeliveryError
            raise error(f"SMTP {exc.code}: {exc.message}", provider_code=str(exc.code)) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise TransientDeliveryError(f"SMTP unavailable: {exc}") from exc
        return SendResult(provider_message_id=str(msg["Message-ID"]))

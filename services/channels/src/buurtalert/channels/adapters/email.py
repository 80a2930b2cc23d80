"""The email adapter: SMTP through aiosmtplib, with threading and list headers; an
authority's photos and documents go along as attachments, under safe names.

Mail goes to one relay (the municipality's SMTP server), so connections are kept and
reused: a burst of a hundred deliveries does not open a hundred connections, each with
its greeting, EHLO, STARTTLS and login. A connection is used by one send at a time, at
most ``connections`` are open, one idle for longer than ``idle_seconds`` is closed
rather than reused (RFC 5321 lets a server drop a client after 5 idle minutes), and one
that failed in any way is closed, never reused."""

from __future__ import annotations

import asyncio
import socket
import time
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
    #: Open connections to the relay at most (sends beyond that wait for one).
    connections: int = Field(default=8, ge=1, le=64)
    #: A connection idle this long is closed, not reused.
    idle_seconds: float = Field(default=60.0, gt=0, le=290)
    #: The name given in EHLO; by default this machine's name, looked up once.
    helo_hostname: str | None = None


class _Pool:
    """Open SMTP connections to one relay, each lent to one send at a time."""

    def __init__(self, config: EmailConfig) -> None:
        self.config = config
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []
        self._slots = asyncio.Semaphore(config.connections)
        self._helo = config.helo_hostname
        self.opened = 0  # connections opened so far, for tests and metrics

    async def _connect(self) -> aiosmtplib.SMTP:
        if self._helo is None:  # aiosmtplib would look it up again for every connection
            self._helo = await asyncio.to_thread(socket.getfqdn)
        c = self.config
        smtp = aiosmtplib.SMTP(
            hostname=c.host,
            port=c.port,
            username=c.username,
            password=c.password.get_secret_value() if c.password else None,
            start_tls=c.start_tls,
            timeout=c.timeout,
            local_hostname=self._helo,
        )
        await smtp.connect()
        self.opened += 1
        return smtp

    def _reusable(self) -> aiosmtplib.SMTP | None:
        now = time.monotonic()
        while self._idle:
            smtp, since = self._idle.pop()
            if now - since < self.config.idle_seconds and smtp.is_connected:
                return smtp
            smtp.close()
        return None

    async def send(self, msg: EmailMessage) -> None:
        async with self._slots:
            smtp = self._reusable()
            if smtp is not None:
                try:
                    await smtp.send_message(msg)
                except (aiosmtplib.SMTPServerDisconnected, ConnectionError):
                    # The relay dropped a kept connection (a restart, its own idle limit):
                    # once more on a new one. The Message-ID makes a rare repeat recognisable.
                    smtp.close()
                except BaseException:
                    smtp.close()
                    raise
                else:
                    self._idle.append((smtp, time.monotonic()))
                    return
            smtp = await self._connect()
            try:
                await smtp.send_message(msg)
            except BaseException:
                smtp.close()
                raise
            self._idle.append((smtp, time.monotonic()))

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for smtp, _ in idle:
            try:
                await smtp.quit()
            except (aiosmtplib.SMTPException, OSError):
                smtp.close()


class EmailAdapter(ChannelAdapter[EmailConfig]):
    name: ClassVar[str] = "email"
    config_model: ClassVar[type[AdapterConfig]] = EmailConfig
    max_text_length: ClassVar[int] = 20_000
    supports_media: ClassVar[bool] = True

    def __init__(self, config: EmailConfig) -> None:
        super().__init__(config)
        self._pool = _Pool(config)

    async def close(self) -> None:
        await self._pool.close()

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
            await self._pool.send(msg)
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

"""The SMTP lane: a receiver (aiosmtpd) for the groups' list addresses.

Only addresses of groups in the directory are accepted at RCPT; a message is
parsed and accepted while the sender waits, so "250" means it is on Kafka. Bad input
gets a 5xx reply with the reason and goes to quarantine; a failure of ours gets
451, so the sending server tries again later."""

from __future__ import annotations

import asyncio
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from buurtalert.ingest.accept import Accepted, Intake, Refused
from buurtalert.ingest.parsers import email
from buurtalert.ingest.parsers.common import Batch, InvalidInput, Resolver, raw_id
from buurtalert.shared.logging import get_logger
from buurtalert.shared.settings import EmailIngest

log = get_logger(__name__)


def reply(taken: Accepted | Refused) -> str:
    """The SMTP reply to what became of a message."""
    if isinstance(taken, Accepted):
        return "250 2.0.0 Accepted"
    return f"552 5.3.4 {taken.reason}" if taken.status == 413 else f"554 5.6.0 {taken.reason}"


class Receiver:
    """The aiosmtpd handler."""

    def __init__(self, intake: Intake, config: EmailIngest) -> None:
        self.intake = intake
        self.config = config

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        directory = (await self.intake.resolver()).directory
        if directory is None or directory.group_at("email", address) is None:
            return "550 5.1.1 No such list here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        recipients = tuple(envelope.rcpt_tos)

        def parse(body: bytes, resolver: Resolver) -> Batch:
            try:
                batch, _ = email.parse(
                    body, resolver=resolver, config=self.config, raw_ref=raw_id(body), recipients=recipients
                )
            except InvalidInput:
                raise
            except Exception:  # a parser's defect must not make the sender retry for days
                log.exception("email_not_parsed")
                raise InvalidInput("the message could not be parsed") from None
            return batch

        try:
            taken = await self.intake.take("email", raw, parse, content_type="message/rfc822")
        except Exception:
            log.exception("email_not_accepted")
            return "451 4.3.0 Temporarily unavailable, please try again later"
        return reply(taken)


async def start_receiver(intake: Intake, config: EmailIngest) -> asyncio.Server:
    """Serve SMTP on the running event loop (not a thread: the handler publishes to Kafka)."""
    handler: Any = Receiver(intake, config)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, data_size_limit=config.max_bytes, hostname="buurtalert-ingest"),
        host=config.smtp_host,
        port=config.smtp_port,
    )
    log.info("smtp_receiver_started", host=config.smtp_host, port=config.smtp_port)
    return server

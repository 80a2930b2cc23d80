"""A local mailbox for development and tests: an SMTP server (aiosmtpd) that keeps
every message it receives, and a page that lists them. Not for production: it
accepts mail for any address and serves it without authentication on loopback."""

from __future__ import annotations

import html
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class Mailbox:
    """What the SMTP server received, safe to read from another thread."""

    messages: list[EmailMessage] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, message: EmailMessage) -> None:
        with self._lock:
            self.messages.append(message)

    def snapshot(self) -> list[EmailMessage]:
        with self._lock:
            return list(self.messages)


class _Handler:
    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.mailbox.add(parsed)
        return "250 Message accepted for delivery"


class DevMailbox:
    """``with DevMailbox(port=2525) as box:`` runs an SMTP server on 127.0.0.1."""

    def __init__(self, host: str = "127.0.0.1", port: int = 2525) -> None:
        self.mailbox = Mailbox()
        self._controller = Controller(_Handler(self.mailbox), hostname=host, port=port)

    @property
    def port(self) -> int:
        return int(self._controller.port)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> DevMailbox:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def render_page(messages: list[EmailMessage]) -> str:
    rows = []
    for msg in reversed(messages):
        body = msg.get_body(preferencelist=("plain",))
        text = body.get_content() if body is not None else ""
        rows.append(
            "<article><h2>{subject}</h2><p><b>Aan:</b> {to} &middot; <b>Datum:</b> {date}</p>"
            "<pre>{text}</pre></article>".format(
                subject=html.escape(str(msg["Subject"])),
                to=html.escape(str(msg["To"])),
                date=html.escape(str(msg["Date"])),
                text=html.escape(text),
            )
        )
    return (
        "<!doctype html><meta charset=utf-8><meta http-equiv=refresh content=3>"
        "<title>buurtalert dev mailbox</title><h1>Ontvangen berichten ({n})</h1>{rows}".format(
            n=len(messages), rows="".join(rows) or "<p>Nog niets ontvangen.</p>"
        )
    )

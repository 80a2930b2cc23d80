"""A local mailbox for development and tests: an SMTP server (aiosmtpd) that keeps
every message it receives, and a page that lists them. Not for production: it
accepts mail for any address and serves it without authentication on loopback.

For tests of a sender's error handling it can also answer as a real server does
when it will not take a message: with a reply of its choosing at ``RCPT TO`` (``550
5.1.1`` for an unknown recipient) or at the end of ``DATA`` (``451 4.3.0`` when it
is out of resources for now), and it can demand a login (``AUTH PLAIN`` or ``LOGIN``)."""

from __future__ import annotations

import hmac
import html
import re
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

Stage = Literal["RCPT", "DATA"]
REPLY = re.compile(r"[45]\d\d .*")


@dataclass
class Mailbox:
    """What the SMTP server received, safe to read from another thread."""

    messages: list[EmailMessage] = field(default_factory=list)
    #: The client address and port of the connection each message came on, in order.
    peers: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, message: EmailMessage, peer: str = "") -> None:
        with self._lock:
            self.messages.append(message)
            self.peers.append(peer)

    def connections(self) -> int:
        """How many connections the messages came on."""
        with self._lock:
            return len(set(self.peers))

    def snapshot(self) -> list[EmailMessage]:
        with self._lock:
            return list(self.messages)


class _Handler:
    def __init__(self, mailbox: Mailbox, login_required: bool) -> None:
        self.mailbox = mailbox
        self.login_required = login_required
        #: The reply given instead of accepting, per stage (set from the test's thread).
        self.refusals: dict[Stage, str] = {}

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        refusal = self.refusals.get("RCPT")
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)  # what aiosmtpd does without this hook
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.login_required and not session.authenticated:
            return "530 5.7.0 Authentication required"
        refusal = self.refusals.get("DATA")
        if refusal is not None:
            return refusal
        parsed = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.mailbox.add(parsed, peer=str(session.peer))
        return "250 Message accepted for delivery"


class _Authenticator:
    """Accepts one login and password (``AUTH PLAIN`` or ``LOGIN``), offered over plain
    SMTP: the mailbox listens on loopback only."""

    def __init__(self, login: str, password: str) -> None:
        self._login, self._password = login.encode(), password.encode()

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        accepted = (
            isinstance(auth_data, LoginPassword)
            and hmac.compare_digest(auth_data.login, self._login)
            and hmac.compare_digest(auth_data.password, self._password)
        )
        return AuthResult(success=accepted, handled=False)


class DevMailbox:
    """``with DevMailbox(port=2525) as box:`` runs an SMTP server on 127.0.0.1.

    With ``credentials=(login, password)`` it offers ``AUTH`` and takes a message only
    from a client that logged in with them (``530`` otherwise); :meth:`refuse` makes
    it answer with a failure instead of accepting."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 2525, *, credentials: tuple[str, str] | None = None
    ) -> None:
        self.mailbox = Mailbox()
        self._handler = _Handler(self.mailbox, login_required=credentials is not None)
        auth: dict[str, Any] = {}
        if credentials is not None:
            auth = {"authenticator": _Authenticator(*credentials), "auth_require_tls": False}
        self._controller = Controller(self._handler, hostname=host, port=port, **auth)

    def refuse(self, reply: str | None, *, at: Stage = "RCPT") -> None:
        """Answer every recipient (``at="RCPT"``) or every message (``at="DATA"``, after
        its content) with ``reply``, a full SMTP reply such as ``"451 4.3.0 Try again
        later"`` or ``"550 5.1.1 No such user"``, instead of accepting it. ``None``
        accepts at that stage again."""
        if reply is None:
            self._handler.refusals.pop(at, None)
            return
        if not REPLY.fullmatch(reply):
            raise ValueError(f"not an SMTP failure reply (4xx or 5xx and a text): {reply!r}")
        self._handler.refusals[at] = reply

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

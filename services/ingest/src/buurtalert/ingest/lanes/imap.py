"""The IMAP lane: a reader (aioimaplib) of a mailbox's unseen mail, then waits with IDLE.

A message is fetched with BODY.PEEK[] (which leaves it unseen), accepted, and only
then flagged \\Seen: a crash in between means it is read again, and the Message-ID
makes the second reading a duplicate. Lost connections are retried with backoff."""

from __future__ import annotations

import asyncio
import contextlib
import re

from aioimaplib import IMAP4, IMAP4_SSL, AioImapException

from buurtalert.ingest.accept import Intake
from buurtalert.ingest.parsers import email
from buurtalert.ingest.parsers.common import Batch, Resolver, raw_id
from buurtalert.shared.logging import get_logger
from buurtalert.shared.settings import EmailIngest, ImapMailbox

log = get_logger(__name__)
IDLE_SECONDS = 25 * 60  # below the 29 minutes after which servers may drop an IDLE (RFC 2177)
_FETCH_UID = re.compile(rb"UID (\d+)")


class ImapTrouble(Exception):
    pass


class MailboxReader:
    def __init__(
        self,
        intake: Intake,
        config: EmailIngest,
        mailbox: ImapMailbox,
        *,
        idle_seconds: float = IDLE_SECONDS,
    ) -> None:
        self.intake = intake
        self.config = config
        self.mailbox = mailbox
        self.idle_seconds = idle_seconds
        self.name = f"{mailbox.username}@{mailbox.host}:{mailbox.port}/{mailbox.folder}"

    async def run(self) -> None:
        """Read for ever; reconnect with backoff after any failure."""
        backoff = 1.0
        while True:
            try:
                await self._session()
                backoff = 1.0
            except asyncio.CancelledError:
                raise
            except (AioImapException, ImapTrouble, OSError, TimeoutError) as exc:
                log.warning(
                    "imap_reconnecting", mailbox=self.name, error=str(exc) or type(exc).__name__, wait=backoff
                )
            except Exception:
                log.exception("imap_failed", mailbox=self.name)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 60.0)

    async def _session(self) -> None:
        box = self.mailbox
        client = IMAP4_SSL(box.host, box.port) if box.tls else IMAP4(box.host, box.port)
        await client.wait_hello_from_server()
        _ok(await client.login(box.username, box.password.get_secret_value()), "login")
        _ok(await client.select(box.folder), "select")
        log.info("imap_reading", mailbox=self.name)
        try:
            while True:
                await self.read_unseen(client)
                idle = await client.idle_start(timeout=self.idle_seconds)
                await client.wait_server_push(timeout=self.idle_seconds + 5)
                client.idle_done()
                await asyncio.wait_for(idle, 30)
        finally:
            with contextlib.suppress(AioImapException, OSError, TimeoutError, asyncio.CancelledError):
                if client.has_pending_idle():
                    client.idle_done()
                await asyncio.wait_for(client.logout(), 1.0)

    async def read_unseen(self, client: IMAP4) -> int:
        response = await client.uid_search("UNSEEN")
        _ok(response, "search")
        uids = [u for line in response.lines[:1] for u in line.decode().split() if u.isdigit()]
        for uid in uids:
            await self._read(client, uid)
        return len(uids)

    async def _read(self, client: IMAP4, uid: str) -> None:
        response = await client.uid("fetch", uid, "(UID BODY.PEEK[])")
        _ok(response, "fetch")
        raw = next((bytes(line) for line in response.lines if isinstance(line, bytearray)), None)
        if raw is None:
            raise ImapTrouble(f"fetch of uid {uid} returned no message")
        mailbox_group = self.mailbox.group

        def parse(body: bytes, resolver: Resolver) -> Batch:
            batch, _ = email.parse(
                body, resolver=resolver, config=self.config, raw_ref=raw_id(body), mailbox_group=mailbox_group
            )
            return batch

        # accepted or quarantined, the mail is kept: either way it has been read
        await self.intake.take("email", raw, parse, content_type="message/rfc822")
        _ok(await client.uid("store", uid, "+FLAGS", "(\\Seen)"), "store")


def _ok(response: object, what: str) -> None:
    result = getattr(response, "result", None)
    if result != "OK":
        lines = getattr(response, "lines", [])
        raise ImapTrouble(f"IMAP {what} failed: {result} {lines[-1:] if lines else ''}")

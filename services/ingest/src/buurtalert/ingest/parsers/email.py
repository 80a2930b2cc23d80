"""Email, parsed with the standard library's modern policy into a :class:`Batch`:
plain or HTML body as clean text (quoted replies and signatures removed),
attachments with safe names and sniffed types, the receiving server's SPF/DKIM/DMARC
results, and auto-replies, bounces and mail loops recognised and not forwarded."""

from __future__ import annotations

import re
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr, parsedate_to_datetime

from bs4 import BeautifulSoup

from buurtalert.ingest.parsers.common import (
    Batch,
    EmailAttachment,
    Ignored,
    InvalidInput,
    Resolver,
    cap_text,
    message_id,
)
from buurtalert.ingest.parsers.mediafiles import safe_filename, sniff
from buurtalert.shared.models import InboundMessage, MediaRef, ProviderRef, SourceChannel, stable_id, utcnow
from buurtalert.shared.settings import EmailIngest

EMAIL = SourceChannel.EMAIL
DEFAULT_LIMITS = EmailIngest()

_AUTO_SUBJECT = re.compile(
    r"^\s*(automatisch(e)? (antwoord|reply)|automatic reply|auto(matic)?[- ]?reply|out of (the )?office"
    r"|afwezig|niet aanwezig|afwezigheidsbericht|r[ée]ponse automatique|absence|abwesenheit"
    r"|undeliverable|onbestelbaar|delivery status notification|mail delivery failed)\b",
    re.I,
)
_QUOTE_HEADER = re.compile(
    r"^\s*(op .{4,80} (schreef|heeft .{1,60} geschreven)|on .{4,80} wrote|le .{4,80} a [ée]crit"
    r"|am .{4,80} schrieb).{0,80}:\s*$",
    re.I,
)
_FORWARD_MARK = re.compile(
    r"^\s*-{2,}\s*(original message|oorspronkelijk bericht|oorspronkelijk e-mailbericht"
    r"|message d'origine|urspr[üu]ngliche nachricht|forwarded message|doorgestuurd bericht)\s*-{2,}\s*$",
    re.I,
)
_OUTLOOK_HEADER = re.compile(r"^\s*(van|from|de|von)\s*:\s.+$", re.I)
_SIGNOFF = re.compile(
    r"^\s*(verzonden|verstuurd|sent|envoy[ée]|gesendet) (vanaf|from|met|de|von) (mijn|my|mon|meinem) ",
    re.I,
)
_AUTH_RESULT = re.compile(r"\b(spf|dkim|dmarc)\s*=\s*([a-z]+)", re.I)
_HEADER_FROM = re.compile(r"\bdmarc\s*=\s*[a-z]+[^;]*?\bheader\.from\s*=\s*([^\s;]+)", re.I)


def strip_reply(text: str) -> str:
    """The new part of a reply: without the quoted message, forwarded headers and signature."""
    kept: list[str] = []
    lines = text.replace("\r\n", "\n").split("\n")
    for index, line in enumerate(lines):
        if line.rstrip() == "--" or line == "-- ":
            break
        if _QUOTE_HEADER.match(line) or _FORWARD_MARK.match(line) or _SIGNOFF.match(line):
            break
        # Outlook quotes without '>': "Van: ..." followed by "Verzonden:/Sent:" lines
        if _OUTLOOK_HEADER.match(line) and any(
            re.match(r"^\s*(verzonden|sent|date|datum|envoy[ée]|gesendet)\s*:", nxt, re.I)
            for nxt in lines[index + 1 : index + 3]
        ):
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line)
    return "\n".join(kept).strip()


def html_to_text(markup: str) -> str:
    """Visible text of an HTML body: scripts, styles and comments dropped, nothing executed."""
    soup = BeautifulSoup(markup, "html.parser")
    for tag in soup(["script", "style", "head", "title", "template", "noscript"]):
        tag.decompose()
    for quote in soup.find_all("blockquote"):
        quote.decompose()
    text = soup.get_text("\n")
    return re.sub(r"\n\s*\n+", "\n\n", "\n".join(line.strip() for line in text.splitlines())).strip()


def _content(part: Message) -> str:
    """A text part's content, surviving unknown or lying charsets."""
    try:
        content = part.get_content()  # type: ignore[attr-defined]
        return content if isinstance(content, str) else content.decode("utf-8", "replace")
    except (LookupError, UnicodeError, AssertionError):
        payload = part.get_payload(decode=True)
        raw = payload if isinstance(payload, bytes) else b""
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode("cp1252", "replace")


def auto_reply_reason(msg: EmailMessage, own_domains: tuple[str, ...]) -> str | None:
    """Why this mail is not a person writing (RFC 3834 and common practice), if so."""
    auto = str(msg.get("Auto-Submitted", "no")).strip().lower()
    if auto and not auto.startswith("no"):
        return f"Auto-Submitted: {auto}"
    for header in ("X-Autoreply", "X-Autorespond", "X-Auto-Reply"):
        if header in msg:
            return f"{header} header"
    precedence = str(msg.get("Precedence", "")).strip().lower()
    if precedence in ("bulk", "junk", "auto_reply"):
        return f"Precedence: {precedence}"
    if msg.get_content_type() == "multipart/report":
        return "delivery or read report"
    if _AUTO_SUBJECT.match(str(msg.get("Subject", ""))):
        return "subject of an automatic reply"
    domains = tuple(d.lower() for d in own_domains)
    if domains:
        loop = str(msg.get("X-Loop", "")).lower()
        list_id = str(msg.get("List-Id", "")).lower()
        origin = str(msg.get("Message-ID", "")).lower().rsplit("@", 1)[-1].rstrip(">")
        sender = parseaddr(str(msg.get("From", "")))[1].lower().rsplit("@", 1)[-1]
        for seen in (loop, list_id, origin, sender):
            if seen and any(seen == d or seen.endswith("." + d) or d in seen for d in domains):
                return "our own mail, looping back"
    return None


def authentication_results(msg: EmailMessage, trusted: tuple[str, ...]) -> dict[str, str]:
    """SPF, DKIM and DMARC as our own receiving server recorded them: the topmost
    ``Authentication-Results`` header whose authserv-id (RFC 8601: the first token,
    before ``;``) is one of ``trusted``. Every other such header was written by
    someone else, perhaps the sender, and is ignored; with no trusted id, none is read."""
    wanted = {t.strip().lower() for t in trusted if t.strip()}
    for header in msg.get_all("Authentication-Results", []):
        value = str(header)
        authserv = value.split(";", 1)[0].strip().split()
        if not authserv or authserv[0].lower() not in wanted:
            continue
        found: dict[str, str] = {}
        for method, result in _AUTH_RESULT.findall(value):
            found.setdefault(method.lower(), result.lower())
        if from_domain := _HEADER_FROM.search(value):
            found["header.from"] = from_domain.group(1).lower()
        return found
    return {}


def dmarc_pass(results: dict[str, str], sender: str) -> bool:
    """Whether a trusted server said ``dmarc=pass`` for the domain of ``sender``."""
    domain = sender.rsplit("@", 1)[-1].lower()
    return results.get("dmarc") == "pass" and results.get("header.from", domain) == domain


def _body_text(msg: EmailMessage) -> tuple[str, bool]:
    """The body as text, and whether it came from HTML."""
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        return "", False
    text = _content(part)
    if part.get_content_type() == "text/html":
        return html_to_text(text), True
    return text, False


def parse(
    raw: bytes,
    *,
    resolver: Resolver,
    config: EmailIngest | None,
    raw_ref: str,
    recipients: tuple[str, ...] = (),
    mailbox_group: str | None = None,
) -> tuple[Batch, list[EmailAttachment]]:
    """One email, and its attachments (also in ``batch.attachments``). ``recipients``
    are the envelope's (SMTP); without them the To, Cc and Delivered-To headers say
    which list it was for. Raises :class:`InvalidInput`, also for a mail the standard
    library cannot take apart (a multipart nested a thousand deep, a header it chokes on)."""
    try:
        return _parse(
            raw,
            resolver=resolver,
            config=config,
            raw_ref=raw_ref,
            recipients=recipients,
            mailbox_group=mailbox_group,
        )
    except InvalidInput:
        raise
    except RecursionError:
        raise InvalidInput("the message is nested too deeply to read") from None
    except Exception as exc:  # the email package raises many kinds for malformed mail
        raise InvalidInput(f"the message could not be read ({type(exc).__name__})") from None


def _parse(
    raw: bytes,
    *,
    resolver: Resolver,
    config: EmailIngest | None,
    raw_ref: str,
    recipients: tuple[str, ...],
    mailbox_group: str | None,
) -> tuple[Batch, list[EmailAttachment]]:
    limits = config or DEFAULT_LIMITS
    if len(raw) > limits.max_bytes:
        raise InvalidInput(f"message is {len(raw)} bytes; at most {limits.max_bytes} are accepted", 413)
    if not raw.strip():
        raise InvalidInput("empty message")
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    try:
        sender = parseaddr(str(msg.get("From", "")))[1]
    except (ValueError, IndexError):
        sender = ""
    if "@" not in sender:
        raise InvalidInput("no sender address in From")
    batch = Batch(raw_ref=raw_ref)
    provider_id = str(msg.get("Message-ID", "")).strip().strip("<>") or "sha256:" + raw_ref.removeprefix(
        "raw_"
    )
    if reason := auto_reply_reason(msg, limits.own_domains):
        batch.ignored.append(Ignored(provider_id, reason))
        return batch, []

    candidates = list(recipients) or [
        a for _, a in getaddresses([str(v) for h in ("Delivered-To", "To", "Cc") for v in msg.get_all(h, [])])
    ]
    place: str | None = None
    directory = resolver.directory
    if mailbox_group is None and directory is not None:
        place = next((a for a in candidates if directory.group_at("email", a) is not None), None)
    authentication = authentication_results(msg, limits.trusted_authserv_ids)
    who = resolver.resolve(
        sender,
        channel="email",
        place=place or (candidates[0] if candidates else ""),
        verified=dmarc_pass(authentication, sender),
    )
    group_id = mailbox_group or (who.group.id if who.group else None)
    flags = [f for f in who.flags if not (mailbox_group and f == "unknown_group")]

    text, from_html = _body_text(msg)
    text = strip_reply(text)
    if from_html:
        flags.append("html_only")
    if any(p.defects for p in msg.walk()):
        flags.append("mime_defects")

    msg_id = message_id(EMAIL, None, provider_id)
    attachments: list[EmailAttachment] = []
    media: list[MediaRef] = []
    for part in msg.iter_attachments():
        name = safe_filename(str(part.get_filename() or ""))
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        if len(data) > limits.attachment_max_bytes:
            flags.append(f"attachment_too_large:{name}")
            continue
        mime = sniff(data)
        ref = stable_id("med", "email", provider_id, name, str(len(attachments)))
        if mime != part.get_content_type() and not (
            mime == "text/plain" and part.get_content_maintype() == "text"
        ):
            flags.append(f"attachment_type_mismatch:{name}")
        attachments.append(EmailAttachment(ref, data, mime, name, part.get_content_type(), msg_id))
        media.append(
            MediaRef(kind="attachment", mime_type=mime, storage_ref=ref, filename=name, size=len(data))
        )
    if not text and not media:
        flags.append("empty")

    try:
        sent_at = parsedate_to_datetime(str(msg["Date"])) if msg["Date"] else utcnow()
        if sent_at.tzinfo is None:
            raise ValueError
    except (TypeError, ValueError):
        sent_at = utcnow()
        flags.append("bad_date")
    in_reply_to = str(msg.get("In-Reply-To", "")).strip().strip("<>")
    subject = str(msg.get("Subject", "")).strip() or None
    batch.contacts[who.author.pseudonym] = ("email", sender)
    text = cap_text(text, flags)
    batch.messages.append(
        InboundMessage(
            id=msg_id,
            provider=ProviderRef(channel=EMAIL, message_id=provider_id[:256], account=place),
            municipality=resolver.municipality.id,
            group_id=group_id,
            author=who.author,
            text=text,
            media=tuple(media),
            subject=subject,
            reply_to=message_id(EMAIL, None, in_reply_to) if in_reply_to else None,
            flags=tuple(flags),
            authentication=authentication,
            sent_at=sent_at,
            raw_ref=raw_ref,
        )
    )
    batch.attachments = attachments
    return batch, attachments

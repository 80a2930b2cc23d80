"""WhatsApp Cloud API webhooks (messages, statuses, reactions, Groups API), parsed
into a :class:`Batch`. Free of I/O; the signature is checked before this runs."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from buurtalert.ingest.parsers.common import (
    Address,
    Batch,
    Id,
    Ignored,
    InvalidInput,
    MembershipRequest,
    Resolver,
    UnixTime,
    cap_text,
    from_unix,
    invalid_as,
    message_id,
    parse_json,
    problems,
)
from buurtalert.ingest.parsers.mediafiles import safe_filename
from buurtalert.ingest.parsers.polls import from_choice
from buurtalert.shared.models import (
    DeliveryState,
    InboundMessage,
    Location,
    MediaFetch,
    MediaRef,
    ProviderRef,
    ProviderStatus,
    Reaction,
    SourceChannel,
    stable_id,
)
from buurtalert.shared.polls import is_poll_choice
from buurtalert.shared.pseudonym import redact
from buurtalert.shared.settings import WhatsAppIngest

MAX_BODY_BYTES = 3 * 1024 * 1024  # Meta's own upper bound for a webhook payload
MEDIA_TYPES = ("image", "video", "audio", "document", "sticker")
JOIN = re.compile(r"^\s*(?:aanmelden|aanmelding|inschrijven|join)\s+([A-Za-z0-9-]{3,32})\s*$", re.I)
LEAVE = re.compile(r"^\s*(?:stop|afmelden|uitschrijven|unsubscribe)\s*$", re.I)
STATES = {s.value: s for s in DeliveryState}


class _Loose(BaseModel):
    """Meta adds fields over time: unknown ones are ignored, known ones are type-checked."""

    model_config = ConfigDict(extra="ignore")


class _Metadata(_Loose):
    display_phone_number: str = Field(default="", max_length=64)
    phone_number_id: Address


class _Media(_Loose):
    id: Id
    mime_type: str | None = Field(default=None, max_length=256)
    sha256: str | None = Field(default=None, max_length=128)
    caption: str | None = None
    filename: str | None = Field(default=None, max_length=1024)


class _Text(_Loose):
    body: str


class _Location(_Loose):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    name: str | None = Field(default=None, max_length=1024)
    address: str | None = Field(default=None, max_length=1024)


class _Reaction(_Loose):
    message_id: Id
    emoji: str = Field(default="", max_length=64)


class _Context(_Loose):
    id: Id | None = None


class _Button(_Loose):
    text: str = Field(default="", max_length=1024)


class _Reply(_Loose):
    id: str = Field(default="", max_length=256)
    title: str = Field(default="", max_length=1024)


class _Interactive(_Loose):
    button_reply: _Reply | None = None
    list_reply: _Reply | None = None


class _Message(_Loose):
    id: Id
    sender: str = Field(alias="from", min_length=1, max_length=64)
    timestamp: UnixTime
    type: str = Field(max_length=64)
    group_id: Id | None = None
    text: _Text | None = None
    image: _Media | None = None
    video: _Media | None = None
    audio: _Media | None = None
    document: _Media | None = None
    sticker: _Media | None = None
    location: _Location | None = None
    reaction: _Reaction | None = None
    button: _Button | None = None
    interactive: _Interactive | None = None
    context: _Context | None = None


class _StatusError(_Loose):
    code: int = Field(ge=-(2**31), le=2**31)
    title: str = Field(default="", max_length=1024)
    message: str = Field(default="", max_length=1024)
    error_data: dict[str, Any] | None = None


class _Status(_Loose):
    id: Id
    status: str = Field(max_length=64)
    timestamp: UnixTime
    recipient_id: str = Field(default="", max_length=256)
    recipient_type: str | None = Field(default=None, max_length=64)
    biz_opaque_callback_data: str | None = Field(default=None, max_length=512)
    errors: list[_StatusError] = []


class _Value(_Loose):
    messaging_product: str = "whatsapp"
    metadata: _Metadata
    messages: list[_Message] = []
    statuses: list[_Status] = []


class _Change(_Loose):
    field: str = Field(max_length=64)
    value: dict[str, Any]


class _Entry(_Loose):
    id: Address
    changes: list[_Change]


class _Payload(_Loose):
    object: str = Field(max_length=64)
    entry: list[_Entry]


def parse(body: bytes, *, resolver: Resolver, config: WhatsAppIngest | None, raw_ref: str) -> Batch:
    """Every message, status and reaction of one webhook call; raises :class:`InvalidInput`."""
    payload = parse_json(body, _Payload, what="not a WhatsApp webhook: ", max_bytes=MAX_BODY_BYTES)
    if payload.object != "whatsapp_business_account":
        raise InvalidInput(f"unknown object {payload.object!r}; expected 'whatsapp_business_account'")
    batch = Batch(raw_ref=raw_ref)
    for entry in payload.entry:
        for change in entry.changes:
            if change.field != "messages":
                batch.ignored.append(Ignored(f"{entry.id}:{change.field}", f"field {change.field} not used"))
                continue
            try:
                value = _Value.model_validate(change.value)
            except ValidationError as exc:
                raise InvalidInput(f"malformed messages change: {problems(exc, 5)}") from None
            account = value.metadata.phone_number_id
            if config and config.phone_number_ids and account not in config.phone_number_ids:
                raise InvalidInput(f"phone_number_id {account} is not one of this municipality's numbers")
            for status in value.statuses:
                with invalid_as(f"status {status.id[:64]}: "):
                    _status(batch, status, account, resolver)
            for message in value.messages:
                with invalid_as(f"message {message.id[:64]}: "):
                    _message(batch, message, account, resolver)
    return batch


def _status(batch: Batch, status: _Status, account: str, resolver: Resolver) -> None:
    state = STATES.get(status.status)
    if state is None:
        batch.ignored.append(Ignored(status.id, f"status {status.status!r} not tracked"))
        return
    error = status.errors[0] if status.errors else None
    detail = None
    if error is not None:
        details = (error.error_data or {}).get("details")
        detail = " ".join(p for p in (error.title, str(details) if details else error.message) if p) or None
    group = status.recipient_type == "group"
    batch.statuses.append(
        ProviderStatus(
            id=stable_id("pst", account, status.id, status.status, status.timestamp),
            channel=SourceChannel.WHATSAPP,
            account=account,
            provider_message_id=status.id,
            reference=status.biz_opaque_callback_data,
            state=state,
            recipient=status.recipient_id if group else resolver.pseudonym(status.recipient_id),
            error_code=str(error.code) if error else None,
            error_detail=redact(detail) if detail else None,
            at=from_unix(status.timestamp),
        )
    )


def _message(batch: Batch, message: _Message, account: str, resolver: Resolver) -> None:
    sender = resolver.resolve(message.sender, channel="whatsapp", place=message.group_id)
    sent_at = from_unix(message.timestamp)
    provider = ProviderRef(channel=SourceChannel.WHATSAPP, message_id=message.id, account=account)
    if message.type == "reaction" and message.reaction is not None:
        batch.reactions.append(
            Reaction(
                id=stable_id("rea", account, message.id),
                provider=provider,
                municipality=resolver.municipality.id,
                group_id=sender.group.id if sender.group else None,
                author=sender.author,
                reacts_to=message.reaction.message_id,
                emoji=message.reaction.emoji,
                sent_at=sent_at,
            )
        )
        return
    reply = message.interactive and (message.interactive.button_reply or message.interactive.list_reply)
    if message.type == "interactive" and reply and is_poll_choice(reply.id):
        # an answer to a poll: counted by the review service, never a message to the groups
        from_choice(batch, reply.id, message.sender, message.id, sent_at, resolver)
        return
    text = message.text.body if message.text else ""
    if (
        message.group_id is None
        and message.type == "text"
        and _membership(batch, message, text, sent_at, resolver)
    ):
        return
    msg_id = message_id(SourceChannel.WHATSAPP, account, message.id)
    flags = list(sender.flags)
    media: list[MediaRef] = []
    location = None
    if message.type in MEDIA_TYPES and (item := getattr(message, message.type)) is not None:
        ref = MediaRef(
            kind=message.type,
            mime_type=item.mime_type,
            sha256=item.sha256,
            provider_media_id=item.id,
            storage_ref=stable_id("med", "whatsapp", item.id),
            caption=item.caption,
            filename=safe_filename(item.filename) if item.filename else None,
        )
        media.append(ref)
        text = item.caption or ""
        batch.media.append(
            MediaFetch(
                message_id=msg_id,
                municipality=resolver.municipality.id,
                channel=SourceChannel.WHATSAPP,
                provider_media_id=item.id,
                storage_ref=ref.storage_ref or "",
                mime_type=item.mime_type,
                sha256=item.sha256,
            )
        )
    elif message.type == "location" and message.location is not None:
        loc = message.location
        description = ", ".join(p for p in (loc.name, loc.address) if p) or None
        location = Location(latitude=loc.latitude, longitude=loc.longitude, description=description)
        text = description or ""
    elif message.type == "button" and message.button:
        text = message.button.text
    elif message.type == "interactive" and message.interactive:
        text = reply.title if reply else ""
    elif message.type == "contacts":
        flags.append("contacts_shared")  # third parties' numbers: kept in the raw archive only
    elif message.type != "text":
        flags.append(f"unsupported_type:{message.type}")
    if not text.strip() and not media and location is None:
        flags.append("empty")
    batch.contacts[sender.author.pseudonym] = ("whatsapp", message.sender)
    text = cap_text(text, flags)
    batch.messages.append(
        InboundMessage(
            id=msg_id,
            provider=provider,
            municipality=resolver.municipality.id,
            group_id=sender.group.id if sender.group else None,
            author=sender.author,
            text=text,
            media=tuple(media),
            location=location,
            reply_to=(
                message_id(SourceChannel.WHATSAPP, account, message.context.id)
                if message.context and message.context.id
                else None
            ),
            flags=tuple(flags),
            sent_at=sent_at,
            raw_ref=batch.raw_ref,
        )
    )


def _membership(batch: Batch, message: _Message, text: str, sent_at: datetime, resolver: Resolver) -> bool:
    """A one-to-one AANMELDEN <code> or STOP: a membership request, not a report."""
    action: Literal["join", "leave"]
    if join := JOIN.match(text):
        action, code = "join", join.group(1)
    elif LEAVE.match(text):
        action, code = "leave", None
    else:
        return False
    group = resolver.directory.group_by_code(code) if code and resolver.directory else None
    batch.memberships.append(
        MembershipRequest(
            action=action,
            pseudonym=resolver.pseudonym(message.sender),
            address=message.sender,
            provider_message_id=message.id,
            at=sent_at,
            code=code,
            group_id=group.id if group else None,
        )
    )
    return True

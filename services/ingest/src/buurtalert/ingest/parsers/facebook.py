"""Facebook webhooks: a Page's ``feed`` (posts and comments, a comment linked to its
post) and Messenger (``messaging``), parsed into a :class:`Batch`. Free of I/O."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from buurtalert.ingest.parsers.common import (
    LATEST,
    Address,
    Batch,
    Id,
    Ignored,
    InvalidInput,
    Resolver,
    aware,
    cap_text,
    from_unix,
    invalid_as,
    message_id,
    parse_json,
    problems,
)
from buurtalert.shared.models import (
    DeliveryState,
    InboundMessage,
    MediaRef,
    ProviderRef,
    ProviderStatus,
    Reaction,
    SourceChannel,
    stable_id,
)
from buurtalert.shared.settings import FacebookIngest

MAX_BODY_BYTES = 3 * 1024 * 1024
FB = SourceChannel.FACEBOOK
POST_ITEMS = ("status", "post", "photo", "video", "share")


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Who(_Loose):
    id: Address
    name: str | None = Field(default=None, max_length=256)


class _Feed(_Loose):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    item: str = Field(max_length=64)
    verb: str = Field(max_length=64)
    post_id: Id | None = None
    comment_id: Id | None = None
    parent_id: Id | None = None
    message: str | None = None
    sender: _Who | None = Field(default=None, alias="from")
    created_time: Annotated[int, Field(ge=0, le=LATEST)] | Annotated[str, Field(max_length=40)] | None = None
    reaction_type: str | None = Field(default=None, max_length=64)
    link: str | None = Field(default=None, max_length=2048)
    photo_id: Id | None = None


class _Change(_Loose):
    field: str = Field(max_length=64)
    value: dict[str, Any]


class _Attachment(_Loose):
    type: str = Field(max_length=64)
    payload: dict[str, Any] | None = None


class _ReplyTo(_Loose):
    mid: Id | None = None


class _Message(_Loose):
    mid: Id
    text: str | None = None
    is_echo: bool = False
    attachments: list[_Attachment] = Field(default=[], max_length=100)
    reply_to: _ReplyTo | None = None


class _ReactionEvent(_Loose):
    mid: Id
    action: str = Field(default="react", max_length=64)
    emoji: str | None = Field(default=None, max_length=64)
    reaction: str | None = Field(default=None, max_length=64)


class _Delivery(_Loose):
    mids: list[Id] = Field(default=[], max_length=1000)
    watermark: int = Field(ge=0, le=LATEST * 1000)


class _Messaging(_Loose):
    sender: _Who
    recipient: _Who
    timestamp: int = Field(ge=0, le=LATEST * 1000, description="Milliseconds")
    message: _Message | None = None
    reaction: _ReactionEvent | None = None
    delivery: _Delivery | None = None
    read: dict[str, Any] | None = None


class _Entry(_Loose):
    id: Address
    time: int | None = Field(default=None, ge=0, le=LATEST * 1000)
    changes: list[_Change] = []
    messaging: list[_Messaging] = []


class _Payload(_Loose):
    object: str = Field(max_length=64)
    entry: list[_Entry]


def _when(value: int | float | str | None, fallback: int | None) -> datetime:
    if isinstance(value, str) and not value.replace(".", "").isdigit():
        try:
            moment = datetime.fromisoformat(value.replace("+0000", "+00:00"))
        except ValueError:
            raise InvalidInput(f"created_time {value!r} is not a time") from None
        return aware(moment, "created_time")
    if value is None:
        value = fallback or 0
    return from_unix(value)


def parse(body: bytes, *, resolver: Resolver, config: FacebookIngest | None, raw_ref: str) -> Batch:
    """Every post, comment, Messenger message and reaction of one webhook call."""
    payload = parse_json(body, _Payload, what="not a Facebook webhook: ", max_bytes=MAX_BODY_BYTES)
    if payload.object != "page":
        raise InvalidInput(f"unknown object {payload.object!r}; expected 'page'")
    batch = Batch(raw_ref=raw_ref)
    for entry in payload.entry:
        if config and config.page_ids and entry.id not in config.page_ids:
            raise InvalidInput(f"page {entry.id} is not one of this municipality's Pages")
        for change in entry.changes:
            if change.field != "feed":
                batch.ignored.append(Ignored(f"{entry.id}:{change.field}", f"field {change.field} not used"))
                continue
            try:
                feed = _Feed.model_validate(change.value)
            except ValidationError as exc:
                raise InvalidInput(f"malformed feed change: {problems(exc, 5)}") from None
            with invalid_as("feed change: "):
                _feed(batch, entry, feed, resolver)
        for event in entry.messaging:
            with invalid_as("messaging event: "):
                _messaging(batch, entry, event, resolver)
    return batch


def _feed(batch: Batch, entry: _Entry, feed: _Feed, resolver: Resolver) -> None:
    page = entry.id
    provider_id = feed.comment_id or feed.post_id or ""
    if not provider_id:
        raise InvalidInput(f"feed {feed.item} without post_id or comment_id")
    if feed.sender is None or feed.sender.id == page:
        batch.ignored.append(Ignored(provider_id, "posted by the Page itself"))
        return
    if feed.verb != "add":
        batch.ignored.append(Ignored(provider_id, f"{feed.item} {feed.verb}: only new posts are forwarded"))
        return
    sender = resolver.resolve(f"facebook:{feed.sender.id}", channel="facebook", place=page)
    sent_at = _when(feed.created_time, entry.time)
    provider = ProviderRef(channel=FB, message_id=provider_id, account=page)
    if feed.item in ("reaction", "like"):
        batch.reactions.append(
            Reaction(
                id=stable_id("rea", page, provider_id, feed.sender.id),
                provider=provider,
                municipality=resolver.municipality.id,
                group_id=sender.group.id if sender.group else None,
                author=sender.author,
                reacts_to=feed.post_id or provider_id,
                emoji=feed.reaction_type or "like",
                sent_at=sent_at,
            )
        )
        return
    if feed.item != "comment" and feed.item not in POST_ITEMS:
        batch.ignored.append(Ignored(provider_id, f"feed item {feed.item!r} not used"))
        return
    text = feed.message or ""
    flags = list(sender.flags)
    media: tuple[MediaRef, ...] = ()
    if feed.photo_id:
        media = (MediaRef(kind="image", provider_media_id=feed.photo_id),)
    if not text.strip() and not media:
        flags.append("empty")
    reply_to = None
    if feed.item == "comment" and feed.post_id:
        reply_to = message_id(FB, page, feed.post_id)
    text = cap_text(text, flags)
    batch.messages.append(
        InboundMessage(
            id=message_id(FB, page, provider_id),
            provider=provider,
            municipality=resolver.municipality.id,
            group_id=sender.group.id if sender.group else None,
            author=sender.author,
            text=text,
            media=media,
            reply_to=reply_to,
            flags=tuple(flags),
            sent_at=sent_at,
            raw_ref=batch.raw_ref,
        )
    )


def _messaging(batch: Batch, entry: _Entry, event: _Messaging, resolver: Resolver) -> None:
    page = entry.id
    at = from_unix(event.timestamp / 1000)
    if event.delivery is not None or event.read is not None:
        state = DeliveryState.DELIVERED if event.delivery is not None else DeliveryState.READ
        mids = event.delivery.mids if event.delivery else []
        recipient = resolver.pseudonym(f"facebook:{event.sender.id}")
        if not mids:  # a read or delivery watermark covers everything before it
            batch.ignored.append(Ignored(f"{page}:{event.timestamp}", f"{state} watermark without ids"))
        for mid in mids:
            batch.statuses.append(
                ProviderStatus(
                    id=stable_id("pst", page, mid, state),
                    channel=FB,
                    account=page,
                    provider_message_id=mid,
                    state=state,
                    recipient=recipient,
                    at=at,
                )
            )
        return
    sender = resolver.resolve(f"facebook:{event.sender.id}", channel="facebook", place=page)
    group_id = sender.group.id if sender.group else None
    if event.reaction is not None:
        r = event.reaction
        batch.reactions.append(
            Reaction(
                id=stable_id("rea", page, r.mid, event.sender.id, r.action),
                provider=ProviderRef(channel=FB, message_id=r.mid, account=page),
                municipality=resolver.municipality.id,
                group_id=group_id,
                author=sender.author,
                reacts_to=r.mid,
                emoji="" if r.action == "unreact" else (r.emoji or r.reaction or ""),
                sent_at=at,
            )
        )
        return
    if event.message is None:
        batch.ignored.append(Ignored(f"{page}:{event.timestamp}", "messaging event not used"))
        return
    message = event.message
    if message.is_echo:
        batch.ignored.append(Ignored(message.mid, "echo of a message the Page sent"))
        return
    flags = [*sender.flags, "messenger"]
    media = tuple(
        MediaRef(kind=a.type, storage_ref=None, provider_media_id=None, caption=None)
        for a in message.attachments
        if a.type in ("image", "video", "audio", "file")
    )
    flags += [
        f"unsupported_type:{a.type}"
        for a in message.attachments
        if a.type not in ("image", "video", "audio", "file")
    ]
    text = message.text or ""
    if not text.strip() and not media:
        flags.append("empty")
    reply = message.reply_to.mid if message.reply_to else None
    batch.contacts[sender.author.pseudonym] = ("facebook", event.sender.id)  # a Messenger reply reaches them
    text = cap_text(text, flags)
    batch.messages.append(
        InboundMessage(
            id=message_id(FB, page, message.mid),
            provider=ProviderRef(channel=FB, message_id=message.mid, account=page),
            municipality=resolver.municipality.id,
            group_id=group_id,
            author=sender.author,
            text=text,
            media=media,
            reply_to=message_id(FB, page, reply) if reply else None,
            flags=tuple(flags),
            sent_at=at,
            raw_ref=batch.raw_ref,
        )
    )

"""The WhatsApp Cloud API adapter: text to a Groups API group (a regiegroep of up to
8 participants) or to one person, paced to the business number's throughput tier
and one message per recipient per ``recipient_interval``.

Outside the 24-hour customer-service window WhatsApp refuses free text (error
131047); the adapter then sends the approved template named in its configuration,
with the text as its one body parameter. Rate-limit errors (130429, 131056, 131048,
and Graph's 4 and 80007) are transient: the delivery takes the retry path. The
delivery id travels as ``biz_opaque_callback_data``, which WhatsApp echoes in its
status webhooks. A delivery with a photo, video or PDF sends it with the text as
its caption; the medium is uploaded (``/<phone-number-id>/media``) once, however
many members a fan-out reaches. A delivery with choices (a poll) shows them as reply
buttons or a list; outside the window the template carries the text, whose link answers
as well.

It also removes participants from a Groups API group (``DELETE /<group-id>/participants``, up
to 8 a call), for a member two admins or coordinators removed: one not in the group (131212)
counts as removed; the Groups API's rate limit (131208, HTTP 429) is transient."""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Sequence
from typing import Any, ClassVar, NoReturn

import aiohttp
from pydantic import Field, SecretStr

from buurtalert.channels.adapters.graph import GraphError, GraphSession
from buurtalert.channels.pacing import Paced, RecipientPacing, SharedThrottle, Throttle
from buurtalert.shared.channels import (
    AdapterConfig,
    Attachment,
    ChannelAdapter,
    PermanentDeliveryError,
    SendResult,
    TierSchedule,
    TransientDeliveryError,
)
from buurtalert.shared.models import Delivery
from buurtalert.shared.texts import line

RATE_LIMITED = {4, 80007, 130429, 131048, 131056, 131208}
#: Groups API (its error codes page): the participant is not in the group (a removal done before).
NOT_A_PARTICIPANT = 131212
#: Participants one Groups API call may add or remove.
MAX_PARTICIPANTS_PER_CALL = 8
CAPTION_LIMIT = 1024
UPLOAD_REUSE = 24 * 3600.0  # seconds an uploaded medium is sent by its id
#: The media the Cloud API takes, by the type sniffed from their bytes.
MEDIA_KINDS = {
    "image/jpeg": "image",
    "image/png": "image",
    "video/mp4": "video",
    "video/3gpp": "video",
    "application/pdf": "document",
}
OUTSIDE_WINDOW = 131047
#: An interactive message's body and its reply buttons (Cloud API reference, interactive object).
INTERACTIVE_BODY_LIMIT = 1024
MAX_BUTTONS = 3
#: The least share of the tier a process keeps when it holds no partition of
#: ``deliveries.whatsapp`` (it still sends the review console's notices).
MIN_SHARE = 1 / 6
#: Deliveries in hand per message/s of the tier: half a second's worth keeps the tier's
#: rate over Graph API round trips of up to half a second, and what a process still holds
#: when a rebalance takes its partitions is sent within a few seconds at its reduced pace.
IN_HAND_SECONDS = 0.5


def wa_id(phone: str) -> str:
    """A phone number as WhatsApp names its users: the digits with the country code
    (``+31 6 1234 5678`` is ``31612345678``)."""
    digits = re.sub(r"\D", "", phone)
    return digits[2:] if digits.startswith("00") else digits


def interactive(delivery: Delivery, text: str) -> dict[str, Any]:
    """The answers of a poll as reply buttons (up to 3) or a list (up to 10), below the text."""
    choices = delivery.choices
    if len(choices) <= MAX_BUTTONS:
        buttons = [{"type": "reply", "reply": {"id": c.id, "title": c.title}} for c in choices]
        return {"type": "button", "body": {"text": text}, "action": {"buttons": buttons}}
    label = line("poll_list_button", delivery.language)[:20]
    rows = [{"id": c.id, "title": c.title} for c in choices]
    return {
        "type": "list",
        "body": {"text": text},
        "action": {"button": label, "sections": [{"title": label[:24], "rows": rows}]},
    }


class WhatsAppConfig(AdapterConfig):
    phone_number_id: str = Field(min_length=1, description="The business number's id in the Cloud API")
    access_token: SecretStr
    graph_url: str = "https://graph.facebook.com/v21.0"
    messages_per_second: float = Field(default=80, gt=0, le=1000, description="The number's throughput tier")
    recipient_interval: float = Field(
        default=6.0, ge=0, description="Seconds between two messages to one user"
    )
    template_name: str | None = Field(
        default=None, description="Approved template for outside the 24-hour window"
    )
    template_language: str = "nl"
    timeout: float = 15.0


class WhatsAppAdapter(ChannelAdapter[WhatsAppConfig]):
    name: ClassVar[str] = "whatsapp"
    config_model: ClassVar[type[AdapterConfig]] = WhatsAppConfig
    max_text_length: ClassVar[int] = 4096
    supports_media: ClassVar[bool] = True
    paced: ClassVar[bool] = True  # the business number's tier

    def __init__(self, config: WhatsAppConfig) -> None:
        super().__init__(config)
        self.graph = GraphSession(config.graph_url, config.access_token, config.timeout)
        #: This process's share of the tier by partitions (alone, or when the shared
        #: schedule cannot be reached); ``throttle`` is what sends wait for.
        self.own_pace = Throttle(config.messages_per_second)
        self.throttle: Throttle | SharedThrottle = self.own_pace
        self.pacing = RecipientPacing(config.recipient_interval)
        self._uploads: dict[str, tuple[str, float]] = {}  # storage ref: media id, when
        self._upload_locks: dict[str, asyncio.Lock] = {}

    async def start(self) -> None:
        await self.graph.start()

    @property
    def in_hand(self) -> int:
        return max(8, math.ceil(self.config.messages_per_second * IN_HAND_SECONDS))

    def share(self, fraction: float) -> None:
        """The business number's tier is shared by every channels process: this one sends
        at its share of it (the share of ``deliveries.whatsapp`` it consumes), never less
        than :data:`MIN_SHARE`, since review notices reach every process."""
        self.own_pace.pace(self.config.messages_per_second * min(max(fraction, MIN_SHARE), 1.0))

    def share_tier(self, schedule: TierSchedule) -> None:
        """Send at the times taken from the schedule of this business number, which every
        channels process shares."""
        account = f"{self.name}:{self.config.phone_number_id}"
        self.throttle = SharedThrottle(
            schedule, account, self.config.messages_per_second, fallback=self.own_pace
        )

    async def close(self) -> None:
        await self.graph.close()

    def payload(
        self,
        delivery: Delivery,
        text: str,
        *,
        template: bool = False,
        medium: tuple[str, str] | None = None,
    ) -> dict[str, Any]:
        """The Cloud API message: the text, the approved template with the text as its
        parameter, or a medium (kind, uploaded id) with the text as its caption."""
        destination = delivery.destination
        body: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "recipient_type": destination.recipient_type,
            "to": wa_id(destination.address)
            if destination.recipient_type == "individual"
            else destination.address,
            "biz_opaque_callback_data": delivery.id,
        }
        if template and self.config.template_name:
            body |= {
                "type": "template",
                "template": {
                    "name": self.config.template_name,
                    "language": {"code": self.config.template_language},
                    "components": [{"type": "body", "parameters": [{"type": "text", "text": text[:1024]}]}],
                },
            }
        elif medium is not None:
            kind, media_id = medium
            body |= {"type": kind, kind: {"id": media_id, "caption": text}}
        elif delivery.choices and len(text) <= INTERACTIVE_BODY_LIMIT:
            body |= {"type": "interactive", "interactive": interactive(delivery, text)}
        else:
            body |= {"type": "text", "text": {"body": text, "preview_url": False}}
        return body

    async def send(self, delivery: Delivery, text: str) -> SendResult:
        return await self._send_or_template(delivery, text, self.payload(delivery, text))

    async def send_with_media(
        self, delivery: Delivery, text: str, attachments: Sequence[Attachment]
    ) -> SendResult:
        """The first photo, video or document, with the text as its caption; the text
        alone when none can go or the text is longer than a caption may be. One
        message either way: a second would wait out the recipient's pacing."""
        medium = next((a for a in attachments if MEDIA_KINDS.get(a.mime_type)), None)
        if medium is None or len(text) > CAPTION_LIMIT:
            return await self.send(delivery, text)
        media_id = await self._uploaded(medium)
        body = self.payload(delivery, text, medium=(MEDIA_KINDS[medium.mime_type], media_id))
        return await self._send_or_template(delivery, text, body)

    async def _send_or_template(self, delivery: Delivery, text: str, body: dict[str, Any]) -> SendResult:
        try:
            return await self._post(delivery, body)
        except PermanentDeliveryError as exc:
            if exc.provider_code == str(OUTSIDE_WINDOW) and self.config.template_name:
                # The message was refused, so the recipient's pacing was not used up.
                return await self._post(delivery, self.payload(delivery, text, template=True), pace=False)
            raise

    async def _uploaded(self, medium: Attachment) -> str:
        """The medium's id at WhatsApp, uploaded once a day per medium however many
        recipients it goes to (WhatsApp keeps uploads for 30 days)."""
        async with self._upload_locks.setdefault(medium.storage_ref, asyncio.Lock()):
            uploaded = self._uploads.get(medium.storage_ref)
            if uploaded is not None and time.monotonic() - uploaded[1] < UPLOAD_REUSE:
                return uploaded[0]
            form = aiohttp.FormData()
            form.add_field("messaging_product", "whatsapp")
            form.add_field("type", medium.mime_type)
            form.add_field(
                "file", medium.data, filename=medium.filename or "medium", content_type=medium.mime_type
            )
            answer = await self.graph.post(f"{self.config.phone_number_id}/media", data=form)
            if isinstance(answer, GraphError):
                self._raise(answer)
            media_id = str(answer["id"])
            self._uploads[medium.storage_ref] = (media_id, time.monotonic())
            return media_id

    async def _post(self, delivery: Delivery, body: dict[str, Any], *, pace: bool = True) -> SendResult:
        turn: float | None = None
        if pace:
            try:
                turn = await self.pacing.acquire(body["to"])
            except Paced as exc:  # not now: the retry path brings it back at the recipient's turn
                raise TransientDeliveryError(str(exc), provider_code="131056", retry_after=exc.wait) from exc
        await self.throttle.acquire()
        answer = await self.graph.post(f"{self.config.phone_number_id}/messages", json=body)
        if isinstance(answer, GraphError):
            if pace and (answer.code in RATE_LIMITED or answer.status == 429):
                self.pacing.give_back(body["to"], turn)  # refused: the recipient got nothing
            self._raise(answer)
        messages = answer.get("messages") or [{}]
        return SendResult(provider_message_id=messages[0].get("id"))

    async def remove_participants(self, whatsapp_group_id: str, participants: Sequence[str]) -> bool:
        """Take ``participants`` (phone numbers or wa_ids) out of the Groups API group, 8 a
        call; True if the API removed them, False if none of a call's was in the group.
        Raises :class:`TransientDeliveryError` (rate limit, outage) or
        :class:`PermanentDeliveryError` (an unknown group, a malformed request)."""
        users = list(dict.fromkeys(wa_id(p) for p in participants))
        removed = False
        for start in range(0, len(users), MAX_PARTICIPANTS_PER_CALL):
            body = {
                "messaging_product": "whatsapp",
                "participants": [{"user": u} for u in users[start : start + MAX_PARTICIPANTS_PER_CALL]],
            }
            answer = await self.graph.delete(f"{whatsapp_group_id}/participants", json=body)
            if isinstance(answer, GraphError):
                if answer.code == NOT_A_PARTICIPANT:
                    continue
                self._raise(answer)
            removed = True
        return removed

    @staticmethod
    def _raise(error: GraphError) -> NoReturn:
        if error.code in RATE_LIMITED or error.status == 429 or error.status >= 500:
            raise TransientDeliveryError(error.detail, provider_code=error.provider_code)
        raise PermanentDeliveryError(error.detail, provider_code=error.provider_code)

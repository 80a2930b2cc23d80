"""Channels' handling, apart from Kafka: a delivery sent once through its adapter, a
rejection explained to its author, a provider's status tied to its delivery, held
deliveries released when due, a removed member taken out of a WhatsApp group. Outcomes
are handed to ``report``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NoReturn, Protocol, runtime_checkable

from pymongo.errors import PyMongoError

from buurtalert.channels.render import feedback_subject, render, render_feedback
from buurtalert.channels.stores import HeldDeliveries, Ledger, MediaStore, outcome_stage
from buurtalert.shared.channels import ChannelAdapter, DeliveryError
from buurtalert.shared.contacts import Contacts
from buurtalert.shared.kafka import PermanentError
from buurtalert.shared.logging import bound, get_logger
from buurtalert.shared.metrics import DELIVERY_TRANSIENT_ERRORS
from buurtalert.shared.models import (
    Delivery,
    DeliveryState,
    DeliveryStatus,
    Destination,
    GroupRemoval,
    ModeratedMessage,
    ProviderStatus,
    stable_id,
    utcnow,
)
from buurtalert.shared.mongo import Audit
from buurtalert.shared.pseudonym import redact

log = get_logger(__name__)
Report = Callable[[DeliveryStatus], Awaitable[None]]
#: How long a send that went out waits for the database to record it (see Deliver.settle_sent).
SETTLE_PATIENCE = 300.0
Deliver = Callable[[Delivery], Awaitable[None]]


def status_of(
    delivery: Delivery, adapter: ChannelAdapter[Any], state: DeliveryState, **details: str | None
) -> DeliveryStatus:
    return DeliveryStatus(
        delivery_id=delivery.id, message_id=delivery.message_id, channel=adapter.name, state=state, **details
    )


#: Whether a member's own latest choice allows one-to-one delivery (municipality,
#: pseudonym): False after STOP or while pending, None if they never chose by message.
Consents = Callable[[str, str], Awaitable[bool | None]]


class Deliverer:
    """Sends each delivery of one adapter at most once after it was settled: held
    ones are kept until due, duplicates announced again, failures mapped to the
    retry path (transient) or the dead-letter topic (permanent)."""

    def __init__(
        self,
        adapter: ChannelAdapter[Any],
        ledger: Ledger,
        held: HeldDeliveries,
        media: MediaStore,
        report: Report,
        consents: Consents | None = None,
    ) -> None:
        self.adapter = adapter
        self.ledger = ledger
        self.held = held
        self.media = media
        self.report = report
        self.consents = consents

    async def _withdrawn(self, delivery: Delivery) -> bool:
        """A delivery to one member of a fan-out whose consent is gone since routing
        (consent is checked again just before sending, also for held deliveries)."""
        recipient = delivery.destination.recipient
        if self.consents is None or recipient is None or delivery.destination.recipient_type != "individual":
            return False
        municipality = delivery.destination.municipality or delivery.municipality
        return await self.consents(municipality, recipient) is False

    async def __call__(self, delivery: Delivery) -> None:
        adapter = self.adapter
        with bound(message_id=delivery.message_id, delivery_id=delivery.id):
            if delivery.deliver_after is not None and delivery.deliver_after > utcnow():
                await self.held.hold(delivery)
                log.info(
                    "delivery_held", until=delivery.deliver_after.isoformat(), rules=list(delivery.rules)
                )
                return
            settled = await self.ledger.claim(delivery)
            if settled is not None:
                log.info("duplicate_suppressed", state=settled.state)
                # Announcing the outcome again is harmless and mends a report lost in a crash.
                await self.report(settled)
                return
            if await self._withdrawn(delivery):
                why = "the member opted out (STOP) or awaits approval since this was routed"
                refused = status_of(
                    delivery, adapter, DeliveryState.FAILED, error_code="no_consent", error_detail=why
                )
                await self.ledger.settle(refused)
                await self.report(refused)
                log.info("delivery_not_sent", why=why, group_id=delivery.destination.group_id)
                return
            text = render(delivery, adapter.max_text_length)
            try:
                if delivery.media and adapter.supports_media:
                    attachments = await self.media.attachments(delivery.media)
                    result = await adapter.send_with_media(delivery, text, attachments)
                else:
                    result = await adapter.send(delivery, text)
            except DeliveryError as exc:
                if not exc.permanent:
                    DELIVERY_TRANSIENT_ERRORS.labels(adapter.name, exc.provider_code or "none").inc()
                    exc.args = (redact(str(exc)),)  # the retry and dead-letter topics keep no number
                    await self.ledger.release(delivery)  # not sent: its retry claims it afresh
                    raise  # left unsettled: the retry path sends it again
                failed = status_of(
                    delivery,
                    adapter,
                    DeliveryState.FAILED,
                    error_code=exc.provider_code,
                    error_detail=redact(str(exc)),
                )
                await self.ledger.settle(failed)
                await self.report(failed)
                raise PermanentError(redact(str(exc))) from exc
            sent = status_of(
                delivery, adapter, DeliveryState.SENT, provider_message_id=result.provider_message_id
            )
            await self.settle_sent(sent)
            await self.report(sent)
            log.info("delivered", channel=adapter.name, group_id=delivery.destination.group_id)

    async def settle_sent(self, sent: DeliveryStatus) -> None:
        """Record a send that went out, however long the database is away (up to
        ``SETTLE_PATIENCE`` seconds, backing off): left unsettled, the retry path would
        send it again, so an outage of the database would become a repeated delivery."""
        delay, deadline = 0.5, time.monotonic() + SETTLE_PATIENCE
        while True:
            try:
                await self.ledger.settle(sent)
                return
            except PyMongoError as exc:
                if time.monotonic() > deadline:
                    raise
                log.warning("settle_waiting_for_database", error=f"{type(exc).__name__}: {exc}"[:300])
                await asyncio.sleep(delay)
                delay = min(2 * delay, 5.0)


class AuthorFeedback:
    """Tells the author which rule kept their message back, through the channel that reaches them."""

    def __init__(self, contacts: Contacts, audit: Audit, deliverers: dict[str, Deliver]) -> None:
        self.contacts = contacts
        self.audit = audit
        self.deliverers = deliverers

    async def __call__(self, item: ModeratedMessage) -> None:
        message = item.message
        with bound(message_id=message.id):
            if not message.author.verified:
                # the claimed address may be anyone's: answering it would make us a spam cannon
                why = "sender not verified"
                await self.audit.record(message.id, "author_feedback", {"sent": False, "why": why})
                log.info("author_feedback_not_sent", why=why)
                return
            contact = await self.contacts.find(message.municipality, message.author.pseudonym)
            if contact is None or contact[0] not in self.deliverers:
                why = "no contact for the author" if contact is None else f"no {contact[0]} adapter"
                await self.audit.record(message.id, "author_feedback", {"sent": False, "why": why})
                log.warning("author_feedback_not_sent", why=why)
                return
            channel, address = contact
            feedback = Delivery(
                id=stable_id("fbk", message.id),
                message_id=message.id,
                municipality=message.municipality,
                destination=Destination(
                    group_id=f"author-{message.author.pseudonym}",
                    municipality=message.municipality,
                    channel=channel,
                    address=address,
                    recipient_type="individual",
                    label="je melding (niet doorgestuurd)",
                ),
                text=render_feedback(item, item.moderation.explanation, item.moderation.explanation_en),
                subject=feedback_subject(item),
                language=message.language or "nl",
                rules=("author_feedback",),
            )
            await self.deliverers[channel](feedback)


async def send_notice(notice: Delivery, deliverers: dict[str, Deliver], audit: Audit) -> None:
    """A notice of the review console (``review.notices``) through the adapter its
    destination names; one for an adapter this deployment lacks is recorded, not sent."""
    with bound(message_id=notice.message_id, delivery_id=notice.id):
        deliver = deliverers.get(notice.destination.channel)
        if deliver is None:
            why = f"no {notice.destination.channel} adapter"
            entry = {"sent": False, "why": why, "id": notice.id}
            await audit.record(notice.message_id, "review_notice", entry)
            log.warning("review_notice_not_sent", why=why)
            return
        await deliver(notice)


class ProviderStatuses:
    """What the provider says became of a message we sent, recorded against its delivery."""

    def __init__(self, ledger: Ledger, audit: Audit, report: Report) -> None:
        self.ledger = ledger
        self.audit = audit
        self.report = report

    async def __call__(self, status: ProviderStatus) -> None:
        delivery = await self.ledger.find(status.reference) if status.reference else None
        if delivery is None:
            log.info(
                "provider_status_not_ours", provider_message_id=status.provider_message_id, state=status.state
            )
            return
        with bound(message_id=delivery["message_id"], delivery_id=status.reference):
            outcome = DeliveryStatus(
                delivery_id=delivery["_id"],
                message_id=delivery["message_id"],
                channel=status.channel,
                state=status.state,
                provider_message_id=status.provider_message_id,
                error_code=status.error_code,
                error_detail=redact(status.error_detail) if status.error_detail else None,
                at=status.at,
            )
            await self.report(outcome)
            await self.audit.record(
                outcome.message_id, outcome_stage(outcome.delivery_id), outcome.model_dump(mode="json")
            )
            log.info("provider_status_recorded", state=status.state, error_code=status.error_code)


async def release_due(
    held: HeldDeliveries,
    deliverers: dict[str, Deliver],
    retry_later: Callable[[Delivery, BaseException], Awaitable[None]],
) -> int:
    """Send the held deliveries whose time has come, through their deliverer; one that
    fails takes the retry path. Answers how many were released."""
    released = 0
    for delivery in await held.due(utcnow()):
        try:
            await deliverers[delivery.destination.channel](delivery)
        except Exception as exc:  # the retry path takes over from here
            await retry_later(delivery, exc)
        await held.release(delivery.id)
        released += 1
    return released


def group_change_stage(removal_id: str) -> str:
    """The audit stage of a removal from a WhatsApp group, on the proposal's trail (once)."""
    return f"group_changes.{removal_id}"


@runtime_checkable
class RemovesParticipants(Protocol):
    """An adapter that takes participants out of a provider's group (WhatsApp's Groups API)."""

    async def remove_participants(self, whatsapp_group_id: str, participants: Sequence[str]) -> bool: ...


class GroupChanges:
    """Takes a member two admins or coordinators removed out of the group's WhatsApp group
    (``review.group-changes``), and records the outcome once in the proposal's audit trail.

    A removal recorded as done is not asked of the Graph API again; two processes handling
    the same one at once both ask, which is harmless: a participant no longer in the group
    counts as done. A permanent error (an unknown group, a malformed request, no WhatsApp
    adapter) is recorded and goes to the dead-letter topic with its reason; a rate limit or
    an outage takes the retry path."""

    def __init__(self, adapter: RemovesParticipants | None, audit: Audit) -> None:
        self.adapter = adapter
        self.audit = audit

    async def __call__(self, removal: GroupRemoval) -> None:
        stage = group_change_stage(removal.id)
        with bound(decision_id=removal.decision_id, removal_id=removal.id, group_id=removal.group_id):
            done = await self.audit.entry(removal.subject_id, stage)
            if done is not None:
                log.info("group_removal_done_before", outcome=done.get("outcome"))
                return
            if self.adapter is None:
                await self._failed(removal, "no whatsapp adapter: the member stays in the WhatsApp group")
            try:
                removed = await self.adapter.remove_participants(
                    removal.whatsapp_group_id, [removal.participant.get_secret_value()]
                )
            except DeliveryError as exc:
                detail = redact(str(exc))
                if not exc.permanent:
                    exc.args = (detail,)  # the retry and dead-letter topics keep no number
                    raise
                await self._failed(removal, detail, exc.provider_code)
            outcome = "removed" if removed else "not_in_group"
            entry = {
                "outcome": outcome,
                "group_id": removal.group_id,
                "whatsapp_group_id": removal.whatsapp_group_id,
                "member": removal.member,
                "decision_id": removal.decision_id,
            }
            await self.audit.record(removal.subject_id, stage, entry, once=True)
            log.info("group_member_removed", outcome=outcome)

    async def _failed(self, removal: GroupRemoval, detail: str, code: str | None = None) -> NoReturn:
        entry = {
            "error_code": code,
            "error_detail": detail,
            "group_id": removal.group_id,
            "whatsapp_group_id": removal.whatsapp_group_id,
        }
        await self.audit.record(removal.subject_id, f"group_change_failures.{removal.id}", entry)
        log.warning("group_removal_failed", error_code=code, error=detail)
        raise PermanentError(f"removal from WhatsApp group {removal.whatsapp_group_id}: {detail}")

"""The channels service: deliveries.<adapter> → the provider, and deliveries.status."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from faststream import FastStream

from buurtalert.channels.held import HeldDeliveries
from buurtalert.channels.ledger import Ledger, outcome_stage
from buurtalert.channels.media import MediaStore
from buurtalert.channels.render import render, render_feedback
from buurtalert.shared.channels import ChannelAdapter, DeliveryError, load_adapters
from buurtalert.shared.contacts import Contacts
from buurtalert.shared.kafka import PermanentError, Reliable, create_broker, topic_publisher
from buurtalert.shared.logging import APP_LOGGER, bound, get_logger
from buurtalert.shared.models import (
    Delivery,
    DeliveryState,
    DeliveryStatus,
    Destination,
    ModeratedMessage,
    ProviderStatus,
    stable_id,
    utcnow,
)
from buurtalert.shared.mongo import Audit, mongo_client
from buurtalert.shared.settings import Settings, load_municipality_config
from buurtalert.shared.topics import (
    CHANNELS,
    DELIVERIES_STATUS,
    MESSAGES_REJECTED,
    PROVIDER_STATUS,
    delivery_topic,
)

log = get_logger(__name__)


def status_of(
    delivery: Delivery, adapter: ChannelAdapter[Any], state: DeliveryState, **details: str | None
) -> DeliveryStatus:
    return DeliveryStatus(
        delivery_id=delivery.id, message_id=delivery.message_id, channel=adapter.name, state=state, **details
    )


def create_app(settings: Settings) -> FastStream:
    municipality = load_municipality_config(settings.municipality_file)
    broker = create_broker(settings, CHANNELS)
    reliable = Reliable(broker, settings, CHANNELS)
    db = mongo_client(settings)[settings.database]
    audit = Audit(db)
    ledger = Ledger(db, audit)
    held = HeldDeliveries(db)
    contacts = Contacts(db)
    media = MediaStore(db)
    statuses = topic_publisher(broker, settings, DELIVERIES_STATUS)
    adapters = load_adapters(municipality.channels)

    async def report(status: DeliveryStatus) -> None:
        await reliable.publish(statuses, status, key=status.delivery_id.encode())

    def deliverer(adapter: ChannelAdapter[Any]) -> Any:
        async def deliver(delivery: Delivery) -> None:
            with bound(message_id=delivery.message_id, delivery_id=delivery.id):
                if delivery.deliver_after is not None and delivery.deliver_after > utcnow():
                    await held.hold(delivery)
                    log.info(
                        "delivery_held", until=delivery.deliver_after.isoformat(), rules=list(delivery.rules)
                    )
                    return
                settled = await ledger.claim(delivery)
                if settled is not None:
                    log.info("duplicate_suppressed", state=settled.state)
                    # Announcing the outcome again is harmless and mends a report lost in a crash.
                    await report(settled)
                    return
                text = render(delivery, adapter.max_text_length)
                try:
                    if delivery.media and adapter.supports_media:
                        attachments = await media.attachments(delivery.media)
                        result = await adapter.send_with_media(delivery, text, attachments)
                    else:
                        result = await adapter.send(delivery, text)
                except DeliveryError as exc:
                    if not exc.permanent:
                        raise  # left unsettled: the retry path sends it again
                    failed = status_of(
                        delivery,
                        adapter,
                        DeliveryState.FAILED,
                        error_code=exc.provider_code,
                        error_detail=str(exc),
                    )
                    await ledger.settle(failed)
                    await report(failed)
                    raise PermanentError(str(exc)) from exc
                sent = status_of(
                    delivery, adapter, DeliveryState.SENT, provider_message_id=result.provider_message_id
                )
                await ledger.settle(sent)
                await report(sent)
                log.info("delivered", channel=adapter.name, group_id=delivery.destination.group_id)

        deliver.__name__ = f"deliver_{adapter.name}"
        return deliver

    handlers: dict[str, Callable[[Delivery], Awaitable[None]]] = {}
    for name, adapter in adapters.items():
        # In batches, many destinations at once, each destination's deliveries in order:
        # a fan-out to thousands of members runs at the provider's rate, not at one
        # round trip per delivery.
        handlers[name] = reliable.batch_subscriber(delivery_topic(name))(deliverer(adapter))

    @reliable.subscriber(MESSAGES_REJECTED)
    async def explain_rejection(item: ModeratedMessage) -> None:
        """Tell the author which rule kept their message back, through the channel that reaches them."""
        message = item.message
        with bound(message_id=message.id):
            contact = await contacts.find(message.municipality, message.author.pseudonym)
            if contact is None or contact[0] not in handlers:
                why = "no contact for the author" if contact is None else f"no {contact[0]} adapter"
                await audit.record(message.id, "author_feedback", {"sent": False, "why": why})
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
                text=render_feedback(item),
                subject="Je bericht is niet doorgestuurd / Your message was not forwarded",
                rules=("author_feedback",),
            )
            await handlers[channel](feedback)

    @reliable.subscriber(PROVIDER_STATUS)
    async def record_provider_status(status: ProviderStatus) -> None:
        """What the provider says became of a message we sent, recorded against its delivery."""
        delivery = await ledger.find(status.reference) if status.reference else None
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
                error_detail=status.error_detail,
                at=status.at,
            )
            await report(outcome)
            await audit.record(
                outcome.message_id, outcome_stage(outcome.delivery_id), outcome.model_dump(mode="json")
            )
            log.info("provider_status_recorded", state=status.state, error_code=status.error_code)

    async def release_due() -> None:
        """Send held deliveries whose time has come, through the same handler."""
        while True:
            await asyncio.sleep(1.0)
            try:
                for delivery in await held.due(utcnow()):
                    topic = delivery_topic(delivery.destination.channel)
                    try:
                        await handlers[delivery.destination.channel](delivery)
                    except Exception as exc:  # the retry path takes over from here
                        await reliable.retry_later(topic, delivery, delivery.destination.key, exc)
                    await held.release(delivery.id)
            except Exception:  # the database was unreachable: try again in a second
                log.exception("releasing_held_deliveries_failed")

    app = FastStream(broker, logger=APP_LOGGER)
    reliable.attach(app)
    releaser: list[asyncio.Task[None]] = []

    @app.after_startup
    async def start_releasing() -> None:
        releaser.append(asyncio.create_task(release_due()))

    @app.on_shutdown
    async def stop_releasing() -> None:
        for task in releaser:
            task.cancel()

    @app.on_startup
    async def start_adapters() -> None:
        for adapter in adapters.values():
            await adapter.start()

    @app.after_shutdown
    async def close_adapters() -> None:
        for adapter in adapters.values():
            await adapter.close()

    return app

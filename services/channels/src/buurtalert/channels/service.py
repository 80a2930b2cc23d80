"""The channels service: deliveries.<adapter> → the provider, and deliveries.status;
review.group-changes → the WhatsApp Groups API. Wiring only; the handling is in
:mod:`buurtalert.channels.handlers`."""

from __future__ import annotations

import asyncio

from faststream.asgi import AsgiFastStream

from buurtalert.channels.handlers import (
    AuthorFeedback,
    Deliver,
    Deliverer,
    GroupChanges,
    ProviderStatuses,
    RemovesParticipants,
    release_due,
    send_notice,
)
from buurtalert.channels.stores import HeldDeliveries, Ledger, MediaStore, TierSchedules
from buurtalert.directory.store import Memberships, RegisterConsents
from buurtalert.shared.channels import load_adapters
from buurtalert.shared.contacts import Contacts
from buurtalert.shared.kafka import Reliable, create_broker, topic_publisher
from buurtalert.shared.logging import APP_LOGGER, get_logger
from buurtalert.shared.metrics import DELIVERIES
from buurtalert.shared.models import (
    Delivery,
    DeliveryStatus,
    GroupRemoval,
    ModeratedMessage,
    ProviderStatus,
)
from buurtalert.shared.mongo import Audit, Database
from buurtalert.shared.observability import Observability
from buurtalert.shared.settings import Settings, load_municipality_config
from buurtalert.shared.topics import (
    CHANNELS,
    DELIVERIES_STATUS,
    MESSAGES_REJECTED,
    PROVIDER_STATUS,
    REVIEW_GROUP_CHANGES,
    REVIEW_NOTICES,
    delivery_topic,
)

log = get_logger(__name__)
#: A delivery batch holds this many times what the adapter keeps in hand at once.
BATCH_TURNS = 10


def create_app(settings: Settings) -> AsgiFastStream:
    municipality = load_municipality_config(settings.municipality_file)
    broker = create_broker(settings, CHANNELS)
    reliable = Reliable(broker, settings, CHANNELS)
    db = Database.connect(settings, CHANNELS)
    audit = Audit(db)
    ledger = Ledger(db, audit)
    held = HeldDeliveries(db)
    media = MediaStore(db)
    memberships = Memberships(db)
    consents = RegisterConsents(memberships)  # one lookup a second, not one per recipient
    statuses = topic_publisher(broker, settings, DELIVERIES_STATUS)
    adapters = load_adapters(municipality.channels)
    schedules = TierSchedules(db)  # a provider's tier, shared by every channels process
    for adapter in adapters.values():
        adapter.share_tier(schedules)

    async def report(status: DeliveryStatus) -> None:
        DELIVERIES.labels(status.channel, status.state.value).inc()
        await reliable.publish(statuses, status, key=status.delivery_id.encode())

    deliverers: dict[str, Deliver] = {}
    for name, adapter in adapters.items():
        deliver = Deliverer(adapter, ledger, held, media, report, consents)

        async def deliver_one(delivery: Delivery, deliver: Deliverer = deliver) -> None:
            await deliver(delivery)

        deliver_one.__name__ = f"deliver_{name}"
        # In batches, many destinations at once, each destination's deliveries in order:
        # a fan-out to thousands of members runs at the provider's rate, not at one
        # round trip per delivery.
        # A provider's cap on the whole account is shared by the processes by partitions;
        # the adapter says how many deliveries it keeps in hand at once, and a batch holds
        # ten times that (at a tier's pace, seconds of work: positions are committed often,
        # so a process that takes partitions over reads little that was sent already).
        subscribe = reliable.batch_subscriber(
            delivery_topic(name),
            on_share=adapter.share,
            concurrency=adapter.in_hand,
            max_records=BATCH_TURNS * adapter.in_hand,
            lanes=adapter.paced,
        )
        deliverers[name] = subscribe(deliver_one)

    feedback = AuthorFeedback(Contacts(db), audit, deliverers)
    provider_statuses = ProviderStatuses(ledger, audit, report)

    @reliable.subscriber(MESSAGES_REJECTED)
    async def explain_rejection(item: ModeratedMessage) -> None:
        """Tell the author which rule kept their message back, through the channel that reaches them."""
        await feedback(item)

    @reliable.subscriber(REVIEW_NOTICES)
    async def send_review_notice(notice: Delivery) -> None:
        """What the review console tells a person (the on-duty moderator, a reporter),
        through the adapter its destination names: sent once, like any delivery."""
        await send_notice(notice, deliverers, audit)

    @reliable.subscriber(PROVIDER_STATUS)
    async def record_provider_status(status: ProviderStatus) -> None:
        """What the provider says became of a message we sent, recorded against its delivery."""
        await provider_statuses(status)

    whatsapp = adapters.get("whatsapp")
    group_changes = GroupChanges(whatsapp if isinstance(whatsapp, RemovesParticipants) else None, audit)

    @reliable.subscriber(REVIEW_GROUP_CHANGES)
    async def change_group(removal: GroupRemoval) -> None:
        """A member two admins or coordinators removed, taken out of the WhatsApp group."""
        await group_changes(removal)

    async def retry_later(delivery: Delivery, exc: BaseException) -> None:
        topic = delivery_topic(delivery.destination.channel)
        await reliable.retry_later(topic, delivery, delivery.destination.key, exc)

    async def release_periodically() -> None:
        while True:
            await asyncio.sleep(1.0)
            try:
                await release_due(held, deliverers, retry_later)
            except Exception:  # the database was unreachable: try again in a second
                log.exception("releasing_held_deliveries_failed")

    observability = Observability(settings, CHANNELS, [broker])
    app = AsgiFastStream(broker, asgi_routes=observability.routes(), logger=APP_LOGGER)
    reliable.attach(app)
    observability.attach(app)
    releaser: list[asyncio.Task[None]] = []

    @app.after_startup
    async def start_releasing() -> None:
        releaser.append(asyncio.create_task(release_periodically()))

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

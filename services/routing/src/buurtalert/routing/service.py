"""The routing service: messages.approved → deliveries.<channel>. Wiring only; the
handling is :class:`~buurtalert.routing.handlers.Router`."""

from __future__ import annotations

from faststream.asgi import AsgiFastStream

from buurtalert.directory.store import Directories
from buurtalert.routing.handlers import Router
from buurtalert.routing.outcomes import OutcomeFeedback
from buurtalert.routing.stores import GroupRates, Incidents
from buurtalert.shared.kafka import Reliable, create_broker, topic_publisher
from buurtalert.shared.logging import APP_LOGGER
from buurtalert.shared.models import Delivery, IncidentOutcome, ModeratedMessage
from buurtalert.shared.mongo import Audit, Database
from buurtalert.shared.observability import Observability
from buurtalert.shared.settings import Settings, load_municipality_config
from buurtalert.shared.topics import (
    BUILTIN_CHANNELS,
    INCIDENTS_OUTCOMES,
    MESSAGES_APPROVED,
    ROUTING,
    delivery_topic,
)


def create_app(settings: Settings) -> AsgiFastStream:
    broker = create_broker(settings, ROUTING)
    reliable = Reliable(broker, settings, ROUTING)
    db = Database.connect(settings, ROUTING)
    # Built-in channels, and the partner adapters this deployment's municipality file configures.
    channels = set(BUILTIN_CHANNELS) | set(load_municipality_config(settings.municipality_file).channels)
    publishers = {
        channel: topic_publisher(broker, settings, delivery_topic(channel)) for channel in sorted(channels)
    }

    async def publish(delivery: Delivery) -> None:
        publisher = publishers[delivery.destination.channel]
        await reliable.publish(publisher, delivery, key=delivery.destination.key.encode())

    router = Router(Directories(db), Incidents(db), GroupRates(db), Audit(db), publish, channels)

    @reliable.key_batch_subscriber(MESSAGES_APPROVED)
    async def route_messages(items: list[ModeratedMessage]) -> list[BaseException | None]:
        return await router.route_many(items)

    feedback = OutcomeFeedback(Directories(db), Incidents(db), Audit(db), publish, channels)

    @reliable.subscriber(INCIDENTS_OUTCOMES)
    async def feed_back_outcome(outcome: IncidentOutcome) -> None:
        await feedback(outcome)

    observability = Observability(settings, ROUTING, [broker])
    app = AsgiFastStream(broker, asgi_routes=observability.routes(), logger=APP_LOGGER)
    reliable.attach(app)
    observability.attach(app)
    return app

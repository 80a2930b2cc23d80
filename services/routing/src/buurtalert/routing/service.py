"""The routing service: messages.approved → deliveries.<channel>."""

from __future__ import annotations

from faststream import FastStream

from buurtalert.routing.directory import groups_for
from buurtalert.routing.rules import UnknownGroup, route
from buurtalert.shared.kafka import PermanentError, Reliable, create_broker, topic_publisher
from buurtalert.shared.logging import APP_LOGGER, bound, get_logger
from buurtalert.shared.models import ModeratedMessage
from buurtalert.shared.mongo import Audit, ensure_indexes, mongo_client
from buurtalert.shared.settings import Settings
from buurtalert.shared.topics import DELIVERY_TOPICS, MESSAGES_APPROVED, ROUTING

log = get_logger(__name__)


def create_app(settings: Settings) -> FastStream:
    broker = create_broker(settings, ROUTING)
    reliable = Reliable(broker, settings, ROUTING)
    db = mongo_client(settings)[settings.database]
    audit = Audit(db)
    publishers = {
        channel: topic_publisher(broker, settings, topic) for channel, topic in DELIVERY_TOPICS.items()
    }

    @reliable.subscriber(MESSAGES_APPROVED)
    async def route_message(item: ModeratedMessage) -> None:
        message = item.message
        with bound(message_id=message.id):
            groups = await groups_for(db, message.municipality, message.group_id or "")
            try:
                decision = route(item, groups)
            except UnknownGroup as exc:
                raise PermanentError(str(exc)) from exc
            for delivery in decision.deliveries:
                publisher = publishers.get(delivery.destination.channel)
                if publisher is None:
                    raise PermanentError(f"no channel adapter topic for {delivery.destination.channel!r}")
                await reliable.publish(publisher, delivery, key=delivery.destination.group_id.encode())
            await audit.record(
                message.id,
                ROUTING,
                {
                    "rules": list(decision.rules),
                    "deliveries": [
                        {
                            "id": d.id,
                            "group_id": d.destination.group_id,
                            "channel": d.destination.channel,
                            "rules": list(d.rules),
                        }
                        for d in decision.deliveries
                    ],
                },
            )
            log.info("routed", deliveries=len(decision.deliveries), rules=list(decision.rules))

    app = FastStream(broker, logger=APP_LOGGER)
    reliable.attach(app)

    @app.on_startup
    async def indexes() -> None:
        await ensure_indexes(db)

    return app

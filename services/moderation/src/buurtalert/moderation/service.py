"""The moderation service: messages.inbound → approved, review or rejected."""

from __future__ import annotations

import asyncio

from faststream import FastStream

from buurtalert.moderation.policy import default_policy, load_policy
from buurtalert.moderation.rules import PRIVACY, Scorer
from buurtalert.shared.kafka import Reliable, create_broker, topic_publisher
from buurtalert.shared.logging import APP_LOGGER, bound, get_logger
from buurtalert.shared.models import Decision, InboundMessage, ModeratedMessage
from buurtalert.shared.mongo import Audit, mongo_client
from buurtalert.shared.settings import Settings, load_municipality
from buurtalert.shared.topics import (
    MESSAGES_APPROVED,
    MESSAGES_INBOUND,
    MESSAGES_REJECTED,
    MODERATION,
    MODERATION_REVIEW,
)

log = get_logger(__name__)


def create_app(settings: Settings) -> FastStream:
    municipality = load_municipality(settings.municipality_file)
    policy = (
        load_policy(municipality.moderation_policy)
        if municipality.moderation_policy
        else default_policy(municipality.country)
    )
    scorer = Scorer(policy)
    broker = create_broker(settings, MODERATION)
    reliable = Reliable(broker, settings, MODERATION)
    db = mongo_client(settings)[settings.database]
    audit = Audit(db)
    outputs = {
        decision: topic_publisher(broker, settings, topic)
        for decision, topic in (
            (Decision.FORWARD, MESSAGES_APPROVED),
            (Decision.REVIEW, MODERATION_REVIEW),
            (Decision.REJECT, MESSAGES_REJECTED),
        )
    }

    @reliable.subscriber(MESSAGES_INBOUND)
    async def moderate(message: InboundMessage) -> None:
        with bound(message_id=message.id):
            result = scorer.decide(
                message.id, message.text, author_role=message.author.role, media=message.media
            )
            await reliable.publish(
                outputs[result.decision],
                ModeratedMessage(message=message, moderation=result),
                key=message.partition_key,
            )
            await audit.record(message.id, MODERATION, result.model_dump(mode="json"))
            log.info("moderated", decision=result.decision, reasons=[r.code for r in result.reasons])

    app = FastStream(broker, logger=APP_LOGGER)
    reliable.attach(app)

    @app.on_startup
    async def load_privacy_detector() -> None:
        await asyncio.to_thread(PRIVACY.load)

    return app

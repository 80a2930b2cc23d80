"""The moderation service: messages.inbound → approved, review or rejected. Wiring
only; the handling is :class:`~buurtalert.moderation.handlers.Moderator`."""

from __future__ import annotations

import asyncio

from faststream.asgi import AsgiFastStream

from buurtalert.moderation.handlers import Decisions, Moderator
from buurtalert.moderation.language import warm_up
from buurtalert.moderation.policy import default_policy, load_policy
from buurtalert.moderation.rules import PRIVACY
from buurtalert.moderation.stores import Strikes
from buurtalert.shared.kafka import Reliable, create_broker, topic_publisher
from buurtalert.shared.logging import APP_LOGGER
from buurtalert.shared.metrics import MODERATION_DECISIONS as DECISIONS_COUNTED
from buurtalert.shared.models import (
    Decision,
    InboundMessage,
    ModeratedMessage,
    RemovalProposal,
    ReviewDecision,
)
from buurtalert.shared.mongo import Audit, Database
from buurtalert.shared.observability import Observability
from buurtalert.shared.settings import Settings, load_municipality_config
from buurtalert.shared.topics import (
    MESSAGES_APPROVED,
    MESSAGES_INBOUND,
    MESSAGES_REJECTED,
    MODERATION,
    MODERATION_DECISIONS,
    MODERATION_PROPOSALS,
    MODERATION_REVIEW,
)


def create_app(settings: Settings) -> AsgiFastStream:
    municipality = load_municipality_config(settings.municipality_file)
    policy = (
        load_policy(municipality.moderation_policy)
        if municipality.moderation_policy
        else default_policy(municipality.country)
    )
    broker = create_broker(settings, MODERATION)
    reliable = Reliable(broker, settings, MODERATION)
    db = Database.connect(settings, MODERATION)
    proposals = topic_publisher(broker, settings, MODERATION_PROPOSALS)
    outputs = {
        Decision.FORWARD: topic_publisher(broker, settings, MESSAGES_APPROVED),
        Decision.REVIEW: topic_publisher(broker, settings, MODERATION_REVIEW),
        Decision.REJECT: topic_publisher(broker, settings, MESSAGES_REJECTED),
    }

    async def publish(item: ModeratedMessage) -> None:
        result = item.moderation
        for reason in result.reasons or [None]:
            DECISIONS_COUNTED.labels(result.decision.value, reason.code if reason else "none").inc()
        await reliable.publish(outputs[item.moderation.decision], item, key=item.message.partition_key)

    async def propose(proposal: RemovalProposal) -> None:
        await reliable.publish(proposals, proposal, key=(proposal.group_id or "").encode())

    moderator = Moderator(policy, Strikes(db), Audit(db), publish, propose)

    decisions = Decisions(moderator, Audit(db), publish)

    @reliable.batch_subscriber(MESSAGES_INBOUND)
    async def moderate(message: InboundMessage) -> None:
        await moderator(message)

    @reliable.subscriber(MODERATION_DECISIONS)
    async def apply_decision(decision: ReviewDecision) -> None:
        await decisions(decision)

    observability = Observability(settings, MODERATION, [broker])
    app = AsgiFastStream(broker, asgi_routes=observability.routes(), logger=APP_LOGGER)
    reliable.attach(app)
    observability.attach(app)

    @app.on_startup
    async def load_detectors() -> None:
        await asyncio.to_thread(PRIVACY.load)
        await asyncio.to_thread(warm_up)

    return app

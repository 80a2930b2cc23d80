"""The moderation service: messages.inbound → approved, review or rejected."""

from __future__ import annotations

import asyncio

from faststream import FastStream

from buurtalert.moderation.policy import default_policy, load_policy
from buurtalert.moderation.rules import AUTHORITIES, PRIVACY, Scorer, hold_flagged
from buurtalert.moderation.strikes import WARNING_EN, WARNING_NL, StrikeOutcome, Strikes, outcome
from buurtalert.shared.kafka import Reliable, create_broker, topic_publisher
from buurtalert.shared.logging import APP_LOGGER, bound, get_logger
from buurtalert.shared.models import (
    Decision,
    InboundMessage,
    ModeratedMessage,
    ModerationResult,
    RemovalProposal,
    stable_id,
)
from buurtalert.shared.mongo import Audit, mongo_client
from buurtalert.shared.settings import Settings, load_municipality_config
from buurtalert.shared.topics import (
    MESSAGES_APPROVED,
    MESSAGES_INBOUND,
    MESSAGES_REJECTED,
    MODERATION,
    MODERATION_PROPOSALS,
    MODERATION_REVIEW,
)

log = get_logger(__name__)


def create_app(settings: Settings) -> FastStream:
    municipality = load_municipality_config(settings.municipality_file)
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
    strikes = Strikes(db)
    proposals = topic_publisher(broker, settings, MODERATION_PROPOSALS)
    outputs = {
        decision: topic_publisher(broker, settings, topic)
        for decision, topic in (
            (Decision.FORWARD, MESSAGES_APPROVED),
            (Decision.REVIEW, MODERATION_REVIEW),
            (Decision.REJECT, MESSAGES_REJECTED),
        )
    }

    async def strike(message: InboundMessage, result: ModerationResult) -> ModerationResult:
        """Count the rejection against its author: warn, or propose removal to the admin."""
        count = await strikes.record(
            message.municipality,
            message.author.pseudonym,
            message.id,
            message.group_id,
            message.received_at,
            policy.strikes,
        )
        update: dict[str, object] = {"strikes": count}
        match outcome(count, policy.strikes):
            case StrikeOutcome.WARNING:
                update["explanation"] = f"{result.explanation} {WARNING_NL}".strip()
                update["explanation_en"] = f"{result.explanation_en} {WARNING_EN}".strip()
            case StrikeOutcome.REMOVAL_PROPOSED:
                proposal = RemovalProposal(
                    id=stable_id("rmv", message.municipality, message.author.pseudonym, message.id),
                    municipality=message.municipality,
                    group_id=message.group_id,
                    member=message.author.pseudonym,
                    strikes=count,
                    message_ids=(message.id,),
                    reasons=tuple(r.code for r in result.reasons),
                )
                await reliable.publish(proposals, proposal, key=(message.group_id or "").encode())
                log.warning("removal_proposed", strikes=count, group_id=message.group_id)
        return result.model_copy(update=update)

    @reliable.subscriber(MESSAGES_INBOUND)
    async def moderate(message: InboundMessage) -> None:
        with bound(message_id=message.id):
            result = scorer.decide(
                message.id, message.text, author_role=message.author.role, media=message.media
            )
            result = hold_flagged(result, message.flags)
            if result.decision is Decision.REJECT and message.author.role not in AUTHORITIES:
                result = await strike(message, result)
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

"""Moderation's handling of one inbound message, apart from Kafka: the rules decide,
a rejection counts as a strike, and the result is handed to ``publish``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from buurtalert.moderation.model import normalise_text
from buurtalert.moderation.policy import Policy
from buurtalert.moderation.rules import (
    Scorer,
    StrikeOutcome,
    hold_flagged,
    outcome,
)
from buurtalert.moderation.stores import Strikes
from buurtalert.shared.logging import bound, get_logger
from buurtalert.shared.models import (
    AUTHORITIES,
    Decision,
    InboundMessage,
    ModeratedMessage,
    ModerationResult,
    RemovalProposal,
    stable_id,
)
from buurtalert.shared.mongo import Audit
from buurtalert.shared.texts import line
from buurtalert.shared.topics import MODERATION

log = get_logger(__name__)


class Moderator:
    """Decides one message under the municipality's policy and hands on the result."""

    def __init__(
        self,
        policy: Policy,
        strikes: Strikes,
        audit: Audit,
        publish: Callable[[ModeratedMessage], Awaitable[None]],
        propose: Callable[[RemovalProposal], Awaitable[None]],
    ) -> None:
        self.policy = policy
        self.scorer = Scorer(policy)
        self.strikes = strikes
        self.audit = audit
        self.publish = publish
        self.propose = propose

    async def __call__(self, message: InboundMessage) -> None:
        with bound(message_id=message.id):
            result = self.scorer.decide(
                message.id,
                message.text,
                author_role=message.author.role,
                media=message.media,
                language=message.language,
            )
            # What is scored is what is forwarded: normalised, format characters removed.
            message = message.model_copy(update={"text": normalise_text(message.text)})
            result = hold_flagged(result, message.flags)
            if result.decision is Decision.REJECT and message.author.role not in AUTHORITIES:
                if message.author.verified:
                    result = await self.strike(message, result)
                else:  # the address may be someone else's: no strike against whoever was named
                    await self.audit.record(
                        message.id, "strike", {"counted": False, "why": "sender not verified"}
                    )
                    log.info("strike_not_counted", why="sender not verified")
            await self.publish(ModeratedMessage(message=message, moderation=result))
            await self.audit.record(message.id, MODERATION, result.model_dump(mode="json"))
            log.info("moderated", decision=result.decision, reasons=[r.code for r in result.reasons])

    async def strike(self, message: InboundMessage, result: ModerationResult) -> ModerationResult:
        """Count the rejection against its author: warn, or propose removal to the admin."""
        count = await self.strikes.record(
            message.municipality,
            message.author.pseudonym,
            message.id,
            message.group_id,
            message.received_at,
            self.policy.strikes,
        )
        update: dict[str, object] = {"strikes": count}
        match outcome(count, self.policy.strikes):
            case StrikeOutcome.WARNING:
                warning = line("strike_warning", message.language or "nl")
                update["explanation"] = f"{result.explanation} {warning}".strip()
                update["explanation_en"] = f"{result.explanation_en} {line('strike_warning', 'en')}".strip()
            case StrikeOutcome.REMOVAL_PROPOSED:
                await self.propose(
                    RemovalProposal(
                        id=stable_id("rmv", message.municipality, message.author.pseudonym, message.id),
                        municipality=message.municipality,
                        group_id=message.group_id,
                        member=message.author.pseudonym,
                        strikes=count,
                        message_ids=(message.id,),
                        reasons=tuple(r.code for r in result.reasons),
                    )
                )
                log.warning("removal_proposed", strikes=count, group_id=message.group_id)
        return result.model_copy(update=update)

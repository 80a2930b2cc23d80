"""Moderation's handling of one inbound message, apart from Kafka: the rules decide,
a rejection counts as a strike, and the result is handed to ``publish``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from buurtalert.moderation.model import normalise_text
from buurtalert.moderation.policy import Policy
from buurtalert.moderation.rules import (
    Scorer,
    StrikeOutcome,
    decided_by_person,
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
    ReviewAction,
    ReviewDecision,
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
                category=message.category,
            )
            # What is scored is what is forwarded: normalised, format characters removed, in the
            # language moderation read it in (the one replies to its author are written in).
            message = message.model_copy(
                update={"text": normalise_text(message.text), "language": result.language}
            )
            result = hold_flagged(result, message.flags)
            if result.decision is Decision.REJECT and message.author.role not in AUTHORITIES:
                if _has_strikes(message):
                    result = await self.strike(message, result)
                else:  # the address may be someone else's: no strike against whoever was named
                    await self.audit.record(
                        message.id, "strike", {"counted": False, "why": "sender not verified"}
                    )
                    log.info("strike_not_counted", why="sender not verified")
            elif result.decision is Decision.REVIEW and _has_strikes(message):
                # what the moderator sees beside the held message (a held share, not the forwards)
                strikes = await self.strikes.live(
                    message.municipality, message.author.pseudonym, message.received_at, self.policy.strikes
                )
                result = result.model_copy(update={"strikes": strikes})
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
            tuple(r.code for r in result.reasons),
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


def _has_strikes(message: InboundMessage) -> bool:
    """Whether strikes are counted against the message's author: a verified resident (an
    unverified sender's address may be someone else's), whether the machine or a person
    rejected the message."""
    return message.author.verified and message.author.role not in AUTHORITIES


#: The audit stage of a person's decision on a held message or a removal proposal.
HUMAN_DECISION = "moderation_decision"


class Decisions:
    """Applies what a person decided in the review console (``moderation.decisions``):
    moderation stays the only writer of ``messages.approved`` and ``messages.rejected``.
    An approved message goes on like any other (an edited text replaces the text); a
    rejected one is explained to its author and counts as a strike. The audit trail
    records the person, and the original text of an edit.

    One decision per message or proposal: a second, different decision on the same one is
    ignored (the console prevents it; this keeps it so). The same decision delivered again
    is applied again, publishing the same records, which the next stages absorb."""

    def __init__(
        self,
        moderator: Moderator,
        audit: Audit,
        publish: Callable[[ModeratedMessage], Awaitable[None]],
    ) -> None:
        self.moderator = moderator
        self.audit = audit
        self.publish = publish

    async def __call__(self, decision: ReviewDecision) -> None:
        with bound(message_id=decision.subject_id, decision_id=decision.id):
            entry: dict[str, object] = {
                "decision_id": decision.id,
                "action": decision.action.value,
                "actor": decision.actor,
                "actor_role": decision.actor_role.value,
            }
            if decision.reason:
                entry["reason"] = decision.reason
            if decision.action is ReviewAction.APPROVE_EDITED and decision.item is not None:
                entry["original_text"] = decision.item.message.text
                entry["text"] = decision.text
            if decision.agreed_by:
                entry["agreed_by"] = list(decision.agreed_by)
            if not await self.audit.record(decision.subject_id, HUMAN_DECISION, entry, once=True):
                taken = await self.audit.entry(decision.subject_id, HUMAN_DECISION)
                if taken is not None and taken.get("decision_id") != decision.id:
                    log.warning("second_decision_ignored", first=taken.get("decision_id"))
                    return
            outcome = decided_by_person(decision)
            if outcome is None:
                # A removal (agreed by two) or keeping the member: recorded in the audit
                # trail; removing a member from a group is for a later issue to apply.
                log.info("membership_decision", action=decision.action, agreed_by=decision.agreed_by)
                return
            if outcome.moderation.decision is Decision.REJECT and _has_strikes(outcome.message):
                outcome = ModeratedMessage(
                    message=outcome.message,
                    moderation=await self.moderator.strike(outcome.message, outcome.moderation),
                )
            await self.publish(outcome)
            log.info("decided_by_person", action=decision.action, actor=decision.actor)

"""Issue #13: who a sender really is. No feedback nor strikes for a sender the channel
did not verify (anyone can claim an address), and explanations never quote the text."""

from __future__ import annotations

from typing import Any

from buurtalert.channels.handlers import AuthorFeedback
from buurtalert.moderation.handlers import Moderator
from buurtalert.moderation.policy import default_policy
from buurtalert.shared.models import (
    Author,
    Decision,
    Delivery,
    InboundMessage,
    ModeratedMessage,
    ModerationResult,
    ProviderRef,
    Reason,
    SourceChannel,
    utcnow,
)

HATE = "Die vent ziet er buitenlands uit, pak hem aan en sla hem in elkaar"


class FakeAudit:
    def __init__(self) -> None:
        self.entries: list[tuple[str, str, dict[str, Any]]] = []

    async def record(self, message_id: str, stage: str, data: dict[str, Any], *, once: bool = False) -> bool:
        self.entries.append((message_id, stage, data))
        return True


class FakeContacts:
    async def find(self, municipality: str, pseudonym: str) -> tuple[str, str] | None:
        return ("email", "victim@example.test")


class FakeStrikes:
    def __init__(self) -> None:
        self.counted: list[str] = []

    async def record(self, municipality: str, pseudonym: str, message_id: str, *rest: Any) -> int:
        self.counted.append(pseudonym)
        return len(self.counted)


def message(verified: bool, text: str = HATE) -> InboundMessage:
    return InboundMessage(
        id="msg_t",
        provider=ProviderRef(channel=SourceChannel.EMAIL, message_id="x@example.test"),
        municipality="weert-demo",
        group_id="boshoven-noord",
        author=Author(pseudonym="p_claimed", verified=verified),
        text=text,
        sent_at=utcnow(),
        raw_ref="raw_t",
    )


def rejected(verified: bool) -> ModeratedMessage:
    return ModeratedMessage(
        message=message(verified),
        moderation=ModerationResult(
            message_id="msg_t",
            decision=Decision.REJECT,
            reasons=(Reason(code="vigilantism", score=0.9),),
            policy_version="t",
            explanation="Je bericht roept op tot eigenrichting.",
            explanation_en="Your message calls for taking the law into your own hands.",
        ),
    )


async def test_no_feedback_to_an_unverified_sender_and_the_audit_says_why() -> None:
    """Attack: a rejected message 'from' someone else's address made us write to them."""
    sent: list[Delivery] = []

    async def deliver(delivery: Delivery) -> None:
        sent.append(delivery)

    audit = FakeAudit()
    feedback = AuthorFeedback(FakeContacts(), audit, {"email": deliver})  # type: ignore[arg-type]
    await feedback(rejected(verified=False))
    assert sent == []
    assert audit.entries == [("msg_t", "author_feedback", {"sent": False, "why": "sender not verified"})]
    await feedback(rejected(verified=True))
    [answer] = sent
    assert "eigenrichting" in answer.text and "buitenlands" not in answer.text  # never quotes the text


async def test_no_strike_against_an_unverified_sender() -> None:
    """Attack: strikes accrued against whoever was impersonated."""
    published: list[ModeratedMessage] = []

    async def publish(item: ModeratedMessage) -> None:
        published.append(item)

    async def propose(_: object) -> None:
        raise AssertionError("no removal proposal")

    strikes, audit = FakeStrikes(), FakeAudit()
    moderator = Moderator(default_policy("NL"), strikes, audit, publish, propose)  # type: ignore[arg-type]
    await moderator(message(verified=False))
    assert published[-1].moderation.decision is Decision.REJECT
    assert strikes.counted == [] and published[-1].moderation.strikes is None
    assert ("msg_t", "strike", {"counted": False, "why": "sender not verified"}) in audit.entries
    await moderator(message(verified=True))
    assert strikes.counted == ["p_claimed"]

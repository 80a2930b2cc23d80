"""The review console's pure rules: permissions, claims that expire, versions, four eyes,
deterministic decisions, the lockout, the queue's order and the highlighting of spans."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from buurtalert.moderation.rules import decided_by_person
from buurtalert.review.rules import (
    CLAIM_SECONDS,
    FOUR_EYES,
    LOCKOUT,
    MAX_FAILURES,
    REJECT_REASONS,
    Account,
    Action,
    Claim,
    Item,
    Refusal,
    User,
    after_failure,
    age_minutes,
    agreements,
    clean_edit,
    decision_id,
    filtered,
    highlight,
    holder,
    is_urgent,
    item_for_message,
    item_for_proposal,
    locked,
    may,
    may_claim,
    message_decision,
    new_claim,
    queue_order,
    refusal,
    rejection_explanation,
    same_decision,
    token_hash,
)
from buurtalert.review.texts import STRINGS, text
from buurtalert.shared.models import (
    Author,
    Decision,
    InboundMessage,
    ModeratedMessage,
    ModerationResult,
    ProviderRef,
    Reason,
    RemovalProposal,
    ReviewAction,
    Role,
    SourceChannel,
    Span,
)

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
ALICE = User("alice", "weert-demo", Role.MODERATOR)
BOB = User("bob", "weert-demo", Role.MODERATOR)
AGENT = User("agent", "weert-demo", Role.WIJKAGENT)
ADMIN = User("admin", "weert-demo", Role.ADMIN)
COORDINATOR = User("coord", "weert-demo", Role.COORDINATOR)
ELSEWHERE = User("eve", "bocholt-demo", Role.ADMIN)


def held(
    text: str = "Man met 06-12345678 probeert deuren",
    *,
    reasons: tuple[Reason, ...] = (
        Reason(code="privacy", score=0.7, spans=(Span(start=8, end=19, text="phone"),)),
    ),
    urgent: bool = False,
    role: Role = Role.RESIDENT,
    category: str | None = None,
    received: datetime = NOW,
    message_id: str = "msg_1",
    language: str | None = "nl",
) -> ModeratedMessage:
    message = InboundMessage(
        id=message_id,
        provider=ProviderRef(channel=SourceChannel.WHATSAPP, message_id=message_id),
        municipality="weert-demo",
        group_id="boshoven-noord",
        author=Author(pseudonym="p_author", role=role),
        text=text,
        category=category,
        language=language,
        sent_at=received,
        received_at=received,
        raw_ref="raw_1",
    )
    result = ModerationResult(
        message_id=message_id,
        decision=Decision.REVIEW,
        reasons=reasons,
        explanation="Een moderator kijkt naar je bericht.",
        urgent=urgent,
        policy_version="nl-test",
    )
    return ModeratedMessage(message=message, moderation=result)


def proposal() -> RemovalProposal:
    return RemovalProposal(
        id="rmv_1",
        municipality="weert-demo",
        group_id="boshoven-noord",
        member="p_member",
        strikes=3,
        message_ids=("msg_9",),
        reasons=("off_topic",),
        proposed_at=NOW,
    )


# --- permissions ----------------------------------------------------------------------


def test_every_role_sees_and_decides_held_messages_but_only_some_may_edit() -> None:
    for role in (Role.MODERATOR, Role.COORDINATOR, Role.WIJKAGENT, Role.ADMIN):
        assert may(role, Action.VIEW, "message") and may(role, Action.APPROVE, "message")
        assert may(role, Action.REJECT, "message")
    assert may(Role.MODERATOR, Action.EDIT, "message")
    assert not may(Role.WIJKAGENT, Action.EDIT, "message")


def test_removal_proposals_are_for_admins_and_coordinators_only() -> None:
    assert may(Role.ADMIN, Action.AGREE, "proposal") and may(Role.COORDINATOR, Action.AGREE, "proposal")
    assert not may(Role.MODERATOR, Action.AGREE, "proposal")
    assert not may(Role.WIJKAGENT, Action.VIEW, "proposal")
    assert not may(Role.ADMIN, Action.APPROVE, "proposal")


def test_another_municipalitys_item_does_not_exist_for_the_user() -> None:
    item = item_for_message(held())
    assert refusal(item, ELSEWHERE, Action.VIEW, None, NOW) is Refusal.NOT_FOUND
    assert refusal(item, ELSEWHERE, Action.APPROVE, 0, NOW) is Refusal.NOT_FOUND
    assert refusal(None, ALICE, Action.VIEW, None, NOW) is Refusal.NOT_FOUND
    assert refusal(item, ALICE, Action.VIEW, None, NOW) is None


def test_a_proposal_is_not_found_by_a_role_that_may_not_see_it() -> None:
    item = item_for_proposal(proposal())
    assert refusal(item, ALICE, Action.VIEW, None, NOW) is Refusal.NOT_FOUND
    assert refusal(item, ADMIN, Action.VIEW, None, NOW) is None
    assert Refusal.NOT_FOUND.status == 404 and Refusal.FORBIDDEN.status == 403


def test_a_wijkagent_may_approve_but_not_edit() -> None:
    item = item_for_message(held())
    assert refusal(item, AGENT, Action.APPROVE, 0, NOW) is None
    assert refusal(item, AGENT, Action.EDIT, 0, NOW) is Refusal.FORBIDDEN


# --- claims ---------------------------------------------------------------------------


def test_a_claim_holds_for_a_few_minutes_then_expires() -> None:
    claim = new_claim("alice", NOW)
    assert claim.until == NOW + timedelta(seconds=CLAIM_SECONDS)
    assert 60 <= CLAIM_SECONDS <= 600
    assert holder(claim, NOW) == "alice"
    assert holder(claim, NOW + timedelta(seconds=CLAIM_SECONDS - 1)) == "alice"
    assert holder(claim, NOW + timedelta(seconds=CLAIM_SECONDS)) is None
    assert holder(None, NOW) is None


def test_only_the_holder_renews_a_live_claim_and_anyone_takes_an_expired_one() -> None:
    claim = new_claim("alice", NOW)
    assert may_claim(claim, "alice", NOW)
    assert not may_claim(claim, "bob", NOW)
    assert may_claim(claim, "bob", NOW + timedelta(seconds=CLAIM_SECONDS + 1))
    assert may_claim(None, "bob", NOW)


def test_a_claimed_item_cannot_be_decided_by_another() -> None:
    item = item_for_message(held()).model_copy(update={"claim": new_claim("alice", NOW)})
    assert refusal(item, BOB, Action.APPROVE, 0, NOW) is Refusal.CLAIMED
    assert refusal(item, BOB, Action.CLAIM, None, NOW) is Refusal.CLAIMED
    assert refusal(item, ALICE, Action.APPROVE, 0, NOW) is None
    later = NOW + timedelta(seconds=CLAIM_SECONDS + 1)
    assert refusal(item, BOB, Action.APPROVE, 0, later) is None
    assert Refusal.CLAIMED.status == 409


# --- versions and decisions -----------------------------------------------------------


def test_a_stale_version_is_refused_with_409() -> None:
    item = item_for_message(held()).model_copy(update={"version": 3})
    assert refusal(item, ALICE, Action.APPROVE, 2, NOW) is Refusal.STALE
    assert refusal(item, ALICE, Action.APPROVE, None, NOW) is Refusal.STALE
    assert refusal(item, ALICE, Action.APPROVE, 3, NOW) is None
    assert Refusal.STALE.status == 409


def test_a_decided_item_refuses_further_actions() -> None:
    item = item_for_message(held()).model_copy(update={"state": "decided", "version": 1})
    assert refusal(item, ALICE, Action.REJECT, 0, NOW) is Refusal.STALE  # its version moved on
    assert refusal(item, ALICE, Action.REJECT, 1, NOW) is Refusal.DECIDED
    assert refusal(item, ALICE, Action.CLAIM, None, NOW) is Refusal.DECIDED
    assert refusal(item, ALICE, Action.VIEW, None, NOW) is None


def test_decision_ids_are_deterministic_per_item_and_version() -> None:
    assert decision_id("msg_1", 0) == decision_id("msg_1", 0)
    assert decision_id("msg_1", 0) != decision_id("msg_1", 1)
    assert decision_id("msg_1", 0) != decision_id("msg_2", 0)


def test_the_same_submit_twice_is_recognised_as_the_decision_already_taken() -> None:
    item = item_for_message(held())
    decision = message_decision(item, ALICE, ReviewAction.APPROVE, NOW)
    decided = item.model_copy(update={"state": "decided", "version": 1, "decision": decision})
    assert same_decision(decided, ALICE, 0, ReviewAction.APPROVE)
    assert not same_decision(decided, BOB, 0, ReviewAction.APPROVE)
    assert not same_decision(decided, ALICE, 0, ReviewAction.REJECT)
    assert not same_decision(decided, ALICE, 1, ReviewAction.APPROVE)


def test_a_rejection_carries_the_explanation_the_author_will_receive() -> None:
    item = item_for_message(held(language="en"))
    decision = message_decision(item, ALICE, ReviewAction.REJECT, NOW, reason="privacy")
    assert decision.explanation == decision.explanation_en
    assert "personal data" in decision.explanation
    nl, en = rejection_explanation("rumour", None)
    assert "moderator" in nl and "rumours" in en
    for reason in REJECT_REASONS:
        assert all(rejection_explanation(reason, language) for language in ("nl", "en"))


def test_an_edit_is_only_an_edit_when_the_text_changed() -> None:
    assert clean_edit("Man bij de deur", "Man bij de deur") is None
    assert clean_edit("Man bij de deur", "  Man bij de deur \r\n") is None
    assert clean_edit("Man bij de deur", "") is None
    assert clean_edit("Man bij de deur", None) is None
    assert clean_edit("Man bij de deur 0612345678", "Man bij de deur\r\nlinks") == "Man bij de deur\nlinks"


def test_moderation_forwards_an_approved_edit_and_rejects_with_the_chosen_explanation() -> None:
    item = item_for_message(held())
    edited = message_decision(item, ALICE, ReviewAction.APPROVE_EDITED, NOW, text="Man probeert deuren")
    forwarded = decided_by_person(edited)
    assert forwarded is not None
    assert forwarded.moderation.decision is Decision.FORWARD
    assert forwarded.message.text == "Man probeert deuren"
    assert forwarded.moderation.reviewer == "alice" and forwarded.moderation.explanation == ""
    rejected = decided_by_person(message_decision(item, BOB, ReviewAction.REJECT, NOW, reason="privacy"))
    assert rejected is not None and rejected.moderation.decision is Decision.REJECT
    assert rejected.moderation.explanation.startswith("Een moderator heeft je bericht niet doorgestuurd")
    assert "moderator:privacy" in {r.code for r in rejected.moderation.reasons}
    assert rejected.message.text == held().message.text


# --- four eyes ------------------------------------------------------------------------


def test_a_removal_needs_two_different_people() -> None:
    assert FOUR_EYES == 2
    once, done = agreements((), "admin")
    assert once == ("admin",) and not done
    again, done = agreements(once, "admin")
    assert again == ("admin",) and not done
    both, done = agreements(once, "coord")
    assert both == ("admin", "coord") and done


def test_agreeing_needs_the_current_version() -> None:
    item = item_for_proposal(proposal()).model_copy(update={"version": 1, "agreed_by": ("admin",)})
    assert refusal(item, COORDINATOR, Action.AGREE, 0, NOW) is Refusal.STALE
    assert refusal(item, COORDINATOR, Action.AGREE, 1, NOW) is None


# --- access ---------------------------------------------------------------------------


def test_five_failures_in_a_row_lock_the_account() -> None:
    failures, until = 0, None
    for _ in range(MAX_FAILURES - 1):
        failures, until = after_failure(failures, NOW)
        assert until is None
    failures, until = after_failure(failures, NOW)
    assert failures == MAX_FAILURES and until == NOW + LOCKOUT
    account = Account(name="alice", municipality="weert-demo", role=Role.MODERATOR, locked_until=until)
    assert locked(account, NOW)
    assert not locked(account, NOW + LOCKOUT)


def test_account_names_and_municipalities_are_checked() -> None:
    with pytest.raises(ValueError):
        Account(name="alice; drop", municipality="weert-demo", role=Role.MODERATOR)
    with pytest.raises(ValueError):
        Account(name="alice", municipality="Weert Demo", role=Role.MODERATOR)


def test_session_tokens_are_stored_as_hashes() -> None:
    assert token_hash("secret") != "secret" and len(token_hash("secret")) == 64
    assert token_hash("secret") == token_hash("secret")


# --- the queue ------------------------------------------------------------------------


def test_urgent_items_come_first_then_the_oldest() -> None:
    old = item_for_message(held(message_id="old", received=NOW - timedelta(minutes=30)))
    new = item_for_message(held(message_id="new", received=NOW - timedelta(minutes=5)))
    urgent = item_for_message(held(message_id="urgent", urgent=True, received=NOW))
    assert [i.id for i in queue_order([new, urgent, old])] == ["urgent", "old", "new"]


def test_what_makes_an_item_urgent() -> None:
    assert is_urgent(held(urgent=True))
    assert is_urgent(held(category="missing_person"))
    assert is_urgent(held(role=Role.WIJKAGENT))
    assert is_urgent(held(reasons=(Reason(code="missing_person", score=0.7),)))
    assert not is_urgent(held())


def test_filters_by_reason_and_urgency() -> None:
    privacy = item_for_message(held(message_id="a"))
    rumour = item_for_message(held(message_id="b", reasons=(Reason(code="rumour", score=0.7),), urgent=True))
    assert [i.id for i in filtered([privacy, rumour], reason="rumour", urgent_only=False)] == ["b"]
    assert [i.id for i in filtered([privacy, rumour], reason=None, urgent_only=True)] == ["b"]
    assert len(filtered([privacy, rumour], reason=None, urgent_only=False)) == 2


def test_age_in_whole_minutes() -> None:
    assert age_minutes(NOW - timedelta(seconds=119), NOW) == 1
    assert age_minutes(NOW + timedelta(seconds=5), NOW) == 0


def test_highlight_marks_each_reasons_spans() -> None:
    text = "Man met 06-12345678 probeert deuren"
    segments = highlight(text, held().moderation.reasons)
    assert [(s.text, s.reasons) for s in segments] == [
        ("Man met ", ()),
        ("06-12345678", ("privacy",)),
        (" probeert deuren", ()),
    ]


def test_highlight_handles_overlaps_and_ignores_spans_outside_the_text() -> None:
    reasons = (
        Reason(
            code="privacy",
            score=0.7,
            spans=(Span(start=0, end=6, text="x"), Span(start=0, end=0, text="photo")),
        ),
        Reason(
            code="rumour", score=0.7, spans=(Span(start=3, end=9, text="y"), Span(start=5, end=99, text="z"))
        ),
    )
    segments = highlight("abcdefghij", reasons)
    assert [(s.text, s.reasons) for s in segments] == [
        ("abc", ("privacy",)),
        ("def", ("privacy", "rumour")),
        ("ghi", ("rumour",)),
        ("j", ()),
    ]


@given(
    st.text(max_size=40),
    st.lists(st.tuples(st.integers(0, 45), st.integers(0, 45), st.sampled_from(["a", "b"])), max_size=6),
)
def test_highlight_always_gives_back_the_text(text: str, spans: list[tuple[int, int, str]]) -> None:
    reasons = tuple(
        Reason(code=code, score=0.5, spans=(Span(start=s, end=e, text=""),)) for s, e, code in spans
    )
    assert "".join(s.text for s in highlight(text, reasons)) == text


# --- the interface's words ----------------------------------------------------------------


def test_every_string_is_there_in_dutch_and_english() -> None:
    assert all(set(versions) == {"nl", "en"} and all(versions.values()) for versions in STRINGS.values())
    assert text("approve", "nl") == "Goedkeuren" and text("approve", "en") == "Approve"
    assert text("approve", "fr") == "Goedkeuren"
    assert text("reason.something_new", "en") == "something_new"


def test_an_item_keeps_what_it_was_made_from() -> None:
    item = item_for_message(held())
    assert isinstance(item, Item) and item.text.startswith("Man met")
    assert item.reasons == ("privacy",) and item.version == 0 and item.state == "open"
    claim = Claim(by="alice", until=NOW)
    assert item.model_copy(update={"claim": claim}).claim == claim

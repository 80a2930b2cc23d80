"""The review console's pure rules: permissions, claims that expire, versions, four eyes,
deterministic decisions, the lockout, the queue's order and the highlighting of spans."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from buurtalert.directory.model import load_directory
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
    QueueFilter,
    Refusal,
    Scope,
    User,
    after_failure,
    age_minutes,
    agreements,
    clean_edit,
    decision_id,
    district_of,
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
    scope_of,
    scope_problems,
    token_hash,
    unknown_scope,
    user_of,
    wijkagent_order,
    within_scope,
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
    TargetArea,
)
from tests.conftest import DEMO

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
ALICE = User("alice", "weert-demo", Role.MODERATOR)
BOB = User("bob", "weert-demo", Role.MODERATOR)
AGENT = User("agent", "weert-demo", Role.WIJKAGENT, districts=("boshoven",))
ADMIN = User("admin", "weert-demo", Role.ADMIN)
COORDINATOR = User("coord", "weert-demo", Role.COORDINATOR, groups=("boshoven-noord",))
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
    item = item_for_message(held(), "boshoven")
    assert refusal(item, AGENT, Action.APPROVE, 0, NOW) is None
    assert refusal(item, AGENT, Action.EDIT, 0, NOW) is Refusal.FORBIDDEN


# --- scope ----------------------------------------------------------------------------


def test_moderators_and_admins_act_on_the_whole_municipality() -> None:
    """Every group's and district's items are within a moderator's and an admin's scope,
    and their lists are read for the whole municipality."""
    for user in (ALICE, ADMIN):
        assert scope_of(user) == Scope(None)
        assert within_scope(user, "centrum-west", "centrum") and within_scope(user, None, None)
        assert refusal(item_for_proposal(proposal(), "boshoven"), ADMIN, Action.AGREE, 0, NOW) is None


def test_a_coordinator_acts_only_on_their_groups() -> None:
    """A coordinator sees and decides a held message or a removal of their own group; another
    group's (or one without a group) does not exist for them, as another municipality's."""
    assert scope_of(COORDINATOR) == Scope("group_id", ("boshoven-noord",))
    own = item_for_message(held(), "boshoven")
    other = own.model_copy(update={"group_id": "boshoven-zuid"})
    assert refusal(own, COORDINATOR, Action.APPROVE, 0, NOW) is None
    for action in (Action.VIEW, Action.CLAIM, Action.APPROVE, Action.REJECT, Action.ESCALATE):
        assert refusal(other, COORDINATOR, action, 0, NOW) is Refusal.NOT_FOUND
    assert refusal(own.model_copy(update={"group_id": None}), COORDINATOR, Action.VIEW, None, NOW) is (
        Refusal.NOT_FOUND
    )
    removal = item_for_proposal(proposal(), "boshoven")
    assert refusal(removal, COORDINATOR, Action.AGREE, 0, NOW) is None
    elsewhere = removal.model_copy(update={"group_id": "centrum-west", "district": "centrum"})
    assert refusal(elsewhere, COORDINATOR, Action.AGREE, 0, NOW) is Refusal.NOT_FOUND
    assert refusal(elsewhere, COORDINATOR, Action.DISMISS, 0, NOW) is Refusal.NOT_FOUND


def test_a_wijkagent_acts_only_in_their_districts() -> None:
    """A wijkagent sees an item of their district, whatever its group; one of another
    district, or of no known district (queued before districts were recorded), is not found."""
    assert scope_of(AGENT) == Scope("district", ("boshoven",))
    own = item_for_message(held(), "boshoven")
    assert refusal(own, AGENT, Action.REVEAL, None, NOW) is None
    regie = own.model_copy(update={"group_id": "boshoven-regie"})
    assert refusal(regie, AGENT, Action.VIEW, None, NOW) is None
    for district in ("centrum", None):
        other = own.model_copy(update={"district": district})
        assert refusal(other, AGENT, Action.VIEW, None, NOW) is Refusal.NOT_FOUND
        assert refusal(other, AGENT, Action.REVEAL, None, NOW) is Refusal.NOT_FOUND
        assert refusal(other, AGENT, Action.APPROVE, 0, NOW) is Refusal.NOT_FOUND


def test_a_scoped_role_without_a_scope_sees_nothing_scoped() -> None:
    """An account stored before scopes existed loads with none: its coordinator or
    wijkagent sees no item (and its list reads nothing), rather than the whole municipality."""
    bare_coordinator = User("old", "weert-demo", Role.COORDINATOR)
    bare_agent = User("old", "weert-demo", Role.WIJKAGENT)
    item = item_for_message(held(), "boshoven")
    assert scope_of(bare_coordinator) == Scope("group_id", ())
    assert scope_of(bare_agent) == Scope("district", ())
    assert refusal(item, bare_coordinator, Action.VIEW, None, NOW) is Refusal.NOT_FOUND
    assert refusal(item, bare_agent, Action.VIEW, None, NOW) is Refusal.NOT_FOUND
    old = Account.model_validate({"name": "old", "municipality": "weert-demo", "role": "coordinator"})
    assert user_of(old) == bare_coordinator


def test_an_accounts_scope_fits_its_role() -> None:
    """A coordinator needs groups, a wijkagent districts; neither has the other's, and a
    moderator or admin has none (they are municipality-wide)."""
    assert scope_problems(Role.COORDINATOR, ("boshoven-noord",), ()) == []
    assert scope_problems(Role.WIJKAGENT, (), ("boshoven",)) == []
    assert scope_problems(Role.MODERATOR, (), ()) == [] and scope_problems(Role.ADMIN, (), ()) == []
    assert scope_problems(Role.COORDINATOR, (), ()) == ["a coordinator needs --groups"]
    assert scope_problems(Role.WIJKAGENT, (), ()) == ["a wijkagent needs --districts"]
    assert scope_problems(Role.COORDINATOR, ("g",), ("d",)) == ["a coordinator has no districts"]
    assert scope_problems(Role.ADMIN, ("g",), ()) == ["an admin has no groups (municipality-wide)"]


def test_a_scope_names_only_what_the_directory_knows() -> None:
    directory = load_directory(DEMO / "weert" / "directory.yaml")
    assert unknown_scope(directory, ("boshoven-noord", "centrum-west"), ()) == []
    assert unknown_scope(directory, (), ("boshoven", "leuken")) == []
    assert unknown_scope(directory, ("boshoven-noord", "nowhere"), ()) == [
        "groups unknown to the directory of weert-demo: nowhere"
    ]
    assert unknown_scope(directory, (), ("atlantis",)) == [
        "districts unknown to the directory of weert-demo: atlantis"
    ]
    assert unknown_scope(None, ("boshoven-noord",), ()) == [
        "no directory for the municipality: load it first (buurtalert directory load)"
    ]
    assert unknown_scope(None, (), ()) == []


def test_an_items_district_is_its_groups() -> None:
    """Moderation's records carry the group; the item's district comes from the directory;
    an authority alert without a group takes the one district its target names."""
    directory = load_directory(DEMO / "weert" / "directory.yaml")
    message = held().message
    assert district_of(directory, "centrum-west", message) == "centrum"
    assert district_of(directory, "boshoven-regie", None) == "boshoven"
    assert district_of(directory, "unknown-group", message) is None
    assert district_of(None, "boshoven-noord", message) is None
    alert = message.model_copy(update={"group_id": None, "target": TargetArea(districts=("leuken",))})
    assert district_of(directory, None, alert) == "leuken"
    wide = message.model_copy(update={"target": TargetArea(districts=("leuken", "centrum"))})
    assert district_of(directory, None, wide) is None


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


def test_filters_by_reason_group_age_and_urgency() -> None:
    privacy = item_for_message(held(message_id="a", received=NOW - timedelta(minutes=90)))
    rumour = item_for_message(held(message_id="b", reasons=(Reason(code="rumour", score=0.7),), urgent=True))
    elsewhere = item_for_message(held(message_id="c")).model_copy(update={"group_id": "centrum-west"})
    items = [privacy, rumour, elsewhere]

    def ids(**params: str) -> list[str]:
        return [i.id for i in filtered(items, QueueFilter.of(params), NOW)]

    assert ids(reason="rumour") == ["b"]
    assert ids(urgent="1") == ["b"]
    assert ids(group="centrum-west") == ["c"]
    assert ids(age="60") == ["a"]  # waiting an hour or more
    assert ids() == ["a", "b", "c"]
    assert ids(age="7", group="", urgent="yes") == ["a", "b", "c"]  # not understood: no filter


def test_newest_first_keeps_urgent_on_top_and_a_wijkagents_escalated_above_all() -> None:
    old = item_for_message(held(message_id="old", received=NOW - timedelta(minutes=30)))
    new = item_for_message(held(message_id="new", received=NOW - timedelta(minutes=5)))
    urgent = item_for_message(held(message_id="urgent", urgent=True, received=NOW - timedelta(minutes=40)))
    escalated = old.model_copy(update={"id": "escalated", "escalated_by": "alice"})
    items = [new, urgent, old, escalated]
    newest = QueueFilter.of({"sort": "newest"})
    assert newest.newest_first
    everyone = filtered(queue_order(items, newest_first=newest.newest_first), newest, NOW)
    assert [i.id for i in everyone] == ["urgent", "new", "escalated", "old"]
    wijkagent = filtered(wijkagent_order(items, newest_first=True), newest, NOW)
    assert [i.id for i in wijkagent] == ["escalated", "urgent", "new", "old"]
    assert [i.id for i in wijkagent_order(items)] == ["escalated", "urgent", "old", "new"]


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

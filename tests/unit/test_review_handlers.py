"""The review console's handling without a broker or database: stores in memory with the
same compare-and-set semantics, a list for the decisions published."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from buurtalert.review.handlers import Changes, Console, Queue
from buurtalert.review.rules import Claim, Item, Refusal, Scope, User
from buurtalert.review.stores import from_document, to_document
from buurtalert.shared.models import ReviewAction, ReviewDecision, Role
from tests.review_support import held_message, removal_proposal

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
ALICE = User("alice", "weert-demo", Role.MODERATOR)
BOB = User("bob", "weert-demo", Role.MODERATOR)
AGENT = User("agent", "weert-demo", Role.WIJKAGENT, districts=("boshoven",))
ANNA = User("anna", "weert-demo", Role.ADMIN)
CARL = User("carl", "weert-demo", Role.COORDINATOR, groups=("boshoven-noord",))


class MemoryItems:
    """``Items`` in memory: documents as the real store writes them, the same conditions."""

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}

    async def add(self, item: Item) -> bool:
        if item.id in self.docs:
            return False
        self.docs[item.id] = to_document(item)
        return True

    async def get(self, item_id: str) -> Item | None:
        doc = self.docs.get(item_id)
        return from_document(doc) if doc else None

    async def open_items(self, municipality: str, scope: Scope | None = None) -> list[Item]:
        field, values = (scope.field, scope.values) if scope is not None else (None, ())
        return [
            from_document(d)
            for d in self.docs.values()
            if d["municipality"] == municipality
            and d["state"] == "open"
            and (field is None or d.get(field) in values)
        ]

    def _current(self, item: Item) -> dict[str, Any] | None:
        doc = self.docs.get(item.id)
        return doc if doc and doc["version"] == item.version and doc["state"] == "open" else None

    async def claim(self, item: Item, claim: Claim) -> bool:
        doc = self._current(item)
        if doc is None or doc["claim"] != (item.claim.model_dump() if item.claim else None):
            return False
        doc["claim"] = claim.model_dump()
        return True

    async def release(self, item_id: str, user: str) -> None:
        doc = self.docs[item_id]
        if doc["claim"] and doc["claim"]["by"] == user:
            doc["claim"] = None

    async def agree(self, item: Item, agreed_by: tuple[str, ...]) -> bool:
        doc = self._current(item)
        if doc is None:
            return False
        doc.update(agreed_by=list(agreed_by), version=doc["version"] + 1)
        return True

    async def decide(self, item: Item, decision: ReviewDecision, publish_after: Any = None) -> bool:
        doc = self._current(item)
        if doc is None:
            return False
        doc.update(
            state="decided",
            decision=decision.model_dump_json(),
            published=False,
            claim=None,
            version=doc["version"] + 1,
        )
        return True

    async def published(self, item_id: str) -> None:
        self.docs[item_id]["published"] = True

    async def sending(self, decision: ReviewDecision, now: Any) -> bool:
        return self.docs[decision.subject_id]["state"] == "decided"

    async def unpublished(self, now: Any = None) -> list[ReviewDecision]:
        return [
            ReviewDecision.model_validate_json(d["decision"])
            for d in self.docs.values()
            if d["state"] == "decided" and not d["published"]
        ]


async def district_of(municipality: str, group_id: str | None, message: object) -> str | None:
    """The demo directory's districts of the groups these tests use."""
    return {"boshoven-noord": "boshoven", "centrum-west": "centrum"}.get(group_id or "")


class MemoryAudit:
    def __init__(self) -> None:
        self.entries: list[tuple[str, str, dict[str, Any]]] = []

    async def record(self, message_id: str, stage: str, data: dict[str, Any], *, once: bool = False) -> bool:
        self.entries.append((message_id, stage, data))
        return True

    async def history(self, message_id: str) -> list[dict[str, Any]]:
        return [{"stage": s, "data": d} for m, s, d in self.entries if m == message_id]


class Setup:
    def __init__(self) -> None:
        self.items = MemoryItems()
        self.audit = MemoryAudit()
        self.published: list[ReviewDecision] = []
        self.broker_down = False
        self.now = NOW

        async def publish(decision: ReviewDecision) -> None:
            if self.broker_down:
                raise ConnectionError("broker away")
            self.published.append(decision)

        changes = Changes()
        self.console = Console(self.items, self.audit, changes, publish, clock=lambda: self.now)  # type: ignore[arg-type]
        self.queue = Queue(self.items, self.audit, changes, district_of=district_of)  # type: ignore[arg-type]

    def stages(self, item_id: str) -> list[tuple[str, str | None]]:
        return [(s, d.get("actor")) for m, s, d in self.audit.entries if m == item_id]


@pytest.fixture
async def setup() -> Setup:
    made = Setup()
    await made.queue.held(held_message("msg_1", received_at=NOW - timedelta(minutes=3)))
    await made.queue.held(held_message("msg_1"))  # delivered again: queued once
    await made.queue.proposed(removal_proposal("rmv_1"))
    return made


async def test_a_record_is_queued_once_and_seen_by_its_municipality_only(setup: Setup) -> None:
    assert [i.id for i in await setup.console.queue(ALICE)] == ["msg_1"]  # moderators see no proposals
    assert [i.id for i in await setup.console.queue(ANNA)] == ["msg_1", "rmv_1"]
    assert await setup.console.queue(User("eve", "bocholt-demo", Role.ADMIN)) == []
    assert setup.stages("msg_1") == [("review.queued", None)]


async def test_viewing_claims_and_is_audited_and_another_sees_the_holder(setup: Setup) -> None:
    seen = await setup.console.view(ALICE, "msg_1")
    assert seen.item is not None and seen.item.claim is not None and seen.item.claim.by == "alice"
    other = await setup.console.view(BOB, "msg_1")
    assert other.item is not None and other.item.claim is not None and other.item.claim.by == "alice"
    assert setup.stages("msg_1")[1:] == [
        ("review.view", "alice"),
        ("review.claim", "alice"),
        ("review.view", "bob"),
    ]
    refused = await setup.console.approve(BOB, "msg_1", 0, None)
    assert refused.refused is Refusal.CLAIMED and refused.detail == "alice"
    setup.now += timedelta(minutes=6)  # alice's page is closed: her claim runs out
    assert (await setup.console.claim(BOB, "msg_1")).ok


async def test_deciding_twice_publishes_once(setup: Setup) -> None:
    first = await setup.console.approve(ALICE, "msg_1", 0, None)
    again = await setup.console.approve(ALICE, "msg_1", 0, None)
    assert first.decision is not None and again.repeated and again.decision == first.decision
    assert [d.action for d in setup.published] == [ReviewAction.APPROVE]
    stale = await setup.console.reject(BOB, "msg_1", 0, "privacy")
    assert stale.refused is Refusal.STALE and len(setup.published) == 1


async def test_an_edit_keeps_the_original_in_the_audit_trail_and_a_wijkagent_may_not_edit(
    setup: Setup,
) -> None:
    refused = await setup.console.approve(AGENT, "msg_1", 0, "Andere tekst")
    assert refused.refused is Refusal.FORBIDDEN
    unchanged = await setup.console.approve(AGENT, "msg_1", 0, held_message("msg_1").message.text + "\r\n")
    assert unchanged.decision is not None and unchanged.decision.action is ReviewAction.APPROVE
    setup2 = Setup()
    await setup2.queue.held(held_message("msg_2"))
    edited = await setup2.console.approve(ALICE, "msg_2", 0, "Verdachte man belt aan")
    assert edited.decision is not None and edited.decision.text == "Verdachte man belt aan"
    [(_, _, data)] = [e for e in setup2.audit.entries if e[1] == "review.approve_edited"]
    assert data["original_text"].endswith("06-12345678") and data["actor"] == "alice"


async def test_an_unknown_reason_is_refused_and_a_known_one_explained(setup: Setup) -> None:
    assert (await setup.console.reject(ALICE, "msg_1", 0, "because")).refused is Refusal.INVALID
    rejected = await setup.console.reject(ALICE, "msg_1", 0, "discrimination")
    assert rejected.decision is not None and "afkomst of huidskleur" in rejected.decision.explanation


async def test_a_decision_the_broker_did_not_take_is_sent_again(setup: Setup) -> None:
    setup.broker_down = True
    outcome = await setup.console.approve(ALICE, "msg_1", 0, None)
    assert outcome.decision is not None and setup.published == []
    assert await setup.console.send_unpublished() == 0
    setup.broker_down = False
    assert await setup.console.send_unpublished() == 1
    assert await setup.console.send_unpublished() == 0
    assert [d.id for d in setup.published] == [outcome.decision.id]


async def test_four_eyes_on_a_removal(setup: Setup) -> None:
    first = await setup.console.agree(ANNA, "rmv_1", 0)
    assert (
        first.ok and first.decision is None and first.item is not None and first.item.agreed_by == ("anna",)
    )
    await setup.console.release(ANNA, "rmv_1")
    assert (await setup.console.agree(ANNA, "rmv_1", 1)).repeated  # agreeing twice counts once
    assert setup.published == []
    assert (await setup.console.agree(ALICE, "rmv_1", 1)).refused is Refusal.NOT_FOUND
    second = await setup.console.agree(CARL, "rmv_1", 1)
    assert second.decision is not None and second.decision.action is ReviewAction.REMOVE_MEMBER
    assert second.decision.agreed_by == ("anna", "carl")
    assert [d.action for d in setup.published] == [ReviewAction.REMOVE_MEMBER]


async def test_one_admin_may_keep_the_member(setup: Setup) -> None:
    kept = await setup.console.dismiss(ANNA, "rmv_1", 0)
    assert kept.decision is not None and kept.decision.action is ReviewAction.KEEP_MEMBER
    assert (await setup.console.agree(CARL, "rmv_1", 1)).refused is Refusal.DECIDED


async def test_a_scoped_queue_holds_only_the_users_groups_or_districts(setup: Setup) -> None:
    """Items are queued with their group's district; a coordinator's queue holds their
    groups' messages and removals, a wijkagent's their districts' messages; the others'
    items are not found for them, by id as in the list."""
    await setup.queue.held(held_message("msg_centrum", group_id="centrum-west"))
    cora = User("cora", "weert-demo", Role.COORDINATOR, groups=("centrum-west",))
    wout = User("wout", "weert-demo", Role.WIJKAGENT, districts=("centrum",))
    assert (await setup.items.get("msg_centrum")).district == "centrum"  # type: ignore[union-attr]
    assert [i.id for i in await setup.console.queue(CARL)] == ["msg_1", "rmv_1"]
    assert [i.id for i in await setup.console.queue(cora)] == ["msg_centrum"]
    assert [i.id for i in await setup.console.queue(AGENT)] == ["msg_1"]
    assert [i.id for i in await setup.console.queue(wout)] == ["msg_centrum"]
    assert (await setup.console.view(cora, "msg_1")).refused is Refusal.NOT_FOUND
    assert (await setup.console.agree(cora, "rmv_1", 0)).refused is Refusal.NOT_FOUND
    assert (await setup.console.approve(wout, "msg_1", 0, None)).refused is Refusal.NOT_FOUND
    assert (await setup.console.approve(wout, "msg_centrum", 0, None)).ok

"""The review console's later actions as a real process against the real broker and
database: the undo window before a forward is published, escalating to the wijkagent,
and the bulk reject of noise."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from buurtalert.shared.topics import MODERATION_DECISIONS
from tests.review_support import ReviewService, held_message
from tests.support import eventually, read_topic

pytestmark = pytest.mark.timeout(240)
UNDO_SECONDS = 3


@pytest.fixture
def municipality_file(municipality_file: Path) -> Path:
    """The test's municipality with an undo window of three seconds."""
    data = yaml.safe_load(municipality_file.read_text())
    data["review"] = {"undo_seconds": UNDO_SECONDS}
    municipality_file.write_text(yaml.safe_dump(data))
    return municipality_file


async def queued(client: httpx.AsyncClient, count: int) -> list[dict[str, Any]]:
    async def found() -> list[dict[str, Any]] | None:
        items: list[dict[str, Any]] = (await client.get("/queue")).json()["items"]
        return items if len(items) == count else None

    return await eventually(found, timeout=30, what=f"{count} items queued")


async def test_a_forward_can_be_undone_until_its_window_has_passed(review: ReviewService) -> None:
    """Approving waits out the undo window: nothing is published meanwhile; only the person
    who decided can undo it, which opens the item again (a new version, claimed by them,
    an urgent one with its deadline back);
    the next decision goes out after its window, once; a forward already out cannot be
    undone (409); a rejection is published at once."""
    await review.hold(held_message("msg_undo", "Vermist: jongen van 8", urgent=True))
    await review.hold(held_message("msg_reject_now"))
    alice, csrf = await review.login("alice")
    bob, bob_csrf = await review.login("bob")
    await queued(alice, 2)

    first = await alice.post("/items/msg_undo/approve", data={"version": "0", "csrf": csrf})
    assert first.status_code == 200 and first.json()["state"] == "decided"
    assert await review.db("review_deadlines", {}) == []
    page = await alice.get("/items/msg_undo", headers={"Accept": "text/html"})
    assert 'id="undo-button"' in page.text
    assert (await bob.post("/items/msg_undo/undo", data={"csrf": bob_csrf})).status_code == 409
    undone = await alice.post("/items/msg_undo/undo", data={"csrf": csrf})
    assert undone.status_code == 200, undone.text
    assert undone.json()["state"] == "open" and undone.json()["version"] == 2
    assert undone.json()["claim"]["by"] == "alice"
    # an urgent item undone has its deadline again (deciding it had ended it)
    assert [d["_id"] for d in await review.db("review_deadlines", {})] == ["msg_undo"]
    rejected = await alice.post(
        "/items/msg_reject_now/reject", data={"version": "0", "reason": "off_topic", "csrf": csrf}
    )
    assert rejected.status_code == 200
    await asyncio.sleep(UNDO_SECONDS + 1)
    published = await read_topic(review.settings, MODERATION_DECISIONS.name, 2, timeout=3)
    assert [d["subject_id"] for d in published] == ["msg_reject_now"]  # the undone forward never went

    again = await alice.post("/items/msg_undo/approve", data={"version": "2", "csrf": csrf})
    assert again.status_code == 200
    decisions = await read_topic(review.settings, MODERATION_DECISIONS.name, 2, timeout=UNDO_SECONDS + 10)
    forward = [d for d in decisions if d["subject_id"] == "msg_undo"]
    assert len(forward) == 1 and forward[0]["version"] == 2 and forward[0]["action"] == "approve"
    assert (await alice.post("/items/msg_undo/undo", data={"csrf": csrf})).status_code == 409
    stages = [e["stage"] for e in await review.db("audit", {"message_id": "msg_undo"})]
    assert stages.count("review.approve") == 2 and stages.count("review.undo") == 1


async def test_a_moderator_escalates_to_the_wijkagent(review: ReviewService) -> None:
    """An escalated item goes on top of the wijkagent's queue (not of everyone's), with who
    escalated it and why; the wijkagent may not escalate; a stale version gets 409."""
    await review.hold(held_message("msg_first"))
    await review.hold(held_message("msg_escalate"))
    bob, bob_csrf = await review.login("bob")
    agent, agent_csrf = await review.login("agent")
    assert [i["id"] for i in await queued(agent, 2)] == ["msg_first", "msg_escalate"]
    assert (
        await agent.post("/items/msg_escalate/escalate", data={"version": "0", "csrf": agent_csrf})
    ).status_code == 403
    stale = await bob.post("/items/msg_escalate/escalate", data={"version": "5", "csrf": bob_csrf})
    assert stale.status_code == 409
    done = await bob.post(
        "/items/msg_escalate/escalate",
        data={"version": "0", "note": "kenteken genoemd, klopt dit?", "csrf": bob_csrf},
    )
    assert done.status_code == 200 and done.json()["version"] == 1
    assert [i["id"] for i in (await agent.get("/queue")).json()["items"]] == ["msg_escalate", "msg_first"]
    assert [i["id"] for i in (await bob.get("/queue")).json()["items"]] == ["msg_first", "msg_escalate"]
    page = await agent.get("/items/msg_escalate", headers={"Accept": "text/html"})
    assert 'id="escalated-notice"' in page.text and "kenteken genoemd, klopt dit?" in page.text
    rows = await agent.get("/queue", headers={"Accept": "text/html"})
    assert "escalated-badge" in rows.text
    entries = await review.db("audit", {"message_id": "msg_escalate", "stage": "review.escalate"})
    assert [(e["data"]["actor"], e["data"]["note"]) for e in entries] == [
        ("bob", "kenteken genoemd, klopt dit?")
    ]


async def test_bulk_reject_of_noise_with_one_reason(review: ReviewService) -> None:
    """Several ticked rows are rejected with one reason, each published as its own
    decision; a row claimed by someone else or at a stale version is refused on its own;
    a bulk reject without items or with an unknown reason is 422."""
    for name in ("msg_noise_1", "msg_noise_2", "msg_noise_3", "msg_held_by_bob"):
        await review.hold(held_message(name, "Wie heeft mijn kat gezien?"))
    alice, csrf = await review.login("alice")
    bob, _ = await review.login("bob")
    await queued(alice, 4)
    await bob.get("/items/msg_held_by_bob")  # bob opens it: his claim
    chosen = ["msg_noise_1:0", "msg_noise_2:0", "msg_noise_3:7", "msg_held_by_bob:0"]
    answer = await alice.post("/queue/reject", data={"items": chosen, "reason": "off_topic", "csrf": csrf})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "rejected": ["msg_noise_1", "msg_noise_2"],
        "refused": {"msg_noise_3": "stale", "msg_held_by_bob": "claimed"},
    }
    nothing = await alice.post("/queue/reject", data={"reason": "off_topic", "csrf": csrf})
    assert nothing.status_code == 422
    unknown = await alice.post(
        "/queue/reject", data={"items": ["msg_noise_3:0"], "reason": "x", "csrf": csrf}
    )
    assert unknown.status_code == 422
    decisions = await read_topic(review.settings, MODERATION_DECISIONS.name, 3, timeout=5)
    assert sorted(d["subject_id"] for d in decisions) == ["msg_noise_1", "msg_noise_2"]
    assert {d["reason"] for d in decisions} == {"off_topic"} and {d["action"] for d in decisions} == {
        "reject"
    }
    assert [i["id"] for i in (await alice.get("/queue")).json()["items"]] == [
        "msg_noise_3",
        "msg_held_by_bob",
    ]
    page = await alice.get("/queue?rejected=2&refused=2", headers={"Accept": "text/html"})
    assert (
        'id="bulk-form"' in page.text and 'form="bulk-form"' in page.text and 'id="bulk-notice"' in page.text
    )

"""The review console as a real process, over HTTP, against the real broker and database:
the queue filled from moderation's topics, logins and sessions, CSRF, municipalities,
claims, versions, deciding twice, four eyes, the audit trail; and, with moderation as a
process too, decisions applied on messages.approved and messages.rejected."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from buurtalert.devkit.testing import free_port
from buurtalert.shared.mongo import mongo_client
from buurtalert.shared.topics import MESSAGES_APPROVED, MESSAGES_REJECTED, MODERATION_DECISIONS
from tests.review_support import (
    PASSWORD,
    ReviewService,
    held_message,
    log_dir,
    removal_proposal,
)
from tests.support import ServiceProcess, eventually, read_topic

pytestmark = pytest.mark.timeout(240)


async def queued(review: ReviewService, client: httpx.AsyncClient, item_id: str) -> dict[str, Any]:
    async def find() -> dict[str, Any] | None:
        items = (await client.get("/queue")).json()["items"]
        return next((i for i in items if i["id"] == item_id), None)

    return await eventually(find, timeout=30, what=f"{item_id} in the queue")


async def test_held_messages_are_queued_once_urgent_first_with_their_reasons(review: ReviewService) -> None:
    alice, _ = await review.login("alice")
    await review.hold(held_message("msg_calm"))
    await review.hold(held_message("msg_calm"))  # redelivered: queued once
    await review.hold(held_message("msg_urgent", "Vermist: jongen van 8, rode jas", urgent=True))
    await queued(review, alice, "msg_urgent")
    calm = await queued(review, alice, "msg_calm")
    items = (await alice.get("/queue")).json()["items"]
    assert [i["id"] for i in items] == ["msg_urgent", "msg_calm"]
    assert calm["reasons"] == ["privacy", "suspicious_situation"]
    assert calm["channel"] == "whatsapp" and calm["group_id"] == "boshoven-noord"
    assert [i["id"] for i in (await alice.get("/queue?urgent=1")).json()["items"]] == ["msg_urgent"]
    assert (await alice.get("/queue?reason=rumour")).json()["items"] == []
    page = await alice.get("/queue", headers={"Accept": "text/html"})
    assert '<mark class="r-privacy"' in page.text and "06-12345678</mark>" in page.text
    assert len(await review.db("review_items", {})) == 2
    assert await review.db("audit", {"message_id": "msg_calm", "stage": "review.queued"})


async def test_login_sessions_lockout_and_csrf(review: ReviewService) -> None:
    client = review.client()
    csrf = await review.login_form(client)
    wrong = await client.post("/login", data={"username": "alice", "password": "nope", "csrf": csrf})
    assert wrong.status_code == 401
    no_csrf = await client.post("/login", data={"username": "alice", "password": PASSWORD})
    assert no_csrf.status_code == 403
    assert (await client.get("/queue")).status_code == 401  # not logged in

    good = await client.post("/login", data={"username": "alice", "password": PASSWORD, "csrf": csrf})
    assert good.status_code == 200
    cookie = good.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    token = client.cookies["review_session"]
    sessions = await review.db("review_sessions", {})
    assert len(sessions) == 1 and sessions[0]["_id"] != token and token not in str(sessions[0])
    users = await review.db("review_users", {"_id": "alice"})
    assert users[0]["password_hash"].startswith("$argon2id$") and PASSWORD not in str(users[0])
    session_csrf = good.json()["csrf"]
    await review.hold(held_message("msg_csrf"))
    await queued(review, client, "msg_csrf")
    assert (await client.post("/items/msg_csrf/approve", data={"version": "0"})).status_code == 403
    forged = await client.post("/items/msg_csrf/approve", data={"version": "0", "csrf": "forged"})
    assert forged.status_code == 403
    assert (await client.get("/items/msg_csrf")).json()["state"] == "open"

    bob = review.client()
    csrf = await review.login_form(bob)
    statuses = [
        (
            await bob.post("/login", data={"username": "bob", "password": f"wrong{i}", "csrf": csrf})
        ).status_code
        for i in range(5)
    ]
    assert statuses == [401, 401, 401, 401, 423]
    locked = await bob.post("/login", data={"username": "bob", "password": PASSWORD, "csrf": csrf})
    assert locked.status_code == 423  # the right password does not help while locked
    unknown = await bob.post("/login", data={"username": "nobody", "password": PASSWORD, "csrf": csrf})
    assert unknown.status_code == 401

    logout = await client.post("/logout", data={"csrf": session_csrf}, follow_redirects=False)
    assert logout.status_code == 303
    assert await review.db("review_sessions", {"user": "alice"}) == []


async def test_another_municipalitys_item_is_not_found(review: ReviewService) -> None:
    await review.hold(held_message("msg_weert"))
    alice, _ = await review.login("alice")
    await queued(review, alice, "msg_weert")
    eve, eve_csrf = await review.login("eve")
    assert (await eve.get("/queue")).json()["items"] == []
    assert (await eve.get("/items/msg_weert")).status_code == 404
    response = await eve.post("/items/msg_weert/approve", data={"version": "0", "csrf": eve_csrf})
    assert response.status_code == 404
    assert (await eve.get("/items/no_such_item")).status_code == 404


async def test_claims_versions_and_deciding_twice(review: ReviewService) -> None:
    await review.hold(held_message("msg_claim"))
    alice, alice_csrf = await review.login("alice")
    bob, bob_csrf = await review.login("bob")
    await queued(review, alice, "msg_claim")

    opened = (await alice.get("/items/msg_claim")).json()
    assert opened["claimed_by"] == "alice" and opened["version"] == 0
    seen = (await bob.get("/items/msg_claim")).json()
    assert seen["claimed_by"] == "alice"
    page = await bob.get("/items/msg_claim", headers={"Accept": "text/html"})
    assert "alice" in page.text and 'id="claim-notice"' in page.text
    refused = await bob.post("/items/msg_claim/approve", data={"version": "0", "csrf": bob_csrf})
    assert refused.status_code == 409 and refused.json() == {"error": "claimed", "detail": "alice"}
    assert (await bob.post("/items/msg_claim/claim", data={"csrf": bob_csrf})).status_code == 409
    renewed = await alice.post("/items/msg_claim/claim", data={"csrf": alice_csrf})
    assert renewed.status_code == 200 and renewed.json()["claim"]["by"] == "alice"

    stale = await alice.post("/items/msg_claim/approve", data={"version": "7", "csrf": alice_csrf})
    assert stale.status_code == 409 and stale.json()["error"] == "stale"
    approved = await alice.post("/items/msg_claim/approve", data={"version": "0", "csrf": alice_csrf})
    assert approved.status_code == 200, approved.text
    decision = approved.json()["decision"]
    assert decision["action"] == "approve" and decision["actor"] == "alice" and decision["version"] == 0
    again = await alice.post("/items/msg_claim/approve", data={"version": "0", "csrf": alice_csrf})
    assert again.status_code == 200 and again.json()["repeated"] is True
    assert again.json()["decision"]["id"] == decision["id"]
    other = await alice.post(
        "/items/msg_claim/reject", data={"version": "0", "reason": "privacy", "csrf": alice_csrf}
    )
    assert other.status_code == 409  # a different action on the version decided: stale

    published = await read_topic(review.settings, MODERATION_DECISIONS.name, 2, timeout=8)
    assert [d["id"] for d in published] == [decision["id"]]
    assert published[0]["item"]["message"]["id"] == "msg_claim"
    assert (await alice.get("/queue")).json()["items"] == []

    history = await review.db("audit", {"message_id": "msg_claim"})
    stages = {(e["stage"], e["data"].get("actor")) for e in history}
    assert {("review.view", "alice"), ("review.view", "bob"), ("review.claim", "alice")} <= stages
    assert ("review.approve", "alice") in stages
    page = await alice.get("/items/msg_claim", headers={"Accept": "text/html"})
    assert "review.approve" in page.text and "review.view" in page.text


async def test_an_expired_claim_can_be_taken_over(review: ReviewService) -> None:
    await review.hold(held_message("msg_expire"))
    alice, _ = await review.login("alice")
    bob, bob_csrf = await review.login("bob")
    await queued(review, alice, "msg_expire")
    await alice.get("/items/msg_expire")
    # the claim runs out (as it does when alice closes the page and five minutes pass)
    client = mongo_client(review.settings)
    try:
        await client[review.settings.database]["review_items"].update_one(
            {"_id": "msg_expire"}, {"$set": {"claim.until": datetime(2000, 1, 1, tzinfo=UTC)}}
        )
    finally:
        await client.close()
    assert (await bob.get("/items/msg_expire")).json()["claimed_by"] == "bob"
    response = await bob.post(
        "/items/msg_expire/reject", data={"version": "0", "reason": "privacy", "csrf": bob_csrf}
    )
    assert response.status_code == 200 and response.json()["decision"]["reason"] == "privacy"
    assert response.json()["decision"]["explanation"].startswith("Een moderator heeft je bericht")


async def test_a_wijkagent_approves_but_may_not_edit(review: ReviewService) -> None:
    await review.hold(held_message("msg_agent"))
    agent, csrf = await review.login("agent")
    await queued(review, agent, "msg_agent")
    edit = await agent.post(
        "/items/msg_agent/approve", data={"version": "0", "text": "Iets anders", "csrf": csrf}
    )
    assert edit.status_code == 403
    plain = await agent.post("/items/msg_agent/approve", data={"version": "0", "csrf": csrf})
    assert plain.status_code == 200 and plain.json()["decision"]["actor_role"] == "wijkagent"


async def test_a_removal_needs_two_different_admins_or_coordinators(review: ReviewService) -> None:
    await review.propose(removal_proposal("rmv_1"))
    anna, anna_csrf = await review.login("anna")
    carl, carl_csrf = await review.login("carl")
    alice, alice_csrf = await review.login("alice")
    await queued(review, anna, "rmv_1")
    assert (await alice.get("/items/rmv_1")).status_code == 404  # moderators do not see proposals
    assert (
        await alice.post("/items/rmv_1/agree", data={"version": "0", "csrf": alice_csrf})
    ).status_code == 404

    page = await anna.get("/items/rmv_1", headers={"Accept": "text/html"})
    assert (
        page.status_code == 200 and "Akkoord met verwijderen" in page.text and "p_troublemaker" in page.text
    )
    queue = await anna.get("/queue", headers={"Accept": "text/html"})
    assert "Voorstel tot verwijderen" in queue.text
    first = await anna.post("/items/rmv_1/agree", data={"version": "0", "csrf": anna_csrf})
    assert first.status_code == 200 and first.json()["decision"] is None
    assert first.json()["agreed_by"] == ["anna"] and first.json()["version"] == 1
    await anna.post("/items/rmv_1/release", data={"csrf": anna_csrf})
    twice = await anna.post("/items/rmv_1/agree", data={"version": "1", "csrf": anna_csrf})
    assert twice.status_code == 200 and twice.json()["repeated"] is True
    assert twice.json()["agreed_by"] == ["anna"]
    stale = await carl.post("/items/rmv_1/agree", data={"version": "0", "csrf": carl_csrf})
    assert stale.status_code == 409
    second = await carl.post("/items/rmv_1/agree", data={"version": "1", "csrf": carl_csrf})
    assert second.status_code == 200, second.text
    decision = second.json()["decision"]
    assert decision["action"] == "remove_member" and decision["agreed_by"] == ["anna", "carl"]
    assert decision["proposal"]["member"] == "p_troublemaker"
    published = await read_topic(review.settings, MODERATION_DECISIONS.name, 1)
    assert published[0]["id"] == decision["id"]


async def test_moderation_applies_the_decisions(review: ReviewService, tmp_path: Path) -> None:
    """Approved (with an edit) goes out on messages.approved with the new text, rejected on
    messages.rejected with the chosen explanation and a strike for a verified author only;
    the audit trail keeps the person and the original text."""
    own_port = review.settings.model_copy(update={"http_port": free_port()})
    moderation = ServiceProcess("moderation", own_port, log_dir(tmp_path))
    moderation.start()
    try:
        await review.hold(held_message("msg_edit"))
        await review.hold(held_message("msg_reject", "Die buurman is vast de dader, 06-12345678"))
        spoofable = held_message("msg_unverified", "Die buurvrouw is het, 06-12345678", verified=False)
        await review.hold(spoofable)
        alice, csrf = await review.login("alice")
        await queued(review, alice, "msg_edit")
        await queued(review, alice, "msg_reject")
        await queued(review, alice, "msg_unverified")
        edited = "Verdachte man belt aan bij huizen in de Kerkstraat"
        response = await alice.post(
            "/items/msg_edit/approve", data={"version": "0", "text": edited, "csrf": csrf}
        )
        assert response.status_code == 200 and response.json()["decision"]["action"] == "approve_edited"
        response = await alice.post(
            "/items/msg_reject/reject", data={"version": "0", "reason": "rumour", "csrf": csrf}
        )
        assert response.status_code == 200
        response = await alice.post(
            "/items/msg_unverified/reject", data={"version": "0", "reason": "rumour", "csrf": csrf}
        )
        assert response.status_code == 200
        await moderation.started()

        approved = await read_topic(review.settings, MESSAGES_APPROVED.name, 1, timeout=60)
        assert approved[0]["message"]["id"] == "msg_edit"
        assert approved[0]["message"]["text"] == edited
        assert approved[0]["moderation"]["decision"] == "forward"
        assert approved[0]["moderation"]["reviewer"] == "alice"
        rejected = sorted(
            await read_topic(review.settings, MESSAGES_REJECTED.name, 2, timeout=60),
            key=lambda r: r["message"]["id"] != "msg_reject",
        )
        assert [r["message"]["id"] for r in rejected] == ["msg_reject", "msg_unverified"]
        assert rejected[0]["moderation"]["explanation"].startswith("Een moderator heeft je bericht")
        assert "geruchten" in rejected[0]["moderation"]["explanation"]

        async def audited() -> list[dict[str, Any]]:
            return await review.db("audit", {"message_id": "msg_edit", "stage": "moderation_decision"})

        entry = (await eventually(audited, what="moderation's audit entry"))[0]["data"]
        assert entry["actor"] == "alice" and entry["action"] == "approve_edited"
        assert entry["original_text"].startswith("Verdachte man belt aan") and entry["text"] == edited
        strikes = await review.db("strikes", {"message_id": "msg_reject"})
        assert len(strikes) == 1  # a person's rejection counts against the author too
        # but not against an unverified sender, whose address may be someone else's
        assert await review.db("strikes", {"message_id": "msg_unverified"}) == []
        assert rejected[1]["moderation"]["strikes"] is None
    finally:
        moderation.stop()
        if not moderation.proc or moderation.proc.returncode not in (0, -15):
            print(moderation.log()[-4000:])

"""Feedback to the reporter when a moderator forwards their held report, as a real review
process against the real broker and database: a verified author is told on
review.notices through the channel and address that reach them, in their language; an
unverified sender is not (and their address is not looked up)."""

from __future__ import annotations

import pytest

from buurtalert.review.notices import FORWARDED_RULE
from buurtalert.shared.contacts import Contacts
from buurtalert.shared.models import Author, Role
from buurtalert.shared.mongo import Database, mongo_client
from buurtalert.shared.topics import INGEST, REVIEW_NOTICES
from tests.review_support import ReviewService, held_message
from tests.support import eventually, read_topic

pytestmark = pytest.mark.timeout(240)


async def test_a_forward_is_told_to_a_verified_reporter_only(review: ReviewService) -> None:
    """Approving with an edit tells the verified author (in Dutch, English below) at the
    address ingest remembered; approving an unverified sender's report tells nobody and
    the audit trail says why; nothing quotes the message."""
    client = mongo_client(review.settings)
    try:
        contacts = Contacts(Database(client[review.settings.database], INGEST))
        await contacts.remember("weert-demo", "p_author_1", "whatsapp", "31633333333")
        await contacts.remember("weert-demo", "p_unverified", "email", "claimed@example.test")
    finally:
        await client.close()
    await review.hold(held_message("msg_fwd"))
    unverified = held_message("msg_unverified")
    author = Author(pseudonym="p_unverified", role=Role.RESIDENT, verified=False)
    await review.hold(
        unverified.model_copy(update={"message": unverified.message.model_copy(update={"author": author})})
    )
    alice, csrf = await review.login("alice")

    async def queued() -> bool:
        return len((await alice.get("/queue")).json()["items"]) == 2

    await eventually(queued, timeout=30, what="both items queued")
    edited = await alice.post(
        "/items/msg_fwd/approve", data={"version": "0", "text": "Verdachte man belt aan", "csrf": csrf}
    )
    assert edited.status_code == 200, edited.text
    plain = await alice.post("/items/msg_unverified/approve", data={"version": "0", "csrf": csrf})
    assert plain.status_code == 200, plain.text

    notices = await read_topic(review.settings, REVIEW_NOTICES.name, 2, timeout=8)
    assert len(notices) == 1
    notice = notices[0]
    assert notice["message_id"] == "msg_fwd" and notice["rules"] == [FORWARDED_RULE]
    assert notice["destination"] == notice["destination"] | {"channel": "whatsapp", "address": "31633333333"}
    assert notice["text"].startswith("Een moderator heeft je melding bekeken en, iets aangepast")
    assert "A moderator reviewed your report" in notice["text"] and "06-12345678" not in notice["text"]

    async def stages() -> dict[str, dict[str, object]] | None:
        found = {e["message_id"]: e["data"] for e in await review.db("audit", {"stage": "review.feedback"})}
        return found if len(found) == 2 else None

    audit = await eventually(stages, timeout=10, what="both feedback entries")
    assert audit["msg_fwd"]["sent"] is True
    assert audit["msg_unverified"] == {"sent": False, "why": "sender not verified or an authority"}


async def test_revealing_a_reporters_address_is_role_limited_and_audited(review: ReviewService) -> None:
    """The admin and the wijkagent may see the real address of a held message's author,
    giving a reason; a moderator may not (403), another municipality's admin finds no item
    (404), no reason is 422; each reveal is in the audit trail with who, when and why, but
    never the address, and shows in the item's history."""
    client = mongo_client(review.settings)
    try:
        await Contacts(Database(client[review.settings.database], INGEST)).remember(
            "weert-demo", "p_author_1", "whatsapp", "31644444444"
        )
    finally:
        await client.close()
    await review.hold(held_message("msg_reveal"))
    bob, bob_csrf = await review.login("bob")
    agent, agent_csrf = await review.login("agent")
    anna, anna_csrf = await review.login("anna")
    eve, eve_csrf = await review.login("eve")

    async def queued() -> bool:
        return bool((await anna.get("/queue")).json()["items"])

    await eventually(queued, timeout=30, what="the item queued")
    moderator_page = await bob.get("/items/msg_reveal", headers={"Accept": "text/html"})
    assert 'id="reveal-form"' not in moderator_page.text and "31644444444" not in moderator_page.text
    denied = await bob.post("/items/msg_reveal/reveal", data={"why": "curious", "csrf": bob_csrf})
    assert denied.status_code == 403
    elsewhere = await eve.post("/items/msg_reveal/reveal", data={"why": "x", "csrf": eve_csrf})
    assert elsewhere.status_code == 404
    assert (
        await agent.post("/items/msg_reveal/reveal", data={"why": " ", "csrf": agent_csrf})
    ).status_code == 422
    no_csrf = await agent.post("/items/msg_reveal/reveal", data={"why": "getuige bellen"})
    assert no_csrf.status_code == 403

    shown = await agent.post("/items/msg_reveal/reveal", data={"why": "getuige bellen", "csrf": agent_csrf})
    assert shown.status_code == 200 and shown.json() == {"channel": "whatsapp", "address": "31644444444"}
    html = await anna.post(
        "/items/msg_reveal/reveal",
        data={"why": "klacht afhandelen", "csrf": anna_csrf},
        headers={"Accept": "text/html"},
    )
    assert html.status_code == 200 and '<code id="revealed-address">31644444444</code>' in html.text

    entries = await review.db("audit", {"message_id": "msg_reveal", "stage": "review.reveal"})
    assert sorted((e["data"]["actor"], e["data"]["why"]) for e in entries) == [
        ("agent", "getuige bellen"),
        ("anna", "klacht afhandelen"),
    ]
    assert all("31644444444" not in str(e) and e["data"]["at"] for e in entries)
    history = await anna.get("/items/msg_reveal", headers={"Accept": "text/html"})
    assert "review.reveal" in history.text and "getuige bellen" in history.text
    assert 'id="reveal-form"' in history.text and "p_author_1" in history.text

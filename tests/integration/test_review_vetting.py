"""Membership vetting through the review console, as real processes against the real broker
and database: a pending join (AANMELDEN) is listed for coordinators and admins, approved or
refused with who and why, the decision published on review.memberships and applied by
ingest (the register's owner), and the member told through review.notices; a removal agreed
by two also takes the member out of the group's WhatsApp group (channels, Groups API)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from buurtalert.devkit.graph_emulator import GraphEmulator
from buurtalert.devkit.testing import free_port
from buurtalert.directory.model import load_directory
from buurtalert.directory.store import Memberships, store_directory
from buurtalert.review.notices import MEMBERSHIP_RULE
from buurtalert.shared.contacts import Contacts
from buurtalert.shared.mongo import Database, mongo_client
from buurtalert.shared.settings import Settings, load_municipality_config
from buurtalert.shared.topics import INGEST, REVIEW_MEMBERSHIPS, REVIEW_NOTICES
from tests.conftest import DEMO, TEST_FAILED
from tests.review_support import ReviewService, log_dir, removal_proposal
from tests.support import ServiceProcess, eventually, read_topic, wait_http

pytestmark = pytest.mark.timeout(300)


async def ask_to_join(settings: Settings, member: str, address: str, group: str, at: datetime) -> None:
    """AANMELDEN as ingest records it: a pending join in the membership register."""
    client = mongo_client(settings)
    try:
        assert await Memberships(Database(client[settings.database], INGEST)).join(
            "weert-demo", member, address, group, at
        )
    finally:
        await client.close()


async def test_a_coordinator_approves_and_refuses_joins_with_who_and_why(
    review: ReviewService, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Carl (coordinator) sees both pending joins, bob (moderator) may not; a refusal needs a
    reason; carl approves one and refuses the other; deciding again is harmless, a different
    decision by anna is refused; ingest applies both to the register; each member is told
    (welcome with the house rules, or not approved) and the audit trail says who and why."""
    await ask_to_join(
        review.settings, "p_new_1", "31611111111", "boshoven-noord", datetime(2026, 5, 1, 9, tzinfo=UTC)
    )
    await ask_to_join(
        review.settings, "p_new_2", "31622222222", "centrum-west", datetime(2026, 5, 1, 10, tzinfo=UTC)
    )
    ingest = ServiceProcess(
        "ingest", review.settings.model_copy(update={"http_port": free_port()}), log_dir(tmp_path)
    )
    ingest.start()
    try:
        carl, carl_csrf = await review.login("carl")
        bob, bob_csrf = await review.login("bob")
        anna, anna_csrf = await review.login("anna")
        pending = (await carl.get("/members")).json()["pending"]
        assert [(j["member"], j["group_id"]) for j in pending] == [
            ("p_new_1", "boshoven-noord"),
            ("p_new_2", "centrum-west"),
        ]
        first, second = pending[0]["id"], pending[1]["id"]
        assert (await bob.get("/members")).status_code == 403
        forbidden = await bob.post(
            "/members/decide", data={"join": first, "decision": "approve", "csrf": bob_csrf}
        )
        assert forbidden.status_code == 403
        no_csrf = await carl.post("/members/decide", data={"join": first, "decision": "approve"})
        assert no_csrf.status_code == 403
        no_reason = await carl.post(
            "/members/decide", data={"join": second, "decision": "refuse", "csrf": carl_csrf}
        )
        assert no_reason.status_code == 422

        approved = await carl.post(
            "/members/decide", data={"join": first, "decision": "approve", "csrf": carl_csrf}
        )
        assert approved.status_code == 200, approved.text
        assert (
            approved.json()["decision"]["approved"] is True and approved.json()["decision"]["actor"] == "carl"
        )
        again = await carl.post(
            "/members/decide", data={"join": first, "decision": "approve", "csrf": carl_csrf}
        )
        assert again.status_code == 200 and again.json()["repeated"] is True
        other = await anna.post(
            "/members/decide", data={"join": first, "decision": "refuse", "reason": "x", "csrf": anna_csrf}
        )
        assert other.status_code == 409
        refused = await carl.post(
            "/members/decide",
            data={"join": second, "decision": "refuse", "reason": "woont niet in de wijk", "csrf": carl_csrf},
        )
        assert refused.status_code == 200, refused.text
        assert (await carl.get("/members")).json()["pending"] == []
        page = await carl.get("/members", headers={"Accept": "text/html"})
        assert 'id="no-joins"' in page.text and 'id="nav-members"' in page.text

        decisions = await read_topic(review.settings, REVIEW_MEMBERSHIPS.name, 3, timeout=5)
        assert sorted((d["member"], d["approved"], d["reason"]) for d in decisions) == [
            ("p_new_1", True, ""),
            ("p_new_2", False, "woont niet in de wijk"),
        ]
        notices = {
            n["destination"]["address"]: n for n in await read_topic(review.settings, REVIEW_NOTICES.name, 2)
        }
        assert set(notices) == {"31611111111", "31622222222"}
        welcome, no = notices["31611111111"], notices["31622222222"]
        assert welcome["rules"] == [MEMBERSHIP_RULE] and welcome["destination"]["channel"] == "whatsapp"
        assert "goedgekeurd" in welcome["text"] and "112" in welcome["text"] and "foto" in welcome["text"]
        assert "niet goedgekeurd" in no["text"] and "woont niet" not in no["text"]  # the reason stays with us

        await wait_http(f"http://127.0.0.1:{ingest.env['BUURTALERT_HTTP_PORT']}/health")

        async def applied() -> dict[str, dict[str, object]] | None:
            docs = {d["pseudonym"]: d for d in await review.db("memberships", {})}
            return docs if all(d["state"] != "pending" for d in docs.values()) else None

        register = await eventually(applied, timeout=90, what="ingest to apply the decisions")
        assert register["p_new_1"]["state"] == "active" and register["p_new_1"]["groups"] == [
            "boshoven-noord"
        ]
        assert register["p_new_1"]["requested"] == [] and register["p_new_1"]["address"] == "31611111111"
        assert register["p_new_2"]["state"] == "left" and register["p_new_2"]["address"] is None

        audit = {e["stage"]: e["data"] for e in await review.db("audit", {"message_id": second})}
        assert (
            audit["review.vet"]["actor"] == "carl"
            and audit["review.vet"]["reason"] == "woont niet in de wijk"
        )
        assert await eventually(
            lambda: _stage(review, second, "membership_vetting"), timeout=30, what="ingest's audit entry"
        )
    finally:
        ingest.stop()
        if request.node.stash.get(TEST_FAILED, False):
            print(ingest.log()[-6000:])


async def _stage(review: ReviewService, entry: str, stage: str) -> bool:
    return bool(await review.db("audit", {"message_id": entry, "stage": stage}))


async def test_a_removal_agreed_by_two_is_applied_to_the_register_and_the_member_told(
    review: ReviewService, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Two admins or coordinators agree to remove a member who joined by message: ingest
    takes the group from the member's register entry (the member, with no group left,
    leaves and their number is forgotten), and the member is told why on review.notices;
    ingest records the removal in the audit trail."""
    asked = datetime(2026, 5, 1, 9, tzinfo=UTC)
    client = mongo_client(review.settings)
    try:
        memberships = Memberships(Database(client[review.settings.database], INGEST))
        assert await memberships.join("weert-demo", "p_troublemaker", "31677777777", "boshoven-noord", asked)
        assert await memberships.vet(
            "weert-demo",
            "p_troublemaker",
            "boshoven-noord",
            True,
            asked,
            datetime(2026, 5, 1, 10, tzinfo=UTC),
        )
    finally:
        await client.close()
    ingest = ServiceProcess(
        "ingest", review.settings.model_copy(update={"http_port": free_port()}), log_dir(tmp_path)
    )
    ingest.start()
    try:
        await review.propose(removal_proposal("rmv_register"))
        anna, anna_csrf = await review.login("anna")
        carl, carl_csrf = await review.login("carl")

        async def queued() -> bool:
            return bool((await anna.get("/queue")).json()["items"])

        await eventually(queued, timeout=30, what="the proposal queued")
        first = await anna.post("/items/rmv_register/agree", data={"version": "0", "csrf": anna_csrf})
        assert first.status_code == 200 and first.json()["decision"] is None
        await anna.post("/items/rmv_register/release", data={"csrf": anna_csrf})
        second = await carl.post("/items/rmv_register/agree", data={"version": "1", "csrf": carl_csrf})
        assert second.status_code == 200 and second.json()["decision"]["action"] == "remove_member"

        notices = await read_topic(review.settings, REVIEW_NOTICES.name, 1, timeout=30)
        assert notices[0]["destination"]["address"] == "31677777777"
        assert notices[0]["rules"] == ["review_membership_removal"]
        assert "Je bent uit boshoven-noord verwijderd" in notices[0]["text"]
        assert "past niet in de buurtpreventiegroep" in notices[0]["text"]  # why: the off_topic rule

        async def removed() -> dict[str, Any] | None:
            docs = await review.db("memberships", {"pseudonym": "p_troublemaker"})
            return docs[0] if docs and docs[0].get("removed") else None

        entry = await eventually(removed, timeout=90, what="ingest to apply the removal")
        assert entry["groups"] == [] and entry["removed"] == ["boshoven-noord"]
        assert entry["state"] == "left" and entry["address"] is None
        audit = await eventually(
            lambda: review.db("audit", {"message_id": "rmv_register", "stage": "membership_removal"}),
            timeout=30,
            what="ingest's audit entry",
        )
        assert audit[0]["data"]["applied"] is True and audit[0]["data"]["agreed_by"] == ["anna", "carl"]
    finally:
        ingest.stop()
        if request.node.stash.get(TEST_FAILED, False):
            print(ingest.log()[-6000:])


REGIE_WHATSAPP_GROUP = "120363041234567890"  # Boshoven's regiegroep posts in it (demo directory)


async def agree_by_two(review: ReviewService, proposal_id: str) -> None:
    """Anna (admin) agrees and lets go; carl (coordinator) agrees: the removal is decided."""
    anna, anna_csrf = await review.login("anna")
    carl, carl_csrf = await review.login("carl")

    async def queued() -> bool:
        return any(i["id"] == proposal_id for i in (await anna.get("/queue")).json()["items"])

    await eventually(queued, timeout=30, what=f"{proposal_id} queued")
    first = await anna.post(f"/items/{proposal_id}/agree", data={"version": "0", "csrf": anna_csrf})
    assert first.status_code == 200 and first.json()["decision"] is None
    await anna.post(f"/items/{proposal_id}/release", data={"csrf": anna_csrf})
    second = await carl.post(f"/items/{proposal_id}/agree", data={"version": "1", "csrf": carl_csrf})
    assert second.status_code == 200 and second.json()["decision"]["action"] == "remove_member"


async def test_a_removal_agreed_by_two_takes_the_member_out_of_the_groups_whatsapp_group(
    review: ReviewService, graph: GraphEmulator, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Boshoven's regiegroep also posts in a WhatsApp Groups API group. Two admins or
    coordinators agree to remove a member who wrote there: the review console asks channels
    (review.group-changes), which takes the member out of the emulator's group, and ingest
    takes the group from the register. A removal from an email-only buurtgroep has no group
    to remove from: the audit trail says so, and the Graph API is not called for it."""
    settings = review.settings
    client = mongo_client(settings)
    try:
        key = load_municipality_config(DEMO / "weert" / "municipality.yaml").pseudonym_key
        directory = load_directory(DEMO / "weert" / "directory.yaml").pseudonymised(key)
        await store_directory(Database(client[settings.database], "directory"), directory)
        ingest_db = Database(client[settings.database], INGEST)
        memberships = Memberships(ingest_db)
        asked = datetime(2026, 5, 1, 9, tzinfo=UTC)
        assert await memberships.join("weert-demo", "p_troublemaker", "31677777777", "boshoven-regie", asked)
        assert await memberships.vet(
            "weert-demo",
            "p_troublemaker",
            "boshoven-regie",
            True,
            asked,
            datetime(2026, 5, 1, 10, tzinfo=UTC),
        )
        # the member wrote in the WhatsApp group: ingest remembered the number that reaches them
        await Contacts(ingest_db).remember("weert-demo", "p_troublemaker", "whatsapp", "31677777777")
    finally:
        await client.close()
    graph.groups[REGIE_WHATSAPP_GROUP] = {"31600000001", "31600000002", "31677777777"}
    logs = log_dir(tmp_path)
    ingest = ServiceProcess("ingest", settings.model_copy(update={"http_port": free_port()}), logs)
    channels = ServiceProcess("channels", settings.model_copy(update={"http_port": free_port()}), logs)
    ingest.start()
    channels.start()
    try:
        await review.propose(removal_proposal("rmv_whatsapp", group_id="boshoven-regie"))
        await review.propose(removal_proposal("rmv_email", member="p_other"))
        await agree_by_two(review, "rmv_whatsapp")
        await agree_by_two(review, "rmv_email")

        async def left_the_group() -> bool:
            return graph.participants(REGIE_WHATSAPP_GROUP) == {"31600000001", "31600000002"}

        await eventually(left_the_group, timeout=90, what="the member out of the WhatsApp group")
        [asked_for] = await eventually(
            lambda: review.db("audit", {"message_id": "rmv_whatsapp", "stage": "review.group_removal"}),
            what="review's request in the audit trail",
        )
        assert asked_for["data"]["requested"] is True
        assert asked_for["data"]["whatsapp_groups"] == [REGIE_WHATSAPP_GROUP]
        [removal_id] = asked_for["data"]["ids"]
        [done] = await eventually(
            lambda: review.db(
                "audit", {"message_id": "rmv_whatsapp", "stage": f"group_changes.{removal_id}"}
            ),
            what="channels' outcome in the audit trail",
        )
        assert done["data"]["outcome"] == "removed" and done["data"]["group_id"] == "boshoven-regie"
        [not_asked] = await eventually(
            lambda: review.db("audit", {"message_id": "rmv_email", "stage": "review.group_removal"}),
            what="the email group's entry",
        )
        assert not_asked["data"]["requested"] is False and "no WhatsApp group" in not_asked["data"]["why"]

        async def register_applied() -> bool:
            docs = await review.db("memberships", {"pseudonym": "p_troublemaker"})
            return bool(docs and docs[0].get("removed") == ["boshoven-regie"])

        await eventually(register_applied, timeout=90, what="ingest to apply the removal")
        assert graph.calls == [("DELETE", f"/v21.0/{REGIE_WHATSAPP_GROUP}/participants")]
        trail = str(await review.db("audit", {"message_id": {"$in": ["rmv_whatsapp", "rmv_email"]}}))
        assert "31677777777" not in trail
    finally:
        ingest.stop()
        channels.stop()
        if request.node.stash.get(TEST_FAILED, False):
            print(ingest.log()[-4000:], channels.log()[-6000:], review.process.log()[-6000:])

"""A held report, decided in the review console, goes on through all the services: the
edited text is what the regiegroep receives, and the audit trail keeps the original and
the person who decided. A member whose messages in the regiegroep's WhatsApp group were
rejected three times is proposed for removal; once two admins or coordinators agree, the
WhatsApp group (the Graph API emulator's Groups API group) no longer has them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from buurtalert.devkit.graph_emulator import GraphEmulator
from buurtalert.shared.mongo import Audit, Database, mongo_client
from tests.conftest import TEST_FAILED
from tests.e2e.conftest import System
from tests.meta import REGIE_GROUP, signed, wa_message, wa_messages
from tests.review_support import ReviewService, running_review
from tests.support import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
TOKEN = {"authorization": "Bearer demo-token-buurtpreventie"}
ORIGINAL = "Verdachte man probeert achterdeuren aan de Dorpstraat, zijn nummer is 06-98765432, 112 gebeld"
EDITED = "Verdachte man probeert achterdeuren aan de Dorpstraat, 112 gebeld"


@pytest.fixture
async def review(
    system: System, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[ReviewService]:
    async with running_review(
        system.settings, tmp_path, failed=lambda: request.node.stash.get(TEST_FAILED, False)
    ) as service:
        yield service


async def test_an_approved_edit_is_delivered_and_the_original_stays_in_the_audit_trail(
    system: System, review: ReviewService
) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            system.reports_url,
            json={
                "report_id": "held-1",
                "group": "boshoven-noord",
                "reporter": "+31 6 11122233",
                "text": ORIGINAL,
            },
            headers=TOKEN,
        )
    assert response.status_code == 202, response.text
    message_id = response.json()["id"]
    alice, csrf = await review.login("alice")

    async def queued() -> dict[str, Any] | None:
        items = (await alice.get("/queue")).json()["items"]
        return next((i for i in items if i["id"] == message_id), None)

    item = await eventually(queued, timeout=60, what="the held report in the queue")
    assert "privacy" in item["reasons"]
    assert system.mailbox.mailbox.snapshot() == []  # held: nothing was sent

    decided = await alice.post(
        f"/items/{message_id}/approve", data={"version": str(item["version"]), "text": EDITED, "csrf": csrf}
    )
    assert decided.status_code == 200, decided.text

    [mail] = await eventually(lambda: system.mailbox.mailbox.snapshot(), timeout=60, what="the email")
    assert mail["To"] == "regie-boshoven@lists.weert-demo.buurtalert.test"
    body = mail.get_body(preferencelist=("plain",)).get_content()
    assert "achterdeuren aan de Dorpstraat" in body and "98765432" not in body

    client = mongo_client(system.settings)
    try:
        audit = Audit(Database(client[system.settings.database], "tests"))

        async def delivered() -> dict[str, Any] | None:
            stages = await audit.trail(message_id)
            return stages if "deliveries" in stages else None

        stages = await eventually(delivered, what="the delivery in the audit trail")
    finally:
        await client.close()
    assert stages["moderation"]["decision"] == "review"
    assert stages["moderation_decision"]["actor"] == "alice"
    assert stages["moderation_decision"]["original_text"] == ORIGINAL
    assert stages["review"]["approve_edited"]["actor"] == "alice"
    assert stages["review"]["approve_edited"]["original_text"] == ORIGINAL
    assert stages["routing"]["rules"] == ["buurtgroep_to_regiegroep"]


COORDINATOR = "31600000002"  # coordinator-noord, in Boshoven's regiegroep and its WhatsApp group
WIJKAGENT = "31600000001"


async def test_a_member_removed_by_two_admins_leaves_the_regiegroeps_whatsapp_group(
    system: System, review: ReviewService, graph: GraphEmulator
) -> None:
    """Three off-topic messages in the regiegroep's WhatsApp group: the third proposes the
    author's removal; anna (admin) and carl (coordinator) agree in the console; channels
    takes the author out of the group through the Groups API, and only the author."""
    graph.groups[REGIE_GROUP] = {WIJKAGENT, COORDINATOR}
    async with httpx.AsyncClient() as http:
        for n, text in enumerate(("Bedankt!", "Wie heeft mijn kat gezien?", "Te koop: fiets")):
            body = wa_messages(
                wa_message(COORDINATOR, f"wamid.off-{n}", group_id=REGIE_GROUP, text={"body": text})
            )
            response = await http.post(
                f"http://127.0.0.1:{system.settings.http_port}/webhooks/whatsapp",
                content=body,
                headers=signed(body, "demo-whatsapp-app-secret"),
            )
            assert response.status_code == 200, response.text
    anna, anna_csrf = await review.login("anna")
    carl, carl_csrf = await review.login("carl")

    async def proposed() -> dict[str, Any] | None:
        return next(iter((await anna.get("/queue")).json()["items"]), None)

    proposal = await eventually(proposed, timeout=90, what="the removal proposal in the console")
    first = await anna.post(f"/items/{proposal['id']}/agree", data={"version": "0", "csrf": anna_csrf})
    assert first.status_code == 200 and first.json()["decision"] is None
    await anna.post(f"/items/{proposal['id']}/release", data={"csrf": anna_csrf})
    second = await carl.post(f"/items/{proposal['id']}/agree", data={"version": "1", "csrf": carl_csrf})
    assert second.status_code == 200, second.text
    decision = second.json()["decision"]
    assert decision["action"] == "remove_member" and decision["proposal"]["group_id"] == "boshoven-regie"

    async def removed() -> bool:
        return graph.participants(REGIE_GROUP) == {WIJKAGENT}

    await eventually(removed, timeout=90, what="the author out of the WhatsApp group")
    assert graph.calls == [("DELETE", f"/v21.0/{REGIE_GROUP}/participants")]

"""A held report, decided in the review console, goes on through all the services: the
edited text is what the regiegroep receives, and the audit trail keeps the original and
the person who decided. (The console's other actions, through the browser, with all the
services: test_review_console_system.py.)"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from buurtalert.shared.mongo import Audit, Database, mongo_client
from tests.e2e.conftest import System
from tests.review_support import ReviewService
from tests.support import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
TOKEN = {"authorization": "Bearer demo-token-buurtpreventie"}
ORIGINAL = "Verdachte man probeert achterdeuren aan de Dorpstraat, zijn nummer is 06-98765432, 112 gebeld"
EDITED = "Verdachte man probeert achterdeuren aan de Dorpstraat, 112 gebeld"


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

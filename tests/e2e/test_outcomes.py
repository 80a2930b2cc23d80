"""Outcomes end to end, through Kafka and the five services as processes: a reply in the
regiegroep (WhatsApp, from the wijkagent) closes an incident and every group the incident
reached hears the outcome; a reply from someone else is kept with its reason and changes
nothing; the console's web API gives an outcome to another incident."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest

from buurtalert.shared.models import stable_id
from buurtalert.shared.mongo import Audit, Database, mongo_client
from tests.e2e.conftest import System
from tests.meta import REGIE_GROUP, wa_message, wa_messages
from tests.review_support import ReviewService
from tests.support import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
RESIDENT = {"authorization": "Bearer demo-token-buurtpreventie"}
WIJKAGENT = "31600000001"
STRANGER = "31699999999"
LISTS = "lists.weert-demo.buurtalert.test"
REACHED = {
    f"regie-boshoven@{LISTS}",
    f"regie-leuken@{LISTS}",
    f"regie-centrum@{LISTS}",
    "regie-kaulille@lists.bocholt-demo.buurtalert.test",
}


def inbox(system: System) -> list[tuple[str, str, str]]:
    """(recipient, subject, plain body) of every email received."""
    found = []
    for mail in system.mailbox.mailbox.snapshot():
        body = mail.get_body(preferencelist=("plain",))
        found.append((str(mail["To"]), str(mail["Subject"]), body.get_content() if body else ""))
    return found


async def report(system: System, report_id: str, text: str, **extra: Any) -> str:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            system.reports_url,
            json={"report_id": report_id, "group": "boshoven-noord", "reporter": "+31 6 1234", "text": text}
            | extra,
            headers=RESIDENT,
        )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


async def whatsapp_reply(system: System, sender: str, wamid: str, text: str) -> None:
    answer = await system.whatsapp(
        wa_messages(wa_message(sender, wamid, group_id=REGIE_GROUP, text={"body": text}))
    )
    assert answer["accepted"] == 1


async def incident_doc(system: System, incident_id: str) -> dict[str, Any] | None:
    client = mongo_client(system.settings)
    try:
        found: dict[str, Any] | None = await client[system.settings.database]["incidents"].find_one(
            {"_id": incident_id}
        )
        return found
    finally:
        await client.close()


async def test_a_reply_in_the_regiegroep_closes_the_incident_and_every_reached_group_hears_it(
    system: System, review: ReviewService
) -> None:
    message_id = await report(
        system,
        "vermist-outcome",
        "Vermist: man van 82 met blauwe jas, verward, laatst gezien bij de Boshoverweg. 112 gebeld.",
        category="missing_person",
    )
    incident_id = stable_id("inc", message_id)
    await eventually(lambda: {to for to, _, _ in inbox(system)} == REACHED, timeout=90, what="the report")
    assert len(inbox(system)) == 4

    # Someone who is not the wijkagent or a coordinator: kept with the reason, never applied.
    await whatsapp_reply(system, STRANGER, "wamid.stranger", f"UITKOMST {incident_id} loos")
    # The wijkagent of the regiegroep, with the short reference its message showed.
    [regie] = [body for to, _, body in inbox(system) if to == f"regie-boshoven@{LISTS}"]
    reference = re.search(r"Incident ([0-9A-F]{6}) · afloop doorgeven: UITKOMST \1", regie)
    assert reference is not None and incident_id.startswith(f"inc_{reference.group(1).lower()}"), regie
    assert all("UITKOMST" not in body for to, _, body in inbox(system) if "regie" not in to)
    await whatsapp_reply(
        system, WIJKAGENT, "wamid.wijkagent", f"UITKOMST {reference.group(1)} gevonden Meneer is veilig thuis"
    )

    def outcomes() -> list[tuple[str, str, str]]:
        return [m for m in inbox(system) if "Afloop" in m[1]]

    told = await eventually(lambda: len(outcomes()) >= 4 and outcomes(), timeout=90, what="four outcomes")
    assert {to for to, _, _ in told} == REACHED
    for _, subject, body in told:
        assert subject.startswith("Afloop van een melding")
        assert "De vermiste persoon is gevonden." in body
        assert "Toelichting: Meneer is veilig thuis" in body
        assert "loos alarm" not in body and "Boshoverweg" not in body  # never the stranger's, nor the report

    doc = await eventually(lambda: incident_doc(system, incident_id), what="the incident", timeout=30)
    doc = await eventually(
        lambda: _fed_back(system, incident_id), what="the incident fed back and closed", timeout=30
    )
    assert doc["outcome"] == "person_found" and doc["closed_at"] is not None
    [recorded] = await review.db("incident_outcomes", {"_id": incident_id})
    assert (recorded["source"], recorded["actor"], recorded["actor_role"]) == (
        "regiegroep",
        "wijkagent-boshoven",
        "wijkagent",
    )

    client = mongo_client(system.settings)
    try:
        audit = Audit(Database(client[system.settings.database], "tests"))
        stranger_id = stable_id("msg", "whatsapp", "106540352242922", "wamid.stranger")
        history = await eventually(
            lambda: _refused(audit, stranger_id), what="the stranger's command refused in the audit trail"
        )
        assert history["data"]["refused"] == (
            "the sender is not the wijkagent or a coordinator of this regiegroep"
        )
    finally:
        await client.close()

    # Nothing more: no second outcome, no report of the commands to the groups.
    await asyncio.sleep(2.0)
    assert len(inbox(system)) == 8


async def _fed_back(system: System, incident_id: str) -> dict[str, Any] | None:
    doc = await incident_doc(system, incident_id)
    return doc if doc and doc.get("fed_back_at") else None


async def _refused(audit: Audit, message_id: str) -> dict[str, Any] | None:
    return next((e for e in await audit.history(message_id) if e["stage"] == "review.outcome"), None)


async def test_the_console_api_gives_an_outcome_once_and_only_for_allowed_roles(
    system: System, review: ReviewService
) -> None:
    message_id = await report(
        system,
        "inbraak-outcome",
        "Verdachte man met rode jas en rugzak probeert deuren, 112 gebeld",
    )
    incident_id = stable_id("inc", message_id)
    await eventually(lambda: len(inbox(system)) >= 1, timeout=90, what="the report")

    bob, bob_csrf = await review.login("bob")  # a moderator gives no outcomes
    refused = await bob.post(
        f"/incidents/{incident_id}/outcome", json={"outcome": "arrest"}, headers={"X-CSRF-Token": bob_csrf}
    )
    assert refused.status_code == 403
    agent, csrf = await review.login("agent")
    malformed = await agent.post(
        f"/incidents/{incident_id}/outcome", json=["arrest"], headers={"X-CSRF-Token": csrf}
    )
    assert malformed.status_code == 422
    unauthenticated = await review.client().post(
        f"/incidents/{incident_id}/outcome", json={"outcome": "arrest"}
    )
    assert unauthenticated.status_code == 401
    given = await agent.post(
        f"/incidents/{incident_id}/outcome",
        json={"outcome": "police_on_site", "note": "Niemand meer aangetroffen"},
        headers={"X-CSRF-Token": csrf},
    )
    assert given.status_code == 200, given.text
    assert given.json()["outcome"]["source"] == "api"
    again = await agent.post(
        f"/incidents/{incident_id}/outcome", json={"outcome": "arrest"}, headers={"X-CSRF-Token": csrf}
    )
    assert again.status_code == 409 and again.json()["outcome"]["outcome"] == "police_on_site"

    told = await eventually(
        lambda: [m for m in inbox(system) if "Afloop" in m[1]], timeout=60, what="the outcome"
    )
    assert [to for to, _, _ in told] == [f"regie-boshoven@{LISTS}"]
    assert "De politie is ter plaatse geweest." in told[0][2]
    shown = (await agent.get(f"/incidents/{incident_id}")).json()
    assert shown["outcome"]["outcome"] == "police_on_site"
    eve, _ = await review.login("eve")  # another municipality's admin does not see it
    assert (await eve.get(f"/incidents/{incident_id}")).status_code == 404

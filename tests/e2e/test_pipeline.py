"""A report crosses all four services through the real broker and database."""

from __future__ import annotations

import asyncio

import httpx

from buurtalert.shared.mongo import Audit, Database, mongo_client
from tests.e2e.conftest import System
from tests.support import eventually, read_topic

TOKEN = {"authorization": "Bearer demo-token-buurtpreventie"}
REPORT = {
    "report_id": "r-100",
    "group": "boshoven-noord",
    "reporter": "+31 6 11122233",
    "text": "Nu inbraak bezig aan de Dorpstraat: man met rode jas en zwarte rugzak aan een achterdeur.",
}


async def post_report(system: System, **fields: str) -> httpx.Response:
    """:data:`REPORT`, with ``fields`` changed, posted to ingest by the demo client."""
    async with httpx.AsyncClient() as http:
        return await http.post(system.reports_url, json={**REPORT, **fields}, headers=TOKEN)


async def test_report_reaches_the_regiegroep_and_every_step_is_audited(system: System) -> None:
    """Posted to ingest, moderated, routed to the district's regiegroep, sent by email."""
    response = await post_report(system)
    assert response.status_code == 202, response.text
    message_id = response.json()["id"]

    [mail] = await eventually(lambda: system.mailbox.mailbox.snapshot(), what="the email")
    assert mail["To"] == "regie-boshoven@lists.weert-demo.buurtalert.test"
    body = mail.get_body(preferencelist=("plain",)).get_content()
    assert "rode jas en zwarte rugzak" in body
    assert "SAAR" in body  # no mention of 112, so moderation asked for the reminder
    assert mail["Auto-Submitted"] == "auto-generated"

    client = mongo_client(system.settings)
    try:
        db = client[system.settings.database]

        async def audited() -> dict | None:  # type: ignore[type-arg]
            stages = await Audit(Database(db, "tests")).trail(message_id)
            return stages if "deliveries" in stages else None

        stages = await eventually(audited, what="the delivery in the audit trail")
        raw = await db.raw_inputs.find_one({"_id": stages["ingest"]["raw_ref"]})
    finally:
        await client.close()
    assert stages["moderation"]["decision"] == "forward"
    assert stages["moderation"]["language"] == "nl"  # read from the text: web reports carry none
    assert stages["routing"]["rules"] == ["buurtgroep_to_regiegroep"]
    [delivery] = stages["deliveries"].values()
    assert delivery["state"] == "sent"
    assert raw is not None and b"11122233" in raw["body"]  # the archive keeps the raw input
    assert "11122233" not in str(stages)  # the audit trail holds only the pseudonym


async def test_every_service_is_ready_on_its_own_port_and_counts_a_report_in_its_metrics(
    system: System,
) -> None:
    """Each of the four services answers /ready on a port of its own; after one report,
    moderation counts its decision by reason and channels its delivery by channel and status."""
    async with httpx.AsyncClient() as http:
        for service in system.services:
            ready = await eventually(
                lambda s=service: _ok(http, f"{system.url(s)}/ready"), timeout=60, what=f"{service} ready"
            )
            assert ready["ready"] is True, ready
        report = {**REPORT, "report_id": "r-metrics"}
        response = await http.post(system.reports_url, json=report, headers=TOKEN)
        assert response.status_code == 202, response.text

        async def counted(service: str, line: str) -> str | None:
            text = (await http.get(f"{system.url(service)}/metrics")).text
            return text if line in text else None

        moderation = await eventually(
            lambda: counted("moderation", 'buurtalert_moderation_decisions_total{decision="forward"'),
            what="moderation's decision metric",
        )
        assert "faststream_received_messages_total" in moderation
        await eventually(
            lambda: counted("channels", 'buurtalert_deliveries_total{channel="email",status="sent"} 1.0'),
            what="channels' delivery metric",
        )


async def _ok(http: httpx.AsyncClient, url: str) -> dict | None:  # type: ignore[type-arg]
    response = await http.get(url)
    return dict(response.json()) if response.status_code == 200 else None


async def test_bad_input_gets_a_clear_error_and_is_quarantined(system: System) -> None:
    """Invalid JSON (422) and a missing token (401) are answered and kept with the reason."""
    async with httpx.AsyncClient() as http:
        invalid = await http.post(system.reports_url, content=b'{"group": 5', headers=TOKEN)
        anonymous = await http.post(system.reports_url, json=REPORT)
    assert invalid.status_code == 422
    assert "Invalid JSON" in invalid.json()["error"]
    assert anonymous.status_code == 401
    kept = await read_topic(system.settings, "ingest.quarantine", 2)
    by_id = {q["id"]: q for q in kept}
    assert by_id[invalid.json()["quarantine_id"]]["body"] == '{"group": 5'
    assert by_id[anonymous.json()["quarantine_id"]]["reason"] == "missing or unknown bearer token"


async def test_a_repeated_post_is_delivered_once(system: System) -> None:
    """The same report posted twice (a client retry) yields one email."""
    async with httpx.AsyncClient() as http:
        first = await http.post(system.reports_url, json={**REPORT, "report_id": "r-dup"}, headers=TOKEN)
        second = await http.post(system.reports_url, json={**REPORT, "report_id": "r-dup"}, headers=TOKEN)
        # another event (another street): the same words at the same street would be one incident
        elsewhere = REPORT["text"].replace("Dorpstraat", "Molenweg")
        other = await http.post(
            system.reports_url, json={**REPORT, "report_id": "r-other", "text": elsewhere}, headers=TOKEN
        )
    assert (first.status_code, second.status_code, other.status_code) == (202, 200, 202)
    assert second.json() == {"id": first.json()["id"], "duplicate": True}
    await eventually(lambda: len(system.mailbox.mailbox.snapshot()) >= 2, what="two emails")
    await asyncio.sleep(2)  # time for a wrong second email to arrive
    assert len(system.mailbox.mailbox.snapshot()) == 2


async def test_rejected_message_is_not_delivered(system: System) -> None:
    """A thumbs-up reaction goes to messages.rejected with its reason and reaches nobody."""
    response = await post_report(system, report_id="r-thanks", text="Top, bedankt! 👍")
    assert response.status_code == 202
    [rejected] = await read_topic(system.settings, "messages.rejected", 1)
    assert rejected["message"]["id"] == response.json()["id"]
    assert [r["code"] for r in rejected["moderation"]["reasons"]] == ["reaction_only"]
    assert "alleen voor meldingen" in rejected["moderation"]["explanation"]
    assert system.mailbox.mailbox.snapshot() == []


async def test_repeated_rejections_warn_and_then_propose_removal(system: System) -> None:
    """The second rejection of one reporter carries a warning; the third proposes removal to the admin."""
    for n, text in enumerate(("Bedankt!", "Wie heeft mijn kat gezien?", "Te koop: fiets")):
        response = await post_report(system, report_id=f"r-strike-{n}", text=text)
        assert response.status_code == 202
    rejected = await read_topic(system.settings, "messages.rejected", 3)
    by_text = {r["message"]["text"]: r["moderation"] for r in rejected}
    assert by_text["Bedankt!"]["strikes"] == 1
    assert "waarschuwing" in by_text["Wie heeft mijn kat gezien?"]["explanation"]
    [proposal] = await read_topic(system.settings, "moderation.proposals", 1)
    assert proposal["strikes"] == 3 and proposal["group_id"] == "boshoven-noord"
    assert proposal["member"].startswith("p_") and "11122233" not in str(proposal)


async def test_rejected_author_gets_a_friendly_explanation_naming_the_rule(system: System) -> None:
    """A reporter known by email hears, in Dutch and English, why the message was not
    forwarded, without a quote of the message."""
    response = await post_report(
        system,
        report_id="r-pet",
        reporter="Buurman@Example.test",
        text="Onze kat Minoes is weggelopen, wie heeft haar gezien?",
    )
    assert response.status_code == 202
    [mail] = await eventually(lambda: system.mailbox.mailbox.snapshot(), what="the explanation")
    assert mail["To"] == "Buurman@Example.test"
    body = mail.get_body(preferencelist=("plain",)).get_content()
    assert "niet doorgestuurd" in body and "huisdieren" in body and "not forwarded" in body
    assert "Minoes" not in body  # never quoted back
    await asyncio.sleep(1.0)
    assert len(system.mailbox.mailbox.snapshot()) == 1  # and no group received it


async def test_profiling_report_is_held_for_review_with_its_reasons(system: System) -> None:
    """'Donkere man loopt door de straat' goes to the review topic with reason and spans, not to a group."""
    response = await post_report(system, report_id="r-profiling", text="Donkere man loopt door de straat")
    assert response.status_code == 202
    [held] = await read_topic(system.settings, "moderation.review", 1)
    [reason] = held["moderation"]["reasons"]
    assert reason["code"] == "discrimination" and reason["spans"][0]["text"] == "donkere man"
    assert held["moderation"]["policy_version"].startswith("nl-")
    assert system.mailbox.mailbox.snapshot() == []


async def test_a_report_in_a_language_the_policy_does_not_cover_is_held_not_forwarded(system: System) -> None:
    """A web report carries no language tag; moderation reads Polish in the text, holds the
    alert for a person however alarming its words, and tags the held message "pl"."""
    response = await post_report(
        system,
        report_id="r-polish",
        text="Uwaga! Dwóch mężczyzn próbuje otworzyć samochody na Dorpstraat, policja wezwana.",
    )
    assert response.status_code == 202
    [held] = await read_topic(system.settings, "moderation.review", 1)
    assert held["message"]["id"] == response.json()["id"]
    assert "unsupported_language" in [r["code"] for r in held["moderation"]["reasons"]]
    assert held["message"]["language"] == held["moderation"]["language"] == "pl"
    assert system.mailbox.mailbox.snapshot() == []

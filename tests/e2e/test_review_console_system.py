"""The review console in a real browser (Playwright driving Debian's Chromium) with all
the services running as processes, the Graph API emulator and a real mail server: what a
moderator, an admin or a coordinator does on the page has its effect on the groups.
Writes docs/review-proposal.png."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from buurtalert.devkit.graph_emulator import GraphEmulator
from buurtalert.directory.store import DIRECTORY_CACHE_SECONDS
from buurtalert.shared.mongo import Audit, Database, mongo_client
from buurtalert.shared.topics import MESSAGES_APPROVED, MESSAGES_REJECTED, MODERATION_DECISIONS
from tests.e2e.conftest import System
from tests.meta import REGIE_GROUP, wa_message, wa_messages
from tests.review_support import DOCS, ReviewService, logged_in
from tests.support import eventually, read_topic

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
RESIDENT = {"authorization": "Bearer demo-token-buurtpreventie"}
POLICE = {"authorization": "Bearer demo-token-politie"}
REGIE_BOSHOVEN = "regie-boshoven@lists.weert-demo.buurtalert.test"
APPROVED = "Verdachte man probeert achterdeuren aan de Dorpstraat, zijn nummer is 06-98765432"
REJECTED = "Fietsendief gezien aan de Molenstraat, het is die jongen van nummer 12, 06-55511122"


async def report(system: System, report_id: str, text: str, headers: dict[str, str], **fields: Any) -> str:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            system.reports_url,
            json={"report_id": report_id, "reporter": "+31 6 44455566", "text": text, **fields},
            headers=headers,
        )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def whatsapp_to(graph: GraphEmulator, number: str) -> list[str]:
    """The texts the emulator accepted for one number."""
    return [m["text"]["body"] for m in graph.sent if m["to"] == number and m.get("type") == "text"]


async def audit_trail(system: System, message_id: str) -> dict[str, Any]:
    client = mongo_client(system.settings)
    try:
        return await Audit(Database(client[system.settings.database], "tests")).trail(message_id)
    finally:
        await client.close()


async def open_item(page: Page, item_id: str) -> None:
    """Open an item once its row shows in the live queue (opening claims it)."""
    row = page.locator(f'li.item[data-id="{item_id}"]')
    await expect(row).to_be_visible(timeout=60_000)
    await page.goto(f"/items/{item_id}")
    await expect(page.locator("#claim-notice")).to_contain_text("Jij behandelt dit")


async def test_an_item_approved_in_the_browser_reaches_its_group_and_a_rejected_one_no_group(
    browser: Browser, system: System, review: ReviewService
) -> None:
    """Two reports held for a phone number: alice approves the first on its page, and it
    arrives at Boshoven's regiegroep by email as an incident; the second's page shows that
    incident of its district; she rejects it: it is published on messages.rejected, never
    routed, and no mailbox receives it."""
    approved_id = await report(system, "console-ok", APPROVED, RESIDENT, group="boshoven-noord")
    rejected_id = await report(system, "console-no", REJECTED, RESIDENT, group="boshoven-noord")
    alice = await logged_in(browser, review, "alice")

    await open_item(alice, approved_id)
    await expect(alice.locator("#district")).to_have_text("boshoven")
    await expect(alice.locator("#no-nearby-incidents")).to_be_visible()
    await alice.get_by_role("button", name="Goedkeuren").click()
    await expect(alice.locator("#undo-button")).to_be_visible()  # the forward waits out its undo window

    inbox = await eventually(
        lambda: (box := system.inbox()) and REGIE_BOSHOVEN in box and box,
        timeout=90,
        what="the regiegroep's email",
    )
    [body] = [b for b in inbox[REGIE_BOSHOVEN] if "achterdeuren aan de Dorpstraat" in b]
    reference = re.search(r"Incident ([0-9A-F]{6})", body)
    assert reference, body

    # the second held report's page shows the incident the first one opened in the district
    await alice.goto("/queue")
    await open_item(alice, rejected_id)
    await expect(alice.locator("#nearby-incidents")).to_contain_text(reference.group(1))
    await alice.get_by_label("Reden voor afwijzen").select_option("privacy")
    await alice.get_by_role("button", name="Afwijzen").click()
    await expect(alice).to_have_url(re.compile(r"/queue"))  # a rejection goes at once: back to the queue
    await expect(alice.locator(f'li.item[data-id="{rejected_id}"]')).to_have_count(0)
    [rejection] = await read_topic(system.settings, MESSAGES_REJECTED.name, 1, timeout=60)
    assert rejection["message"]["id"] == rejected_id
    assert rejection["moderation"]["reviewer"] == "alice" and rejection["moderation"]["decision"] == "reject"
    trail = await audit_trail(system, rejected_id)
    assert trail["moderation_decision"]["actor"] == "alice"
    # moderation has published the rejection, so what it approved is final: routing reads
    # messages.approved only, and the rejected report is not there
    approved = await read_topic(system.settings, MESSAGES_APPROVED.name, 2, timeout=5)
    assert [r["message"]["id"] for r in approved] == [approved_id]
    assert not any("Molenstraat" in body for bodies in system.inbox().values() for body in bodies)
    assert "routing" not in trail


COORDINATOR = "31600000002"  # coordinator-noord, in Boshoven's regiegroep and its WhatsApp group
WIJKAGENT = "31600000001"


async def test_a_removal_in_the_browser_needs_a_second_admin_before_the_member_leaves_the_group(
    browser: Browser, system: System, review: ReviewService, graph: GraphEmulator
) -> None:
    """Three off-topic messages in the regiegroep's WhatsApp group propose their author's
    removal; its page lists the three rejections with their reasons; anna (admin) agrees
    and nothing happens yet, nor can she agree twice; carl (coordinator) agrees too and
    channels takes the author, and only the author, out of the WhatsApp group."""
    graph.groups[REGIE_GROUP] = {WIJKAGENT, COORDINATOR}
    for n, text in enumerate(("Bedankt!", "Wie heeft mijn kat gezien?", "Te koop: fiets")):
        await system.whatsapp(
            wa_messages(wa_message(COORDINATOR, f"wamid.off-{n}", group_id=REGIE_GROUP, text={"body": text}))
        )
    anna = await logged_in(browser, review, "anna", viewport={"width": 1100, "height": 900})
    proposal = anna.locator("li.item:has(.proposal-badge)")
    await expect(proposal).to_have_count(1, timeout=90_000)
    proposal_id = await proposal.get_attribute("data-id")
    await open_item(anna, str(proposal_id))
    rejections = anna.locator("#member-rejections li")  # what the proposal is based on
    await expect(rejections).to_have_count(3)
    for n in range(3):
        await expect(rejections.nth(n)).to_contain_text("boshoven-regie")
        await expect(rejections.nth(n).locator(".badge.reason")).not_to_have_count(0)
    await anna.get_by_role("button", name="Akkoord met verwijderen").click()
    await expect(anna.locator("#agreed-by")).to_have_text("anna")
    await expect(anna.locator("#agree-waiting")).to_be_visible()
    await expect(anna.locator("#agree-button")).to_be_disabled()  # the same person cannot be the second
    await anna.screenshot(path=str(DOCS / "review-proposal.png"), full_page=True)
    await anna.get_by_role("button", name="Vrijgeven").click()

    carl = await logged_in(browser, review, "carl")
    await open_item(carl, str(proposal_id))
    await expect(carl.locator("#agreed-by")).to_have_text("anna")
    await carl.get_by_role("button", name="Akkoord met verwijderen").click()
    await expect(carl).to_have_url(re.compile(r"/queue"))  # decided: back to the queue
    await expect(carl.locator(f'li.item[data-id="{proposal_id}"]')).to_have_count(0)

    await eventually(
        lambda: graph.participants(REGIE_GROUP) == {WIJKAGENT}, timeout=90, what="the author out of the group"
    )
    assert graph.calls == [("DELETE", f"/v21.0/{REGIE_GROUP}/participants")]
    # one decision, once both agreed: anna's agreement alone published none
    decisions = await read_topic(system.settings, MODERATION_DECISIONS.name, 2, timeout=5)
    assert [(d["subject_id"], d["action"], d["agreed_by"]) for d in decisions] == [
        (proposal_id, "remove_member", ["anna", "carl"])
    ]


NEWCOMER = "31655501234"
CENTRUM_WEST_MEMBERS = ("31600000011", "31600000012")  # who consented in the directory


async def test_a_join_approved_in_the_browser_starts_the_member_receiving(
    browser: Browser, system: System, review: ReviewService, graph: GraphEmulator
) -> None:
    """A newcomer sends AANMELDEN with Centrum-West's code and gets nothing of a police alert
    while pending; carl, its coordinator, approves the join on the vetting screen; the
    newcomer is welcomed with the house rules and receives the next alert."""
    await system.whatsapp(
        wa_messages(wa_message(NEWCOMER, "wamid.join-1", text={"body": "AANMELDEN CW-5H2J9N4D"}))
    )
    carl = await logged_in(browser, review, "carl")
    await carl.get_by_role("link", name="Aanmeldingen").click()
    join = carl.locator("li.join")
    await expect(join).to_have_count(1, timeout=60_000)
    await expect(join).to_contain_text("centrum-west")

    await report(
        system,
        "alert-before",
        "Let op: inbraakgolf in Centrum. Sluit ramen.",
        POLICE,
        category="burglary_wave",
        target={"districts": ["centrum"]},
    )
    await eventually(
        lambda: all(whatsapp_to(graph, n) for n in CENTRUM_WEST_MEMBERS), timeout=60, what="the first alert"
    )
    assert not whatsapp_to(graph, NEWCOMER)  # pending members receive nothing

    await carl.goto(str(await join.locator("a.join-link").get_attribute("href")))
    await carl.get_by_role("button", name="Goedkeuren").click()
    await expect(carl.locator("#vet-notice")).to_contain_text("goedgekeurd")
    welcome = await eventually(lambda: whatsapp_to(graph, NEWCOMER), timeout=60, what="the welcome")
    assert "goedgekeurd" in welcome[0] and "112" in welcome[0]
    await asyncio.sleep(DIRECTORY_CACHE_SECONDS)  # routing's copy of the register, read for the first alert

    await report(
        system,
        "alert-after",
        "Let op: auto-inbraken in Centrum vannacht.",
        POLICE,
        category="burglary_wave",
        target={"districts": ["centrum"]},
    )

    async def alerted() -> list[str]:
        return [t for t in whatsapp_to(graph, NEWCOMER) if "auto-inbraken" in t]

    await eventually(alerted, timeout=90, what="the next alert at the newcomer")
    assert not any("inbraakgolf" in t for t in whatsapp_to(graph, NEWCOMER))

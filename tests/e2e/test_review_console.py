"""The review console in a real browser: Playwright driving Debian's Chromium
(``/usr/bin/chromium``; ``make test`` installs it when missing) against the services as
processes. Writes docs/review-queue.png, docs/review-item.png and docs/review-members.png."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, expect

from buurtalert.devkit.testing import free_port
from buurtalert.directory.model import load_directory
from buurtalert.directory.store import Memberships, store_directory
from buurtalert.shared.collections import REVIEW_SESSIONS
from buurtalert.shared.models import utcnow
from buurtalert.shared.mongo import Database, mongo_client
from buurtalert.shared.settings import Settings, load_municipality_config
from buurtalert.shared.topics import INGEST, MESSAGES_APPROVED, REVIEW_MEMBERSHIPS
from tests.conftest import DEMO, TEST_FAILED
from tests.review_support import (
    DOCS,
    PASSWORD,
    ReviewService,
    held_message,
    log_dir,
    logged_in,
    running_review,
)
from tests.support import ServiceProcess, read_topic, wait_http

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


@pytest.fixture
async def review(
    settings: Settings, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[ReviewService]:
    async with running_review(
        settings, tmp_path, failed=lambda: request.node.stash.get(TEST_FAILED, False)
    ) as service:
        yield service


async def test_a_held_message_appears_live_and_an_approval_reaches_messages_approved(
    browser: Browser, review: ReviewService, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Reported through ingest, held by moderation, shown in the open queue without a
    reload; approved with the keyboard, and moderation publishes it on messages.approved."""
    settings = review.settings
    client = mongo_client(settings)
    key = load_municipality_config(DEMO / "weert" / "municipality.yaml").pseudonym_key
    directory = load_directory(DEMO / "weert" / "directory.yaml").pseudonymised(key)
    await store_directory(Database(client[settings.database], "directory"), directory)
    await client.close()
    ingest_port = free_port()
    ingest_settings = settings.model_copy(update={"http_port": ingest_port})
    services = [
        ServiceProcess("ingest", ingest_settings, log_dir(tmp_path)),
        ServiceProcess(
            "moderation", settings.model_copy(update={"http_port": free_port()}), log_dir(tmp_path)
        ),
    ]
    for process in services:
        process.start()
    try:
        await wait_http(f"http://127.0.0.1:{ingest_port}/health")
        for process in services:
            await process.started()
        # something already waiting, urgent, for a fuller picture
        await review.hold(
            held_message(
                "msg_missing",
                "Vermist: jongen van 8 met rode jas bij de Kerkstraat, 112 is gebeld. Moeder: 06-11223344",
                urgent=True,
                also="missing_person",
            )
        )
        page = await logged_in(browser, review, "alice", viewport={"width": 1100, "height": 900})
        await expect(page.locator("li.item")).to_have_count(1)
        await page.evaluate("window.notReloaded = true")

        text = "Verdachte man probeert achterdeuren aan de Dorpstraat, zijn nummer is 06-98765432"
        async with httpx.AsyncClient() as http:
            response = await http.post(
                f"http://127.0.0.1:{ingest_port}/reports",
                json={
                    "report_id": "browser-1",
                    "group": "boshoven-noord",
                    "reporter": "+31 6 44455566",
                    "text": text,
                },
                headers={"authorization": "Bearer demo-token-buurtpreventie"},
            )
        assert response.status_code == 202, response.text
        message_id = response.json()["id"]

        row = page.locator(f'li.item[data-id="{message_id}"]')
        await expect(row).to_be_visible(timeout=60_000)
        assert await page.evaluate("window.notReloaded") is True  # it came without a reload
        await expect(row.locator("mark.r-privacy")).to_contain_text("06-98765432")
        await expect(page.locator("li.item").first).to_have_class(re.compile("urgent"))
        await expect(page.locator("li.item.urgent .timer")).to_contain_text("min")
        await page.screenshot(path=str(DOCS / "review-queue.png"), full_page=True)

        await page.keyboard.press("j")
        await page.keyboard.press("j")
        await expect(row).to_have_class(re.compile("selected"))
        await page.keyboard.press("o")
        await expect(page).to_have_url(re.compile(f"/items/{message_id}$"))
        await expect(page.locator("#claim-notice")).to_contain_text("Jij behandelt dit tot")
        await expect(page.locator("blockquote mark.r-privacy")).to_contain_text("06-98765432")
        await expect(page.locator(".history")).to_contain_text("review.view")
        await page.get_by_label("Reden voor afwijzen").select_option("rumour")
        await expect(page.locator("#explanation")).to_contain_text("geen vermoedens of geruchten")
        await page.screenshot(path=str(DOCS / "review-item.png"), full_page=True)

        await page.locator("h1").click()  # leave the select: shortcuts work on the page
        await page.keyboard.press("a")
        # the forward waits out its undo window on the item's page, then goes
        await expect(page).to_have_url(re.compile(f"/items/{message_id}$"))
        await expect(page.locator("#undo-button")).to_be_visible()
        await page.goto("/queue")
        await expect(page.locator(f'li.item[data-id="{message_id}"]')).to_have_count(0)

        approved = await read_topic(settings, MESSAGES_APPROVED.name, 1, timeout=60)
        assert approved[0]["message"]["id"] == message_id
        assert approved[0]["moderation"]["reviewer"] == "alice"
        assert approved[0]["moderation"]["decision"] == "forward"
    finally:
        for process in services:
            process.stop()
        if request.node.stash.get(TEST_FAILED, False):
            for process in services:
                print(f"===== {process.name}\n{process.log()[-4000:]}")


async def test_a_second_moderator_sees_the_claim_and_a_stale_action_gets_409(
    browser: Browser, review: ReviewService
) -> None:
    await review.hold(held_message("msg_claimed", strikes=2))
    alice = await logged_in(browser, review, "alice")
    await expect(alice.locator('li.item[data-id="msg_claimed"]')).to_be_visible(timeout=30_000)
    await expect(alice.locator('li.item[data-id="msg_claimed"] .strikes')).to_contain_text("2")
    await alice.goto("/items/msg_claimed")
    await expect(alice.locator("#claim-notice")).to_contain_text("Jij behandelt dit")
    await expect(alice.locator("#author-strikes")).to_have_text("2")
    await expect(alice.locator("#district")).to_have_text("boshoven")
    await expect(alice.locator("#no-nearby-incidents")).to_be_visible()

    # bob, on a phone, sees who holds it and cannot act on it
    bob = await logged_in(browser, review, "bob", viewport={"width": 390, "height": 844}, is_mobile=True)
    await expect(bob.locator('li.item[data-id="msg_claimed"] .claimed')).to_contain_text("alice")
    await bob.goto("/items/msg_claimed")
    await expect(bob.locator("#claim-notice")).to_contain_text("In behandeling bij alice")
    await expect(bob.locator("#approve-button")).to_be_disabled()
    assert await bob.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    # alice has the item open twice; she approves in one, then rejects in the other
    second = await alice.context.new_page()
    await second.goto("/items/msg_claimed")
    await alice.get_by_role("button", name="Goedkeuren").click()
    await expect(alice).to_have_url(re.compile(r"/items/msg_claimed$"))
    async with second.expect_response(re.compile(r"/items/msg_claimed/reject$")) as answer:
        await second.get_by_role("button", name="Afwijzen").click()
    assert (await answer.value).status == 409
    await expect(second.locator("h1")).to_contain_text("intussen gewijzigd")


async def test_wrong_password_lockout_missing_csrf_another_municipalitys_item_and_an_expired_session(
    browser: Browser, review: ReviewService
) -> None:
    await review.hold(held_message("msg_weert"))
    context = await browser.new_context(base_url=review.url)
    page = await context.new_page()
    await page.goto("/login")
    for attempt in range(5):
        await page.get_by_label("Gebruikersnaam").fill("bob")
        await page.get_by_label("Wachtwoord").fill(f"wrong-{attempt}")
        await page.get_by_role("button", name="Inloggen").click()
        expected = "geblokkeerd" if attempt == 4 else "verkeerd wachtwoord"
        await expect(page.get_by_role("alert")).to_contain_text(expected)
    await page.get_by_label("Gebruikersnaam").fill("bob")
    await page.get_by_label("Wachtwoord").fill(PASSWORD)
    await page.get_by_role("button", name="Inloggen").click()
    await expect(page.get_by_role("alert")).to_contain_text("geblokkeerd")

    # the English interface, through the language switch
    await page.get_by_role("link", name="English").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Log in")

    alice = await logged_in(browser, review, "alice")
    await expect(alice.locator('li.item[data-id="msg_weert"]')).to_be_visible(timeout=30_000)
    await alice.goto("/items/msg_weert")
    controls = alice.locator("main input:not([type=hidden]), main select, main textarea, main button")
    assert await controls.count() >= 4
    for control in await controls.all():  # every control has a name a screen reader reads out
        await expect(control).to_have_accessible_name(re.compile(r"\w"))
    await alice.evaluate("document.querySelector('#approve-form input[name=csrf]').remove()")
    async with alice.expect_response(re.compile(r"/approve$")) as answer:
        await alice.get_by_role("button", name="Goedkeuren").click()
    assert (await answer.value).status == 403
    await expect(alice.locator("h1")).to_contain_text("niet van ons")
    await alice.goto("/items/msg_weert")
    await expect(alice.locator("#claim-notice")).to_be_visible()  # still open, nothing decided

    eve = await logged_in(browser, review, "eve")
    await expect(eve.locator("li.item")).to_have_count(0)
    response = await eve.goto("/items/msg_weert")
    assert response is not None and response.status == 404
    await expect(eve.locator("h1")).to_have_text("Niet gevonden.")

    # alice's session expires (eight hours after her login): the next page asks her to log in,
    # and an action with the form's token of that session is refused
    csrf = await alice.locator("#reject-form input[name=csrf]").get_attribute("value")
    client = mongo_client(review.settings)
    try:
        sessions = client[review.settings.database][REVIEW_SESSIONS.name]
        ended = await sessions.update_many(
            {"user": "alice"}, {"$set": {"expires": utcnow() - timedelta(seconds=1)}}
        )
        assert ended.modified_count == 1
    finally:
        await client.close()
    answer = await alice.context.request.post(
        f"{review.url}/items/msg_weert/approve", form={"version": "0", "csrf": str(csrf)}
    )
    assert answer.status == 401
    await alice.goto("/items/msg_weert")
    await expect(alice).to_have_url(re.compile(r"/login"))


async def test_a_coordinator_vets_a_join_and_a_moderator_rejects_noise_in_bulk(
    browser: Browser, review: ReviewService
) -> None:
    """A pending join shows on the vetting screen of its group's coordinator (writes
    docs/review-members.png) and is approved with a click, published for ingest; the
    coordinator of another group does not see it and gets 404 at its address; a moderator
    narrows the queue to one group, ticks its two noise rows and rejects them with one
    reason."""
    client = mongo_client(review.settings)
    try:
        memberships = Memberships(Database(client[review.settings.database], INGEST))
        assert await memberships.join("weert-demo", "p_joiner", "31655555555", "boshoven-noord", utcnow())
    finally:
        await client.close()
    for name in ("msg_noise_a", "msg_noise_b"):
        await review.hold(held_message(name, "Wie heeft mijn kat gezien? Bel 06-12345678"))
    await review.hold(held_message("msg_west", group_id="centrum-west"))

    carl = await logged_in(browser, review, "carl")  # coordinator of boshoven-noord (and others)
    await expect(carl.locator("#scope")).to_have_text("boshoven-noord, boshoven-regie, centrum-west")
    await carl.get_by_role("link", name="Aanmeldingen").click()
    await expect(carl.locator("li.join")).to_have_count(1)
    await expect(carl.locator("li.join")).to_contain_text("boshoven-noord")
    await carl.screenshot(path=str(DOCS / "review-members.png"), full_page=True)
    join_page = await carl.locator("li.join a.join-link").get_attribute("href")
    assert join_page is not None and join_page.startswith("/members/mbd_")

    cora = await logged_in(browser, review, "cora")  # coordinator of boshoven-zuid only
    await expect(cora.locator("#scope")).to_have_text("boshoven-zuid")
    await cora.get_by_role("link", name="Aanmeldingen").click()
    await expect(cora.locator("#no-joins")).to_be_visible()
    response = await cora.goto(join_page)
    assert response is not None and response.status == 404
    await expect(cora.locator("h1")).to_have_text("Niet gevonden.")
    await expect(cora.locator("body")).not_to_contain_text("p_joiner")

    await carl.goto(join_page)  # the join's own page, for its group's coordinator
    await expect(carl.locator("li.join")).to_contain_text("p_joiner")
    await carl.get_by_role("button", name="Goedkeuren").click()
    await expect(carl.locator("#vet-notice")).to_contain_text("goedgekeurd")
    await expect(carl.locator("#no-joins")).to_be_visible()
    decisions = await read_topic(review.settings, REVIEW_MEMBERSHIPS.name, 1)
    assert decisions[0]["member"] == "p_joiner" and decisions[0]["approved"] is True
    assert decisions[0]["actor"] == "carl"

    alice = await logged_in(browser, review, "alice")
    await expect(alice.locator("li.item")).to_have_count(3, timeout=30_000)
    await alice.get_by_label("Groep").select_option("boshoven-noord")
    await alice.get_by_role("button", name="Toepassen").click()
    await expect(alice).to_have_url(re.compile(r"group=boshoven-noord"))
    await expect(alice.locator("li.item")).to_have_count(2)  # centrum-west's item filtered out
    for name in ("msg_noise_a", "msg_noise_b"):
        row = alice.locator(f'li.item[data-id="{name}"]')
        await expect(row).to_be_visible(timeout=30_000)
        await row.locator("input.pick").check()
    await alice.get_by_label("Geselecteerde afwijzen met reden").select_option("off_topic")
    await alice.get_by_role("button", name="Selectie afwijzen").click()
    await expect(alice.locator("#bulk-notice")).to_contain_text("2 afgewezen")
    await alice.goto("/queue")
    await expect(alice.locator("li.item")).to_have_count(1)
    await expect(alice.locator('li.item[data-id="msg_west"]')).to_be_visible()

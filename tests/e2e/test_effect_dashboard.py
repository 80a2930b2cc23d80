"""Effect per district in a real browser (Playwright with Debian's Chromium) against the
review service as a process, on the seeded history of tests/effect_support.py: the
wijkagent reads the figures per district with the small-number rule and exports them as
CSV; a moderator may not; a coordinator records an incident's outcome in the console.
Writes docs/effect-dashboard.png and docs/effect-incident.png."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from buurtalert.directory.model import load_directory
from buurtalert.directory.store import store_directory
from buurtalert.shared.mongo import Database, mongo_client
from buurtalert.shared.settings import Settings, load_municipality_config
from tests.conftest import DEMO, TEST_FAILED
from tests.effect_support import POLL_ID, history
from tests.review_support import DOCS, ReviewService, logged_in, running_review

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


@pytest.fixture
async def review(
    settings: Settings, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[ReviewService]:
    client = mongo_client(settings)
    try:
        db = client[settings.database]
        key = load_municipality_config(DEMO / "weert" / "municipality.yaml").pseudonym_key
        directory = load_directory(DEMO / "weert" / "directory.yaml").pseudonymised(key)
        await store_directory(Database(db, "directory"), directory)
        for name, docs in history().items():
            await db[name].insert_many(docs)
    finally:
        await client.close()
    async with running_review(
        settings, tmp_path, failed=lambda: request.node.stash.get(TEST_FAILED, False)
    ) as service:
        yield service


async def test_the_wijkagent_reads_the_figures_per_district_and_exports_them(
    browser: Browser, review: ReviewService, tmp_path: Path
) -> None:
    page = await logged_in(browser, review, "agent", viewport={"width": 1280, "height": 900})
    await page.get_by_role("link", name="Effect per wijk").click()
    await page.get_by_label("Vanaf").fill("2026-11-02")
    await page.get_by_role("button", name="Tonen").click()
    await expect(page).to_have_url(re.compile(r"/effect\?since=2026-11-02"))
    boshoven = page.locator("table.figures tbody tr", has=page.locator("th", has_text="boshoven"))
    await expect(boshoven.locator("td").nth(1)).to_have_text("26")  # reports
    leuken = page.locator("table.figures tbody tr", has=page.locator("th", has_text="leuken"))
    await expect(leuken.locator("td").nth(1)).to_have_text("< 5")
    await expect(page.locator("svg.chart")).to_have_count(4)
    await expect(page.locator("#small-rule")).to_contain_text("< 5")
    poll = page.locator(f"#poll-{POLL_ID}")
    await expect(poll.locator("h3")).to_have_text("Voelt u zich veiliger in uw straat dan een jaar geleden?")
    rows = poll.locator("tbody tr")
    await expect(rows.nth(0).locator("td").nth(1)).to_have_text("12 / 40")  # Boshoven answered / invited
    await expect(rows.nth(1).locator("td")).to_have_text(["Ja", "7", "0.583"])
    await expect(rows.nth(2).locator("td")).to_have_text(["Nee", "5", "0.417"])
    await expect(rows.nth(4).locator("td").nth(1)).to_have_text("< 5 / 10")  # Leuken: 3 answers
    await page.screenshot(path=str(DOCS / "effect-dashboard.png"), full_page=True)

    async with page.expect_download() as download_info:
        await page.get_by_role("link", name="Download als CSV").click()
    download = await download_info.value
    saved = tmp_path / "effect.csv"
    await download.save_as(saved)
    text = saved.read_text(encoding="utf-8")
    assert text.startswith("district,households,reports")
    assert "boshoven,3180,26," in text and "leuken,2410,< 5," in text


async def test_a_moderator_does_not_see_the_figures(browser: Browser, review: ReviewService) -> None:
    page = await logged_in(browser, review, "bob")
    response = await page.goto("/effect")
    assert response is not None and response.status == 403


async def test_a_coordinator_records_an_outcome_on_the_incident_page(
    browser: Browser, review: ReviewService
) -> None:
    page = await logged_in(browser, review, "carl", viewport={"width": 1100, "height": 800})
    await page.get_by_role("link", name="Incidenten").click()
    await page.get_by_role("link", name="inc_12").click()
    await expect(page.locator("#outcome")).to_have_text("Nog geen afloop")
    await page.get_by_label("niets aangetroffen").check()
    await page.get_by_label("Korte toelichting (optioneel)").fill("Politie heeft de wijk doorzocht")
    await page.screenshot(path=str(DOCS / "effect-incident.png"), full_page=True)
    await page.get_by_role("button", name="Vastleggen en groepen informeren").click()
    await expect(page.locator("p.notice")).to_contain_text("De afloop is vastgelegd")
    await expect(page.locator("#outcome")).to_contain_text(
        "niets aangetroffen: Politie heeft de wijk doorzocht"
    )
    [recorded] = await review.db("incident_outcomes", {"_id": "inc_12"})
    assert (recorded["outcome"], recorded["actor"], recorded["source"]) == (
        "nothing_found",
        "carl",
        "console",
    )

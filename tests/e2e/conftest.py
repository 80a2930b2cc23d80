"""The four services as real processes, wired through this test's topics and database."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, async_playwright

from buurtalert.devkit.devmail import DevMailbox
from buurtalert.devkit.testing import free_port
from buurtalert.directory.model import load_directory
from buurtalert.directory.store import store_directory
from buurtalert.shared.mongo import Database, mongo_client
from buurtalert.shared.settings import Settings, load_municipality_config
from tests.conftest import DEMO, TEST_FAILED
from tests.meta import signed
from tests.review_support import ReviewService, running_review
from tests.support import ServiceProcess, wait_http

SERVICES = ("ingest", "moderation", "routing", "channels")
WHATSAPP_APP_SECRET = "demo-whatsapp-app-secret"  # the demo municipality's
CHROMIUM = Path("/usr/bin/chromium")


@dataclass
class System:
    settings: Settings
    mailbox: DevMailbox
    services: dict[str, ServiceProcess]

    @property
    def reports_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.http_port}/reports"

    def url(self, service: str) -> str:
        """Where ``service`` serves /health, /ready and /metrics."""
        return f"http://127.0.0.1:{self.services[service].env['BUURTALERT_HTTP_PORT']}"

    async def whatsapp(self, body: bytes) -> dict[str, Any]:
        """Post ``body`` to ingest's WhatsApp webhook, signed as Meta signs it; its answer."""
        async with httpx.AsyncClient() as http:
            response = await http.post(
                f"http://127.0.0.1:{self.settings.http_port}/webhooks/whatsapp",
                content=body,
                headers=signed(body, WHATSAPP_APP_SECRET),
            )
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def inbox(self) -> dict[str, list[str]]:
        """Recipient address -> plain-text bodies the mail server received."""
        inbox: dict[str, list[str]] = {}
        for mail in self.mailbox.mailbox.snapshot():
            body = mail.get_body(preferencelist=("plain",))
            inbox.setdefault(str(mail["To"]), []).append(body.get_content() if body else "")
        return inbox

    def logs(self) -> str:
        return "\n".join(f"===== {n}\n{p.log()[-4000:]}" for n, p in self.services.items())


@pytest.fixture
async def system(
    settings: Settings, mailbox: DevMailbox, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[System]:
    client = mongo_client(settings)
    for municipality in ("weert", "bocholt"):
        key = load_municipality_config(DEMO / municipality / "municipality.yaml").pseudonym_key
        directory = load_directory(DEMO / municipality / "directory.yaml").pseudonymised(key)
        await store_directory(Database(client[settings.database], "directory"), directory)
    await client.close()
    # Each service serves /health, /ready and /metrics on a port of its own; ingest on settings'.
    services = {
        name: ServiceProcess(
            name,
            settings if name == "ingest" else settings.model_copy(update={"http_port": free_port()}),
            tmp_path,
        )
        for name in SERVICES
    }
    for process in services.values():
        process.start()
    running = System(settings, mailbox, services)
    try:
        await wait_http(f"http://127.0.0.1:{settings.http_port}/health")
        for process in services.values():
            await process.started()
        yield running
    finally:
        for process in services.values():
            process.stop()
        if request.node.stash.get(TEST_FAILED, False):
            print(running.logs())


@pytest.fixture
async def review(
    system: System, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[ReviewService]:
    """The review service as a process beside the system's four (its log printed if the test failed)."""
    async with running_review(
        system.settings, tmp_path, failed=lambda: request.node.stash.get(TEST_FAILED, False)
    ) as service:
        yield service


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Debian's headless Chromium driven by Playwright (``make test`` installs it when missing)."""
    if not os.path.exists(CHROMIUM):  # noqa: ASYNC240 (once, before the browser starts)
        pytest.fail("the browser tests need Debian's chromium: apt-get install -y chromium (make test does)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield launched
        finally:
            await launched.close()

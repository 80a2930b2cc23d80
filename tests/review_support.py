"""Support for the review console's tests: the service as a process, its users, held
messages published as moderation publishes them, and logged-in HTTP clients."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from playwright.async_api import Browser, BrowserContext, Page, expect
from pydantic import BaseModel

from buurtalert.devkit.testing import free_port, settings_environment
from buurtalert.directory.model import load_directory
from buurtalert.directory.store import store_directory
from buurtalert.review.handlers import Access
from buurtalert.review.stores import Sessions, Users
from buurtalert.shared.collections import DIRECTORY
from buurtalert.shared.models import (
    Author,
    Decision,
    InboundMessage,
    ModeratedMessage,
    ModerationResult,
    ProviderRef,
    Reason,
    RemovalProposal,
    Role,
    SourceChannel,
    Span,
    utcnow,
)
from buurtalert.shared.mongo import Database, mongo_client
from buurtalert.shared.settings import Settings, load_municipality_config
from buurtalert.shared.topics import MODERATION_PROPOSALS, MODERATION_REVIEW, REVIEW
from tests.conftest import DEMO, ROOT
from tests.support import BIN, ServiceProcess, wait_http

PASSWORD = "correct horse battery"
DOCS = ROOT / "docs"  # where the browser tests write their screenshots
LOGIN_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def add_users(settings: Settings, users: list[tuple[str, str, str, tuple[str, ...]]]) -> None:
    """Users ``(name, role, municipality, scope)`` added in-process, as the command does
    (faster than a process each); the scope is a coordinator's groups or a wijkagent's
    districts."""
    client = mongo_client(settings)
    try:
        db = Database(client[settings.database], REVIEW)
        access = Access(Users(db), Sessions(db))
        for name, role, municipality, scope in users:
            await access.add_user(
                name,
                municipality,
                Role(role),
                PASSWORD,
                groups=scope if role == "coordinator" else (),
                districts=scope if role == "wijkagent" else (),
            )
    finally:
        await client.close()


async def store_demo_directories(settings: Settings) -> None:
    """The demo municipalities' directories, as ``buurtalert directory load`` stores them
    (the console takes an item's district from its group's)."""
    client = mongo_client(settings)
    try:
        for municipality in ("weert", "bocholt"):
            key = load_municipality_config(DEMO / municipality / "municipality.yaml").pseudonym_key
            directory = load_directory(DEMO / municipality / "directory.yaml").pseudonymised(key)
            await store_directory(Database(client[settings.database], DIRECTORY), directory)
    finally:
        await client.close()


def add_user(
    settings: Settings, name: str, role: str, municipality: str = "weert-demo", *scope: str
) -> subprocess.CompletedProcess[str]:
    """``buurtalert review user add``, the password on standard input; ``scope`` the
    options that give it one (``--groups a,b``)."""
    return subprocess.run(
        [str(BIN), "review", "user", "add", "--municipality", municipality, "--role", role, *scope, name],
        input=f"{PASSWORD}\n",
        text=True,
        check=True,
        capture_output=True,
        env={**os.environ, **settings_environment(settings)},
        timeout=60,
    )


def held_message(
    message_id: str,
    text: str = "Verdachte man belt aan bij huizen, zijn nummer is 06-12345678",
    *,
    municipality: str = "weert-demo",
    group_id: str = "boshoven-noord",
    urgent: bool = False,
    received_at: datetime | None = None,
    reason: str = "privacy",
    also: str = "suspicious_situation",
    strikes: int | None = None,
    verified: bool = True,
) -> ModeratedMessage:
    """A message as moderation holds it: the phone number's span marked as privacy."""
    start = text.find("06-")
    spans = (Span(start=start, end=start + 11, text="phone"),) if start >= 0 else ()
    received = received_at or utcnow()
    message = InboundMessage(
        id=message_id,
        provider=ProviderRef(channel=SourceChannel.WHATSAPP, message_id=f"wamid.{message_id}"),
        municipality=municipality,
        group_id=group_id,
        author=Author(pseudonym="p_author_1", role=Role.RESIDENT, verified=verified),  # a WhatsApp sender
        text=text,
        language="nl",
        sent_at=received - timedelta(seconds=5),
        received_at=received,
        raw_ref="raw_test",
    )
    result = ModerationResult(
        message_id=message_id,
        decision=Decision.REVIEW,
        reasons=(Reason(code=reason, score=0.7, spans=spans), Reason(code=also, score=0.7)),
        explanation="Een moderator kijkt naar je bericht.",
        explanation_en="A moderator will look at your message.",
        urgent=urgent,
        strikes=strikes,
        policy_version="nl-test",
    )
    return ModeratedMessage(message=message, moderation=result)


def removal_proposal(
    proposal_id: str,
    municipality: str = "weert-demo",
    *,
    group_id: str = "boshoven-noord",
    member: str = "p_troublemaker",
) -> RemovalProposal:
    return RemovalProposal(
        id=proposal_id,
        municipality=municipality,
        group_id=group_id,
        member=member,
        strikes=3,
        message_ids=("msg_x",),
        reasons=("off_topic",),
    )


async def publish(settings: Settings, topic: str, record: BaseModel, key: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(
            settings.topic(topic), record.model_dump_json().encode(), key=key.encode()
        )
    finally:
        await producer.stop()


@dataclass
class ReviewService:
    settings: Settings
    process: ServiceProcess
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.http_port}"

    async def hold(self, held: ModeratedMessage) -> None:
        await publish(self.settings, MODERATION_REVIEW.name, held, held.message.group_id or held.message.id)

    async def propose(self, proposal: RemovalProposal) -> None:
        await publish(self.settings, MODERATION_PROPOSALS.name, proposal, proposal.group_id or proposal.id)

    def client(self) -> httpx.AsyncClient:
        client = httpx.AsyncClient(base_url=self.url, timeout=30, headers={"Accept": "application/json"})
        self.clients.append(client)
        return client

    async def login_form(self, client: httpx.AsyncClient) -> str:
        """Fetch the login page; the CSRF token of its form (its cookie is in the client)."""
        page = await client.get("/login", headers={"Accept": "text/html"})
        found = LOGIN_CSRF.search(page.text)
        assert found, page.text
        return found.group(1)

    async def login(self, name: str, password: str = PASSWORD) -> tuple[httpx.AsyncClient, str]:
        """A client logged in as ``name``, and its session's CSRF token."""
        client = self.client()
        csrf = await self.login_form(client)
        response = await client.post("/login", data={"username": name, "password": password, "csrf": csrf})
        assert response.status_code == 200, response.text
        return client, response.json()["csrf"]

    async def db(self, collection: str, query: dict[str, Any]) -> list[dict[str, Any]]:
        client = mongo_client(self.settings)
        try:
            return [d async for d in client[self.settings.database][collection].find(query)]
        finally:
            await client.close()

    async def close(self) -> None:
        for client in self.clients:
            await client.aclose()


#: The users every console test has: (name, role, municipality, scope): carl coordinates
#: three groups (as coordinator-noord of the demo, and centrum-west), cora one other; agent
#: is the wijkagent of two districts, wout of another.
USERS = [
    ("bob", "moderator", "weert-demo", ()),
    ("agent", "wijkagent", "weert-demo", ("boshoven", "leuken")),
    ("wout", "wijkagent", "weert-demo", ("centrum",)),
    ("anna", "admin", "weert-demo", ()),
    ("carl", "coordinator", "weert-demo", ("boshoven-noord", "boshoven-regie", "centrum-west")),
    ("cora", "coordinator", "weert-demo", ("boshoven-zuid",)),
    ("eve", "admin", "bocholt-demo", ()),
]


@contextlib.asynccontextmanager
async def running_review(
    settings: Settings, tmp_path: Path, *, failed: Callable[[], bool]
) -> AsyncIterator[ReviewService]:
    """The review service as a process on a port of its own, with the demo directories,
    alice (added through the command, the password on standard input) and :data:`USERS`."""
    own = settings.model_copy(update={"http_port": free_port()})
    await store_demo_directories(own)
    add_user(own, "alice", "moderator")
    await add_users(own, USERS)
    process = ServiceProcess("review", own, log_dir(tmp_path))
    process.start()
    service = ReviewService(own, process)
    try:
        await wait_http(f"{service.url}/health")
        await process.started()
        yield service
    finally:
        await service.close()
        process.stop()
        if failed():
            print(process.log()[-6000:])


def log_dir(tmp_path: Path) -> Path:
    path = tmp_path / "logs"
    path.mkdir(exist_ok=True)
    return path


async def logged_in(browser: Browser, review: ReviewService, name: str, **options: object) -> Page:
    """A page of a new browser context in which ``name`` logged in through the form (the
    queue asked for first, so the login page is where an unauthenticated visit lands)."""
    context: BrowserContext = await browser.new_context(base_url=review.url, locale="nl-NL", **options)  # type: ignore[arg-type]
    page = await context.new_page()
    await page.goto("/queue")
    await expect(page).to_have_url(re.compile(r"/login"))
    await page.get_by_label("Gebruikersnaam").fill(name)
    await page.get_by_label("Wachtwoord").fill(PASSWORD)
    await page.get_by_role("button", name="Inloggen").click()
    await expect(page).to_have_url(re.compile(r"/queue$"))
    return page

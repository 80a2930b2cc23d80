"""Fixtures shared by the whole suite: real Kafka and MongoDB-wire infrastructure,
and per-test isolation (own topic prefix, own database)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import yaml

from buurtalert.devkit.devmail import DevMailbox
from buurtalert.devkit.graph_emulator import GraphEmulator
from buurtalert.devkit.testing import (
    Infrastructure,
    delete_prefixed_topics,
    free_port,
    isolated_settings,
    provide_infrastructure,
    repo_root,
)
from buurtalert.shared.admin import create_topics
from buurtalert.shared.mongo import mongo_client
from buurtalert.shared.settings import Settings, load_municipality_config
from buurtalert.shared.topics import deployment_topics
from tests.support import served

ROOT = repo_root(Path(__file__).parent)
TEST_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    """Remember whether a test failed, so fixtures can show the services' logs."""
    report: pytest.TestReport = yield
    if report.failed:
        item.stash[TEST_FAILED] = True
    return report


DEMO = ROOT / "deploy" / "demo"


@pytest.fixture(scope="session")
def infra() -> Iterator[Infrastructure]:
    found = provide_infrastructure()
    yield found
    found.stop()


@pytest.fixture
def mailbox() -> Iterator[DevMailbox]:
    """A real SMTP server on loopback that keeps what it receives."""
    with DevMailbox(port=free_port()) as box:
        yield box


@pytest.fixture
async def graph() -> AsyncIterator[GraphEmulator]:
    """Meta's Graph API as this test's services reach it (WhatsApp, Facebook, media)."""
    emulator = GraphEmulator(access_token="demo-graph-token")
    async with served(emulator.app) as port:
        emulator.base_url = f"http://127.0.0.1:{port}"
        yield emulator


@pytest.fixture
def municipality_file(tmp_path: Path, mailbox: DevMailbox, graph: GraphEmulator) -> Path:
    """The demo municipality, its email adapter pointed at this test's mailbox, its
    Graph API adapters at this test's emulator, its API clients' rate limit out of the way."""
    data = yaml.safe_load((DEMO / "weert" / "municipality.yaml").read_text())
    data["channels"]["email"]["port"] = mailbox.port
    for adapter in ("whatsapp", "facebook"):
        data["channels"][adapter]["graph_url"] = f"{graph.base_url}/v21.0"
    data["ingest"]["whatsapp"]["graph_url"] = f"{graph.base_url}/v21.0"
    data["ingest"]["email"]["smtp_port"] = free_port()
    data["ingest"]["email"]["imap"] = []
    for client in data["api_clients"]:  # streams of hundreds of reports; the limit has unit tests
        client["rate_per_minute"] = 100_000
    path = tmp_path / "municipality.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
async def settings(infra: Infrastructure, municipality_file: Path) -> AsyncIterator[Settings]:
    """Settings of this test alone: its topics exist, its database is dropped afterwards."""
    own = isolated_settings(infra, municipality_file=municipality_file, http_port=free_port())
    await create_topics(own, deployment_topics(load_municipality_config(municipality_file).channels))
    yield own
    client = mongo_client(own)
    try:
        await client.drop_database(own.database)
    finally:
        await client.close()
    # A broker that keeps every test's topics slows down (thousands of partitions).
    await delete_prefixed_topics(own)

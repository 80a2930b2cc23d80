"""The four services as processes for fault tests, on the shared infrastructure or
on a broker and database of the test's own (:mod:`tests.faults.infra`)."""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from buurtalert.devkit.devmail import DevMailbox
from buurtalert.devkit.testing import Infrastructure, free_port, isolated_settings
from buurtalert.directory.model import load_directory
from buurtalert.directory.store import store_directory
from buurtalert.shared.admin import create_topics
from buurtalert.shared.mongo import Database, mongo_client
from buurtalert.shared.settings import Settings, load_municipality_config
from buurtalert.shared.topics import deployment_topics
from tests.conftest import DEMO, TEST_FAILED
from tests.faults.infra import CuttableLink, OwnFerretDB, OwnKafka
from tests.support import ServiceProcess, street, wait_http

SERVICES = ("ingest", "moderation", "routing", "channels")
TOKEN = {"authorization": "Bearer demo-token-buurtpreventie"}
GROUPS = ("boshoven-noord", "leuken-west")


@dataclass
class Own:
    """A broker and a database of this module's own, and the link in front of the broker."""

    kafka: OwnKafka
    ferretdb: OwnFerretDB
    link: CuttableLink

    @property
    def infra(self) -> Infrastructure:
        return Infrastructure(self.kafka.bootstrap, self.ferretdb.url, "fault test's own")


@pytest.fixture(scope="module")
async def own(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Own]:
    kafka = OwnKafka(tmp_path_factory.mktemp("kafka"))
    ferretdb = OwnFerretDB(tmp_path_factory.mktemp("ferretdb"))
    link = CuttableLink(kafka.advertised, kafka.proxied_port)
    await asyncio.gather(kafka.start(), ferretdb.start(), link.start())
    try:
        yield Own(kafka, ferretdb, link)
    finally:
        await link.close()
        kafka.stop()
        ferretdb.stop()


@dataclass
class Run:
    """The four services of one test, and the reports it posted."""

    settings: Settings
    mailbox: DevMailbox
    services: dict[str, ServiceProcess]
    posted: list[str] = field(default_factory=list)
    #: Reports started so far: each gets a street of its own (see ``street``).
    started: int = 0

    @property
    def reports_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.http_port}/reports"

    def emails(self) -> list[EmailMessage]:
        return self.mailbox.mailbox.snapshot()

    def deliveries(self) -> Counter[str]:
        return Counter(str(m["X-Buurtalert-Delivery"]) for m in self.emails())

    def logs(self) -> str:
        return "\n".join(f"===== {n}\n{p.log()[-6000:]}" for n, p in self.services.items())

    async def post(self, count: int, tag: str, *, concurrency: int = 4, pause: float = 0.0) -> None:
        """Post ``count`` reports; a call that fails (ingest down, or answering 5xx)
        is repeated with the same report id, as a reporter's app would, until accepted."""
        queue = list(range(count))
        queue.reverse()

        async def poster() -> None:
            async with httpx.AsyncClient(timeout=10) as http:
                while queue:
                    n = queue.pop()
                    self.started += 1
                    body = {
                        "report_id": f"{tag}-{n}",
                        "group": GROUPS[n % 2],
                        "reporter": f"06{n % 100_000_000:08d}",
                        # one text but the street (a number in it can make the model unsure):
                        # each report its own event, not merged into one incident
                        "text": f"Verdachte man met rode jas en rugzak probeert deuren bij de "
                        f"{street(self.started)}, "
                        "112 gebeld.",
                    }
                    while True:
                        try:
                            response = await http.post(self.reports_url, headers=TOKEN, json=body)
                            # 200 duplicate: an earlier attempt went through though its answer was lost
                            if response.status_code in (200, 202):
                                break
                            assert response.status_code >= 500, response.text
                        except httpx.HTTPError:
                            pass
                        await asyncio.sleep(0.5)
                    self.posted.append(f"{tag}-{n}")
                    if pause:
                        await asyncio.sleep(pause)

        await asyncio.gather(*(poster() for _ in range(concurrency)))


async def start_run(
    settings: Settings,
    mailbox: DevMailbox,
    workdir: Path,
    *,
    through_link: tuple[str, ...] = (),
    link_bootstrap: str = "",
) -> Run:
    """Store the demo directories, create the topics and start the four services
    (those in ``through_link`` reaching the broker at ``link_bootstrap``)."""
    await create_topics(
        settings, deployment_topics(load_municipality_config(settings.municipality_file).channels)
    )
    client = mongo_client(settings)
    for municipality in ("weert", "bocholt"):
        key = load_municipality_config(DEMO / municipality / "municipality.yaml").pseudonym_key
        directory = load_directory(DEMO / municipality / "directory.yaml").pseudonymised(key)
        await store_directory(Database(client[settings.database], "directory"), directory)
    await client.close()
    services = {}
    for name in SERVICES:
        # every service serves HTTP (/health, /ready, /metrics): ingest on the settings' port
        own_port = settings.http_port if name == "ingest" else free_port()
        own_settings = settings.model_copy(update={"http_port": own_port})
        if name in through_link:
            own_settings = own_settings.model_copy(update={"kafka_bootstrap": link_bootstrap})
        services[name] = ServiceProcess(name, own_settings, workdir)
    for process in services.values():
        process.start()
    run = Run(settings, mailbox, services)
    try:
        await wait_http(f"http://127.0.0.1:{settings.http_port}/health", timeout=180)
        for process in services.values():
            await process.started(timeout=180)
    except BaseException:
        for process in services.values():
            process.stop()
        print(run.logs())
        raise
    return run


@pytest.fixture
def run_settings(municipality_file: Path) -> object:
    """Settings on given infrastructure, for this test's municipality file."""

    def make(infra: Infrastructure, **overrides: object) -> Settings:
        return isolated_settings(
            infra,
            municipality_file=municipality_file,
            http_port=free_port(),
            **overrides,
        )

    return make


def stop_run(run: Run | None, request: pytest.FixtureRequest) -> None:
    if run is None:
        return
    failed = request.node.stash.get(TEST_FAILED, False) or sys.exc_info()[0] is not None
    for process in run.services.values():
        process.stop()
    if failed:
        print(run.logs())

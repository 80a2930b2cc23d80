"""Each service SIGKILLed at a random moment during a run of reports, and restarted:
nothing is lost, and nothing is delivered twice but a send in flight in the killed
channels process, which is repeated with the same idempotency key (Message-ID)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from buurtalert.devkit.devmail import DevMailbox
from buurtalert.shared.settings import Settings
from tests.faults.conftest import SERVICES, Run, start_run, stop_run
from tests.support import eventually

pytestmark = pytest.mark.faults

# 500 reports, not 5,000: the four services, Kafka and FerretDB share two cores
# here with other work, and the whole fault suite is to stay near six minutes; 500
# reports take over a minute end to end, long enough for four kills at random moments.
COUNT = 500


@pytest.fixture
async def run(
    settings: Settings, mailbox: DevMailbox, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Run]:
    started = None
    try:
        started = await start_run(settings, mailbox, tmp_path)
        yield started
    finally:
        stop_run(started, request)


async def test_each_service_killed_at_random_moments_loses_and_repeats_nothing(run: Run) -> None:
    victims = list(SERVICES)
    random.shuffle(victims)
    posting = asyncio.create_task(run.post(COUNT, "kill"))
    in_flight_at_channels_kill: set[str] = set()
    for victim in victims:
        await asyncio.sleep(random.uniform(1.0, 4.0))
        process = run.services[victim]
        process.kill()
        if victim == "channels":
            await asyncio.sleep(0.5)  # what the SMTP server was still taking in from it
            in_flight_at_channels_kill = set(run.deliveries())
        await asyncio.sleep(random.uniform(0.2, 1.0))
        process.start()
    await posting
    assert len(set(run.posted)) == COUNT

    def all_delivered() -> bool:
        return len(run.deliveries()) == COUNT

    await eventually(all_delivered, timeout=240, interval=1.0, what=f"all {COUNT} deliveries")
    await asyncio.sleep(2.0)  # nothing more arrives
    received = run.deliveries()
    assert len(received) == COUNT  # zero lost, nothing unexpected
    repeated = {d: n for d, n in received.items() if n > 1}
    # A repeat is only a send that was in flight when channels was killed: its first
    # copy had reached the SMTP server before the new process started; sent twice at most.
    assert set(repeated) <= in_flight_at_channels_kill, repeated
    assert all(n == 2 for n in repeated.values()), repeated
    message_ids: dict[str, set[str]] = {}
    for email in run.emails():
        message_ids.setdefault(str(email["X-Buurtalert-Delivery"]), set()).add(str(email["Message-ID"]))
    assert all(len(ids) == 1 for ids in message_ids.values()), "a repeat with another Message-ID"
    print(f"killed {victims}; {len(repeated)} in-flight send(s) repeated with the same Message-ID")

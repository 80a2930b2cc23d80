"""The broker restarted, the database stopped for 30 s, a service cut off from the
broker for 30 s, each in the middle of a run of reports, on a broker and database of
this module's own (the shared ones are never touched): the services back off and
recover on their own, and nothing is lost or delivered twice."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from buurtalert.devkit.devmail import DevMailbox
from buurtalert.shared.settings import Settings
from tests.faults.conftest import Own, Run, start_run, stop_run
from tests.support import eventually

pytestmark = pytest.mark.faults

COUNT = 120
OUTAGE = 30.0
# Long enough together for a message whose handling failed during an outage to come
# back after it: the services' backoff, not a test's patience.
RETRY_DELAYS = (1.0, 5.0, 15.0, 30.0)


async def _all_delivered(run: Run, count: int) -> None:
    await eventually(
        lambda: len(run.deliveries()) >= count, timeout=240, interval=1.0, what=f"all {count} deliveries"
    )
    await asyncio.sleep(2.0)  # nothing more arrives
    received = run.deliveries()
    assert len(received) == count
    assert {d: n for d, n in received.items() if n > 1} == {}


async def _during_run(
    own: Own,
    settings_for: Callable[..., Settings],
    mailbox: DevMailbox,
    workdir: Path,
    request: pytest.FixtureRequest,
    fault: Callable[[Run], object],
    **links: object,
) -> None:
    settings = settings_for(own.infra, retry_delays=RETRY_DELAYS)
    run = None
    try:
        run = await start_run(settings, mailbox, workdir, **links)  # type: ignore[arg-type]
        posting = asyncio.create_task(run.post(COUNT, "fault", concurrency=2, pause=0.05))
        await eventually(lambda: len(run.deliveries()) >= 20, timeout=120, what="the first deliveries")
        result = fault(run)
        if asyncio.iscoroutine(result):
            await result
        await posting
        await _all_delivered(run, COUNT)
    finally:
        stop_run(run, request)


async def test_the_broker_restarted_mid_run(
    own: Own,
    run_settings: Callable[..., Settings],
    mailbox: DevMailbox,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    async def restart(run: Run) -> None:
        await asyncio.to_thread(own.kafka.stop)
        await asyncio.sleep(2.0)
        await own.kafka.start()

    await _during_run(own, run_settings, mailbox, tmp_path, request, restart)


async def test_the_database_stopped_for_30_seconds_mid_run(
    own: Own,
    run_settings: Callable[..., Settings],
    mailbox: DevMailbox,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    async def outage(run: Run) -> None:
        await asyncio.to_thread(own.ferretdb.stop)
        await asyncio.sleep(OUTAGE)
        await own.ferretdb.start()

    await _during_run(own, run_settings, mailbox, tmp_path, request, outage)


@pytest.mark.parametrize("victim", ["routing"])
async def test_a_service_cut_off_from_the_broker_for_30_seconds(
    own: Own,
    run_settings: Callable[..., Settings],
    mailbox: DevMailbox,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    victim: str,
) -> None:
    async def partition(run: Run) -> None:
        own.link.cut()
        await asyncio.sleep(OUTAGE)
        own.link.restore()

    await _during_run(
        own,
        run_settings,
        mailbox,
        tmp_path,
        request,
        partition,
        through_link=(victim,),
        link_bootstrap=own.kafka.proxied_bootstrap,
    )

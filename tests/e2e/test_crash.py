"""A service killed with SIGKILL in the middle of a stream loses nothing and, where
the protocol allows, delivers nothing twice."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest

from tests.e2e.conftest import System
from tests.support import eventually, street

TOKEN = {"authorization": "Bearer demo-token-buurtpreventie"}
COUNT = 60


async def _post_stream(system: System) -> list[str]:
    ids = []
    async with httpx.AsyncClient() as http:
        for n in range(COUNT):
            response = await http.post(
                system.reports_url,
                headers=TOKEN,
                json={
                    "report_id": f"stream-{n}",
                    "group": ("boshoven-noord", "leuken-west")[n % 2],
                    "reporter": f"0612345{n:03d}",
                    "text": f"Verdachte auto {n} rijdt langzaam rond in de {street(n)}, 112 gebeld.",
                },
            )
            assert response.status_code == 202, response.text
            ids.append(response.json()["id"])
            await asyncio.sleep(0.05)
    return ids


def _delivery_ids(system: System) -> Counter[str]:
    return Counter(str(m["X-Buurtalert-Delivery"]) for m in system.mailbox.mailbox.snapshot())


@pytest.mark.parametrize("victim", ["moderation", "routing", "channels"])
async def test_sigkill_mid_stream_loses_nothing(system: System, victim: str) -> None:
    """Kill VICTIM after some deliveries, restart it: every report is delivered.

    For moderation and routing, no email arrives twice (deterministic ids and
    processed keys suppress duplicates). Channels killed mid-send cannot know
    whether the SMTP server took the mail: it resends with the same Message-ID, so
    at most the one in-flight delivery may arrive twice, recognisably the same."""
    stream = asyncio.create_task(_post_stream(system))
    await eventually(lambda: len(_delivery_ids(system)) >= 10, what="the first deliveries")
    system.services[victim].kill()
    await asyncio.sleep(0.5)
    system.services[victim].start()
    await stream

    received = await eventually(
        lambda: (ids := _delivery_ids(system)) and len(ids) == COUNT and ids,
        timeout=120,
        what=f"all {COUNT} deliveries",
    )
    repeated = {d: n for d, n in received.items() if n > 1}
    if victim == "channels":
        assert len(repeated) <= 1 and all(n == 2 for n in repeated.values()), repeated
    else:
        assert repeated == {}
    message_ids = Counter(str(m["Message-ID"]) for m in system.mailbox.mailbox.snapshot())
    assert len(message_ids) == COUNT  # one Message-ID per delivery, also for a resend

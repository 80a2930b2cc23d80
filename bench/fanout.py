"""One alert fanned out to 10,000 opted-in recipients through the WhatsApp adapter,
against the Graph API emulator (its own process) capped at a throughput tier.

The baseline is the cap itself: the figure is achieved rate / cap (goal at least
0.95), together with the emulator's count of rate-limit refusals (goal zero)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from buurtalert.channels.adapters.whatsapp import WhatsAppAdapter, WhatsAppConfig
from buurtalert.shared.models import Delivery, Destination, stable_id
from buurtalert.shared.testing import free_port

IN_FLIGHT = 64  # sends under way at once, as many deliveries in hand


def _deliveries(count: int) -> list[Delivery]:
    return [
        Delivery(
            id=stable_id("dlv", "msg_fanout", str(n)),
            message_id="msg_fanout",
            municipality="weert-demo",
            destination=Destination(
                group_id="boshoven-noord",
                channel="whatsapp",
                address=f"316{n:08d}",
                recipient_type="individual",
            ),
            text="Let op: woninginbraken in Boshoven. Sluit ramen en deuren. Zie je iets verdachts? Bel 112.",
            rules=("authority_alert_area",),
        )
        for n in range(count)
    ]


async def fan_out(cap: int, count: int) -> dict[str, Any]:
    port = free_port()
    emulator = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "buurtalert"),
            "graph-emulator",
            "--port",
            str(port),
            "--messages-per-second",
            str(cap),
            "--log-level",
            "warning",
        ],
        env=os.environ.copy(),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            for _ in range(100):
                try:
                    await client.get(f"{base}/_emulator/stats")
                    break
                except httpx.HTTPError:
                    await asyncio.sleep(0.1)
            config = WhatsAppConfig(
                phone_number_id="106540352242922",
                access_token=SecretStr("demo-graph-token"),
                graph_url=f"{base}/v21.0",
                messages_per_second=cap,
            )
            adapter = WhatsAppAdapter(config)  # with its own client, as channels runs it
            await adapter.start()
            queue = _deliveries(count)
            queue.reverse()
            failures = 0

            async def sender() -> None:
                nonlocal failures
                while queue:
                    item = queue.pop()
                    try:
                        await adapter.send(item, item.text)
                    except Exception:  # counted: a fan-out must not stop at one failure
                        failures += 1

            started = time.monotonic()
            await asyncio.gather(*(sender() for _ in range(IN_FLIGHT)))
            elapsed = time.monotonic() - started
            await adapter.close()
            stats = (await client.get(f"{base}/_emulator/stats")).json()
    finally:
        emulator.terminate()
        emulator.wait(10)
    achieved = stats["sent"] / elapsed
    return {
        "cap_per_s": cap,
        "recipients": count,
        "sent": stats["sent"],
        "seconds": round(elapsed, 2),
        "achieved_per_s": round(achieved, 1),
        "ratio_achieved_to_cap": round(achieved / cap, 3),
        "rate_limit_errors": stats["refused"].get("130429", 0) + stats["refused"].get("131056", 0),
        "failures": failures,
    }


async def fan_out_benchmark(count: int = 10_000) -> dict[str, Any]:
    results = {}
    for cap in (80, 1000):
        figures = await fan_out(cap, count)
        results[f"cap_{cap}"] = figures
        print(
            f"  fan-out to {count} at cap {cap}/s: {figures['achieved_per_s']}/s in {figures['seconds']} s, "
            f"ratio {figures['ratio_achieved_to_cap']}, rate-limit errors {figures['rate_limit_errors']}, "
            f"failures {figures['failures']}"
        )
    return results


if __name__ == "__main__":
    print(asyncio.run(fan_out_benchmark(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)))

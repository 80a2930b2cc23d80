"""Test support: services as real processes, and reading topics and mailboxes."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import uvicorn
from aiokafka import AIOKafkaConsumer

from buurtalert.devkit.testing import free_port, settings_environment
from buurtalert.shared.settings import Settings

T = TypeVar("T")
BIN = Path(sys.executable).parent / "buurtalert"


class ServiceProcess:
    """``buurtalert run NAME`` as a child process, its output kept in a log file."""

    def __init__(self, name: str, settings: Settings, log_dir: Path) -> None:
        self.name = name
        self.env = {**os.environ, **settings_environment(settings)}
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [str(BIN), "run", self.name], env=self.env, stdout=log, stderr=subprocess.STDOUT
        )

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no commits, nothing flushed."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    async def started(self, timeout: float = 120.0) -> None:
        """Wait until the service says it started (its subscribers consume and its
        publishers publish from then on). uvicorn's "Application startup complete" comes
        before FastStream's brokers have started in the four FastStream services; the
        review service starts its broker within its own lifespan."""
        said = "Application startup complete" if self.name == "review" else "started successfully"
        await eventually(lambda: said in self.log(), timeout=timeout, what=f"{self.name} to start")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def street(n: int) -> str:
    """A street of its own for report ``n`` (letters only: a number in a report can make
    moderation unsure): reports naming different streets are different events to
    routing, so a stream of look-alike reports is not merged into one incident."""
    letters = ""
    for _ in range(3):
        letters = "abcdefghijklmnopqrstuvwxyz"[n % 26] + letters
        n //= 26
    return f"{('Akker', 'Beuken', 'Linden', 'Molen', 'Kerk')[n % 5]}{letters}straat"


async def eventually(
    probe: Callable[[], Awaitable[T] | T],
    *,
    timeout: float = 60.0,
    interval: float = 0.2,
    what: str = "condition",
) -> T:
    """Poll ``probe`` (sync or async) until it returns something truthy; fail with
    ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {result!r}")
        await asyncio.sleep(interval)


async def wait_http(url: str, timeout: float = 60.0) -> None:
    async def up() -> bool:
        try:
            async with httpx.AsyncClient() as client:
                return (await client.get(url, timeout=2)).status_code == 200
        except httpx.HTTPError:
            return False

    await eventually(up, timeout=timeout, what=f"{url} to answer")


@contextlib.asynccontextmanager
async def served(app: Any) -> AsyncIterator[int]:
    """Serve an ASGI app (an emulator, a partner's receiver) over real HTTP on loopback;
    yields its port."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: server.started, what="the local server to start")
        yield port
    finally:
        server.should_exit = True
        await task


async def read_topic(settings: Settings, name: str, count: int, timeout: float = 30.0) -> list[Any]:
    """The first ``count`` JSON records of a topic (all partitions), read from the start."""
    consumer = AIOKafkaConsumer(
        settings.topic(name),
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[Any] = []
    try:
        deadline = time.monotonic() + timeout
        while len(records) < count and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for messages in batch.values():
                records.extend(json.loads(m.value) for m in messages)
    finally:
        await consumer.stop()
    return records

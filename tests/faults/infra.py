"""Infrastructure of a fault test's own, which it may restart, stop and cut off
without touching the broker and database other tests share: a Kafka broker (the
jars of ``deploy/local/stack.sh``, its own ports and data directory), a FerretDB
(its binary, its own port and SQLite directory), and a TCP proxy whose link can be
cut."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import signal
import subprocess
import uuid
from pathlib import Path

from buurtalert.devkit.testing import free_port, repo_root
from tests.support import eventually


def local_dir() -> Path:
    """Where the local stack installed the Kafka jars and the FerretDB binary."""
    return Path(os.environ.get("BUURTALERT_LOCAL_DIR", repo_root() / ".local"))


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _cluster_id() -> str:
    """A random Kafka cluster id (URL-safe base64 of 16 bytes) that does not start with
    "-": the storage tool would read one that does as an option and refuse to format (as
    Kafka's own ``Uuid.randomUuid`` avoids too)."""
    while True:
        cluster = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster.startswith("-"):
            return cluster


class OwnKafka:
    """One KRaft node on ports of its own. Two listeners: ``port`` for everyone, and
    ``proxied_port``, which tells its clients to come back through ``advertised`` (a
    :class:`CuttableLink` in front of it), so a service can be cut off alone."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.port, self.proxied_port, self.controller = free_port(), free_port(), free_port()
        self.advertised = free_port()  # where the link to proxied_port listens
        self.proc: subprocess.Popen[bytes] | None = None
        libs = local_dir() / "kafka" / "libs"
        if not libs.exists():
            raise FileNotFoundError(f"no Kafka jars in {libs}: run deploy/local/stack.sh install")
        self.classpath = f"{libs}/*"
        self.props = workdir / "server.properties"
        data = workdir / "data"
        self.props.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.bootstrap.servers=127.0.0.1:{self.controller}",
                    f"listeners=DIRECT://127.0.0.1:{self.port},PROXIED://127.0.0.1:{self.proxied_port},"
                    f"CONTROLLER://127.0.0.1:{self.controller}",
                    f"advertised.listeners=DIRECT://127.0.0.1:{self.port},PROXIED://127.0.0.1:{self.advertised}",
                    "controller.listener.names=CONTROLLER",
                    "inter.broker.listener.name=DIRECT",
                    "listener.security.protocol.map=DIRECT:PLAINTEXT,PROXIED:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    f"log.dirs={data}",
                    "num.partitions=3",
                    "auto.create.topics.enable=false",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=3",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                ]
            )
            + "\n"
        )
        cluster = _cluster_id()
        subprocess.run(
            [
                *self._java(),
                "kafka.tools.StorageTool",
                "format",
                "--standalone",
                "-t",
                cluster,
                "-c",
                str(self.props),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def proxied_bootstrap(self) -> str:
        """The bootstrap of a client that reaches this broker only through the link."""
        return f"127.0.0.1:{self.advertised}"

    def _java(self) -> list[str]:
        return [
            "java",
            "-Xms256m",
            "-Xmx512m",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            "-cp",
            self.classpath,
        ]

    def launch(self) -> None:
        log = (self.dir / "kafka.log").open("ab")
        self.proc = subprocess.Popen([*self._java(), "kafka.Kafka", str(self.props)], stdout=log, stderr=log)

    async def start(self) -> None:
        self.launch()
        await eventually(lambda: _listening(self.port), timeout=120, what="our own Kafka to listen")

    def stop(self) -> None:
        """SIGTERM, as an operator's restart would; SIGKILL if it takes too long."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class OwnFerretDB:
    """FerretDB (SQLite backend) on a port and directory of its own."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.port = free_port()
        self.binary = local_dir() / "ferretdb" / "bin" / "ferretdb"
        if not self.binary.exists():
            raise FileNotFoundError(f"no FerretDB at {self.binary}: run deploy/local/stack.sh install")
        (workdir / "data").mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    def launch(self) -> None:
        log = (self.dir / "ferretdb.log").open("ab")
        self.proc = subprocess.Popen(
            [
                str(self.binary),
                "-listen-addr",
                f"127.0.0.1:{self.port}",
                "-sqlite-dir",
                f"{self.dir / 'data'}/",
            ],
            stdout=log,
            stderr=log,
        )

    async def start(self) -> None:
        self.launch()
        await eventually(lambda: _listening(self.port), timeout=30, what="our own FerretDB to listen")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class CuttableLink:
    """A TCP proxy from ``listen_port`` to ``target_port`` on loopback. :meth:`cut`
    drops every connection and refuses new ones (as a network partition would, from
    the client's side), :meth:`restore` lets them through again."""

    def __init__(self, listen_port: int, target_port: int) -> None:
        self.listen_port, self.target_port = listen_port, target_port
        self.open = True
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.listen_port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.open:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        for task in (
            asyncio.create_task(pipe(reader, up_writer)),
            asyncio.create_task(pipe(up_reader, writer)),
        ):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def cut(self) -> None:
        self.open = False
        for writer in self._writers:
            writer.close()
        self._writers.clear()

    def restore(self) -> None:
        self.open = True

    async def close(self) -> None:
        self.cut()
        if self._server:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()

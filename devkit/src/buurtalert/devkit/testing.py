"""Helpers for tests and benchmarks that run against real infrastructure.

:func:`provide_infrastructure` finds a Kafka broker and a MongoDB-wire server, in
this order: the environment (``BUURTALERT_TEST_KAFKA`` and ``BUURTALERT_TEST_MONGO``),
containers through testcontainers where a Docker engine answers, and the local
stack of ``deploy/local/stack.sh`` (Kafka from jars, FerretDB on the backend
``BUURTALERT_DB_BACKEND`` names: SQLite by default, or PostgreSQL), started if needed.
:func:`isolated_settings` gives each test its own topic prefix and database.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from pydantic import SecretStr

from buurtalert.shared.settings import Settings


@dataclass
class Infrastructure:
    kafka_bootstrap: str
    mongo_url: str
    origin: str
    _stop: list[Callable[[], object]] = field(default_factory=list, repr=False)

    def stop(self) -> None:
        for stop in self._stop:
            stop()


def repo_root(start: Path | None = None) -> Path:
    """The checkout holding ``deploy/local/stack.sh``, searched upwards from ``start``."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "deploy" / "local" / "stack.sh").exists():
            return candidate
    raise FileNotFoundError("deploy/local/stack.sh not found above the working directory")


def _docker_answers() -> bool:
    if not shutil.which("docker") and not os.environ.get("DOCKER_HOST"):
        return False
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env(timeout=3).ping()
    except Exception:  # any failure means: no usable engine
        return False
    return True


def _from_containers() -> Infrastructure:
    from testcontainers.community.kafka import KafkaContainer
    from testcontainers.community.mongodb import MongoDbContainer

    kafka = KafkaContainer().with_kraft()
    mongo = MongoDbContainer("mongo:7")
    kafka.start()
    mongo.start()
    return Infrastructure(
        kafka.get_bootstrap_server(), mongo.get_connection_url(), "testcontainers", [kafka.stop, mongo.stop]
    )


def _from_local_stack() -> Infrastructure:
    root = repo_root()
    subprocess.run(  # noqa: S603 (our own script, fixed arguments)
        [str(root / "deploy" / "local" / "stack.sh"), "up"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    kafka_port = os.environ.get("BUURTALERT_KAFKA_PORT", "9092")
    mongo_port = os.environ.get("BUURTALERT_MONGO_PORT", "27017")
    backend = os.environ.get("BUURTALERT_DB_BACKEND", "postgresql")
    origin = f"local stack (FerretDB on {backend})"
    return Infrastructure(f"127.0.0.1:{kafka_port}", f"mongodb://127.0.0.1:{mongo_port}/", origin)


def provide_infrastructure() -> Infrastructure:
    kafka, mongo = os.environ.get("BUURTALERT_TEST_KAFKA"), os.environ.get("BUURTALERT_TEST_MONGO")
    if kafka and mongo:
        return Infrastructure(kafka, mongo, "environment")
    if _docker_answers():
        return _from_containers()
    return _from_local_stack()


@dataclass(frozen=True)
class ImapServer:
    host: str
    port: int
    password: str


def provide_imap_server() -> ImapServer:
    """The local Dovecot of ``deploy/local/stack.sh`` (installed and started if needed):
    any user name logs in with the password, so each test can have a mailbox of its own."""
    subprocess.run(  # noqa: S603 (our own script, fixed arguments)
        [str(repo_root() / "deploy" / "local" / "stack.sh"), "imap"], check=True, stdout=subprocess.DEVNULL
    )
    return ImapServer(
        "127.0.0.1",
        int(os.environ.get("BUURTALERT_IMAP_PORT", "10143")),
        os.environ.get("BUURTALERT_IMAP_PASSWORD", "demo-imap-password"),
    )


def isolated_settings(infra: Infrastructure, **overrides: object) -> Settings:
    """Settings with a topic prefix and database of their own."""
    tag = uuid.uuid4().hex[:10]
    values: dict[str, object] = {
        "kafka_bootstrap": infra.kafka_bootstrap,
        "mongo_url": SecretStr(infra.mongo_url),
        "database": f"t_{tag}",
        "topic_prefix": f"t{tag}.",
        "retry_delays": (0.2, 0.5),
        **overrides,
    }
    return Settings.model_validate(values)


def settings_environment(settings: Settings) -> dict[str, str]:
    """The ``BUURTALERT_*`` variables that make a subprocess use ``settings``."""
    return {
        "BUURTALERT_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "BUURTALERT_MONGO_URL": settings.mongo_url.get_secret_value(),
        "BUURTALERT_DATABASE": settings.database,
        "BUURTALERT_TOPIC_PREFIX": settings.topic_prefix,
        "BUURTALERT_MUNICIPALITY_FILE": str(settings.municipality_file),
        "BUURTALERT_HTTP_PORT": str(settings.http_port),
        "BUURTALERT_RETRY_DELAYS": "[" + ",".join(str(d) for d in settings.retry_delays) + "]",
        "BUURTALERT_LOG_LEVEL": settings.log_level,
    }


#: Ports :func:`free_port` picks from: below Linux's range for outgoing connections
#: (``ip_local_port_range``, 32768-60999 by default), so that no client connection takes
#: a port between the moment it is picked and the moment its server binds it (a CI run
#: saw a service fail to start so: "address already in use").
FREE_PORTS = range(20000, 32768)
_issued: deque[int] = deque(maxlen=4000)  # picked lately in this process, maybe not bound yet


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago, from :data:`FREE_PORTS`, and
    not one this process handed out lately (which may be free only because its server
    has not started yet)."""
    import random
    import socket

    for _ in range(1000):
        port = random.choice(FREE_PORTS)
        if port in _issued:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue  # in use
        _issued.append(port)
        return port
    raise RuntimeError(f"no free port in {FREE_PORTS}")


async def delete_prefixed_topics(settings: Settings) -> int:
    """Delete every topic under ``settings.topic_prefix`` (a test's or a benchmark's own);
    answers how many. Refuses an empty prefix: that would be the deployment's topics."""
    if not settings.topic_prefix:
        raise ValueError("refusing to delete topics without a prefix")
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="buurtalert-admin")
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(settings.topic_prefix)]
        if names:
            await admin.delete_topics(names)
        return len(names)
    finally:
        await admin.close()

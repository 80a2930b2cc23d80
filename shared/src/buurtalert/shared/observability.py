"""What every service exposes to operators: ``/health``, ``/ready`` and ``/metrics``
over HTTP, OpenTelemetry traces across the Kafka hops, and consumer lag.

* ``/health``: the process is alive and serving (200).
* ``/ready``: 200 once every subscriber's consumer holds partitions and the database
  answers a ping; 503 with the reasons otherwise.
* ``/metrics``: Prometheus text: FastStream's ``KafkaPrometheusMiddleware``
  (``faststream_*``: messages received, published, durations, exceptions) and ours
  (``buurtalert_*``, :mod:`.metrics`), including consumer lag per group and partition,
  refreshed every ``LAG_INTERVAL`` seconds rather than per scrape.

Traces (:mod:`.tracing`, installed by :func:`buurtalert.shared.kafka.create_broker`):
``KafkaTelemetryMiddleware`` opens a span per consumed and published
message and carries the context in the record headers, so one report is one trace
from ingest to channels. Spans are exported by OTLP/HTTP when
``BUURTALERT_OTLP_ENDPOINT`` is set, and dropped otherwise; the trace and span
ids reach the log lines either way (:func:`buurtalert.shared.logging.add_trace_ids`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from faststream.asgi import AsgiResponse, get
from faststream.asgi.types import ASGIApp, Scope
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from buurtalert.shared.logging import get_logger
from buurtalert.shared.metrics import CONSUMER_LAG, REGISTRY
from buurtalert.shared.mongo import Database
from buurtalert.shared.settings import Settings
from buurtalert.shared.topics import SERVICES

log = get_logger(__name__)

#: Seconds between two refreshes of the consumer-lag gauge.
LAG_INTERVAL = 15.0


@dataclass(frozen=True, slots=True)
class Lag:
    group: str
    topic: str
    partition: int
    committed: int
    end: int

    @property
    def behind(self) -> int:
        return max(self.end - max(self.committed, 0), 0)


async def consumer_lags(settings: Settings, groups: Iterable[str] | None = None) -> list[Lag]:
    """Committed offset against end offset for every partition ``groups`` committed
    (default: every group of the deployment's services, ``<prefix><service>.<topic>``)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="buurtalert-lag")
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        if groups is None:
            listed = await admin.list_consumer_groups()
            ours = tuple(f"{settings.group_id(service)}." for service in SERVICES)
            groups = sorted(str(g[0]) for g in listed if str(g[0]).startswith(ours))
        committed: dict[tuple[str, TopicPartition], int] = {}
        for group in groups:
            for tp, meta in (await admin.list_consumer_group_offsets(group)).items():
                committed[(group, tp)] = meta.offset
        ends: dict[TopicPartition, int] = (
            await consumer.end_offsets(sorted({tp for _, tp in committed})) if committed else {}
        )
        return [
            Lag(group, tp.topic, tp.partition, offset, ends.get(tp, offset))
            for (group, tp), offset in sorted(committed.items())
        ]
    finally:
        await consumer.stop()
        await admin.close()


def joined(consumer: Any) -> bool:
    """Whether an aiokafka consumer has its assignment from its group: some partitions,
    or none when the group has more consumers than the topic partitions (a retry topic of
    one partition, read by two processes of a service). A process whose consumers hold no
    partition is still ready: it takes over when the other leaves."""
    if consumer.assignment():
        return True
    # aiokafka keeps "assigned nothing" (an empty assignment) apart from "not assigned
    # yet" (None) only in its subscription state.
    subscription = getattr(getattr(consumer, "_subscription", None), "subscription", None)
    return getattr(subscription, "assignment", None) is not None


class Observability:
    """The probes, metrics and tracing of one service's process."""

    def __init__(self, settings: Settings, service: str, brokers: Sequence[KafkaBroker]) -> None:
        self.settings = settings
        self.service = service
        self.brokers = brokers
        self.registry = CollectorRegistry()
        # Inside the retry path's guard, so a handler's exception is counted before the
        # guard hands the message on (the tracing middleware is the broker's outermost).
        prometheus = KafkaPrometheusMiddleware(registry=self.registry, app_name=f"buurtalert-{service}")
        for broker in brokers:
            broker.add_middleware(prometheus)
        self.db = Database.connect(settings, service, timeout_ms=2_000)
        self._lag_task: asyncio.Task[None] | None = None
        #: Every broker of the app started (its publishers too, not only its consumers).
        self.started = False

    def groups(self) -> list[str]:
        subscribers = [sub for broker in self.brokers for sub in broker.subscribers]
        return sorted({str(getattr(sub, "group_id", "")) for sub in subscribers} - {""})

    def unready(self) -> list[str]:
        """Why the consumers are not ready (empty when every one has joined its group)."""
        reasons = [] if self.started else ["starting: not every broker has started yet"]
        for broker in self.brokers:
            for sub in broker.subscribers:
                consumer: Any = getattr(sub, "consumer", None)
                if consumer is None or not joined(consumer):
                    reasons.append(f"not yet in its consumer group: {getattr(sub, 'group_id', None) or sub}")
        return reasons

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        reasons = self.unready()
        if not await self.db.ping():
            reasons.append("database unreachable")
        return not reasons, {"ready": not reasons, "service": self.service, "reasons": reasons}

    def metrics(self) -> bytes:
        return generate_latest(self.registry) + generate_latest(REGISTRY)

    def routes(self, *, health: bool = True) -> list[tuple[str, ASGIApp]]:
        """``/ready`` and ``/metrics``, and ``/health`` unless the service serves its own."""

        @get(include_in_schema=False)
        async def alive(scope: Scope) -> AsgiResponse:
            body = json.dumps({"status": "ok", "service": self.service}).encode()
            return AsgiResponse(body, 200, {"Content-Type": "application/json"})

        @get(include_in_schema=False)
        async def ready(scope: Scope) -> AsgiResponse:
            ok, body = await self.readiness()
            status = 200 if ok else 503
            return AsgiResponse(json.dumps(body).encode(), status, {"Content-Type": "application/json"})

        @get(include_in_schema=False)
        async def metrics(scope: Scope) -> AsgiResponse:
            return AsgiResponse(self.metrics(), 200, {"Content-Type": CONTENT_TYPE_LATEST})

        routes: list[tuple[str, ASGIApp]] = [("/ready", ready), ("/metrics", metrics)]
        return [("/health", alive), *routes] if health else routes

    async def refresh_lag(self) -> None:
        for lag in await consumer_lags(self.settings, self.groups()):
            CONSUMER_LAG.labels(lag.group, lag.topic, str(lag.partition)).set(lag.behind)

    async def _refresh_periodically(self) -> None:
        while True:
            try:
                await self.refresh_lag()
            except Exception:  # Kafka unreachable for a moment: the next round tries again
                log.warning("consumer_lag_refresh_failed", exc_info=True)
            await asyncio.sleep(LAG_INTERVAL)

    async def ensure_indexes(self) -> None:
        """The indexes declared for the collections this service owns, before its first
        message (:meth:`Database.ensure_indexes`). Without them the service still works,
        only slower, so a database that does not answer yet is logged, not fatal."""
        try:
            await self.db.ensure_indexes()
        except Exception:  # unreachable or refused: handled messages stay correct
            log.warning("indexes_not_ensured", service=self.service, exc_info=True)

    def attach(self, app: Any) -> None:
        """Create the declared indexes before the consumers start; refresh the lag while
        ``app`` runs; close the probe's database client after."""

        async def start() -> None:
            self.started = True
            self._lag_task = asyncio.create_task(self._refresh_periodically())

        async def stop() -> None:
            if self._lag_task is not None:
                self._lag_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._lag_task
            await self.db.close()

        app.on_startup(self.ensure_indexes)
        app.after_startup(start)
        app.on_shutdown(stop)

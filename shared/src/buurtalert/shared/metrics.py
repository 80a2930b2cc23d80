"""Our Prometheus metrics (``buurtalert_*``), counted where things happen; served
at ``/metrics`` by :mod:`buurtalert.shared.observability`. The review service's
``review_urgent_overdue`` is named in the alert rules (``deploy/observability/alerts.yaml``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

#: Our own metrics, one registry per process (FastStream's live in each app's own).
REGISTRY = CollectorRegistry()
MODERATION_DECISIONS = Counter(
    "buurtalert_moderation_decisions",
    "Moderation results by decision and reason code (a message counts once per reason)",
    ["decision", "reason"],
    registry=REGISTRY,
)
DELIVERIES = Counter(
    "buurtalert_deliveries",
    "Delivery outcomes reported on deliveries.status, by channel and state",
    ["channel", "status"],
    registry=REGISTRY,
)
DELIVERY_TRANSIENT_ERRORS = Counter(
    "buurtalert_delivery_transient_errors",
    "Sends that failed and will be retried, by channel and provider code (rate limits among them)",
    ["channel", "code"],
    registry=REGISTRY,
)
PUBLISHED = Counter(
    "buurtalert_published_messages",
    "Records the services published on the message path (through their Sender), by topic",
    ["topic"],
    registry=REGISTRY,
)
DEAD_LETTERS = Counter(
    "buurtalert_dead_letters",
    "Messages sent to a dead-letter topic, by service",
    ["service"],
    registry=REGISTRY,
)
CONSUMER_LAG = Gauge(
    "buurtalert_consumer_lag",
    "Records not yet committed, per consumer group and partition (end offset - committed offset)",
    ["group", "topic", "partition"],
    registry=REGISTRY,
)
REVIEW_URGENT_OVERDUE = Gauge(
    "review_urgent_overdue",
    "Urgent review items still undecided past their deadline, per municipality",
    ["municipality"],
    registry=REGISTRY,
)
REVIEW_QUEUE_AGE = Gauge(
    "review_queue_oldest_seconds",
    "Age of the oldest undecided item in the review queue, per municipality and urgency (0: empty)",
    ["municipality", "urgency"],
    registry=REGISTRY,
)

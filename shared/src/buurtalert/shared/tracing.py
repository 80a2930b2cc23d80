"""OpenTelemetry tracing of the Kafka hops: FastStream's ``KafkaTelemetryMiddleware``
opens a span per consumed message (per batch for a batch subscriber), and the records a
service publishes carry its context in their headers (:class:`..kafka.broker.Sender`), so
one report is one trace from ingest to channels. Spans are recorded and exported by
OTLP/HTTP when ``BUURTALERT_OTLP_ENDPOINT`` is set (sampled as ``OTEL_TRACES_SAMPLER``
says); otherwise nothing is recorded, but the ids are still made and passed on, and
reach the log lines (:func:`buurtalert.shared.logging.add_trace_ids`)."""

from __future__ import annotations

from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from buurtalert.shared.settings import Settings


def tracer_provider(settings: Settings, service: str) -> TracerProvider:
    """Spans of ``service``: exported by OTLP/HTTP to ``settings.otlp_endpoint`` if set;
    without it none is recorded (``ALWAYS_OFF``: a span nobody receives only costs time),
    while its ids still reach the log lines and the next service."""
    resource = Resource.create({"service.name": f"buurtalert-{service}"})
    if not settings.otlp_endpoint:
        return TracerProvider(resource=resource, sampler=ALWAYS_OFF)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(resource=resource)  # the sampler: OTEL_TRACES_SAMPLER, default every trace
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_endpoint)))
    return provider


def telemetry_middleware(settings: Settings, service: str) -> KafkaTelemetryMiddleware:
    """The broker's outermost middleware: every log line of a handling, the retry path's
    included, carries the span's trace id."""
    return KafkaTelemetryMiddleware(tracer_provider=tracer_provider(settings, service))

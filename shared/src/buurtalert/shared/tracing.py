"""OpenTelemetry tracing of the Kafka hops: FastStream's ``KafkaTelemetryMiddleware``
opens a span per consumed and published message and carries its context in the
record headers, so one report is one trace from ingest to channels. Spans are
exported by OTLP/HTTP when ``BUURTALERT_OTLP_ENDPOINT`` is set, dropped otherwise;
the ids reach the log lines either way (:func:`buurtalert.shared.logging.add_trace_ids`)."""

from __future__ import annotations

from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from buurtalert.shared.settings import Settings


def tracer_provider(settings: Settings, service: str) -> TracerProvider:
    """Spans of ``service``; exported by OTLP/HTTP to ``settings.otlp_endpoint`` if set."""
    provider = TracerProvider(resource=Resource.create({"service.name": f"buurtalert-{service}"}))
    if settings.otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_endpoint)))
    return provider


def telemetry_middleware(settings: Settings, service: str) -> KafkaTelemetryMiddleware:
    """The broker's outermost middleware: every log line of a handling, the retry path's
    included, carries the span's trace id."""
    return KafkaTelemetryMiddleware(tracer_provider=tracer_provider(settings, service))

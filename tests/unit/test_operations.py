"""The operator's pure parts: the forms of an address erasure looks for, scrubbing,
the status table, retention defaults, and trace ids in log lines."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from pydantic import SecretStr

from buurtalert.shared.collections import COLLECTIONS, Retention
from buurtalert.shared.logging import add_trace_ids
from buurtalert.shared.ops import ERASED, Person, ServiceStatus, format_status
from buurtalert.shared.pseudonym import pseudonymise
from buurtalert.shared.settings import MunicipalityConfig, RetentionPeriods, Settings
from buurtalert.shared.tracing import tracer_provider

MUNICIPALITY = MunicipalityConfig(
    id="weert", name="Weert", country="NL", pseudonym_key=SecretStr("a-key-of-sixteen-chars")
)


def test_a_phone_number_is_found_in_every_form_it_is_stored_in() -> None:
    """As typed, WhatsApp's digits, 00- and national forms, spaced differently, and the pseudonym."""
    person = Person.of("+31 6 12345678", MUNICIPALITY)
    assert person.pseudonym == pseudonymise(MUNICIPALITY.pseudonym_key, "0031612345678")
    forms = ("31612345678", "+31612345678", "0031612345678", "06 1234 5678", "bel 06-12345678")
    for text in (*forms, person.pseudonym):
        assert person.in_text(text), text
    assert not person.in_text("+31 6 87654321")
    assert person.in_value({"body": b'{"from": "31612345678"}'})


def test_an_email_address_is_found_case_insensitively_and_scrubbed_out_of_nested_records() -> None:
    """Scrubbing replaces each string that mentions the person and leaves the rest."""
    person = Person.of("Jan@Example.org", MUNICIPALITY)
    record = {"data": {"author": person.pseudonym, "to": ["JAN@example.org", "other@example.org"]}, "n": 3}
    assert person.in_value(record)
    assert person.scrub(record) == {"data": {"author": ERASED, "to": [ERASED, "other@example.org"]}, "n": 3}


def test_the_status_table_has_a_header_and_one_readable_line_per_service() -> None:
    row = ServiceStatus("moderation", lag=12, oldest_waiting=200.0, dead_letters=2, replayed=1)
    table = format_status([row])
    header, line = table.splitlines()
    assert header.split()[:2] == ["service", "waiting"]
    assert line.split() == ["moderation", "12", "3m", "20s", "2", "1"]


def test_retention_defaults_cover_every_class_purged_by_date() -> None:
    """raw input 30 days, records 365, operational 30; every dated class has a default."""
    periods = RetentionPeriods().model_dump()
    assert periods == {"raw_input": 30, "record": 365, "strike": 365, "operational": 30}
    for c in COLLECTIONS:
        if c.dated_by:
            assert c.retention.value in periods, c
    assert MUNICIPALITY.retention.raw_input == 30 and Retention.CONTACT.value not in periods


def test_log_lines_carry_the_current_spans_trace_and_span_ids() -> None:
    """Inside a span the processor adds its ids; outside it adds nothing."""
    assert add_trace_ids(None, "info", {"event": "x"}) == {"event": "x"}
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("handling") as span:
        event = add_trace_ids(None, "info", {"event": "x"})
        context = span.get_span_context()
    assert event["trace_id"] == format(context.trace_id, "032x")
    assert event["span_id"] == format(context.span_id, "016x")


def test_without_an_exporter_spans_are_not_recorded_but_their_ids_reach_log_lines() -> None:
    """No OTLP endpoint: a span nobody receives is not recorded, yet the handling still has
    a trace id for its log lines and the next service; with an endpoint spans are recorded."""
    quiet = tracer_provider(Settings(), "routing").get_tracer("test")
    with quiet.start_as_current_span("handling") as span:
        event = add_trace_ids(None, "info", {"event": "x"})
    assert not span.is_recording()
    assert span.get_span_context().is_valid
    assert event["trace_id"] == format(span.get_span_context().trace_id, "032x")
    exporting = tracer_provider(Settings(otlp_endpoint="http://127.0.0.1:9/v1/traces"), "routing")
    try:
        assert exporting.sampler.should_sample(None, 1, "handling").decision.is_sampled()
    finally:
        exporting.shutdown()

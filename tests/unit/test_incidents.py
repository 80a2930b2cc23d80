"""Which reports are the same event (pure matching, no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from buurtalert.directory.model import load_directory
from buurtalert.routing.rules import Incident, distance_m, same_event, similarity
from buurtalert.shared.models import Author, InboundMessage, Location, ProviderRef, SourceChannel

WEERT = load_directory(Path(__file__).parents[2] / "deploy" / "demo" / "weert" / "directory.yaml")
T0 = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)
FIRST = "Man op rode scooter vlucht na inbraak richting Leuken"


def _message(text: str, *, at: datetime = T0, location: Location | None = None) -> InboundMessage:
    return InboundMessage(
        id="m2",
        provider=ProviderRef(channel=SourceChannel.WEB, message_id="r2"),
        municipality="weert-demo",
        group_id="g",
        author=Author(pseudonym="p"),
        text=text,
        location=location,
        sent_at=at,
        raw_ref="raw",
    )


def _incident(district: str = "boshoven", location: Location | None = None) -> Incident:
    return Incident(
        id="inc", municipality="weert-demo", district=district, text=FIRST, location=location, last_seen=T0
    )


def test_similar_reports_in_the_same_district_are_one_event() -> None:
    """Two groups describing the same scooter and burglary within minutes: one incident."""
    second = _message(
        "Rode scooter met man rijdt hard richting Leuken na inbraak", at=T0 + timedelta(minutes=5)
    )
    assert similarity(second.text, FIRST) >= 0.3
    assert same_event(second, "boshoven", _incident(), WEERT)


def test_unrelated_report_is_another_event() -> None:
    """A different story in the same district is a new incident."""
    assert not same_event(
        _message("Verdachte auto met buitenlands kenteken bij de school"), "boshoven", _incident(), WEERT
    )


def test_adjacent_district_may_share_an_incident_a_distant_one_may_not() -> None:
    """A suspect fleeing into the neighbouring district is the same event; Bocholt's is not reachable."""
    text = "Rode scooter met man rijdt hard richting Leuken na inbraak"
    assert same_event(_message(text), "leuken", _incident("boshoven"), WEERT)
    assert not same_event(_message(text), "elders", _incident("boshoven"), WEERT)


def test_time_window_limits_an_incident() -> None:
    """The same words three hours later are a new incident."""
    later = _message(FIRST, at=T0 + timedelta(hours=3))
    assert not same_event(later, "boshoven", _incident(), WEERT)


def test_nearby_location_joins_even_with_other_words() -> None:
    """Reports 200 m apart join, whatever their words."""
    here, near = Location(latitude=51.2500, longitude=5.6800), Location(latitude=51.2518, longitude=5.6800)
    assert 150 < distance_m(here, near) < 250
    assert same_event(
        _message("Glasgerinkel gehoord", location=near), "boshoven", _incident(location=here), WEERT
    )

"""Which reports are the same event (pure matching, no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from buurtalert.directory.model import load_directory
from buurtalert.routing.rules import (
    Incident,
    Route,
    already_told,
    distance_m,
    matching_incident,
    same_event,
    similarity,
    streets,
)
from buurtalert.shared.models import (
    Author,
    Delivery,
    Destination,
    InboundMessage,
    Location,
    ProviderRef,
    SourceChannel,
)

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


def test_streets_are_read_in_each_language() -> None:
    """Street names in Dutch, Flemish, German, French and English; 'onderweg' is not a street."""
    assert streets("Inbraak aan de Dorpstraat, dader onderweg naar de Stationsweg") == {
        "dorpstraat",
        "stationsweg",
    }
    assert streets("Verdächtiger in der Bahnhofstraße") == {"bahnhofstraße"}
    assert streets("Cambriolage rue de la Station") == {"rue:station"}
    assert streets("Break-in on Church Street") == {"street:church"}


def test_alike_words_in_different_streets_are_different_events() -> None:
    """A burst of look-alike reports from two streets is two incidents, not one."""
    incident = Incident(
        id="inc",
        municipality="weert-demo",
        district="boshoven",
        text="Inbraak bezig aan de Dorpstraat, man met rugzak, 112 gebeld",
        location=None,
        last_seen=T0,
    )
    elsewhere = _message("Inbraak bezig aan de Molenweg, man met rugzak, 112 gebeld")
    there = _message("Man met rugzak bij inbraak Dorpstraat, 112 gebeld")
    assert similarity(elsewhere.text, incident.text) >= 0.3
    assert not same_event(elsewhere, "boshoven", incident, WEERT)
    assert same_event(there, "boshoven", incident, WEERT)


def test_a_different_category_or_a_distant_place_is_another_event() -> None:
    """Named categories that differ never merge; two located reports 5 km apart do not
    either, unless the event travels (a suspect fleeing)."""
    here, far = Location(latitude=51.25, longitude=5.68), Location(latitude=51.295, longitude=5.68)
    assert distance_m(here, far) > 4_000
    burglary = Incident(
        id="inc",
        municipality="weert-demo",
        district="boshoven",
        text=FIRST,
        location=here,
        last_seen=T0,
        category="burglary",
    )
    assert not same_event(
        _message(FIRST, location=here).model_copy(update={"category": "fire"}), "boshoven", burglary, WEERT
    )
    assert not same_event(_message(FIRST, location=far), "boshoven", burglary, WEERT)
    fleeing = Incident(
        id="inc",
        municipality="weert-demo",
        district="boshoven",
        text=FIRST,
        location=here,
        last_seen=T0,
        category="suspect_fleeing",
    )
    assert same_event(_message(FIRST, location=far), "boshoven", fleeing, WEERT)


def test_a_report_joins_its_own_districts_incident_first_then_the_latest() -> None:
    own = Incident(
        id="own", municipality="weert-demo", district="boshoven", text=FIRST, location=None, last_seen=T0
    )
    neighbour = Incident(
        id="next",
        municipality="weert-demo",
        district="leuken",
        text=FIRST,
        location=None,
        last_seen=T0 + timedelta(minutes=5),
    )
    later = Incident(
        id="later",
        municipality="weert-demo",
        district="boshoven",
        text=FIRST,
        location=None,
        last_seen=T0 + timedelta(minutes=3),
    )
    message = _message(FIRST, at=T0 + timedelta(minutes=6))
    assert matching_incident(message, "boshoven", [neighbour, own, later], WEERT) == later
    assert matching_incident(message, "leuken", [own, neighbour], WEERT) == neighbour
    assert matching_incident(_message("Kat vermist"), "boshoven", [own], WEERT) is None


def _delivery(group: str, *rules: str) -> Delivery:
    return Delivery(
        id=f"dlv_{group}",
        message_id="m2",
        municipality="weert-demo",
        text="t",
        rules=rules,
        destination=Destination(
            group_id=group, municipality="weert-demo", channel="email", address="a@b.test"
        ),
    )


def test_groups_an_incident_told_are_not_told_again_except_a_closing_or_an_authority() -> None:
    """A joining report skips the groups another report told; the report that told them
    (a redelivery) goes again, as do a closing and an authority's alert."""
    told = Incident(
        id="inc",
        municipality="weert-demo",
        district="boshoven",
        text=FIRST,
        location=None,
        last_seen=T0,
        told={("weert-demo", "regie"): "m1"},
    )
    decision = Route(
        (
            _delivery("regie", "buurtgroep_to_regiegroep"),
            _delivery("leuken", "travelling_to_adjacent_district"),
        ),
        ("buurtgroep_to_regiegroep",),
    )
    kept = already_told(decision, told, "m2")
    assert [d.destination.group_id for d in kept.deliveries] == ["leuken"]
    assert "incident_already_told:regie" in kept.rules
    assert already_told(decision, told, "m1") == decision
    closing = Route((_delivery("regie", "incident_closing"),), ("incident_closing",))
    assert already_told(closing, told, "m2") == closing

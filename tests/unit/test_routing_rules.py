"""Routing rules, one test per rule, on the demo directories of Weert (NL) and Bocholt (BE)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from buurtalert.channels.render import render
from buurtalert.directory.model import Directory, load_directory
from buurtalert.routing.rules import Context, UnknownGroup, route
from buurtalert.shared.models import (
    Author,
    Decision,
    InboundMessage,
    Location,
    MediaRef,
    ModeratedMessage,
    ModerationResult,
    ProviderRef,
    Reason,
    Role,
    SourceChannel,
    TargetArea,
    short_reference,
)
from buurtalert.shared.texts import line

DEMO = Path(__file__).parents[2] / "deploy" / "demo"
WEERT = load_directory(DEMO / "weert" / "directory.yaml")
BOCHOLT = load_directory(DEMO / "bocholt" / "directory.yaml")
NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
MIDNIGHT = datetime(2026, 11, 23, 23, 30, tzinfo=UTC)  # 00:30 in Weert: quiet hours of boshoven-noord


def item(
    group: str | None = "boshoven-noord",
    *,
    role: Role = Role.RESIDENT,
    urgent: bool = False,
    decision: Decision = Decision.FORWARD,
    **fields: Any,
) -> ModeratedMessage:
    message = InboundMessage(
        id="msg_1",
        provider=ProviderRef(channel=SourceChannel.WEB, message_id="r1"),
        municipality=fields.pop("municipality", "weert-demo"),
        group_id=group,
        author=Author(pseudonym="p_x", role=role),
        text=fields.pop("text", "Verdachte situatie"),
        sent_at=NOON,
        raw_ref="raw_1",
        **fields,
    )
    reasons = (Reason(code="urgent_112", score=0.8),) if urgent else ()
    moderation = ModerationResult(message_id="msg_1", decision=decision, reasons=reasons, policy_version="t")
    return ModeratedMessage(message=message, moderation=moderation)


def ctx(directory: Directory = WEERT, **fields: Any) -> Context:
    return Context(
        directory=directory,
        partners={"bocholt-demo": BOCHOLT, "weert-demo": WEERT},
        now=fields.pop("now", NOON),
        **fields,
    )


def targets(result: Any) -> list[str]:
    return sorted(d.destination.group_id for d in result.deliveries)


def test_buurtgroep_message_goes_to_its_regiegroep_only() -> None:
    """A buurtgroep's message reaches its district's regiegroep, not the sibling buurtgroep."""
    result = route(item(), ctx())
    assert targets(result) == ["boshoven-regie"]
    assert result.deliveries[0].rules == ("buurtgroep_to_regiegroep",)


def test_a_regiegroep_gets_the_incidents_short_reference_and_a_buurtgroep_does_not() -> None:
    """The reference lets the wijkagent give the outcome by a reply (UITKOMST 3FA9C1 ...)."""
    incident = "inc_3fa9c1d2e4b5a6978877665544"
    alert = item(None, role=Role.WIJKAGENT, target=TargetArea(districts=("leuken",)))
    references = {
        d.destination.group_id: d.reference for d in route(alert, ctx(incident_id=incident)).deliveries
    }
    assert references == {"leuken-regie": "3FA9C1", "leuken-west": None}
    assert short_reference(incident) == "3FA9C1"
    shown = render(route(item(), ctx(incident_id=incident)).deliveries[0], 4096)
    assert shown.endswith(line("delivery_incident_reference", "nl", ref="3FA9C1"))
    assert "UITKOMST 3FA9C1 aanhouding|politie" in shown


def test_delivery_ids_are_stable_across_redelivery() -> None:
    """Routing the same message twice yields the same delivery ids (so channels sends once)."""
    assert route(item(), ctx()).deliveries[0].id == route(item(), ctx()).deliveries[0].id


def test_coordinator_passes_a_regiegroep_message_down_to_chosen_buurtgroepen() -> None:
    """Doorzetten: a coordinator in the regiegroep chooses buurtgroepen of the district."""
    result = route(item("boshoven-regie", role=Role.COORDINATOR, forward_to=("boshoven-zuid",)), ctx())
    assert targets(result) == ["boshoven-zuid"]
    assert result.deliveries[0].rules == ("doorzetten",)


def test_doorzetten_outside_the_district_or_by_a_resident_is_refused() -> None:
    """Only a coordinator may pass down, and only to buurtgroepen of the same district."""
    other_district = route(item("boshoven-regie", role=Role.COORDINATOR, forward_to=("leuken-west",)), ctx())
    assert targets(other_district) == [] and "doorzetten_refused:leuken-west" in other_district.rules
    resident = route(item("boshoven-regie", role=Role.RESIDENT, forward_to=("boshoven-zuid",)), ctx())
    assert targets(resident) == [] and "doorzetten_refused:not_a_coordinator" in resident.rules


def test_regiegroep_message_is_not_passed_down_automatically() -> None:
    """Without a coordinator's choice a regiegroep message stays in the regiegroep."""
    assert targets(route(item("boshoven-regie"), ctx())) == []


def test_travelling_category_reaches_the_adjacent_districts_regiegroepen() -> None:
    """A fleeing suspect's report also reaches the regiegroepen of the neighbouring districts."""
    result = route(item(category="suspect_fleeing"), ctx())
    by_group = {d.destination.group_id: d.rules for d in result.deliveries}
    assert by_group["leuken-regie"] == ("travelling_to_adjacent_district",)
    assert by_group["centrum-regie"] == ("travelling_to_adjacent_district",)
    assert by_group["boshoven-regie"] == ("buurtgroep_to_regiegroep",)


def test_cross_border_category_reaches_the_partner_regiegroep_with_origin_and_numbers() -> None:
    """From a border district, an agreed category reaches the partner's regiegroep, labelled."""
    result = route(item(category="missing_person"), ctx())
    [kaulille] = [d for d in result.deliveries if d.destination.group_id == "kaulille-regie"]
    assert kaulille.rules == ("cross_border",)
    assert kaulille.destination.municipality == "bocholt-demo"
    assert kaulille.notice is not None and "Weert (NL)" in kaulille.notice and "101" in kaulille.notice


def test_cross_border_needs_an_agreed_category_and_a_border_district() -> None:
    """A category outside the agreement, or a district that is not a border district, stays home."""
    assert "kaulille-regie" not in targets(route(item(category="suspicious_situation"), ctx()))
    assert "kaulille-regie" not in targets(route(item("leuken-west", category="missing_person"), ctx()))


def test_authority_alert_reaches_every_group_in_the_listed_districts() -> None:
    """An alert for districts reaches their buurtgroepen and regiegroepen."""
    alert = item(None, role=Role.WIJKAGENT, target=TargetArea(districts=("leuken",)))
    result = route(alert, ctx())
    assert targets(result) == ["leuken-regie", "leuken-west"]
    assert all(d.rules == ("authority_alert_area",) for d in result.deliveries)


def test_authority_alert_by_radius_covers_the_districts_the_circle_touches() -> None:
    """A 1 km circle in Boshoven near Leuken reaches both districts, not Centrum."""
    area = TargetArea(center=Location(latitude=51.245, longitude=5.685), radius_m=1000)
    assert targets(route(item(None, role=Role.WIJKAGENT, target=area), ctx())) == [
        "boshoven-noord",
        "boshoven-regie",
        "boshoven-zuid",
        "leuken-regie",
        "leuken-west",
    ]


def test_authority_alert_by_polygon() -> None:
    """A polygon inside Centrum reaches Centrum's groups only."""
    area = TargetArea(polygon=((5.70, 51.265), (5.71, 51.265), (5.71, 51.275), (5.70, 51.275)))
    assert sorted(set(targets(route(item(None, role=Role.AUTHORITY, target=area), ctx())))) == [
        "centrum-oost",
        "centrum-regie",
        "centrum-west",
    ]


def test_a_group_addressed_as_members_reaches_each_consenting_member_once() -> None:
    """Centrum-West is reached one to one: a delivery per member who opted in, each
    with its own id and key, the group's rules, and the member's pseudonym, not their name."""
    directory = WEERT.pseudonymised(SecretStr("a-key-of-sixteen-chars"))
    alert = item(None, role=Role.WIJKAGENT, target=TargetArea(districts=("centrum",)))
    west = [d for d in route(alert, ctx(directory)).deliveries if d.destination.group_id == "centrum-west"]
    assert sorted(d.destination.address for d in west) == ["+31 6 00000011", "+31 6 00000012"]
    assert {d.destination.recipient_type for d in west} == {"individual"}
    assert {d.rules for d in west} == {("authority_alert_area",)}
    assert len({d.id for d in west}) == len({d.destination.key for d in west}) == 2
    assert all(d.destination.recipient and d.destination.recipient.startswith("p_") for d in west)
    nobody = directory.model_copy(update={"members": ()})
    assert "no_members_opted_in:centrum-west" in route(alert, ctx(nobody)).rules


def test_a_resident_cannot_send_an_area_alert() -> None:
    """A target area from a resident is ignored: only authorities alert areas."""
    result = route(item(role=Role.RESIDENT, target=TargetArea(districts=("leuken", "centrum"))), ctx())
    assert targets(result) == ["boshoven-regie"]


def test_municipal_issue_is_escalated_instead_of_routed_to_groups() -> None:
    """A loose paving stone goes to the municipality, not to the groups (Bart!)."""
    result = route(item(category="loose_paving"), ctx())
    [delivery] = result.deliveries
    assert delivery.destination.address == "openbareruimte@weert-demo.buurtalert.test"
    assert result.rules == ("municipal_escalation",)


def test_quiet_hours_hold_non_urgent_deliveries_until_they_end() -> None:
    """At 00:30 a non-urgent alert to a group with quiet hours 23:00-07:00 waits until 07:00 local."""
    alert = item(
        None, role=Role.WIJKAGENT, target=TargetArea(districts=("boshoven",)), category="burglary_wave"
    )
    # Area alerts from authorities are urgent; make this one a plain message from the regiegroep instead.
    plain = item("boshoven-regie", role=Role.COORDINATOR, forward_to=("boshoven-noord",))
    [held] = route(plain, ctx(now=MIDNIGHT)).deliveries
    assert held.deliver_after == datetime(2026, 11, 24, 6, 0, tzinfo=UTC)  # 07:00 in Amsterdam (CET)
    assert "quiet_hours" in held.rules
    assert all(d.deliver_after is None for d in route(alert, ctx(now=MIDNIGHT)).deliveries)


def test_urgent_messages_ignore_quiet_hours() -> None:
    """Quiet hours never delay an urgent message."""
    urgent = item("boshoven-regie", role=Role.COORDINATOR, forward_to=("boshoven-noord",), urgent=True)
    [delivery] = route(urgent, ctx(now=MIDNIGHT)).deliveries
    assert delivery.deliver_after is None


def test_rate_limit_holds_non_urgent_deliveries_until_the_next_hour() -> None:
    """A group at its hourly limit gets further non-urgent messages in the next hour."""
    plain = item("boshoven-regie", role=Role.COORDINATOR, forward_to=("boshoven-zuid",))
    [held] = route(plain, ctx(recent={"boshoven-zuid": 6})).deliveries
    assert held.deliver_after == datetime(2026, 11, 23, 13, 0, tzinfo=UTC)
    assert "rate_limited" in held.rules
    [free] = route(plain, ctx(recent={"boshoven-zuid": 5})).deliveries
    assert free.deliver_after is None


def test_closing_message_reaches_every_group_the_incident_reached() -> None:
    """'Vermiste man is gevonden' from the wijkagent reaches every group of the incident."""
    closing = item("boshoven-regie", role=Role.WIJKAGENT, closes="inc_1", text="De vermiste man is gevonden.")
    reached = (
        ("weert-demo", "boshoven-regie"),
        ("weert-demo", "leuken-regie"),
        ("bocholt-demo", "kaulille-regie"),
    )
    result = route(closing, ctx(incident_groups=reached))
    assert targets(result) == ["kaulille-regie", "leuken-regie"]  # not back to the sender
    assert all("incident_closing" in d.rules for d in result.deliveries)


def test_rejected_or_held_messages_are_never_routed() -> None:
    """Only approved messages are routed."""
    for decision in (Decision.REJECT, Decision.REVIEW):
        assert route(item(decision=decision), ctx()).deliveries == ()


def test_unknown_group_is_an_error_not_a_silent_drop() -> None:
    """A message from a group that is not in the directory raises, so it is dead-lettered."""
    with pytest.raises(UnknownGroup):
        route(item("elders"), ctx())


def test_saar_reminder_travels_with_the_delivery() -> None:
    """Moderation's SAAR reminder reaches the delivery for the channel to render."""
    base = item()
    reminded = base.model_copy(
        update={"moderation": base.moderation.model_copy(update={"saar_reminder": True})}
    )
    assert route(reminded, ctx()).deliveries[0].saar_reminder


def test_no_rule_delivers_to_a_member_directly() -> None:
    """The wijkagent is reached through the regiegroep: every destination is a group or escalation."""
    alert = item(None, role=Role.WIJKAGENT, target=TargetArea(districts=("boshoven", "leuken", "centrum")))
    group_ids = {g.id for g in WEERT.groups}
    assert {d.destination.group_id for d in route(alert, ctx()).deliveries} <= group_ids


def test_media_travel_with_an_authority_alert_and_never_with_a_resident_report() -> None:
    """A wijkagent's photo of a missing person goes along; a resident's photo of a
    "suspect" stays behind, since moderation reads text and not images."""
    photo = MediaRef(kind="image", storage_ref="med_1", mime_type="image/jpeg")
    alert = item(None, role=Role.WIJKAGENT, target=TargetArea(districts=("leuken",)), media=(photo,))
    report = item("boshoven-noord", media=(photo,))
    assert {d.media for d in route(alert, ctx()).deliveries} == {(photo,)}
    assert {d.media for d in route(report, ctx()).deliveries} == {()}


def test_lines_we_add_are_in_the_recipients_language_never_the_message() -> None:
    """The cross-border notice follows the agreement's language and the delivery carries
    it (channels renders the SAAR reminder in it); the message text itself is untouched."""
    base = ctx()
    french = base.directory.model_copy(
        update={
            "agreements": tuple(a.model_copy(update={"language": "fr"}) for a in base.directory.agreements)
        }
    )
    result = route(item(category="missing_person"), Context(directory=french, partners=base.partners))
    [kaulille] = [d for d in result.deliveries if d.destination.group_id == "kaulille-regie"]
    assert kaulille.language == "fr"
    assert kaulille.notice is not None and kaulille.notice.startswith("Signalement venant de Weert (NL)")
    assert kaulille.text == item(category="missing_person").message.text
    home = [d for d in result.deliveries if d.destination.group_id == "boshoven-regie"]
    assert home and all(d.language == "nl" for d in home)

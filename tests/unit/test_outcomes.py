"""Incidents' outcomes, the pure parts: ingest reading a regiegroep reply as a command, the
review service's rule on who may give an outcome, and routing's outcome message to every
group an incident reached, each in its own language."""

from __future__ import annotations

from datetime import UTC, datetime

from buurtalert.directory.model import load_directory
from buurtalert.ingest.parsers.commands import outcome_command
from buurtalert.review.effect.rules import (
    IncidentView,
    command_refusal,
    figures_for,
    incident_districts,
    outcome_id,
    polls_for,
)
from buurtalert.review.rules import User
from buurtalert.routing.outcomes import outcome_deliveries, outcome_text
from buurtalert.shared.models import (
    Author,
    InboundMessage,
    IncidentOutcome,
    OutcomeKind,
    ProviderRef,
    Role,
    SourceChannel,
)
from buurtalert.shared.settings import load_municipality_config
from tests.conftest import DEMO

KEY = load_municipality_config(DEMO / "weert" / "municipality.yaml").pseudonym_key
WEERT = load_directory(DEMO / "weert" / "directory.yaml").pseudonymised(KEY)
BOCHOLT = load_directory(DEMO / "bocholt" / "directory.yaml").pseudonymised(
    load_municipality_config(DEMO / "bocholt" / "municipality.yaml").pseudonym_key
)
T0 = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)
INCIDENT = IncidentView(
    id="inc_0123456789abcdef01234567",
    municipality="weert-demo",
    district="boshoven",
    opened_at=T0,
    groups=(("weert-demo", "boshoven-regie"), ("bocholt-demo", "kaulille-regie")),
)


def pseudonym(member_id: str) -> str:
    member = next(m for m in WEERT.members if m.id == member_id)
    assert member.pseudonym is not None
    return member.pseudonym


def reply(
    text: str,
    *,
    member: str = "wijkagent-boshoven",
    group: str | None = "boshoven-regie",
    verified: bool = True,
) -> InboundMessage:
    return InboundMessage(
        id="msg_reply",
        provider=ProviderRef(channel=SourceChannel.WHATSAPP, message_id="wamid.reply"),
        municipality="weert-demo",
        group_id=group,
        author=Author(pseudonym=pseudonym(member), role=Role.WIJKAGENT, member_id=member, verified=verified),
        text=text,
        sent_at=T0,
        raw_ref="raw",
    )


def test_a_reply_in_a_group_is_read_as_an_outcome_command_in_dutch_or_english() -> None:
    """``UITKOMST <incident> aanhouding <note>`` and ``outcome <incident> false-alarm``."""
    command = outcome_command(reply(f"UITKOMST {INCIDENT.id} aanhouding  Verdachte  aangehouden."))
    assert command is not None
    assert (command.incident_ref, command.outcome, command.note) == (
        INCIDENT.id,
        OutcomeKind.ARREST,
        "Verdachte aangehouden.",
    )
    assert command.problem is None
    english = outcome_command(reply(f"outcome: {INCIDENT.id} false_alarm"))
    assert english is not None and english.outcome is OutcomeKind.FALSE_ALARM and english.note == ""


def test_an_ordinary_report_or_a_one_to_one_message_is_no_command() -> None:
    """Reports pass on to moderation; a command needs a group."""
    assert outcome_command(reply("Verdachte man bij de school, 112 gebeld")) is None
    assert outcome_command(reply(f"UITKOMST {INCIDENT.id} aanhouding", group=None)) is None
    assert outcome_command(reply("Uitkomstige zaken")) is None


def test_an_unreadable_command_is_still_a_command_with_its_problem() -> None:
    """Kept with the reason rather than forwarded to the group as a report."""
    unknown = outcome_command(reply(f"UITKOMST {INCIDENT.id} opgelost"))
    assert unknown is not None and unknown.outcome is None and unknown.problem == "unknown outcome word"
    bare = outcome_command(reply("UITKOMST"))
    assert bare is not None and bare.problem == "no incident given"


def test_the_wijkagent_of_the_regiegroep_may_give_the_outcome() -> None:
    command = outcome_command(reply(f"UITKOMST {INCIDENT.id} niets"))
    assert command is not None
    assert command_refusal(command, WEERT, INCIDENT) is None


def test_a_coordinator_of_the_regiegroep_may_too() -> None:
    command = outcome_command(reply(f"UITKOMST {INCIDENT.id} niets", member="coordinator-noord"))
    assert command is not None
    assert command_refusal(command, WEERT, INCIDENT) is None


def test_anyone_else_or_an_unverified_sender_or_another_group_is_refused_with_the_reason() -> None:
    """A resident, an unverified address, a buurtgroep, an unknown or foreign incident."""
    resident = outcome_command(reply(f"UITKOMST {INCIDENT.id} niets", member="bewoner-noord-1"))
    assert resident is not None
    assert command_refusal(resident, WEERT, INCIDENT) == (
        "the sender is not the wijkagent or a coordinator of this regiegroep"
    )
    unverified = outcome_command(reply(f"UITKOMST {INCIDENT.id} niets", verified=False))
    assert unverified is not None
    assert command_refusal(unverified, WEERT, INCIDENT) == "the sender is not verified by the channel"
    buurtgroep = outcome_command(
        reply(f"UITKOMST {INCIDENT.id} niets", member="coordinator-noord", group="boshoven-noord")
    )
    assert buurtgroep is not None
    assert command_refusal(buurtgroep, WEERT, INCIDENT) == "not posted in a regiegroep"
    command = outcome_command(reply(f"UITKOMST {INCIDENT.id} niets"))
    assert command is not None
    assert command_refusal(command, WEERT, None) == "unknown incident"
    elsewhere = IncidentView(
        id=INCIDENT.id, municipality="weert-demo", district="centrum", opened_at=T0, groups=()
    )
    assert command_refusal(command, WEERT, elsewhere) == "the incident is not one of this regiegroep"


def test_the_outcome_reaches_every_group_the_incident_reached_in_its_language() -> None:
    """One delivery per group (partner's too), the text in the group's language, with the
    note as written and never the report; ids from the outcome, so a repeat is the same."""
    outcome = IncidentOutcome(
        id=outcome_id(INCIDENT.id),
        incident_id=INCIDENT.id,
        municipality="weert-demo",
        outcome=OutcomeKind.ARREST,
        note="Twee verdachten aangehouden",
        actor="wijkagent-boshoven",
        actor_role=Role.WIJKAGENT,
        source="regiegroep",
        reported_at=T0,
    )
    french = BOCHOLT.model_copy(
        update={"groups": tuple(g.model_copy(update={"language": "fr"}) for g in BOCHOLT.groups)}
    )
    deliveries, notes = outcome_deliveries(
        outcome, INCIDENT.groups, WEERT, {"bocholt-demo": french}, T0.replace(hour=12)
    )
    assert notes == []
    by_group = {d.destination.group_id: d for d in deliveries}
    assert set(by_group) == {"boshoven-regie", "kaulille-regie"}
    assert "Er is iemand aangehouden." in by_group["boshoven-regie"].text
    assert "Une personne a été interpellée." in by_group["kaulille-regie"].text
    assert by_group["kaulille-regie"].language == "fr"
    assert "Twee verdachten aangehouden" in by_group["kaulille-regie"].text  # the note, as written
    assert "23-11-2026 21:00" in by_group["boshoven-regie"].text  # the report's time, local
    again, _ = outcome_deliveries(outcome, INCIDENT.groups, WEERT, {"bocholt-demo": french}, T0)
    assert {d.id for d in again} == {d.id for d in deliveries}
    assert all(d.incident_id == INCIDENT.id and d.message_id == outcome.id for d in deliveries)


def test_an_outcome_text_exists_for_every_kind_in_every_language() -> None:
    for kind in OutcomeKind:
        for language in ("nl", "en", "fr", "de"):
            outcome = IncidentOutcome(
                id="out",
                incident_id="inc",
                municipality="weert-demo",
                outcome=kind,
                actor="a",
                actor_role=Role.ADMIN,
                source="console",
            )
            assert outcome_text(outcome, language, "Europe/Amsterdam").strip()


def test_a_scoped_user_sees_the_incidents_and_figures_of_their_districts() -> None:
    """Incidents: a wijkagent's districts, a coordinator's groups' districts, the whole
    municipality for an admin or moderator; a scoped role without scope none. The figures and
    poll results shown to a wijkagent are their districts' only (polls not asking them left out)."""
    agent = User("wout", "weert-demo", Role.WIJKAGENT, districts=("centrum",))
    coordinator = User("carl", "weert-demo", Role.COORDINATOR, groups=("boshoven-noord", "centrum-west"))
    admin = User("anna", "weert-demo", Role.ADMIN)
    assert incident_districts(agent, WEERT) == ("centrum",)
    assert incident_districts(coordinator, WEERT) == ("boshoven", "centrum")
    assert incident_districts(coordinator, None) == ()
    assert incident_districts(User("old", "weert-demo", Role.COORDINATOR), WEERT) == ()
    assert incident_districts(admin, WEERT) is None
    assert incident_districts(User("bob", "weert-demo", Role.MODERATOR), WEERT) is None

    shown = {"since": "2026-11-02", "districts": {"boshoven": {"reports": 3}, "centrum": {"reports": 1}}}
    assert figures_for(agent, shown) == {"since": "2026-11-02", "districts": {"centrum": {"reports": 1}}}
    assert figures_for(admin, shown) == shown
    polls = [
        {"id": "p1", "districts": [{"district": "boshoven"}, {"district": "centrum"}]},
        {"id": "p2", "districts": [{"district": "leuken"}]},
    ]
    assert polls_for(agent, polls) == [{"id": "p1", "districts": [{"district": "centrum"}]}]
    assert polls_for(admin, polls) == polls

"""Routing rules: the regiegroep model of the walking skeleton."""

from __future__ import annotations

import pytest

from buurtalert.routing.directory import Directory, Group, GroupKind
from buurtalert.routing.rules import UnknownGroup, route
from buurtalert.shared.models import (
    Author,
    Decision,
    InboundMessage,
    ModeratedMessage,
    ModerationResult,
    ProviderRef,
    SourceChannel,
    utcnow,
)

GROUPS = (
    Group(
        id="noord",
        name="Noord",
        kind=GroupKind.BUURTGROEP,
        district="d1",
        channel="email",
        address="noord@example.test",
    ),
    Group(
        id="zuid",
        name="Zuid",
        kind=GroupKind.BUURTGROEP,
        district="d1",
        channel="email",
        address="zuid@example.test",
    ),
    Group(
        id="regie",
        name="Regie D1",
        kind=GroupKind.REGIEGROEP,
        district="d1",
        channel="email",
        address="regie@example.test",
    ),
)


def _item(group: str, text: str = "Verdachte situatie", *, saar: bool = False) -> ModeratedMessage:
    message = InboundMessage(
        id="msg_1",
        provider=ProviderRef(channel=SourceChannel.WEB, message_id="r1"),
        municipality="m",
        group_id=group,
        author=Author(pseudonym="p_x"),
        text=text,
        sent_at=utcnow(),
        raw_ref="raw_1",
    )
    moderation = ModerationResult(
        message_id="msg_1", decision=Decision.FORWARD, saar_reminder=saar, policy_version="t"
    )
    return ModeratedMessage(message=message, moderation=moderation)


def test_buurtgroep_message_goes_to_its_regiegroep_only() -> None:
    """A buurtgroep's message reaches its district's regiegroep, not the sibling buurtgroep."""
    decision = route(_item("noord"), GROUPS)
    assert [d.destination.group_id for d in decision.deliveries] == ["regie"]
    assert decision.deliveries[0].rules == ("buurtgroep_to_regiegroep",)
    assert decision.deliveries[0].destination.address == "regie@example.test"


def test_delivery_ids_are_stable_across_redelivery() -> None:
    """Routing the same message twice yields the same delivery ids (so channels sends once)."""
    assert route(_item("noord"), GROUPS).deliveries[0].id == route(_item("noord"), GROUPS).deliveries[0].id


def test_regiegroep_message_is_not_passed_down_automatically() -> None:
    """Passing down ("doorzetten") is a coordinator's act, so a regiegroep message stays."""
    decision = route(_item("regie"), GROUPS)
    assert decision.deliveries == ()
    assert decision.rules == ("regiegroep_message_stays",)


def test_unknown_group_is_an_error_not_a_silent_drop() -> None:
    """A message from a group that is not in the directory raises, so it is dead-lettered."""
    with pytest.raises(UnknownGroup):
        route(_item("elders"), GROUPS)


def test_saar_reminder_travels_with_the_delivery() -> None:
    """Moderation's SAAR reminder reaches the delivery for the channel to render."""
    assert route(_item("noord", saar=True), GROUPS).deliveries[0].saar_reminder


def test_directory_rejects_repeated_group_ids() -> None:
    """Two groups with one id would make routing ambiguous: the directory refuses them."""
    with pytest.raises(ValueError, match="repeated: noord"):
        Directory(municipality="m", groups=(GROUPS[0], GROUPS[0]))

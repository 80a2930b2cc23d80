"""A removal agreed in the review console, as the directory applies the membership register:
the member no longer receives the group's messages, and keeps their other groups; and the
command that takes them out of the group's WhatsApp group keeps their number secret."""

from __future__ import annotations

import structlog
from pydantic import SecretStr

from buurtalert.directory.model import Membership, MembershipState, apply_memberships, load_directory
from buurtalert.shared.models import GroupRemoval, utcnow
from tests.conftest import DEMO


def joined(groups: tuple[str, ...], removed: tuple[str, ...] = ()) -> Membership:
    return Membership(
        municipality="weert-demo",
        pseudonym="p_member",
        state=MembershipState.ACTIVE,
        groups=groups,
        removed=removed,
        address="31612345678",
        consent_one_to_one=True,
        changed_at=utcnow(),
    )


def test_a_removed_member_leaves_that_group_only() -> None:
    """Removed from centrum-west (reached member by member), the member is no longer among
    its recipients and keeps boshoven-noord; without the removal they have both."""
    directory = load_directory(DEMO / "weert" / "directory.yaml")
    both = ("centrum-west", "boshoven-noord")
    before = apply_memberships(directory, [joined(both)])
    after = apply_memberships(directory, [joined(("boshoven-noord",), removed=("centrum-west",))])
    for applied, groups, in_centrum in ((before, both, True), (after, ("boshoven-noord",), False)):
        member, centrum = applied.member("p_member"), applied.group("centrum-west")
        assert member is not None and member.groups == groups
        assert centrum is not None
        assert any(m.pseudonym == "p_member" for m in applied.recipients(centrum)) is in_centrum


def test_a_removal_outweighs_the_directory_file() -> None:
    """A member the file lists in centrum-west, removed from it in the register, is not
    reached there (the register's removal wins over the file's groups)."""
    directory = load_directory(DEMO / "weert" / "directory.yaml").model_copy()
    member = next(m for m in directory.members if m.id == "bewoner-west-1")
    listed = directory.model_copy(
        update={
            "members": tuple(
                m.model_copy(update={"pseudonym": "p_member"}) if m.id == member.id else m
                for m in directory.members
            )
        }
    )
    applied = apply_memberships(listed, [joined((), removed=("centrum-west",))])
    centrum = applied.group("centrum-west")
    assert centrum is not None and all(m.pseudonym != "p_member" for m in applied.recipients(centrum))


def group_removal(number: str = "31677777777") -> GroupRemoval:
    return GroupRemoval(
        id=GroupRemoval.removal_id("dec_1", "120363041234567890"),
        decision_id="dec_1",
        subject_id="rmv_1",
        municipality="weert-demo",
        group_id="boshoven-regie",
        whatsapp_group_id="120363041234567890",
        member="p_member",
        participant=SecretStr(number),
        reason="off_topic",
        agreed_by=("anna", "carl"),
        decided_at=utcnow(),
    )


def test_a_group_removal_keeps_the_number_out_of_reprs_and_logs_but_carries_it_to_channels() -> None:
    """The participant's number never shows in the command's repr, str or a log line that
    names it; the JSON channels reads carries it, and reads back to the same command."""
    removal = group_removal()
    with structlog.testing.capture_logs() as logs:
        structlog.get_logger().info("group_removal", removal=removal)
    for shown in (repr(removal), str(removal), str(logs), str(removal.model_dump())):
        assert "31677777777" not in shown
    wire = removal.model_dump_json()
    assert '"participant":"31677777777"' in wire
    back = GroupRemoval.model_validate_json(wire)
    assert back.participant.get_secret_value() == "31677777777" and back == removal


def test_a_group_removal_id_comes_from_the_decision_and_the_whatsapp_group() -> None:
    """The same decision asks each WhatsApp group once, with one id; another group, another id."""
    assert group_removal().id == GroupRemoval.removal_id("dec_1", "120363041234567890")
    assert GroupRemoval.removal_id("dec_1", "120363041234567890") != GroupRemoval.removal_id("dec_1", "1203")
    assert group_removal().partition_key == b"weert-demo:120363041234567890"


def test_a_groups_whatsapp_groups_are_its_own_groups_api_address_and_its_inbound_ones() -> None:
    """Boshoven's regiegroep (an email list that also posts in a WhatsApp group) has that group;
    a buurtgroep reached member by member, or by email only, has none."""
    directory = load_directory(DEMO / "weert" / "directory.yaml")
    found = {g.id: g.whatsapp_groups for g in directory.groups}
    assert found["boshoven-regie"] == ("120363041234567890",)
    assert found["centrum-west"] == () and found["boshoven-noord"] == ()
    own = directory.groups[0].model_copy(update={"channel": "whatsapp", "address": "120363049876543210"})
    assert own.whatsapp_groups == ("120363049876543210",)

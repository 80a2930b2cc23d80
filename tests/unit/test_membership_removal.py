"""A removal agreed in the review console, as the directory applies the membership register:
the member no longer receives the group's messages, and keeps their other groups."""

from __future__ import annotations

from buurtalert.directory.model import Membership, MembershipState, apply_memberships, load_directory
from buurtalert.shared.models import utcnow
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

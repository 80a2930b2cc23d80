"""The directory's model, free of I/O: a municipality's districts, groups, members,
cross-border agreements and escalation targets. One YAML file per municipality,
validated with errors that name the line (stored by :mod:`buurtalert.directory.store`).

Members are kept pseudonymised: the YAML may hold a member's phone number or
email address, which is replaced by its keyed hash on loading, unless the member
opted in to one-to-one delivery, where the channel needs the address itself.
"""

from __future__ import annotations

from datetime import date, datetime
from datetime import time as clock
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from buurtalert.shared.models import Role
from buurtalert.shared.pseudonym import pseudonymise
from buurtalert.shared.yamlfile import load_yaml

Slug = str
#: The languages of the lines buurtalert adds (free text is never translated).
Language = Literal["nl", "fr", "de", "en"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EmergencyNumbers(Strict):
    urgent: str = "112"
    non_urgent: str


class Municipality(Strict):
    id: Slug = Field(pattern=r"^[a-z0-9-]+$")
    name: str
    country: Literal["NL", "BE"]
    emergency: EmergencyNumbers
    timezone: str = "Europe/Amsterdam"
    language: Language = Field(default="nl", description="The language of the lines we add for its groups")


class District(Strict):
    id: Slug = Field(pattern=r"^[a-z0-9-]+$")
    name: str
    neighbours: tuple[Slug, ...] = ()
    geometry: dict[str, Any] | None = Field(default=None, description="GeoJSON Polygon or MultiPolygon")
    households: int | None = Field(
        default=None, ge=0, description="Households in the district (CBS), for figures per 1,000 households"
    )


class GroupKind(StrEnum):
    BUURTGROEP = "buurtgroep"
    REGIEGROEP = "regiegroep"


class QuietHours(Strict):
    start: clock
    end: clock

    def contains(self, moment: clock) -> bool:
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end  # across midnight


#: A group address meaning "each member who consented, one by one" (a buurtgroep far
#: larger than WhatsApp's 8-person groups, reached from the municipality's number).
MEMBERS = "members"


class Endpoint(Strict):
    """Where a group's members also post: a WhatsApp group, a Facebook Page, a list address."""

    channel: Literal["whatsapp", "facebook", "email"]
    address: str


class Group(Strict):
    id: Slug = Field(pattern=r"^[a-z0-9-]+$")
    name: str
    kind: GroupKind
    district: Slug
    channel: str = Field(description="The channel adapter that reaches this group")
    address: str = Field(
        description="A list address, a WhatsApp group id, a Page id, a webhook URL; "
        f"{MEMBERS!r}: one message to each member who consented to one-to-one delivery"
    )
    inbound: tuple[Endpoint, ...] = Field(
        default=(), description="Further places whose messages belong to this group (ingest)"
    )
    join_code: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9-]{10,32}$",
        description="The code a member sends with AANMELDEN to the municipality's WhatsApp number: "
        "random (at least 10 characters, letters and digits), not the group's name",
    )
    max_per_hour: int | None = Field(default=None, ge=1, description="Non-urgent deliveries per hour")
    language: Language | None = Field(
        default=None, description="The group's language, if not the municipality's"
    )
    quiet_hours: QuietHours | None = None
    started: date | None = Field(
        default=None, description="When the group started (registered crime before and after it)"
    )

    @property
    def whatsapp_groups(self) -> tuple[str, ...]:
        """The WhatsApp Groups API groups of this group (business-created, up to 8
        participants): its own address when it is reached as one, and the WhatsApp groups
        whose messages belong to it. None for a group reached member by member."""
        own = (self.address,) if self.channel == "whatsapp" and self.address != MEMBERS else ()
        inbound = tuple(e.address for e in self.inbound if e.channel == "whatsapp")
        return tuple(dict.fromkeys((*own, *inbound)))

    @field_validator("join_code")
    @classmethod
    def _random_code(cls, code: str | None) -> str | None:
        if code is not None and not (any(c.isdigit() for c in code) and any(c.isalpha() for c in code)):
            raise ValueError("a join code mixes letters and digits (make one at random): not guessable")
        return code


class Member(Strict):
    id: Slug
    groups: tuple[Slug, ...]
    role: Role = Role.RESIDENT
    pseudonym: str | None = None
    address: str | None = Field(default=None, description="Phone or email; pseudonymised on loading")
    consent_one_to_one: bool = False

    @model_validator(mode="after")
    def _identified(self) -> Member:
        if self.pseudonym is None and self.address is None:
            raise ValueError("a member needs an address or a pseudonym")
        return self


class Agreement(Strict):
    """A cross-border agreement with a partner municipality."""

    partner: Slug
    own_districts: tuple[Slug, ...]
    partner_districts: tuple[Slug, ...]
    categories: tuple[str, ...]
    language: Language = Field(default="nl", description="The partner side's language, for the lines we add")
    partner_emergency: EmergencyNumbers


class EscalationTarget(Strict):
    """Where issues that belong to the municipality or police go instead of the groups."""

    categories: tuple[str, ...]
    name: str
    channel: str
    address: str


class Directory(Strict):
    municipality: Municipality
    districts: tuple[District, ...]
    groups: tuple[Group, ...]
    members: tuple[Member, ...] = ()
    agreements: tuple[Agreement, ...] = ()
    escalation: tuple[EscalationTarget, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Directory:
        problems: list[str] = []
        for kind, ids in (
            ("district", [d.id for d in self.districts]),
            ("group", [g.id for g in self.groups]),
        ):
            if repeated := sorted({i for i in ids if ids.count(i) > 1}):
                problems.append(f"{kind} ids must be unique; repeated: {', '.join(repeated)}")
        districts = {d.id for d in self.districts}
        groups = {g.id for g in self.groups}
        for d in self.districts:
            if unknown := set(d.neighbours) - districts:
                problems.append(f"district {d.id}: unknown neighbours {', '.join(sorted(unknown))}")
        for g in self.groups:
            if g.district not in districts:
                problems.append(f"group {g.id}: unknown district {g.district}")
        codes = [g.join_code.casefold() for g in self.groups if g.join_code]
        if repeated := sorted({c for c in codes if codes.count(c) > 1}):
            problems.append(f"join codes must be unique; repeated: {', '.join(repeated)}")
        for m in self.members:
            if unknown := set(m.groups) - groups:
                problems.append(f"member {m.id}: unknown groups {', '.join(sorted(unknown))}")
        for a in self.agreements:
            if unknown := set(a.own_districts) - districts:
                problems.append(f"agreement with {a.partner}: unknown districts {', '.join(sorted(unknown))}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    # Lookups by id (the directory is frozen; ``model_copy`` keeps these, so a copy that
    # changes its groups or districts must be validated afresh instead).
    @cached_property
    def _groups_by_id(self) -> dict[str, Group]:
        return {g.id: g for g in self.groups}

    @cached_property
    def _districts_by_id(self) -> dict[str, District]:
        return {d.id: d for d in self.districts}

    def group(self, group_id: str) -> Group | None:
        return self._groups_by_id.get(group_id)

    def group_at(self, channel: str, address: str) -> Group | None:
        """The group that lives at ``address`` on ``channel`` (its own address or an inbound one)."""
        wanted = address.casefold()
        for g in self.groups:
            if g.channel == channel and g.address.casefold() == wanted:
                return g
            if any(e.channel == channel and e.address.casefold() == wanted for e in g.inbound):
                return g
        return None

    def group_by_code(self, code: str) -> Group | None:
        wanted = code.casefold()
        return next((g for g in self.groups if g.join_code and g.join_code.casefold() == wanted), None)

    def member(self, pseudonym: str) -> Member | None:
        return next((m for m in self.members if m.pseudonym == pseudonym), None)

    def home_group(self, member: Member) -> Group | None:
        """The group a member's one-to-one messages belong to: their first buurtgroep."""
        groups = [g for g in (self.group(i) for i in member.groups) if g is not None]
        return next((g for g in groups if g.kind is GroupKind.BUURTGROEP), groups[0] if groups else None)

    def recipients(self, group: Group) -> list[Member]:
        """The members a group addressed as :data:`MEMBERS` reaches one by one: those
        who consented, with an address its channel can use (email or phone)."""
        by_email = group.channel == "email"
        return [
            m
            for m in self.members
            if group.id in m.groups and m.consent_one_to_one and m.address and ("@" in m.address) == by_email
        ]

    def regiegroepen(self, district: str) -> list[Group]:
        return [g for g in self.groups if g.kind is GroupKind.REGIEGROEP and g.district == district]

    def district(self, district_id: str) -> District | None:
        return self._districts_by_id.get(district_id)

    def pseudonymised(self, key: SecretStr) -> Directory:
        """The directory with every member's address replaced by its pseudonym, except
        where the member consented to one-to-one delivery (the channel needs it)."""
        members = tuple(
            m.model_copy(
                update={
                    "pseudonym": m.pseudonym or pseudonymise(key, m.address or "", self.municipality.country),
                    "address": m.address if m.consent_one_to_one else None,
                }
            )
            for m in self.members
        )
        return self.model_copy(update={"members": members})


def load_directory(path: Path) -> Directory:
    """The directory file; raises :class:`ConfigFileError` naming the line of each problem."""
    return load_yaml(path, Directory)


class MembershipState(StrEnum):
    PENDING = "pending"  # asked to join (AANMELDEN); a coordinator has not approved yet
    ACTIVE = "active"  # approved: receives its groups' messages (if it consented)
    LEFT = "left"  # STOP: receives nothing, its address forgotten


class Membership(Strict):
    """A member's own choice, sent by message (AANMELDEN <code>, STOP): kept apart from
    the YAML file so that reloading the file never undoes an opt-in or an opt-out.

    A join is PENDING until a coordinator approves it (``requested`` holds the groups
    asked for; approval moves them to ``groups``); a pending member receives nothing.
    ``changed_at`` is the provider's time of the last event applied: an older event
    (a replayed AANMELDEN after STOP) never overrides a newer one."""

    municipality: str
    pseudonym: str
    state: MembershipState = MembershipState.ACTIVE
    groups: tuple[Slug, ...] = Field(default=(), description="Approved groups")
    requested: tuple[Slug, ...] = Field(default=(), description="Groups asked for, awaiting approval")
    asking: bool = Field(
        default=False,
        description="A join awaits approval (requested is not empty), also of an active member: "
        "what the console's pending joins are read by",
    )
    removed: tuple[Slug, ...] = Field(
        default=(), description="Groups two admins or coordinators removed the member from (four eyes)"
    )
    address: str | None = Field(default=None, description="Kept only while consent is given")
    consent_one_to_one: bool
    changed_at: datetime


def apply_memberships(directory: Directory, memberships: list[Membership]) -> Directory:
    """The directory as the members themselves chose: an opt-out withdraws consent (and
    the address) given in the file; an opt-in adds the member to the group."""
    if not memberships:
        return directory
    members = {m.pseudonym: m for m in directory.members if m.pseudonym}
    others = [m for m in directory.members if not m.pseudonym]
    for choice in memberships:
        if choice.state is MembershipState.PENDING and not choice.removed:
            continue  # nothing changes until a coordinator approves
        known = members.get(choice.pseudonym)
        if known is None:
            if not choice.consent_one_to_one:
                continue
            known = Member(id=f"m-{choice.pseudonym[2:14]}", groups=choice.groups, pseudonym=choice.pseudonym)
        consent = choice.consent_one_to_one and choice.state is MembershipState.ACTIVE
        groups = (g for g in dict.fromkeys((*known.groups, *choice.groups)) if g not in choice.removed)
        members[choice.pseudonym] = known.model_copy(
            update={
                "groups": tuple(groups),
                "address": choice.address if consent else None,
                "consent_one_to_one": consent,
            }
        )
    return directory.model_copy(update={"members": (*others, *members.values())})

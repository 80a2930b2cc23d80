"""Routing rules, free of I/O: a moderated message and the directory in, deliveries
out. Every delivery records the chain of rules that chose it, and the decision
records every rule that fired.

The wijkagent is reached through the regiegroep only: rules choose groups, never
individual members. A group addressed as ``members`` (a buurtgroep reached one to
one from the municipality's WhatsApp number) becomes one delivery per member who
consented, each with the group's rules.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from buurtalert.directory.model import MEMBERS, Directory, Group, GroupKind
from buurtalert.routing.area import districts_in
from buurtalert.shared.models import (
    AUTHORITIES,
    Decision,
    Delivery,
    Destination,
    InboundMessage,
    Location,
    MediaRef,
    ModeratedMessage,
    Role,
    short_reference,
)
from buurtalert.shared.texts import line

#: Categories that travel to the regiegroepen of adjacent districts.
TRAVELLING_CATEGORIES = frozenset({"suspect_fleeing", "missing_person"})
#: Categories that are urgent whatever moderation found.
URGENT_CATEGORIES = frozenset({"suspect_fleeing", "missing_person", "police_alert", "burglary_in_progress"})
#: Who may pass messages down or close an incident, besides the authorities.
COORDINATORS = frozenset({Role.COORDINATOR, Role.ADMIN, Role.WIJKAGENT})


class UnknownGroup(LookupError):
    pass


@dataclass(frozen=True)
class Context:
    """What the rules need besides the message."""

    directory: Directory
    partners: Mapping[str, Directory] = field(default_factory=dict)
    now: datetime = field(default_factory=lambda: datetime.now(ZoneInfo("UTC")))
    #: Non-urgent deliveries per group id in the current hour (for rate limits).
    recent: Mapping[str, int] = field(default_factory=dict)
    #: Groups an incident reached, for a closing message: (municipality, group id).
    incident_groups: tuple[tuple[str, str], ...] = ()
    incident_id: str | None = None


@dataclass(frozen=True)
class Route:
    deliveries: tuple[Delivery, ...]
    rules: tuple[str, ...]


@dataclass
class _Target:
    group: Group
    municipality: str
    rules: list[str]
    notice: str | None = None
    language: str = "nl"


def is_urgent(item: ModeratedMessage) -> bool:
    message = item.message
    return (
        any(r.code == "urgent_112" for r in item.moderation.reasons)
        or message.category in URGENT_CATEGORIES
        or (message.author.role in AUTHORITIES and message.target is not None)
    )


def route(item: ModeratedMessage, ctx: Context) -> Route:
    """Where a moderated message goes, and why."""
    if item.moderation.decision is not Decision.FORWARD:
        return Route((), ("not_approved",))
    message, directory = item.message, ctx.directory
    own = directory.municipality.id
    fired: list[str] = []
    targets: dict[tuple[str, str], _Target] = {}
    sender = directory.group(message.group_id) if message.group_id else None
    if message.group_id and sender is None:
        raise UnknownGroup(f"group {message.group_id!r} is not in the directory of {own}")

    def add(
        group: Group,
        rule: str,
        municipality: str = own,
        notice: str | None = None,
        language: str | None = None,
    ) -> None:
        key = (municipality, group.id)
        if sender is not None and key == (own, sender.id):
            fired.append("never_back_to_sender")
            return
        if key in targets:
            targets[key].rules.append(rule)
        else:
            home = directory if municipality == own else ctx.partners.get(municipality, directory)
            wanted = language or group.language or home.municipality.language
            targets[key] = _Target(group, municipality, [rule], notice, wanted)
        if rule not in fired:
            fired.append(rule)

    escalation = next((e for e in directory.escalation if message.category in e.categories), None)
    if escalation is not None:
        destination = Destination(
            group_id=f"escalation:{escalation.name}",
            municipality=own,
            channel=escalation.channel,
            address=escalation.address,
            label=escalation.name,
        )
        delivery = Delivery.for_destination(message, destination, ("municipal_escalation",))
        return Route((delivery,), ("municipal_escalation",))

    if message.closes is not None and message.author.role in AUTHORITIES | COORDINATORS:
        for municipality, group_id in ctx.incident_groups:
            found = ctx.partners.get(municipality) if municipality != own else directory
            group = found.group(group_id) if found else None
            if group is not None:
                add(group, "incident_closing", municipality)

    if message.target is not None and message.author.role in AUTHORITIES:
        districts, notes = districts_in(message.target, directory)
        fired.extend(notes)
        for group in directory.groups:
            if group.district in districts:
                add(group, "authority_alert_area")

    if sender is not None:
        if sender.kind is GroupKind.BUURTGROEP:
            for group in directory.regiegroepen(sender.district):
                add(group, "buurtgroep_to_regiegroep")
        elif message.forward_to:
            if message.author.role not in COORDINATORS:
                fired.append("doorzetten_refused:not_a_coordinator")
            else:
                for group_id in message.forward_to:
                    group = directory.group(group_id)
                    if (
                        group is None
                        or group.district != sender.district
                        or group.kind is not GroupKind.BUURTGROEP
                    ):
                        fired.append(f"doorzetten_refused:{group_id}")
                    else:
                        add(group, "doorzetten")
        if message.category in TRAVELLING_CATEGORIES:
            district = directory.district(sender.district)
            for neighbour in district.neighbours if district else ():
                for group in directory.regiegroepen(neighbour):
                    add(group, "travelling_to_adjacent_district")
        for agreement in directory.agreements:
            if sender.district not in agreement.own_districts or message.category not in agreement.categories:
                continue
            partner = ctx.partners.get(agreement.partner)
            if partner is None:
                fired.append(f"cross_border_partner_unknown:{agreement.partner}")
                continue
            numbers = agreement.partner_emergency
            notice = line(
                "cross_border_notice",
                agreement.language,
                origin=directory.municipality.name,
                country=directory.municipality.country,
                urgent=numbers.urgent,
                non_urgent=numbers.non_urgent,
            )
            for district_id in agreement.partner_districts:
                for group in partner.regiegroepen(district_id):
                    add(group, "cross_border", agreement.partner, notice, agreement.language)

    urgent = is_urgent(item)
    media = _forwarded_media(message)
    deliveries = []
    for target in targets.values():
        rules = list(target.rules)
        deliver_after = None if urgent else _held_until(target.group, ctx, rules, directory)
        destinations = _destinations(
            target, directory if target.municipality == own else ctx.partners[target.municipality]
        )
        if not destinations:  # a group reached member by member where nobody opted in yet
            fired.append(f"no_members_opted_in:{target.group.id}")
        for destination in destinations:
            deliveries.append(
                Delivery.for_destination(
                    message,
                    destination,
                    tuple(rules),
                    saar_reminder=item.moderation.saar_reminder,
                    notice=target.notice,
                    language=target.language,
                    incident_id=ctx.incident_id,
                    reference=(
                        short_reference(ctx.incident_id)
                        if ctx.incident_id and target.group.kind is GroupKind.REGIEGROEP
                        else None
                    ),
                    deliver_after=deliver_after,
                    media=media,
                )
            )
    if not deliveries:
        fired.append("no_destination")
    return Route(tuple(deliveries), tuple(fired))


def _forwarded_media(message: InboundMessage) -> tuple[MediaRef, ...]:
    """The media that travel with a message: an authority's (a missing person's photo,
    shared with the family's consent), never a resident's. Moderation reads text, not
    images, and a photo of a "suspect" can carry exactly the profiling it keeps out
    of the text; residents' photos stay in the audit trail for moderators."""
    if message.author.role not in AUTHORITIES:
        return ()
    return tuple(m for m in message.media if m.storage_ref is not None)


def _destinations(target: _Target, directory: Directory) -> list[Destination]:
    """The group itself, or, for a group addressed as ``members``, each consenting member."""
    group = target.group
    whole = Destination(
        group_id=group.id,
        municipality=target.municipality,
        channel=group.channel,
        address=group.address,
        label=group.name,
    )
    if group.address != MEMBERS:
        return [whole]
    return [
        whole.model_copy(
            update={
                "address": member.address,
                "recipient_type": "individual",
                "recipient": member.pseudonym or member.id,
            }
        )
        for member in directory.recipients(group)
        if member.address
    ]


def _held_until(group: Group, ctx: Context, rules: list[str], directory: Directory) -> datetime | None:
    """When a non-urgent delivery to ``group`` may go: after quiet hours, or after the
    current hour if the group's rate limit is reached; None for now."""
    held: datetime | None = None
    if group.quiet_hours is not None:
        local = ctx.now.astimezone(ZoneInfo(directory.municipality.timezone))
        if group.quiet_hours.contains(local.time()):
            end = local.replace(
                hour=group.quiet_hours.end.hour, minute=group.quiet_hours.end.minute, second=0, microsecond=0
            )
            if end <= local:
                end += timedelta(days=1)
            held = end.astimezone(ZoneInfo("UTC"))
            rules.append("quiet_hours")
    if group.max_per_hour is not None and ctx.recent.get(group.id, 0) >= group.max_per_hour:
        next_hour = ctx.now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        held = max(held, next_hour) if held else next_hour
        rules.append("rate_limited")
    return held


# --- incidents: reports of the same event, merged -----------------------------------
#
# The rule. A report joins an open incident when all of these hold:
#   1. the same municipality, and the report's district is the incident's or adjacent to it;
#   2. the report was sent within WINDOW of the incident's latest report;
#   3. neither names a category the other contradicts (both given and different);
#   4. the place agrees: both located within NEAR_METRES of each other joins whatever the
#      words; both located and farther apart never joins, except for a travelling
#      category (a suspect fleeing, a missing person); otherwise, when both name streets
#      and no street is shared, they are different events;
#   5. else, the words agree: Jaccard similarity of the content words >= SIMILAR_TEXT.
# Of the incidents a report may join, it joins the one in its own district first, then
# the most recently seen. A report joining an incident is not delivered again to the
# groups that incident already told (routing's "incident_already_told").

WINDOW = timedelta(hours=2)
SIMILAR_TEXT = 0.3
NEAR_METRES = 1_000.0
_WORD = re.compile(r"\w{3,}", re.UNICODE)
STOPWORDS = frozenset(
    "een het van dat die met voor aan bij ook nog maar naar wel niet zijn "
    "was wordt door heeft hebben zojuist net gezien gebeld zag zien deze dit daar hier".split()
)
#: Street names: a word ending in a Dutch, Flemish or German street suffix ...
_STREET_SUFFIXED = re.compile(
    r"\b(\w{2,}(?:straat|steenweg|weg|laan|plein|dijk|singel|kade|steeg|dreef|baan|gracht|"
    r"strasse|straße|allee|gasse))\b",
    re.IGNORECASE,
)
#: ... a French one after its kind ("rue de la Station"), an English one before it.
_STREET_FRENCH = re.compile(
    r"\b(?:rue|avenue|chauss[ée]e|place|boulevard|chemin|all[ée]e)\s+"
    r"(?:de\s+la\s+|de\s+l'|du\s+|des\s+|de\s+|d')?(\w{3,})",
    re.IGNORECASE,
)
_STREET_ENGLISH = re.compile(r"\b(\w{3,})\s+(?:street|road|lane|avenue|drive|close)\b", re.IGNORECASE)
#: Words with a street suffix that are not streets.
NOT_STREETS = frozenset({"onderweg", "halfweg", "achterweg", "hardlopersbaan", "loopbaan", "snelweg"})


@functools.lru_cache(maxsize=4096)
def words(text: str) -> frozenset[str]:
    return frozenset(w for w in (m.group().lower() for m in _WORD.finditer(text)) if w not in STOPWORDS)


@functools.lru_cache(maxsize=4096)
def streets(text: str) -> frozenset[str]:
    """The street names a text mentions, lower case (``Dorpstraat``, ``rue de la Station``)."""
    found = {m.group(1).lower() for m in _STREET_SUFFIXED.finditer(text)}
    found |= {f"rue:{m.group(1).lower()}" for m in _STREET_FRENCH.finditer(text)}
    found |= {f"street:{m.group(1).lower()}" for m in _STREET_ENGLISH.finditer(text)}
    return frozenset(found - NOT_STREETS)


def similarity(a: str, b: str) -> float:
    """Jaccard similarity of the content words of two texts (0 to 1)."""
    wa, wb = words(a), words(b)
    return len(wa & wb) / len(wa | wb) if wa and wb else 0.0


def distance_m(a: Location, b: Location) -> float:
    """Great-circle distance in metres (haversine)."""
    p1, p2 = math.radians(a.latitude), math.radians(b.latitude)
    dp, dl = p2 - p1, math.radians(b.longitude - a.longitude)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_000 * math.asin(math.sqrt(h))


@dataclass(frozen=True)
class Incident:
    id: str
    municipality: str
    district: str | None
    text: str
    location: Location | None
    last_seen: datetime
    category: str | None = None
    #: The groups the incident reached, each with the report that told it:
    #: (municipality, group id) -> message id.
    told: Mapping[tuple[str, str], str] = field(default_factory=dict)
    closed: bool = False

    @property
    def groups(self) -> tuple[tuple[str, str], ...]:
        return tuple(sorted(self.told))


def same_event(
    message: InboundMessage, district: str | None, incident: Incident, directory: Directory
) -> bool:
    """Whether ``message`` reports the event of ``incident`` (the rule above)."""
    if incident.closed or message.municipality != incident.municipality:
        return False
    if message.sent_at - incident.last_seen > WINDOW or incident.last_seen - message.sent_at > WINDOW:
        return False
    if district and incident.district and district != incident.district:
        found = directory.district(district)
        if found is None or incident.district not in found.neighbours:
            return False
    if message.category and incident.category and message.category != incident.category:
        return False
    if message.location and incident.location:
        if distance_m(message.location, incident.location) <= NEAR_METRES:
            return True
        if (message.category or incident.category) not in TRAVELLING_CATEGORIES:
            return False
    mine, theirs = streets(message.text), streets(incident.text)
    if mine and theirs and not mine & theirs:
        return False
    return similarity(message.text, incident.text) >= SIMILAR_TEXT


def matching_incident(
    message: InboundMessage, district: str | None, candidates: list[Incident], directory: Directory
) -> Incident | None:
    """The open incident ``message`` joins, if any: its own district's first, then the
    most recently seen."""
    matches = [i for i in candidates if same_event(message, district, i, directory)]
    if not matches:
        return None
    return max(matches, key=lambda i: (i.district == district, i.last_seen, i.id))


def already_told(decision: Route, incident: Incident, message_id: str) -> Route:
    """``decision`` without the deliveries to groups ``incident`` already told through
    another report; a closing and an authority's alert always go."""
    kept: list[Delivery] = []
    skipped: list[str] = []
    for delivery in decision.deliveries:
        d = delivery.destination
        teller = incident.told.get((d.municipality or incident.municipality, d.group_id), message_id)
        always = {"incident_closing", "authority_alert_area", "municipal_escalation"} & set(delivery.rules)
        if teller != message_id and not always:
            if d.group_id not in skipped:
                skipped.append(d.group_id)
        else:
            kept.append(delivery)
    if not skipped:
        return decision
    rules = (*decision.rules, *(f"incident_already_told:{g}" for g in skipped))
    return Route(tuple(kept), rules)

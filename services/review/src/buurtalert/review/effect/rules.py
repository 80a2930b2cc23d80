"""Effect's pure rules: who may give an incident its outcome, the outcome's id, and which
districts' figures a user sees."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from buurtalert.directory.model import Directory, GroupKind
from buurtalert.review.rules import User, scope_of, within_scope
from buurtalert.shared.models import OutcomeCommand, OutcomeKind, Role, short_reference, stable_id

#: Console users who may give an outcome: the wijkagent, a coordinator, the municipality.
OUTCOME_ROLES = frozenset({Role.WIJKAGENT, Role.COORDINATOR, Role.ADMIN})
#: Members who may give one by a reply in their regiegroep.
COMMAND_ROLES = frozenset({Role.WIJKAGENT, Role.COORDINATOR})
MAX_NOTE = 500
#: Who sees the figures per district: the municipality (its admins) and the wijkagent.
EFFECT_ROLES = frozenset({Role.ADMIN, Role.WIJKAGENT})


@dataclass(frozen=True, slots=True)
class IncidentView:
    """What effect reads of an incident (routing owns them)."""

    id: str
    municipality: str
    district: str | None
    opened_at: datetime | None
    groups: tuple[tuple[str, str], ...]
    category: str | None = None
    reports: int = 1
    outcome: str | None = None
    fed_back_at: datetime | None = None

    @property
    def reference(self) -> str:
        """The short reference the regiegroep saw (and a reply may name)."""
        return short_reference(self.id)


def incident_districts(user: User, directory: Directory | None) -> tuple[str, ...] | None:
    """The districts whose incidents ``user`` sees and gives outcomes to: a wijkagent's own,
    a coordinator's those of their groups (the regiegroep's level, where outcomes are told);
    None for the whole municipality (moderators, admins)."""
    scope = scope_of(user)
    if scope.field is None:
        return None
    if scope.field == "district":
        return scope.values
    groups = set(scope.values)
    found = {g.district for g in directory.groups if g.id in groups} if directory is not None else set()
    return tuple(sorted(found))


def figures_for(user: User, shown: dict[str, Any]) -> dict[str, Any]:
    """The disclosed figures as ``user`` sees them: a wijkagent only their districts' (the
    admin the whole municipality's)."""
    districts = {d: f for d, f in shown["districts"].items() if within_scope(user, None, d)}
    return {**shown, "districts": districts}


def polls_for(user: User, polled: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Poll results as ``user`` sees them: only their districts' rows, and only the polls
    that asked one of them."""
    shown = []
    for poll in polled:
        rows = [row for row in poll["districts"] if within_scope(user, None, row["district"])]
        if rows:
            shown.append({**poll, "districts": rows})
    return shown


def outcome_id(incident_id: str) -> str:
    """One outcome per incident: the same incident always gives the same id."""
    return stable_id("out", incident_id)


def may_give_outcome(role: Role) -> bool:
    return role in OUTCOME_ROLES


def command_refusal(
    command: OutcomeCommand, directory: Directory | None, incident: IncidentView | None
) -> str | None:
    """Why the sender of ``command`` may not give this outcome, or None if they may: the
    wijkagent or a coordinator of the regiegroep the reply was posted in, verified by the
    channel, about an incident of that regiegroep (it reached it, or it is in its district)."""
    if command.problem is not None:
        return command.problem
    if command.outcome is None:
        return "no outcome given"
    if not command.author.verified:
        return "the sender is not verified by the channel"
    if directory is None:
        return "no directory for the municipality"
    group = directory.group(command.group_id) if command.group_id else None
    if group is None or group.kind is not GroupKind.REGIEGROEP:
        return "not posted in a regiegroep"
    member = directory.member(command.author.pseudonym)
    if member is None or member.role not in COMMAND_ROLES or group.id not in member.groups:
        return "the sender is not the wijkagent or a coordinator of this regiegroep"
    if incident is None or incident.municipality != command.municipality:
        return "unknown incident"
    if (command.municipality, group.id) not in incident.groups and incident.district != group.district:
        return "the incident is not one of this regiegroep"
    return None


def parse_outcome(raw: str) -> OutcomeKind | None:
    try:
        return OutcomeKind(raw)
    except ValueError:
        return None


MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def read_crime_csv(text: str, directory: Directory) -> tuple[list[tuple[str, str, int]], list[str]]:
    """Rows ``(district, month, count)`` of a registered-crime CSV (header ``district,month,count``;
    month ``YYYY-MM``), and the problems, each naming its line; a district must be the
    directory's."""
    known = {d.id for d in directory.districts}
    found: list[tuple[str, str, int]] = []
    problems: list[str] = []
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or not {"district", "month", "count"} <= set(reader.fieldnames):
        return [], ["line 1: the header must name district, month and count"]
    for row in reader:
        where = f"line {reader.line_num}"
        district, month, raw = ((row.get(k) or "").strip() for k in ("district", "month", "count"))
        if district not in known:
            problems.append(f"{where}: unknown district {district!r}")
        elif not MONTH.match(month):
            problems.append(f"{where}: month {month!r} is not YYYY-MM")
        elif not raw.isdigit():
            problems.append(f"{where}: count {raw!r} is not a whole number")
        else:
            found.append((district, month, int(raw)))
    return found, problems

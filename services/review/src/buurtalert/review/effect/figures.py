"""The figures per district, pure: a :class:`Tally` is fed the records one at a time (audit
entries, incidents, outcomes, review items: streamed from their cursors by
:mod:`~buurtalert.review.effect.stores`, never loaded at once) and gives a :class:`Report`;
:func:`disclosed` applies the small-number rule before anything is shown.

Definitions (docs/effect.md):

- a *report* is a message ingest accepted from a group (its district is its group's); an
  *alert* is a message of the police or the municipality (author role wijkagent or
  authority), counted in each district it reached; both per ISO week and per 1,000 households of the district;
- *SAAR share*: reports moderation found saying 112/101 was called (``urgent_112``) among
  the reports moderated; *noise share*: reports rejected for noise (reactions, off topic,
  jokes, chain messages, not an alert);
- *first authority reaction*: the incident's first closing or outcome, from its first
  report; *time to outcome*: to its outcome; medians in minutes;
- *fed back*: incidents whose outcome routing told the groups;
- *review deadlines*: an urgent held message decided within 15 minutes, another within
  4 hours;
- *registered crime*: the monthly average the municipality imported, before and from the
  month the district's first group started (``started`` in the directory).
"""

from __future__ import annotations

import csv
import io
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from buurtalert.directory.model import Directory
from buurtalert.shared.models import AUTHORITIES

#: Below this a count is shown as "< 5" (and shares and rates built on it are not shown).
SMALL = 5
SMALL_TEXT = "< 5"
#: Rejection reasons that mean noise (not an alert at all).
NOISE_REASONS = frozenset({"reaction_only", "off_topic", "joke", "chain_message", "not_an_alert"})
#: How long a held message may wait for a person's decision.
REVIEW_DEADLINE = {True: timedelta(minutes=15), False: timedelta(hours=4)}
UNKNOWN_DISTRICT = "-"
#: Authors whose messages are alerts (the police, the municipality), not residents' reports.
ALERT_ROLES = frozenset(r.value for r in AUTHORITIES)


def week_of(moment: datetime) -> str:
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


@dataclass
class DistrictFigures:
    """The raw counts of one district (nothing here is shown as is: see :func:`disclosed`)."""

    households: int | None = None
    reports: Counter[str] = field(default_factory=Counter)  # per week
    alerts: Counter[str] = field(default_factory=Counter)  # per week
    moderated: int = 0
    saar: int = 0
    noise: int = 0
    moderation: Counter[str] = field(default_factory=Counter)  # forward, review, reject:<reason>
    incidents: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    fed_back: int = 0
    to_reaction: list[float] = field(default_factory=list)  # minutes
    to_outcome: list[float] = field(default_factory=list)
    review_items: int = 0
    review_decided: int = 0
    review_in_time: int = 0
    deliveries: Counter[str] = field(default_factory=Counter)  # channel/state
    started: date | None = None  # the district's first group started
    crime: dict[bool, list[int]] = field(default_factory=lambda: {False: [], True: []})  # after start?


@dataclass
class Report:
    municipality: str
    since: datetime
    until: datetime
    districts: dict[str, DistrictFigures]


@dataclass
class _Message:
    district: str | None = None
    alert: bool = False
    week: str | None = None
    decision: str | None = None
    reasons: tuple[str, ...] = ()
    foreign: bool = False
    reached: set[str] = field(default_factory=set)
    statuses: dict[str, tuple[str, str]] = field(default_factory=dict)  # delivery id: channel, state


class Tally:
    """Folds records into the figures of one municipality's districts. Per message it keeps
    only a few codes until :meth:`report` (the period's messages, not the collection)."""

    def __init__(self, directory: Directory, since: datetime, until: datetime) -> None:
        self.directory = directory
        self.since, self.until = since, until
        self.municipality = directory.municipality.id
        self.districts: dict[str, DistrictFigures] = {
            d.id: DistrictFigures(
                households=d.households,
                started=min(
                    (g.started for g in directory.groups if g.district == d.id and g.started), default=None
                ),
            )
            for d in directory.districts
        }
        self._groups = {g.id: g.district for g in directory.groups}
        self._messages: dict[str, _Message] = defaultdict(_Message)

    def _district(self, name: str | None) -> DistrictFigures:
        return self.districts.setdefault(name or UNKNOWN_DISTRICT, DistrictFigures())

    def audit(self, entry: dict[str, Any]) -> None:
        """An audit entry (``message_id``, ``stage``, ``data``, ``at``)."""
        stage, data = entry["stage"], entry.get("data") or {}
        if data.get("command"):
            return  # an outcome command: not a report
        message = self._messages[entry["message_id"]]
        if stage == "ingest":
            if "channel" not in data:
                return  # ignored input, a membership change
            message.alert = data.get("author_role") in ALERT_ROLES
            group = data.get("group_id")
            message.district = self._groups.get(group) if group else None
            if group and message.district is None:
                message.foreign = True  # a group of another municipality (sharing the database)
            message.week = week_of(entry["at"])
        elif stage == "moderation":
            message.decision = data.get("decision")
            message.reasons = tuple(r.get("code", "") for r in data.get("reasons", ()))
        elif stage == "routing":
            for delivery in data.get("deliveries", ()):
                if delivery.get("municipality") in (None, self.municipality):
                    district = self._groups.get(delivery.get("group_id", ""))
                    if district:
                        message.reached.add(district)
        elif stage.startswith("deliveries."):
            message.statuses[stage] = (str(data.get("channel")), str(data.get("state")))

    def incident(self, doc: dict[str, Any], outcome: dict[str, Any] | None) -> None:
        """An incident of the municipality (routing's document) and its recorded outcome."""
        figures = self._district(doc.get("district"))
        figures.incidents += 1
        opened: datetime | None = doc.get("opened_at")
        decided: datetime | None = outcome.get("decided_at") if outcome else None
        closed: datetime | None = doc.get("closed_at")
        if outcome is not None:
            figures.outcomes[str(outcome.get("outcome"))] += 1
        if doc.get("fed_back_at") is not None:
            figures.fed_back += 1
        if opened is not None:
            reactions = [t for t in (decided, closed) if t is not None]
            if reactions:
                figures.to_reaction.append(max((min(reactions) - opened).total_seconds(), 0) / 60)
            if decided is not None:
                figures.to_outcome.append(max((decided - opened).total_seconds(), 0) / 60)

    def crime(self, row: dict[str, Any]) -> None:
        """Registered crime of a district in a month (``YYYY-MM``), before or after the
        district's first group started (the month it started counts as after)."""
        figures = self.districts.get(row["district"])
        if figures is None or figures.started is None:
            return
        after = row["month"] >= f"{figures.started:%Y-%m}"
        figures.crime[after].append(int(row["count"]))

    def review_item(self, item: dict[str, Any]) -> None:
        """A held message of the review queue (kind, group, urgent, received, decided)."""
        if item.get("kind") != "message":
            return
        figures = self._district(self._groups.get(item.get("group_id") or ""))
        figures.review_items += 1
        decided: datetime | None = item.get("decided_at")
        if decided is not None:
            figures.review_decided += 1
            if decided - item["received_at"] <= REVIEW_DEADLINE[bool(item.get("urgent"))]:
                figures.review_in_time += 1

    def report(self) -> Report:
        for message in self._messages.values():
            if message.week is None or message.foreign:
                continue  # not accepted in the period (a later stage of an older message), or not ours
            if message.alert:
                if not message.reached and message.district is None:
                    continue  # another municipality's alert
                for district in message.reached or {message.district or UNKNOWN_DISTRICT}:
                    self._district(district).alerts[message.week] += 1
                home = self._district(sorted(message.reached)[0] if message.reached else message.district)
            else:
                home = self._district(message.district)
                home.reports[message.week] += 1
                if message.decision is not None:
                    home.moderated += 1
                    home.saar += "urgent_112" in message.reasons
                    if message.decision == "reject":
                        reason = next((r for r in message.reasons if r), "other")
                        home.moderation[f"reject:{reason}"] += 1
                        home.noise += any(r in NOISE_REASONS for r in message.reasons)
                    else:
                        home.moderation[message.decision] += 1
            for channel, state in message.statuses.values():
                home.deliveries[f"{channel}/{state}"] += 1
        self._messages.clear()
        return Report(self.municipality, self.since, self.until, self.districts)


# --- the small-number rule ------------------------------------------------------------


def count(n: int) -> int | str:
    """A count as shown: 1 to 4 as "< 5" (zero is shown: it singles no one out)."""
    return SMALL_TEXT if 0 < n < SMALL else n


def share(part: int, whole: int) -> float | str | None:
    """A share (0 to 1, three decimals) as shown: not shown when the part, or the rest,
    is 1 to 4 (with the whole shown, either would give a small count away)."""
    if whole == 0:
        return None
    if 0 < part < SMALL or 0 < whole - part < SMALL:
        return SMALL_TEXT
    return round(part / whole, 3)


def per_thousand(n: int, households: int | None) -> float | str | None:
    if not households:
        return None
    if 0 < n < SMALL:
        return SMALL_TEXT
    return round(n * 1000 / households, 2)


def median(values: list[float]) -> float | str | None:
    if not values:
        return None
    if len(values) < SMALL:
        return SMALL_TEXT
    return round(statistics.median(values), 1)


def monthly(counts_: list[int]) -> float | str | None:
    """The average per month of registered crime; hidden when it rests on a total of 1 to 4."""
    if not counts_:
        return None
    total = sum(counts_)
    if 0 < total < SMALL:
        return SMALL_TEXT
    return round(total / len(counts_), 1)


def counts(counter: Counter[str]) -> dict[str, int | str]:
    return {key: count(n) for key, n in sorted(counter.items())}


def disclosed(report: Report) -> dict[str, Any]:
    """The report as it may be shown: every count, share, rate and median through the
    small-number rule. Every output (table, CSV, JSON, dashboard) is made from this."""
    districts: dict[str, Any] = {}
    for name, f in sorted(report.districts.items()):
        weeks = sorted(set(f.reports) | set(f.alerts))
        reports, alerts = sum(f.reports.values()), sum(f.alerts.values())
        districts[name] = {
            "households": f.households,
            "reports": count(reports),
            "alerts": count(alerts),
            "reports_per_1000": per_thousand(reports, f.households),
            "alerts_per_1000": per_thousand(alerts, f.households),
            "weeks": {
                week: {
                    "reports": count(f.reports[week]),
                    "alerts": count(f.alerts[week]),
                    "reports_per_1000": per_thousand(f.reports[week], f.households),
                    "alerts_per_1000": per_thousand(f.alerts[week], f.households),
                }
                for week in weeks
            },
            "saar_share": share(f.saar, f.moderated),
            "noise_share": share(f.noise, f.moderated),
            "moderation": counts(f.moderation),
            "incidents": count(f.incidents),
            "outcomes": counts(f.outcomes),
            "outcome_share": share(sum(f.outcomes.values()), f.incidents),
            "fed_back_share": share(f.fed_back, f.incidents),
            "minutes_to_first_reaction": median(f.to_reaction),
            "minutes_to_outcome": median(f.to_outcome),
            "review_items": count(f.review_items),
            "review_deadlines_met": share(f.review_in_time, f.review_decided),
            "deliveries": counts(f.deliveries),
            "group_started": f.started.isoformat() if f.started else None,
            "crime_per_month_before": monthly(f.crime[False]),
            "crime_per_month_after": monthly(f.crime[True]),
        }
    return {
        "municipality": report.municipality,
        "since": report.since.isoformat(),
        "until": report.until.isoformat(),
        "small_number_rule": f"counts from 1 to {SMALL - 1} are shown as '{SMALL_TEXT}'",
        "districts": districts,
    }


#: The columns of the table and the CSV: (heading, key in a district's disclosed figures).
COLUMNS = (
    ("district", None),
    ("households", "households"),
    ("reports", "reports"),
    ("reports/1000 hh", "reports_per_1000"),
    ("alerts", "alerts"),
    ("alerts/1000 hh", "alerts_per_1000"),
    ("SAAR share", "saar_share"),
    ("noise share", "noise_share"),
    ("incidents", "incidents"),
    ("with outcome", "outcome_share"),
    ("fed back", "fed_back_share"),
    ("min to reaction", "minutes_to_first_reaction"),
    ("min to outcome", "minutes_to_outcome"),
    ("review items", "review_items"),
    ("review in time", "review_deadlines_met"),
    ("crime/month before", "crime_per_month_before"),
    ("crime/month after", "crime_per_month_after"),
)


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        return "; ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def rows(shown: dict[str, Any]) -> list[list[str]]:
    """One row per district (the table and the CSV), and the mixes as extra columns."""
    out = []
    for name, figures in shown["districts"].items():
        row = [name, *(cell(figures[key]) for _, key in COLUMNS[1:])]
        row += [cell(figures["outcomes"]), cell(figures["moderation"]), cell(figures["deliveries"])]
        out.append(row)
    return out


HEADINGS = [h for h, _ in COLUMNS] + ["outcome mix", "moderation mix", "deliveries (channel/state)"]


def as_csv(shown: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADINGS)
    writer.writerows(rows(shown))
    return out.getvalue()


def as_table(shown: dict[str, Any]) -> str:
    table = [HEADINGS[: len(COLUMNS)], *(row[: len(COLUMNS)] for row in rows(shown))]
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    lines = [
        f"{shown['municipality']}: {shown['since'][:10]} to {shown['until'][:10]}"
        f" ({shown['small_number_rule']})",
        *("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in table),
    ]
    for name, figures in shown["districts"].items():
        mixes = {k: figures[k] for k in ("outcomes", "moderation", "deliveries") if figures[k]}
        for key, mix in mixes.items():
            lines.append(f"{name} {key}: " + ", ".join(f"{k} {v}" for k, v in mix.items()))
    return "\n".join(lines) + "\n"

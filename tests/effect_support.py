"""A seeded history of a municipality with known figures (the integration and browser
tests of effect per district)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from buurtalert.shared.models import stable_id

SINCE = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday: ISO week 2026-W45
W45 = datetime(2026, 11, 3, 20, 0, tzinfo=UTC)
W46 = datetime(2026, 11, 10, 20, 0, tzinfo=UTC)


def entry(message_id: str, stage: str, data: dict[str, Any], at: datetime) -> dict[str, Any]:
    return {
        "_id": stable_id("aud", message_id, stage, ""),
        "message_id": message_id,
        "stage": stage,
        "data": data,
        "at": at,
    }


def report(
    n: int, group: str, at: datetime, decision: str, reasons: list[str], role: str = "resident"
) -> list[dict[str, Any]]:
    message = f"msg_{group}_{n}"
    return [
        entry(message, "ingest", {"channel": "web", "group_id": group, "flags": [], "author_role": role}, at),
        entry(
            message,
            "moderation",
            {"decision": decision, "reasons": [{"code": r, "score": 1.0} for r in reasons]},
            at + timedelta(seconds=1),
        ),
    ]


def history() -> dict[str, list[dict[str, Any]]]:
    """Boshoven: 26 reports (20 in W45, 6 in W46): 14 forwarded (10 saying 112 was called),
    6 held for privacy, 6 rejected as off topic; 14 deliveries sent and 3 failed. Leuken: 3
    reports and one police alert. Not counted: a Belgian group's report, a report before the
    period, an outcome command. 15 incidents in Boshoven: 10 with an outcome (5 arrests, 5
    nothing found, after 10, 20, ... 100 minutes), all 10 fed back; 5 closed after 5 minutes
    without one. 15 held messages: 5 urgent decided in 10 minutes, 5 others in an hour, 5
    others after 6 hours."""
    audit: list[dict[str, Any]] = []
    decisions = ["forward"] * 14 + ["review"] * 6 + ["reject"] * 6
    for n, decision in enumerate(decisions):
        at = W45 + timedelta(minutes=n) if n < 20 else W46 + timedelta(minutes=n)
        reasons = {
            "forward": ["urgent_112"] if n < 10 else [],
            "review": ["privacy"],
            "reject": ["off_topic"],
        }
        audit += report(n, "boshoven-noord", at, decision, reasons[decision])
        if decision == "forward":
            delivery = f"dlv_{n}"
            audit.append(
                entry(
                    f"msg_boshoven-noord_{n}",
                    f"deliveries.{delivery}",
                    {"delivery_id": delivery, "channel": "email", "state": "sent"},
                    at,
                )
            )
    for n in range(3):
        audit.append(
            entry(
                f"msg_boshoven-noord_{n}", "deliveries.dlv_fail", {"channel": "email", "state": "failed"}, W45
            )
        )
    for n in range(3):
        audit += report(n, "leuken-west", W45, "forward", [])
    alert = "msg_alert"
    audit.append(
        entry(
            alert,
            "ingest",
            {"channel": "web", "group_id": None, "flags": [], "author_role": "wijkagent"},
            W45,
        )
    )
    audit.append(
        entry(
            alert,
            "routing",
            {
                "deliveries": [
                    {"group_id": "leuken-west", "municipality": "weert-demo"},
                    {"group_id": "leuken-regie", "municipality": "weert-demo"},
                ]
            },
            W45,
        )
    )
    audit += report(99, "kaulille-dorp", W45, "forward", ["urgent_112"])
    audit += report(98, "boshoven-noord", SINCE - timedelta(days=3), "forward", [])
    audit.append(
        entry(
            "msg_command",
            "ingest",
            {
                "channel": "whatsapp",
                "group_id": "boshoven-regie",
                "flags": [],
                "command": "outcome",
                "author_role": "wijkagent",
            },
            W45,
        )
    )
    incidents, outcomes = [], []
    for n in range(15):
        opened = W45 + timedelta(hours=n)
        doc: dict[str, Any] = {
            "_id": f"inc_{n}",
            "municipality": "weert-demo",
            "district": "boshoven",
            "opened_at": opened,
            "closed_at": None,
            "told": {},
            "reports": 1,
        }
        if n < 10:
            decided = opened + timedelta(minutes=10 * (n + 1))
            doc.update(closed_at=decided, fed_back_at=decided, outcome="arrest" if n < 5 else "nothing_found")
            outcomes.append(
                {
                    "_id": f"inc_{n}",
                    "municipality": "weert-demo",
                    "incident_id": f"inc_{n}",
                    "outcome": doc["outcome"],
                    "decided_at": decided,
                }
            )
        else:
            doc["closed_at"] = opened + timedelta(minutes=5)
        incidents.append(doc)
    items = []
    for n in range(15):
        received = W45 + timedelta(hours=n)
        urgent = n < 5
        wait = timedelta(minutes=10) if n < 5 else timedelta(hours=1) if n < 10 else timedelta(hours=6)
        items.append(
            {
                "_id": f"item_{n}",
                "kind": "message",
                "municipality": "weert-demo",
                "group_id": "boshoven-noord",
                "urgent": urgent,
                "received_at": received,
                "state": "decided",
                "decision": json.dumps({"decided_at": (received + wait).isoformat()}),
            }
        )
    return {
        "audit": audit,
        "incidents": incidents,
        "incident_outcomes": outcomes,
        "review_items": items,
        **poll_history(),
    }


POLL_ID = "pl-0000000000a1"


def poll_history() -> dict[str, list[dict[str, Any]]]:
    """A poll of Boshoven and Leuken: 40 and 10 members invited; Boshoven answered 12 times
    (7 yes, 5 no), Leuken 3 times (all yes)."""
    poll = {
        "_id": POLL_ID,
        "municipality": "weert-demo",
        "districts": ["boshoven", "leuken"],
        "question": "Voelt u zich veiliger in uw straat dan een jaar geleden?",
        "options": ["Ja", "Nee", "Weet niet"],
        "language": "nl",
        "created_at": W45,
        "closes_at": W45 + timedelta(days=14),
        "invited": {"boshoven": 40, "leuken": 10},
        "created_by": "admin",
    }
    given = [("boshoven", 0)] * 7 + [("boshoven", 1)] * 5 + [("leuken", 0)] * 3
    answers = [
        {
            "_id": stable_id("pan", POLL_ID, f"respondent-{n}"),
            "poll_id": POLL_ID,
            "district": district,
            "option": option,
            "channel": "whatsapp",
            "answered_at": W45 + timedelta(hours=1, minutes=n),
        }
        for n, (district, option) in enumerate(given)
    ]
    return {"polls": [poll], "poll_answers": answers}

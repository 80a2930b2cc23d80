"""The figures per district on a seeded history with known answers, read from the real
database the way ``buurtalert effect report`` and the dashboard read them, and the
small-number rule on what is shown."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from buurtalert.devkit.testing import settings_environment
from buurtalert.directory.model import load_directory
from buurtalert.directory.store import store_directory
from buurtalert.review.effect.stores import effect_report
from buurtalert.shared.models import stable_id
from buurtalert.shared.mongo import Database, mongo_client
from buurtalert.shared.settings import Settings, load_municipality_config
from buurtalert.shared.topics import REVIEW
from tests.conftest import DEMO
from tests.support import BIN

pytestmark = pytest.mark.timeout(120)
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
            "groups": [],
            "message_ids": [f"m{n}"],
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
    return {"audit": audit, "incidents": incidents, "incident_outcomes": outcomes, "review_items": items}


@pytest.fixture
async def seeded(settings: Settings) -> AsyncIterator[Settings]:
    client = mongo_client(settings)
    try:
        db = client[settings.database]
        key = load_municipality_config(DEMO / "weert" / "municipality.yaml").pseudonym_key
        directory = load_directory(DEMO / "weert" / "directory.yaml").pseudonymised(key)
        await store_directory(Database(db, "directory"), directory)
        for name, docs in history().items():
            await db[name].insert_many(docs)
        yield settings
    finally:
        await client.close()


async def test_the_figures_of_a_seeded_history_are_the_known_answers(seeded: Settings) -> None:
    db = Database.connect(seeded, REVIEW)
    try:
        shown = await effect_report(db, "weert-demo", SINCE)
    finally:
        await db.close()
    assert shown is not None
    boshoven = shown["districts"]["boshoven"]
    assert boshoven["households"] == 3180
    assert boshoven["reports"] == 26
    assert boshoven["reports_per_1000"] == round(26_000 / 3180, 2)
    assert boshoven["weeks"]["2026-W45"]["reports"] == 20
    assert boshoven["weeks"]["2026-W46"]["reports_per_1000"] == round(6_000 / 3180, 2)
    assert boshoven["saar_share"] == round(10 / 26, 3)
    assert boshoven["noise_share"] == round(6 / 26, 3)
    assert boshoven["moderation"] == {"forward": 14, "reject:off_topic": 6, "review": 6}
    assert boshoven["incidents"] == 15
    assert boshoven["outcomes"] == {"arrest": 5, "nothing_found": 5}
    assert boshoven["outcome_share"] == boshoven["fed_back_share"] == round(10 / 15, 3)
    assert boshoven["minutes_to_outcome"] == 55.0  # median of 10, 20, ... 100
    assert boshoven["minutes_to_first_reaction"] == 30.0  # five closings after 5 minutes join them
    assert boshoven["review_items"] == 15
    assert boshoven["review_deadlines_met"] == round(10 / 15, 3)
    assert boshoven["deliveries"] == {"email/failed": "< 5", "email/sent": 14}
    assert boshoven["alerts"] == 0

    leuken = shown["districts"]["leuken"]
    assert leuken["reports"] == "< 5" and leuken["reports_per_1000"] == "< 5"
    assert leuken["alerts"] == "< 5" and leuken["alerts_per_1000"] == "< 5"
    assert leuken["saar_share"] == "< 5"  # 0 of 3: the rest is a small count
    assert shown["districts"]["centrum"]["reports"] == 0
    assert "kaulille" not in shown["districts"] and "-" not in shown["districts"]


async def test_the_report_command_writes_json_csv_and_a_table(seeded: Settings) -> None:
    def run(form: str) -> str:
        return subprocess.run(
            [
                str(BIN),
                "effect",
                "report",
                "--municipality",
                "weert-demo",
                "--since",
                "2026-11-02",
                "--format",
                form,
            ],
            env={**os.environ, **settings_environment(seeded)},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout

    printed = await asyncio.gather(*(asyncio.to_thread(run, f) for f in ("json", "csv", "table")))
    data = json.loads(printed[0])
    assert data["districts"]["boshoven"]["reports"] == 26
    table = list(csv.reader(io.StringIO(printed[1])))
    assert table[0][:3] == ["district", "households", "reports"]
    by_district = {row[0]: row for row in table[1:]}
    assert by_district["boshoven"][2] == "26" and by_district["leuken"][2] == "< 5"
    assert "boshoven" in printed[2] and "< 5" in printed[2]

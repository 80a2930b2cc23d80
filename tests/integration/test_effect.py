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
from datetime import timedelta
from pathlib import Path

import pytest

from buurtalert.devkit.testing import settings_environment
from buurtalert.directory.model import load_directory
from buurtalert.directory.store import store_directory
from buurtalert.review.effect.polling import REFUSED_STAGE, PollBox
from buurtalert.review.effect.polls import results
from buurtalert.review.effect.stores import Polls, effect_report
from buurtalert.shared.models import PollAnswer, stable_id
from buurtalert.shared.mongo import Audit, Database, mongo_client
from buurtalert.shared.settings import Settings, load_municipality_config
from buurtalert.shared.topics import REVIEW
from tests.conftest import DEMO
from tests.effect_support import POLL_ID, SINCE, history
from tests.support import BIN

pytestmark = pytest.mark.timeout(120)


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


CRIME = """district,month,count
boshoven,2025-01,20
boshoven,2025-02,22
boshoven,2025-03,15
boshoven,2025-04,13
leuken,2025-08,3
leuken,2025-09,0
"""


async def test_registered_crime_is_imported_and_compared_before_and_after_the_groups_started(
    seeded: Settings, tmp_path: Path
) -> None:
    """A wrong line refuses the whole file with its reason; a good file gives the monthly
    average before and from the month the district's first group started (directory)."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN), "effect", *args],
            env={**os.environ, **settings_environment(seeded)},
            capture_output=True,
            text=True,
            timeout=60,
        )

    bad = tmp_path / "bad.csv"
    bad.write_text(CRIME + "nowhere,2025-01,4\nboshoven,2025-13,1\n", encoding="utf-8")
    refused = await asyncio.to_thread(run, "crime", "import", "--municipality", "weert-demo", str(bad))
    assert refused.returncode == 2
    assert "line 8: unknown district 'nowhere'" in refused.stderr
    assert "line 9: month '2025-13' is not YYYY-MM" in refused.stderr
    good = tmp_path / "crime.csv"
    good.write_text(CRIME, encoding="utf-8")
    for _ in range(2):  # importing again replaces, never adds
        done = await asyncio.to_thread(run, "crime", "import", "--municipality", "weert-demo", str(good))
        assert done.returncode == 0, done.stderr
    db = Database.connect(seeded, REVIEW)
    try:
        shown = await effect_report(db, "weert-demo", SINCE)
    finally:
        await db.close()
    assert shown is not None
    boshoven, leuken = shown["districts"]["boshoven"], shown["districts"]["leuken"]
    assert boshoven["group_started"] == "2025-03-01"
    assert (boshoven["crime_per_month_before"], boshoven["crime_per_month_after"]) == (21.0, 14.0)
    assert (leuken["crime_per_month_before"], leuken["crime_per_month_after"]) == ("< 5", 0.0)
    assert shown["districts"]["centrum"]["crime_per_month_before"] is None


async def test_a_members_later_answer_replaces_theirs_and_an_earlier_or_repeated_one_does_not(
    seeded: Settings,
) -> None:
    db = Database.connect(seeded, REVIEW)
    try:
        polls = Polls(db)
        poll = await polls.get(POLL_ID)
        assert poll is not None and poll.invited == {"boshoven": 40, "leuken": 10}
        box = PollBox(polls, Audit(db))
        first = PollAnswer(
            id=stable_id("pan", POLL_ID, "late-respondent"),
            poll_id=POLL_ID,
            municipality="weert-demo",
            district="leuken",
            respondent="b" * 24,
            option=2,
            channel="web",
            answered_at=poll.created_at + timedelta(days=1),
        )
        changed = first.model_copy(
            update={"option": 1, "answered_at": first.answered_at + timedelta(hours=1)}
        )
        assert await polls.answer(first) and await polls.answer(changed)
        assert not await polls.answer(first)  # older: a redelivery of the first answer
        assert not await polls.answer(changed)  # the same answer again
        await box(changed.model_copy(update={"id": "pan_closed", "answered_at": poll.closes_at}))
        await box(changed.model_copy(update={"id": "pan_other", "district": "centrum"}))
        answers = await polls.answers(POLL_ID)
        assert sorted(answers) == sorted(
            [("boshoven", 0)] * 7 + [("boshoven", 1)] * 5 + [("leuken", 0)] * 3 + [("leuken", 1)]
        )
        refused = await Audit(db).trail("pan_closed")
        assert (
            refused[REFUSED_STAGE.split(".")[0]][REFUSED_STAGE.split(".", 1)[1]]["why"]
            == "the poll was closed"
        )
        shown = results(poll, answers)
        assert [d["answered"] for d in shown["districts"]] == [12, "< 5"]
    finally:
        await db.close()


def test_poll_results_as_the_command_prints_them(seeded: Settings) -> None:
    env = {**os.environ, **settings_environment(seeded)}
    done = subprocess.run(
        [str(BIN), "effect", "poll", "results", POLL_ID, "--format", "csv"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    rows = list(csv.reader(io.StringIO(done.stdout)))
    assert rows[0] == ["poll", "district", "answer", "count", "share", "answered", "invited"]
    assert [POLL_ID, "boshoven", "Ja", "7", "0.583", "12", "40"] in rows
    assert [POLL_ID, "leuken", "Ja", "< 5", "", "< 5", "10"] in rows

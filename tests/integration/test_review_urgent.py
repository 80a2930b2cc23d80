"""Urgent deadlines in the review console, as a real process against the real broker and
database: an urgent item undecided past its deadline is notified to the on-duty
moderators on ``review.notices`` (once), the gauges on ``/metrics`` say so, deciding it
ends its deadline; and channels, as a process too, sends such a notice by email."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
import yaml

from buurtalert.devkit.devmail import DevMailbox
from buurtalert.devkit.testing import free_port
from buurtalert.review.notices import OVERDUE_RULE
from buurtalert.shared.models import utcnow
from buurtalert.shared.settings import Settings
from buurtalert.shared.topics import REVIEW_NOTICES
from tests.conftest import TEST_FAILED
from tests.review_support import ReviewService, held_message, log_dir, running_review
from tests.support import ServiceProcess, eventually, read_topic, wait_http

pytestmark = pytest.mark.timeout(240)

ON_DUTY = [
    {"name": "dienst-anna", "channel": "email", "address": "anna@weert-demo.buurtalert.test"},
    {
        "name": "dienst-bert",
        "channel": "email",
        "address": "bert@weert-demo.buurtalert.test",
        "language": "en",
    },
]


@pytest.fixture
def municipality_file(municipality_file: Path) -> Path:
    """The test's municipality with two moderators on duty, a deadline of 10 minutes and a
    look for overdue items every half second."""
    data = yaml.safe_load(municipality_file.read_text())
    data["review"] = {
        "urgent_deadline_minutes": 10,
        "deadline_check_seconds": 0.5,
        "console_url": "https://review.weert-demo.test",
        "on_duty": ON_DUTY,
    }
    municipality_file.write_text(yaml.safe_dump(data))
    return municipality_file


def gauge(metrics: str, name: str, **labels: str) -> float | None:
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    found = re.search(rf"^{name}\{{{re.escape(wanted)}\}} (\S+)$", metrics, re.MULTILINE)
    return float(found.group(1)) if found else None


async def test_an_overdue_urgent_item_notifies_the_on_duty_once_and_shows_on_metrics(
    review: ReviewService,
) -> None:
    """An urgent item received 12 minutes ago (deadline 10) is notified to both on-duty
    moderators, each in their language, once however often the look runs; a calm item of the
    same age and an urgent one within its deadline are not; the overdue gauge counts it until
    it is decided, and the queue-age gauges show the oldest waiting items."""
    long_ago = utcnow() - timedelta(minutes=12)
    await review.hold(held_message("msg_late", "Vermist: jongen van 8", urgent=True, received_at=long_ago))
    await review.hold(held_message("msg_calm_old", received_at=long_ago))
    await review.hold(held_message("msg_fresh", "Bel 112, inbraak", urgent=True))

    notices = await read_topic(review.settings, REVIEW_NOTICES.name, 2, timeout=30)
    assert sorted(n["destination"]["address"] for n in notices) == sorted(p["address"] for p in ON_DUTY)
    assert {n["message_id"] for n in notices} == {"msg_late"}
    assert all(
        n["rules"] == [OVERDUE_RULE] and n["destination"]["recipient_type"] == "individual" for n in notices
    )
    by_language = {n["language"]: n for n in notices}
    assert "wacht al 12 minuten" in by_language["nl"]["text"]
    assert "has waited 12 minutes" in by_language["en"]["text"]
    assert "https://review.weert-demo.test/items/msg_late" in by_language["nl"]["text"]
    assert "Vermist" not in by_language["nl"]["text"]  # never the message itself

    async with httpx.AsyncClient(base_url=review.url) as http:

        async def overdue_metric() -> float | None:
            return gauge(
                (await http.get("/metrics")).text, "review_urgent_overdue", municipality="weert-demo"
            )

        assert await eventually(overdue_metric, timeout=10, what="the overdue gauge") == 1.0

        async def ages() -> dict[str, float | None] | None:
            metrics = (await http.get("/metrics")).text
            found = {
                urgency: gauge(
                    metrics, "review_queue_oldest_seconds", municipality="weert-demo", urgency=urgency
                )
                for urgency in ("normal", "urgent")
            }
            return found if None not in found.values() else None

        age = await eventually(ages, timeout=10, what="the queue-age gauges")
        assert all(700 < (seconds or 0) < 800 for seconds in age.values()), age

        # the look runs every half second: three more looks, still two notices
        await asyncio.sleep(1.5)
        assert len(await read_topic(review.settings, REVIEW_NOTICES.name, 3, timeout=3)) == 2
        audit = await review.db("audit", {"message_id": "msg_late", "stage": "review.overdue"})
        assert len(audit) == 1 and audit[0]["data"]["on_duty"] == ["dienst-anna", "dienst-bert"]
        deadlines = {d["_id"]: d for d in await review.db("review_deadlines", {})}
        assert set(deadlines) == {"msg_late", "msg_fresh"}  # urgent ones only, while open
        assert (
            deadlines["msg_late"]["notified_at"] is not None and deadlines["msg_fresh"]["notified_at"] is None
        )

        alice, csrf = await review.login("alice")
        decided = await alice.post("/items/msg_late/approve", data={"version": "0", "csrf": csrf})
        assert decided.status_code == 200, decided.text
        assert {d["_id"] for d in await review.db("review_deadlines", {})} == {"msg_fresh"}

        async def back_to_zero() -> bool:
            return await overdue_metric() == 0.0

        assert await eventually(back_to_zero, timeout=10, what="the overdue gauge back to 0")


async def test_channels_sends_a_review_notice_by_email(
    settings: Settings, mailbox: DevMailbox, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A notice on review.notices reaches the on-duty moderator's mailbox through channels'
    email adapter, once."""
    async with running_review(
        settings, tmp_path, failed=lambda: request.node.stash.get(TEST_FAILED, False)
    ) as review:
        own = settings.model_copy(update={"http_port": free_port()})
        channels = ServiceProcess("channels", own, log_dir(tmp_path))
        channels.start()
        try:
            await wait_http(f"http://127.0.0.1:{own.http_port}/health")
            await channels.started()
            long_ago = utcnow() - timedelta(minutes=30)
            await review.hold(held_message("msg_mail", "Vermist: meisje", urgent=True, received_at=long_ago))

            def arrived() -> list[EmailMessage]:
                return [m for m in mailbox.mailbox.snapshot() if "anna@weert" in str(m["To"])]

            mails = await eventually(arrived, timeout=60, what="the notice in the mailbox")
            assert "Spoed" in str(mails[0]["Subject"])
            body = mails[0].get_body(("plain",))
            assert body is not None and "msg_mail" in body.get_content()
            await asyncio.sleep(2)  # more looks for overdue items: no second mail
            assert len(arrived()) == 1
        finally:
            channels.stop()
            if request.node.stash.get(TEST_FAILED, False):
                print(channels.log()[-6000:])

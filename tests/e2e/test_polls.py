"""A district poll end to end, through Kafka, the services as processes, the Graph API
emulator and a real mail server: ``buurtalert effect poll create`` invites the members of
Centrum who consented (two by WhatsApp with answer buttons, one by email with a link);
their answers come back through ingest (a tapped button, the form) and the review
service counts one per member, the latest; ``poll results`` shows them per district with
the small-number rule. An answer from a number that was not invited, and a link that was
tampered with, count for nothing."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml

from buurtalert.devkit.graph_emulator import GraphEmulator, tapped
from buurtalert.devkit.testing import settings_environment
from buurtalert.directory.model import Member, load_directory
from buurtalert.directory.store import store_directory
from buurtalert.shared.collections import POLL_ANSWERS
from buurtalert.shared.mongo import Database, mongo_client
from buurtalert.shared.settings import load_municipality_config
from tests.conftest import DEMO
from tests.e2e.conftest import System
from tests.meta import wa_messages
from tests.review_support import ReviewService
from tests.support import BIN, eventually

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
MAIL_MEMBER = "oost1@example.test"
INVITED = ["31600000011", "31600000012"]  # Centrum-West, consented; 31600000013 did not
LINK = re.compile(r"(http://127\.0\.0\.1:\d+/poll\?t=[A-Za-z0-9._-]+)")


async def add_mail_member(system: System) -> None:
    """The demo directory with a member of Centrum-Oost reached by email, who consented."""
    key = load_municipality_config(DEMO / "weert" / "municipality.yaml").pseudonym_key
    loaded = load_directory(DEMO / "weert" / "directory.yaml")
    member = Member(
        id="bewoner-oost-mail", groups=("centrum-oost",), address=MAIL_MEMBER, consent_one_to_one=True
    )
    extended = loaded.model_copy(update={"members": (*loaded.members, member)}).pseudonymised(key)
    client = mongo_client(system.settings)
    try:
        await store_directory(Database(client[system.settings.database], "directory"), extended)
    finally:
        await client.close()


def buurtalert(system: System, tmp_path: Path, *args: str) -> str:
    """The command, with the test's municipality file whose ingest.public_url is this ingest."""
    data = yaml.safe_load(system.settings.municipality_file.read_text())
    data["ingest"]["public_url"] = f"http://127.0.0.1:{system.settings.http_port}"
    path = tmp_path / "municipality-cli.yaml"
    path.write_text(yaml.safe_dump(data))
    env = {**os.environ, **settings_environment(system.settings), "BUURTALERT_MUNICIPALITY_FILE": str(path)}
    done = subprocess.run(
        [str(BIN), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def tap(
    system: System, sent: dict[str, object], choice: int, sender: str | None = None
) -> dict[str, int]:
    """The webhook WhatsApp sends when the recipient (or ``sender``) taps ``choice``."""
    message = tapped(sent, choice, at=time.time())
    if sender is not None:
        message["from"] = sender
    return await system.whatsapp(wa_messages(message))


def mail_body(system: System) -> str | None:
    for mail in system.mailbox.mailbox.snapshot():
        if str(mail["To"]) == MAIL_MEMBER:
            body = mail.get_body(preferencelist=("plain",))
            return body.get_content() if body else ""
    return None


async def kept_answers(system: System, poll_id: str) -> list[tuple[str, int, str]]:
    client = mongo_client(system.settings)
    try:
        db = Database(client[system.settings.database], "review")
        cursor = db.read(POLL_ANSWERS).find({"poll_id": poll_id})
        return sorted([(d["district"], d["option"], d["channel"]) async for d in cursor])
    finally:
        await client.close()


async def test_a_poll_is_sent_answered_through_the_emulator_and_the_form_and_counted_once_per_member(
    system: System, review: ReviewService, graph: GraphEmulator, tmp_path: Path
) -> None:
    await add_mail_member(system)
    poll_id = buurtalert(
        system,
        tmp_path,
        "effect",
        "poll",
        "create",
        "--municipality",
        "weert-demo",
        "--district",
        "centrum",
        "--question",
        "Voelt u zich veiliger in uw straat dan een jaar geleden?",
        "--options",
        "Ja,Nee,Weet niet",
    ).strip()
    assert re.fullmatch(r"pl-[0-9a-f]{12}", poll_id)

    await eventually(lambda: len(graph.sent) >= 2, what="two WhatsApp invitations")
    await eventually(lambda: mail_body(system) is not None, what="the emailed invitation")
    assert sorted(m["to"] for m in graph.sent) == INVITED
    first, second = sorted(graph.sent, key=lambda m: str(m["to"]))
    assert first["type"] == "interactive" and first["interactive"]["type"] == "button"
    assert [b["reply"]["title"] for b in first["interactive"]["action"]["buttons"]] == [
        "Ja",
        "Nee",
        "Weet niet",
    ]
    assert "Voelt u zich veiliger" in first["interactive"]["body"]["text"]

    # Sending the invitations again reaches no one twice.
    buurtalert(system, tmp_path, "effect", "poll", "send", poll_id)

    assert (await tap(system, first, 0))["poll_answers"] == 1
    assert (await tap(system, second, 1))["poll_answers"] == 1
    await asyncio.sleep(1.1)  # WhatsApp's timestamps are in seconds: the change is the later one
    assert (await tap(system, second, 0))["poll_answers"] == 1
    stranger = await tap(system, first, 2, sender="31699999999")
    assert (stranger["poll_answers"], stranger["ignored"], stranger["accepted"]) == (0, 1, 0)

    body = mail_body(system)
    assert body is not None and "Voelt u zich veiliger" in body and "knoppen" not in body
    link = LINK.search(body)
    assert link is not None, body
    async with httpx.AsyncClient() as http:
        page = await http.get(link.group(1))
        assert page.status_code == 200 and "Weet niet" in page.text and 'name="option"' in page.text
        token = link.group(1).split("t=", 1)[1]
        answered = await http.post(
            f"http://127.0.0.1:{system.settings.http_port}/poll", data={"t": token, "option": "2"}
        )
        assert answered.status_code == 200 and "Dank u" in answered.text, answered.text
        forged = await http.post(
            f"http://127.0.0.1:{system.settings.http_port}/poll",
            data={"t": token[:-4] + "AAAA", "option": "0"},
        )
        assert forged.status_code == 404

    expected = [("centrum", 0, "whatsapp"), ("centrum", 0, "whatsapp"), ("centrum", 2, "web")]

    async def counted() -> bool:
        return await kept_answers(system, poll_id) == expected

    await eventually(counted, what="three answers, one per member")
    assert sorted(m["to"] for m in graph.sent) == INVITED  # the second sending sent nothing
    shown = json.loads(buurtalert(system, tmp_path, "effect", "poll", "results", poll_id, "--format", "json"))
    [centrum] = shown["districts"]
    assert (centrum["invited"], centrum["answered"]) == ("< 5", "< 5")  # 3 of 3: too few to show
    assert [o["count"] for o in centrum["options"]] == ["< 5", 0, "< 5"]

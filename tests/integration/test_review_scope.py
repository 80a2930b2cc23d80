"""Scoped roles in the review console against the real database (and, for the console's
pages, the service as a process): a coordinator's queue and pending joins are read per
group, a wijkagent's queue per district, from the database; another group's or district's
item or join is 404; accounts keep their scope (and those stored before scopes load
without one); ``buurtalert review user add`` refuses a scope the directory does not know."""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from buurtalert.devkit.testing import settings_environment
from buurtalert.directory.store import Memberships
from buurtalert.review.handlers import Access
from buurtalert.review.rules import Scope, item_for_message, item_for_proposal
from buurtalert.review.stores import Items, Sessions, Users
from buurtalert.shared.collections import REVIEW_USERS
from buurtalert.shared.models import Role, utcnow
from buurtalert.shared.mongo import Database, mongo_client
from buurtalert.shared.settings import Settings
from buurtalert.shared.topics import INGEST, REVIEW
from tests.review_support import (
    PASSWORD,
    ReviewService,
    add_user,
    held_message,
    removal_proposal,
    store_demo_directories,
)
from tests.support import BIN, eventually

pytestmark = pytest.mark.timeout(300)
T0 = datetime(2026, 5, 1, 9, tzinfo=UTC)


@pytest.fixture
async def review_db(settings: Settings) -> AsyncIterator[Database]:
    client = mongo_client(settings)
    try:
        yield Database(client[settings.database], REVIEW)
    finally:
        await client.close()


async def test_a_scoped_queue_is_read_per_group_and_per_district(review_db: Database) -> None:
    """Open items of the groups (or districts) asked for, of the municipality asked for; no
    decided item, no other group's or district's, no other municipality's; an empty scope
    reads nothing; no scope the whole municipality's open items."""
    items = Items(review_db)
    cases = [
        ("m_noord", "weert-demo", "boshoven-noord", "boshoven"),
        ("m_zuid", "weert-demo", "boshoven-zuid", "boshoven"),
        ("m_centrum", "weert-demo", "centrum-west", "centrum"),
        ("m_old", "weert-demo", "centrum-west", None),  # queued before districts were recorded
        ("m_bocholt", "bocholt-demo", "boshoven-noord", "boshoven"),  # the same names elsewhere
    ]
    for message_id, municipality, group, district in cases:
        held = held_message(message_id, municipality=municipality, group_id=group)
        assert await items.add(item_for_message(held, district))
    assert await items.add(item_for_proposal(removal_proposal("rmv_noord"), "boshoven"))
    decided = held_message("m_decided", group_id="boshoven-noord")
    assert await items.add(item_for_message(decided, "boshoven").model_copy(update={"state": "decided"}))

    async def ids(scope: Scope | None) -> list[str]:
        return sorted(i.id for i in await items.open_items("weert-demo", scope))

    assert await ids(Scope("group_id", ("boshoven-noord",))) == ["m_noord", "rmv_noord"]
    assert await ids(Scope("group_id", ("boshoven-noord", "centrum-west", "centrum-west"))) == [
        "m_centrum",
        "m_noord",
        "m_old",
        "rmv_noord",
    ]
    assert await ids(Scope("district", ("boshoven",))) == ["m_noord", "m_zuid", "rmv_noord"]
    assert await ids(Scope("district", ("centrum",))) == ["m_centrum"]
    assert await ids(Scope("group_id", ())) == [] and await ids(Scope("district", ())) == []
    assert (
        await ids(Scope(None))
        == await ids(None)
        == [
            "m_centrum",
            "m_noord",
            "m_old",
            "m_zuid",
            "rmv_noord",
        ]
    )


async def test_pending_joins_are_read_per_group(settings: Settings) -> None:
    """The register gives the members asking for a group (an element of ``requested``),
    of that municipality, still pending; all of them without a group."""
    client = mongo_client(settings)
    try:
        writer = Memberships(Database(client[settings.database], INGEST))
        assert await writer.join("weert-demo", "p_1", "31611111111", "boshoven-noord", T0)
        assert await writer.join("weert-demo", "p_2", "31622222222", "centrum-west", T0)
        assert await writer.join("weert-demo", "p_3", "31633333333", "centrum-west", T0)
        assert await writer.join("weert-demo", "p_3", "31633333333", "boshoven-noord", T0 + timedelta(1))
        assert await writer.join("bocholt-demo", "p_4", "32444444444", "boshoven-noord", T0)
        reader = Memberships(Database(client[settings.database], REVIEW))

        async def pending(group: str | None) -> list[str]:
            return sorted(m.pseudonym for m in await reader.pending("weert-demo", group))

        assert await pending("boshoven-noord") == ["p_1", "p_3"]
        assert await pending("centrum-west") == ["p_2", "p_3"]
        assert await pending("leuken-west") == []
        assert await pending(None) == ["p_1", "p_2", "p_3"]
    finally:
        await client.close()


async def test_accounts_keep_their_scope_and_older_ones_load_without(review_db: Database) -> None:
    """A coordinator's groups and a wijkagent's districts are stored and read back, listed
    per municipality; an account stored before scopes existed loads with none; replacing an
    account ends its sessions (a new scope holds from the next login)."""
    users, sessions = Users(review_db), Sessions(review_db)
    access = Access(users, sessions)
    await access.add_user("carl", "weert-demo", Role.COORDINATOR, "password1", groups=("boshoven-noord",))
    await access.add_user("wout", "weert-demo", Role.WIJKAGENT, "password1", districts=("centrum",))
    await review_db.write(REVIEW_USERS).insert_one(
        {"_id": "old", "municipality": "weert-demo", "role": "coordinator", "password_hash": "x"}
    )
    await access.add_user("eve", "bocholt-demo", Role.ADMIN, "password1")
    found = await users.get("carl")
    assert found is not None and found[0].groups == ("boshoven-noord",) and found[0].districts == ()
    listed = await users.of("weert-demo")
    assert [(a.name, a.role, a.groups, a.districts) for a in listed] == [
        ("carl", Role.COORDINATOR, ("boshoven-noord",), ()),
        ("old", Role.COORDINATOR, (), ()),
        ("wout", Role.WIJKAGENT, (), ("centrum",)),
    ]

    login = await access.login("carl", "password1")
    assert login.session is not None and login.session.user.groups == ("boshoven-noord",)
    live = await access.session(login.token)
    assert live is not None and live.user == login.session.user
    await access.add_user("carl", "weert-demo", Role.COORDINATOR, "password1", groups=("centrum-west",))
    assert await access.session(login.token) is None
    again = await access.login("carl", "password1")
    assert again.session is not None and again.session.user.groups == ("centrum-west",)


def command(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """``buurtalert review user ...``, a password on standard input."""
    return subprocess.run(
        [str(BIN), "review", "user", *args],
        input=f"{PASSWORD}\n",
        text=True,
        capture_output=True,
        env={**os.environ, **settings_environment(settings)},
        timeout=60,
    )


async def test_the_command_refuses_a_scope_that_does_not_fit(settings: Settings) -> None:
    """A coordinator without groups, a wijkagent without districts, a moderator with groups,
    a group or district the directory does not know and a scope with no directory loaded are
    refused, naming why; a valid scope is saved and listed."""
    add = ("add", "--municipality", "weert-demo")
    no_directory = command(settings, *add, "--role", "coordinator", "--groups", "boshoven-noord", "carl")
    assert no_directory.returncode == 2 and "no directory for the municipality" in no_directory.stderr
    await store_demo_directories(settings)
    refusals = {
        ("--role", "coordinator"): "a coordinator needs --groups",
        ("--role", "wijkagent"): "a wijkagent needs --districts",
        ("--role", "moderator", "--groups", "boshoven-noord"): "a moderator has no groups",
        ("--role", "wijkagent", "--groups", "boshoven-noord"): "a wijkagent needs --districts",
        ("--role", "coordinator", "--groups", "boshoven-noord,nergens"): "groups unknown to the directory "
        "of weert-demo: nergens",
        ("--role", "wijkagent", "--districts", "atlantis"): "districts unknown to the directory of "
        "weert-demo: atlantis",
    }
    for options, why in refusals.items():
        refused = command(settings, *add, *options, "someone")
        assert refused.returncode == 2 and why in refused.stderr, (options, refused.stderr)
    groups = "boshoven-noord, centrum-west"
    saved = command(settings, *add, "--role", "coordinator", "--groups", groups, "carl")
    assert saved.returncode == 0, saved.stderr
    assert "user carl (coordinator, weert-demo: boshoven-noord, centrum-west) saved" in saved.stdout
    assert command(settings, *add, "--role", "wijkagent", "--districts", "centrum", "wout").returncode == 0
    add_user(settings, "bob", "moderator")
    listed = command(settings, "list", "--municipality", "weert-demo")
    assert listed.returncode == 0 and listed.stdout.splitlines() == [
        "bob\tmoderator\tmunicipality-wide",
        "carl\tcoordinator\tgroups: boshoven-noord,centrum-west",
        "wout\twijkagent\tdistricts: centrum",
    ]
    client = mongo_client(settings)
    try:
        stored = await Users(Database(client[settings.database], REVIEW)).get("someone")
    finally:
        await client.close()
    assert stored is None  # nothing refused was saved


async def test_the_console_shows_each_user_their_scope_only(review: ReviewService) -> None:
    """Held messages are queued with their group's district; carl (coordinator of
    boshoven-noord, boshoven-regie, centrum-west) sees both, cora (boshoven-zuid) neither and gets 404 by
    id, also for a removal from carl's group; agent (wijkagent of boshoven) sees boshoven's,
    wout (centrum) centrum's; moderators and admins see all; a join is for its group's
    coordinator only (404 to cora by URL and by POST); wout's figures are centrum's, and
    incidents are seen (and given outcomes) in the user's districts only."""
    await review.hold(held_message("msg_noord", group_id="boshoven-noord"))
    await review.hold(held_message("msg_west", group_id="centrum-west"))
    await review.propose(removal_proposal("rmv_noord"))
    client = mongo_client(review.settings)
    try:
        await Memberships(Database(client[review.settings.database], INGEST)).join(
            "weert-demo", "p_joiner", "31655555555", "boshoven-noord", utcnow()
        )
        incidents = [  # as routing records them
            {"_id": f"inc_{d}", "municipality": "weert-demo", "district": d, "opened_at": T0 + timedelta(k)}
            for k, d in enumerate(("boshoven", "centrum"))
        ]
        await client[review.settings.database]["incidents"].insert_many(incidents)
    finally:
        await client.close()
    anna, _ = await review.login("anna")

    async def all_queued() -> list[str] | None:
        found = sorted(i["id"] for i in (await anna.get("/queue")).json()["items"])
        return found if len(found) == 3 else None

    assert await eventually(all_queued, timeout=30, what="three items queued") == [
        "msg_noord",
        "msg_west",
        "rmv_noord",
    ]
    districts = {d["_id"]: d.get("district") for d in await review.db("review_items", {})}
    assert districts == {"msg_noord": "boshoven", "msg_west": "centrum", "rmv_noord": "boshoven"}

    seen = {}
    for name in ("bob", "carl", "cora", "agent", "wout"):
        user, _ = await review.login(name)
        seen[name] = sorted(i["id"] for i in (await user.get("/queue")).json()["items"])
    assert seen == {
        "bob": ["msg_noord", "msg_west"],  # moderators see no proposals
        "carl": ["msg_noord", "msg_west", "rmv_noord"],
        "cora": [],
        "agent": ["msg_noord"],
        "wout": ["msg_west"],
    }

    cora, cora_csrf = await review.login("cora")
    wout, wout_csrf = await review.login("wout")
    assert (await cora.get("/items/msg_noord")).status_code == 404
    agree = await cora.post("/items/rmv_noord/agree", data={"version": "0", "csrf": cora_csrf})
    assert agree.status_code == 404
    assert (await wout.get("/items/msg_noord")).status_code == 404
    reveal = await wout.post("/items/msg_noord/reveal", data={"why": "getuige", "csrf": wout_csrf})
    assert reveal.status_code == 404
    assert (await wout.get("/items/msg_west")).status_code == 200

    carl, carl_csrf = await review.login("carl")
    [join] = (await carl.get("/members")).json()["pending"]
    assert join["group_id"] == "boshoven-noord"
    assert (await carl.get(f"/members/{join['id']}")).json() == join
    assert (await cora.get("/members")).json()["pending"] == []
    assert (await cora.get(f"/members/{join['id']}")).status_code == 404
    page = await cora.get(f"/members/{join['id']}", headers={"Accept": "text/html"})
    assert page.status_code == 404 and "p_joiner" not in page.text
    by_post = await cora.post(
        "/members/decide", data={"join": join["id"], "decision": "approve", "csrf": cora_csrf}
    )
    assert by_post.status_code == 404
    approved = await carl.post(
        "/members/decide", data={"join": join["id"], "decision": "approve", "csrf": carl_csrf}
    )
    assert approved.status_code == 200 and approved.json()["decision"]["actor"] == "carl"
    after = await cora.post(  # decided now: still not cora's to know of
        "/members/decide", data={"join": join["id"], "decision": "refuse", "reason": "x", "csrf": cora_csrf}
    )
    assert after.status_code == 404

    figures = (await wout.get("/effect")).json()
    assert list(figures["districts"]) == ["centrum"]
    assert list((await anna.get("/effect")).json()["districts"]) == ["boshoven", "centrum", "leuken"]

    listed = {}
    for name in ("anna", "carl", "cora", "wout"):
        user, _ = await review.login(name)
        listed[name] = [i["id"] for i in (await user.get("/incidents")).json()["incidents"]]
    assert listed == {
        "anna": ["inc_centrum", "inc_boshoven"],  # the newest first
        "carl": ["inc_centrum", "inc_boshoven"],  # boshoven-noord is in boshoven, centrum-west in centrum
        "cora": ["inc_boshoven"],  # boshoven-zuid
        "wout": ["inc_centrum"],
    }
    assert (await wout.get("/incidents/inc_boshoven")).status_code == 404
    outcome = await wout.post(
        "/incidents/inc_boshoven/outcome", json={"outcome": "arrest"}, headers={"X-CSRF-Token": wout_csrf}
    )
    assert outcome.status_code == 404
    assert (await wout.get("/incidents/inc_centrum")).status_code == 200

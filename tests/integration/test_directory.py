"""Loading a directory into the database: validated, pseudonymised, idempotent."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from buurtalert.devkit.testing import settings_environment
from buurtalert.directory.store import fetch_directory
from buurtalert.shared.mongo import Database, mongo_client
from buurtalert.shared.settings import Settings

BIN = str(Path(sys.executable).parent / "buurtalert")
DEMO = Path(__file__).parents[2] / "deploy" / "demo"


def _load(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        **settings_environment(settings),
        "BUURTALERT_MUNICIPALITY_FILE": str(DEMO / "weert" / "municipality.yaml"),
    }
    return subprocess.run(
        [BIN, "directory", "load", *args], env=env, capture_output=True, text=True, timeout=60
    )


async def test_loaded_directory_keeps_pseudonyms_and_only_consented_addresses(settings: Settings) -> None:
    """Members are stored by pseudonym; an address is kept only for one-to-one consent."""
    first = _load(settings, str(DEMO / "weert" / "directory.yaml"))
    again = _load(settings, str(DEMO / "weert" / "directory.yaml"))
    assert first.returncode == 0 and again.returncode == 0, first.stderr + again.stderr
    client = mongo_client(settings)
    try:
        stored = await fetch_directory(Database(client[settings.database], "routing"), "weert-demo")
        db = client[settings.database]
        assert await db.directories.count_documents({}) == 1  # loading twice changed nothing
        raw = str(await db.directories.find_one({"_id": "weert-demo"}))
    finally:
        await client.close()
    assert stored is not None
    members = {m.id: m for m in stored.members}
    assert all(m.pseudonym and m.pseudonym.startswith("p_") for m in members.values())
    assert members["wijkagent-boshoven"].address is None
    assert members["coordinator-noord"].address == "+31 6 00000002"  # consented to one-to-one delivery
    assert "00000001" not in raw and "bewoner1@example.test" not in raw
    assert stored.district("boshoven").geometry["type"] == "Polygon"  # type: ignore[union-attr]


async def test_loading_with_another_municipalitys_key_is_refused(settings: Settings) -> None:
    """Bocholt's directory with Weert's key would mix pseudonyms: refused, exit 2."""
    result = _load(settings, str(DEMO / "bocholt" / "directory.yaml"))
    assert result.returncode == 2
    assert "--municipality-file" in result.stderr
    ok = _load(
        settings,
        str(DEMO / "bocholt" / "directory.yaml"),
        "--municipality-file",
        str(DEMO / "bocholt" / "municipality.yaml"),
    )
    assert ok.returncode == 0, ok.stderr


async def test_a_join_waits_for_approval_and_a_replayed_join_after_stop_does_nothing(
    settings: Settings,
) -> None:
    """Attack: AANMELDEN made a member trusted at once; a replayed AANMELDEN after STOP
    subscribed them again. Events apply in the provider's order, whatever order they arrive in."""
    from datetime import UTC, datetime, timedelta

    from buurtalert.directory.model import MembershipState
    from buurtalert.directory.store import Memberships
    from buurtalert.shared.topics import INGEST

    t0 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    client = mongo_client(settings)
    try:
        register = Memberships(Database(client[settings.database], INGEST))
        assert await register.join("m", "p_x", "31612345678", "g", t0)
        [pending] = await register.pending("m")
        assert pending.state is MembershipState.PENDING and pending.requested == ("g",)
        assert pending.groups == () and await register.consents("m", "p_x") is False
        assert await register.leave("m", "p_x", t0 + timedelta(minutes=5))
        assert not await register.join("m", "p_x", "31612345678", "g", t0 + timedelta(minutes=1))
        assert await register.pending("m") == [] and await register.consents("m", "p_x") is False
        [left] = await register.of("m")
        assert left.state is MembershipState.LEFT and left.address is None
        assert await register.consents("m", "p_never") is None
    finally:
        await client.close()


async def test_an_active_member_asking_for_another_group_waits_for_its_coordinator(
    settings: Settings,
) -> None:
    """A member approved for one group who asks to join another stays active for the first
    and is among the pending joins of the second (it was invisible to the console)."""
    from datetime import UTC, datetime, timedelta

    from buurtalert.directory.model import MembershipState
    from buurtalert.directory.store import Memberships
    from buurtalert.shared.topics import INGEST

    t0 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    client = mongo_client(settings)
    try:
        register = Memberships(Database(client[settings.database], INGEST))
        assert await register.join("m", "p_y", "31612345679", "a", t0)
        assert await register.vet("m", "p_y", "a", True, t0, t0 + timedelta(minutes=1))
        assert await register.pending("m") == []
        assert await register.join("m", "p_y", "31612345679", "b", t0 + timedelta(minutes=2))
        [asking] = await register.pending("m", "b")
        assert (
            asking.state is MembershipState.ACTIVE and asking.groups == ("a",) and asking.requested == ("b",)
        )
        assert await register.pending("m", "a") == [] and await register.consents("m", "p_y") is True
        assert await register.vet("m", "p_y", "b", True, asking.changed_at, t0 + timedelta(minutes=3))
        assert await register.pending("m") == []
        [member] = await register.of("m")
        assert member.groups == ("a", "b") and not member.asking
    finally:
        await client.close()


async def test_consents_before_a_send_come_from_the_register_and_heed_a_stop_within_a_second(
    settings: Settings,
) -> None:
    """Channels asks each member's consent just before a one-to-one send. The answer comes
    from the register as read at its version, which is looked up once a second, not once per
    recipient; a STOP counts from the next look-up: then each answer is read from the
    database until the register is read again (at most every ten seconds)."""
    from datetime import UTC, datetime, timedelta

    from buurtalert.directory.store import Memberships, RegisterConsents
    from buurtalert.shared.topics import INGEST

    t0 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    now = [0.0]
    client = mongo_client(settings)
    try:
        register = Memberships(Database(client[settings.database], INGEST))
        for n, member in enumerate(("p_a", "p_b")):
            assert await register.join("m", member, f"3161234567{n}", "g", t0)
            assert await register.vet("m", member, "g", True, t0, t0 + timedelta(minutes=1))
        consents = RegisterConsents(register, fresh=1.0, reload=10.0, clock=lambda: now[0])
        assert [await consents("m", p) for p in ("p_a", "p_b", "p_never")] == [True, True, None]
        assert await register.leave("m", "p_a", t0 + timedelta(minutes=5))
        now[0] = 0.5
        assert await consents("m", "p_a") is True, "within the second: the register as read"
        now[0] = 1.0
        assert await consents("m", "p_a") is False, "the register changed: asked of the database"
        assert await consents("m", "p_b") is True
        assert await register.leave("m", "p_b", t0 + timedelta(minutes=6))
        now[0] = 2.0
        assert await consents("m", "p_b") is False
        now[0] = 12.0  # read again; unchanged since, it answers by itself
        assert [await consents("m", p) for p in ("p_a", "p_b")] == [False, False]
        assert await register.join("m", "p_c", "31612345672", "g", t0 + timedelta(minutes=7))
        assert await register.vet("m", "p_c", "g", True, t0 + timedelta(minutes=7), t0 + timedelta(minutes=8))
        now[0] = 12.5
        assert await consents("m", "p_c") is None, "a member approved within the second is not known yet"
    finally:
        await client.close()

"""Incidents in the database under a burst: one event reported many times at once is
one incident, also when two routing processes attach at the same moment; look-alike
reports from different streets are not merged; a redelivered report joins nothing new."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from buurtalert.directory.model import load_directory
from buurtalert.routing.stores import HEAD_ENTRIES, GroupRates, Incidents
from buurtalert.shared.models import Author, InboundMessage, ProviderRef, SourceChannel
from buurtalert.shared.mongo import Database, mongo_client
from buurtalert.shared.settings import Settings
from buurtalert.shared.topics import ROUTING

WEERT = load_directory(Path(__file__).parents[2] / "deploy" / "demo" / "weert" / "directory.yaml")
T0 = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)


def _report(n: int, text: str, at: datetime = T0) -> InboundMessage:
    return InboundMessage(
        id=f"msg_{n}",
        provider=ProviderRef(channel=SourceChannel.WEB, message_id=f"r{n}"),
        municipality="weert-demo",
        group_id="boshoven-noord",
        author=Author(pseudonym=f"p{n}"),
        text=text,
        sent_at=at + timedelta(seconds=n % 60),
        raw_ref="raw",
    )


FIRE = "Brand in een schuur aan de Dorpstraat, veel rook, 112 gebeld"


async def test_a_burst_of_one_event_from_two_processes_is_one_incident(settings: Settings) -> None:
    """300 reports of one fire, attached concurrently by two routing processes (two
    stores on one database): one incident counting 300 reports; a redelivery changes nothing."""
    client = mongo_client(settings)
    try:
        db = Database(client[settings.database], ROUTING)
        first, second = Incidents(db), Incidents(db)
        reports = [_report(n, FIRE) for n in range(300)]
        attached = await asyncio.gather(
            *((first if n % 2 else second).attach(r, "boshoven", WEERT) for n, r in enumerate(reports))
        )
        assert len({a.incident.id for a in attached}) == 1
        assert sum(not a.joined for a in attached) == 1
        again = await first.attach(reports[7], "boshoven", WEERT)
        assert again.incident.id == attached[0].incident.id
        reports = client[settings.database].incident_reports
        assert await reports.count_documents({"incident": again.incident.id}) == 300
    finally:
        await client.close()


STREETS = [
    f"{tree}{place}straat"
    for tree in ("berk", "eik", "lind", "wilg", "beuk", "es")
    for place in ("hof", "veld", "dal", "berg", "bos", "horst", "meer", "broek", "hoven", "rade")
]


async def test_processes_opening_incidents_in_one_district_at_once_lose_none(settings: Settings) -> None:
    """Six routing processes (six stores, each with its own client) attach at once the
    reports of 60 events in one district, each event reported through two of them: 60
    incidents, each event's two reports in one, and the district still offers all 60 to new
    reports (two writers of one version of the district must not both succeed: one's
    incidents would vanish and their next reports open new ones)."""
    clients = [mongo_client(settings) for _ in range(6)]
    try:
        stores = [Incidents(Database(c[settings.database], ROUTING)) for c in clients]
        texts = [f"Auto opengebroken aan de {street.capitalize()}, ruit ingeslagen" for street in STREETS]
        attached = await asyncio.gather(
            *(
                stores[(n + k) % len(stores)].attach(_report(2 * n + k, text), "boshoven", WEERT)
                for n, text in enumerate(texts)
                for k in range(2)
            )
        )
        ids = [a.incident.id for a in attached]
        assert all(ids[2 * n] == ids[2 * n + 1] for n in range(len(texts))), "an event became two incidents"
        assert len(set(ids)) == len(texts)
        later = await asyncio.gather(
            *(
                stores[n % 2].attach(
                    _report(1000 + n, text, at=T0 + timedelta(minutes=30)), "boshoven", WEERT
                )
                for n, text in enumerate(texts)
            )
        )
        assert [a.incident.id for a in later] == ids[::2]
        still_open = await stores[0].open_in("weert-demo", "boshoven")
        assert sorted(i.id for i in still_open) == sorted(set(ids))
    finally:
        for client in clients:
            await client.close()


async def test_a_process_remembering_an_old_district_still_joins_what_another_opened(
    settings: Settings,
) -> None:
    """A routing process uses a district's open incidents as it last saw them; when another
    process opened an incident there since, the write finds a newer version, and the report
    is attached again on what is stored now: it joins that incident, and nothing is lost."""
    clients = [mongo_client(settings), mongo_client(settings)]
    try:
        first, second = (Incidents(Database(c[settings.database], ROUTING)) for c in clients)
        fire = await first.attach(_report(1, FIRE), "boshoven", WEERT)
        # Two versions later, the claim of the version after the one ``first`` saw is gone.
        car = "Auto opengebroken aan de Molenweg, ruit ingeslagen"
        bike = "Fietsendief bij de Kerkstraat, knipt sloten door"
        opened = [
            await second.attach(_report(n, text), "boshoven", WEERT) for n, text in ((2, car), (3, bike))
        ]
        joined = await first.attach(_report(4, car), "boshoven", WEERT)
        assert joined.joined and joined.incident.id == opened[0].incident.id
        again = await first.attach(_report(5, FIRE), "boshoven", WEERT)
        assert again.joined and again.incident.id == fire.incident.id
        db = clients[0][settings.database]
        assert len(await second.open_in("weert-demo", "boshoven")) == 3
        assert await db.open_incidents.count_documents({"claim": True}) <= 1
    finally:
        for client in clients:
            await client.close()


async def test_a_busy_district_is_written_a_few_entries_at_a_time_and_offers_them_all(
    settings: Settings,
) -> None:
    """60 events in one district, one after another: the district's document holds at most
    HEAD_ENTRIES of them, the others are in segments; a process that starts afresh offers
    all 60, a report of the first event joins it, and an incident closed while it sits in a
    segment is offered by no process any more (a new report of it opens another)."""
    client = mongo_client(settings)
    try:
        db = client[settings.database]
        incidents = Incidents(Database(db, ROUTING))
        texts = [f"Auto opengebroken aan de {street.capitalize()}, ruit ingeslagen" for street in STREETS]
        opened = [
            await incidents.attach(_report(n, text, at=T0 + timedelta(minutes=n)), "boshoven", WEERT)
            for n, text in enumerate(texts)
        ]
        head = await db.open_incidents.find_one({"_id": "open:weert-demo:boshoven"})
        assert head is not None and len(head["entries"]) <= HEAD_ENTRIES and len(head["segments"]) >= 3
        fresh = Incidents(Database(db, ROUTING))  # another process: reads every segment
        offered = await fresh.open_in("weert-demo", "boshoven")
        assert sorted(i.id for i in offered) == sorted(a.incident.id for a in opened)
        first_again = _report(100, texts[0], at=T0 + timedelta(minutes=61))
        again = await fresh.attach(first_again, "boshoven", WEERT)
        assert again.joined and again.incident.id == opened[0].incident.id
        await fresh.close(opened[1].incident, "msg_close", T0 + timedelta(minutes=62))
        left = {i.id for i in await incidents.open_in("weert-demo", "boshoven")}
        assert opened[1].incident.id not in left and len(left) == len(texts) - 1
        after = await incidents.attach(
            _report(101, texts[1], at=T0 + timedelta(minutes=63)), "boshoven", WEERT
        )
        assert not after.joined and after.incident.id != opened[1].incident.id
    finally:
        await client.close()


async def test_segments_of_incidents_past_the_window_are_deleted(settings: Settings) -> None:
    """Once a district's segments hold only incidents past the time window, the next
    segment written takes their place: they are deleted, so a district's documents do not
    grow with its history."""
    client = mongo_client(settings)
    try:
        db = client[settings.database]
        incidents = Incidents(Database(db, ROUTING))
        texts = [f"Fietsendief bij de {street.capitalize()}, knipt sloten door" for street in STREETS]
        for n, text in enumerate(texts):
            await incidents.attach(_report(n, text, at=T0 + timedelta(minutes=n)), "boshoven", WEERT)
        later = T0 + timedelta(hours=3)
        for n, text in enumerate(texts[: HEAD_ENTRIES + 1]):
            await incidents.attach(_report(200 + n, text, at=later + timedelta(minutes=n)), "boshoven", WEERT)
        head = await db.open_incidents.find_one({"_id": "open:weert-demo:boshoven"})
        assert head is not None and len(head["segments"]) == 1
        stored = [d["_id"] async for d in db.open_incidents.find({}) if "#" in d["_id"]]
        assert stored == head["segments"]
        offered = await Incidents(Database(db, ROUTING)).open_in("weert-demo", "boshoven")
        assert len(offered) == HEAD_ENTRIES + 1 and all(i.last_seen >= later for i in offered)
    finally:
        await client.close()


async def test_a_district_version_taken_early_and_not_needed_is_given_back(settings: Settings) -> None:
    """A process takes the next version of a report's district while it looks the reports
    up; a redelivered report changes nothing, so that version is given back at once, and
    another process writes the district without waiting for the claim to expire."""
    clients = [mongo_client(settings), mongo_client(settings)]
    try:
        first, second = (Incidents(Database(c[settings.database], ROUTING)) for c in clients)
        await first.attach(_report(1, FIRE), "boshoven", WEERT)
        await first.attach(_report(2, "Fietsendief bij de Kerkstraat, knipt sloten door"), "boshoven", WEERT)
        await first.attach(_report(1, FIRE), "boshoven", WEERT)  # a redelivery: nothing to write
        # Not given back, the version would stay taken for CLAIM_EXPIRES (30 s) and this
        # write would give up after its attempts (about a second).
        car = "Auto opengebroken aan de Molenweg, ruit ingeslagen"
        opened = await asyncio.wait_for(second.attach(_report(3, car), "boshoven", WEERT), timeout=10)
        assert not opened.joined
        db = clients[0][settings.database]
        slot = await db.open_incidents.find_one({"_id": "open:weert-demo:boshoven"})
        assert slot is not None and slot["version"] == 3 and len(slot["entries"]) == 3
        claims = [c["_id"] async for c in db.open_incidents.find({"claim": True})]
        assert claims == ["open:weert-demo:boshoven@3"]  # the one that made the version there
    finally:
        for client in clients:
            await client.close()


async def test_a_report_whose_incident_a_crash_left_unwritten_writes_it_when_redelivered(
    settings: Settings,
) -> None:
    """A report's own document and its incident are written at once; when a crash left the
    report without its incident, the redelivered report writes the incident from its
    district's entry and is attached to it."""
    client = mongo_client(settings)
    try:
        incidents = Incidents(Database(client[settings.database], ROUTING))
        opened = await incidents.attach(_report(1, FIRE), "boshoven", WEERT)
        db = client[settings.database]
        await db.incidents.delete_one({"_id": opened.incident.id})  # as if the crash came first
        fresh = Incidents(Database(client[settings.database], ROUTING))  # the restarted process
        again = await fresh.attach(_report(1, FIRE), "boshoven", WEERT)
        assert again.incident.id == opened.incident.id and not again.joined
        stored = await db.incidents.find_one({"_id": opened.incident.id})
        assert stored is not None and stored["text"] == FIRE and stored.get("closed_at") is None
        assert await db.incident_reports.count_documents({"incident": opened.incident.id}) == 1
    finally:
        await client.close()


async def test_look_alike_reports_from_two_streets_are_two_incidents(settings: Settings) -> None:
    client = mongo_client(settings)
    try:
        incidents = Incidents(Database(client[settings.database], ROUTING))
        here = [_report(n, FIRE) for n in range(20)]
        there = [_report(100 + n, FIRE.replace("Dorpstraat", "Molenweg")) for n in range(20)]
        attached = await asyncio.gather(*(incidents.attach(r, "boshoven", WEERT) for r in here + there))
        assert len({a.incident.id for a in attached[:20]}) == 1
        assert len({a.incident.id for a in attached[20:]}) == 1
        assert attached[0].incident.id != attached[20].incident.id
        later = await incidents.attach(_report(500, FIRE, at=T0 + timedelta(hours=3)), "boshoven", WEERT)
        assert later.incident.id not in {attached[0].incident.id, attached[20].incident.id}
    finally:
        await client.close()


async def test_a_closed_incident_takes_no_new_reports(settings: Settings) -> None:
    client = mongo_client(settings)
    try:
        incidents = Incidents(Database(client[settings.database], ROUTING))
        opened = await incidents.attach(_report(1, FIRE), "boshoven", WEERT)
        found = await incidents.containing("msg_1")
        assert found is not None and found.id == opened.incident.id
        await incidents.close(opened.incident, "msg_close", T0)
        after = await incidents.attach(_report(2, FIRE), "boshoven", WEERT)
        assert after.incident.id != opened.incident.id and not after.joined
    finally:
        await client.close()


async def test_two_processes_telling_one_incidents_groups_tell_each_group_once(settings: Settings) -> None:
    """Two routing processes (two stores, each with its own client) take the telling of the
    same 40 groups of one incident for different reports at once: each group goes to one
    report, both processes hear the same one, and asking again (a redelivery) answers the
    same. The incident then lists the 40 groups with their tellers."""
    clients = [mongo_client(settings), mongo_client(settings)]
    try:
        first, second = (Incidents(Database(c[settings.database], ROUTING)) for c in clients)
        incident_id = (await first.attach(_report(1, FIRE), "boshoven", WEERT)).incident.id
        groups = [("weert-demo", f"groep-{n}") for n in range(40)]
        answers = await asyncio.gather(
            *(
                store.tell([(f"msg_{n}_{k}", incident_id, [group])])
                for n, group in enumerate(groups)
                for k, store in enumerate((first, second, first))
            )
        )
        tellers: dict[tuple[str, str], set[str]] = {}
        for answer in answers:
            for group, teller in answer[incident_id].items():
                tellers.setdefault(group, set()).add(teller)
        assert set(tellers) == set(groups)
        assert all(len(t) == 1 for t in tellers.values()), "a group was told by two reports"
        told = await second.told(incident_id)
        assert {g: {t} for g, t in told.items()} == tellers
        again = await second.tell([(told[groups[3]], incident_id, [groups[3], groups[4]])])
        assert again[incident_id] == {groups[3]: told[groups[3]], groups[4]: told[groups[4]]}
        incident = await first.containing(incident_id)
        assert incident is not None and incident.groups == tuple(sorted(groups))
    finally:
        for client in clients:
            await client.close()


async def test_two_processes_counting_one_groups_hour_lose_nothing(settings: Settings) -> None:
    """Two routing processes count 40 messages each for one group and hour at once, and
    count 10 of them again (redeliveries): the group's hour counts 80, the next hour none.
    (A counter or a set in one document loses most of these on FerretDB v1.)"""
    clients = [mongo_client(settings), mongo_client(settings)]
    try:
        first, second = (GroupRates(Database(c[settings.database], ROUTING)) for c in clients)
        await asyncio.gather(
            *(first.count(["boshoven-noord"], f"a_{n}", T0) for n in range(40)),
            *(second.count(["boshoven-noord", "leuken"], f"b_{n}", T0) for n in range(40)),
            *(second.count(["boshoven-noord"], f"a_{n}", T0) for n in range(10)),
        )
        assert await first.counts(["boshoven-noord", "leuken", "centrum"], T0) == {
            "boshoven-noord": 80,
            "leuken": 40,
        }
        assert await second.counts(["boshoven-noord"], T0 + timedelta(hours=1)) == {}
    finally:
        for client in clients:
            await client.close()

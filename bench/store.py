"""``python -m bench.store``: the database operations of the message path on FerretDB v1,
on its SQLite and its PostgreSQL backend, with 1×, 10× and 100× more documents already
present (1,000 / 10,000 / 100,000 audit entries, deliveries, claims and incident
memberships, and proportionally incidents, group-rate counters, strikes, review items and
held deliveries). The data grows the way it does in a municipality: history accumulates
(older incidents, counters of past hours, decided review items); what an operation should
touch (the open incidents of the last hours, a member's strikes, the deliveries due) does not.

Each operation is timed as the median of many runs, the three sizes taken in turn so that
load from elsewhere on the machine falls on all three alike; the figure is the growth
ratio 100× / 1× (goal ≤ 1.2 on the chosen backend, :data:`DEFAULT_BACKEND`). Operations
marked ``today`` are routing's shapes as written before issue 16 (``$or``, ``$in``, a range
next to an equality that matches the municipality's whole history); they are reported
next to the shapes that replace them and carry no goal. ``make bench`` runs this too; the
figures go into docs/benchmarks.md.

Each backend runs in a FerretDB process of its own started here (the binary that
``deploy/local/stack.sh`` builds), SQLite in a scratch directory, PostgreSQL on the
stack's server (``stack.sh postgres``, which installs the GIN twins of FerretDB's indexes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from buurtalert.channels.stores import HeldDeliveries, Ledger, due_hour
from buurtalert.devkit.testing import repo_root
from buurtalert.moderation.policy import StrikePolicy
from buurtalert.moderation.stores import Strikes
from buurtalert.routing.stores import GroupRates, Incidents
from buurtalert.shared.collections import (
    AUDIT,
    DELIVERIES,
    GROUP_RATES,
    HELD_DELIVERIES,
    INCIDENTS,
    INGEST_CLAIMS,
    REVIEW_ITEMS,
    STRIKES,
)
from buurtalert.shared.models import Delivery, Destination, stable_id
from buurtalert.shared.mongo import Audit, Database, Document
from buurtalert.shared.topics import CHANNELS, INGEST, MODERATION, ROUTING, SERVICES

#: The backend whose figures are checked against the goal: the one that can be flat, and
#: the local stack's default.
DEFAULT_BACKEND = "postgresql"
BACKENDS = ("sqlite", "postgresql")
SCALES = (1, 10, 100)
#: Documents per 1× (audit, deliveries, claims, memberships: 1,000; the rest fewer).
BASE = 1_000
GOAL = 1.2
#: A collection the restructured routing would keep: one document per member message.
MEMBERS = "bench_incident_members"
#: Routing's group rates before they were restructured: one counter document per group and hour.
COUNTERS = "bench_group_counters"
NOW = datetime.now(UTC).replace(microsecond=0)
POLICY = StrikePolicy(expire_after_days=30, warn_at=2, propose_removal_at=3)


Db = AsyncDatabase[Document]


@dataclass
class Operation:
    name: str
    run: Callable[[Db, int, int], Awaitable[object]]  # (database, scale, repetition)
    today: bool = False  # routing's shape before issue 16: reported, no goal


# --- seeding -------------------------------------------------------------------------------


def _delivery(n: int, due: datetime) -> Document:
    destination = Destination(group_id=f"g{n % 20}", channel="email", address="g@example.org")
    delivery = Delivery(
        id=f"held_{n}", message_id=f"m{n}", municipality="m0", destination=destination,
        text="t", rules=("r",), deliver_after=due,
    )  # fmt: skip
    return {
        "_id": delivery.id,
        "due": due,
        "due_hour": due_hour(due),
        "delivery": delivery.model_dump(mode="json"),
    }


async def _insert(db: Db, name: str, docs: list[Document]) -> None:
    """Insert ``docs``, given newest first, oldest first: as in a database that grew, the
    recent documents come last in a table's order (which a scan that stops at the first
    match would otherwise flatter)."""
    docs = docs[::-1]
    for start in range(0, len(docs), 2_000):
        await db[name].insert_many(docs[start : start + 2_000], ordered=False)


async def seed(db: Db, scale: int) -> dict[str, int]:
    """Documents for one size; ids and times chosen so that the operations below find
    what they look for at every size."""
    n = BASE * scale
    incidents = n // 10
    for service in SERVICES:
        await Database(db, service).ensure_indexes()
    await db[INCIDENTS.name].create_index("message_ids")
    await db[INCIDENTS.name].create_index("municipality")
    await db[INCIDENTS.name].create_index("seen_bucket")
    filler = "Verdachte man met rode jas en rugzak probeert deuren aan de Dorpstraat, 112 gebeld. " * 2
    await _insert(
        db,
        AUDIT.name,
        [
            {
                "_id": stable_id("aud", f"m{i}", "ingest", ""),
                "message_id": f"m{i}",
                "stage": "ingest",
                "data": {"author": f"p_{i:032x}", "text": filler},
                "at": NOW - timedelta(minutes=i),
            }
            for i in range(n)
        ],
    )
    # One incident per 10 minutes of history, newest first: the last 2 hours hold 12 at every size.
    await _insert(
        db,
        INCIDENTS.name,
        [
            {
                "_id": f"inc_{i}",
                "municipality": "m0",
                "district": "centrum",
                "category": "suspicious",
                "text": filler,
                "location": None,
                "opened_at": NOW - timedelta(minutes=10 * i + 5),
                "last_seen": NOW - timedelta(minutes=10 * i),
                "seen_bucket": f"m0:{due_hour(NOW - timedelta(minutes=10 * i))}",
                "closed_at": None,
                "message_ids": [f"m{10 * i + k}" for k in range(10)],
                "groups": [{"municipality": "m0", "group": f"g{i % 20}"}],
            }
            for i in range(incidents)
        ],
    )
    await _insert(db, MEMBERS, [{"_id": f"m{i}", "incident": f"inc_{i // 10}"} for i in range(n)])
    hours = max(1, incidents // 20)  # 5 messages counted for each of 20 groups in the past hours
    counted = [(f"g{g}:{due_hour(NOW - timedelta(hours=h))}", h) for h in range(hours) for g in range(20)]
    await _insert(
        db, COUNTERS, [{"_id": key, "messages": [f"m{h}-{k}" for k in range(5)]} for key, h in counted]
    )
    await _insert(
        db,
        GROUP_RATES.name,
        [
            {"_id": f"{key}:m{h}-{k}", "group_hour": key, "at": NOW - timedelta(hours=h)}
            for key, h in counted
            for k in range(5)
        ],
    )
    await _insert(
        db,
        DELIVERIES.name,
        [
            {"_id": f"dlv_{i}", "message_id": f"m{i}", "channel": "email", "group_id": f"g{i % 20}"}
            | {"created_at": NOW}
            for i in range(n)
        ],
    )
    await _insert(db, INGEST_CLAIMS.name, [{"_id": f"m{i}", "at": NOW} for i in range(n)])
    # Held: 5 due now (the previous hour), the rest from the next hour on, over the coming days.
    held = [_delivery(i, NOW - timedelta(minutes=70)) for i in range(5)]
    held += [_delivery(i, NOW + timedelta(hours=1 + i % 160)) for i in range(5, max(6, n // 10))]
    await _insert(db, HELD_DELIVERIES.name, held)
    # Strikes: three per member, more members as the data grows.
    await _insert(
        db,
        STRIKES.name,
        [
            {
                "_id": f"m0:p{i // 3}:s{i}",
                "municipality": "m0",
                "member": f"p{i // 3}",
                "message_id": f"s{i}",
                "group_id": "g0",
                "at": NOW - timedelta(days=i % 3),
            }
            for i in range(n // 10)
        ],
    )
    # Review items: decided ones accumulate, five are open.
    await _insert(
        db,
        REVIEW_ITEMS.name,
        [
            {
                "_id": f"item_{i}",
                "municipality": "m0",
                "state": "open" if i < 5 else "decided",
                "version": 1,
                "published": i >= 5,
                "claim": None,
            }
            for i in range(n // 10)
        ],
    )
    return {"audit": n, "incidents": incidents, "memberships": n, "held": len(held)}


# --- the operations ------------------------------------------------------------------------


def _pick(scale: int, rep: int) -> int:
    """A document spread over the whole collection (not only the first ones written)."""
    return random.Random(rep * 7919 + scale).randrange(BASE * scale)


def operations() -> list[Operation]:
    def db_as(db: Db, who: str) -> Database:
        return Database(db, who)

    async def audit_missing(db: Db, scale: int, rep: int) -> object:
        return await Audit(db_as(db, INGEST)).recorded(f"absent-{rep}", "ingest")

    async def audit_present(db: Db, scale: int, rep: int) -> object:
        found = await Audit(db_as(db, INGEST)).entry(f"m{_pick(scale, rep)}", "ingest")
        assert found is not None
        return found

    async def audit_records(db: Db, scale: int, rep: int) -> object:
        audit = Audit(db_as(db, INGEST))
        written = await asyncio.gather(
            *(audit.record(f"new-{rep}-{k}", "ingest", {"k": k}, once=True) for k in range(50))
        )
        assert all(written)
        return written

    async def incident_by_id(db: Db, scale: int, rep: int) -> object:
        found = await db[INCIDENTS.name].find_one({"_id": f"inc_{_pick(scale, rep) // 10}"})
        assert found is not None
        return found

    async def incident_by_message_or(db: Db, scale: int, rep: int) -> object:
        return await Incidents(db_as(db, ROUTING)).containing(f"m{_pick(scale, rep)}")

    async def incident_by_message_array(db: Db, scale: int, rep: int) -> object:
        found = await db[INCIDENTS.name].find_one({"message_ids": f"m{_pick(scale, rep)}"})
        assert found is not None
        return found

    async def incident_by_member_document(db: Db, scale: int, rep: int) -> object:
        member = await db[MEMBERS].find_one({"_id": f"m{_pick(scale, rep)}"})
        assert member is not None
        return await db[INCIDENTS.name].find_one({"_id": member["incident"]})

    async def open_candidates_today(db: Db, scale: int, rep: int) -> object:
        since = NOW - timedelta(hours=2)
        cursor = db[INCIDENTS.name].find(
            {"municipality": "m0", "closed_at": None, "last_seen": {"$gte": since}}
        )
        found = [d async for d in cursor.limit(100)]
        assert len(found) >= min(12, BASE * scale // 10), len(found)
        return found

    async def open_candidates_by_hour(db: Db, scale: int, rep: int) -> object:
        found = []
        for hours_ago in (2, 1, 0):
            bucket = f"m0:{due_hour(NOW - timedelta(hours=hours_ago))}"
            found += [d async for d in db[INCIDENTS.name].find({"seen_bucket": bucket})]
        since = NOW - timedelta(hours=2)
        found = [d for d in found if d["last_seen"] >= since and d["closed_at"] is None]
        assert len(found) >= min(12, BASE * scale // 10), len(found)
        return found

    groups = [f"g{g}" for g in range(20)]

    async def rates_in(db: Db, scale: int, rep: int) -> object:
        keys = [f"{g}:{due_hour(NOW)}" for g in groups]
        return [d async for d in db[COUNTERS].find({"_id": {"$in": keys}})]

    async def rates_counted(db: Db, scale: int, rep: int) -> object:
        found = await GroupRates(db_as(db, ROUTING)).counts(groups, NOW)
        assert len(found) == 20 and all(n >= 5 for n in found.values()), found
        return found

    async def rate_count(db: Db, scale: int, rep: int) -> object:
        await GroupRates(db_as(db, ROUTING)).count(["g1"], f"r{rep}", NOW)
        return None

    async def held_due(db: Db, scale: int, rep: int) -> object:
        found = await _held(db).due(NOW)
        assert len(found) == 5, len(found)
        return found

    async def held_due_today(db: Db, scale: int, rep: int) -> object:
        cursor = db[HELD_DELIVERIES.name].find({"due": {"$lte": NOW}}).sort("due", 1).limit(100)
        return [d async for d in cursor]

    async def ledger_find(db: Db, scale: int, rep: int) -> object:
        found = await Ledger(db_as(db, CHANNELS), Audit(db_as(db, CHANNELS))).find(f"dlv_{_pick(scale, rep)}")
        assert found is not None
        return found

    async def claim_missing(db: Db, scale: int, rep: int) -> object:
        return await db[INGEST_CLAIMS.name].find_one({"_id": f"new-{rep}"})

    async def update_incident(db: Db, scale: int, rep: int) -> object:
        result = await db[INCIDENTS.name].update_one(
            {"_id": f"inc_{_pick(scale, rep) // 10}"}, {"$set": {"district": f"d{rep}"}}
        )
        assert result.matched_count == 1
        return result

    async def strikes(db: Db, scale: int, rep: int) -> object:
        member = f"p{_pick(scale, rep) // 30}"
        return await Strikes(db_as(db, MODERATION)).record("m0", member, f"s-{member}", "g0", NOW, POLICY)

    async def review_open(db: Db, scale: int, rep: int) -> object:
        found = [d async for d in db[REVIEW_ITEMS.name].find({"municipality": "m0", "state": "open"})]
        assert len(found) == 5
        return found

    async def review_unpublished(db: Db, scale: int, rep: int) -> object:
        return [d async for d in db[REVIEW_ITEMS.name].find({"state": "decided", "published": False})]

    return [
        Operation("audit: find_one of a missing _id", audit_missing),
        Operation("audit: find_one of a present _id", audit_present),
        Operation("audit: 50 entries recorded at once (one insert_many)", audit_records),
        Operation("incident by id", incident_by_id),
        Operation(
            "incident by member message: $or of _id and message_ids", incident_by_message_or, today=True
        ),
        Operation(
            "incident by member message: message_ids equality (indexed array)", incident_by_message_array
        ),
        Operation("incident by member message: membership document by _id", incident_by_member_document),
        Operation(
            "open incidents, last 2 h: municipality + closed_at None + last_seen range",
            open_candidates_today,
            today=True,
        ),
        Operation(
            "open incidents, last 2 h: equality on an hour bucket (3 queries)", open_candidates_by_hour
        ),
        Operation("group rates of 20 groups: hourly counters, _id $in", rates_in, today=True),
        Operation("group rates of 20 groups: 20 counts on group_hour, concurrently", rates_counted),
        Operation("group rate counted: one document inserted per message", rate_count),
        Operation("held deliveries due: due range, sorted", held_due_today, today=True),
        Operation("held deliveries due: HeldDeliveries.due (due_hour equality)", held_due),
        Operation("ledger: delivery by _id", ledger_find),
        Operation("dedup: ingest claim of a new id (missing _id)", claim_missing),
        Operation("update of an incident by _id", update_incident),
        Operation("strikes: record and count a member's (member equality)", strikes),
        Operation("review queue: open items of a municipality (state equality)", review_open),
        Operation("review: decided, unpublished (published equality)", review_unpublished),
    ]


_HELD: dict[int, HeldDeliveries] = {}


def _held(db: Db) -> HeldDeliveries:
    """One HeldDeliveries per database, as one per process: its first call looks back days."""
    # The seeded due ones are at most two hours old: a look-back of days would only lengthen
    # the first call, which the steady state this measures does not repeat.
    return _HELD.setdefault(id(db), HeldDeliveries(Database(db, CHANNELS), lookback=timedelta(hours=3)))


# --- FerretDB processes ----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _stack(*args: str) -> str:
    script = repo_root() / "deploy" / "local" / "stack.sh"
    done = subprocess.run([str(script), *args], check=True, capture_output=True, text=True)
    return done.stdout


def _psql() -> str:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"))
    return str(found[-1]) if found else shutil.which("psql") or "psql"


def postgresql_url() -> str:
    """FerretDB's database on the local stack's PostgreSQL (started if it is not running)."""
    return _stack("postgres").strip().split("=", 1)[1].rstrip("/") + "/ferretdb"


def analyze(postgresql_url: str, *, checkpoint: bool = False) -> None:
    """``VACUUM ANALYZE``: the statistics autovacuum keeps in a running database, here
    at once, so that the planner has them and autovacuum does not run during the timing;
    with ``checkpoint``, the writes before it are also flushed now rather than then."""
    statements = ["VACUUM ANALYZE", *(["CHECKPOINT"] if checkpoint else [])]
    subprocess.run([_psql(), postgresql_url, "-q", *(a for s in statements for a in ("-c", s))], check=True)


def start_ferretdb(backend: str, scratch: Path) -> tuple[subprocess.Popen[bytes], str, str | None]:
    local = Path(os.environ.get("BUURTALERT_LOCAL_DIR", repo_root() / ".local"))
    binary = local / "ferretdb" / "bin" / "ferretdb"
    port = _free_port()
    postgresql: str | None = None
    if backend == "sqlite":
        data = scratch / "sqlite"
        shutil.rmtree(data, ignore_errors=True)
        args = ["-handler", "sqlite", "-sqlite-dir", f"{data}/"]
    else:
        postgresql = postgresql_url()
        args = ["-handler", "postgresql", "-postgresql-url", postgresql]
    with (scratch / f"ferretdb-{backend}.log").open("wb") as log:  # the child keeps its own copy
        process = subprocess.Popen(
            [str(binary), "-listen-addr", f"127.0.0.1:{port}", *args], stdout=log, stderr=log
        )
    for _ in range(120):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.25).close()
            break
        except OSError:
            time.sleep(0.25)
    else:
        process.terminate()
        raise RuntimeError(f"FerretDB ({backend}) did not start; see {scratch}/ferretdb-{backend}.log")
    return process, f"mongodb://127.0.0.1:{port}/", postgresql


# --- measuring -----------------------------------------------------------------------------


async def measure(url: str, reps: int, budget: float, postgresql: str | None) -> dict[str, Any]:
    client: AsyncMongoClient[Document] = AsyncMongoClient(url, tz_aware=True)
    tag = uuid.uuid4().hex[:8]
    dbs = {scale: client[f"bench_store_{tag}_{scale}x"] for scale in SCALES}
    try:
        seeded = {}
        for scale, db in dbs.items():
            started = time.perf_counter()
            counts = await seed(db, scale)
            seeded[f"{scale}x"] = {**counts, "seconds": round(time.perf_counter() - started, 1)}
            print(f"    seeded {scale:>3}×: {counts} in {seeded[f'{scale}x']['seconds']} s", flush=True)
        if postgresql:
            analyze(postgresql)
        for db in dbs.values():  # the first call of HeldDeliveries looks back: not the steady state
            await _held(db).due(NOW)
        figures: dict[str, Any] = {}
        for op in operations():
            times: dict[int, list[float]] = {scale: [] for scale in SCALES}
            spent = {scale: 0.0 for scale in SCALES}
            for rep in range(-3, reps):  # the first three warm up
                for scale, db in dbs.items():
                    if rep >= 3 and spent[scale] > budget:  # enough runs of a slow one
                        continue
                    started = time.perf_counter()
                    await op.run(db, scale, rep)
                    took = time.perf_counter() - started
                    if rep >= 0:
                        times[scale].append(took)
                        spent[scale] += took
            ms = {scale: statistics.median(t) * 1000 for scale, t in times.items()}
            growth = ms[SCALES[-1]] / ms[SCALES[0]]
            figures[op.name] = {
                **{f"{scale}x_ms": round(v, 3) for scale, v in ms.items()},
                "growth": round(growth, 2),
                "runs": {f"{scale}x": len(t) for scale, t in times.items()},
                "today": op.today,
            }
            print(
                f"    {op.name[:74]:74s} "
                + " ".join(f"{ms[s]:9.2f}" for s in SCALES)
                + f"  ×{growth:7.2f}{'  (today)' if op.today else ''}",
                flush=True,
            )
        return {"seeded": seeded, "operations": figures}
    finally:
        for db in dbs.values():
            await client.drop_database(db.name)
        await client.close()


async def store_benchmark(
    backends: tuple[str, ...] = BACKENDS, reps: int = 25, budget: float = 4.0, scratch: Path | None = None
) -> dict[str, Any]:
    scratch = scratch or Path(".local/bench/store")
    scratch.mkdir(parents=True, exist_ok=True)
    _stack("install")
    results: dict[str, Any] = {"chosen": DEFAULT_BACKEND, "goal": GOAL, "base": BASE, "backends": {}}
    for backend in backends:
        print(f"store: FerretDB v1 on {backend}, ms per operation at " + ", ".join(f"{s}×" for s in SCALES))
        process, url, postgresql = start_ferretdb(backend, scratch)
        try:
            results["backends"][backend] = await measure(url, reps, budget, postgresql)
        finally:
            process.terminate()
            process.wait(10)
    return results


def goals_met(results: dict[str, Any]) -> list[tuple[str, float, bool]]:
    """(operation, growth, met) of every operation with a goal on the chosen backend."""
    chosen = results["backends"].get(results["chosen"], {}).get("operations", {})
    return [
        (name, f["growth"], f["growth"] <= results["goal"]) for name, f in chosen.items() if not f["today"]
    ]


def markdown(results: dict[str, Any]) -> str:
    """The figures as a table per backend (ms per operation at each size, growth 100×/1×)."""
    lines = []
    for backend, figures in results["backends"].items():
        chosen = " (the one checked)" if backend == results["chosen"] else ""
        lines += [
            f"#### FerretDB v1 on {backend}{chosen}",
            "",
            "| operation | " + " | ".join(f"{s}× ms" for s in SCALES) + " | 100×/1× |",
            "|---|" + "---:|" * (len(SCALES) + 1),
        ]
        for name, f in figures["operations"].items():
            label = f"{name} *(today's shape)*" if f["today"] else name
            cells = " | ".join(f"{f[f'{s}x_ms']:.2f}" for s in SCALES)
            lines.append(f"| {label} | {cells} | {f['growth']:.2f} |")
        lines.append("")
    return "\n".join(lines)


BEGIN = "<!-- bench:store:begin (generated by `python -m bench.store`; edits here are replaced) -->"
END = "<!-- bench:store:end -->"


def write_section(results: dict[str, Any], page: Path) -> None:
    text = page.read_text() if page.exists() else "# Benchmarks\n"
    body = f"{BEGIN}\n\n{markdown(results)}\n{END}\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + body + "\n" + rest.split(END, 1)[1].lstrip("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + body
    page.write_text(text)


def run(argv: list[str] | None = None) -> int:
    global BASE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backend", choices=BACKENDS, action="append", help="only this backend (repeatable)")
    parser.add_argument("--reps", type=int, default=25)
    parser.add_argument("--budget", type=float, default=4.0, help="seconds per operation and size, at most")
    parser.add_argument(
        "--base", type=int, default=BASE, help="audit entries at 1× (a smaller one for a trial)"
    )
    parser.add_argument("--output", type=Path, default=Path(".local/bench/store.json"))
    parser.add_argument("--report", type=Path, default=Path("docs/benchmarks.md"))
    args = parser.parse_args(argv)
    BASE = args.base
    results = asyncio.run(store_benchmark(tuple(args.backend or BACKENDS), args.reps, args.budget))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    write_section(results, args.report)
    checked = goals_met(results)
    for name, growth, met in checked:
        print(f"  {'ok    ' if met else 'MISSED'} {results['chosen']}: {name}: ×{growth:g} (goal ≤ {GOAL:g})")
    return 0 if checked and all(met for _, _, met in checked) else 1


if __name__ == "__main__":
    sys.exit(run())

"""MongoDB collections are declared once (shared/collections.py) and the code keeps to
the declarations: only the owner writes a collection, only declared readers read it,
and nothing reaches the database except through ``Database``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient

from buurtalert.shared import collections
from buurtalert.shared.collections import (
    COLLECTIONS,
    DIRECTORY,
    EVERY_SERVICE,
    MEDIA,
    OPERATOR,
    STRIKES,
    Collection,
    Retention,
)
from buurtalert.shared.mongo import CollectionNotAllowed, Database, ReadOnly
from buurtalert.shared.topics import SERVICES
from tests.unit.test_layout import PACKAGES, ROOT, sources

DECLARED = {name: value for name, value in vars(collections).items() if isinstance(value, Collection)}
PARTIES = {*SERVICES, DIRECTORY, OPERATOR}


def test_every_collection_is_declared_once_with_a_known_owner_and_readers() -> None:
    """Names are unique; owners and readers are services or the directory tool."""
    names = [c.name for c in COLLECTIONS]
    assert len(names) == len(set(names))
    assert set(DECLARED.values()) == set(COLLECTIONS), "a Collection constant is missing from COLLECTIONS"
    for c in COLLECTIONS:
        assert c.owner in PARTIES | {EVERY_SERVICE}, c
        assert set(c.readers) <= PARTIES, c
        assert c.holds and isinstance(c.retention, Retention)


def database_calls(path: Path) -> list[tuple[str, str, int]]:
    """``(method, constant, line)`` of every ``.write(X)`` / ``.read(X)`` naming a declared collection."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in ("write", "read") or len(node.args) != 1:
            continue
        arg = node.args[0]
        name = arg.id if isinstance(arg, ast.Name) else arg.attr if isinstance(arg, ast.Attribute) else None
        if name in DECLARED:
            found.append((node.func.attr, name, node.lineno))
    return found


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_writes_only_what_it_owns_and_reads_only_what_it_is_declared_to(service: str) -> None:
    """Every call site in a service's code, checked against the declarations."""
    wrong = []
    for path in sources(service):
        for method, name, line in database_calls(path):
            collection = DECLARED[name]
            write = method == "write"
            allowed = collection.writable_by(service) if write else collection.readable_by(service)
            if not allowed:
                wrong.append(f"{path.relative_to(ROOT)}:{line}: {service} may not {method} {collection.name}")
    assert not wrong, "\n".join(wrong)


def test_nothing_reaches_the_database_except_through_database() -> None:
    """No production module but shared/mongo.py holds a PyMongo database or client, so an
    undeclared collection cannot be touched by name."""
    mongo = PACKAGES["shared"] / "mongo.py"
    wrong = []
    for package in PACKAGES:
        if package == "devkit":
            continue
        for path in sources(package):
            if path == mongo:
                continue
            text = path.read_text(encoding="utf-8")
            for forbidden in ("AsyncDatabase", "AsyncMongoClient", "mongo_client(", "get_collection("):
                if forbidden in text:
                    wrong.append(f"{path.relative_to(ROOT)} uses {forbidden}")
    assert not wrong, "\n".join(wrong)


def offline_database(who: str) -> Database:
    """A Database over a client that never connects (PyMongo connects lazily)."""
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient("mongodb://127.0.0.1:1/", connect=False)
    return Database(client["offline"], who)


def test_database_refuses_an_undeclared_collection() -> None:
    """A collection made up on the spot is neither readable nor writable."""
    rogue = Collection("rogue", "moderation", (), "anything", Retention.RECORD, personal_data=False)
    db = offline_database("moderation")
    with pytest.raises(CollectionNotAllowed, match="not declared"):
        db.write(rogue)
    with pytest.raises(CollectionNotAllowed, match="not declared"):
        db.read(rogue)


def test_only_the_owner_writes_and_only_declared_readers_read() -> None:
    """Channels reads ingest's media but cannot write them; routing cannot even read them."""
    assert isinstance(offline_database("channels").read(MEDIA), ReadOnly)
    with pytest.raises(CollectionNotAllowed, match="owner is ingest"):
        offline_database("channels").write(MEDIA)
    with pytest.raises(CollectionNotAllowed, match="not a declared reader"):
        offline_database("routing").read(MEDIA)
    assert offline_database("moderation").write(STRIKES).name == "strikes"


def test_a_reader_gets_no_write_methods() -> None:
    """What ``read`` answers offers lookups only."""
    view = offline_database("channels").read(MEDIA)
    for method in ("insert_one", "insert_many", "update_one", "replace_one", "delete_one", "drop"):
        assert not hasattr(view, method), method


def test_the_operator_reads_every_collection_and_alone_erases() -> None:
    """The operator's commands read everything and get delete access for retention and
    erasure; no service gets it, and the operator writes only what it owns."""
    operator = offline_database(OPERATOR)
    for c in COLLECTIONS:
        assert isinstance(operator.read(c), ReadOnly)
        assert operator.erasable(c) is not None
        with pytest.raises(CollectionNotAllowed, match="only the operator"):
            offline_database("ingest").erasable(c)
    with pytest.raises(CollectionNotAllowed, match="owner is ingest"):
        operator.write(MEDIA)


def test_every_dated_collection_names_its_date_field_and_contacts_wait_for_opt_out() -> None:
    """Retention purges by a declared date field; contacts and memberships last until the
    person opts out or is erased, and configuration until the operator replaces it."""
    for c in COLLECTIONS:
        if c.retention in (Retention.CONTACT, Retention.CONFIGURATION):
            assert c.dated_by is None, c
    assert all(c.dated_by for c in COLLECTIONS if c.retention in (Retention.RAW_INPUT, Retention.STRIKE))

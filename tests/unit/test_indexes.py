"""Flat cost: every filter the code gives the database matches by equality on ``_id`` or
on an index its collection declares (``Collection.indexes``), the only lookups FerretDB v1
hands to an index (docs/benchmarks.md, "Store"). Checked on the source, as
``test_collections.py`` checks the call sites, so a new query that would scan fails here."""

from __future__ import annotations

import ast
from pathlib import Path

from buurtalert.shared import collections
from buurtalert.shared.collections import COLLECTIONS, Collection
from buurtalert.shared.settings import Settings
from buurtalert.shared.topics import SERVICES
from tests.unit.test_layout import PACKAGES, ROOT, sources

DECLARED = {name: value for name, value in vars(collections).items() if isinstance(value, Collection)}
QUERIES = {
    "find",
    "find_one",
    "update_one",
    "update_many",
    "replace_one",
    "delete_one",
    "delete_many",
    "count_documents",
    "find_one_and_update",
    "find_one_and_replace",
    "find_one_and_delete",
}

#: Filters allowed to scan, each with its reason: off the message path, or to be restructured.
EXEMPT = {
    ("shared/src/buurtalert/shared/ops.py", "*"): "the operator's commands (status, erasure, purge), by hand",
    ("shared/src/buurtalert/shared/mongo.py", "history"): "for people and tests, not the message path",
    ("shared/src/buurtalert/shared/mongo.py", "trail"): "for people and tests, not the message path",
    ("services/channels/src/buurtalert/channels/stores.py", "_adopt"): "once per process, at start-up",
    ("services/review/src/buurtalert/review/stores.py", "passed"): (
        "a periodic check, off the message path; review_deadlines holds only open urgent items"
    ),
    ("services/review/src/buurtalert/review/effect/stores.py", "*"): (
        "the effect report and dashboard, asked for by people, off the message path; bounded by "
        "the period and streamed"
    ),
}


def _collection_of(node: ast.expr) -> str | None:
    """``C`` of ``<db>.write(C)``, ``<db>.read(C)`` or ``<db>.erasable(C)``."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("write", "read", "erasable")
        and len(node.args) == 1
    ):
        arg = node.args[0]
        name = arg.id if isinstance(arg, ast.Name) else arg.attr if isinstance(arg, ast.Attribute) else None
        if name in DECLARED:
            return name
    return None


def _target_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
        return f"self.{node.attr}"
    return None


def _pushable(value: ast.expr) -> bool:
    """An equality FerretDB pushes down: a scalar, or ``{"$eq": scalar}``; not None, a list,
    a sub-document or an operator."""
    if isinstance(value, ast.Constant):
        return value.value is not None
    if isinstance(value, (ast.List, ast.Tuple, ast.Set, ast.ListComp)):
        return False
    if isinstance(value, ast.Dict):
        keys = [k.value for k in value.keys if isinstance(k, ast.Constant)]
        return keys == ["$eq"] and _pushable(value.values[0])
    return True  # a name, a call, an f-string: a scalar in this code base


def _indexed(query: ast.Dict, collection: Collection) -> bool:
    for key, value in zip(query.keys, query.values, strict=True):
        if isinstance(key, ast.Constant) and key.value in ("_id", *collection.indexes) and _pushable(value):
            return True
    return False


def filters(path: Path) -> list[tuple[str, int, str, ast.expr]]:
    """``(function, line, collection constant, filter)`` of every query on a declared collection."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    receivers: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            name, collection = _target_name(node.targets[0]), _collection_of(node.value)
            if name and collection:
                receivers[name] = collection
    found = []
    for function in ast.walk(tree):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        dicts = {
            node.targets[0].id: node.value
            for node in ast.walk(function)
            if isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and isinstance(node.value, ast.Dict)
        }
        for node in ast.walk(function):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr not in QUERIES:
                continue
            receiver = node.func.value
            name = _target_name(receiver)
            collection = _collection_of(receiver) or (receivers.get(name) if name else None)
            if collection is None:
                continue  # not a collection (a store's own method of the same name)
            query = (
                node.args[0]
                if node.args
                else next((k.value for k in node.keywords if k.arg == "filter"), None)
            )
            if isinstance(query, ast.Name):
                query = dicts.get(query.id, query)
            if query is not None:
                found.append((function.name, node.lineno, collection, query))
    return found


def production_sources() -> list[Path]:
    return [path for package in PACKAGES if package != "devkit" for path in sources(package)]


def test_every_filter_is_by_id_or_a_declared_index() -> None:
    """Each find/update/delete/count filter on a collection has an equality on ``_id`` or on
    one of the collection's declared indexes, unless exempted above with its reason."""
    wrong, checked = [], 0
    for path in production_sources():
        relative = str(path.relative_to(ROOT))
        for function, line, name, query in filters(path):
            if (relative, "*") in EXEMPT or (relative, function) in EXEMPT:
                continue
            checked += 1
            collection = DECLARED[name]
            if not isinstance(query, ast.Dict):
                wrong.append(f"{relative}:{line}: a filter on {collection.name} the check cannot read")
            elif not _indexed(query, collection):
                wrong.append(
                    f"{relative}:{line}: {ast.unparse(query)} on {collection.name} has no equality on _id "
                    f"or on a declared index {collection.indexes}"
                )
    assert not wrong, "\n".join(wrong)
    assert checked >= 20, f"only {checked} filters found: the check no longer sees the code"


def test_the_check_catches_a_scan() -> None:
    """A range, ``$in``, ``$or``, None or an undeclared field does not count as indexed."""
    held = collections.HELD_DELIVERIES
    for scan in (
        '{"due": {"$lte": now}}',
        '{"_id": {"$in": ids}}',
        '{"$or": [{"_id": ref}, {"due_hour": ref}]}',
        '{"due_hour": None}',
        '{"delivery": x}',
    ):
        query = ast.parse(scan, mode="eval").body
        assert isinstance(query, ast.Dict)
        assert not _indexed(query, held), scan
    for flat in (
        '{"_id": key, "claim.by": user}',
        '{"due_hour": h, "due": {"$lte": now}}',
        '{"_id": {"$eq": k}}',
    ):
        query = ast.parse(flat, mode="eval").body
        assert isinstance(query, ast.Dict)
        assert _indexed(query, held), flat


def test_every_exemption_is_still_needed() -> None:
    """An exemption whose function no longer queries (restructured) is removed from EXEMPT."""
    seen = {
        (str(path.relative_to(ROOT)), function)
        for path in production_sources()
        for function, _, _, _ in filters(path)
    }
    stale = [key for key in EXEMPT if key[1] != "*" and key not in seen]
    assert not stale, f"exemptions without a query any more: {stale}"


def test_declared_indexes_are_top_level_fields() -> None:
    """FerretDB v1 pushes down no dotted path, and ``_id`` is always indexed."""
    for collection in COLLECTIONS:
        assert len(set(collection.indexes)) == len(collection.indexes), collection.name
        for field in collection.indexes:
            assert field and "." not in field and not field.startswith("$") and field != "_id", (
                collection,
                field,
            )


def test_no_code_sends_many_update_statements_in_one_command() -> None:
    """FerretDB v1 runs the statements of one update command holding a backend connection for
    each until the last (its handler closes each statement's iterator at the end), so a
    ``bulk_write`` of 100 updates takes its whole SQLite pool and hangs it for good (found in
    a goroutine dump: 100 open iterators, the update waiting for a 101st connection).
    Updates go one statement per command (``shared.mongo.one_statement_each``)."""
    found = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for package in PACKAGES
        for path in sources(package)
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute) and node.attr == "bulk_write"
    ]
    assert found == []


def test_every_process_together_stays_under_ferretdbs_own_pool() -> None:
    """Concurrent updates deadlock FerretDB v1 once they are as many as its pool's
    connections (100 per database on SQLite; ``pool_max_conns=90`` on PostgreSQL in
    deploy/local/stack.sh): the five services' client pools together stay under it, with room
    for the commands an operator runs beside them."""
    assert Settings().mongo_pool_size * len(SERVICES) <= 80
    assert "pool_max_conns=90" in (ROOT / "deploy/local/stack.sh").read_text()

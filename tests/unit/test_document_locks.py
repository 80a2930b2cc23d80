"""DocumentLocks: one update at a time per document in a process (FerretDB v1 writes a
whole document back, so two concurrent updates of one document can lose one)."""

from __future__ import annotations

import asyncio

from buurtalert.shared.mongo import DocumentLocks


async def test_updates_of_one_document_take_turns_and_of_others_do_not_wait() -> None:
    locks = DocumentLocks()
    inside: dict[str, int] = {"inc_a": 0, "inc_b": 0}
    most: dict[str, int] = {"inc_a": 0, "inc_b": 0}

    async def update(key: str) -> None:
        async with locks.hold(key):
            inside[key] += 1
            most[key] = max(most[key], inside[key])
            await asyncio.sleep(0.01)
            inside[key] -= 1

    started = asyncio.get_running_loop().time()
    await asyncio.gather(*(update("inc_a") for _ in range(5)), *(update("inc_b") for _ in range(5)))
    elapsed = asyncio.get_running_loop().time() - started
    assert most == {"inc_a": 1, "inc_b": 1}
    assert elapsed < 0.09, "two documents' updates ran side by side (5 turns each, not 10)"
    assert len(locks) == 0, "no lock is kept for documents no longer in use"


async def test_a_failed_update_releases_its_document() -> None:
    locks = DocumentLocks()
    try:
        async with locks.hold("inc_a"):
            raise RuntimeError("the database failed")
    except RuntimeError:
        pass
    async with asyncio.timeout(1):
        async with locks.hold("inc_a"):
            pass
    assert len(locks) == 0

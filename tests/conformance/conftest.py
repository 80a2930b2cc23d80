"""What the built-in adapters' conformance tests share: the stand-ins a check starts
(a mailbox, a served emulator or receiver) stop when the check ends."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest


@pytest.fixture(autouse=True)
async def stand_ins(request: pytest.FixtureRequest) -> AsyncIterator[contextlib.AsyncExitStack]:
    """An exit stack for this check's stand-ins, also given to the test class as
    ``self.stand_ins``, since the kit's ``adapter_against`` takes no fixtures."""
    async with contextlib.AsyncExitStack() as stack:
        if request.instance is not None:
            request.instance.stand_ins = stack
        yield stack

"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from buurtalert.shared.settings import Settings
from tests.conftest import TEST_FAILED
from tests.review_support import ReviewService, running_review


@pytest.fixture
async def review(
    settings: Settings, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[ReviewService]:
    """The review service as a process on this test's broker and database (its log printed
    if the test failed)."""
    async with running_review(
        settings, tmp_path, failed=lambda: request.node.stash.get(TEST_FAILED, False)
    ) as service:
        yield service

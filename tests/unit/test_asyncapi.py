"""The committed AsyncAPI documents match what the services' code declares."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from buurtalert.shared.service import asyncapi_document, service_factories
from buurtalert.shared.settings import Settings
from buurtalert.shared.topics import consumed_by, owned_by

DOCS = Path(__file__).parents[2] / "docs" / "asyncapi"
DEMO = Path(__file__).parents[2] / "deploy" / "demo" / "weert" / "municipality.yaml"


@pytest.mark.parametrize("service", ["ingest", "moderation", "routing", "channels"])
def test_committed_asyncapi_document_is_up_to_date(service: str) -> None:
    """Regenerating the document from code gives the committed file (run `make asyncapi`)."""
    app = service_factories()[service](Settings(topic_prefix="", municipality_file=DEMO))
    generated = json.dumps(asyncapi_document(service, app), indent=2, sort_keys=True) + "\n"
    assert (DOCS / f"{service}.json").read_text() == generated, "stale: run `make asyncapi`"


@pytest.mark.parametrize("service", ["ingest", "moderation", "routing", "channels"])
def test_asyncapi_channels_agree_with_the_topology(service: str) -> None:
    """A service publishes exactly the topics it owns and consumes those it is declared to."""
    document = json.loads((DOCS / f"{service}.json").read_text())
    published = {c.rsplit(":", 1)[0] for c in document["channels"] if c.endswith(":publish")}
    consumed = {c.rsplit(":", 1)[0] for c in document["channels"] if c.endswith(":consume")}
    assert published == {t.name for t in owned_by(service)}
    assert consumed == {t.name for t in consumed_by(service)}

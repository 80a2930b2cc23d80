"""What every service has in common: how it is found, built and run.

A service is a distribution that registers ``create_app(settings) -> FastStream``
under the entry-point group ``buurtalert.services``; ``buurtalert run NAME`` finds
it there. Nothing here knows the services by name.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from faststream import FastStream
from faststream.asgi import AsgiFastStream
from faststream.specification import AsyncAPI

from buurtalert.shared.settings import Settings
from buurtalert.shared.topics import TOPICS, Topic, retry_topic

SERVICES_GROUP = "buurtalert.services"
#: A service's app: FastStream, or AsgiFastStream where it also serves HTTP.
App = FastStream | AsgiFastStream
AppFactory = Callable[[Settings], App]


def service_factories() -> dict[str, AppFactory]:
    return {ep.name: ep.load() for ep in entry_points(group=SERVICES_GROUP)}


def asyncapi_document(name: str, app: App) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of a service, with topic names unprefixed."""
    assert app.brokers
    spec = AsyncAPI(
        *app.brokers,
        title=f"buurtalert {name}",
        version="0.1.0",
        description=f"The {name} service of buurtalert; topics are shown without a prefix.",
    )
    document: dict[str, Any] = json.loads(spec.to_specification().to_json())
    _document_batch_payloads(document, (*TOPICS, retry_topic(name)))
    return document


def _document_batch_payloads(document: dict[str, Any], topics: tuple[Topic, ...]) -> None:
    """A batch subscriber reads its records undecoded (``Reliable.batch_subscriber``), so
    FastStream cannot tell their type: take it from the topology, as a batch of it."""
    schemas: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    for topic in topics:
        title = f"{topic.name}:consume:Message:Payload"
        if title in schemas and set(schemas[title]) == {"title"}:
            model = topic.payload.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, definition in model.pop("$defs", {}).items():
                schemas.setdefault(name, definition)
            schemas.setdefault(topic.payload.__name__, model)
            ref = {"$ref": f"#/components/schemas/{topic.payload.__name__}"}
            schemas[title] = {"title": title, "type": "array", "items": ref}

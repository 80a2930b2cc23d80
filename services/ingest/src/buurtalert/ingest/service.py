"""The ingest service: HTTP in, Kafka out."""

from __future__ import annotations

import hmac

from faststream.asgi import AsgiFastStream
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from buurtalert.ingest.web import InvalidReport, normalise, parse_report, raw_id
from buurtalert.shared.contacts import Contacts
from buurtalert.shared.kafka import create_broker, topic_publisher
from buurtalert.shared.logging import APP_LOGGER, bound, get_logger
from buurtalert.shared.models import Quarantined, stable_id
from buurtalert.shared.mongo import Audit, ProcessedKeys, mongo_client
from buurtalert.shared.settings import ApiClient, Municipality, Settings, load_municipality
from buurtalert.shared.topics import INGEST, INGEST_QUARANTINE, MESSAGES_INBOUND

log = get_logger(__name__)


def _client_for(request: Request, municipality: Municipality) -> ApiClient | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    for client in municipality.api_clients:
        if hmac.compare_digest(token.encode(), client.token.get_secret_value().encode()):
            return client
    return None


def create_app(settings: Settings) -> AsgiFastStream:
    municipality = load_municipality(settings.municipality_file)
    broker = create_broker(settings, INGEST)
    db = mongo_client(settings)[settings.database]
    audit = Audit(db)
    seen = ProcessedKeys(db, INGEST)
    contacts = Contacts(db)
    inbound = topic_publisher(broker, settings, MESSAGES_INBOUND)
    quarantine = topic_publisher(broker, settings, INGEST_QUARANTINE)

    async def refuse(request: Request, body: bytes, status: int, reason: str) -> JSONResponse:
        record = Quarantined(
            id=stable_id("qua", "web", body.hex(), reason),
            source="web",
            reason=reason,
            content_type=request.headers.get("content-type"),
            body=body.decode("utf-8", "replace"),
        )
        await quarantine.publish(record, key=b"web")
        log.warning("report_refused", status=status, reason=reason, quarantine_id=record.id)
        return JSONResponse({"error": reason, "quarantine_id": record.id}, status_code=status)

    async def post_report(request: Request) -> JSONResponse:
        try:
            return await accept_report(request)
        except Exception:  # our infrastructure failed, not the input: the client may retry
            log.exception("report_not_accepted")
            return JSONResponse({"error": "temporarily unavailable, please retry"}, status_code=503)

    async def accept_report(request: Request) -> JSONResponse:
        body = await request.body()
        client = _client_for(request, municipality)
        if client is None:
            return await refuse(request, body, 401, "missing or unknown bearer token")
        try:
            report = parse_report(body)
        except InvalidReport as exc:
            status = 413 if "bytes; at most" in str(exc) else 422
            return await refuse(request, body, status, f"invalid report: {exc}")
        message = normalise(report, municipality=municipality, client=client, body=body)
        with bound(message_id=message.id):
            if await seen.seen(message.id):
                log.info("report_duplicate")
                return JSONResponse({"id": message.id, "duplicate": True}, status_code=200)
            await audit.archive_raw(message.raw_ref, "web", body, request.headers.get("content-type"))
            await inbound.publish(message, key=message.partition_key)
            await audit.record(
                message.id,
                "ingest",
                {"channel": "web", "raw_ref": raw_id(body), "group_id": message.group_id},
            )
            await contacts.remember(municipality.id, message.author.pseudonym, report.reporter)
            await seen.mark(message.id)
            log.info("report_accepted", group_id=message.group_id)
        return JSONResponse({"id": message.id, "duplicate": False}, status_code=202)

    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    http = Starlette(
        routes=[Route("/reports", post_report, methods=["POST"]), Route("/health", health, methods=["GET"])]
    )
    return AsgiFastStream(broker, asgi_routes=[("/reports", http), ("/health", http)], logger=APP_LOGGER)

"""The ingest service: webhooks, web reports, SMTP and IMAP in; Kafka out. Wiring
only: the stores, the intake every lane hands its input to, the lanes and the
subscriber of ``ingest.media``.

One process serves HTTP (Meta's webhooks, the report API and form), runs the SMTP
receiver and the IMAP readers when the municipality file configures them, and
consumes ``ingest.media`` to fetch WhatsApp media after the webhook was answered."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
from faststream.asgi import AsgiFastStream
from starlette.routing import Route

from buurtalert.ingest.accept import Intake, apply_membership_decision, apply_removal
from buurtalert.ingest.lanes.http import routes
from buurtalert.ingest.lanes.imap import MailboxReader
from buurtalert.ingest.lanes.media import MediaFetcher
from buurtalert.ingest.lanes.smtp import start_receiver
from buurtalert.ingest.stores import IngestStores
from buurtalert.shared.kafka import Reliable, Sender, create_broker
from buurtalert.shared.logging import APP_LOGGER, bound
from buurtalert.shared.models import MediaFetch, MembershipDecision, ReviewDecision
from buurtalert.shared.observability import Observability
from buurtalert.shared.settings import Settings, load_municipality_config
from buurtalert.shared.topics import INGEST, INGEST_MEDIA, MODERATION_DECISIONS, REVIEW_MEMBERSHIPS


def create_app(settings: Settings) -> AsgiFastStream:
    municipality = load_municipality_config(settings.municipality_file)
    broker = create_broker(settings, INGEST)
    reliable = Reliable(broker, settings, INGEST)
    status_sender = Sender(settings, f"{INGEST}-status")  # statuses have their own producer: see accept.py
    stores = IngestStores.connect(settings)
    intake = Intake(
        broker, settings, stores, municipality, sender=reliable.sender, status_sender=status_sender
    )
    http_client = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=5.0))
    media = MediaFetcher(municipality.ingest.whatsapp, stores, http_client)
    background: list[asyncio.Task[None]] = []
    servers: list[asyncio.Server] = []

    @reliable.subscriber(INGEST_MEDIA)
    async def fetch_media(job: MediaFetch) -> None:
        with bound(message_id=job.message_id):
            await media.handle(job)

    @reliable.subscriber(REVIEW_MEMBERSHIPS)
    async def apply_vetting(decision: MembershipDecision) -> None:
        """A coordinator approved or refused a pending join: the register (ours) follows."""
        await apply_membership_decision(stores, decision)

    @reliable.subscriber(MODERATION_DECISIONS)
    async def apply_removals(decision: ReviewDecision) -> None:
        """A removal agreed by two: the member leaves the group in the register (ours)."""
        await apply_removal(stores, decision)

    http = routes(intake, municipality)
    paths = dict.fromkeys(route.path for route in http.routes if isinstance(route, Route))
    observability = Observability(settings, INGEST, [broker])
    app = AsgiFastStream(
        broker,
        # ingest's own /health (lanes/http.py); /ready and /metrics are every service's
        asgi_routes=[*((path, http) for path in paths), *observability.routes(health=False)],
        logger=APP_LOGGER,
    )
    reliable.attach(app)
    app.on_startup(status_sender.start)
    app.after_shutdown(status_sender.stop)
    observability.attach(app)

    @app.on_startup
    async def start_lanes() -> None:
        email = municipality.ingest.email
        if email is None:
            return
        if email.smtp_port is not None:
            servers.append(await start_receiver(intake, email))
        for mailbox in email.imap:
            reader = MailboxReader(intake, email, mailbox)
            background.append(asyncio.create_task(reader.run(), name=f"imap {reader.name}"))

    @app.on_shutdown
    async def stop_lanes() -> None:
        for task in background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for server in servers:
            server.close()
            await server.wait_closed()
        await http_client.aclose()

    return app

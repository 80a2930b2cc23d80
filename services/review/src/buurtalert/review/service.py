"""The review service: the console's web application and its Kafka side, in one process.
Wiring only; the handling is in :mod:`~buurtalert.review.handlers`, the pages in
:mod:`~buurtalert.review.web`.

It consumes ``moderation.review`` and ``moderation.proposals`` into its queue
(``review_items``) and publishes every human decision on ``moderation.decisions``, which
moderation applies."""

from __future__ import annotations

import asyncio
import contextlib

from faststream.asgi import AsgiFastStream

from buurtalert.directory.store import Directories
from buurtalert.review.effect.outcomes import OutcomeDesk
from buurtalert.review.effect.stores import IncidentsView, Outcomes, effect_report
from buurtalert.review.effect.web import effect_routes
from buurtalert.review.handlers import Access, Changes, Console, Queue
from buurtalert.review.stores import Items, Sessions, Users
from buurtalert.review.web import ConsoleApp, console_app
from buurtalert.shared.kafka import Reliable, create_broker, topic_publisher
from buurtalert.shared.models import (
    IncidentOutcome,
    ModeratedMessage,
    OutcomeCommand,
    RemovalProposal,
    ReviewDecision,
)
from buurtalert.shared.mongo import Audit, Database
from buurtalert.shared.observability import Observability
from buurtalert.shared.settings import Settings
from buurtalert.shared.topics import (
    INCIDENTS_OUTCOMES,
    INGEST_OUTCOME_COMMANDS,
    MODERATION_DECISIONS,
    MODERATION_PROPOSALS,
    MODERATION_REVIEW,
    REVIEW,
)


def create_app(settings: Settings) -> AsgiFastStream:
    broker = create_broker(settings, REVIEW)
    reliable = Reliable(broker, settings, REVIEW)
    db = Database.connect(settings, REVIEW)
    audit = Audit(db)
    items = Items(db)
    changes = Changes()
    decisions = topic_publisher(broker, settings, MODERATION_DECISIONS)

    async def publish(decision: ReviewDecision) -> None:
        # Not a consumer's publish: wait for the broker's confirmation before answering.
        await decisions.publish(decision, key=decision.partition_key)

    console = Console(items, audit, changes, publish)
    queue = Queue(items, audit, changes)
    access = Access(Users(db), Sessions(db))

    @reliable.subscriber(MODERATION_REVIEW)
    async def held(item: ModeratedMessage) -> None:
        await queue.held(item)

    @reliable.subscriber(MODERATION_PROPOSALS)
    async def proposed(proposal: RemovalProposal) -> None:
        await queue.proposed(proposal)

    outcomes = topic_publisher(broker, settings, INCIDENTS_OUTCOMES)

    async def publish_outcome(outcome: IncidentOutcome) -> None:
        await outcomes.publish(outcome, key=outcome.incident_id.encode())

    desk = OutcomeDesk(Outcomes(db), IncidentsView(db), Directories(db), audit, publish_outcome)

    @reliable.subscriber(INGEST_OUTCOME_COMMANDS)
    async def outcome_command(command: OutcomeCommand) -> None:
        await desk.command(command)

    closing = asyncio.Event()
    observability = Observability(settings, REVIEW, [broker])
    web = console_app(
        console,
        access,
        changes,
        secure_cookies=settings.environment == "production",
        closing=closing,
        probes=observability.routes(health=False),
        extensions=[effect_routes(desk, lambda municipality, since: effect_report(db, municipality, since))],
    )
    app = ConsoleApp(broker, web=web)
    reliable.attach(app)
    observability.attach(app)
    background: list[asyncio.Task[None]] = []

    @app.after_startup
    async def start_resending() -> None:
        background.append(asyncio.create_task(console.keep_resending(), name="resend decisions"))

    @app.on_shutdown
    async def stop() -> None:
        closing.set()
        for task in background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return app

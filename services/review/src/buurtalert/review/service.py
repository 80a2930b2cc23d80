"""The review service: the console's web application and its Kafka side, in one process.
Wiring only; the handling is in :mod:`~buurtalert.review.handlers`, the pages in
:mod:`~buurtalert.review.web`.

It consumes ``moderation.review`` and ``moderation.proposals`` into its queue
(``review_items``) and publishes every human decision on ``moderation.decisions``, which
moderation applies. It reads its removals back from there to ask channels, on
``review.group-changes``, to take the member out of the group's WhatsApp group."""

from __future__ import annotations

import asyncio
import contextlib

from faststream.asgi import AsgiFastStream

from buurtalert.directory.store import Directories, Memberships
from buurtalert.review.effect.outcomes import OutcomeDesk
from buurtalert.review.effect.polling import PollBox
from buurtalert.review.effect.stores import IncidentsView, Outcomes, Polls, effect_report
from buurtalert.review.effect.web import effect_routes
from buurtalert.review.feedback import ReporterFeedback
from buurtalert.review.handlers import Access, Changes, Console, Queue
from buurtalert.review.reveal import Reveal
from buurtalert.review.rules import Item, district_of
from buurtalert.review.stores import Deadlines, Items, MemberStrikes, Sessions, Users, Vettings
from buurtalert.review.urgent import UrgentWatch
from buurtalert.review.vetting import GroupRemovals, RemovalNotice, Vetting
from buurtalert.review.web import ConsoleApp, console_app
from buurtalert.shared.contacts import Contacts
from buurtalert.shared.kafka import Reliable, create_broker, topic_publisher
from buurtalert.shared.models import (
    Delivery,
    GroupRemoval,
    InboundMessage,
    IncidentOutcome,
    MembershipDecision,
    ModeratedMessage,
    OutcomeCommand,
    PollAnswer,
    RemovalProposal,
    ReviewDecision,
)
from buurtalert.shared.mongo import Audit, Database
from buurtalert.shared.observability import Observability
from buurtalert.shared.settings import Settings, load_municipality_config
from buurtalert.shared.topics import (
    INCIDENTS_OUTCOMES,
    INGEST_OUTCOME_COMMANDS,
    INGEST_POLL_ANSWERS,
    MODERATION_DECISIONS,
    MODERATION_PROPOSALS,
    MODERATION_REVIEW,
    REVIEW,
    REVIEW_GROUP_CHANGES,
    REVIEW_MEMBERSHIPS,
    REVIEW_NOTICES,
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

    municipality = load_municipality_config(settings.municipality_file)
    notices = topic_publisher(broker, settings, REVIEW_NOTICES)

    async def notify(notice: Delivery) -> None:
        await notices.publish(notice, key=notice.destination.key.encode())

    watch = UrgentWatch(items, Deadlines(db), audit, notify, {municipality.id: municipality.review})

    async def decided(item: Item, decision: ReviewDecision) -> None:
        await watch.decided(item.id)

    memberships = topic_publisher(broker, settings, REVIEW_MEMBERSHIPS)

    async def publish_vetting(decision: MembershipDecision) -> None:
        await memberships.publish(decision, key=decision.partition_key)

    vetting = Vetting(Memberships(db), Vettings(db), audit, publish_vetting, notify)
    contacts = Contacts(db)
    feedback = ReporterFeedback(contacts, audit, notify)
    removal_notice = RemovalNotice(Memberships(db), audit, notify)

    async def published(decision: ReviewDecision) -> None:
        await feedback(decision)
        await removal_notice(decision)

    console = Console(
        items,
        audit,
        changes,
        publish,
        on_decided=decided,
        on_published=published,
        undo_seconds=municipality.review.undo_seconds,
        on_reopened=watch.queued,
    )
    directories = Directories(db)

    async def district(municipality: str, group_id: str | None, message: InboundMessage | None) -> str | None:
        return district_of(await directories.get(municipality), group_id, message)

    queue = Queue(items, audit, changes, on_queued=watch.queued, district_of=district)
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

    desk = OutcomeDesk(Outcomes(db), IncidentsView(db), directories, audit, publish_outcome)

    @reliable.subscriber(INGEST_OUTCOME_COMMANDS)
    async def outcome_command(command: OutcomeCommand) -> None:
        await desk.command(command)

    group_changes = topic_publisher(broker, settings, REVIEW_GROUP_CHANGES)

    async def publish_group_change(removal: GroupRemoval) -> None:
        await reliable.publish(group_changes, removal, key=removal.partition_key)

    group_removals = GroupRemovals(Directories(db), Memberships(db), contacts, audit, publish_group_change)

    @reliable.subscriber(MODERATION_DECISIONS)
    async def decided_removal(decision: ReviewDecision) -> None:
        """A removal two agreed to, read back: channels takes the member out of the
        group's WhatsApp group, where the group is one (other decisions pass by)."""
        await group_removals(decision)

    polls = Polls(db)
    poll_box = PollBox(polls, audit)

    @reliable.subscriber(INGEST_POLL_ANSWERS)
    async def poll_answer(answer: PollAnswer) -> None:
        """A member's answer to a district poll: one per member counts, the latest."""
        await poll_box(answer)

    closing = asyncio.Event()
    observability = Observability(settings, REVIEW, [broker])
    web = console_app(
        console,
        access,
        changes,
        secure_cookies=settings.environment == "production",
        closing=closing,
        probes=observability.routes(health=False),
        extensions=[
            effect_routes(desk, lambda municipality, since: effect_report(db, municipality, since), polls)
        ],
        vetting=vetting,
        reveal=Reveal(items, contacts, audit),
        incidents=IncidentsView(db),
        strikes=MemberStrikes(db),
    )
    app = ConsoleApp(broker, web=web)
    reliable.attach(app)
    observability.attach(app)
    background: list[asyncio.Task[None]] = []

    @app.after_startup
    async def start_resending() -> None:
        background.append(asyncio.create_task(console.keep_resending(), name="resend decisions"))
        with contextlib.suppress(Exception):  # an index is an optimisation: never a reason not to start
            await watch.deadlines.ensure_indexes()
        background.append(asyncio.create_task(vetting.keep_resending(), name="resend vettings"))
        every = municipality.review.deadline_check_seconds
        background.append(asyncio.create_task(watch.keep_watching(every), name="urgent deadlines"))

    @app.on_shutdown
    async def stop() -> None:
        closing.set()
        for task in background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return app

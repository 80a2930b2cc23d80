"""Every MongoDB collection, declared once, as topics are in :mod:`.topics`: its
owner (the only writer), its readers, what a document holds, and its retention class.

Collections are a channel between services as much as topics are, so they obey the
same rule: one owner writes, declared readers read. Services reach a collection only
through :class:`buurtalert.shared.mongo.Database`, which refuses an undeclared
collection, a write by anyone but the owner and a read by anyone not declared;
``tests/unit/test_collections.py`` checks every call site in the code as well.

Each collection also declares its indexes (``indexes``): the top-level fields that the
queries of the message path match by equality, besides ``_id`` (always indexed, unique).
The owner's process creates them when it starts (:meth:`buurtalert.shared.mongo.Database.
ensure_indexes`, run by every service's start-up hook in :mod:`.observability`), which is
idempotent. Flat cost rests on them: FerretDB v1 pushes down to SQL only top-level
equalities on scalars (PostgreSQL backend), served by the GIN twins of these indexes
(``deploy/local/postgres/gin-twins.sql``); ranges, ``$in``, ``$or``, ``None`` and dotted
paths are filtered in FerretDB's memory after the pushed part. So every message-path
filter has an equality on ``_id`` or on a declared index that matches few documents
(``tests/unit/test_collections.py`` checks the filters in the code; docs/benchmarks.md has
the figures).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from buurtalert.shared.topics import CHANNELS, INGEST, MODERATION, REVIEW, ROUTING

#: The owner of the directory: the ``buurtalert directory`` commands an operator runs.
DIRECTORY = "directory"
#: An owner meaning: each service appends its own entries (the audit trail).
EVERY_SERVICE = "every service"
#: The operator's commands (``buurtalert dlq|member|retention|status``): reads every
#: collection, and deletes or scrubs documents for retention and erasure (through
#: ``Database.erasable``, which only the operator gets); owns its own records.
OPERATOR = "operator"


class Retention(StrEnum):
    """How long documents are kept; the periods are set per municipality."""

    CONFIGURATION = "configuration"
    """Replaced when the operator loads a new file; kept while the deployment runs."""
    RAW_INPUT = "raw_input"
    """Personal data as received (webhook bodies, emails, media): short (e.g. 30 days)."""
    CONTACT = "contact"
    """An address kept to reach a person: until they opt out or are erased."""
    RECORD = "record"
    """What happened to a message (audit trail, incidents): e.g. one year."""
    STRIKE = "strike"
    """Rejections counted against a member: until they expire under the policy."""
    OPERATIONAL = "operational"
    """Idempotency claims, counters, held deliveries: as long as a redelivery is possible."""


@dataclass(frozen=True, slots=True)
class Collection:
    name: str
    owner: str
    readers: tuple[str, ...]
    holds: str
    retention: Retention
    personal_data: bool
    dated_by: str | None = None
    """The field holding the document's date, by which retention purges it (none: kept)."""
    indexes: tuple[str, ...] = ()
    """Top-level fields matched by equality on the message path (``_id`` is always indexed)."""

    def readable_by(self, who: str) -> bool:
        return who in (self.owner, OPERATOR) or who in self.readers or self.owner == EVERY_SERVICE

    def writable_by(self, who: str) -> bool:
        return who == self.owner or self.owner == EVERY_SERVICE


DIRECTORIES = Collection(
    "directories",
    DIRECTORY,
    (INGEST, ROUTING, REVIEW),
    "One document per municipality (_id): its directory file, members pseudonymised except "
    "where they consented to one-to-one delivery; GeoJSON stored as JSON text.",
    Retention.CONFIGURATION,
    personal_data=True,
)
MEMBERSHIPS = Collection(
    "memberships",
    INGEST,
    (ROUTING, CHANNELS, REVIEW),
    "One document per member (_id municipality:pseudonym): its state (pending approval, active, "
    "left), the groups they joined by message (AANMELDEN) and those awaiting approval, their consent "
    "to one-to-one delivery (channels checks it again just before sending), the address while "
    "consent lasts, and the provider's time of the last event applied (or of a coordinator's "
    "vetting decision). The review console reads the pending joins (asking: a join awaits "
    "approval, also of an active member).",
    Retention.CONTACT,
    personal_data=True,
    indexes=("municipality", "asking"),
)
MEMBERSHIP_VERSIONS = Collection(
    "membership_versions",
    INGEST,
    (ROUTING, CHANNELS, REVIEW),
    "One version per municipality (_id the municipality), set anew (the time in ns) after each "
    "change to its memberships: a cached directory reloads the register only when it changed.",
    Retention.CONFIGURATION,
    personal_data=False,
)
CONTACTS = Collection(
    "contacts",
    INGEST,
    (CHANNELS, REVIEW),
    "One document per author (_id municipality:pseudonym): the channel and address that "
    "reach them, to explain a rejection (channels), to tell a verified reporter that a "
    "moderator forwarded their report, or revealed to a role allowed to see it (review).",
    Retention.CONTACT,
    personal_data=True,
)
RAW_INPUTS = Collection(
    "raw_inputs",
    INGEST,
    (),
    "Every accepted input as received (_id raw_<sha256 of the body>): source, body bytes, "
    "content type, received_at.",
    Retention.RAW_INPUT,
    personal_data=True,
    dated_by="received_at",
)
INGEST_CLAIMS = Collection(
    "claims.ingest",
    INGEST,
    (),
    "One document per provider message ingest has taken (_id message id, at): inserted "
    "before publishing, so a redelivered message is recognised without a lookup.",
    Retention.OPERATIONAL,
    personal_data=False,
    dated_by="at",
)
MEDIA = Collection(
    "media",
    INGEST,
    (CHANNELS,),
    "One document per medium (_id storage_ref, as in MediaRef): message_id, channel, data "
    "(absent when refused), size, mime_type (sniffed from the bytes), declared_type, filename, "
    "refused (the reason), stored_at. Written once, never updated. WhatsApp media are fetched "
    "after the message was published: a reader waits up to MEDIA_WAIT seconds for one to "
    "appear, then goes on without it.",
    Retention.RAW_INPUT,
    personal_data=True,
    dated_by="stored_at",
)
AUDIT = Collection(
    "audit",
    EVERY_SERVICE,
    (INGEST, CHANNELS),
    "The audit trail: append-only entries (_id from message, stage and content), each "
    "service writing its own stages (ingest, moderation, routing, deliveries.<id>, ...).",
    Retention.RECORD,
    personal_data=False,
    dated_by="at",
    indexes=("message_id",),  # a message's history (the review console's item page, trail)
)
STRIKES = Collection(
    "strikes",
    MODERATION,
    (REVIEW,),
    "One document per rejected message of a member (_id municipality:member:message), with "
    "its group, time and reason codes: counted over the policy's period for warnings and "
    "removal proposals; listed on a removal proposal's page.",
    Retention.STRIKE,
    personal_data=False,
    dated_by="at",
    indexes=("member",),
)
INCIDENTS = Collection(
    "incidents",
    ROUTING,
    (REVIEW,),
    "One document per incident (_id inc_..., ref its short reference): the first report's "
    "text, place and category, whether and by which message it was closed; its outcome once "
    "routing told the groups (fed back). Its groups and reports are documents of their own.",
    Retention.RECORD,
    personal_data=True,
    dated_by="opened_at",
    indexes=("ref", "district"),  # district: the console lists a scoped user's incidents per district
)
INCIDENT_REPORTS = Collection(
    "incident_reports",
    ROUTING,
    (REVIEW,),
    "A report's membership of an incident (_id the message id, incident, at): one small "
    "document per report instead of an ever-growing array in the incident; an incident's "
    "reports are counted on incident.",
    Retention.RECORD,
    personal_data=False,
    dated_by="at",
    indexes=("incident",),
)
INCIDENT_TELLINGS = Collection(
    "incident_tellings",
    ROUTING,
    (REVIEW,),
    "The groups an incident reached: one document per incident and group (_id "
    "<incident>|<municipality>/<group>, incident, group, message: the report that told it, at), "
    "inserted before the group is told, so that of two reports (or two processes) only one "
    "tells a group.",
    Retention.RECORD,
    personal_data=False,
    dated_by="at",
    indexes=("incident",),
)
OPEN_INCIDENTS = Collection(
    "open_incidents",
    ROUTING,
    (),
    "The incidents a new report may join, per municipality and district (_id "
    "open:<municipality>:<district>): its newest entries and the ids of its segments (_id "
    "<slot>#<version>.<random>, immutable lists of earlier entries), pruned to the time window, "
    "with a version for conditional updates, so matching a report is one lookup whatever the "
    "history; beside it the claim of its latest version (_id <slot>@<version>), one writer's "
    "in any process.",
    Retention.OPERATIONAL,
    personal_data=True,
    dated_by="updated_at",
)
GROUP_RATES = Collection(
    "group_rates",
    ROUTING,
    (),
    "Non-urgent messages delivered per group and hour, for max_per_hour: one document per "
    "group, hour and message (_id group:YYYYMMDDHH:message id, group_hour, at), counted on "
    "group_hour (inserts: nothing lost when two processes count one group at once).",
    Retention.OPERATIONAL,
    personal_data=False,
    dated_by="at",
    indexes=("group_hour",),
)
DELIVERIES = Collection(
    "deliveries",
    CHANNELS,
    (),
    "The delivery ledger: one claim per delivery id, inserted before sending (message_id, "
    "channel, group_id, created_at); the outcome is the delivery's audit entry.",
    Retention.OPERATIONAL,
    personal_data=False,
    dated_by="created_at",
)
HELD_DELIVERIES = Collection(
    "held_deliveries",
    CHANNELS,
    (),
    "Deliveries held by quiet hours or a rate limit until due: the delivery (with its "
    "destination address), when it is due, and the hour it is due (due_hour YYYYMMDDHH, "
    "by which the due ones are found).",
    Retention.OPERATIONAL,
    personal_data=True,
    dated_by="due",
    indexes=("due_hour",),
)

INCIDENT_OUTCOMES = Collection(
    "incident_outcomes",
    REVIEW,
    (),
    "One document per incident (_id the incident id): its outcome (arrest, nothing found, ...), "
    "the short note, who gave it (console user or member id, role, source) and whether it was "
    "published on incidents.outcomes.",
    Retention.RECORD,
    personal_data=True,
    dated_by="decided_at",
)
REGISTERED_CRIME = Collection(
    "registered_crime",
    REVIEW,
    (),
    "Registered crime per district and month (_id municipality:district:month), as the "
    "municipality imports it (buurtalert effect crime import): counts only.",
    Retention.CONFIGURATION,
    personal_data=False,
)
POLLS = Collection(
    "polls",
    REVIEW,
    (INGEST,),
    "One document per district poll (_id the poll id): municipality, districts, question, "
    "options, language, when it closes, how many members were invited per district; ingest "
    "reads it to show the answer form.",
    Retention.RECORD,
    personal_data=False,
    dated_by="created_at",
    indexes=("municipality",),
)
POLL_ANSWERS = Collection(
    "poll_answers",
    REVIEW,
    (),
    "One document per poll and member (_id from both): the district, the option, when; the "
    "member only as the poll's own pseudonym (links no other poll or message). Shown as counts "
    'per district, under 5 as "< 5".',
    Retention.RECORD,
    personal_data=True,
    dated_by="answered_at",
    indexes=("poll_id",),
)
DLQ_REPLAYS = Collection(
    "dlq_replays",
    OPERATOR,
    (),
    "One document per dead letter replayed by `buurtalert dlq replay` (_id topic:partition:offset "
    "of the letter): original topic, key, replayed_at; a letter recorded here is not replayed again.",
    Retention.OPERATIONAL,
    personal_data=False,
    dated_by="replayed_at",
)
TIER_SCHEDULES = Collection(
    "tier_schedules",
    CHANNELS,
    (),
    "The blocks of send times taken of a provider account's throughput tier (_id "
    "<account>#<block number>, e.g. whatsapp:<phone number id>#<n>; at: when taken): a channels "
    "process takes a block by inserting it, so the processes share the tier by what each has "
    "to send. Each deletes its own a second after they end; a stopped process's are purged.",
    Retention.OPERATIONAL,
    personal_data=False,
    dated_by="at",
)
REVIEW_ITEMS = Collection(
    "review_items",
    REVIEW,
    (),
    "The review console's queue: one document per held message or removal proposal (_id its "
    "id): municipality, kind, group and district (a coordinator's queue is read per group, a "
    "wijkagent's per district), the record as received, urgent, reasons, version (raised by every "
    "change), state, the claim (who, until when), the agreements of a proposal, the decision "
    "taken and whether it was published.",
    Retention.RECORD,
    personal_data=True,
    indexes=("state", "published", "group_id", "district"),
)
REVIEW_USERS = Collection(
    "review_users",
    REVIEW,
    (),
    "One document per console user (_id the user name): municipality, role, its scope (a "
    "coordinator's groups, a wijkagent's districts), argon2 password hash, failed logins in a row "
    "and the lockout they led to.",
    Retention.CONTACT,
    personal_data=True,
    indexes=("municipality",),
)
REVIEW_SESSIONS = Collection(
    "review_sessions",
    REVIEW,
    (),
    "One document per console session (_id the SHA-256 of its cookie's token, never the token "
    "itself): user, municipality, role and scope, CSRF token, expiry.",
    Retention.OPERATIONAL,
    personal_data=False,
    indexes=("user",),
)
REVIEW_DEADLINES = Collection(
    "review_deadlines",
    REVIEW,
    (),
    "One document per open urgent review item (_id the item's id): municipality, when it is "
    "due, when its lateness was notified. Deleted once the item is decided, so the periodic "
    "look for overdue items reads only the open urgent ones, never the whole queue.",
    Retention.OPERATIONAL,
    personal_data=False,
)
REVIEW_VETTINGS = Collection(
    "review_vettings",
    REVIEW,
    (),
    "One document per vetting decision on a pending join (_id the decision's id): municipality, "
    "member pseudonym, group, approved or refused, who and why, when; inserted once, so a join is "
    "decided once, and published on review.memberships until confirmed.",
    Retention.RECORD,
    personal_data=True,  # the reason is free text about a person
    dated_by="decided_at",
    indexes=("published",),
)

#: Seconds a reader of ``media`` waits for a medium a message references (see MEDIA).
MEDIA_WAIT = 5.0

COLLECTIONS: tuple[Collection, ...] = (
    DIRECTORIES,
    MEMBERSHIPS,
    MEMBERSHIP_VERSIONS,
    CONTACTS,
    RAW_INPUTS,
    INGEST_CLAIMS,
    MEDIA,
    AUDIT,
    STRIKES,
    INCIDENTS,
    INCIDENT_REPORTS,
    INCIDENT_TELLINGS,
    OPEN_INCIDENTS,
    GROUP_RATES,
    DELIVERIES,
    HELD_DELIVERIES,
    TIER_SCHEDULES,
    REVIEW_ITEMS,
    REVIEW_USERS,
    REVIEW_SESSIONS,
    INCIDENT_OUTCOMES,
    REGISTERED_CRIME,
    POLLS,
    POLL_ANSWERS,
    REVIEW_DEADLINES,
    REVIEW_VETTINGS,
    DLQ_REPLAYS,
)

"""The canonical records that travel over Kafka.

Every service speaks these models and nothing else; a topic's payload type is
declared next to its name in :mod:`buurtalert.shared.topics`. Personal data is
pseudonymised before it reaches a model (see :mod:`buurtalert.shared.pseudonym`):
the only raw address that travels is a destination's, because a channel needs it.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_serializer


def utcnow() -> datetime:
    return datetime.now(UTC)


def stable_id(prefix: str, *parts: str) -> str:
    """A deterministic id: the same inputs always give the same id, which is what
    makes redelivered input harmless downstream."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]
    return f"{prefix}_{digest}"


#: An incident's short reference: what groups see and a reply names ("UITKOMST 3FA9C1 ...").
SHORT_REFERENCE = re.compile(r"^[0-9A-Fa-f]{6}$")


def short_reference(incident_id: str) -> str:
    """The short reference of ``incident_id`` (``inc_<hex>``): its first six hex digits,
    upper case. Unique enough within one municipality's open incidents; resolved there."""
    return incident_id.removeprefix("inc_")[:6].upper()


class Record(BaseModel):
    """Base of every record: immutable and strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class SourceChannel(StrEnum):
    WHATSAPP = "whatsapp"
    EMAIL = "email"
    FACEBOOK = "facebook"
    WEB = "web"
    AUTHORITY = "authority"


class Role(StrEnum):
    RESIDENT = "resident"
    COORDINATOR = "coordinator"
    ADMIN = "admin"
    WIJKAGENT = "wijkagent"
    MODERATOR = "moderator"
    AUTHORITY = "authority"
    UNKNOWN = "unknown"


#: The roles that speak for the police or the municipality: their alerts skip the noise
#: filters, reach target areas and may close incidents.
AUTHORITIES = frozenset({Role.WIJKAGENT, Role.AUTHORITY})


class ProviderRef(Record):
    """Where a message came from, in the provider's own terms (used for deduplication)."""

    channel: SourceChannel
    message_id: Annotated[str, Field(min_length=1, max_length=256)]
    account: str | None = Field(default=None, description="Business number, Page id or list address")


class Author(Record):
    pseudonym: str = Field(description="Keyed hash of the address, per municipality")
    role: Role = Role.UNKNOWN
    member_id: str | None = None
    verified: bool = Field(
        default=False,
        description="The channel proved the sender owns the address: WhatsApp and Messenger (the "
        "provider), email with dmarc=pass from a trusted server, a web client that logs its reporters in. "
        "Feedback and strikes go to verified authors only.",
    )


class MediaRef(Record):
    """A photo, video, voice note, document or sticker. The bytes are stored apart
    (``media`` collection, under ``storage_ref``); WhatsApp media are fetched there
    after the message is accepted (``ingest.media``)."""

    kind: str
    mime_type: str | None = None
    sha256: str | None = None
    provider_media_id: str | None = None
    storage_ref: str | None = None
    caption: str | None = None
    filename: str | None = Field(default=None, description="Sanitised; never a path")
    size: int | None = None


class Location(Record):
    latitude: Annotated[float, Field(ge=-90, le=90)]
    longitude: Annotated[float, Field(ge=-180, le=180)]
    description: str | None = None


class TargetArea(Record):
    """The area an authority alert is for: districts, a polygon, or a circle."""

    districts: tuple[str, ...] = ()
    polygon: tuple[tuple[float, float], ...] | None = Field(
        default=None, min_length=3, description="Ring of (longitude, latitude) points"
    )
    center: Location | None = None
    radius_m: Annotated[float, Field(gt=0, le=50_000)] | None = None


class InboundMessage(Record):
    """The canonical form of every message, whatever channel brought it."""

    id: str
    provider: ProviderRef
    municipality: str
    group_id: str | None = None
    author: Author
    text: str
    media: tuple[MediaRef, ...] = ()
    location: Location | None = None
    category: str | None = None
    target: TargetArea | None = Field(default=None, description="Authority alerts: the area they are for")
    forward_to: tuple[str, ...] = Field(
        default=(), description="Doorzetten: the buurtgroepen a regiegroep coordinator passes this on to"
    )
    closes: str | None = Field(
        default=None, description="A closing message: the incident (or a message of it) that is over"
    )
    language: str | None = Field(
        default=None,
        description="ISO 639 code of the language moderation read in the text (ingest leaves it open)",
    )
    subject: str | None = Field(default=None, description="An email's subject")
    reply_to: str | None = Field(
        default=None, description="The message this one answers: a comment's post, a quoted message"
    )
    flags: tuple[str, ...] = Field(
        default=(), description="What ingest noticed: unknown_sender, unsupported_type, empty, ..."
    )
    authentication: dict[str, str] = Field(
        default_factory=dict, description="Email: the receiving server's SPF, DKIM and DMARC results"
    )
    sent_at: datetime
    received_at: datetime = Field(default_factory=utcnow)
    raw_ref: str = Field(description="Id of the archived raw input in the raw_inputs collection")

    @property
    def partition_key(self) -> bytes:
        """A group's messages stay in order; messages without a group spread by id."""
        return (self.group_id or self.id).encode()


class Decision(StrEnum):
    FORWARD = "forward"
    REVIEW = "review"
    REJECT = "reject"


class Span(Record):
    start: int
    end: int
    text: str


class Reason(Record):
    code: str
    score: Annotated[float, Field(ge=0, le=1)]
    spans: tuple[Span, ...] = ()


class ModelFinding(Record):
    """What moderation's learned model made of a message: its probability per decision
    and the features that pushed hardest towards its likeliest one."""

    version: str
    probabilities: dict[str, float]
    strongest: tuple[str, ...] = ()


class ModerationResult(Record):
    message_id: str
    decision: Decision
    reasons: tuple[Reason, ...] = ()
    explanation: str = Field(default="", description="For the author, in their language (Dutch if unknown)")
    explanation_en: str = Field(default="", description="The same in English")
    language: str | None = Field(
        default=None, description="ISO 639 code of the language moderation read in the text itself"
    )
    saar_reminder: bool = False
    urgent: bool = Field(
        default=False, description="Held for review but urgent (112, a missing person, an authority)"
    )
    model: ModelFinding | None = None
    strikes: int | None = Field(
        default=None,
        description="The author's live strikes: after this rejection, or when a held message was held "
        "(verified authors only)",
    )
    reviewer: str | None = Field(
        default=None, description="The person who decided a held message in the review console"
    )
    policy_version: str
    decided_at: datetime = Field(default_factory=utcnow)


class RemovalProposal(Record):
    """Moderation proposes to a group's admin to remove a member; the admin decides."""

    id: str
    municipality: str
    group_id: str | None
    member: str = Field(description="The member's pseudonym")
    strikes: int
    message_ids: tuple[str, ...] = Field(description="The rejected message that reached the threshold")
    reasons: tuple[str, ...]
    proposed_at: datetime = Field(default_factory=utcnow)


class ModeratedMessage(Record):
    """A message together with its moderation result (approved, review and rejected topics)."""

    message: InboundMessage
    moderation: ModerationResult


class ReviewAction(StrEnum):
    """What a person decides in the review console."""

    APPROVE = "approve"
    APPROVE_EDITED = "approve_edited"
    REJECT = "reject"
    REMOVE_MEMBER = "remove_member"
    KEEP_MEMBER = "keep_member"


class ReviewDecision(Record):
    """A person's decision on what moderation held (a message) or proposed (a removal),
    taken in the review console and applied by moderation. Its id comes from the item
    and the version decided on, so deciding the same version twice is one decision."""

    id: str
    subject_id: str = Field(description="The held message's id, or the removal proposal's")
    municipality: str
    group_id: str | None = None
    action: ReviewAction
    actor: str = Field(description="The user name of the person who decided")
    actor_role: Role
    version: int = Field(ge=0, description="The version of the review item decided on")
    item: ModeratedMessage | None = Field(
        default=None, description="The held message as moderation held it (message decisions)"
    )
    text: str | None = Field(default=None, description="approve_edited: the text to deliver instead")
    reason: str | None = Field(default=None, description="reject: the reason template chosen")
    explanation: str = Field(default="", description="reject: what the author is told, in their language")
    explanation_en: str = Field(default="", description="reject: the same in English")
    proposal: RemovalProposal | None = Field(default=None, description="remove/keep_member: the proposal")
    agreed_by: tuple[str, ...] = Field(
        default=(), description="remove_member: the two (or more) admins or coordinators who agreed"
    )
    decided_at: datetime = Field(default_factory=utcnow)

    @property
    def partition_key(self) -> bytes:
        """With the group's messages, so a decision follows the message it decides on."""
        return (self.group_id or self.subject_id).encode()


class MembershipDecision(Record):
    """A coordinator's decision on a pending join (AANMELDEN <code>), taken in the review
    console and applied to the membership register by ingest, its owner. Its id comes from
    the join it decides (member, group and when they asked), so deciding it twice is one
    decision."""

    id: str
    municipality: str
    member: str = Field(description="The member's pseudonym")
    group_id: str
    approved: bool
    actor: str = Field(description="The user name of the coordinator or admin who decided")
    actor_role: Role
    reason: str = Field(default="", max_length=500, description="Why (required for a refusal)")
    requested_at: datetime = Field(description="When the member asked (the register's changed_at)")
    decided_at: datetime = Field(default_factory=utcnow)

    @property
    def partition_key(self) -> bytes:
        """One member's decisions in order."""
        return f"{self.municipality}:{self.member}".encode()


class GroupRemoval(Record):
    """A member two admins or coordinators removed from a group (``remove_member``), to be
    taken out of the group's WhatsApp Groups API group too: the review console asks, channels
    (the only service that calls the Graph API) does it. One per decision and WhatsApp group,
    its id from both, so the same removal asked twice is done once.

    The participant's number is the one address the removal needs: a secret, shown as
    ``**********`` in reprs and logs and written out only in the JSON that travels to channels."""

    id: str
    decision_id: str = Field(description="The review decision that removed the member")
    subject_id: str = Field(description="The removal proposal's id (where the audit trail keeps it)")
    municipality: str
    group_id: str = Field(description="The directory's group the member was removed from")
    whatsapp_group_id: str = Field(description="The group's WhatsApp Groups API group id")
    member: str = Field(description="The member's pseudonym")
    participant: SecretStr = Field(description="The member's WhatsApp number (wa_id or phone number)")
    reason: str = Field(default="", description="Why: the rules the member's rejected messages broke")
    agreed_by: tuple[str, ...] = ()
    decided_at: datetime

    @field_serializer("participant", when_used="json")
    def _participant(self, participant: SecretStr) -> str:
        return participant.get_secret_value()

    @classmethod
    def removal_id(cls, decision_id: str, whatsapp_group_id: str) -> str:
        return stable_id("grm", decision_id, whatsapp_group_id)

    @property
    def partition_key(self) -> bytes:
        """One WhatsApp group's changes in order."""
        return f"{self.municipality}:{self.whatsapp_group_id}".encode()


class Destination(Record):
    group_id: str
    municipality: str | None = Field(default=None, description="The group's municipality (cross-border)")
    channel: str
    address: str = Field(description="The address the channel needs: a list address, a group id")
    recipient_type: Literal["group", "individual"] = Field(
        default="group", description="A group's address, or one person's (one-to-one, author feedback)"
    )
    recipient: str | None = Field(
        default=None, description="The member's pseudonym, when a group is reached one member at a time"
    )
    label: str | None = None

    @property
    def key(self) -> str:
        """The Kafka key of deliveries here: a group's deliveries stay in order, one
        member's too, and a group reached member by member spreads over partitions."""
        return f"{self.group_id}/{self.recipient}" if self.recipient else self.group_id


class Choice(Record):
    """An answer the recipient can tap, where the channel has buttons (WhatsApp's reply
    buttons or list); elsewhere the text itself lists the answers."""

    id: str = Field(min_length=1, max_length=200, description="What the channel echoes when it is tapped")
    title: str = Field(min_length=1, max_length=20)


class Delivery(Record):
    """One message to one destination. Its id is derived from both, so routing the
    same message twice yields the same delivery, which channels sends once."""

    id: str
    message_id: str
    municipality: str
    destination: Destination
    text: str
    rules: tuple[str, ...] = Field(description="The chain of routing rules that chose this destination")
    saar_reminder: bool = False
    notice: str | None = Field(default=None, description="A line added for the recipients (origin, numbers)")
    language: str = Field(default="nl", description="The recipients' language, for the lines we add")
    subject: str | None = Field(default=None, description="A subject line, where the channel has one")
    incident_id: str | None = None
    media: tuple[MediaRef, ...] = Field(
        default=(), description="Photos or documents to send along, where the channel can (authority alerts)"
    )
    deliver_after: datetime | None = Field(default=None, description="Quiet hours or a rate limit hold it")
    reference: str | None = Field(
        default=None, description="The incident's short reference, where outcomes are given (regiegroepen)"
    )
    choices: tuple[Choice, ...] = Field(
        default=(), max_length=10, description="Answers to tap (a poll), where the channel can show them"
    )
    created_at: datetime = Field(default_factory=utcnow)

    @classmethod
    def for_destination(
        cls,
        message: InboundMessage,
        destination: Destination,
        rules: tuple[str, ...],
        **extra: Any,
    ) -> Delivery:
        return cls(
            id=stable_id(
                "dlv",
                message.id,
                destination.group_id,
                destination.channel,
                *filter(None, [destination.recipient]),
            ),
            message_id=message.id,
            municipality=message.municipality,
            destination=destination,
            text=message.text,
            rules=rules,
            **extra,
        )


class DeliveryState(StrEnum):
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"


class DeliveryStatus(Record):
    delivery_id: str
    message_id: str
    channel: str
    state: DeliveryState
    provider_message_id: str | None = None
    error_code: str | None = None
    error_detail: str | None = None
    at: datetime = Field(default_factory=utcnow)


class Reaction(Record):
    """An emoji reaction to a message: kept as an event, never forwarded as a message."""

    id: str
    provider: ProviderRef
    municipality: str
    group_id: str | None = None
    author: Author
    reacts_to: str = Field(description="The provider's id of the message reacted to")
    emoji: str = Field(default="", description="Empty when the reaction was taken back")
    sent_at: datetime
    received_at: datetime = Field(default_factory=utcnow)


class ProviderStatus(Record):
    """A provider's report on a message we sent (WhatsApp status webhooks). The
    provider knows its own message id only; channels ties it to a delivery."""

    id: str
    channel: str
    account: str | None = Field(default=None, description="The business number's phone_number_id")
    provider_message_id: str
    reference: str | None = Field(
        default=None, description="Our reference, echoed by the provider: the delivery id"
    )
    state: DeliveryState
    recipient: str | None = Field(default=None, description="Pseudonym of the recipient or the group id")
    error_code: str | None = None
    error_detail: str | None = None
    at: datetime


class MediaFetch(Record):
    """A medium to fetch from the provider and store under ``storage_ref``."""

    message_id: str
    municipality: str
    channel: str
    provider_media_id: str
    storage_ref: str
    mime_type: str | None = None
    sha256: str | None = None


class Quarantined(Record):
    """Input that could not be accepted, kept with the reason so nothing is lost."""

    id: str
    source: str
    reason: str
    content_type: str | None = None
    body: str = Field(
        description="The raw body, decoded as UTF-8 with replacement; cut when large, and never a token"
    )
    size: int | None = Field(default=None, description="The raw body's size in bytes")
    truncated: bool = Field(default=False, description="Only the start of the body is kept")
    received_at: datetime = Field(default_factory=utcnow)


class DeadLetter(Record):
    """A message whose handling failed, with the error: on a retry topic waiting for
    ``retry_at``, or on a dead-letter topic once its retries are spent."""

    topic: str
    consumer: str
    key: str | None
    attempts: int
    error: str
    payload: str
    payload_encoding: Literal["utf-8", "base64"] = "utf-8"
    retry_at: datetime | None = None
    failed_at: datetime = Field(default_factory=utcnow)


class OutcomeKind(StrEnum):
    """What came of an incident, as the wijkagent, a coordinator or the municipality says."""

    ARREST = "arrest"
    POLICE_ON_SITE = "police_on_site"
    NOTHING_FOUND = "nothing_found"
    FALSE_ALARM = "false_alarm"
    PERSON_FOUND = "person_found"
    MUNICIPALITY = "municipality"
    UNKNOWN = "unknown"


class OutcomeCommand(Record):
    """A reply in a group that gives an incident its outcome (``UITKOMST <incident> <outcome>
    [note]``), as ingest read it. Ingest only reads it; the review service decides whether the
    sender may give it (the wijkagent or a coordinator of that regiegroep, verified) and keeps
    a refused one with its reason."""

    id: str = Field(description="The message's id (from the provider's)")
    municipality: str
    group_id: str | None = None
    author: Author
    channel: SourceChannel
    incident_ref: str = Field(default="", description="The incident's id, or the id of one of its messages")
    outcome: OutcomeKind | None = None
    note: str = Field(default="", max_length=500)
    problem: str | None = Field(default=None, description="Why the command could not be read, if so")
    sent_at: datetime
    raw_ref: str


class IncidentOutcome(Record):
    """An incident's outcome, recorded once per incident by the review service; routing
    tells every group the incident reached. Its id comes from the incident, so the same
    outcome handled twice is one outcome, and one delivery per group."""

    id: str
    incident_id: str
    municipality: str
    district: str | None = None
    outcome: OutcomeKind
    note: str = Field(default="", max_length=500)
    actor: str = Field(description="The console user, or the member id of the sender of a command")
    actor_role: Role
    source: Literal["console", "api", "regiegroep"]
    command_id: str | None = Field(default=None, description="The regiegroep reply that gave it")
    reported_at: datetime | None = Field(default=None, description="When the incident's first report came")
    decided_at: datetime = Field(default_factory=utcnow)


class PollAnswer(Record):
    """A member's answer to a poll, as ingest read it: a tapped WhatsApp button or the
    form behind an emailed link, both carrying the poll's signed token. ``respondent`` is
    the member's pseudonym for this poll only (it links no two polls and no message), so
    one member has one answer per poll: a later one replaces it."""

    id: str = Field(description="From the poll and the respondent: the same member's answers share it")
    poll_id: str
    municipality: str
    district: str
    respondent: str
    option: int = Field(ge=0, lt=10)
    channel: Literal["whatsapp", "web"]
    answered_at: datetime

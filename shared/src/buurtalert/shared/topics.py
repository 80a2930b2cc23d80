"""The topology: every Kafka topic, declared once, with its key, owner and consumers.

A topic has exactly one owning service, the only one that writes it. Names are
resolved with the deployment's ``topic_prefix`` so that tests (and several
deployments sharing one cluster) never see each other's traffic.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import BaseModel

from buurtalert.shared.models import (
    DeadLetter,
    Delivery,
    DeliveryStatus,
    GroupRemoval,
    InboundMessage,
    IncidentOutcome,
    MediaFetch,
    MembershipDecision,
    ModeratedMessage,
    OutcomeCommand,
    PollAnswer,
    ProviderStatus,
    Quarantined,
    Reaction,
    RemovalProposal,
    ReviewDecision,
)

INGEST = "ingest"
MODERATION = "moderation"
ROUTING = "routing"
CHANNELS = "channels"
REVIEW = "review"
SERVICES = (INGEST, MODERATION, ROUTING, CHANNELS, REVIEW)


@dataclass(frozen=True, slots=True)
class Topic:
    name: str
    payload: type[BaseModel]
    owner: str
    consumers: tuple[str, ...]
    key: str
    description: str
    partitions: int = 3


MESSAGES_INBOUND = Topic(
    "messages.inbound",
    InboundMessage,
    INGEST,
    (MODERATION,),
    "group_id (else message id)",
    "Every accepted message in canonical form.",
)
INGEST_QUARANTINE = Topic(
    "ingest.quarantine",
    Quarantined,
    INGEST,
    (),
    "source",
    "Input ingest could not accept: the raw body and the reason.",
)
MESSAGES_REACTIONS = Topic(
    "messages.reactions",
    Reaction,
    INGEST,
    (),
    "group_id (else reaction id)",
    "Emoji reactions to messages: counted as events, never forwarded as messages.",
)
PROVIDER_STATUS = Topic(
    "deliveries.provider-status",
    ProviderStatus,
    INGEST,
    (CHANNELS,),
    "provider message id",
    "What providers report on the messages we sent (sent, delivered, read, failed), "
    "in their own ids; channels ties them to deliveries on deliveries.status.",
    partitions=6,
)
INGEST_MEDIA = Topic(
    "ingest.media",
    MediaFetch,
    INGEST,
    (INGEST,),
    "message id",
    "Media of accepted messages, fetched from the provider and stored after the webhook was answered.",
)
MESSAGES_APPROVED = Topic(
    "messages.approved",
    ModeratedMessage,
    MODERATION,
    (ROUTING,),
    "group_id (else message id)",
    "Messages moderation forwards, with the moderation result.",
)
MODERATION_REVIEW = Topic(
    "moderation.review",
    ModeratedMessage,
    MODERATION,
    (REVIEW,),
    "group_id (else message id)",
    "Messages held for a moderator, with the reasons; the review console queues them.",
)
MESSAGES_REJECTED = Topic(
    "messages.rejected",
    ModeratedMessage,
    MODERATION,
    (CHANNELS,),
    "group_id (else message id)",
    "Rejected messages, with the rule that rejected them; channels explains it to the author.",
)
MODERATION_PROPOSALS = Topic(
    "moderation.proposals",
    RemovalProposal,
    MODERATION,
    (REVIEW,),
    "group id",
    "Proposals to a group's admin to remove a member after repeated rejections; the review "
    "console puts them before two admins or coordinators.",
)
MODERATION_DECISIONS = Topic(
    "moderation.decisions",
    ReviewDecision,
    REVIEW,
    (MODERATION, INGEST, REVIEW),
    "group_id (else the message or proposal id)",
    "What a person decided in the review console: approve (possibly with an edited text), "
    "reject with an explanation, or remove a member (agreed by two); moderation applies them, "
    "ingest applies removals to the membership register, and review itself asks channels to "
    "take a removed member out of the group's WhatsApp group (review.group-changes).",
)
REVIEW_NOTICES = Topic(
    "review.notices",
    Delivery,
    REVIEW,
    (CHANNELS,),
    "destination key (group id, or group id/recipient)",
    "What the review console tells people directly, as deliveries channels sends: the on-duty "
    "moderator of an urgent item past its deadline, a reporter of the outcome of their held "
    "report. Routing owns deliveries.<channel>; these are the console's own.",
)
REVIEW_MEMBERSHIPS = Topic(
    "review.memberships",
    MembershipDecision,
    REVIEW,
    (INGEST,),
    "municipality:member",
    "A coordinator's approval or refusal of a pending join, with who and why; ingest, the "
    "membership register's owner, applies it.",
)
REVIEW_GROUP_CHANGES = Topic(
    "review.group-changes",
    GroupRemoval,
    REVIEW,
    (CHANNELS,),
    "municipality:WhatsApp group id",
    "A member two admins or coordinators removed from a group that is a WhatsApp Groups API "
    "group, to be removed from that group too; channels calls the Graph API (once per removal).",
)
DELIVERIES_STATUS = Topic(
    "deliveries.status",
    DeliveryStatus,
    CHANNELS,
    (),
    "delivery id",
    "What became of each delivery: sent, delivered, read or failed.",
)


INGEST_OUTCOME_COMMANDS = Topic(
    "ingest.outcome-commands",
    OutcomeCommand,
    INGEST,
    (REVIEW,),
    "group_id (else message id)",
    "Replies in a group that give an incident its outcome (UITKOMST ...), as read; the review "
    "service authorises them by the sender's role and keeps a refused one with its reason.",
)
INGEST_POLL_ANSWERS = Topic(
    "ingest.poll-answers",
    PollAnswer,
    INGEST,
    (REVIEW,),
    "poll id",
    "Members' answers to a district poll (a tapped button, a form behind an emailed link), "
    "checked against the poll's signed token; the review service counts one per member.",
)
INCIDENTS_OUTCOMES = Topic(
    "incidents.outcomes",
    IncidentOutcome,
    REVIEW,
    (ROUTING,),
    "incident id",
    "An incident's outcome (console, API or a regiegroep reply), once per incident; routing "
    "tells every group the incident reached, in its language.",
)
#: The channel adapters that ship with buurtalert, each with its delivery topic.
BUILTIN_CHANNELS: dict[str, str] = {
    "email": "Deliveries for the email adapter.",
    "whatsapp": "Deliveries for the WhatsApp Cloud API adapter (Groups API groups, one-to-one).",
    "facebook": "Deliveries for the Facebook adapter (a post on the Page, a Messenger reply).",
    "webhook": "Deliveries for the webhook adapter (signed HTTP POSTs to partners' systems).",
    "apprise": "Deliveries for the Apprise adapter (the services Apprise reaches by URL).",
}
CHANNEL_NAME = re.compile(r"[a-z][a-z0-9-]{0,39}")  # as settings.ChannelName


def delivery_topic(channel: str) -> Topic:
    """The topic routing publishes ``channel``'s deliveries on, ``deliveries.<channel>``:
    a built-in adapter's, or a partner adapter's that the municipality file configures."""
    if not CHANNEL_NAME.fullmatch(channel):
        raise ValueError(f"{channel!r} is not a channel name (lower-case letters, digits and '-')")
    return Topic(
        f"deliveries.{channel}",
        Delivery,
        ROUTING,
        (CHANNELS,),
        "destination group id",
        BUILTIN_CHANNELS.get(channel, f"Deliveries for the partner adapter {channel!r}."),
    )


#: Deliveries per built-in channel adapter name.
DELIVERY_TOPICS: dict[str, Topic] = {name: delivery_topic(name) for name in BUILTIN_CHANNELS}


def retry_topic(service: str) -> Topic:
    return Topic(
        f"{service}.retry",
        DeadLetter,
        service,
        (service,),
        "original key",
        f"Messages {service} failed to handle, waiting for another attempt.",
        partitions=1,
    )


def dead_letter_topic(service: str) -> Topic:
    return Topic(
        f"{service}.deadletter",
        DeadLetter,
        service,
        (),
        "original key",
        f"Messages {service} could not handle after its retries, with the error.",
        partitions=1,
    )


TOPICS: tuple[Topic, ...] = (
    MESSAGES_INBOUND,
    INGEST_QUARANTINE,
    MESSAGES_REACTIONS,
    PROVIDER_STATUS,
    INGEST_MEDIA,
    MESSAGES_APPROVED,
    MODERATION_REVIEW,
    MESSAGES_REJECTED,
    MODERATION_PROPOSALS,
    MODERATION_DECISIONS,
    INGEST_OUTCOME_COMMANDS,
    INGEST_POLL_ANSWERS,
    INCIDENTS_OUTCOMES,
    REVIEW_NOTICES,
    REVIEW_MEMBERSHIPS,
    REVIEW_GROUP_CHANGES,
    *DELIVERY_TOPICS.values(),
    DELIVERIES_STATUS,
    *(retry_topic(s) for s in SERVICES),
    *(dead_letter_topic(s) for s in SERVICES),
)


def owned_by(service: str) -> tuple[Topic, ...]:
    return tuple(t for t in TOPICS if t.owner == service)


def consumed_by(service: str) -> tuple[Topic, ...]:
    return tuple(t for t in TOPICS if service in t.consumers)


def deployment_topics(channels: Iterable[str]) -> tuple[Topic, ...]:
    """Every declared topic plus the delivery topics of the partner adapters a deployment configures."""
    partners = sorted(set(channels) - set(DELIVERY_TOPICS))
    return TOPICS + tuple(delivery_topic(name) for name in partners)

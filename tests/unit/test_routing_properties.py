"""Invariants of routing, checked on generated messages (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from buurtalert.routing.rules import is_urgent, route
from buurtalert.shared.models import Decision, ModeratedMessage, Role, TargetArea
from tests.unit.test_routing_rules import WEERT, ctx, item

GROUPS = [g.id for g in WEERT.groups]
DISTRICTS = [d.id for d in WEERT.districts]
CATEGORIES = [
    None,
    "suspect_fleeing",
    "missing_person",
    "burglary_wave",
    "suspicious_situation",
    "loose_paving",
]

messages = st.builds(
    lambda group, role, category, forward, districts, urgent, decision: item(
        group,
        role=role,
        category=category,
        forward_to=tuple(forward),
        urgent=urgent,
        decision=decision,
        target=TargetArea(districts=tuple(districts)) if districts else None,
    ),
    group=st.sampled_from([*GROUPS, None]),
    role=st.sampled_from(list(Role)),
    category=st.sampled_from(CATEGORIES),
    forward=st.lists(st.sampled_from(GROUPS), max_size=3),
    districts=st.lists(st.sampled_from(DISTRICTS), max_size=3),
    urgent=st.booleans(),
    decision=st.sampled_from(list(Decision)),
)
moments = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 1, 1), timezones=st.just(UTC))
recent = st.dictionaries(st.sampled_from(GROUPS), st.integers(0, 20))


def _route(message: ModeratedMessage, now: datetime, counts: dict[str, int]):  # type: ignore[no-untyped-def]
    return route(message, ctx(now=now, recent=counts))


@settings(max_examples=300, deadline=None)
@given(messages, moments, recent)
def test_no_destination_twice_and_never_back_to_the_sender(
    message: ModeratedMessage, now: datetime, counts: dict[str, int]
) -> None:
    """However the rules combine, one message reaches each group (or each member of a
    group reached one by one) once, and never its own group."""
    result = _route(message, now, counts)
    keys = [(d.destination.municipality, d.destination.key) for d in result.deliveries]
    assert len(keys) == len(set(keys))
    assert ("weert-demo", message.message.group_id) not in {
        (d.destination.municipality, d.destination.group_id) for d in result.deliveries
    }
    assert len({d.id for d in result.deliveries}) == len(result.deliveries)


@settings(max_examples=300, deadline=None)
@given(messages, moments, recent)
def test_rejected_and_held_messages_are_never_routed(
    message: ModeratedMessage, now: datetime, counts: dict[str, int]
) -> None:
    """A message moderation did not forward gets no delivery at all."""
    if message.moderation.decision is not Decision.FORWARD:
        assert _route(message, now, counts).deliveries == ()


@settings(max_examples=300, deadline=None)
@given(messages, moments, recent)
def test_urgent_messages_are_never_delayed(
    message: ModeratedMessage, now: datetime, counts: dict[str, int]
) -> None:
    """Quiet hours and rate limits never hold an urgent message."""
    if is_urgent(message):
        assert all(d.deliver_after is None for d in _route(message, now, counts).deliveries)


@settings(max_examples=300, deadline=None)
@given(messages, moments, recent)
def test_a_held_delivery_waits_at_most_a_day(
    message: ModeratedMessage, now: datetime, counts: dict[str, int]
) -> None:
    """A hold is always in the future and ends within a day."""
    for delivery in _route(message, now, counts).deliveries:
        if delivery.deliver_after is not None:
            assert now < delivery.deliver_after <= now + timedelta(days=1)

"""Routing rules, free of I/O: a message and the groups around it in, deliveries out.
Every delivery carries the chain of rules that chose it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from buurtalert.routing.directory import Group, GroupKind
from buurtalert.shared.models import Delivery, Destination, ModeratedMessage


class UnknownGroup(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class Decision:
    deliveries: tuple[Delivery, ...]
    rules: tuple[str, ...]


def route(item: ModeratedMessage, groups: Sequence[Group]) -> Decision:
    """Where a moderated message goes. ``groups`` holds the sender's group and the
    groups of its district."""
    message = item.message
    by_id = {g.id: g for g in groups}
    sender = by_id.get(message.group_id or "")
    if sender is None:
        raise UnknownGroup(f"group {message.group_id!r} is not in the directory of {message.municipality}")
    if sender.kind is GroupKind.BUURTGROEP:
        rule = "buurtgroep_to_regiegroep"
        targets = [g for g in groups if g.kind is GroupKind.REGIEGROEP and g.district == sender.district]
    else:
        # Passing a message down ("doorzetten") is a coordinator's explicit act, not automatic.
        return Decision(deliveries=(), rules=("regiegroep_message_stays",))
    deliveries = tuple(
        Delivery.for_destination(
            message,
            Destination(group_id=g.id, channel=g.channel, address=g.address, label=g.name),
            (rule,),
            saar_reminder=item.moderation.saar_reminder,
        )
        for g in targets
        if g.id != sender.id
    )
    return Decision(deliveries=deliveries, rules=(rule,) if deliveries else (rule, "no_regiegroep"))

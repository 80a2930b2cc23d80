"""Commit tracking: a subscriber's position is committed only after the messages
before it were handled *and* everything published meanwhile was confirmed.

Guarantees:

* No commit while a publish is unconfirmed: every publish handed to
  :meth:`CommitTracker.unconfirmed` is awaited before any position is committed.
* A failed publish rewinds: if one was not confirmed, the position is not committed
  but moved back to its last commit, so everything handled since is handled again.
* A commit never covers a message still in hand: a position is committed with its
  lock held, and the lock is held while one of its messages is handled. A batch
  subscriber whose keys go on across polls (:class:`~.reliable.Lanes`) holds no lock
  while they are handled: its position knows, per partition, the offsets still in hand
  (:meth:`Position.taken`, :meth:`Position.done`) and is committed up to the first of
  them (:meth:`Position.offsets`).
* Commits are batched, Kafka Streams' model: after ``commit_every`` messages or
  ``commit_interval`` seconds, in the handling path and by a periodic task for a
  subscriber that went quiet; :meth:`CommitTracker.stop` commits what is left.

The tracker needs nothing of Kafka but a consumer's ``commit`` and
``seek_to_committed`` (:class:`Consumer`), so it can be checked without a broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from aiokafka import TopicPartition

from buurtalert.shared.logging import get_logger

log = get_logger(__name__)


class Consumer(Protocol):
    """What the tracker uses of a Kafka consumer (aiokafka's ``AIOKafkaConsumer``)."""

    async def commit(self, offsets: dict[TopicPartition, int] | None = None) -> object: ...

    async def seek_to_committed(self) -> object: ...

    def assignment(self) -> set[TopicPartition]: ...


class Record(Protocol):
    """What a position tracks of a consumed record (aiokafka's ``ConsumerRecord``)."""

    topic: str
    partition: int
    offset: int


class Position:
    """The uncommitted progress of one subscriber. Its lock is held while a message
    is handled, so a commit never covers a message still in hand."""

    def __init__(self, since: float) -> None:
        self.lock = asyncio.Lock()
        self.consumer: Consumer | None = None
        self.uncommitted = 0
        self.since = since
        #: Whether it is committed by offsets (a subscriber whose records outlive their poll).
        self.by_offsets = False
        #: Per partition: the offsets handed to handlers and not done yet, and the offset
        #: after the last one handed out.
        self._in_hand: dict[TopicPartition, set[int]] = {}
        self._after: dict[TopicPartition, int] = {}
        #: Per partition, how often it was forgotten (see :meth:`forget`).
        self._epochs: dict[TopicPartition, int] = {}

    def taken(self, records: Iterable[Record]) -> list[tuple[Record, int]]:
        """``records`` were handed to their handlers: each with the epoch of its partition
        (hand it back to :meth:`done`)."""
        taken = []
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            self._in_hand.setdefault(tp, set()).add(record.offset)
            self._after[tp] = max(self._after.get(tp, 0), record.offset + 1)
            taken.append((record, self._epochs.get(tp, 0)))
        return taken

    def done(self, taken: Sequence[tuple[Record, int]], *, handled: bool = True) -> None:
        """Records (as :meth:`taken` answered) are out of hand: ``handled`` (or handed to
        the retry path), or left to the process that holds their partition now (not
        ``handled``: nothing to commit). A record taken before its partition was forgotten
        changes nothing: the copy read again since may still be in hand."""
        for record, epoch in taken:
            tp = TopicPartition(record.topic, record.partition)
            if self._epochs.get(tp, 0) == epoch:
                self._in_hand.get(tp, set()).discard(record.offset)
        if handled:
            self.uncommitted += len(taken)

    def offsets(self, assigned: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """What to commit of the partitions still ``assigned``: up to the first record
        in hand, or past the last handed out when none is."""
        return {
            tp: min(self._in_hand[tp]) if self._in_hand.get(tp) else after
            for tp, after in self._after.items()
            if tp in assigned
        }

    def forget(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        """After a rewind (all partitions) or a rebalance (those moved): what was handed
        out there comes again from the last commit, so nothing is committed for them
        until it does, and the records handed out before start a new epoch: their copies
        read again are tracked afresh, whatever becomes of the earlier ones."""
        for tp in set(self._after) | set(self._in_hand) if partitions is None else partitions:
            self._after.pop(tp, None)
            self._in_hand.pop(tp, None)
            self._epochs[tp] = self._epochs.get(tp, 0) + 1


class CommitTracker:
    """The positions of one service's subscribers and the publishes not yet confirmed;
    commits a position in batches, each only once every publish was confirmed."""

    def __init__(
        self,
        *,
        commit_every: int = 500,
        commit_interval: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.commit_every = commit_every
        self.commit_interval = commit_interval
        self._clock = clock
        self._positions: dict[str, Position] = {}
        self._unconfirmed: list[asyncio.Future[Any]] = []
        self._committer: asyncio.Task[None] | None = None

    def track(self, topic: str) -> Position:
        """Track the subscriber of ``topic`` (its full name), from now on."""
        position = self._positions[topic] = Position(self._clock())
        return position

    def position(self, topic: str) -> Position | None:
        """The position of the subscriber of ``topic``; None if it is not tracked."""
        return self._positions.get(topic)

    def unconfirmed(self, confirmation: asyncio.Future[Any]) -> None:
        """A publish the broker has yet to confirm: awaited before the next commit."""
        self._unconfirmed.append(confirmation)

    async def handled(self, position: Position, count: int) -> None:
        """``count`` more messages of ``position`` were handled (its lock held):
        commit if ``commit_every`` messages or ``commit_interval`` seconds are reached."""
        position.uncommitted += count
        due = self._clock() - position.since >= self.commit_interval
        if position.uncommitted >= self.commit_every or due:
            await self.commit(position)

    async def commit(self, position: Position) -> None:
        """Confirm every publish, then commit ``position``; with its lock held. If a
        publish was not confirmed, rewind to the last commit instead."""
        consumer = position.consumer
        if not position.uncommitted or consumer is None:
            return
        pending, self._unconfirmed = self._unconfirmed, []
        try:
            await asyncio.gather(*pending)
        except Exception:
            # Something handled since the last commit may not have reached Kafka:
            # go back to the last commit and handle it all again.
            log.exception("publish_unconfirmed_rewinding")
            await self.rewind(position)
            return
        if position.by_offsets:
            offsets = position.offsets(consumer.assignment())
            if offsets:
                await consumer.commit(offsets)
        else:
            await consumer.commit()
        position.uncommitted = 0
        position.since = self._clock()

    async def rewind(self, position: Position) -> None:
        """Go back to the last commit of ``position`` (its lock held): the consumer
        delivers again everything after it."""
        if position.consumer is not None:
            await position.consumer.seek_to_committed()
        position.forget()
        position.uncommitted = 0

    async def start(self) -> None:
        """Start committing periodically what quiet subscribers handled."""
        self._committer = asyncio.create_task(self._commit_periodically())

    async def stop(self) -> None:
        """Stop the periodic commit and commit what was handled, each position once
        the message in hand (if any) is done."""
        if self._committer:
            self._committer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._committer
        for position in self._positions.values():
            async with position.lock:
                await self.commit(position)

    async def _commit_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.commit_interval)
            for position in self._positions.values():
                if position.uncommitted and not position.lock.locked():
                    async with position.lock:
                        await self.commit(position)

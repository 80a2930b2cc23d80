"""Kafka with at-least-once semantics, batched commits, and a retry → dead-letter path.

* :mod:`.broker`: the producers are idempotent (``enable_idempotence``, ``acks=all``);
  each topic's publisher is documented from the topology; the message path publishes
  through :class:`Sender`, without FastStream's per-record publishing pipeline.
* :mod:`.commits`: a consumer's position is committed only after the messages before
  it were handled *and* everything their handlers published was confirmed by the
  broker: handlers publish through :meth:`Reliable.publish`, which does not wait for
  each confirmation; the tracker confirms them all and then commits, every
  ``commit_every`` messages or ``commit_interval`` seconds (Kafka Streams' model).
  A crash redelivers what was not committed, so handlers must be idempotent:
  their output is a function of their input with deterministic ids, so handling
  a message twice publishes the same records again, which the next stage absorbs;
  the one effect that cannot be repeated, a send, is guarded by the channels ledger.
* :mod:`.retry`: a handler that raises does not skip its message: it is published
  to the service's retry topic with a delay, and after the last delay to its
  dead-letter topic with the error. Input that cannot be parsed, and
  :class:`PermanentError`, go straight to the dead-letter topic.
* :mod:`.reliable`: :class:`Reliable` subscribes a service's handlers through both;
  :meth:`Reliable.batch_subscriber` consumes a topic in batches and handles the
  records of different keys concurrently, each key's in order (channels: a large
  fan-out keeps the provider's rate, not one round trip per delivery).
"""

from buurtalert.shared.kafka.broker import Sender, create_broker, topic_publisher
from buurtalert.shared.kafka.commits import CommitTracker, Consumer, Position
from buurtalert.shared.kafka.reliable import Reliable, by_key
from buurtalert.shared.kafka.retry import (
    Encoding,
    Handler,
    PermanentError,
    Publisher,
    RetryPath,
    backoff,
    decode_payload,
    encode_payload,
)

__all__ = [
    "CommitTracker",
    "Consumer",
    "Encoding",
    "Handler",
    "PermanentError",
    "Position",
    "Publisher",
    "Reliable",
    "RetryPath",
    "Sender",
    "backoff",
    "by_key",
    "create_broker",
    "decode_payload",
    "encode_payload",
    "topic_publisher",
]

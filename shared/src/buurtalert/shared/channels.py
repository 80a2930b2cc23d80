"""The channel-adapter interface that built-in and partner adapters implement.

An adapter describes itself in class attributes, so the core can reason about it
without sending anything; its configuration is a pydantic model with secrets as
``SecretStr``; it is discovered through the entry-point group ``buurtalert.channels``.
An adapter that fails to load or to configure is logged and skipped.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from buurtalert.shared.logging import get_logger
from buurtalert.shared.models import Delivery

ENTRY_POINT_GROUP = "buurtalert.channels"

log = get_logger(__name__)


class AdapterConfig(BaseModel):
    """Base of every adapter's configuration; declare secrets as ``SecretStr``.
    Validation errors leave out the input, which may hold a secret."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


C = TypeVar("C", bound=AdapterConfig)


class SendResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    provider_message_id: str | None = None


@dataclass(frozen=True, slots=True)
class Attachment:
    """A medium to send along with a delivery: its bytes, and the type sniffed from them."""

    storage_ref: str
    mime_type: str
    data: bytes = field(repr=False)
    filename: str | None = None


class TierSchedule(Protocol):
    """The send times of provider accounts with a throughput tier, shared by every
    channels process of a deployment (the channels service keeps it in the database)."""

    async def reserve(self, account: str, now: float, count: int, interval: float) -> float:
        """Take ``count`` send times ``interval`` seconds apart for ``account``, the
        first free ones at or around ``now`` (wall-clock seconds); answers the first.
        It may lie just before ``now`` (a block of times already begun): a sender skips
        the times that have passed."""


class DeliveryError(Exception):
    """A send failed. ``permanent`` failures go to the dead-letter topic at once;
    others are retried with backoff, and not before ``retry_after`` seconds (when the
    adapter knows a send cannot succeed sooner)."""

    permanent: ClassVar[bool] = False

    def __init__(self, message: str, *, provider_code: str | None = None, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.provider_code = provider_code
        self.retry_after = retry_after


class TransientDeliveryError(DeliveryError):
    permanent = False


class PermanentDeliveryError(DeliveryError):
    permanent = True


class ChannelAdapter(ABC, Generic[C]):
    """One way of delivering a :class:`Delivery`. Subclass, set the class attributes,
    implement :meth:`send`, and register the class under ``buurtalert.channels``."""

    #: The adapter's name, also the name of its delivery topic (``deliveries.<name>``).
    name: ClassVar[str]
    config_model: ClassVar[type[AdapterConfig]]
    #: Longest text the channel accepts; longer texts are cut by the renderer.
    max_text_length: ClassVar[int]
    supports_media: ClassVar[bool] = False

    def __init__(self, config: C) -> None:
        self.config = config

    async def start(self) -> None:
        """Open connections; called once before the first send."""

    async def close(self) -> None:
        """Release connections; called once at shutdown."""

    @abstractmethod
    async def send(self, delivery: Delivery, text: str) -> SendResult:
        """Send ``text`` (already rendered for this channel) for ``delivery``.

        Must raise :class:`TransientDeliveryError` or :class:`PermanentDeliveryError`
        on failure; must use ``delivery.id`` as the provider-side idempotency key or
        message id where the provider has one, so a resend can be recognised."""

    #: Whether the adapter sends at a provider's pace (a cap on the whole account): its
    #: delivery subscriber then takes the next poll while the last one is still being sent
    #: (``Reliable.batch_subscriber(lanes=True)``), so the pace does not pause between
    #: polls. An adapter that sends as fast as its provider answers has no pace to keep,
    #: and handles a poll before it takes the next (which gathers a busy moment's records
    #: into fewer, larger batches).
    paced: ClassVar[bool] = False

    @property
    def in_hand(self) -> int:
        """How many deliveries this adapter may have in hand at once (claimed, waiting for
        its pace or its provider's answer): enough to keep its provider's rate over the
        round trips, few enough that a process which loses its partitions to another does
        not keep a long queue of claimed deliveries (see :meth:`share`). By default 256."""
        return 256

    def share(self, fraction: float) -> None:
        """This process now sends ``fraction`` (0 to 1) of the channel's deliveries: the
        share of the delivery topic's partitions it was assigned. An adapter whose provider
        caps a whole account (a business number's tier) scales its own pace by it, so that
        the processes of one deployment stay under the cap together; by default nothing."""

    def share_tier(self, schedule: TierSchedule) -> None:
        """The schedule the channels processes share: an adapter whose provider caps a
        whole account takes its send times from it (channels' ``SharedThrottle``), so
        the processes share the cap by what each has to send, and keeps its share by
        partitions (:meth:`share`) for when the schedule cannot be reached; by default
        nothing."""

    async def send_with_media(
        self, delivery: Delivery, text: str, attachments: Sequence[Attachment]
    ) -> SendResult:
        """Send ``text`` with ``attachments`` (called instead of :meth:`send` when the
        delivery carries media and ``supports_media`` is set). By default the media
        are left out; adapters that can send them override this."""
        return await self.send(delivery, text)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


def load_adapters(configs: Mapping[str, Mapping[str, Any]]) -> dict[str, ChannelAdapter[Any]]:
    """Instantiate every registered adapter that has a configuration in ``configs``.

    An adapter that cannot be imported or whose configuration is invalid is logged
    and skipped: one broken plugin never takes the channels service down."""
    adapters: dict[str, ChannelAdapter[Any]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in configs:
            continue
        try:
            cls = ep.load()
            if not (isinstance(cls, type) and issubclass(cls, ChannelAdapter)):
                raise TypeError(f"{ep.value} is not a ChannelAdapter subclass")
            config = cls.config_model.model_validate(dict(configs[ep.name]))
            adapters[ep.name] = cls(config)
        except (ImportError, AttributeError, TypeError, ValidationError) as exc:
            log.error("channel_adapter_skipped", adapter=ep.name, error=str(exc))
    for name in configs:
        if name not in adapters:
            log.warning("channel_adapter_unavailable", adapter=name)
    return adapters

"""The conformance kit for channel adapters: what every adapter must do, as tests a
partner municipality runs against their own adapter with pytest.

Subclass :class:`AdapterConformance` in a test module, name the adapter class and a
valid configuration, and answer the two questions only the partner can: how to get
an adapter wired to a local stand-in of *their* provider that behaves as asked
(:meth:`~AdapterConformance.adapter_against`), and which idempotency keys that
stand-in received (:meth:`~AdapterConformance.keys_received`). The kit then checks
configuration validation, the declared capabilities, the entry point, idempotency
and error mapping. See ``examples/partner-adapter`` for a complete example."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from importlib.metadata import entry_points
from typing import Any, ClassVar, Literal

import pytest
from pydantic import BaseModel, SecretStr, ValidationError

from buurtalert.shared.channels import (
    ENTRY_POINT_GROUP,
    ChannelAdapter,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from buurtalert.shared.models import Delivery, Destination

Behaviour = Literal["accept", "transient", "permanent"]


def sample_delivery(channel: str, address: str, number: int = 1) -> Delivery:
    """A delivery as routing makes them, for the kit's checks."""
    return Delivery(
        id=f"dlv_conformance_{number}",
        message_id="msg_conformance",
        municipality="conformance",
        destination=Destination(group_id="conformance-group", channel=channel, address=address),
        text="Verdachte man met rode jas bij de school, 112 is gebeld.",
        rules=("buurtgroep_to_regiegroep",),
    )


def _secret_values(config: BaseModel) -> list[str]:
    return [v.get_secret_value() for v in config.__dict__.values() if isinstance(v, SecretStr)]


class AdapterConformance(ABC):
    """Base class of a partner's conformance tests (collected by pytest as ``Test...``)."""

    adapter_class: ClassVar[type[ChannelAdapter[Any]]]
    #: A configuration the adapter accepts (as it would appear in the municipality file).
    valid_config: ClassVar[dict[str, Any]]
    #: Configurations it must refuse, each with a word the error should contain.
    invalid_configs: ClassVar[list[tuple[dict[str, Any], str]]] = []
    #: The address a delivery of this channel carries.
    address: ClassVar[str]

    @abstractmethod
    async def adapter_against(self, behaviour: Behaviour) -> ChannelAdapter[Any]:
        """An adapter (configured from ``valid_config``) wired to a local stand-in of
        the provider that accepts, fails transiently (a 503, a timeout) or refuses
        permanently (an unknown recipient)."""

    @abstractmethod
    def keys_received(self) -> list[str]:
        """The idempotency keys (or message ids) the stand-in received, in order."""

    # --- configuration ----------------------------------------------------------------

    def test_valid_configuration_is_accepted_and_its_secrets_stay_secret(self) -> None:
        config = self.adapter_class.config_model.model_validate(self.valid_config)
        for secret in _secret_values(config):
            assert secret not in repr(config) and secret not in str(config), (
                "a secret shows in the config's repr"
            )

    def test_invalid_configurations_are_refused_with_a_reason(self) -> None:
        for config, word in self.invalid_configs:
            with pytest.raises(ValidationError) as refused:
                self.adapter_class.config_model.model_validate(config)
            assert word in str(refused.value), f"the error for {config} does not mention {word!r}"

    def test_unknown_configuration_keys_are_refused(self) -> None:
        with pytest.raises(ValidationError):
            self.adapter_class.config_model.model_validate({**self.valid_config, "no_such_option": 1})

    # --- capabilities -----------------------------------------------------------------

    def test_declared_capabilities_are_sound(self) -> None:
        cls = self.adapter_class
        assert re.fullmatch(r"[a-z0-9-]+", cls.name), "name: lower case letters, digits and dashes"
        assert isinstance(cls.max_text_length, int) and cls.max_text_length > 0
        assert isinstance(cls.supports_media, bool)

    def test_registered_under_the_entry_point_group(self) -> None:
        found = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
        assert self.adapter_class.name in found, f"register the adapter under {ENTRY_POINT_GROUP}"
        assert found[self.adapter_class.name].load() is self.adapter_class

    # --- sending ----------------------------------------------------------------------

    async def test_a_delivery_is_sent_with_its_id_as_idempotency_key(self) -> None:
        adapter = await self.adapter_against("accept")
        delivery = sample_delivery(self.adapter_class.name, self.address)
        await adapter.start()
        try:
            await adapter.send(delivery, delivery.text)
            await adapter.send(delivery, delivery.text)  # a resend after a crash
        finally:
            await adapter.close()
        assert self.keys_received() == [delivery.id, delivery.id], (
            "the provider must see the delivery id both times"
        )

    async def test_text_of_the_declared_maximum_length_is_sent(self) -> None:
        adapter = await self.adapter_against("accept")
        delivery = sample_delivery(self.adapter_class.name, self.address, 2)
        await adapter.start()
        try:
            await adapter.send(delivery, "x" * self.adapter_class.max_text_length)
        finally:
            await adapter.close()

    @pytest.mark.parametrize(
        ("behaviour", "error"),
        [("transient", TransientDeliveryError), ("permanent", PermanentDeliveryError)],
    )
    async def test_failures_map_to_transient_or_permanent(
        self, behaviour: Behaviour, error: type[Exception]
    ) -> None:
        adapter = await self.adapter_against(behaviour)
        delivery = sample_delivery(self.adapter_class.name, self.address, 3)
        await adapter.start()
        try:
            with pytest.raises(error):
                await adapter.send(delivery, delivery.text)
        finally:
            await adapter.close()

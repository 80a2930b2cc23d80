"""The conformance kit for channel adapters: what every adapter must do, as tests a
partner municipality runs against their own adapter with pytest.

Subclass :class:`AdapterConformance` in a test module, name the adapter class, a
valid configuration and configurations it must refuse, and answer the questions only
the partner can: how to get an adapter wired to a fresh local stand-in of *their*
provider that behaves as asked (:meth:`~AdapterConformance.adapter_against`), and
what that stand-in received: the idempotency keys
(:meth:`~AdapterConformance.keys_received`) and the texts
(:meth:`~AdapterConformance.texts_received`). The kit then checks configuration
validation and secrets, the declared capabilities, the entry point, idempotency,
that a text of the declared maximum length arrives whole, and error mapping.

Every check asserts something the stand-in or the configuration shows. What a
provider cannot do is declared, never skipped: a configuration without secrets
(``config_has_no_secrets``), a provider that takes no idempotency key
(``sends_idempotency_key``), one that cannot tell a refusal from an outage
(``detects_permanent_failures``); the kit then checks what still holds instead.
See ``examples/partner-adapter`` for a complete example."""

from __future__ import annotations

import re
import types
from abc import ABC, abstractmethod
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from importlib.metadata import entry_points
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin

import pytest
from pydantic import Secret, SecretBytes, SecretStr, ValidationError

from buurtalert.shared.channels import (
    ENTRY_POINT_GROUP,
    ChannelAdapter,
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from buurtalert.shared.models import Delivery, Destination

Behaviour = Literal["accept", "transient", "permanent"]
RecipientType = Literal["group", "individual"]

#: Words that, in a configuration field's name, say that the field holds a secret.
SECRET_WORDS = frozenset(
    {"token", "secret", "password", "passwd", "passphrase", "key", "apikey", "credential"}
)
#: The pydantic types that keep a value out of reprs and errors.
SECRET_TYPES = (SecretStr, SecretBytes, Secret)
#: Secrets in ``valid_config`` are at least this long, so the kit can tell one from
#: the rest of a repr.
MIN_SECRET_LENGTH = 6
_NONE_DECLARED = (
    "the configuration declares no secret: type its credentials as SecretStr, or set "
    "config_has_no_secrets = True if it truly holds none"
)
#: The text of the kit's deliveries: a report, with accented letters and a line break.
SAMPLE_TEXT = "Verdachte man met rode jas bij de school, 112 is gebeld.\nÉén buur (Anaïs) zag hem om 14:05."


def sample_delivery(
    channel: str, address: str, number: int = 1, *, recipient_type: RecipientType = "group"
) -> Delivery:
    """A delivery as routing makes them, for the kit's checks."""
    return Delivery(
        id=f"dlv_conformance_{number}",
        message_id="msg_conformance",
        municipality="conformance",
        destination=Destination(
            group_id="conformance-group", channel=channel, address=address, recipient_type=recipient_type
        ),
        text=SAMPLE_TEXT,
        rules=("buurtgroep_to_regiegroep",),
    )


def text_of_length(length: int) -> str:
    """A text of exactly ``length`` characters (not bytes): the sample report repeated,
    line breaks and accented letters included, never ending in white space."""
    unit = SAMPLE_TEXT + "\n"
    text = (unit * (length // len(unit) + 1))[:length]
    return text[:-1] + "." if text[-1:].isspace() else text


def named_as_secret(name: str) -> bool:
    """Whether a field's name says it holds a secret (``access_token``, ``apiKey``,
    ``client_secret``, ``password``, ``credentials``)."""
    for word in re.split(r"_+|(?<=[a-z0-9])(?=[A-Z])", name):
        word = word.lower()
        if word in SECRET_WORDS or (word.endswith("s") and word[:-1] in SECRET_WORDS):
            return True
    return False


def holds_secret(annotation: Any) -> bool:
    """Whether a field of this declared type keeps its value secret: a secret type, an
    optional one, or a collection whose values are all secrets (``dict[str, SecretStr]``)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return holds_secret(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        members = [a for a in get_args(annotation) if a is not type(None)]
        return bool(members) and all(holds_secret(a) for a in members)
    if isinstance(origin, type):
        if issubclass(origin, SECRET_TYPES):  # Secret[str]
            return True
        args = [a for a in get_args(annotation) if a is not Ellipsis]
        if issubclass(origin, Mapping):
            return len(args) == 2 and holds_secret(args[1])
        if issubclass(origin, list | tuple | AbstractSet):
            return bool(args) and all(holds_secret(a) for a in args)
        return False
    return isinstance(annotation, type) and issubclass(annotation, SECRET_TYPES)


def secret_values(value: Any) -> list[str]:
    """The plain values of the secrets in a configuration field's value."""
    if isinstance(value, SECRET_TYPES):
        raw = value.get_secret_value()
        return [raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)]
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in secret_values(v)]
    if isinstance(value, list | tuple | AbstractSet):
        return [s for v in value for s in secret_values(v)]
    return []


class AdapterConformance(ABC):
    """Base class of a partner's conformance tests (collected by pytest as ``Test...``)."""

    adapter_class: ClassVar[type[ChannelAdapter[Any]]]
    #: A configuration the adapter accepts (as it would appear in the municipality
    #: file), with a value of at least six characters for every secret field.
    valid_config: ClassVar[dict[str, Any]]
    #: Configurations it must refuse, each with a word the error should contain (at least one).
    invalid_configs: ClassVar[list[tuple[dict[str, Any], str]]] = []
    #: The address a delivery of this channel carries. Set it in :meth:`adapter_against`
    #: when it depends on the stand-in (a URL with the port it listens on).
    address: str
    #: The kind of destination the kit's deliveries go to.
    recipient_type: ClassVar[RecipientType] = "group"
    #: Set to True when the configuration holds no secret at all (no token, password,
    #: key or credential): the kit then checks that it indeed declares none.
    config_has_no_secrets: ClassVar[bool] = False
    #: Fields whose names sound secret but hold nothing secret (a ``public_key``).
    public_fields: ClassVar[frozenset[str]] = frozenset()
    #: Set to False when the provider takes no idempotency key or message id at all:
    #: a resend then reaches the recipient twice, and the kit checks that it does.
    sends_idempotency_key: ClassVar[bool] = True
    #: Set to False when the adapter cannot tell a provider's refusal from an outage
    #: (its client only says whether it worked): the kit then checks that a refusal
    #: is raised as :class:`TransientDeliveryError`, so the delivery is retried and
    #: ends in the dead-letter topic rather than being lost.
    detects_permanent_failures: ClassVar[bool] = True

    @abstractmethod
    async def adapter_against(self, behaviour: Behaviour) -> ChannelAdapter[Any]:
        """An adapter (configured from ``valid_config``) wired to a fresh local stand-in
        of the provider that accepts, fails transiently (a 503, a timeout) or refuses
        permanently (an unknown recipient). Called once per check."""

    @abstractmethod
    def keys_received(self) -> list[str]:
        """The idempotency keys (or message ids) the stand-in received, in order. Not
        asked when ``sends_idempotency_key`` is False."""

    @abstractmethod
    def texts_received(self) -> list[str]:
        """The texts of the sends the stand-in accepted, in order, as its recipient
        would read them (a repeat it recognised counts each time)."""

    def delivery(self, number: int) -> Delivery:
        return sample_delivery(
            self.adapter_class.name, self.address, number, recipient_type=self.recipient_type
        )

    def _secret_fields(self) -> list[str]:
        fields = self.adapter_class.config_model.model_fields
        return [name for name, info in fields.items() if holds_secret(info.annotation)]

    # --- configuration ----------------------------------------------------------------

    def test_valid_configuration_is_accepted_and_makes_an_adapter(self) -> None:
        """``valid_config`` validates, and the adapter class is constructed from the result
        alone, as the channels service does."""
        config = self.adapter_class.config_model.model_validate(self.valid_config)
        adapter = self.adapter_class(config)
        assert adapter.config == config, "the adapter keeps the configuration it was given"

    def test_invalid_configurations_are_refused_with_a_reason(self) -> None:
        """Each configuration in ``invalid_configs`` is refused, and the error names the word given."""
        assert self.invalid_configs, "name at least one configuration the adapter must refuse"
        for config, word in self.invalid_configs:
            with pytest.raises(ValidationError) as refused:
                self.adapter_class.config_model.model_validate(config)
            assert word in str(refused.value), f"the error for {config} does not mention {word!r}"

    def test_unknown_configuration_keys_are_refused(self) -> None:
        """A misspelt option is an error that names it, not silently ignored."""
        with pytest.raises(ValidationError) as refused:
            self.adapter_class.config_model.model_validate({**self.valid_config, "no_such_option": 1})
        assert "no_such_option" in str(refused.value)

    def test_secret_fields_are_typed_as_secrets(self) -> None:
        """Every field whose name says it holds a secret (token, secret, password, key,
        credential) is declared as ``SecretStr`` (or another secret type, or a collection
        of them); a configuration with no secret field says so with ``config_has_no_secrets``."""
        fields = self.adapter_class.config_model.model_fields
        unknown = sorted(self.public_fields - set(fields))
        assert not unknown, f"public_fields names fields the configuration does not have: {unknown}"
        plain = [
            name
            for name, info in fields.items()
            if named_as_secret(name) and name not in self.public_fields and not holds_secret(info.annotation)
        ]
        assert not plain, (
            f"{plain}: the name says secret, the type does not; declare them as SecretStr "
            "(or list them in public_fields if they hold nothing secret)"
        )
        secret = self._secret_fields()
        if self.config_has_no_secrets:
            assert not secret, f"config_has_no_secrets is set, yet {secret} hold secrets"
        else:
            assert secret, _NONE_DECLARED

    def test_secrets_stay_out_of_reprs_and_errors(self) -> None:
        """The secrets ``valid_config`` gives never show in the configuration's repr or str,
        the adapter's repr, or the error for an invalid configuration."""
        secret = self._secret_fields()
        if self.config_has_no_secrets:
            assert not secret, f"config_has_no_secrets is set, yet {secret} hold secrets"
            return
        assert secret, _NONE_DECLARED
        config = self.adapter_class.config_model.model_validate(self.valid_config)
        values = {name: secret_values(getattr(config, name)) for name in secret}
        missing = [name for name, found in values.items() if not found]
        assert not missing, (
            f"give the secret fields {missing} a value in valid_config, so the kit can check them"
        )
        short = [name for name, found in values.items() if any(len(v) < MIN_SECRET_LENGTH for v in found)]
        assert not short, (
            f"give the secret fields {short} values of at least {MIN_SECRET_LENGTH} characters in "
            "valid_config, so the kit can tell them from the rest of a repr"
        )
        every = [v for found in values.values() for v in found]
        with pytest.raises(ValidationError) as refused:
            self.adapter_class.config_model.model_validate({**self.valid_config, "no_such_option": every[0]})
        shown = {
            "the configuration's repr": repr(config),
            "the configuration's str": str(config),
            "the adapter's repr": repr(self.adapter_class(config)),
            "the error for an invalid configuration": str(refused.value),
        }
        leaks = [where for where, text in shown.items() if any(v in text for v in every)]
        assert not leaks, f"a secret shows in {', '.join(leaks)}"

    # --- capabilities -----------------------------------------------------------------

    def test_declared_capabilities_are_sound(self) -> None:
        """A name fit for a topic, a positive maximum text length, a yes or no on media."""
        cls = self.adapter_class
        assert re.fullmatch(r"[a-z0-9-]+", cls.name), "name: lower case letters, digits and dashes"
        assert isinstance(cls.max_text_length, int) and cls.max_text_length > 0
        assert isinstance(cls.supports_media, bool)

    def test_registered_under_the_entry_point_group(self) -> None:
        """The adapter is found under its name in the ``buurtalert.channels`` entry points."""
        found = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
        assert self.adapter_class.name in found, f"register the adapter under {ENTRY_POINT_GROUP}"
        assert found[self.adapter_class.name].load() is self.adapter_class, (
            f"the entry point {self.adapter_class.name!r} names another class"
        )

    # --- sending ----------------------------------------------------------------------

    async def _send(
        self, behaviour: Behaviour, number: int, text: str | None = None, times: int = 1
    ) -> Delivery:
        """Send delivery ``number`` (its own text unless ``text`` is given) ``times`` times
        through a fresh adapter and stand-in behaving as ``behaviour`` says."""
        adapter = await self.adapter_against(behaviour)
        delivery = self.delivery(number)  # after: the address may name the stand-in
        await adapter.start()
        try:
            for _ in range(times):
                await adapter.send(delivery, delivery.text if text is None else text)
        finally:
            await adapter.close()
        return delivery

    async def test_a_delivery_is_sent_with_its_id_as_idempotency_key(self) -> None:
        """Sent twice (a resend after a crash), the delivery reaches the provider both times
        with its text and with its id as the idempotency key. When the provider takes no key
        (``sends_idempotency_key = False``) both sends still arrive: the recipient sees a repeat."""
        delivery = await self._send("accept", 1, times=2)
        assert self.texts_received() == [delivery.text, delivery.text], (
            "the provider must receive the delivery's text both times"
        )
        if self.sends_idempotency_key:
            assert self.keys_received() == [delivery.id, delivery.id], (
                "the provider must see the delivery id both times"
            )

    async def test_text_of_the_declared_maximum_length_is_sent(self) -> None:
        """A text of exactly ``max_text_length`` characters (the renderer's cut) reaches the
        provider whole and unchanged."""
        text = text_of_length(self.adapter_class.max_text_length)
        await self._send("accept", 2, text)
        received = self.texts_received()
        assert len(received) == 1, f"the stand-in accepted {len(received)} sends, not 1"
        assert len(received[0]) == len(text), f"{len(text)} characters were sent, {len(received[0])} arrived"
        assert received[0] == text, "the text arrived changed"

    @pytest.mark.parametrize("behaviour", ["transient", "permanent"])
    async def test_failures_map_to_transient_or_permanent(self, behaviour: Behaviour) -> None:
        """An outage raises :class:`TransientDeliveryError`, a refusal
        :class:`PermanentDeliveryError`; an adapter that cannot tell them apart
        (``detects_permanent_failures = False``) raises the transient error for both."""
        expected: type[DeliveryError] = TransientDeliveryError
        if behaviour == "permanent" and self.detects_permanent_failures:
            expected = PermanentDeliveryError
        with pytest.raises(Exception) as failed:  # the type is checked below, with a message
            await self._send(behaviour, 3)
        assert isinstance(failed.value, expected), (
            f"a {behaviour} failure raised {type(failed.value).__name__}: {failed.value}; "
            f"expected {expected.__name__}"
        )
        assert str(failed.value), "the error must say what failed"

"""The shared library: topology, pseudonyms, ids, rendering, adapter loading."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from pydantic import SecretStr

from buurtalert.channels.render import render
from buurtalert.shared.channels import load_adapters
from buurtalert.shared.kafka import backoff
from buurtalert.shared.models import Delivery, Destination, stable_id
from buurtalert.shared.pseudonym import pseudonymise
from buurtalert.shared.settings import MunicipalityConfig, load_municipality_config, token_sha256
from buurtalert.shared.texts import line
from buurtalert.shared.topics import (
    DELIVERY_TOPICS,
    SERVICES,
    TOPICS,
    consumed_by,
    delivery_topic,
    deployment_topics,
    owned_by,
)
from buurtalert.shared.yamlfile import ConfigFileError

KEY = SecretStr("a-key-of-sixteen-chars")


def test_every_topic_is_declared_once_with_one_known_owner() -> None:
    """Topic names are unique and each is owned by one of the services."""
    assert not [n for n, c in Counter(t.name for t in TOPICS).items() if c > 1]
    assert {t.owner for t in TOPICS} <= set(SERVICES)


def test_each_service_consumes_what_another_owns() -> None:
    """The pipeline is connected: moderation reads ingest's output, routing moderation's..."""
    # moderation reads ingest's messages and applies the review console's decisions
    assert [t.owner for t in consumed_by("moderation") if not t.name.endswith(".retry")] == [
        "ingest",
        "review",
    ]
    # the review console queues what moderation held or proposed, and authorises the
    # outcome commands ingest read in the regiegroepen, and counts the answers to polls;
    # it reads its own removals back to ask channels to change a WhatsApp group (retried)
    assert [t.name for t in consumed_by("review") if not t.name.endswith(".retry")] == [
        "moderation.review",
        "moderation.proposals",
        "moderation.decisions",
        "ingest.outcome-commands",
        "ingest.poll-answers",
    ]
    # routing routes moderation's messages and tells the groups the outcomes review recorded
    assert [t.owner for t in consumed_by("routing") if not t.name.endswith(".retry")] == [
        "moderation",
        "review",
    ]
    # channels delivers routing's deliveries, explains moderation's rejections to their
    # authors, sends the review console's notices, and records what providers report
    # (through ingest) against the deliveries
    assert {t.owner for t in consumed_by("channels") if not t.name.endswith(".retry")} == {
        "ingest",
        "moderation",
        "routing",
        "review",
    }
    assert {t.name for t in owned_by("channels")} >= {"deliveries.status", "channels.deadletter"}


def test_a_partner_adapter_gets_a_delivery_topic_from_routing_to_channels() -> None:
    """A built-in adapter's delivery topic comes from the same rule as a partner's."""
    assert delivery_topic("whatsapp") == DELIVERY_TOPICS["whatsapp"]
    assert DELIVERY_TOPICS["whatsapp"].name == "deliveries.whatsapp"
    partner = delivery_topic("meldingenportaal")
    assert (partner.name, partner.owner, partner.consumers) == (
        "deliveries.meldingenportaal",
        "routing",
        ("channels",),
    )
    extra = deployment_topics(["email", "meldingenportaal"])[len(TOPICS) :]
    assert [t.name for t in extra] == ["deliveries.meldingenportaal"]
    with pytest.raises(ValueError, match="not a channel name"):
        delivery_topic("../status")


def test_channel_names_in_the_municipality_file_must_make_topic_names(tmp_path: Path) -> None:
    """A channel name that cannot be part of a topic name is refused when the file is loaded."""
    path = tmp_path / "municipality.yaml"
    path.write_text(
        "id: weert\nname: Weert\ncountry: NL\npseudonym_key: a-key-of-sixteen-chars\n"
        "channels:\n  Meldingen Portaal: {}\n"
    )
    with pytest.raises(ConfigFileError) as caught:
        load_municipality_config(path)
    assert "Meldingen Portaal" in caught.value.problems[0]


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("+31 6 1234 5678", "0031612345678"),
        ("Jan.Jansen@Example.NL", "jan.jansen@example.nl"),
    ],
)
def test_pseudonym_is_stable_for_the_same_address(a: str, b: str) -> None:
    """Different spellings of one address give one pseudonym, which hides the address."""
    assert pseudonymise(KEY, a) == pseudonymise(KEY, b)
    assert "5678" not in pseudonymise(KEY, a) and "jansen" not in pseudonymise(KEY, b)


def test_pseudonym_depends_on_the_municipality_key() -> None:
    """Another municipality's key gives another pseudonym for the same person."""
    assert pseudonymise(KEY, "0612345678") != pseudonymise(SecretStr("another-key-16-chars"), "0612345678")


def test_stable_id_is_deterministic_and_separates_parts() -> None:
    """Same parts, same id; parts are not simply concatenated."""
    assert stable_id("m", "a", "bc") == stable_id("m", "a", "bc")
    assert stable_id("m", "a", "bc") != stable_id("m", "ab", "c")


def test_municipality_secrets_do_not_appear_in_repr() -> None:
    """The pseudonym key and API tokens are masked in reprs (and so in logs)."""
    m = MunicipalityConfig(
        id="x",
        name="X",
        country="NL",
        pseudonym_key=SecretStr("super-secret-key-123"),
        api_clients=({"organisation": "o", "token_sha256": token_sha256("tok-secret-xyz")},),
    )  # type: ignore[arg-type]
    assert "super-secret-key-123" not in repr(m) and "tok-secret-xyz" not in repr(m)


def _delivery(text: str, *, saar: bool = False) -> Delivery:
    return Delivery(
        id="dlv_1",
        message_id="msg_1",
        municipality="m",
        text=text,
        rules=("r",),
        destination=Destination(group_id="g", channel="email", address="a@b.test"),
        saar_reminder=saar,
    )


def test_render_cuts_long_text_but_keeps_the_saar_reminder() -> None:
    """A text over the channel's limit is shortened with an ellipsis; the reminder survives."""
    out = render(_delivery("x" * 500, saar=True), max_length=200)
    assert len(out) <= 200
    assert out.endswith(line("delivery_saar_reminder", "nl"))
    assert "…" in out


def test_load_adapters_skips_a_bad_configuration() -> None:
    """An adapter with an invalid configuration is skipped, the others still load."""
    adapters = load_adapters({"email": {"no_such_option": 1}})
    assert adapters == {}
    adapters = load_adapters({"email": {"from_address": "x@y.test"}})
    assert list(adapters) == ["email"]


def test_config_file_errors_name_the_line(tmp_path: Path) -> None:
    """A validation error in a YAML file says on which line the bad value stands."""
    path = tmp_path / "municipality.yaml"
    path.write_text("id: weert\nname: Weert\ncountry: DE\npseudonym_key: a-key-of-sixteen-chars\n")
    with pytest.raises(ConfigFileError) as caught:
        load_municipality_config(path)
    [problem] = caught.value.problems
    assert problem.startswith("line 3: country:")


def test_broken_yaml_is_reported_with_its_line(tmp_path: Path) -> None:
    """Broken YAML syntax is reported, with its line, as a ConfigFileError (no traceback)."""
    path = tmp_path / "directory.yaml"
    path.write_text("municipality: x\ngroups:\n  - id: [unclosed\n")
    with pytest.raises(ConfigFileError, match="line 4: not valid YAML"):
        load_municipality_config(path)


def test_retry_backoff_is_jittered_around_its_delay() -> None:
    """Messages failing together come back spread out, never all at once."""
    samples = [backoff(10.0) for _ in range(500)]
    assert all(5.0 <= s <= 15.0 for s in samples)
    assert len({round(s, 3) for s in samples}) > 400
    assert min(samples) < 7.0 and max(samples) > 13.0

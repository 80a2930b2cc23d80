"""The WhatsApp Cloud API adapter against the Graph API emulator, which enforces
the documented throughput cap, pair pacing and 24-hour window."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from pydantic import SecretStr

from buurtalert.channels.adapters.whatsapp import WhatsAppAdapter, WhatsAppConfig
from buurtalert.devkit.graph_emulator import GraphEmulator
from buurtalert.shared.channels import (
    Attachment,
    PermanentDeliveryError,
    TransientDeliveryError,
    load_adapters,
)
from buurtalert.shared.models import Delivery, Destination, stable_id
from tests.support import served

NUMBER = "106540352242922"
Serve = Callable[[GraphEmulator], Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Serves emulators over real HTTP on loopback; gives each one's Graph API URL."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(emulator: GraphEmulator) -> str:
            port = await stack.enter_async_context(served(emulator.app))
            return f"http://127.0.0.1:{port}/v21.0"

        yield start


async def adapter_for(serve: Serve, emulator: GraphEmulator, **config: object) -> WhatsAppAdapter:
    settings = WhatsAppConfig.model_validate(
        {
            "phone_number_id": NUMBER,
            "access_token": SecretStr("t"),
            "graph_url": await serve(emulator),
            **config,
        }
    )
    adapter = WhatsAppAdapter(settings)
    await adapter.start()
    return adapter


def delivery(to: str, kind: str = "individual", n: int = 0) -> Delivery:
    destination = Destination(group_id="centrum-regie", channel="whatsapp", address=to, recipient_type=kind)  # type: ignore[arg-type]
    return Delivery(
        id=stable_id("dlv", to, str(n)),
        message_id="msg_1",
        municipality="weert-demo",
        destination=destination,
        text="Let op: woninginbraken in Leuken.",
        rules=("authority_alert_area",),
    )


async def test_group_message_carries_the_delivery_id_and_returns_the_wamid(serve: Serve) -> None:
    emulator = GraphEmulator(access_token="t")
    adapter = await adapter_for(serve, emulator)
    result = await adapter.send(delivery("120363049876543210", "group"), "Let op")
    [sent] = emulator.sent
    assert sent["recipient_type"] == "group" and sent["to"] == "120363049876543210"
    assert sent["biz_opaque_callback_data"] == delivery("120363049876543210", "group").id
    assert result.provider_message_id == sent["id"]


async def test_fan_out_stays_under_the_cap_without_rate_limit_errors(serve: Serve) -> None:
    """A tier of 40 messages/s: 120 recipients take about three seconds and none is refused."""
    emulator = GraphEmulator(access_token="t", messages_per_second=40)
    adapter = await adapter_for(serve, emulator, messages_per_second=40)
    started = time.monotonic()
    await asyncio.gather(*(adapter.send(delivery(f"3161{n:07d}"), "Let op") for n in range(120)))
    elapsed = time.monotonic() - started
    assert emulator.refused == [] and len(emulator.sent) == 120
    assert (119 / elapsed) / 40 >= 0.9


async def test_rate_limit_errors_are_transient_with_the_provider_code(serve: Serve) -> None:
    emulator = GraphEmulator(access_token="t", messages_per_second=3)
    adapter = await adapter_for(
        serve, emulator, messages_per_second=1000
    )  # configured above the number's real tier
    for n in range(3):
        await adapter.send(delivery(f"3162{n:07d}"), "x")
    with pytest.raises(TransientDeliveryError) as refused:
        await adapter.send(delivery("31629999999"), "x")
    assert refused.value.provider_code == "130429"


async def test_a_refused_send_gives_the_recipient_turn_back_and_a_paced_one_says_when(serve: Serve) -> None:
    """A message the number's tier refused (130429) reached no one: its retry is not held
    behind the recipient's six seconds. A second message within them is refused by the
    adapter itself with the wait, so the retry path brings it back at the recipient's turn
    rather than spending its attempts before it."""
    emulator = GraphEmulator(access_token="t", messages_per_second=1)
    adapter = await adapter_for(serve, emulator, messages_per_second=1000, recipient_interval=6.0)
    await adapter.send(delivery("31620000001"), "x")
    with pytest.raises(TransientDeliveryError) as refused:
        await adapter.send(delivery("31620000002"), "x")  # the tier's one message this second is used
    assert refused.value.provider_code == "130429"
    await asyncio.sleep(1.05)
    await adapter.send(delivery("31620000002"), "x")  # its turn was given back: sent, not paced
    assert [m["to"] for m in emulator.sent] == ["31620000001", "31620000002"]
    with pytest.raises(TransientDeliveryError) as paced:
        await adapter.send(delivery("31620000002", n=1), "x")
    assert paced.value.provider_code == "131056" and 4.0 < paced.value.retry_after <= 6.0
    assert len(emulator.sent) == 2


async def test_outside_the_24_hour_window_the_approved_template_is_sent(serve: Serve) -> None:
    emulator = GraphEmulator(access_token="t", service_window=set())
    adapter = await adapter_for(serve, emulator, template_name="buurtalert_melding")
    await adapter.send(delivery("31612345678"), "Je bericht is niet doorgestuurd.")
    [sent] = emulator.sent
    assert sent["type"] == "template" and sent["template"]["name"] == "buurtalert_melding"
    assert sent["template"]["components"][0]["parameters"][0]["text"] == "Je bericht is niet doorgestuurd."
    without = await adapter_for(serve, GraphEmulator(access_token="t", service_window=set()))
    with pytest.raises(PermanentDeliveryError) as refused:
        await without.send(delivery("31612345678"), "x")
    assert refused.value.provider_code == "131047"


async def test_a_wrong_token_is_permanent(serve: Serve) -> None:
    emulator = GraphEmulator(access_token="right")
    with pytest.raises(PermanentDeliveryError) as refused:
        await (await adapter_for(serve, emulator)).send(delivery("31611111111"), "x")
    assert refused.value.provider_code == "190"


def test_the_adapter_is_found_through_its_entry_point_and_keeps_its_token_secret() -> None:
    adapters = load_adapters({"whatsapp": {"phone_number_id": NUMBER, "access_token": "geheim-token"}})
    adapter = adapters["whatsapp"]
    assert isinstance(adapter, WhatsAppAdapter)
    assert "geheim-token" not in repr(adapter.config) and "geheim-token" not in str(adapter.config)
    assert load_adapters({"whatsapp": {"phone_number_id": NUMBER}}) == {}  # invalid: skipped, not fatal


JPEG = b"\xff\xd8\xff\xe0" + b"\x10" * 2048


async def test_a_photo_is_uploaded_once_and_sent_to_every_member_with_the_text_as_caption(
    serve: Serve,
) -> None:
    emulator = GraphEmulator(access_token="t")
    adapter = await adapter_for(serve, emulator)
    photo = Attachment(storage_ref="med_1", mime_type="image/jpeg", data=JPEG, filename="vermist.jpg")
    recipients = ("31612000001", "31612000002", "31612000003")
    await asyncio.gather(
        *(adapter.send_with_media(delivery(to), "Vermist: Jan (82)", [photo]) for to in recipients)
    )
    [media_id] = emulator.uploads
    assert emulator.media[media_id].data == JPEG
    assert sorted(m["to"] for m in emulator.sent) == list(recipients)
    assert all(
        m["type"] == "image" and m["image"] == {"id": media_id, "caption": "Vermist: Jan (82)"}
        for m in emulator.sent
    )


async def test_media_that_cannot_go_leave_the_text_alone(serve: Serve) -> None:
    """A GIF is not a Cloud API type, and a caption holds 1,024 characters: text only."""
    emulator = GraphEmulator(access_token="t")
    adapter = await adapter_for(serve, emulator)
    gif = Attachment(storage_ref="med_2", mime_type="image/gif", data=b"GIF89a")
    jpeg = Attachment(storage_ref="med_3", mime_type="image/jpeg", data=JPEG)
    await adapter.send_with_media(delivery("31613000001"), "Let op", [gif])
    await adapter.send_with_media(delivery("31613000002"), "x" * 1025, [jpeg])
    assert [m["type"] for m in emulator.sent] == ["text", "text"] and emulator.uploads == []


async def test_an_outage_is_transient_and_an_unknown_recipient_permanent(serve: Serve) -> None:
    """The Graph API down (503, Meta's temporary error) means retry; a number not on
    WhatsApp (131026) means never. After the outage, sends go through again."""
    emulator = GraphEmulator(access_token="t", outage_calls=1, unknown_recipients={"31699999999"})
    adapter = await adapter_for(serve, emulator)
    with pytest.raises(TransientDeliveryError) as down:
        await adapter.send(delivery("31614000001"), "x")
    with pytest.raises(PermanentDeliveryError) as unknown:
        await adapter.send(delivery("+31 6 99999999"), "x")
    await adapter.send(delivery("31614000002"), "x")
    assert down.value.provider_code == "133004" and "503" in str(down.value)
    assert unknown.value.provider_code == "131026"
    assert [m["to"] for m in emulator.sent] == ["31614000002"]
    await adapter.close()


GROUP = "120363041234567890"


async def test_removing_a_participant_sends_the_groups_api_delete_and_empties_the_seat(serve: Serve) -> None:
    """The adapter calls DELETE /<group>/participants with the bearer token and Meta's body
    (messaging_product, participants[].user as a wa_id); the emulator's group loses the member."""
    emulator = GraphEmulator(access_token="t", groups={GROUP: {"31600000001", "31677777777"}})
    adapter = await adapter_for(serve, emulator)
    try:
        assert await adapter.remove_participants(GROUP, ["+31 6 77777777"]) is True
    finally:
        await adapter.close()
    assert emulator.calls == [("DELETE", f"/v21.0/{GROUP}/participants")]
    assert emulator.participants(GROUP) == {"31600000001"}


async def test_a_participant_no_longer_in_the_group_counts_as_removed(serve: Serve) -> None:
    """131212 (not a part of the group) is no error: the member is out, as asked."""
    emulator = GraphEmulator(access_token="t", groups={GROUP: {"31600000001"}})
    adapter = await adapter_for(serve, emulator)
    try:
        assert await adapter.remove_participants(GROUP, ["31677777777"]) is False
    finally:
        await adapter.close()
    assert emulator.refused == [(131212, GROUP)]


async def test_more_than_eight_participants_go_in_calls_of_eight(serve: Serve) -> None:
    """Ten participants: two calls (8 and 2), each within the Groups API's limit."""
    members = {f"316000000{i:02d}" for i in range(10)}
    emulator = GraphEmulator(access_token="t", groups={GROUP: set(members) | {"31699999999"}})
    adapter = await adapter_for(serve, emulator)
    try:
        assert await adapter.remove_participants(GROUP, sorted(members)) is True
    finally:
        await adapter.close()
    assert len(emulator.calls) == 2 and emulator.refused == []
    assert emulator.participants(GROUP) == {"31699999999"}


async def test_group_errors_map_to_transient_or_permanent(serve: Serve) -> None:
    """The Groups API's rate limit (131208, HTTP 429) and an outage (503) are transient; an
    unknown group (131041) is permanent; neither error text carries the number."""
    emulator = GraphEmulator(
        access_token="t", groups={GROUP: {"31677777777"}}, group_rate_limited_calls=1, outage_calls=1
    )
    adapter = await adapter_for(serve, emulator)
    try:
        with pytest.raises(TransientDeliveryError) as limited:
            await adapter.remove_participants(GROUP, ["31677777777"])
        with pytest.raises(TransientDeliveryError) as down:
            await adapter.remove_participants(GROUP, ["31677777777"])
        with pytest.raises(PermanentDeliveryError) as unknown:
            await adapter.remove_participants("120363000000000000", ["31677777777"])
    finally:
        await adapter.close()
    assert limited.value.provider_code == "131208" and down.value.provider_code == "131000"
    assert unknown.value.provider_code == "131041"
    assert all("31677777777" not in str(e.value) for e in (limited, down, unknown))
    assert emulator.participants(GROUP) == {"31677777777"}

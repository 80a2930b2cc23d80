"""The Facebook adapter against the Graph API emulator: a post on the Page, a
Messenger reply, the 24-hour window and the Page's call limit."""

from __future__ import annotations

import pytest

from buurtalert.channels.adapters.facebook import FacebookAdapter, FacebookConfig
from buurtalert.devkit.graph_emulator import GraphEmulator
from buurtalert.shared.channels import PermanentDeliveryError, TransientDeliveryError, load_adapters
from buurtalert.shared.models import Delivery, Destination, stable_id

PAGE = "102030405060708"


async def adapter_for(graph: GraphEmulator, **config: object) -> FacebookAdapter:
    adapter = FacebookAdapter(
        FacebookConfig.model_validate(
            {
                "page_id": PAGE,
                "page_access_token": "demo-graph-token",  # the `graph` fixture's
                "graph_url": f"{graph.base_url}/v21.0",
                **config,
            }
        )
    )
    await adapter.start()
    return adapter


def delivery(address: str, kind: str = "individual") -> Delivery:
    return Delivery(
        id=stable_id("dlv", address, kind),
        message_id="msg_fb",
        municipality="weert-demo",
        destination=Destination(
            group_id="weert-pagina", channel="facebook", address=address, recipient_type=kind
        ),  # type: ignore[arg-type]
        text="Woninginbraken in Leuken: sluit ramen en deuren.",
        rules=("authority_alert_area",),
    )


async def test_a_group_delivery_becomes_a_post_on_the_page(graph: GraphEmulator) -> None:
    adapter = await adapter_for(graph)
    result = await adapter.send(delivery(PAGE, "group"), "Woninginbraken in Leuken")
    [post] = graph.posts
    assert post["page"] == PAGE and post["message"] == "Woninginbraken in Leuken"
    assert result.provider_message_id == post["id"] and graph.sent == []
    with pytest.raises(PermanentDeliveryError, match="not this adapter's"):
        await adapter.send(delivery("999999", "group"), "x")
    await adapter.close()


async def test_a_messenger_reply_carries_the_delivery_id(graph: GraphEmulator) -> None:
    adapter = await adapter_for(graph)
    item = delivery("6783412")
    result = await adapter.send(item, "Je bericht is niet doorgestuurd.")
    [sent] = graph.sent
    assert sent["recipient"] == {"id": "6783412"} and sent["messaging_type"] == "RESPONSE"
    assert sent["message"] == {"text": "Je bericht is niet doorgestuurd.", "metadata": item.id}
    assert result.provider_message_id == sent["id"]
    await adapter.close()


async def test_outside_the_window_a_configured_tag_is_used_else_it_is_permanent(graph: GraphEmulator) -> None:
    graph.messenger_window = set()
    untagged = await adapter_for(graph)
    with pytest.raises(PermanentDeliveryError) as refused:
        await untagged.send(delivery("6783412"), "x")
    assert refused.value.provider_code == "10" and graph.sent == []
    tagged = await adapter_for(graph, message_tag="ACCOUNT_UPDATE")
    await tagged.send(delivery("6783412"), "x")
    [sent] = graph.sent
    assert sent["messaging_type"] == "MESSAGE_TAG" and sent["tag"] == "ACCOUNT_UPDATE"
    await untagged.close()
    await tagged.close()


async def test_the_page_call_limit_is_transient_and_a_wrong_token_permanent(graph: GraphEmulator) -> None:
    graph.page_calls_per_second = 2
    adapter = await adapter_for(graph)  # configured above what the Page is given
    for n in range(2):
        await adapter.send(delivery(f"10{n}"), "x")
    with pytest.raises(TransientDeliveryError) as limited:
        await adapter.send(delivery("102"), "x")
    assert limited.value.provider_code == "613"
    wrong = await adapter_for(graph, page_access_token="stolen")
    with pytest.raises(PermanentDeliveryError) as refused:
        await wrong.send(delivery(PAGE, "group"), "x")
    assert refused.value.provider_code == "190"
    await adapter.close()
    await wrong.close()


def test_the_adapter_is_found_through_its_entry_point_and_keeps_its_token_secret() -> None:
    adapters = load_adapters({"facebook": {"page_id": PAGE, "page_access_token": "geheim-token"}})
    adapter = adapters["facebook"]
    assert isinstance(adapter, FacebookAdapter)
    assert "geheim-token" not in repr(adapter.config)
    assert load_adapters({"facebook": {"page_id": PAGE, "message_tag": "MARKETING"}}) == {}


async def test_an_outage_is_transient_and_an_unknown_person_permanent(graph: GraphEmulator) -> None:
    """The Graph API down (503, Meta's code 2) means retry, for a post and a reply
    alike; a page-scoped id of no one (100, subcode 2018001) means never."""
    graph.outage_calls, graph.unknown_recipients = 2, {"404404"}
    adapter = await adapter_for(graph)
    for item in (delivery(PAGE, "group"), delivery("6783412")):
        with pytest.raises(TransientDeliveryError) as down:
            await adapter.send(item, "x")
        assert down.value.provider_code == "2"
    with pytest.raises(PermanentDeliveryError) as unknown:
        await adapter.send(delivery("404404"), "x")
    assert unknown.value.provider_code == "100" and "No matching user" in str(unknown.value)
    await adapter.send(delivery("6783412"), "x")
    assert graph.posts == [] and [m["recipient"]["id"] for m in graph.sent] == ["6783412"]
    await adapter.close()

"""The Graph API emulator enforces what Meta documents, so tests against it mean something."""

from __future__ import annotations

import httpx

from buurtalert.devkit.graph_emulator import GraphEmulator, groups_from_directory
from buurtalert.directory.model import load_directory
from tests.conftest import DEMO

TOKEN = {"Authorization": "Bearer t"}


def client(emulator: GraphEmulator) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator.app), base_url="http://graph")


def text(to: str, body: str = "Let op") -> dict[str, object]:
    return {"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": body}}


async def test_send_answers_with_a_message_id_and_requires_the_token() -> None:
    emulator = GraphEmulator(access_token="t")
    async with client(emulator) as http:
        ok = await http.post("/v21.0/123/messages", json=text("31611111111"), headers=TOKEN)
        no_token = await http.post("/v21.0/123/messages", json=text("31611111112"))
    assert ok.status_code == 200 and ok.json()["messages"][0]["id"].startswith("wamid.")
    assert no_token.status_code == 401 and no_token.json()["error"]["code"] == 190
    assert len(emulator.sent) == 1


async def test_throughput_cap_and_pair_pacing_are_enforced_with_the_documented_codes() -> None:
    emulator = GraphEmulator(access_token="t", messages_per_second=5)
    async with client(emulator) as http:
        answers = [
            (await http.post("/v21.0/123/messages", json=text(f"3161000000{i}"), headers=TOKEN))
            for i in range(7)
        ]
        again = await http.post("/v21.0/456/messages", json=text("31610000000"), headers=TOKEN)
        pair = await http.post("/v21.0/123/messages", json=text("31610000000"), headers=TOKEN)
    assert [a.status_code for a in answers] == [200] * 5 + [400] * 2
    assert {a.json()["error"]["code"] for a in answers[5:]} == {130429}
    assert again.status_code == 200  # the cap is per business number
    assert pair.json()["error"]["code"] == 130429  # the window is still full
    assert [code for code, _ in emulator.refused] == [130429, 130429, 130429]


async def test_a_second_message_to_the_same_recipient_within_six_seconds_is_refused() -> None:
    emulator = GraphEmulator(access_token="t", messages_per_second=100)
    async with client(emulator) as http:
        first = await http.post("/v21.0/123/messages", json=text("31610000000"), headers=TOKEN)
        second = await http.post("/v21.0/123/messages", json=text("31610000000"), headers=TOKEN)
    assert first.status_code == 200 and second.json()["error"]["code"] == 131056


async def test_text_longer_than_4096_characters_is_refused() -> None:
    emulator = GraphEmulator(access_token="t")
    async with client(emulator) as http:
        long = await http.post("/v21.0/1/messages", json=text("316", "x" * 4097), headers=TOKEN)
    assert long.status_code == 400 and long.json()["error"]["code"] == 100


PAGE = "102030405060708"


def reply(psid: str, text: str = "Dank je, we kijken ernaar", **extra: object) -> dict[str, object]:
    return {"recipient": {"id": psid}, "messaging_type": "RESPONSE", "message": {"text": text}, **extra}


async def test_a_page_post_and_a_messenger_reply_need_a_known_page_and_the_token() -> None:
    emulator = GraphEmulator(access_token="t")
    async with client(emulator) as http:
        post = await http.post(f"/v21.0/{PAGE}/feed", json={"message": "Let op"}, headers=TOKEN)
        other = await http.post("/v21.0/999/feed", json={"message": "Let op"}, headers=TOKEN)
        answer = await http.post(f"/v21.0/{PAGE}/messages", json=reply("2468"), headers=TOKEN)
        anonymous = await http.post(f"/v21.0/{PAGE}/messages", json=reply("2468"))
    assert post.status_code == 200 and post.json()["id"].startswith(f"{PAGE}_")
    assert other.json()["error"]["code"] == 100
    assert answer.json()["recipient_id"] == "2468" and answer.json()["message_id"].startswith("m_")
    assert anonymous.json()["error"]["code"] == 190
    assert [p["message"] for p in emulator.posts] == ["Let op"] and len(emulator.sent) == 1


async def test_messenger_refuses_replies_outside_the_window_unless_tagged_and_caps_calls() -> None:
    emulator = GraphEmulator(access_token="t", messenger_window=set(), page_calls_per_second=2)
    async with client(emulator) as http:
        late = await http.post(f"/v21.0/{PAGE}/messages", json=reply("2468"), headers=TOKEN)
        tagged = reply("2468", messaging_type="MESSAGE_TAG", tag="ACCOUNT_UPDATE")
        answers = [await http.post(f"/v21.0/{PAGE}/messages", json=tagged, headers=TOKEN) for _ in range(3)]
        long = await http.post(f"/v21.0/{PAGE}/messages", json=reply("1", "x" * 2001), headers=TOKEN)
    assert (late.json()["error"]["code"], late.json()["error"]["error_subcode"]) == (10, 2018278)
    assert [a.status_code for a in answers] == [200, 200, 400]
    assert answers[2].json()["error"]["code"] == 613
    assert long.json()["error"]["code"] == 100


JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64


async def test_media_are_uploaded_as_multipart_and_sent_by_id() -> None:
    emulator = GraphEmulator(access_token="t")
    form = {"messaging_product": "whatsapp", "type": "image/jpeg"}
    async with client(emulator) as http:
        uploaded = await http.post(
            "/v21.0/123/media", data=form, files={"file": ("a.jpg", JPEG)}, headers=TOKEN
        )
        gif = await http.post(
            "/v21.0/123/media",
            data={**form, "type": "image/gif"},
            files={"file": ("a.gif", b"GIF89a")},
            headers=TOKEN,
        )
        media_id = uploaded.json()["id"]
        photo = {"messaging_product": "whatsapp", "to": "31611111111", "type": "image"}
        sent = await http.post(
            "/v21.0/123/messages", json={**photo, "image": {"id": media_id}}, headers=TOKEN
        )
        unknown = await http.post(
            "/v21.0/123/messages", json={**photo, "image": {"id": "999"}}, headers=TOKEN
        )
    assert emulator.media[media_id].data == JPEG and emulator.uploads == [media_id]
    assert gif.json()["error"]["code"] == 131053
    assert sent.status_code == 200 and unknown.json()["error"]["code"] == 100


def removal(*users: str) -> dict[str, object]:
    return {"messaging_product": "whatsapp", "participants": [{"user": u} for u in users]}


async def delete(http: httpx.AsyncClient, group: str, body: object, **headers: str) -> httpx.Response:
    return await http.request("DELETE", f"/v21.0/{group}/participants", json=body, headers=headers or TOKEN)


async def test_a_groups_api_group_loses_the_participants_a_delete_names() -> None:
    """DELETE /<group>/participants takes the named participants (by wa_id or phone number)
    out of the group and answers success; the group's info lists who is left."""
    emulator = GraphEmulator(access_token="t", groups={"120363041234567890": {"31600000001", "31600000002"}})
    async with client(emulator) as http:
        removed = await delete(http, "120363041234567890", removal("+31 6 00000002"))
        info = await http.get("/v21.0/120363041234567890", params={"fields": "participants"}, headers=TOKEN)
    assert removed.status_code == 200 and removed.json() == {"success": True}
    assert emulator.participants("120363041234567890") == {"31600000001"}
    assert info.json()["participants"] == [{"wa_id": "31600000001"}]
    assert info.json()["total_participant_count"] == 1


async def test_removing_participants_refuses_what_the_groups_api_refuses() -> None:
    """No token (190), an unknown group (131041), more than 8 participants or a malformed body
    (100), the same participant twice (131202), none of them in the group (131212), and the
    group-operations rate limit (131208, HTTP 429): each with Meta's error envelope, and the
    group unchanged."""
    group = "120363041234567890"
    emulator = GraphEmulator(access_token="t", groups={group: {"31600000001"}}, group_rate_limited_calls=1)
    async with client(emulator) as http:
        limited = await delete(http, group, removal("31600000001"))
        no_token = await delete(http, group, removal("31600000001"), Authorization="Bearer wrong")
        unknown = await delete(http, "120363000000000000", removal("31600000001"))
        too_many = await delete(http, group, removal(*(f"3160000001{i}" for i in range(9))))
        malformed = await delete(http, group, {"participants": [{"user": "31600000001"}]})
        no_user = await delete(http, group, {"messaging_product": "whatsapp", "participants": [{}]})
        twice = await delete(http, group, removal("31600000001", "+31600000001"))
        absent = await delete(http, group, removal("31699999999"))
    assert (limited.status_code, limited.json()["error"]["code"]) == (429, 131208)
    assert (no_token.status_code, no_token.json()["error"]["code"]) == (401, 190)
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (400, 131041)
    assert [r.json()["error"]["code"] for r in (too_many, malformed, no_user)] == [100, 100, 100]
    assert twice.json()["error"]["code"] == 131202
    assert (absent.status_code, absent.json()["error"]["code"]) == (400, 131212)
    assert all("fbtrace_id" in r.json()["error"] for r in (limited, unknown, absent))
    assert emulator.participants(group) == {"31600000001"}


async def test_a_group_first_met_by_a_message_is_known_with_no_participants() -> None:
    """A Groups API message to a group the emulator was not given creates it (empty), so a
    removal from it is answered 131212 rather than 131041."""
    emulator = GraphEmulator(access_token="t")
    message = {**text("120363049876543210"), "recipient_type": "group"}
    async with client(emulator) as http:
        sent = await http.post("/v21.0/123/messages", json=message, headers=TOKEN)
        absent = await delete(http, "120363049876543210", removal("31600000001"))
    assert sent.status_code == 200
    assert absent.json()["error"]["code"] == 131212


def test_the_demo_directory_seeds_its_regiegroep_whatsapp_group_with_its_members_numbers() -> None:
    """Boshoven's regiegroep also posts in a WhatsApp group: the emulator seeded from the demo
    directory holds it with the wijkagent's and the coordinator's numbers."""
    groups = groups_from_directory(load_directory(DEMO / "weert" / "directory.yaml"))
    assert groups == {"120363041234567890": {"31600000001", "31600000002"}}

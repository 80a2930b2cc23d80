"""A local stand-in for Meta's Graph API, for tests, benchmarks and ``make run``.

It speaks the documented protocol, errors included: a bearer token on every call
(error 190 otherwise), unknown object ids (error 100), the media endpoints
(``GET /<version>/<media-id>`` for the URL, size and hash; ``GET <url>`` for the
bytes), and sending (``POST /<version>/<phone-number-id>/messages``) under the
documented limits: ``messages_per_second`` per business number in any one-second
window (error 130429), one message per ``pair_interval`` seconds to the same
recipient (error 131056), 4,096 characters of text (error 100), interactive reply
buttons and lists within their limits (error 131009; :func:`tapped` makes the webhook
of a recipient's answer); uploading media
(``POST /<version>/<phone-number-id>/media``, multipart, WhatsApp's types and size
limits) for messages that name them by id. For a Facebook Page
(``page_ids``): a post on its feed (``POST /<version>/<page-id>/feed``) and a
Messenger reply (``POST /<version>/<page-id>/messages``) under
``page_calls_per_second`` (error 613), refused outside the 24-hour window (error 10,
subcode 2018278) unless tagged. Failures can be injected: an outage
(``outage_calls``: the next sends answer HTTP 503 with ``is_transient``, code 133004
for a business number, 2 for a Page) and recipients Meta cannot reach
(``unknown_recipients``: WhatsApp's 131026, Messenger's 100 with subcode 2018001).
Every accepted message and every refusal is kept, for tests and benchmarks to count.

Groups API groups (``groups``: group id to its participants' wa_ids, seeded from a directory
with :func:`groups_from_directory`, or created empty by the first message sent to one):
``DELETE /<version>/<group-id>/participants`` removes up to 8 participants
(``{"messaging_product": "whatsapp", "participants": [{"user": ...}]}``, answered
``{"success": true}``), with the Groups API's errors: an unknown group (131041), more than
8 participants or a malformed body (100), duplicates (131202), none of them in the group
(131212), the group-operations rate limit (131208, HTTP 429; ``group_rate_limited_calls``
injects it); ``GET /<version>/<group-id>?fields=participants`` lists them, and
:meth:`GraphEmulator.participants` too. Nothing here reaches the internet."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from buurtalert.directory.model import Directory

#: What the Cloud API takes for upload, as message types, and their size limits.
UPLOAD_KINDS = {
    "image/jpeg": "image",
    "image/png": "image",
    "video/mp4": "video",
    "video/3gpp": "video",
    "audio/ogg": "audio",
    "audio/mpeg": "audio",
    "audio/aac": "audio",
    "application/pdf": "document",
    "text/plain": "document",
}
UPLOAD_LIMITS = {"image": 5 * 2**20, "video": 16 * 2**20, "audio": 16 * 2**20, "document": 100 * 2**20}


#: Participants one Groups API call may add or remove.
MAX_PARTICIPANTS_PER_CALL = 8


def user_id(phone: str) -> str:
    """A phone number as WhatsApp names its user (``+31 6 1234 5678`` is ``31612345678``)."""
    digits = "".join(c for c in phone if c.isdigit())
    return digits[2:] if digits.startswith("00") else digits


def groups_from_directory(directory: Directory) -> dict[str, set[str]]:
    """The Groups API groups of a directory (as its file lists them, addresses not yet
    pseudonymised), each with the wa_ids of the members of its group who have a phone number."""
    groups: dict[str, set[str]] = {}
    for group in directory.groups:
        members = {
            user_id(m.address)
            for m in directory.members
            if group.id in m.groups and m.address and "@" not in m.address
        }
        for whatsapp_group in group.whatsapp_groups:
            groups.setdefault(whatsapp_group, set()).update(members)
    return groups


def graph_error(
    status: int, code: int, message: str, kind: str = "OAuthException", **extra: Any
) -> JSONResponse:
    """An error in the Graph API's shape."""
    error = {"message": message, "type": kind, "code": code, "fbtrace_id": secrets.token_urlsafe(12), **extra}
    return JSONResponse({"error": error}, status_code=status)


@dataclass
class Medium:
    data: bytes
    mime_type: str

    @property
    def sha256(self) -> str:
        return base64.b64encode(hashlib.sha256(self.data).digest()).decode()


def interactive_problem(interactive: Any) -> str | None:
    """What the Cloud API refuses in an interactive message (its reference, "interactive
    object"): a body of up to 1,024 characters; 1 to 3 reply buttons with unique ids of up to
    256 characters and unique titles of up to 20; or a list whose button label has up to 20
    characters and whose sections hold 1 to 10 rows in all, titles up to 24, ids up to 200."""
    if not isinstance(interactive, dict):
        return "interactive is required"
    text = (interactive.get("body") or {}).get("text")
    if not isinstance(text, str) or not text or len(text) > 1024:
        return "body.text must have 1 to 1024 characters"
    action = interactive.get("action") or {}
    if interactive.get("type") == "button":
        buttons = action.get("buttons") or []
        replies = [b.get("reply") or {} for b in buttons if isinstance(b, dict)]
        if not 1 <= len(replies) <= 3 or len(replies) != len(buttons):
            return "action.buttons must hold 1 to 3 reply buttons"
        ids, titles = [r.get("id") or "" for r in replies], [r.get("title") or "" for r in replies]
        if any(not i or len(i) > 256 for i in ids) or len(set(ids)) != len(ids):
            return "button ids must be unique, 1 to 256 characters"
        if any(not t or len(t) > 20 for t in titles) or len(set(titles)) != len(titles):
            return "button titles must be unique, 1 to 20 characters"
        return None
    if interactive.get("type") == "list":
        label = action.get("button") or ""
        if not label or len(label) > 20:
            return "action.button must have 1 to 20 characters"
        rows = [row for section in action.get("sections") or [] for row in section.get("rows") or []]
        if not 1 <= len(rows) <= 10:
            return "a list holds 1 to 10 rows"
        if any(
            not r.get("id") or len(r["id"]) > 200 or not r.get("title") or len(r["title"]) > 24 for r in rows
        ):
            return "row ids have 1 to 200 characters, titles 1 to 24"
        return None
    return f"interactive type {interactive.get('type')!r} is not supported here"


def tapped(sent: dict[str, Any], choice: int, at: float | None = None) -> dict[str, Any]:
    """The message the Cloud API's webhook brings when the recipient of ``sent`` (an
    interactive message the emulator accepted) taps its ``choice``-th button or list row:
    a ``button_reply`` or ``list_reply`` with the id and title we gave it."""
    interactive = sent["interactive"]
    if interactive["type"] == "button":
        reply = interactive["action"]["buttons"][choice]["reply"]
        kind = "button_reply"
    else:
        reply = [r for s in interactive["action"]["sections"] for r in s["rows"]][choice]
        kind = "list_reply"
    return {
        "context": {"from": sent["from"], "id": sent["id"]},
        "from": sent["to"],
        "id": "wamid." + secrets.token_urlsafe(24),
        "timestamp": str(int(at if at is not None else time.time())),
        "type": "interactive",
        "interactive": {"type": kind, kind: {"id": reply["id"], "title": reply["title"]}},
    }


@dataclass
class GraphEmulator:
    """``GraphEmulator(access_token="t").app`` is the ASGI app; ``base_url`` is set by whoever serves it."""

    access_token: str
    version: str = "v21.0"
    base_url: str = "http://127.0.0.1"
    # The limits below are Meta's documented ones; a benchmark's ratio against the
    # emulator's cap is only as good as these, so each names where it comes from.
    #: Throughput per business phone number: 80 messages/s by default, upgradable up to
    #: 1,000 (WhatsApp Cloud API, "Throughput":
    #: https://developers.facebook.com/docs/whatsapp/cloud-api/overview#throughput);
    #: beyond it Meta answers error 130429, "Rate limit hit"
    #: (https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes).
    messages_per_second: int = 80
    #: The pair rate limit: about one message every 6 seconds to the same user
    #: (error 131056, "(Business Account, Consumer Account) pair rate limit hit",
    #: same error-codes page; "Pair rate limits" in the Cloud API overview).
    pair_interval: float = 6.0
    #: Users who wrote to the business in the last 24 hours; None: everyone did.
    service_window: set[str] | None = None
    #: Facebook Pages the token may act for.
    page_ids: set[str] = field(default_factory=lambda: {"102030405060708"})
    #: Messenger Send API: about 300 calls per second per Page; beyond it error 613,
    #: "Calls to this api have exceeded the rate limit" (Messenger Platform, "Rate
    #: Limiting": https://developers.facebook.com/docs/messenger-platform/overview#rate-limiting;
    #: Graph API "Rate Limits": https://developers.facebook.com/docs/graph-api/overview/rate-limiting).
    page_calls_per_second: int = 300
    #: People who wrote to the Page in the last 24 hours; None: everyone did.
    messenger_window: set[str] | None = None
    #: The next this-many sends (messages and Page posts) meet an outage: HTTP 503 with
    #: Meta's temporary error, as when the API is down for a while.
    outage_calls: int = 0
    #: Recipients Meta cannot reach: numbers not on WhatsApp, Groups API ids and
    #: page-scoped ids of no one. Sends to them are refused.
    unknown_recipients: set[str] = field(default_factory=set)
    #: Groups API groups: group id to its participants' wa_ids.
    groups: dict[str, set[str]] = field(default_factory=dict)
    #: The next this-many group operations hit the Groups API's rate limit (131208, HTTP 429).
    group_rate_limited_calls: int = 0
    posts: list[dict[str, Any]] = field(default_factory=list)
    uploads: list[str] = field(default_factory=list)
    media: dict[str, Medium] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)
    _windows: dict[str, deque[float]] = field(default_factory=dict)
    _pairs: dict[tuple[str, str], float] = field(default_factory=dict)

    def add_medium(self, media_id: str, data: bytes, mime_type: str) -> Medium:
        self.media[media_id] = medium = Medium(data, mime_type)
        return medium

    def _authorised(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.encode(), self.access_token.encode())

    def _unauthorised(self) -> JSONResponse:
        return graph_error(401, 190, "Invalid OAuth access token - Cannot parse access token")

    def _unknown(self, object_id: str) -> JSONResponse:
        return graph_error(
            400,
            100,
            f"Unsupported get request. Object with ID '{object_id}' does not exist, cannot be loaded due to "
            "missing permissions, or does not support this operation.",
            "GraphMethodException",
            error_subcode=33,
        )

    def participants(self, group_id: str) -> set[str]:
        """The wa_ids in a Groups API group (empty for an unknown one), for tests."""
        return set(self.groups.get(group_id, ()))

    async def _remove_participants(self, request: Request) -> Response:
        """``DELETE /<version>/<group-id>/participants`` as the Groups API answers it."""
        group_id = request.path_params["object_id"]
        self.calls.append(("DELETE", request.url.path))
        if not self._authorised(request):
            return self._unauthorised()
        if group_id not in self.groups:
            self.refused.append((131041, group_id))
            return graph_error(
                400, 131041, "(#131041) Group unknown: it does not exist or you are not a member."
            )
        if self.group_rate_limited_calls > 0:
            self.group_rate_limited_calls -= 1
            self.refused.append((131208, group_id))
            return graph_error(
                429,
                131208,
                "(#131208) Group Rate Limit Hit: too many group operations from this phone number.",
            )
        if (down := self._outage(131000, group_id)) is not None:
            return down
        try:
            body = json.loads(await request.body())
        except ValueError:
            return self._refuse(100, "(#100) The parameter body is not valid JSON", group_id)
        if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp":
            return self._refuse(100, "(#100) The parameter messaging_product is required.", group_id)
        listed = body.get("participants")
        if not isinstance(listed, list) or not listed:
            return self._refuse(100, "(#100) The parameter participants is required.", group_id)
        if len(listed) > MAX_PARTICIPANTS_PER_CALL:
            return self._refuse(
                100,
                f"(#100) Param participants must have at most {MAX_PARTICIPANTS_PER_CALL} items.",
                group_id,
            )
        users = [p.get("user") if isinstance(p, dict) else None for p in listed]
        if not all(isinstance(u, str) and u for u in users):
            return self._refuse(100, "(#100) Param participants[].user is required.", group_id)
        wa_ids = [user_id(str(u)) for u in users]
        if len(set(wa_ids)) != len(wa_ids):
            return self._refuse(131202, "(#131202) Duplicate participant.", group_id)
        present = self.groups[group_id]
        if not present & set(wa_ids):
            return self._refuse(131212, "(#131212) Participant is not a part of the group.", group_id)
        present.difference_update(wa_ids)
        return JSONResponse({"success": True})

    async def _group_info(self, request: Request, group_id: str) -> Response:
        """``GET /<version>/<group-id>?fields=participants``: the group's participants."""
        participants = sorted(self.groups[group_id])
        return JSONResponse(
            {
                "id": group_id,
                "participants": [{"wa_id": p} for p in participants],
                "total_participant_count": len(participants),
            }
        )

    async def _media_info(self, request: Request) -> Response:
        media_id = request.path_params["object_id"]
        self.calls.append(("GET", request.url.path))
        if not self._authorised(request):
            return self._unauthorised()
        if media_id in self.groups:
            return await self._group_info(request, media_id)
        medium = self.media.get(media_id)
        if medium is None:
            return self._unknown(media_id)
        return JSONResponse(
            {
                "messaging_product": "whatsapp",
                "url": f"{self.base_url}/media-download/{media_id}?token={secrets.token_urlsafe(8)}",
                "mime_type": medium.mime_type,
                "sha256": medium.sha256,
                "file_size": len(medium.data),
                "id": media_id,
            }
        )

    async def _media_download(self, request: Request) -> Response:
        media_id = request.path_params["media_id"]
        self.calls.append(("GET", request.url.path))
        if not self._authorised(request):
            return self._unauthorised()
        medium = self.media.get(media_id)
        if medium is None:
            return Response(status_code=404)
        return Response(medium.data, media_type=medium.mime_type)

    def _refuse(self, code: int, message: str, to: str = "") -> JSONResponse:
        self.refused.append((code, to))
        return graph_error(400, code, message)

    def _outage(self, code: int, to: str = "") -> JSONResponse | None:
        """Meta's answer during an outage (HTTP 503, ``is_transient``), while one lasts."""
        if self.outage_calls <= 0:
            return None
        self.outage_calls -= 1
        self.refused.append((code, to))
        return graph_error(
            503, code, f"(#{code}) Service temporarily unavailable. Please retry.", is_transient=True
        )

    def _window(self, object_id: str) -> deque[float]:
        """The calls ``object_id`` made in the last second."""
        now = time.monotonic()
        window = self._windows.setdefault(object_id, deque())
        while window and now - window[0] >= 1.0:
            window.popleft()
        return window

    async def _upload_medium(self, request: Request) -> Response:
        """``POST /<version>/<phone-number-id>/media``: multipart ``file``, ``type`` and
        ``messaging_product``; answers the media id."""
        if not self._authorised(request):
            return self._unauthorised()
        async with request.form() as form:
            upload, mime_type = form.get("file"), form.get("type")
            if form.get("messaging_product") != "whatsapp":
                return self._refuse(100, "(#100) The parameter messaging_product is required.")
            if isinstance(upload, str) or upload is None or not isinstance(mime_type, str):
                return self._refuse(100, "(#100) The parameters file and type are required.")
            data = await upload.read()
        kind = UPLOAD_KINDS.get(mime_type)
        if kind is None:
            return self._refuse(131053, f"(#131053) Media upload error: unsupported type {mime_type}")
        if len(data) > UPLOAD_LIMITS[kind]:
            return self._refuse(
                131053, f"(#131053) Media upload error: {kind} larger than {UPLOAD_LIMITS[kind]}"
            )
        media_id = str(secrets.randbelow(10**15))
        self.add_medium(media_id, data, mime_type)
        self.uploads.append(media_id)
        return JSONResponse({"id": media_id})

    async def _page_post(self, request: Request) -> Response:
        """``POST /<version>/<page-id>/feed``: a post on the Page."""
        page = request.path_params["object_id"]
        if not self._authorised(request):
            return self._unauthorised()
        if page not in self.page_ids:
            return self._unknown(page)
        if (down := self._outage(2, page)) is not None:
            return down
        try:
            body = json.loads(await request.body())
        except ValueError:
            return self._refuse(100, "(#100) The parameter body is not valid JSON")
        message = body.get("message") if isinstance(body, dict) else None
        if not isinstance(message, str) or not message.strip():
            return self._refuse(100, "(#100) The parameter message is required")
        if len(message) > 63_206:
            return self._refuse(100, "(#100) The message is too long")
        window = self._window(page)
        if len(window) >= self.page_calls_per_second:
            return self._refuse(32, "(#32) Page request limit reached", page)
        window.append(time.monotonic())
        post_id = f"{page}_{len(self.posts) + 1}{secrets.randbelow(10**6):06d}"
        self.posts.append({"id": post_id, "page": page, "message": message, "at": time.monotonic()})
        return JSONResponse({"id": post_id})

    async def _messenger_reply(self, page: str, body: dict[str, Any]) -> Response:
        """``POST /<version>/<page-id>/messages`` as the Messenger Send API answers it."""
        recipient = (body.get("recipient") or {}).get("id")
        if not isinstance(recipient, str) or not recipient:
            return self._refuse(100, "(#100) The parameter recipient is required")
        if recipient in self.unknown_recipients:
            self.refused.append((100, recipient))
            return graph_error(400, 100, "(#100) No matching user found", error_subcode=2018001)
        text = (body.get("message") or {}).get("text")
        if not isinstance(text, str) or not text:
            return self._refuse(100, "(#100) The parameter message[text] is required", recipient)
        if len(text) > 2000:
            return self._refuse(
                100, "(#100) Length of param message[text] must be less than or equal to 2000", recipient
            )
        kind = body.get("messaging_type", "RESPONSE")
        if kind == "MESSAGE_TAG":
            if body.get("tag") not in (
                "ACCOUNT_UPDATE",
                "CONFIRMED_EVENT_UPDATE",
                "POST_PURCHASE_UPDATE",
                "HUMAN_AGENT",
            ):
                return self._refuse(100, "(#100) Param tag must be a valid message tag", recipient)
        elif kind not in ("RESPONSE", "UPDATE"):
            return self._refuse(
                100, "(#100) Param messaging_type must be one of RESPONSE, UPDATE, MESSAGE_TAG"
            )
        elif self.messenger_window is not None and recipient not in self.messenger_window:
            self.refused.append((10, recipient))
            return graph_error(
                400, 10, "(#10) This message is sent outside of allowed window.", error_subcode=2018278
            )
        window = self._window(page)
        if len(window) >= self.page_calls_per_second:
            return self._refuse(613, "(#613) Calls to this api have exceeded the rate limit.", recipient)
        window.append(time.monotonic())
        mid = "m_" + secrets.token_urlsafe(24)
        self.sent.append({"id": mid, "page": page, "at": time.monotonic(), **body})
        return JSONResponse({"recipient_id": recipient, "message_id": mid})

    async def _send_message(self, request: Request) -> Response:
        """``POST /<version>/<phone-number-id>/messages`` as the Cloud API answers it
        (or, for a Page, as the Messenger Send API does)."""
        number = request.path_params["object_id"]
        if not self._authorised(request):
            return self._unauthorised()
        if (down := self._outage(2 if number in self.page_ids else 133004)) is not None:
            return down
        if number in self.page_ids:
            try:
                body = json.loads(await request.body())
            except ValueError:
                return self._refuse(100, "(#100) The parameter body is not valid JSON")
            return await self._messenger_reply(number, body if isinstance(body, dict) else {})
        try:
            body = json.loads(await request.body())
        except ValueError:
            return self._refuse(100, "(#100) The parameter body is not valid JSON")
        if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp":
            return self._refuse(100, "(#100) The parameter messaging_product is required.")
        to, kind = body.get("to"), body.get("type", "text")
        if not isinstance(to, str) or not to:
            return self._refuse(100, "(#100) The parameter to is required.")
        if to in self.unknown_recipients:
            return self._refuse(
                131026, "(#131026) Message undeliverable: the recipient cannot be reached on WhatsApp", to
            )
        if kind == "text":
            text = (body.get("text") or {}).get("body")
            if not isinstance(text, str) or not text:
                return self._refuse(100, "(#100) The parameter text['body'] is required.", to)
            # 4,096 characters of text body: Cloud API messages reference, text object
            # (https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages#text-object)
            if len(text) > 4096:
                return self._refuse(
                    100, "(#100) Param text['body'] must be at most 4096 characters long.", to
                )
        elif kind == "template":
            if not (body.get("template") or {}).get("name"):
                return self._refuse(100, "(#100) The parameter template['name'] is required.", to)
        elif kind in ("image", "video", "audio", "document", "sticker"):
            medium = body.get(kind) or {}
            if not medium.get("link") and medium.get("id") not in self.media:
                return self._refuse(100, f"(#100) Param {kind}['id'] is not a valid media id", to)
            if len(medium.get("caption") or "") > 1024:
                return self._refuse(
                    100, f"(#100) Param {kind}['caption'] must be at most 1024 characters", to
                )
        elif kind == "interactive":
            if (problem := interactive_problem(body.get("interactive"))) is not None:
                return self._refuse(131009, f"(#131009) Parameter value is not valid: {problem}", to)
        else:
            return self._refuse(100, f"(#100) Unsupported message type {kind}", to)
        individual = body.get("recipient_type", "individual") == "individual"
        if (
            kind != "template"
            and individual
            and self.service_window is not None
            and to not in self.service_window
        ):
            return self._refuse(
                131047,
                "(#131047) Re-engagement message: more than 24 hours have passed since the recipient last "
                "replied to the sender number.",
                to,
            )
        now = time.monotonic()
        window = self._window(number)
        if len(window) >= self.messages_per_second:
            return self._refuse(130429, "(#130429) Rate limit hit", to)
        last = self._pairs.get((number, to))
        if last is not None and now - last < self.pair_interval:
            return self._refuse(
                131056, "(#131056) (Business Account, Consumer Account) pair rate limit hit", to
            )
        window.append(now)
        self._pairs[(number, to)] = now
        if not individual:
            self.groups.setdefault(to, set())  # a group first met here: its participants unknown
        wamid = "wamid." + secrets.token_urlsafe(24)
        self.sent.append({"id": wamid, "from": number, "at": now, **body})
        return JSONResponse(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to.lstrip("+")}],
                "messages": [{"id": wamid}],
            }
        )

    async def _stats(self, _: Request) -> Response:
        """Not Meta's: what the emulator saw, for benchmarks that run it as a process."""
        refused: dict[str, int] = {}
        for code, _to in self.refused:
            refused[str(code)] = refused.get(str(code), 0) + 1
        at = [m["at"] for m in self.sent]
        span = (max(at) - min(at)) if len(at) > 1 else 0.0
        return JSONResponse({"sent": len(self.sent), "refused": refused, "first_to_last_s": span})

    @property
    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/_emulator/stats", self._stats, methods=["GET"]),
                Route(f"/{self.version}/{{object_id}}/messages", self._send_message, methods=["POST"]),
                Route(f"/{self.version}/{{object_id}}/feed", self._page_post, methods=["POST"]),
                Route(f"/{self.version}/{{object_id}}/media", self._upload_medium, methods=["POST"]),
                Route(
                    f"/{self.version}/{{object_id}}/participants",
                    self._remove_participants,
                    methods=["DELETE"],
                ),
                Route(f"/{self.version}/{{object_id}}", self._media_info, methods=["GET"]),
                Route("/media-download/{media_id}", self._media_download, methods=["GET"]),
            ]
        )

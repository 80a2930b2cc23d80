"""The console's HTTP side: server-rendered pages (Jinja2), a small script of our own,
and server-sent events that tell an open queue to refresh itself.

Security: a session is a random token in an HttpOnly, SameSite=Strict cookie (Secure in
production), stored only as its hash; every POST carries the session's CSRF token (the
login form a token of its own, in a cookie and the form); a strict Content-Security-Policy
allows our own script and styles only. An item of another municipality is answered 404,
as one that does not exist."""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaBroker
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from buurtalert.review.effect.rules import IncidentView
from buurtalert.review.effect.stores import IncidentsView
from buurtalert.review.handlers import Access, Changes, Console, Outcome, Session
from buurtalert.review.reveal import Reveal
from buurtalert.review.rules import (
    AGE_CHOICES,
    CLAIM_SECONDS,
    REJECT_REASONS,
    Action,
    Item,
    QueueFilter,
    Refusal,
    age_minutes,
    filtered,
    highlight,
    holder,
    may,
    rejection_explanation,
    scope_of,
)
from buurtalert.review.stores import MemberStrikes, Strike
from buurtalert.review.texts import DEFAULT, LANGUAGES, text
from buurtalert.review.vetting import Join, Vetting, may_vet
from buurtalert.shared.logging import APP_LOGGER, get_logger
from buurtalert.shared.models import utcnow

log = get_logger(__name__)
HERE = Path(__file__).parent
SESSION_COOKIE = "review_session"
LOGIN_COOKIE = "review_login"
LANGUAGE_COOKIE = "review_lang"
#: An open queue's event stream ends after this long and the browser reconnects: a
#: stream never holds up a shutdown for longer, and a lost connection is noticed.
STREAM_SECONDS = 25.0
#: A held message's page shows the incidents of its district opened from this many hours
#: before the message was received on, at most NEARBY_SHOWN of them (the newest).
NEARBY_HOURS = 24
NEARBY_SHOWN = 3
POLL_SECONDS = 2.0
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        highlight=highlight,
        age_minutes=age_minutes,
        holder=holder,
        REJECT_REASONS=REJECT_REASONS,
        may_vet=may_vet,
    )
    env.filters["hhmm"] = lambda d: d.strftime("%H:%M") if isinstance(d, datetime) else str(d)
    env.filters["iso"] = lambda d: d.isoformat() if isinstance(d, datetime) else str(d)
    return env


def language_of(request: Request) -> str:
    wanted = request.query_params.get("lang") or request.cookies.get(LANGUAGE_COOKIE) or DEFAULT
    return wanted if wanted in LANGUAGES else DEFAULT


def wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def safe_next(target: str | None) -> str:
    """Only a path of this site (never ``//elsewhere`` or a full URL)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/queue"
    return target


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every response (plain ASGI, so an event stream
    passes through unbuffered)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


Endpoint = Callable[[Request, Session], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class Kit:
    """What a module that adds pages to the console gets (see ``extensions``): the page
    renderer (templates under ``templates/``) and the login guard (with the CSRF check)."""

    page: Callable[..., HTMLResponse]
    logged_in: Callable[[Endpoint], Callable[[Request], Awaitable[Response]]]


class ConsoleApp(AsgiFastStream):
    """FastStream's ASGI application (its lifespan starts the broker and runs the hooks)
    whose HTTP requests all go to the console's Starlette application: AsgiFastStream
    matches exact paths only, and the console's have ids in them (``/items/{id}``)."""

    def __init__(self, broker: KafkaBroker, *, web: ASGIApp) -> None:
        super().__init__(broker, logger=APP_LOGGER)
        self.web = web

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.web(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def console_app(
    console: Console,
    access: Access,
    changes: Changes,
    *,
    secure_cookies: bool,
    closing: asyncio.Event,
    probes: Sequence[tuple[str, Any]] = (),
    extensions: Sequence[Callable[[Kit], Sequence[Route]]] = (),
    vetting: Vetting | None = None,
    reveal: Reveal | None = None,
    incidents: IncidentsView | None = None,
    strikes: MemberStrikes | None = None,
) -> Starlette:
    """The console's pages, ``probes`` (``/ready``, ``/metrics``: path and ASGI app), and the
    routes each of ``extensions`` adds (effect's pages); ``incidents``: routing's, for the
    incidents of a held message's district beside it; ``strikes``: moderation's, for the
    rejections a removal proposal is based on."""
    env = templates()

    def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        language = language_of(request)
        html = env.get_template(name).render(
            t=lambda key: text(key, language),
            lang=language,
            languages=LANGUAGES,
            path=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            **context,
        )
        response = HTMLResponse(html, status_code=status)
        if request.query_params.get("lang") in LANGUAGES:
            response.set_cookie(
                LANGUAGE_COOKIE, language, max_age=365 * 86400, samesite="strict", secure=secure_cookies
            )
        return response

    async def session_of(request: Request) -> Session | None:
        return await access.session(request.cookies.get(SESSION_COOKIE))

    def to_login(request: Request) -> Response:
        if wants_json(request) or request.method != "GET":
            return JSONResponse({"error": "not logged in"}, status_code=401)
        return RedirectResponse(f"/login?{urlencode({'next': request.url.path})}", status_code=303)

    def logged_in(endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
        """The endpoint for a logged-in user; a POST must carry the session's CSRF token
        (form field ``csrf`` or header ``X-CSRF-Token``)."""

        async def guarded(request: Request) -> Response:
            session = await session_of(request)
            if session is None:
                return to_login(request)
            if request.method == "POST":
                form = await request.form()
                given = str(form.get("csrf") or request.headers.get("x-csrf-token") or "")
                if not given or not hmac.compare_digest(given.encode(), session.csrf.encode()):
                    log.warning("csrf_refused", user=session.user.name, path=request.url.path)
                    return refused(request, session, Refusal.FORBIDDEN, "csrf")
            return await endpoint(request, session)

        return guarded

    def refused(
        request: Request, session: Session | None, why: Refusal, key: str | None = None, detail: str = ""
    ) -> Response:
        key = (
            key
            or {
                Refusal.NOT_FOUND: "not_found",
                Refusal.FORBIDDEN: "forbidden",
                Refusal.STALE: "stale",
                Refusal.CLAIMED: "claimed",
                Refusal.DECIDED: "already_decided",
                Refusal.INVALID: "invalid",
            }[why]
        )
        status = 403 if key == "csrf" else why.status
        if wants_json(request):
            return JSONResponse({"error": key, "detail": detail}, status_code=status)
        return page(request, "error.html", status, session=session, key=key, detail=detail)

    # --- login --------------------------------------------------------------------------

    async def login_page(request: Request) -> Response:
        token = secrets.token_urlsafe(24)
        response = page(
            request, "login.html", login_csrf=token, next=safe_next(request.query_params.get("next"))
        )
        response.set_cookie(
            LOGIN_COOKIE, token, httponly=True, samesite="strict", secure=secure_cookies, max_age=3600
        )
        return response

    async def login(request: Request) -> Response:
        form = await request.form()
        given, expected = str(form.get("csrf") or ""), request.cookies.get(LOGIN_COOKIE, "")
        if not given or not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            return refused(request, None, Refusal.FORBIDDEN, "csrf")
        outcome = await access.login(str(form.get("username") or ""), str(form.get("password") or ""))
        if outcome.token is None or outcome.session is None:
            key = "login_locked" if outcome.refused == "locked" else "login_invalid"
            if wants_json(request):
                return JSONResponse({"error": key}, status_code=423 if key == "login_locked" else 401)
            token = secrets.token_urlsafe(24)
            response = page(
                request,
                "login.html",
                423 if key == "login_locked" else 401,
                login_csrf=token,
                error=key,
                next=safe_next(str(form.get("next") or "")),
            )
            response.set_cookie(
                LOGIN_COOKIE, token, httponly=True, samesite="strict", secure=secure_cookies, max_age=3600
            )
            return response
        target = safe_next(str(form.get("next") or ""))
        done: Response = (
            JSONResponse({"user": outcome.session.user.name, "csrf": outcome.session.csrf})
            if wants_json(request)
            else RedirectResponse(target, status_code=303)
        )
        done.set_cookie(
            SESSION_COOKIE,
            outcome.token,
            httponly=True,
            samesite="strict",
            secure=secure_cookies,
            max_age=int((outcome.session.expires - utcnow()).total_seconds()),
        )
        done.delete_cookie(LOGIN_COOKIE)
        return done

    async def logout(request: Request, session: Session) -> Response:
        await access.logout(request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    async def switch_language(request: Request) -> Response:
        wanted = request.query_params.get("to", DEFAULT)
        response = RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
        if wanted in LANGUAGES:
            response.set_cookie(
                LANGUAGE_COOKIE, wanted, max_age=365 * 86400, samesite="strict", secure=secure_cookies
            )
        return response

    # --- the queue ------------------------------------------------------------------------

    async def queue_context(request: Request, session: Session) -> dict[str, Any]:
        wanted = QueueFilter.of(request.query_params)
        everything = await console.queue(session.user, newest_first=wanted.newest_first)
        now = utcnow()
        shown = filtered(everything, wanted, now)
        return {
            "session": session,
            "items": shown,
            "reasons": sorted({r for i in everything for r in i.reasons}),
            "groups": sorted({i.group_id for i in everything if i.group_id} | {wanted.group} - {None}),
            "ages": AGE_CHOICES,
            "wanted": wanted,
            "now": now,
            "query": request.url.query,
            "bulk": {k: request.query_params.get(k) for k in ("rejected", "refused")},
        }

    async def home(request: Request) -> Response:
        return RedirectResponse("/queue", status_code=303)

    async def queue(request: Request, session: Session) -> Response:
        context = await queue_context(request, session)
        if wants_json(request):
            return JSONResponse({"items": [item_json(i, context["now"]) for i in context["items"]]})
        return page(request, "queue.html", **context)

    async def queue_rows(request: Request, session: Session) -> Response:
        return page(request, "_rows.html", **await queue_context(request, session))

    async def events(request: Request, session: Session) -> Response:
        """Server-sent events: ``queue`` whenever the user's queue changed (and once at the
        start of every stream, so nothing is missed while reconnecting)."""

        async def stream() -> AsyncIterator[str]:
            yield "retry: 1000\n\n"
            last: tuple[Any, ...] | None = None
            deadline = time.monotonic() + STREAM_SECONDS
            while time.monotonic() < deadline and not closing.is_set():
                current = await console.items.fingerprint(session.user.municipality, scope_of(session.user))
                if current != last:
                    yield f"event: queue\ndata: {len(current)}\n\n"
                    last = current
                else:
                    yield ": still here\n\n"
                await changes.wait(POLL_SECONDS)

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    # --- an item ------------------------------------------------------------------------

    async def item_page(request: Request, session: Session) -> Response:
        outcome = await console.view(session.user, request.path_params["item_id"])
        if outcome.item is None:
            return refused(request, session, outcome.refused or Refusal.NOT_FOUND)
        item = outcome.item
        if wants_json(request):
            return JSONResponse(item_json(item, utcnow()))
        history, nearby, rejections = await asyncio.gather(
            console.history(item.id), recent_incidents(item), member_strikes(item)
        )
        language = item.held.message.language if item.held else None
        explanations = {reason: rejection_explanation(reason, language) for reason in REJECT_REASONS}
        return page(
            request,
            "item.html",
            session=session,
            item=item,
            now=utcnow(),
            history=history,
            explanations=explanations,
            may=lambda action: may(session.user.role, Action(action), item.kind),
            claim_seconds=CLAIM_SECONDS,
            notice=request.query_params.get("notice"),
            nearby=nearby,
            rejections=rejections,
        )

    async def member_strikes(item: Item) -> list[Strike]:
        """For a removal proposal, the member's rejections it is based on."""
        if strikes is None or item.proposal is None:
            return []
        return await strikes.of(item.municipality, item.proposal.member)

    async def recent_incidents(item: Item) -> list[IncidentView]:
        """For an open held message, the incidents of its district opened from
        :data:`NEARBY_HOURS` hours before it was received on (the newest
        :data:`NEARBY_SHOWN`): is what it reports already known? (A decided message may be
        in one of them itself.)"""
        if incidents is None or item.held is None or item.district is None or item.state != "open":
            return []
        since = item.received_at - timedelta(hours=NEARBY_HOURS)
        return await incidents.recent(item.municipality, (item.district,), limit=NEARBY_SHOWN, since=since)

    async def version_of(request: Request) -> int | None:
        raw = (await request.form()).get("version")
        return int(raw) if isinstance(raw, str) and raw.isdigit() else None

    def answer(request: Request, session: Session, outcome: Outcome, *, done: str = "/queue") -> Response:
        if outcome.refused is not None:
            return refused(request, session, outcome.refused, detail=outcome.detail)
        if wants_json(request):
            item = outcome.item
            return JSONResponse(
                {
                    "item": item.id if item else None,
                    "version": item.version if item else None,
                    "state": item.state if item else None,
                    "claim": item.claim.model_dump(mode="json") if item and item.claim else None,
                    "agreed_by": list(item.agreed_by) if item else [],
                    "decision": outcome.decision.model_dump(mode="json") if outcome.decision else None,
                    "repeated": outcome.repeated,
                }
            )
        return RedirectResponse(done, status_code=303)

    async def claim(request: Request, session: Session) -> Response:
        return answer(request, session, await console.claim(session.user, request.path_params["item_id"]))

    async def release(request: Request, session: Session) -> Response:
        return answer(request, session, await console.release(session.user, request.path_params["item_id"]))

    async def approve(request: Request, session: Session) -> Response:
        form = await request.form()
        edited = form.get("text")
        item_id = request.path_params["item_id"]
        outcome = await console.approve(
            session.user, item_id, await version_of(request), edited if isinstance(edited, str) else None
        )
        # with an undo window, the item's page offers the undo until the forward goes out
        waiting = outcome.item is not None and outcome.item.state == "decided" and not outcome.item.published
        return answer(request, session, outcome, done=f"/items/{item_id}" if waiting else "/queue")

    async def escalate(request: Request, session: Session) -> Response:
        item_id = request.path_params["item_id"]
        note = str((await request.form()).get("note") or "")
        outcome = await console.escalate(session.user, item_id, await version_of(request), note)
        return answer(request, session, outcome)

    async def reject_many(request: Request, session: Session) -> Response:
        """Bulk reject: the rows ticked (``items``, each ``id:version``), one reason."""
        form = await request.form()
        chosen: list[tuple[str, int | None]] = []
        for value in form.getlist("items"):
            item_id, _, version = str(value).rpartition(":")
            chosen.append((item_id, int(version) if version.isdigit() else None))
        reason = str(form.get("reason") or "")
        if not chosen or reason not in REJECT_REASONS:
            return refused(request, session, Refusal.INVALID, detail="choose items and a reason")
        outcomes = await console.reject_many(session.user, chosen, reason)
        done = [i for i, o in outcomes.items() if o.ok]
        failed = {i: (o.refused.value if o.refused else "") for i, o in outcomes.items() if not o.ok}
        if wants_json(request):
            return JSONResponse({"rejected": done, "refused": failed})
        return RedirectResponse(f"/queue?{urlencode({'rejected': len(done), 'refused': len(failed)})}", 303)

    async def undo(request: Request, session: Session) -> Response:
        item_id = request.path_params["item_id"]
        return answer(request, session, await console.undo(session.user, item_id), done=f"/items/{item_id}")

    async def reject(request: Request, session: Session) -> Response:
        form = await request.form()
        outcome = await console.reject(
            session.user,
            request.path_params["item_id"],
            await version_of(request),
            str(form.get("reason") or ""),
        )
        return answer(request, session, outcome)

    async def agree(request: Request, session: Session) -> Response:
        item_id = request.path_params["item_id"]
        outcome = await console.agree(session.user, item_id, await version_of(request))
        decided = outcome.decision is not None
        return answer(request, session, outcome, done="/queue" if decided else f"/items/{item_id}")

    async def dismiss(request: Request, session: Session) -> Response:
        outcome = await console.dismiss(
            session.user, request.path_params["item_id"], await version_of(request)
        )
        return answer(request, session, outcome)

    async def reveal_contact(request: Request, session: Session) -> Response:
        item_id = request.path_params["item_id"]
        if reveal is None:
            return refused(request, session, Refusal.NOT_FOUND)
        outcome = await reveal(session.user, item_id, str((await request.form()).get("why") or ""))
        if outcome.refused is not None:
            return refused(request, session, outcome.refused, detail=outcome.detail)
        if wants_json(request):
            return JSONResponse({"channel": outcome.channel, "address": outcome.address})
        return page(
            request,
            "revealed.html",
            session=session,
            item_id=item_id,
            channel=outcome.channel,
            address=outcome.address,
        )

    # --- membership vetting ----------------------------------------------------------

    async def members(request: Request, session: Session) -> Response:
        """The joins waiting for the user: an admin's municipality's, a coordinator's groups'."""
        joins = await vetting.pending(session.user) if vetting is not None else None
        if joins is None:
            return refused(request, session, Refusal.FORBIDDEN)
        if wants_json(request):
            return JSONResponse({"pending": [join_json(j) for j in joins]})
        return page(
            request,
            "members.html",
            session=session,
            joins=joins,
            now=utcnow(),
            notice=request.query_params.get("notice"),
        )

    async def member_join(request: Request, session: Session) -> Response:
        """One waiting join; another group's (or municipality's) is not found."""
        if vetting is None:
            return refused(request, session, Refusal.NOT_FOUND)
        found = await vetting.join(session.user, request.path_params["join_id"])
        if isinstance(found, Refusal):
            return refused(request, session, found)
        if wants_json(request):
            return JSONResponse(join_json(found))
        return page(request, "members.html", session=session, joins=[found], now=utcnow(), notice=None)

    async def vet(request: Request, session: Session) -> Response:
        if vetting is None:
            return refused(request, session, Refusal.NOT_FOUND)
        form = await request.form()
        choice = str(form.get("decision") or "")
        if choice not in ("approve", "refuse"):
            return refused(request, session, Refusal.INVALID, detail="decision: approve or refuse")
        outcome = await vetting.decide(
            session.user, str(form.get("join") or ""), choice == "approve", str(form.get("reason") or "")
        )
        if outcome.refused is not None:
            return refused(request, session, outcome.refused, detail=outcome.detail)
        assert outcome.decision is not None
        if wants_json(request):
            return JSONResponse(
                {"decision": outcome.decision.model_dump(mode="json"), "repeated": outcome.repeated}
            )
        return RedirectResponse(f"/members?notice={'approved' if choice == 'approve' else 'refused'}", 303)

    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    def post(path: str, endpoint: Endpoint) -> Route:
        return Route(path, logged_in(endpoint), methods=["POST"])

    kit = Kit(page=page, logged_in=logged_in)
    extra = [route for extension in extensions for route in extension(kit)]

    return Starlette(
        routes=[
            Route("/", home, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
            *(Route(path, probe, methods=["GET"]) for path, probe in probes),
            Route("/login", login_page, methods=["GET"]),
            Route("/login", login, methods=["POST"]),
            post("/logout", logout),
            Route("/lang", switch_language, methods=["GET"]),
            Route("/queue", logged_in(queue), methods=["GET"]),
            Route("/queue/rows", logged_in(queue_rows), methods=["GET"]),
            Route("/events", logged_in(events), methods=["GET"]),
            Route("/items/{item_id}", logged_in(item_page), methods=["GET"]),
            post("/items/{item_id}/claim", claim),
            post("/items/{item_id}/release", release),
            post("/items/{item_id}/approve", approve),
            post("/items/{item_id}/reject", reject),
            post("/items/{item_id}/agree", agree),
            post("/items/{item_id}/dismiss", dismiss),
            *extra,
            post("/items/{item_id}/reveal", reveal_contact),
            post("/items/{item_id}/undo", undo),
            post("/items/{item_id}/escalate", escalate),
            post("/queue/reject", reject_many),
            Route("/members", logged_in(members), methods=["GET"]),
            post("/members/decide", vet),
            Route("/members/{join_id}", logged_in(member_join), methods=["GET"]),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ],
        middleware=[Middleware(SecurityHeaders)],
    )


def join_json(join: Join) -> dict[str, Any]:
    """A waiting join as the JSON API shows it."""
    return {
        "id": join.id,
        "member": join.member,
        "group_id": join.group_id,
        "requested_at": join.requested_at.isoformat(),
    }


def item_json(item: Item, now: datetime) -> dict[str, Any]:
    """An item as the JSON API shows it."""
    held = item.held
    return {
        "id": item.id,
        "kind": item.kind,
        "version": item.version,
        "state": item.state,
        "urgent": item.urgent,
        "reasons": list(item.reasons),
        "group_id": item.group_id,
        "district": item.district,
        "channel": held.message.provider.channel.value if held else None,
        "author": held.message.author.pseudonym if held else None,
        "strikes": held.moderation.strikes if held else None,
        "text": item.text,
        "age_minutes": age_minutes(item.received_at, now),
        "claimed_by": holder(item.claim, now),
        "agreed_by": list(item.agreed_by),
        "decision": json.loads(item.decision.model_dump_json()) if item.decision else None,
    }

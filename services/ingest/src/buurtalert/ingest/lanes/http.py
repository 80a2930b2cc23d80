"""Ingest's HTTP lane: Meta's webhooks (WhatsApp, Facebook), web reports and
authority alerts (JSON API and form). Answers fast: take, then answer.

Status codes: bad input gets a 4xx with the reason (and goes to quarantine); a
failure of our own infrastructure gets 503, so Meta or the client retries."""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable
from html import escape
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from buurtalert.ingest.accept import Intake, Refused
from buurtalert.ingest.parsers import facebook, polls, web, whatsapp
from buurtalert.ingest.parsers.common import Batch, InvalidInput, Parse, Resolver, raw_id, refuse
from buurtalert.ingest.parsers.polls import PollView
from buurtalert.shared.logging import get_logger
from buurtalert.shared.models import utcnow
from buurtalert.shared.polls import FORM_PATH, read_token
from buurtalert.shared.settings import MetaWebhook, MunicipalityConfig
from buurtalert.shared.texts import line
from buurtalert.shared.webhooks import SIGNATURE_HEADER, signature_problem

log = get_logger(__name__)
FORM_PAGE = (Path(__file__).parent / "report_form.html").read_text(encoding="utf-8")


POLL_PAGE = (Path(__file__).parent / "poll_form.html").read_text(encoding="utf-8")


def both(key: str, language: str, **fields: str) -> str:
    """A line in the poll's language, with English after it when that differs."""
    own, english = line(key, language, **fields), line(key, "en", **fields)
    return own if own == english else f"{own} / {english}"


def poll_page(poll: PollView | None, token: str, notice: str | None = None, refused: bool = False) -> str:
    """A poll's answer form (every value escaped), with a notice above it; without a poll
    (a link that is not valid) only the notice."""
    language = poll.language if poll else "nl"
    shown = ""
    if notice:
        shown = f'<p class="message{" refused" if refused else ""}" role="status">{escape(notice)}</p>'
    if poll is None:
        title = both("poll_form_title", "nl")
        return (
            f'<!doctype html><html lang="nl"><head><meta charset="utf-8"><title>{title}</title></head>'
            f"<body><h1>{title}</h1>{shown}</body></html>"
        )
    options = "\n".join(
        f'<label><input type="radio" name="option" value="{i}" required> {escape(option)}</label>'
        for i, option in enumerate(poll.options)
    )
    closes = poll.closes_at.strftime("%Y-%m-%d %H:%M UTC")
    fields = {
        "lang": language,
        "title": escape(both("poll_form_title", language)),
        "message": shown,
        "question": escape(poll.question),
        "options": options,
        "token": escape(token, quote=True),
        "closes": escape(both("poll_form_closes", language, closes=closes)),
        "anonymous": escape(both("poll_form_anonymous", language)),
        "send": escape(both("poll_form_send", language)),
    }
    page = POLL_PAGE
    for name, value in fields.items():
        page = page.replace("{{" + name + "}}", value)
    return page


def form_page(notice: str | None) -> str:
    """The report form, with a notice above it (escaped) after a submission."""
    shown = f'<p class="message" role="status">{escape(notice)}</p>' if notice else ""
    return FORM_PAGE.replace("{{message}}", shown)


class TooLarge(Exception):
    pass


class TokenBuckets:
    """A rate limit per API client: a token bucket each, in this process's memory (so
    per ingest instance, and reset by a restart). ``rate`` reports a minute; a burst
    of up to one minute's worth is allowed."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, key: str, rate_per_minute: int) -> bool:
        now = self.clock()
        level, then = self._buckets.get(key, (float(rate_per_minute), now))
        level = min(float(rate_per_minute), level + (now - then) * rate_per_minute / 60.0)
        if level < 1.0:
            self._buckets[key] = (level, now)
            return False
        self._buckets[key] = (level - 1.0, now)
        return True


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing to read more than ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def bearer(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def signed(config: MetaWebhook, signature: str | None, parse: Parse) -> Parse:
    """``parse``, for a body whose ``X-Hub-Signature-256`` matches (401 otherwise)."""

    def checked(raw: bytes, resolver: Resolver) -> Batch:
        if problem := signature_problem(config.app_secret, raw, signature):
            raise InvalidInput(problem, 401)
        return parse(raw, resolver)

    return checked


def refusal(refused: Refused) -> JSONResponse:
    return JSONResponse(
        {"error": refused.reason, "quarantine_id": refused.quarantine_id}, status_code=refused.status
    )


def routes(
    intake: Intake, municipality: MunicipalityConfig, buckets: TokenBuckets | None = None
) -> Starlette:
    """The HTTP lane's app; ``buckets`` holds the API clients' rate limits."""
    buckets = buckets or TokenBuckets()

    def guarded(
        source: str, handler: Callable[[Request], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception:  # our infrastructure failed, not the input: the sender retries
                log.exception("input_not_accepted", source=source)
                return JSONResponse({"error": "temporarily unavailable, please retry"}, status_code=503)

        return endpoint

    def meta_webhook(source: str, config: MetaWebhook | None, parser: Parse) -> list[Route]:
        async def verify(request: Request) -> Response:
            """Meta's subscription handshake: echo hub.challenge if the verify token matches."""
            params = request.query_params
            token = params.get("hub.verify_token", "")
            if (
                config is not None
                and params.get("hub.mode") == "subscribe"
                and hmac.compare_digest(token.encode(), config.verify_token.get_secret_value().encode())
            ):
                return PlainTextResponse(params.get("hub.challenge", ""))
            log.warning("webhook_verification_refused", source=source)
            return PlainTextResponse("verification failed", status_code=403)

        async def receive(request: Request) -> Response:
            if config is None:
                return JSONResponse({"error": f"{source} is not configured here"}, status_code=404)
            parse = signed(config, request.headers.get(SIGNATURE_HEADER), parser)
            try:
                body = await read_body(request, whatsapp.MAX_BODY_BYTES)
            except TooLarge:
                body, parse = b"", refuse("body too large", 413)
            taken = await intake.take(source, body, parse, content_type=request.headers.get("content-type"))
            if isinstance(taken, Refused):
                return refusal(taken)
            return JSONResponse(taken.outcome.as_json())

        path = f"/webhooks/{source}"
        return [
            Route(path, verify, methods=["GET"]),
            Route(path, guarded(source, receive), methods=["POST"]),
        ]

    wa_config = municipality.ingest.whatsapp
    fb_config = municipality.ingest.facebook

    def parse_whatsapp(body: bytes, resolver: Resolver) -> Batch:
        return whatsapp.parse(body, resolver=resolver, config=wa_config, raw_ref=raw_id(body))

    def parse_facebook(body: bytes, resolver: Resolver) -> Batch:
        return facebook.parse(body, resolver=resolver, config=fb_config, raw_ref=raw_id(body))

    async def post_report(request: Request) -> Response:
        """A web report or authority alert: JSON with a bearer token, or the form
        (answered with the form page again, saying what happened)."""
        content_type = request.headers.get("content-type")
        is_form = (content_type or "").startswith("application/x-www-form-urlencoded")
        token = "" if is_form else bearer(request)

        def parse_report(body: bytes, resolver: Resolver) -> Batch:
            return web.parse(body, resolver=resolver, form=is_form, bearer=token)

        parse: Parse = parse_report
        try:
            body = await read_body(request, web.MAX_BODY_BYTES)
        except TooLarge:
            body, parse = b"", refuse(f"body too large; at most {web.MAX_BODY_BYTES} bytes", 413)
        client = web.client_for(web.presented_token(body) if is_form else token, municipality)
        if client is not None and not buckets.allow(client.organisation, client.rate_per_minute):
            # not quarantined: a flood would only move onto Kafka
            log.warning("report_rate_limited", organisation=client.organisation)
            reason = f"more than {client.rate_per_minute} reports a minute; try again later"
            headers = {"Retry-After": "60"}
            if is_form:
                return HTMLResponse(form_page(f"Niet verstuurd / not sent: {reason}"), 429, headers)
            return JSONResponse({"error": reason}, status_code=429, headers=headers)
        stored = web.redacted(body) if is_form else body
        taken = await intake.take("web", body, parse, content_type=content_type, stored=stored)
        if isinstance(taken, Refused):
            if not is_form:
                return refusal(taken)
            notice = f"Niet verstuurd / not sent: {taken.reason}"
            return HTMLResponse(form_page(notice), status_code=taken.status)
        if is_form:
            return HTMLResponse(
                form_page("Dank u, uw melding is ontvangen. / Thank you, your report was received.")
            )
        [message] = taken.batch.messages
        duplicate = taken.outcome.duplicates > 0
        return JSONResponse({"id": message.id, "duplicate": duplicate}, status_code=200 if duplicate else 202)

    async def report_form(_: Request) -> HTMLResponse:
        return HTMLResponse(form_page(None))

    async def poll_of(token: str) -> PollView | None:
        invitation = read_token(municipality.pseudonym_key, token)
        return await intake.stores.poll(invitation.poll_id) if invitation else None

    async def poll_form(request: Request) -> HTMLResponse:
        """The answer form behind an invitation's link (the token in the query string)."""
        token = request.query_params.get("t", "")
        poll = await poll_of(token)
        if poll is None:
            notice = both("poll_form_refused", "nl", reason=polls.NOT_VALID)
            return HTMLResponse(poll_page(None, "", notice, refused=True), 404)
        return HTMLResponse(poll_page(poll, token))

    async def post_poll_answer(request: Request) -> Response:
        """An answer from the form: through the intake like any input (a refused one is
        quarantined with its reason, without the token)."""
        try:
            body = await read_body(request, polls.MAX_FORM_BYTES)
        except TooLarge:
            return HTMLResponse(poll_page(None, "", "too large"), 413)
        token = polls.form_fields(body).get("t", "")
        poll = await poll_of(token)
        now = utcnow()

        def parse_answer(raw: bytes, resolver: Resolver) -> Batch:
            return polls.parse_form(raw, resolver, poll, now)

        stored = polls.without_token(body)
        taken = await intake.take("poll", body, parse_answer, content_type="form", stored=stored)
        language = poll.language if poll else "nl"
        if isinstance(taken, Refused):
            notice = both("poll_form_refused", language, reason=taken.reason)
            shown = poll if taken.status not in (404, 410) else None
            return HTMLResponse(poll_page(shown, token, notice, refused=True), taken.status)
        return HTMLResponse(poll_page(poll, token, both("poll_form_thanks", language)))

    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            *meta_webhook("whatsapp", wa_config, parse_whatsapp),
            *meta_webhook("facebook", fb_config, parse_facebook),
            Route("/reports", guarded("web", post_report), methods=["POST"]),
            Route("/report", report_form, methods=["GET"]),
            Route(FORM_PATH, guarded("poll", poll_form), methods=["GET"]),
            Route(FORM_PATH, guarded("poll", post_poll_answer), methods=["POST"]),
            Route("/health", health, methods=["GET"]),
        ]
    )

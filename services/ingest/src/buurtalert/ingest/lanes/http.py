"""Ingest's HTTP side: Meta's webhooks (WhatsApp, Facebook), web reports and
authority alerts (JSON API and form). Answers fast: parse, publish, then 200.

Status codes: bad input gets a 4xx with the reason (and goes to quarantine); a
failure of our own infrastructure gets 503, so Meta or the client retries."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from html import escape
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from buurtalert.ingest.accept import Intake
from buurtalert.ingest.parsers import facebook, whatsapp
from buurtalert.ingest.parsers.common import Batch, InvalidInput, Resolver, raw_id
from buurtalert.ingest.parsers.web import MAX_BODY_BYTES, form_report, normalise, parse_report
from buurtalert.shared.logging import bound, get_logger
from buurtalert.shared.settings import ApiClient, MetaWebhook, MunicipalityConfig
from buurtalert.shared.webhooks import SIGNATURE_HEADER, signature_problem

log = get_logger(__name__)
FORM_PAGE = (Path(__file__).parent / "report_form.html").read_text(encoding="utf-8")
Parser = Callable[[bytes, Resolver], Batch]


def form_page(notice: str | None) -> str:
    """The report form, with a notice above it (escaped) after a submission."""
    shown = f'<p class="message" role="status">{escape(notice)}</p>' if notice else ""
    return FORM_PAGE.replace("{{message}}", shown)


class TooLarge(Exception):
    pass


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


def client_for(token: str, municipality: MunicipalityConfig) -> ApiClient | None:
    if not token:
        return None
    for client in municipality.api_clients:
        if hmac.compare_digest(token.encode(), client.token.get_secret_value().encode()):
            return client
    return None


def bearer(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def routes(intake: Intake, municipality: MunicipalityConfig) -> Starlette:
    async def resolver() -> Resolver:
        return Resolver(municipality, await intake.directories.get(municipality.id))

    async def refuse(source: str, request: Request, body: bytes, status: int, reason: str) -> JSONResponse:
        quarantine_id = await intake.quarantine(source, body, reason, request.headers.get("content-type"))
        return JSONResponse({"error": reason, "quarantine_id": quarantine_id}, status_code=status)

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

    def meta_webhook(source: str, config: MetaWebhook | None, parser: Parser) -> list[Route]:
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
            try:
                body = await read_body(request, whatsapp.MAX_BODY_BYTES)
            except TooLarge:
                return await refuse(source, request, b"", 413, "body too large")
            if problem := signature_problem(config.app_secret, body, request.headers.get(SIGNATURE_HEADER)):
                return await refuse(source, request, body, 401, problem)
            try:
                batch = parser(body, await resolver())
            except InvalidInput as exc:
                return await refuse(source, request, body, exc.status, str(exc))
            outcome = await intake.accept(
                batch, source=source, body=body, content_type=request.headers.get("content-type")
            )
            return JSONResponse(outcome.as_json())

        path = f"/webhooks/{source}"
        return [
            Route(path, verify, methods=["GET"]),
            Route(path, guarded(source, receive), methods=["POST"]),
        ]

    wa_config = municipality.ingest.whatsapp
    fb_config = municipality.ingest.facebook

    def parse_whatsapp(body: bytes, res: Resolver) -> Batch:
        return whatsapp.parse(body, resolver=res, config=wa_config, raw_ref=raw_id(body))

    def parse_facebook(body: bytes, res: Resolver) -> Batch:
        return facebook.parse(body, resolver=res, config=fb_config, raw_ref=raw_id(body))

    async def post_report(request: Request) -> Response:
        """A web report or authority alert: JSON with a bearer token, or the form
        (answered with the form page again, saying what happened)."""
        content_type = request.headers.get("content-type")
        is_form = (content_type or "").startswith("application/x-www-form-urlencoded")

        async def refused(body: bytes, status: int, reason: str) -> Response:
            if not is_form:
                return await refuse("web", request, body, status, reason)
            await intake.quarantine("web", body, reason, content_type)
            return HTMLResponse(form_page(f"Niet verstuurd / not sent: {reason}"), status_code=status)

        try:
            body = await read_body(request, MAX_BODY_BYTES)
        except TooLarge:
            return await refused(b"", 413, f"body too large; at most {MAX_BODY_BYTES} bytes")
        try:
            token, report = form_report(body) if is_form else (bearer(request), None)
            client = client_for(token, municipality)
            if client is None:
                return await refused(
                    body, 401, f"missing or unknown {'access code' if is_form else 'bearer token'}"
                )
            report = report or parse_report(body)
        except InvalidInput as exc:
            return await refused(body, exc.status, f"invalid report: {exc}")
        message = normalise(report, municipality=municipality, client=client, body=body)
        with bound(message_id=message.id):
            batch = Batch(
                raw_ref=message.raw_ref,
                messages=[message],
                # a web reporter gives a phone number or an email address
                contacts={
                    message.author.pseudonym: (
                        "email" if "@" in report.reporter else "whatsapp",
                        report.reporter,
                    )
                },
            )
            outcome = await intake.accept(batch, source="web", body=body, content_type=content_type)
        if is_form:
            return HTMLResponse(
                form_page("Dank u, uw melding is ontvangen. / Thank you, your report was received.")
            )
        duplicate = outcome.duplicates > 0
        return JSONResponse({"id": message.id, "duplicate": duplicate}, status_code=200 if duplicate else 202)

    async def report_form(_: Request) -> HTMLResponse:
        return HTMLResponse(form_page(None))

    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            *meta_webhook("whatsapp", wa_config, parse_whatsapp),
            *meta_webhook("facebook", fb_config, parse_facebook),
            Route("/reports", guarded("web", post_report), methods=["POST"]),
            Route("/report", report_form, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
        ]
    )

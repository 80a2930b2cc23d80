"""Web reports and authority alerts (the JSON API and the HTML form): the client's
token checked against the municipality's API clients, the report parsed and
normalised into a batch of one message. Free of I/O."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import parse_qsl, urlencode

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from buurtalert.directory.model import Directory
from buurtalert.ingest.parsers.common import (
    Batch,
    InvalidInput,
    Resolver,
    aware,
    invalid_as,
    problems,
    raw_id,
)
from buurtalert.shared.models import (
    Author,
    InboundMessage,
    Location,
    ProviderRef,
    Role,
    SourceChannel,
    TargetArea,
    stable_id,
    utcnow,
)
from buurtalert.shared.pseudonym import pseudonymise
from buurtalert.shared.settings import MIN_SECRET_LENGTH, ApiClient, MunicipalityConfig, token_sha256

MAX_BODY_BYTES = 64 * 1024


class WebReport(BaseModel):
    """A report posted to ``POST /reports``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    report_id: str = Field(
        min_length=1,
        max_length=128,
        description="The client's id for this report; posting it again is harmless",
    )
    group: str | None = Field(
        default=None, min_length=1, max_length=128, description="Directory id of the reporter's group"
    )
    reporter: str = Field(min_length=3, max_length=254, description="Phone number or email address")
    text: str = Field(min_length=1, max_length=4096)
    location: Location | None = None
    category: str | None = Field(default=None, max_length=64)
    sent_at: AwareDatetime | None = Field(default=None, description="With its time zone")
    target: TargetArea | None = Field(default=None, description="Authority alerts: the area they are for")
    forward_to: tuple[str, ...] = Field(default=(), max_length=50, description="Doorzetten (coordinators)")
    closes: str | None = Field(
        default=None, max_length=128, description="The incident or message this closes"
    )

    @model_validator(mode="after")
    def _addressed(self) -> WebReport:
        if self.sent_at is not None:
            aware(self.sent_at, "sent_at")
        if self.group is None and self.target is None:
            raise ValueError("a report needs a group, or (for an authority alert) a target area")
        return self


def parse_report(body: bytes) -> WebReport:
    if len(body) > MAX_BODY_BYTES:
        raise InvalidInput(f"body is {len(body)} bytes; at most {MAX_BODY_BYTES} are accepted", 413)
    try:
        return WebReport.model_validate_json(body)
    except ValidationError as exc:
        raise InvalidInput(problems(exc)) from None


def _form_fields(body: bytes) -> dict[str, str]:
    try:
        return {k: v.strip() for k, v in parse_qsl(body.decode("utf-8"), strict_parsing=False)}
    except (UnicodeDecodeError, ValueError):
        raise InvalidInput("the form is not valid UTF-8 form data") from None


def presented_token(form_body: bytes) -> str:
    """The access code a form carries ('' if none or unreadable)."""
    try:
        return _form_fields(form_body).get("token", "")
    except InvalidInput:
        return ""


def redacted(body: bytes) -> bytes:
    """The form's body without its access code: what is archived or quarantined."""
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError):
        return body if b"token" not in body else b""
    return urlencode([(k, v) for k, v in pairs if k != "token"]).encode()


def form_report(body: bytes, key: SecretStr) -> tuple[str, WebReport]:
    """The access code and report of the HTML form (``application/x-www-form-urlencoded``).
    The form has no report id: the same form sent twice is the same report. The id is
    keyed with the municipality's pseudonym key, so it does not give the reporter away."""
    if len(body) > MAX_BODY_BYTES:
        raise InvalidInput(f"body is {len(body)} bytes; at most {MAX_BODY_BYTES} are accepted", 413)
    fields = _form_fields(body)
    token = fields.pop("token", "")
    data: dict[str, object] = {
        k: v for k, v in fields.items() if v and k in ("group", "reporter", "text", "category")
    }
    if fields.get("latitude") and fields.get("longitude"):
        data["location"] = {"latitude": fields["latitude"], "longitude": fields["longitude"]}
    content = "\x1f".join(str(data.get(k, "")) for k in ("group", "reporter", "text")).encode()
    digest = hmac.new(key.get_secret_value().encode(), b"form-report\x1f" + content, hashlib.sha256)
    data["report_id"] = "form-" + digest.hexdigest()[:32]
    try:
        return token, WebReport.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(problems(exc)) from None


def normalise(
    report: WebReport,
    *,
    municipality: MunicipalityConfig,
    client: ApiClient,
    body: bytes,
    typed_in_the_form: bool = False,
) -> InboundMessage:
    """The canonical message for a web report. Its id depends only on the posting
    organisation and the client's report id, so a repeated post is recognised. The
    author is verified only where the client logs its reporters in, never on the form:
    whoever knows the access code can type any reporter there."""
    received = utcnow()
    return InboundMessage(
        id=stable_id("msg", SourceChannel.WEB, client.organisation, report.report_id),
        provider=ProviderRef(
            channel=SourceChannel.WEB, message_id=report.report_id, account=client.organisation
        ),
        municipality=municipality.id,
        group_id=report.group,
        author=Author(
            pseudonym=pseudonymise(municipality.pseudonym_key, report.reporter, municipality.country),
            role=Role(client.role),
            verified=client.verifies_reporters and not typed_in_the_form,
        ),
        text=report.text,
        location=report.location,
        category=report.category,
        target=report.target,
        forward_to=report.forward_to,
        closes=report.closes,
        sent_at=report.sent_at or received,
        received_at=received,
        raw_ref=raw_id(body),
    )


def client_for(token: str, municipality: MunicipalityConfig) -> ApiClient | None:
    """The API client (organisation) whose token this is, if any: its SHA-256 compared
    with every client's in constant time. A token shorter than the minimum is no token."""
    if len(token) < MIN_SECRET_LENGTH:
        return None
    presented = token_sha256(token).encode()
    found = None
    for client in municipality.api_clients:
        if hmac.compare_digest(presented, client.token_sha256.encode()):
            found = client
    return found


#: The roles that may close an incident.
MAY_CLOSE = frozenset({"coordinator", "wijkagent", "authority"})


def scope_problem(report: WebReport, client: ApiClient, directory: Directory | None) -> str | None:
    """Why ``client`` may not post ``report``, if so: a group or district outside its
    scope, a category it may not use, closing without the role for it."""

    def may_post_to(group_id: str) -> bool:
        if group_id in client.groups:
            return True
        group = directory.group(group_id) if directory else None
        return group is not None and group.district in client.districts

    for group_id in filter(None, (report.group, *report.forward_to)):
        if not may_post_to(group_id):
            return f"{client.organisation} may not post to group {group_id!r}"
    if report.target is not None:
        outside = [d for d in report.target.districts if d not in client.districts]
        if outside:
            return f"{client.organisation} may not alert district {outside[0]!r}"
        if (report.target.polygon or report.target.center) and client.role not in ("wijkagent", "authority"):
            return f"{client.organisation} may not alert an area by polygon or circle"
    allowed = client.categories
    if report.category is not None and allowed is not None and report.category not in allowed:
        return f"{client.organisation} may not use category {report.category!r}"
    if report.closes is not None and client.role not in MAY_CLOSE:
        return "closing an incident needs a coordinator or an authority"
    return None


def parse(body: bytes, *, resolver: Resolver, form: bool, bearer: str = "") -> Batch:
    """A report as a batch of one message. The JSON API authenticates with ``bearer``;
    the form (``form``) carries its access code. Raises :class:`InvalidInput`: 401 for a
    missing or unknown token, 403 for a report outside the client's scope, otherwise
    the report's problems. The form's access code never reaches the archive (``raw_ref``
    is the id of the body without it: see :func:`redacted`)."""
    municipality = resolver.municipality
    token, report = bearer, None
    if form:
        try:
            token, report = form_report(body, municipality.pseudonym_key)
        except InvalidInput as exc:
            raise _invalid_report(exc) from None
    client = client_for(token, municipality)
    if client is None:
        raise InvalidInput(f"missing or unknown {'access code' if form else 'bearer token'}", 401)
    if report is None:
        try:
            report = parse_report(body)
        except InvalidInput as exc:
            raise _invalid_report(exc) from None
    if problem := scope_problem(report, client, resolver.directory):
        raise InvalidInput(problem, 403)
    kept = redacted(body) if form else body
    with invalid_as("invalid report: "):
        message = normalise(
            report, municipality=municipality, client=client, body=kept, typed_in_the_form=form
        )
    return Batch(
        raw_ref=message.raw_ref,
        messages=[message],
        # a web reporter gives a phone number or an email address
        contacts={
            message.author.pseudonym: ("email" if "@" in report.reporter else "whatsapp", report.reporter)
        },
    )


def _invalid_report(exc: InvalidInput) -> InvalidInput:
    return InvalidInput(f"invalid report: {exc}", exc.status)

"""Settings: the environment (``BUURTALERT_*``) plus one YAML file per municipality."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from buurtalert.shared.yamlfile import load_yaml


class Settings(BaseSettings):
    """What a service needs to run; every field can be set as ``BUURTALERT_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="BUURTALERT_", extra="ignore")

    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="How the Kafka clients talk to the brokers"
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = Field(
        default=None, description="CA bundle for the brokers' certificates (the system's if unset)"
    )
    mongo_url: SecretStr = SecretStr("mongodb://127.0.0.1:27017/")
    mongo_pool_size: int = Field(
        default=16,
        ge=1,
        le=64,
        description="Connections per process to the database: all processes together stay under "
        "FerretDB's own pool (see shared.mongo.mongo_client)",
    )
    database: str = "buurtalert"
    topic_prefix: str = ""
    environment: Literal["local", "production"] = "local"
    log_level: str = "INFO"
    municipality_file: Path = Path("deploy/demo/weert/municipality.yaml")
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, description="Where the service serves /health, /ready, /metrics")
    otlp_endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP traces endpoint (e.g. http://collector:4318/v1/traces); none: not exported",
    )
    retry_delays: tuple[float, ...] = Field(
        default=(1.0, 5.0, 30.0),
        description="Seconds to wait before each retry (each with ±50% jitter); after the last, "
        "the dead-letter topic",
    )

    @model_validator(mode="after")
    def _sasl_complete(self) -> Settings:
        if self.kafka_security_protocol.startswith("SASL_") and not (
            self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError("a SASL security protocol needs kafka_sasl_username and kafka_sasl_password")
        return self

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    def group_id(self, service: str) -> str:
        return f"{self.topic_prefix}{service}"


#: The shortest token or access code a client may present, and the shortest app secret.
MIN_SECRET_LENGTH = 16


def token_sha256(token: str) -> str:
    """How a token or access code is stored in the municipality file (``token_sha256``)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class ApiClient(BaseModel):
    """An organisation allowed to post reports or alerts through the HTTP API, and
    what it may do there. Its token (or the form's access code) is stored as a hash."""

    model_config = ConfigDict(extra="forbid")

    organisation: str
    token_sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$",
        description="SHA-256 (hex) of the client's token; make one with `buurtalert token new`",
    )
    role: Literal["resident", "coordinator", "wijkagent", "authority"] = "resident"
    groups: tuple[str, ...] = Field(default=(), description="The groups it may post to")
    districts: tuple[str, ...] = Field(
        default=(), description="The districts it may post to: their groups, and alerts with a target there"
    )
    categories: tuple[str, ...] | None = Field(
        default=None, description="The categories it may use (None: any; empty: none)"
    )
    rate_per_minute: int = Field(
        default=60, gt=0, le=100_000, description="Reports per minute (a token bucket per client, in memory)"
    )
    verifies_reporters: bool = Field(
        default=False,
        description="The client logs its reporters in (they report for themselves): its authors are "
        "verified and may get feedback and strikes. Otherwise a reporter is only a claim.",
    )


class MetaWebhook(BaseModel):
    """A Meta app's webhook: the app secret signs every POST, the verify token answers
    the GET handshake."""

    model_config = ConfigDict(extra="forbid")

    app_secret: SecretStr = Field(min_length=MIN_SECRET_LENGTH)
    verify_token: SecretStr = Field(min_length=MIN_SECRET_LENGTH)


class WhatsAppIngest(MetaWebhook):
    phone_number_ids: tuple[str, ...] = Field(
        default=(), description="The municipality's business numbers; others are refused (empty: any)"
    )
    access_token: SecretStr | None = Field(default=None, description="Graph API token, to fetch media")
    graph_url: str = "https://graph.facebook.com/v21.0"
    media_max_bytes: int = Field(default=16 * 1024 * 1024, gt=0)


class FacebookIngest(MetaWebhook):
    page_ids: tuple[str, ...] = Field(default=(), description="The Pages to accept (empty: any)")


class ImapMailbox(BaseModel):
    """A mailbox ingest reads with IMAP IDLE."""

    model_config = ConfigDict(extra="forbid")

    host: str
    port: int = 993
    tls: bool = True
    username: str
    password: SecretStr
    folder: str = "INBOX"
    group: str | None = Field(default=None, description="The group this mailbox belongs to, if only one")


class EmailIngest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    smtp_host: str = "127.0.0.1"
    smtp_port: int | None = Field(default=None, description="The SMTP receiver's port; None: no receiver")
    max_bytes: int = Field(default=10 * 1024 * 1024, gt=0, description="Largest message accepted")
    attachment_max_bytes: int = Field(default=5 * 1024 * 1024, gt=0)
    own_domains: tuple[str, ...] = Field(
        default=(), description="Domains we send from: mail from them is our own, looping back"
    )
    imap: tuple[ImapMailbox, ...] = ()
    trusted_authserv_ids: tuple[str, ...] = Field(
        default=(),
        description="The authserv-ids of our own receiving servers: only their Authentication-Results "
        "headers are read; every other such header is the sender's word and ignored",
    )


class IngestChannels(BaseModel):
    model_config = ConfigDict(extra="forbid")

    whatsapp: WhatsAppIngest | None = None
    facebook: FacebookIngest | None = None
    email: EmailIngest | None = None
    public_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="Ingest's public address, for links members open (the answer form of a poll)",
    )


#: A channel adapter's name, also its delivery topic's (``deliveries.<name>``).
ChannelName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,39}$")]


class RetentionPeriods(BaseModel):
    """Days each retention class is kept (``buurtalert retention purge``); None keeps it.
    Contacts and memberships last until the person opts out or is erased, configuration
    until it is replaced: neither is purged by date."""

    model_config = ConfigDict(extra="forbid")

    raw_input: int | None = Field(default=30, ge=1)
    record: int | None = Field(default=365, ge=1)
    strike: int | None = Field(
        default=365, ge=1, description="Keep at least the moderation policy's expire_after_days"
    )
    operational: int | None = Field(default=30, ge=1)


class OnDuty(BaseModel):
    """A moderator on duty: told through a channel when an urgent review item waits past
    its deadline. The address is the one the channel needs (an email address, a WhatsApp
    number); it is configuration, not a reporter's address."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, description="Who this is (a console user's name)")
    channel: ChannelName
    address: str = Field(min_length=1)
    language: Literal["nl", "fr", "de", "en"] = "nl"


class ReviewConfig(BaseModel):
    """The review console's settings per municipality: the deadline of urgent items and
    who is on duty when one passes it."""

    model_config = ConfigDict(extra="forbid")

    urgent_deadline_minutes: int = Field(
        default=10, ge=1, le=1440, description="An urgent item undecided this long notifies the on-duty"
    )
    on_duty: tuple[OnDuty, ...] = Field(default=(), description="Told when an urgent item is overdue")
    console_url: str | None = Field(
        default=None, description="The console's public address, for links in notices (e.g. https://...)"
    )
    undo_seconds: float = Field(
        default=5.0, ge=0, le=120, description="A forward takes effect this long after it is decided"
    )
    deadline_check_seconds: float = Field(
        default=30.0, gt=0, le=600, description="How often the review service looks for overdue items"
    )


class MunicipalityConfig(BaseModel):
    """The per-municipality file (``municipality_file``). Secrets stay ``SecretStr``."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9-]+$")
    name: str
    country: Literal["NL", "BE"]
    pseudonym_key: SecretStr = Field(min_length=16)
    moderation_policy: Path | None = Field(
        default=None, description="The moderation policy file; None for the country's default"
    )
    api_clients: tuple[ApiClient, ...] = ()
    channels: dict[ChannelName, dict[str, Any]] = Field(
        default_factory=dict, description="Configuration per channel adapter name"
    )
    ingest: IngestChannels = Field(default_factory=IngestChannels, description="Where messages come in")
    retention: RetentionPeriods = Field(default_factory=RetentionPeriods, description="Days kept per class")
    review: ReviewConfig = Field(default_factory=ReviewConfig, description="The review console's deadlines")


#: The secrets of the demo files (deploy/demo): refused when BUURTALERT_ENVIRONMENT=production.
DEMO_SECRETS = frozenset(
    {
        "demo-pseudonym-key-not-for-production",
        "demo-pseudonym-key-bocholt-not-for-production",
        "demo-whatsapp-app-secret",
        "demo-facebook-app-secret",
        "demo-verify-token",
        "demo-graph-token",
        "demo-webhook-secret",
        "demo-imap-password",
        "demo-token-buurtpreventie",
        "demo-token-politie",
        "demo-token-bin-bocholt",
    }
)


def demo_secrets_in(config: MunicipalityConfig) -> list[str]:
    """Where ``config`` uses a secret of the demo files (by the field's path)."""
    demo_hashes = {token_sha256(s) for s in DEMO_SECRETS}
    found: list[str] = []

    def walk(value: object, where: str) -> None:
        if isinstance(value, SecretStr):
            if value.get_secret_value() in DEMO_SECRETS:
                found.append(where)
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(getattr(value, name), f"{where}.{name}" if where else name)
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{where}.{key}")
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                walk(item, f"{where}[{index}]")
        elif isinstance(value, str) and (value in DEMO_SECRETS or value in demo_hashes):
            found.append(where)

    walk(config, "")
    return found


class DemoSecretsInProduction(ValueError):
    pass


def load_municipality_config(path: Path, *, environment: str | None = None) -> MunicipalityConfig:
    """The municipality file; raises :class:`ConfigFileError` naming the line of each
    problem, and :class:`DemoSecretsInProduction` when a production deployment
    (``BUURTALERT_ENVIRONMENT``) uses a secret of the demo files."""
    config = load_yaml(path, MunicipalityConfig)
    environment = environment or os.environ.get("BUURTALERT_ENVIRONMENT", "local")
    if environment == "production" and (found := demo_secrets_in(config)):
        raise DemoSecretsInProduction(f"{path}: demo secrets in production: {', '.join(found)}")
    return config

"""Settings: the environment (``BUURTALERT_*``) plus one YAML file per municipality."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints
from pydantic_settings import BaseSettings, SettingsConfigDict

from buurtalert.shared.yamlfile import load_yaml


class Settings(BaseSettings):
    """What a service needs to run; every field can be set as ``BUURTALERT_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="BUURTALERT_", extra="ignore")

    kafka_bootstrap: str = "127.0.0.1:9092"
    mongo_url: SecretStr = SecretStr("mongodb://127.0.0.1:27017/")
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

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    def group_id(self, service: str) -> str:
        return f"{self.topic_prefix}{service}"


class ApiClient(BaseModel):
    """An organisation allowed to post reports or alerts through the HTTP API."""

    model_config = ConfigDict(extra="forbid")

    organisation: str
    token: SecretStr
    role: Literal["resident", "coordinator", "wijkagent", "authority"] = "resident"


class MetaWebhook(BaseModel):
    """A Meta app's webhook: the app secret signs every POST, the verify token answers
    the GET handshake."""

    model_config = ConfigDict(extra="forbid")

    app_secret: SecretStr
    verify_token: SecretStr


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


class IngestChannels(BaseModel):
    model_config = ConfigDict(extra="forbid")

    whatsapp: WhatsAppIngest | None = None
    facebook: FacebookIngest | None = None
    email: EmailIngest | None = None


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


def load_municipality_config(path: Path) -> MunicipalityConfig:
    """The municipality file; raises :class:`ConfigFileError` naming the line of each problem."""
    return load_yaml(path, MunicipalityConfig)

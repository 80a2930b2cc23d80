"""The media lane: WhatsApp media, fetched through the Graph API media endpoint after
the webhook was answered (``ingest.media``) and kept by reference in the ``media``
collection (:meth:`IngestStores.store_media <buurtalert.ingest.stores.IngestStores.store_media>`).

Two calls, as Meta documents them: ``GET /<media-id>`` gives a short-lived URL, the
size and the hash; ``GET <url>`` with the same token gives the bytes. Anything larger
than ``media_max_bytes`` is recorded as refused, not stored."""

from __future__ import annotations

import base64
import hashlib

import httpx

from buurtalert.ingest.parsers.mediafiles import sniff
from buurtalert.ingest.stores import IngestStores, MediaFile
from buurtalert.shared.kafka import PermanentError
from buurtalert.shared.logging import get_logger
from buurtalert.shared.models import MediaFetch
from buurtalert.shared.mongo import Document
from buurtalert.shared.settings import WhatsAppIngest

log = get_logger(__name__)
PERMANENT_CODES = {100, 131051, 131052, 131053}  # unknown or unsupported media


class MediaFetchError(Exception):
    """A Graph API error; ``permanent`` when retrying cannot help."""

    def __init__(self, status: int, body: Document) -> None:
        found = body.get("error")
        error: Document = found if isinstance(found, dict) else {}
        self.code = int(error.get("code", 0) or 0)
        self.permanent = status in (400, 404) and self.code in PERMANENT_CODES
        super().__init__(f"Graph API {status}: code {self.code}: {error.get('message', 'no message')}")


def _hash_matches(data: bytes, expected: str | None) -> bool:
    """WhatsApp gives the SHA-256 as hex or base64, depending on the media type."""
    if not expected:
        return True
    digest = hashlib.sha256(data).digest()
    return expected.lower() == digest.hex() or expected == base64.b64encode(digest).decode()


class MediaFetcher:
    def __init__(
        self, config: WhatsAppIngest | None, stores: IngestStores, client: httpx.AsyncClient
    ) -> None:
        self._config = config
        self._stores = stores
        self._client = client

    @property
    def _whatsapp(self) -> WhatsAppIngest:
        if self._config is None:
            raise PermanentError("WhatsApp is not configured; cannot fetch its media")
        return self._config

    async def handle(self, job: MediaFetch) -> str:
        """Fetch and keep one medium, and record what happened in the message's audit
        trail; returns it. Idempotent."""
        outcome = await self.fetch(job)
        await self._stores.record(job.message_id, f"media.{job.storage_ref}", {"outcome": outcome})
        log.info("media_fetched", storage_ref=job.storage_ref, outcome=outcome)
        return outcome

    def _headers(self) -> dict[str, str]:
        token = self._whatsapp.access_token
        if token is None:
            raise PermanentError("no Graph API access_token configured for WhatsApp media")
        return {"Authorization": f"Bearer {token.get_secret_value()}"}

    async def _json(self, url: str) -> Document:
        response = await self._client.get(url, headers=self._headers())
        body = (
            response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        )
        if response.status_code != 200:
            raise MediaFetchError(response.status_code, body)
        return body

    async def fetch(self, job: MediaFetch) -> str:
        """Fetch and store one medium; returns what happened. Idempotent."""
        config = self._whatsapp
        if await self._stores.media_stored(job.storage_ref):
            return "stored already"
        limit = config.media_max_bytes
        try:
            info = await self._json(f"{config.graph_url.rstrip('/')}/{job.provider_media_id}")
            size = int(info.get("file_size", 0) or 0)
            if size > limit:
                await self._keep(job, None, refused=f"{size} bytes; at most {limit}", size=size)
                return "refused: too large"
            data = await self._download(str(info["url"]), limit)
        except MediaFetchError as exc:
            if exc.permanent:
                raise PermanentError(str(exc)) from exc
            raise
        if data is None:
            await self._keep(job, None, refused=f"more than {limit} bytes")
            return "refused: too large"
        if not _hash_matches(data, job.sha256 or info.get("sha256")):
            raise ValueError("downloaded media does not match its SHA-256; will fetch again")
        await self._keep(job, data)
        return "stored"

    async def _download(self, url: str, limit: int) -> bytes | None:
        chunks, size = [], 0
        async with self._client.stream("GET", url, headers=self._headers()) as response:
            if response.status_code != 200:
                raise MediaFetchError(response.status_code, {})
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > limit:
                    return None
                chunks.append(chunk)
        return b"".join(chunks)

    async def _keep(
        self, job: MediaFetch, data: bytes | None, *, refused: str | None = None, size: int | None = None
    ) -> None:
        await self._stores.store_media(
            MediaFile(
                storage_ref=job.storage_ref,
                message_id=job.message_id,
                channel=job.channel,
                data=data,
                mime_type=sniff(data) if data is not None else None,
                declared_type=job.mime_type,
                refused=refused,
                declared_size=size,
            )
        )

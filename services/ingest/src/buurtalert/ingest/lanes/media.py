"""WhatsApp media, fetched through the Graph API media endpoint after the webhook was
answered (``ingest.media``) and stored by reference in the ``media`` collection.

Two calls, as Meta documents them: ``GET /<media-id>`` gives a short-lived URL, the
size and the hash; ``GET <url>`` with the same token gives the bytes. Anything larger
than ``media_max_bytes`` is recorded as refused, not stored."""

from __future__ import annotations

import base64
import contextlib
import hashlib
from typing import Any

import httpx
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from buurtalert.ingest.parsers.mediafiles import sniff
from buurtalert.shared.kafka import PermanentError
from buurtalert.shared.logging import get_logger
from buurtalert.shared.models import MediaFetch, utcnow
from buurtalert.shared.settings import WhatsAppIngest

log = get_logger(__name__)
Document = dict[str, Any]
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
        self, config: WhatsAppIngest, db: AsyncDatabase[Document], client: httpx.AsyncClient
    ) -> None:
        self._config = config
        self._media = db.media
        self._client = client

    def _headers(self) -> dict[str, str]:
        token = self._config.access_token
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
        if await self._media.find_one({"_id": job.storage_ref}, projection={"_id": 1}):
            return "stored already"
        limit = self._config.media_max_bytes
        try:
            info = await self._json(f"{self._config.graph_url.rstrip('/')}/{job.provider_media_id}")
            size = int(info.get("file_size", 0) or 0)
            if size > limit:
                await self._record(job, {"refused": f"{size} bytes; at most {limit}", "size": size})
                return "refused: too large"
            data = await self._download(str(info["url"]), limit)
        except MediaFetchError as exc:
            if exc.permanent:
                raise PermanentError(str(exc)) from exc
            raise
        if data is None:
            await self._record(job, {"refused": f"more than {limit} bytes"})
            return "refused: too large"
        if not _hash_matches(data, job.sha256 or info.get("sha256")):
            raise ValueError("downloaded media does not match its SHA-256; will fetch again")
        await self._record(
            job,
            {"data": data, "size": len(data), "mime_type": sniff(data), "declared_type": job.mime_type},
        )
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

    async def _record(self, job: MediaFetch, fields: Document) -> None:
        document = {
            "_id": job.storage_ref,
            "message_id": job.message_id,
            "channel": job.channel,
            "stored_at": utcnow(),
            **fields,
        }
        with contextlib.suppress(DuplicateKeyError):  # stored already
            await self._media.insert_one(document)

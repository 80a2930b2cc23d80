"""A local stand-in for Meta's Graph API, for tests, benchmarks and ``make run``.

It speaks the documented protocol, errors included: a bearer token on every call
(error 190 otherwise), unknown object ids (error 100), and the media endpoints
(``GET /<version>/<media-id>`` for the URL, size and hash; ``GET <url>`` for the
bytes). Nothing here reaches the internet."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


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


@dataclass
class GraphEmulator:
    """``GraphEmulator(access_token="t").app`` is the ASGI app; ``base_url`` is set by whoever serves it."""

    access_token: str
    version: str = "v21.0"
    base_url: str = "http://127.0.0.1"
    media: dict[str, Medium] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)

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

    async def _media_info(self, request: Request) -> Response:
        media_id = request.path_params["object_id"]
        self.calls.append(("GET", request.url.path))
        if not self._authorised(request):
            return self._unauthorised()
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

    @property
    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route(f"/{self.version}/{{object_id}}", self._media_info, methods=["GET"]),
                Route("/media-download/{media_id}", self._media_download, methods=["GET"]),
            ]
        )

"""Calling Meta's Graph API, shared by the WhatsApp and Facebook adapters: one
aiohttp session with the bearer token, and the Graph error envelope read into a
:class:`GraphError` that each adapter maps to transient or permanent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
from pydantic import SecretStr

from buurtalert.shared.channels import TransientDeliveryError

CONNECTIONS = 32


@dataclass(frozen=True, slots=True)
class GraphError:
    status: int
    code: int
    subcode: int
    detail: str

    @property
    def provider_code(self) -> str:
        return str(self.code or self.status)


class GraphSession:
    """``await post(path, json=...)`` answers the decoded body, or a :class:`GraphError`
    for a Graph error; a network failure raises :class:`TransientDeliveryError`."""

    def __init__(self, graph_url: str, token: SecretStr, timeout: float) -> None:
        self.graph_url = graph_url.rstrip("/")
        self._token = token
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        # aiohttp rather than httpx on this hot path: against the Graph API emulator
        # it made several times the requests per second of httpx (docs/benchmarks.md).
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=CONNECTIONS),
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                headers={"Authorization": f"Bearer {self._token.get_secret_value()}"},
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(
        self, path: str, *, json: dict[str, Any] | None = None, data: aiohttp.FormData | None = None
    ) -> dict[str, Any] | GraphError:
        return await self.call("POST", path, json=json, data=data)

    async def delete(self, path: str, *, json: dict[str, Any] | None = None) -> dict[str, Any] | GraphError:
        """A DELETE with a JSON body (the Groups API removes participants so)."""
        return await self.call("DELETE", path, json=json)

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        data: aiohttp.FormData | None = None,
    ) -> dict[str, Any] | GraphError:
        if self._session is None:
            await self.start()
        assert self._session is not None
        url = f"{self.graph_url}/{path}"
        try:
            async with self._session.request(method, url, json=json, data=data) as response:
                status, reason = response.status, response.reason or ""
                try:
                    answer = await response.json(content_type=None)
                except ValueError:
                    answer = {}
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientDeliveryError(f"Graph API unreachable: {type(exc).__name__}") from exc
        answer = answer if isinstance(answer, dict) else {}
        if status == 200:
            return answer
        error = answer.get("error") or {}
        code = int(error.get("code") or 0)
        return GraphError(
            status=status,
            code=code,
            subcode=int(error.get("error_subcode") or 0),
            detail=f"Graph API {status}: code {code}: {error.get('message', reason)}",
        )

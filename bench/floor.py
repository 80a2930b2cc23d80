"""``python -m bench.floor PORT``: the bare-HTTP floor of the ingest benchmark, a
Starlette endpoint on uvicorn that only reads the body and answers 200, served by a
process of its own (as ingest is), so it does not share the load generator's event
loop and the ratio ingest / floor compares like with like."""

from __future__ import annotations

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def ok(request: Request) -> Response:
    await request.body()
    return Response(b'{"accepted": 0}', media_type="application/json")


app = Starlette(routes=[Route("/webhooks/whatsapp", ok, methods=["POST"])])

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")

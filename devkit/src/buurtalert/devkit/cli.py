"""``buurtalert graph-emulator`` and ``buurtalert dev-mailbox``: the development
stand-ins of ``make run`` (loopback only, no authentication: never in production)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("graph-emulator")
@click.option("--port", type=int, default=8090, show_default=True)
@click.option("--access-token", default="demo-graph-token", show_default=True)
@click.option(
    "--messages-per-second", type=int, default=80, show_default=True, help="Throughput cap per number"
)
@click.option("--log-level", default="info", show_default=True)
@click.option(
    "--directory",
    "directories",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A directory file whose WhatsApp groups (Groups API) the emulator holds, with their members",
)
def graph_emulator(
    port: int, access_token: str, messages_per_second: int, log_level: str, directories: tuple[Path, ...]
) -> None:
    """A local stand-in for Meta's Graph API (development only; loopback)."""
    import uvicorn

    from buurtalert.devkit.graph_emulator import GraphEmulator, groups_from_directory
    from buurtalert.directory.model import load_directory

    groups: dict[str, set[str]] = {}
    for path in directories:
        for group_id, participants in groups_from_directory(load_directory(path)).items():
            groups.setdefault(group_id, set()).update(participants)
    emulator = GraphEmulator(
        access_token=access_token,
        base_url=f"http://127.0.0.1:{port}",
        messages_per_second=messages_per_second,
        groups=groups,
    )
    uvicorn.run(emulator.app, host="127.0.0.1", port=port, log_level=log_level)


@click.command("dev-mailbox")
@click.option("--smtp-port", default=2525, show_default=True)
@click.option("--http-port", default=8025, show_default=True)
def dev_mailbox(smtp_port: int, http_port: int) -> None:
    """Run a local SMTP server on 127.0.0.1 and show what it receives on a web page."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    from buurtalert.devkit.devmail import DevMailbox, render_page

    box = DevMailbox(port=smtp_port)

    async def page(_: Request) -> HTMLResponse:
        return HTMLResponse(render_page(box.mailbox.snapshot()))

    with box:
        click.echo(f"dev mailbox: SMTP on 127.0.0.1:{smtp_port}, messages on http://127.0.0.1:{http_port}/")
        uvicorn.run(
            Starlette(routes=[Route("/", page)]), host="127.0.0.1", port=http_port, log_level="warning"
        )

"""``buurtalert channels``: the channel adapters, and a development mailbox."""

from __future__ import annotations

from importlib.metadata import entry_points

import click

from buurtalert.shared.channels import ENTRY_POINT_GROUP


@click.group()
def channels() -> None:
    """Channel adapters."""


@channels.command("list")
def list_adapters() -> None:
    """List the registered channel adapters and their capabilities."""
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            cls = ep.load()
        except Exception as exc:  # report, never crash, on a broken plugin
            click.echo(f"{ep.name:12} failed to load: {exc}")
            continue
        click.echo(
            f"{ep.name:12} max_text_length={cls.max_text_length} media={cls.supports_media} "
            f"send_rate={cls.send_rate} recipient_pacing={cls.recipient_pacing}  ({ep.value})"
        )


@channels.command("dev-mailbox")
@click.option("--smtp-port", default=2525, show_default=True)
@click.option("--http-port", default=8025, show_default=True)
def dev_mailbox(smtp_port: int, http_port: int) -> None:
    """Run a local SMTP server on 127.0.0.1 and show what it receives on a web page."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    from buurtalert.channels.devmail import DevMailbox, render_page

    box = DevMailbox(port=smtp_port)

    async def page(_: Request) -> HTMLResponse:
        return HTMLResponse(render_page(box.mailbox.snapshot()))

    with box:
        click.echo(f"dev mailbox: SMTP on 127.0.0.1:{smtp_port}, messages on http://127.0.0.1:{http_port}/")
        uvicorn.run(
            Starlette(routes=[Route("/", page)]), host="127.0.0.1", port=http_port, log_level="warning"
        )

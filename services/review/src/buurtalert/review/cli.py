"""``buurtalert review``: the console's users."""

from __future__ import annotations

import asyncio
import sys

import click

from buurtalert.review.handlers import Access
from buurtalert.review.rules import USER_ROLES, Account
from buurtalert.review.stores import Sessions, Users
from buurtalert.shared.models import Role
from buurtalert.shared.mongo import Database
from buurtalert.shared.settings import Settings
from buurtalert.shared.topics import REVIEW

MIN_PASSWORD = 8


@click.group()
def review() -> None:
    """The review console."""


@review.group()
def user() -> None:
    """Console users: each belongs to one municipality and has one role."""


@user.command("add")
@click.option("--municipality", required=True, help="The municipality whose queue the user sees")
@click.option(
    "--role", required=True, type=click.Choice([r.value for r in USER_ROLES]), help="What the user may do"
)
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input instead of prompting"
)
@click.argument("name")
def user_add(municipality: str, role: str, password_stdin: bool, name: str) -> None:
    """Add user NAME, or replace it (a new password also lifts a lockout). Without a
    terminal the password is read from standard input."""
    if password_stdin or not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < MIN_PASSWORD:
        raise click.BadParameter(f"the password needs at least {MIN_PASSWORD} characters")
    try:
        Account(name=name, municipality=municipality, role=Role(role))
    except ValueError as exc:
        raise click.BadParameter(str(exc).splitlines()[0]) from None

    async def add() -> None:
        db = Database.connect(Settings(), REVIEW)
        try:
            await Access(Users(db), Sessions(db)).add_user(name, municipality, Role(role), password)
        finally:
            await db.close()

    asyncio.run(add())
    click.echo(f"user {name} ({role}, {municipality}) saved")

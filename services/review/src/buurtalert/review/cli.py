"""``buurtalert review``: the console's users."""

from __future__ import annotations

import asyncio
import sys

import click

from buurtalert.directory.store import fetch_directory
from buurtalert.review.handlers import Access
from buurtalert.review.rules import SCOPED, USER_ROLES, Account, locked, scope_problems, unknown_scope
from buurtalert.review.stores import Sessions, Users
from buurtalert.shared.models import Role, utcnow
from buurtalert.shared.mongo import Database
from buurtalert.shared.settings import Settings
from buurtalert.shared.topics import REVIEW

MIN_PASSWORD = 8


def _names(value: str | None) -> tuple[str, ...]:
    """``a,b`` as ``("a", "b")``: blanks and repeats dropped, the order kept."""
    return tuple(dict.fromkeys(n.strip() for n in (value or "").split(",") if n.strip()))


@click.group()
def review() -> None:
    """The review console."""


@review.group()
def user() -> None:
    """Console users: each belongs to one municipality and has one role; a coordinator acts
    for their groups, a wijkagent for their districts, moderators and admins for the whole
    municipality."""


@user.command("add")
@click.option("--municipality", required=True, help="The municipality whose queue the user sees")
@click.option(
    "--role", required=True, type=click.Choice([r.value for r in USER_ROLES]), help="What the user may do"
)
@click.option("--groups", help="A coordinator's groups, comma-separated (required for a coordinator)")
@click.option("--districts", help="A wijkagent's districts, comma-separated (required for a wijkagent)")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input instead of prompting"
)
@click.argument("name")
def user_add(
    municipality: str, role: str, groups: str | None, districts: str | None, password_stdin: bool, name: str
) -> None:
    """Add user NAME, or replace it (a new password also lifts a lockout; the user's
    sessions end). The groups and districts must be in the municipality's directory. Without
    a terminal the password is read from standard input."""
    chosen, in_groups, in_districts = Role(role), _names(groups), _names(districts)
    try:
        Account(name=name, municipality=municipality, role=chosen, groups=in_groups, districts=in_districts)
    except ValueError as exc:
        raise click.BadParameter(str(exc).splitlines()[0]) from None
    if problems := scope_problems(chosen, in_groups, in_districts):  # before asking for a password
        raise click.UsageError("; ".join(problems))
    if password_stdin or not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < MIN_PASSWORD:
        raise click.BadParameter(f"the password needs at least {MIN_PASSWORD} characters")

    async def add() -> list[str]:
        db = Database.connect(Settings(), REVIEW)
        try:
            if chosen in SCOPED:
                directory = await fetch_directory(db, municipality)
                if problems := unknown_scope(directory, in_groups, in_districts):
                    return problems
            await Access(Users(db), Sessions(db)).add_user(
                name, municipality, chosen, password, groups=in_groups, districts=in_districts
            )
            return []
        finally:
            await db.close()

    if problems := asyncio.run(add()):
        raise click.UsageError("; ".join(problems))
    scope = ", ".join(in_groups or in_districts)
    click.echo(f"user {name} ({role}, {municipality}{': ' + scope if scope else ''}) saved")


@user.command("list")
@click.option("--municipality", required=True, help="The municipality whose users to list")
def user_list(municipality: str) -> None:
    """The municipality's users: name, role, scope (a coordinator's groups, a wijkagent's
    districts; "(none)" for a scoped role without one, which sees nothing scoped) and
    whether the account is locked."""

    async def read() -> list[Account]:
        db = Database.connect(Settings(), REVIEW)
        try:
            return await Users(db).of(municipality)
        finally:
            await db.close()

    now = utcnow()
    for account in asyncio.run(read()):
        if account.role in SCOPED:
            scope = f"{SCOPED[account.role]}: {','.join(account.groups or account.districts) or '(none)'}"
        else:
            scope = "municipality-wide"
        lock = "\tlocked" if locked(account, now) else ""
        click.echo(f"{account.name}\t{account.role.value}\t{scope}{lock}")

"""``ftps7 user add|passwd|del|list``: manage the local accounts file.

The IIS Manager equivalent is creating Windows users; here the accounts live
in ``<ftps7><localAccounts path>`` of the configuration file. A password is
never a command-line argument (it would show in ``ps`` and shell history): it
is prompted for twice, or read as one line from standard input with
``--password-stdin`` for scripts. ``list`` prints names and groups, never
hashes. Every change is an atomic rewrite (see ``ftps7.auth.accounts``), so an
error leaves the file as it was.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from ftps7.auth.accounts import AccountsError, AccountsFile, check_name, parse_groups
from ftps7.cli import CommandError
from ftps7.config.model import AccountSource


def accounts_path_for(config_path: str) -> str:
    """The accounts file named by the configuration at ``config_path``.

    Raises :class:`CommandError` when the configuration cannot be loaded or
    does not use an accounts file (``source="pam"`` or no ``path``).
    """
    from ftps7.config import load_config  # imported late: keeps --help cheap

    try:
        config = load_config(config_path)
    except Exception as error:  # the loader's errors already name file:line
        raise CommandError(f"cannot load the configuration {config_path}:\n{error}") from None
    settings = config.ftps7.local_accounts
    if settings.source is AccountSource.PAM:
        raise CommandError(
            f"{config_path} takes its accounts from PAM (service {settings.service!r}); "
            "manage them with the system's own tools"
        )
    if not settings.path:
        raise CommandError(f"{config_path} has no <ftps7><localAccounts path=...>")
    return settings.path


def _accounts(args: argparse.Namespace) -> AccountsFile:
    return AccountsFile(accounts_path_for(args.config))


def read_password(name: str, from_stdin: bool) -> str:
    """The new password: one line of stdin, or typed twice at a prompt."""
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise CommandError("no password on standard input")
        password = line.removesuffix("\n").removesuffix("\r")
    else:
        try:
            password = getpass.getpass(f"New password for {name}: ")
            again = getpass.getpass("Repeat the password: ")
        except EOFError:
            raise CommandError("no password entered") from None
        if password != again:
            raise CommandError("the passwords do not match")
    if not password:
        raise CommandError("the password is empty")
    return password


def _run_add(args: argparse.Namespace) -> int:
    try:
        check_name(args.name)
        groups = parse_groups(args.groups or "")
        accounts = _accounts(args)
        existing = accounts.lookup(args.name)
        if existing is not None:  # say so before asking for a password
            raise CommandError(f"the account {existing.name!r} already exists")
        password = read_password(args.name, args.password_stdin)
        account = accounts.add(args.name, password, groups)
    except AccountsError as error:
        raise CommandError(str(error)) from None
    print(f"added {account.name}" + (f" ({', '.join(account.groups)})" if account.groups else ""))
    return 0


def _run_passwd(args: argparse.Namespace) -> int:
    try:
        accounts = _accounts(args)
        # Refuse early, before asking for a password that would go nowhere.
        if accounts.lookup(args.name) is None:
            raise CommandError(f"there is no account {args.name!r}")
        password = read_password(args.name, args.password_stdin)
        account = accounts.set_password(args.name, password)
    except AccountsError as error:
        raise CommandError(str(error)) from None
    print(f"changed the password of {account.name}")
    return 0


def _run_del(args: argparse.Namespace) -> int:
    try:
        account = _accounts(args).delete(args.name)
    except AccountsError as error:
        raise CommandError(str(error)) from None
    print(f"deleted {account.name}")
    return 0


def _run_list(args: argparse.Namespace) -> int:
    try:
        accounts = _accounts(args).list()
    except AccountsError as error:
        raise CommandError(str(error)) from None
    for account in sorted(accounts, key=lambda account: account.key):
        print(f"{account.name}\t{','.join(account.groups)}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``user`` and its actions to the ``ftps7`` parser."""
    parser = subparsers.add_parser(
        "user",
        help="manage the local accounts (<localAccounts path>)",
        description="Manage the local accounts file named by <ftps7><localAccounts path>.",
    )
    actions = parser.add_subparsers(dest="user_action", metavar="ACTION")
    actions.required = True

    add = actions.add_parser("add", help="create an account")
    add.add_argument("name", metavar="NAME")
    add.add_argument(
        "--groups", metavar="A,B", default="", help="comma-separated groups (IIS roles)"
    )
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password as one line of stdin"
    )
    add.set_defaults(handler=_run_add)

    passwd = actions.add_parser("passwd", help="change an account's password")
    passwd.add_argument("name", metavar="NAME")
    passwd.add_argument(
        "--password-stdin", action="store_true", help="read the password as one line of stdin"
    )
    passwd.set_defaults(handler=_run_passwd)

    delete = actions.add_parser("del", help="delete an account")
    delete.add_argument("name", metavar="NAME")
    delete.set_defaults(handler=_run_del)

    listing = actions.add_parser("list", help="print each account's name and groups")
    listing.set_defaults(handler=_run_list)

"""The ``ftps7`` admin command line: ``ftps7 [--config PATH] config|cert|user ...``.

This module only dispatches; each command group lives in its own module and
registers its sub-commands through ``register(subparsers)``. Errors go to
stderr with a non-zero exit status, never as a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

DEFAULT_CONFIG = "/etc/ftps7/ftps7.config"


class CommandError(Exception):
    """A failure to report on stderr with exit status 1 (or ``status``)."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def default_config_path() -> str:
    """``$FTPS7_CONFIG``, then ``/etc/ftps7/ftps7.config`` (CONFIG.md, admin command line)."""
    return os.environ.get("FTPS7_CONFIG") or DEFAULT_CONFIG


def build_parser() -> argparse.ArgumentParser:
    from ftps7.cli import cert_cmd, config_cmd, user_cmd

    parser = argparse.ArgumentParser(
        prog="ftps7",
        description="Administer an ftps7 server: configuration, certificates, local accounts.",
    )
    parser.add_argument(
        "--config",
        metavar="PATH",
        default=None,
        help=f"configuration file (default: $FTPS7_CONFIG, then {DEFAULT_CONFIG})",
    )
    subparsers = parser.add_subparsers(dest="group", metavar="COMMAND")
    subparsers.required = True
    config_cmd.register(subparsers)
    cert_cmd.register(subparsers)
    user_cmd.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.config is None:
        args.config = default_config_path()
    try:
        status: int = args.handler(args)
    except CommandError as error:
        print(f"ftps7: {error}", file=sys.stderr)
        return error.status
    except KeyboardInterrupt:
        return 130
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""``ftps7 config check [PATH]``: validate a configuration file and show what it means.

Loading is the same code the server runs at start-up, so a file that passes
here starts (as far as configuration goes); every problem is printed, not
only the first. Certificates named by thumbprint are looked up in the
configured store when the store module is available.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ftps7.config import ConfigErrors, load_config
from ftps7.config.model import ServerConfig
from ftps7.config.report import CertificateLookup, format_report


def register(subparsers: Any) -> None:
    """Add ``config`` and its sub-command ``check`` to the ``ftps7`` parser."""
    parser = subparsers.add_parser("config", help="validate and show the configuration")
    commands = parser.add_subparsers(dest="config_command", metavar="COMMAND")
    commands.required = True
    check = commands.add_parser(
        "check",
        help="validate a configuration file and print the effective sites, bindings, "
        "certificates and policies (exit status 0 = valid, 1 = errors)",
    )
    check.add_argument(
        "path",
        nargs="?",
        metavar="PATH",
        help="the file to check (default: --config, $FTPS7_CONFIG, /etc/ftps7/ftps7.config)",
    )
    check.set_defaults(handler=check_command)


def check_command(args: argparse.Namespace) -> int:
    path: str = args.path or args.config
    try:
        config = load_config(path)
    except ConfigErrors as errors:
        for error in errors.errors:
            print(error, file=sys.stderr)
        count = len(errors.errors)
        print(
            f"ftps7: {path}: {count} error{'s' if count != 1 else ''}; configuration refused",
            file=sys.stderr,
        )
        return 1
    sys.stdout.write(
        format_report(config, certificate_lookup(config), extra_warnings(config))
    )
    return 0


def extra_warnings(config: ServerConfig) -> list[str]:
    """Warnings that need the certificates themselves (virtual hosts)."""
    try:
        from ftps7.tls.store import CertificateStore
        from ftps7.tls.vhostcheck import virtual_host_warnings
    except ImportError:
        return []
    return virtual_host_warnings(config, CertificateStore(config.ftps7.certificate_store.path))


def certificate_lookup(config: ServerConfig) -> CertificateLookup | None:
    """``(store, thumbprint) -> description`` from the configured certificate store.

    The store module is imported lazily so that ``config check`` keeps working
    (without certificate details) where it is unavailable.
    """
    try:
        from ftps7.tls.store import CertificateStore
    except ImportError:
        return None
    store = CertificateStore(config.ftps7.certificate_store.path)

    def lookup(store_name: str, thumbprint: str) -> str | None:
        found = store.find(store_name, thumbprint)
        return None if found is None else str(found.describe())

    return lookup

"""pyftpdlib as the bench runs it: TLS_FTPHandler with the bench's settings.

Run with the bench venv's Python (pyftpdlib + pyOpenSSL). Explicit FTPS with
TLS required on logons and data (``tls_control_required``,
``tls_data_required``), one account, a passive range, INFO logging to
standard error (the bench sends it to a file). The account is pyftpdlib's
``DummyAuthorizer``: the password is compared in plain text, which is all
pyftpdlib offers out of the box; the bench reports that.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import TLS_FTPHandler
from pyftpdlib.servers import FTPServer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--passive", required=True, help="LOW-HIGH")
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--root", required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s")

    authorizer = DummyAuthorizer()
    authorizer.add_user(args.user, os.environ["BENCH_FTP_PASSWORD"], args.root, perm="elradfmwMT")

    class Handler(TLS_FTPHandler):
        pass

    low, high = (int(part) for part in args.passive.split("-"))
    Handler.authorizer = authorizer
    Handler.certfile = args.cert
    Handler.keyfile = args.key
    Handler.tls_control_required = True
    Handler.tls_data_required = True
    Handler.passive_ports = list(range(low, high + 1))
    Handler.banner = "pyftpdlib bench server"

    server = FTPServer((args.host, args.port), Handler)
    server.max_cons = 4096
    server.max_cons_per_ip = 0
    print("bench-server ready", file=sys.stderr, flush=True)
    server.serve_forever(handle_exit=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

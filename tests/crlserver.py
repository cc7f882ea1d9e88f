"""A loopback HTTP server that plays CRL distribution point and OCSP responder.

It runs ``http.server`` in a thread on 127.0.0.1 with an ephemeral port, so
the code under test talks real HTTP through the Twisted reactor while the
test keeps control: what each path serves (``serve``), what a POST to a
path answers (``answer``: a function of the request body, e.g. `OpensslOcsp`),
a path that accepts the request and never answers (``hang``, for timeouts),
and how many requests each path received (``requests``). Unknown paths
answer 404.

    with CrlServer() as server:
        server.serve("/ca.crl", crl_der(crl))
        url = server.url("/ca.crl")
        ...
        assert server.requests("/ca.crl") == 1

Hanging handlers are released by ``stop()`` (or leaving the ``with``), so a
test never waits on them.
"""

from __future__ import annotations

import collections
import subprocess
import tempfile
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


class CrlServer:
    """Serves bytes at paths over HTTP/1.0 on 127.0.0.1; see the module docstring."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._routes: dict[str, tuple[int, bytes, bool]] = {}
        self._answers: dict[str, Callable[[bytes], bytes]] = {}
        self._hanging: set[str] = set()
        self._counts: collections.Counter[str] = collections.Counter()
        self._release = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self) -> CrlServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def _arrived(self) -> str | None:
                """Count the request; its path, or None once a hanging path is released."""
                path = self.path.split("?", 1)[0]
                with server._lock:
                    server._counts[path] += 1
                    hang = path in server._hanging
                if hang:
                    server._release.wait(timeout=30)
                    return None
                return path

            def do_GET(self) -> None:
                path = self._arrived()
                if path is None:
                    return
                with server._lock:
                    route = server._routes.get(path)
                if route is None:
                    self.send_error(404)
                    return
                status, body, with_length = route
                self.send_response(status)
                self.send_header("Content-Type", "application/pkix-crl")
                if with_length:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = self._arrived()
                if path is None:
                    return
                with server._lock:
                    answer = server._answers.get(path)
                if answer is None:
                    self.send_error(404)
                    return
                reply = answer(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/ocsp-response")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        # A short poll interval: shutdown() waits for the loop to notice.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.01},
            name="crlserver",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release hanging requests, stop serving and close the socket."""
        self._release.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> CrlServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -------------------------------------------------------------- control

    @property
    def port(self) -> int:
        assert self._httpd is not None, "start() the server first"
        return int(self._httpd.server_address[1])

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def serve(
        self, path: str, body: bytes, status: int = 200, *, content_length: bool = True
    ) -> None:
        """Answer GET ``path`` with ``body`` (replacing what it served before).

        ``content_length=False`` leaves the header out: the body then ends
        when the server closes the connection (HTTP/1.0).
        """
        with self._lock:
            self._routes[path] = (status, body, content_length)
            self._hanging.discard(path)

    def answer(self, path: str, respond: Callable[[bytes], bytes]) -> None:
        """Answer POST ``path`` with ``respond(request body)``."""
        with self._lock:
            self._answers[path] = respond
            self._hanging.discard(path)

    def hang(self, path: str) -> None:
        """Accept GET or POST ``path`` and never answer (until ``stop``)."""
        with self._lock:
            self._hanging.add(path)
            self._routes.pop(path, None)
            self._answers.pop(path, None)

    def remove(self, path: str) -> None:
        """Answer ``path`` with 404 from now on."""
        with self._lock:
            self._routes.pop(path, None)
            self._answers.pop(path, None)
            self._hanging.discard(path)

    def requests(self, path: str) -> int:
        """How many requests ``path`` has received."""
        with self._lock:
            return self._counts[path]


class OpensslOcsp:
    """``openssl ocsp`` as the responder of a CA: ``respond(request DER) -> response DER``.

    OpenSSL's own responder logic answers from an index file (what it knows
    as valid or revoked; other serials are ``unknown``), signed with the CA's
    key, or with a delegated responder's (``signer``). Served by `CrlServer`
    (``server.answer(path, responder)``): OpenSSL 3.0's built-in HTTP server
    can only listen on every address, the tests stay on loopback.
    """

    def __init__(
        self,
        ca_cert_pem: bytes,
        signer_cert_pem: bytes,
        signer_key_pem: bytes,
        *,
        next_update_minutes: int | None = 10,
    ) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="ocsp-")
        self._path = self._dir.name
        self._write("ca.pem", ca_cert_pem)
        self._write("signer.pem", signer_cert_pem)
        self._write("signer.key", signer_key_pem)
        self._write("index.txt", b"")
        self._next_update = next_update_minutes
        self._lock = threading.Lock()

    def _write(self, name: str, data: bytes) -> None:
        with open(f"{self._path}/{name}", "wb") as handle:
            handle.write(data)

    def know(self, serial: int, subject: str, *, revoked_at: str | None = None) -> None:
        """Add a certificate to the index: valid, or revoked at ``YYMMDDHHMMSSZ``."""
        state = "R" if revoked_at else "V"
        line = f"{state}\t301231000000Z\t{revoked_at or ''}\t{serial:X}\tunknown\t{subject}\n"
        with self._lock, open(f"{self._path}/index.txt", "a", encoding="ascii") as index:
            index.write(line)

    def __call__(self, request: bytes) -> bytes:
        with self._lock, tempfile.TemporaryDirectory(dir=self._path) as work:
            with open(f"{work}/req.der", "wb") as handle:
                handle.write(request)
            command = [
                "openssl", "ocsp", "-index", f"{self._path}/index.txt",
                "-CA", f"{self._path}/ca.pem",
                "-rsigner", f"{self._path}/signer.pem", "-rkey", f"{self._path}/signer.key",
                "-reqin", f"{work}/req.der", "-respout", f"{work}/resp.der",
            ]  # fmt: skip
            if self._next_update is not None:
                command += ["-nmin", str(self._next_update)]
            subprocess.run(command, check=True, capture_output=True, timeout=30)
            with open(f"{work}/resp.der", "rb") as handle:
                return handle.read()

    def close(self) -> None:
        self._dir.cleanup()

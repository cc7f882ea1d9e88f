"""A loopback HTTP server that plays CRL distribution point, for revocation tests.

It runs ``http.server`` in a thread on 127.0.0.1 with an ephemeral port, so
the code under test talks real HTTP through the Twisted reactor while the
test keeps control: what each path serves (``serve``), a path that accepts
the request and never answers (``hang``, for timeouts), and how many
requests each path received (``requests``). Unknown paths answer 404.

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
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


class CrlServer:
    """Serves bytes at paths over HTTP/1.0 on 127.0.0.1; see the module docstring."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._routes: dict[str, tuple[int, bytes, bool]] = {}
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

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                with server._lock:
                    server._counts[path] += 1
                    hang = path in server._hanging
                    route = server._routes.get(path)
                if hang:
                    server._release.wait(timeout=30)
                    return
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

    def hang(self, path: str) -> None:
        """Accept GET ``path`` and never answer (until ``stop``)."""
        with self._lock:
            self._hanging.add(path)
            self._routes.pop(path, None)

    def remove(self, path: str) -> None:
        """Answer ``path`` with 404 from now on."""
        with self._lock:
            self._routes.pop(path, None)
            self._hanging.discard(path)

    def requests(self, path: str) -> int:
        """How many GETs ``path`` has received."""
        with self._lock:
            return self._counts[path]

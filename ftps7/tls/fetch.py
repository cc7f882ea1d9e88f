"""HTTP for revocation checks: CRL downloads and OCSP requests, never blocking.

Both go through Twisted's ``Agent``: one TCP connection per request (no
keep-alive pool to leak), no redirects (distribution points and responders
are direct links; a redirect is a failed request), a bounded body. A
`SharedFetches` runs one request per key however many sessions ask at once,
and applies the timeout to the request itself: when it fires, the request is
cancelled (its connection aborted) for every caller.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable
from typing import Any, cast

from twisted.internet import defer
from twisted.internet.interfaces import IPushProducer, IReactorTime
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure
from twisted.web.client import Agent, FileBodyProducer, HTTPConnectionPool, ResponseDone
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers
from twisted.web.iweb import UNKNOWN_LENGTH, IResponse

__all__ = ["SAFE_URL", "FetchError", "HttpFetcher", "SharedFetches", "error_text"]

# Printable ASCII without spaces: what may go on an HTTP request line.
SAFE_URL = re.compile(r"http://[\x21-\x7e]+", re.IGNORECASE)


class FetchError(Exception):
    """A request that did not produce a body (status, size, scheme)."""


def _stop(transport: object) -> None:
    """Abort a response body's connection.

    ``Response.deliverBody`` hands the body protocol a producer proxy whose
    ``stopProducing`` closes the TCP connection at once; it has no
    ``abortConnection``.
    """
    cast(IPushProducer, transport).stopProducing()


class _LimitedBody(Protocol):
    """Collects a response body up to a size limit; aborts the connection beyond it."""

    def __init__(self, deferred: defer.Deferred[bytes], limit: int, what: str) -> None:
        self.deferred = deferred
        self.limit = limit
        self.what = what
        self.parts: list[bytes] = []
        self.size = 0

    def dataReceived(self, data: bytes) -> None:
        if self.deferred.called:
            return
        self.size += len(data)
        if self.size > self.limit:
            self.deferred.errback(FetchError(f"the {self.what} is larger than {self.limit} bytes"))
            self.abort()
            return
        self.parts.append(data)

    def abort(self) -> None:
        if self.transport is not None:
            _stop(self.transport)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self.deferred.called:
            return
        # PotentialDataLoss: an HTTP/1.0 body ended by the close, with no
        # length to check it against; the CRL's or response's signature is the check.
        if reason.check(ResponseDone, PotentialDataLoss):
            self.deferred.callback(b"".join(self.parts))
        else:
            self.deferred.errback(reason)


class _Discard(Protocol):
    """Takes an unwanted response body by closing the connection at once."""

    def connectionMade(self) -> None:
        if self.transport is not None:
            _stop(self.transport)


class HttpFetcher:
    """GET or POST over ``http://`` with a size limit; the caller cancels to time out."""

    def __init__(
        self, reactor: Any, *, max_size: int, what: str, connect_timeout: float | None = None
    ) -> None:
        self._max_size = max_size
        self._what = what
        self._agent = Agent(
            reactor,
            connectTimeout=connect_timeout,
            pool=HTTPConnectionPool(reactor, persistent=False),
        )

    def get(self, url: str, accept: bytes) -> defer.Deferred[bytes]:
        return self._request(b"GET", url, {b"Accept": [accept]}, None)

    def post(
        self, url: str, body: bytes, content_type: bytes, accept: bytes
    ) -> defer.Deferred[bytes]:
        from io import BytesIO

        headers = {b"Accept": [accept], b"Content-Type": [content_type]}
        return self._request(b"POST", url, headers, FileBodyProducer(BytesIO(body)))

    def _request(
        self, method: bytes, url: str, headers: dict[bytes, list[bytes]], body: Any
    ) -> defer.Deferred[bytes]:
        if SAFE_URL.fullmatch(url) is None:
            return defer.fail(FetchError(f"not an http:// URL: {url!r}"))
        all_headers = Headers({b"User-Agent": [b"ftps7"], **headers})
        requested = self._agent.request(method, url.encode("ascii"), all_headers, body)
        return requested.addCallback(self._read)

    def _read(self, response: IResponse) -> defer.Deferred[bytes]:
        if response.code != 200:
            response.deliverBody(_Discard())
            raise FetchError(f"HTTP status {response.code}")
        if response.length is not UNKNOWN_LENGTH and response.length > self._max_size:
            response.deliverBody(_Discard())
            raise FetchError(
                f"the {self._what} is larger than {self._max_size} bytes ({response.length})"
            )
        protocol: _LimitedBody

        def cancel(_: defer.Deferred[bytes]) -> None:
            protocol.abort()

        body: defer.Deferred[bytes] = defer.Deferred(cancel)
        protocol = _LimitedBody(body, self._max_size, self._what)
        response.deliverBody(protocol)
        return body


class SharedFetches:
    """One request per key at a time; every caller gets its result.

    The timeout belongs to the request, not to a caller: when it fires the
    request is cancelled for everybody.
    """

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self._in_flight: dict[Hashable, list[defer.Deferred[bytes]]] = {}

    def fetch(
        self, key: Hashable, start: Callable[[], defer.Deferred[bytes]], timeout: float
    ) -> defer.Deferred[bytes]:
        mine: defer.Deferred[bytes] = defer.Deferred()
        waiters = self._in_flight.get(key)
        if waiters is not None:
            waiters.append(mine)
            return mine
        waiters = [mine]
        self._in_flight[key] = waiters

        # The timeout is kept by hand rather than with ``addTimeout``: Agent
        # turns a cancellation into ResponseNeverReceived, which addTimeout
        # would not recognise as its own.
        def deliver(result: bytes | Failure) -> None:
            del self._in_flight[key]
            for waiter in waiters:
                if isinstance(result, Failure):
                    waiter.errback(result)
                else:
                    waiter.callback(result)

        fetching = defer.maybeDeferred(start)
        expired: list[bool] = []

        def give_up() -> None:
            expired.append(True)
            fetching.cancel()

        timer = self._clock.callLater(timeout, give_up)
        fetching.addBoth(lambda result: _timeout_result(result, expired, timer, timeout))
        fetching.addBoth(deliver)
        return mine


def _timeout_result(
    result: bytes | Failure, expired: list[bool], timer: Any, timeout: float
) -> bytes | Failure:
    if expired:
        return Failure(defer.TimeoutError(f"no answer within {timeout:g} s"))
    if timer.active():
        timer.cancel()
    return result


def error_text(error: BaseException) -> str:
    """A readable reason for a failed request (Agent wraps its failures in lists)."""
    reasons = getattr(error, "reasons", None)
    if isinstance(reasons, list) and reasons:
        return "; ".join(r.getErrorMessage() if isinstance(r, Failure) else str(r) for r in reasons)
    return str(error) or type(error).__name__

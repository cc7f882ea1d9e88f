"""The credentials cache (IIS ``system.ftpServer/caching/credentialsCache``).

IIS remembers successful logons for ``flushInterval`` seconds so that repeated
logons (clients that reconnect for every transfer) skip the slow check. Ours
does the same for the local accounts file, where the slow part is the
argon2id verification, and is stricter than IIS in what it keeps and when it
answers:

- The password is never stored. An entry holds an HMAC-SHA256, under a
  random key made when the process starts and never written anywhere, of
  (name, stored hash, password). A memory dump yields nothing that can be
  tested offline without the key, and nothing that survives a restart.
- The entry is bound to the account's stored hash string. argon2 hashes carry
  a random salt, so a password change, or an account deleted and recreated
  (even with the same password), gives a new stored hash and the old entry
  can never match: IIS keeps accepting an old password until the cache
  flushes, ours does not.
- Entries expire ``flush_interval`` seconds after the successful check that
  created them, by the injected clock; a hit does not extend the life.
- The cache is bounded (least recently used entries go first), so a flood of
  distinct successful logons cannot grow memory without limit.

The HMAC costs microseconds, so the cache is used on the reactor thread; it is
not thread-safe and needs no lock there.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import OrderedDict
from typing import Protocol


class SecondsClock(Protocol):
    """The part of ``IReactorTime`` used here (a reactor or ``task.Clock``).

    A structural type rather than the zope interface, so mypy understands it.
    """

    def seconds(self) -> float: ...


DEFAULT_MAX_ENTRIES = 10_000


def _field(value: bytes) -> bytes:
    """Length-prefix a field so (name, hash, password) splits one way only."""
    return len(value).to_bytes(4, "big") + value


class CredentialsCache:
    """Remembers successful password checks, keyed and bound to the stored hash."""

    def __init__(
        self,
        clock: SecondsClock,
        flush_interval: float,
        max_entries: int = DEFAULT_MAX_ENTRIES,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._clock = clock
        self._flush_interval = float(flush_interval)
        self._max_entries = max_entries
        self._key = secrets.token_bytes(32)
        # name -> (digest, expires_at); order = least recently used first.
        self._entries: OrderedDict[str, tuple[bytes, float]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        """A zero (or negative) flush interval means nothing is remembered."""
        return self._flush_interval > 0

    def _digest(self, name: str, stored_hash: str, password: bytes | str) -> bytes:
        if isinstance(password, str):
            password = password.encode("utf-8")
        message = (
            _field(name.encode("utf-8"))
            + _field(stored_hash.encode("utf-8"))
            + _field(password)
        )
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def get(self, name: str, stored_hash: str, password: bytes | str) -> bool:
        """Whether this exact (name, stored hash, password) succeeded recently."""
        entry = self._entries.get(name)
        if entry is None:
            return False
        digest, expires_at = entry
        if self._clock.seconds() >= expires_at:
            del self._entries[name]
            return False
        if not hmac.compare_digest(digest, self._digest(name, stored_hash, password)):
            return False
        self._entries.move_to_end(name)
        return True

    def put(self, name: str, stored_hash: str, password: bytes | str) -> None:
        """Remember a successful check (replaces any entry for ``name``)."""
        if not self.enabled:
            return
        expires_at = self._clock.seconds() + self._flush_interval
        self._entries[name] = (self._digest(name, stored_hash, password), expires_at)
        self._entries.move_to_end(name)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def forget(self, name: str) -> None:
        """Drop the entry for ``name`` (for example after a failed logon)."""
        self._entries.pop(name, None)

    def clear(self) -> None:
        """Drop everything (IIS flushes by restarting the service)."""
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

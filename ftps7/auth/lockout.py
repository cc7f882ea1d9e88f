"""Failed-logon lockout (IIS ``system.ftpServer/security/authentication/denyByFailure``).

IIS counts failed logons per client address; when ``maxFailure`` of them fall
within ``entryExpiration`` the connection is closed and the address is denied
for ``entryExpiration``. ``loggingOnlyMode`` only logs what would have been
denied. The tracker keeps that state with an injected clock, so tests move
time with ``task.Clock`` instead of sleeping.

Choices where IIS is silent or unsafe:

- A success does not erase earlier failures by default: otherwise anyone
  holding one valid account could interleave good logons with guesses at
  other accounts and never be locked out. Failures simply age out of the
  window. (``reset_on_success=True`` restores the forgiving behaviour.)
- IPv6 clients are counted per /64 by default (``ipv6_prefix``): a single
  host usually owns a whole /64 and could otherwise rotate addresses for
  free. IPv4-mapped IPv6 addresses count as the IPv4 address.
- Memory is bounded: at most ``max_entries`` addresses are tracked, the
  least recently touched going first.

Exempting addresses (IIS lets ipSecurity "allow" entries bypass the check) is
the caller's decision: it simply does not consult the tracker for them.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from twisted.logger import Logger

from ftps7 import logfilter
from ftps7.auth.cache import SecondsClock

DEFAULT_MAX_ENTRIES = 100_000


def address_key(address: str, ipv6_prefix: int = 64) -> str:
    """The key an address is counted under (IPv6 folded to its prefix)."""
    text = address.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        parsed = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return text.lower()
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        if ipv6_prefix < 128:
            network = ipaddress.IPv6Network((parsed, ipv6_prefix), strict=False)
            return str(network)
    return str(parsed)


@dataclass
class _Entry:
    failures: deque[float] = field(default_factory=deque)
    locked_until: float = 0.0


class FailureTracker:
    """Counts failed logons per address and says when an address is locked."""

    log = Logger(observer=logfilter.observer)

    def __init__(
        self,
        clock: SecondsClock,
        max_failure: int,
        entry_expiration: float,
        logging_only: bool = False,
        *,
        reset_on_success: bool = False,
        ipv6_prefix: int = 64,
        max_entries: int = DEFAULT_MAX_ENTRIES,
    ) -> None:
        if max_failure < 1:
            raise ValueError("max_failure must be at least 1")
        if entry_expiration <= 0:
            raise ValueError("entry_expiration must be positive")
        if not 0 < ipv6_prefix <= 128:
            raise ValueError("ipv6_prefix must be between 1 and 128")
        self._clock = clock
        self._max_failure = max_failure
        self._expiration = float(entry_expiration)
        self._logging_only = logging_only
        self._reset_on_success = reset_on_success
        self._ipv6_prefix = ipv6_prefix
        self._max_entries = max_entries
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def _key(self, address: str) -> str:
        return address_key(address, self._ipv6_prefix)

    def _current(self, key: str, now: float) -> _Entry | None:
        """The live entry for ``key`` with old failures dropped, or None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        horizon = now - self._expiration
        while entry.failures and entry.failures[0] <= horizon:
            entry.failures.popleft()
        if not entry.failures and entry.locked_until <= now:
            del self._entries[key]
            return None
        return entry

    def _locked(self, entry: _Entry | None, now: float) -> bool:
        return entry is not None and entry.locked_until > now

    def record_failure(self, address: str) -> bool:
        """Count a failed logon; True when the address is now to be denied.

        In logging-only mode this logs the lockout that would have happened
        and always returns False.
        """
        now = self._clock.seconds()
        key = self._key(address)
        entry = self._current(key, now)
        if entry is None:
            entry = _Entry()
            self._entries[key] = entry
        self._entries.move_to_end(key)
        entry.failures.append(now)
        # Only the last max_failure timestamps can matter.
        while len(entry.failures) > self._max_failure:
            entry.failures.popleft()
        newly_locked = False
        if len(entry.failures) >= self._max_failure and not self._locked(entry, now):
            entry.locked_until = now + self._expiration
            newly_locked = True
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
        if newly_locked:
            self.log.warn(
                "{address} reached {count} failed logons within {window}s: {action}",
                address=key,
                count=self._max_failure,
                window=self._expiration,
                action="would be denied (logging only)" if self._logging_only else "denied",
            )
        return self._locked(entry, now) and not self._logging_only

    def is_locked(self, address: str) -> bool:
        """Whether logons from ``address`` are currently denied."""
        if self._logging_only:
            return False
        now = self._clock.seconds()
        return self._locked(self._current(self._key(address), now), now)

    def record_success(self, address: str) -> None:
        """Note a successful logon; erases the failures only with reset_on_success.

        A success never lifts an active lockout (logons are refused while it
        lasts, so one cannot normally happen; this keeps it true regardless).
        """
        if not self._reset_on_success:
            return
        now = self._clock.seconds()
        key = self._key(address)
        entry = self._current(key, now)
        if entry is not None and not self._locked(entry, now):
            del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)

"""Per-session state that is not the connection itself.

Kept apart from the protocol so that what a session *is* (its site, its TLS
state, PBSZ/PROT, the logged-on user, the pending RNFR or REST) is visible in
one place and reset in one place (REIN, AUTH, USER).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from ftps7.auth.identity import Identity
from ftps7.config.model import Site


class TlsState(enum.Enum):
    CLEAR = "clear"  # never protected
    NEGOTIATING = "negotiating"  # AUTH answered, handshake running
    PROTECTED = "protected"
    CLEARED = "cleared"  # protected, then CCC


@dataclass
class TransferParameters:
    type_ascii: bool = False
    rest: int = 0
    epsv_all: bool = False


@dataclass
class SessionState:
    site: Site | None
    host: str | None = None  # HOST / USER host|user / SNI
    tls: TlsState = TlsState.CLEAR
    pbsz: bool = False
    prot_private: bool = False
    pending_user: str | None = None
    identity: Identity | None = None
    shell: Any = None
    logout: Any = None
    cwd: str = "/"
    rename_from: str | None = None
    params: TransferParameters = field(default_factory=TransferParameters)
    utf8: bool = True
    mlst_facts: frozenset[str] = frozenset({"type", "size", "modify", "perm", "unique"})
    client_name: str | None = None
    bytes_sent: int = 0
    bytes_received: int = 0
    failed_logons: int = 0

    @property
    def logged_in(self) -> bool:
        return self.identity is not None

    @property
    def protected(self) -> bool:
        return self.tls is TlsState.PROTECTED

    def reset_login(self) -> None:
        """Forget the user and everything that belongs to a logon (REIN, USER)."""
        if self.logout is not None:
            logout, self.logout = self.logout, None
            logout()
        self.pending_user = None
        self.identity = None
        self.shell = None
        self.cwd = "/"
        self.rename_from = None
        self.params = TransferParameters()

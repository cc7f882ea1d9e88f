"""RFC 2228 / RFC 4217 security commands: AUTH, PBSZ, PROT, CCC."""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.logger import Logger

from ftps7 import logfilter
from ftps7.core import tlspolicy
from ftps7.core.replies import FTPError, R, Reply, format_reply, framed_reply
from ftps7.server.controltls import start_tls
from ftps7.server.session import TlsState
from ftps7.tls.contexts import ServerConnectionCreator

if TYPE_CHECKING:
    from ftps7.server.protocol import FTPSession

log = Logger(observer=logfilter.observer)

#: AUTH mechanisms (IIS: TLS-C/TLS leave the data channel clear by default,
#: TLS-P/SSL protect it implicitly; seeds/iis-using-ftp-over-ssl.md).
MECHANISMS = {"TLS": False, "TLS-C": False, "SSL": True, "TLS-P": True}


class SecurityCommands:
    def ftp_AUTH(self: FTPSession, argument: str) -> None:
        mechanism = argument.strip().upper()
        if self.state.tls is not TlsState.CLEAR:
            raise FTPError(R.AUTH_ALREADY)
        if mechanism not in MECHANISMS:
            raise FTPError(R.AUTH_UNKNOWN)
        if self.state.logged_in:
            raise FTPError(R.BAD_SEQUENCE)
        session_tls = self.session_tls()
        if session_tls is None:
            if not self.detailed_errors():
                raise FTPError(R.TLS_NOT_CONFIGURED)
            # IIS's multi-line refusal, as FileZilla on the server itself shows
            # it (seeds/ftp75-host-header-and-ssl.txt).
            self.send(
                framed_reply(
                    R.TLS_NOT_CONFIGURED,
                    after=(" Error details: SSL certificate was not configured.", "End"),
                )
            )
            return
        self.reply(R.AUTH_OK)
        if self.discard_pipelined():
            # Plaintext sent behind AUTH would run as if it had been protected.
            log.warn(
                "session {session}: {peer} pipelined plaintext after AUTH; discarded",
                session=self.session_id,
                peer=self.peer_host,
            )
        self.state.tls = TlsState.NEGOTIATING
        self.state.pending_user = None
        if MECHANISMS[mechanism]:
            self.state.pbsz = True
            self.state.prot_private = True
        self._start_handshake_timer()
        start_tls(self.transport, ServerConnectionCreator(session_tls))

    def ftp_PBSZ(self: FTPSession, argument: str) -> Reply:
        if self.state.tls is not TlsState.PROTECTED:
            raise FTPError(R.PBSZ_BEFORE_AUTH)
        value = argument.strip()
        if not value.isdigit():
            raise FTPError(R.SYNTAX_ERROR)
        self.state.pbsz = True
        # RFC 4217 §9: TLS needs no buffer; any value is answered with PBSZ=0.
        return format_reply(R.PBSZ_OK)

    def ftp_PROT(self: FTPSession, argument: str) -> R:
        level = argument.strip().upper()
        if self.state.tls is not TlsState.PROTECTED:
            raise FTPError(
                R.PBSZ_BEFORE_AUTH if self.state.tls is TlsState.CLEAR else R.BAD_SEQUENCE
            )
        if not self.state.pbsz:
            raise FTPError(R.PROT_BEFORE_PBSZ)
        if level in ("S", "E"):
            raise FTPError(R.PROT_UNSUPPORTED, level=level)
        if level not in ("C", "P"):
            raise FTPError(R.PROT_UNKNOWN)
        private = level == "P"
        refusal = tlspolicy.prot_refusal(self.site_settings().ssl.data_channel_policy, private)
        if refusal is not None:
            raise FTPError(refusal)
        self.state.prot_private = private
        return R.PROT_OK

    def ftp_CCC(self: FTPSession, argument: str) -> None:
        refusal = tlspolicy.ccc_refusal(
            self.site_settings().ssl.control_channel_policy,
            self.state.tls is TlsState.PROTECTED,
            self.state.logged_in,
        )
        if refusal is not None:
            raise FTPError(refusal)
        from ftps7.server import ccc

        self.reply(R.CCC_OK)
        ccc.clear_control_channel(self.transport, self)
        self.state.tls = TlsState.CLEARED
        log.info("session {session}: control channel cleared (CCC)", session=self.session_id)

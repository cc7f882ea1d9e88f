"""Access-control commands: USER, PASS, ACCT, REIN, QUIT, HOST."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from twisted.cred.error import LoginFailed, UnauthorizedLogin
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from ftps7 import logfilter
from ftps7.auth.credentials import FTPAnonymous, FTPCertificateCredentials, FTPUsernamePassword
from ftps7.auth.dirchecker import DirectoryUnavailableLogin
from ftps7.core.replies import FTPError, R, Reply, format_reply, framed_reply, message_reply
from ftps7.server.addresses import normalize
from ftps7.server.realm import LogonRefusedError
from ftps7.server.session import TlsState

if TYPE_CHECKING:
    from ftps7.config.model import Site
    from ftps7.server.protocol import FTPSession

log = Logger(observer=logfilter.observer)

#: User names that mean an anonymous logon when anonymousAuthentication is on.
ANONYMOUS_NAMES = frozenset({"anonymous", "ftp"})


def _is_ip_literal(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class AccessCommands:
    """USER/PASS logon through the site's twisted.cred Portal, HOST, REIN, QUIT."""

    def _select_host(self: FTPSession, host: str) -> None:
        """Move the session to the site ``host`` names (504 if none does).

        RFC 7151 §3.1: an IP literal names the server itself (lftp sends the
        address it connected to), which means the endpoint's default site.
        """
        literal = _is_ip_literal(host)
        if literal:
            own = normalize(host) == self.local_host
            site = self.endpoint.default_site(self.local_host) if own else None
        else:
            site = self.endpoint.site_for_host(self.local_host, host)
        if site is None:
            raise FTPError(R.HOST_UNKNOWN, host=host[:100])
        if not self.set_site(site):
            self.send(self._max_clients_reply(site))
            self.close()
            raise defer.CancelledError()
        self.state.host = None if literal else host.lower()

    def ftp_HOST(self: FTPSession, argument: str) -> Reply:
        """RFC 7151: choose the virtual host before logon."""
        host = argument.strip()
        if self.state.logged_in or self.state.pending_user is not None:
            raise FTPError(R.HOST_AFTER_LOGIN)
        if not host or " " in host or (host.count(":") == 1 and not host.startswith("[")):
            raise FTPError(R.SYNTAX_ERROR)
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        sni = self.sni_host
        if sni is not None and not _is_ip_literal(host) and host.lower().rstrip(".") != sni:
            # RFC 7151 §3.2: after TLS with SNI, HOST must name the same host.
            raise FTPError(R.HOST_UNKNOWN, host=host[:100])
        self._select_host(host)
        lines = self.message_lines(self.site_settings().messages.banner_message)
        return message_reply(R.HOST_ACCEPTED, lines)

    def split_user(self: FTPSession, argument: str) -> tuple[str | None, str]:
        """``host|user`` (always) or ``host\\user`` (useDomainNameAsHostName) → (host, user)."""
        name = argument.strip()
        if "|" in name:
            host, user = name.split("|", 1)
            return host, user
        if "\\" in name and self.server.config.server.use_domain_name_as_host_name:
            host, user = name.split("\\", 1)
            if self.endpoint.site_for_host(self.local_host, host) is not None:
                return host, user
        return None, name

    def user_target_site(self: FTPSession, argument: str) -> Site | None:
        host, _ = self.split_user(argument)
        if host is None:
            return self.state.site
        return self.endpoint.site_for_host(self.local_host, host)

    def ftp_USER(self: FTPSession, argument: str) -> Any:
        if self.state.logged_in:
            # A new USER starts a new logon (RFC 959 §4.1.1); the old one ends now.
            self.state.reset_login()
        self.state.pending_user = None
        host, name = self.split_user(argument)
        if host is not None:
            self._select_host(host)
        if self.state.site is None:
            raise FTPError(R.HOST_REQUIRED)
        if not name:
            raise FTPError(R.SYNTAX_ERROR)
        self.state.pending_user = name
        settings = self.site_settings()
        authentication = settings.authentication
        if (
            authentication.client_cert_enabled
            and settings.client_certificates.use_active_directory_mapping
            and self.client_certificate is not None
        ):
            return self._certificate_logon(name)
        if authentication.anonymous_enabled and name.lower() in ANONYMOUS_NAMES:
            return R.ANONYMOUS_PASSWORD
        return R.PASSWORD_REQUIRED

    def _certificate_logon(self: FTPSession, name: str) -> defer.Deferred[Reply]:
        """IIS clientCertAuthentication: the validated certificate logs USER on (232).

        No password is asked: the certificate must map to exactly the account
        USER names, or the answer is 530 (RFC 2228 §4, RFC 4217 §12.2).
        """
        self.state.pending_user = None
        site = self.state.site
        assert site is not None
        credentials = FTPCertificateCredentials(
            username=name,
            certificate=self.client_certificate,
            chain=self.client_chain,
            site=site.name,
            client_address=(self.peer_host, self.peer_port),
            control_protected=self.state.tls is TlsState.PROTECTED,
        )
        if self.server.is_locked_out(self.peer_host):
            return self._logon_failed(R.LOGON_FAILED)
        d = self.server.login(site, credentials)
        d.addCallbacks(self._logged_on, self._logon_error, callbackArgs=(232,), errbackArgs=(name,))
        return d

    def ftp_ACCT(self: FTPSession, argument: str) -> R:
        return R.NOT_IMPLEMENTED

    def ftp_PASS(self: FTPSession, argument: str) -> defer.Deferred[Reply]:
        if self.state.logged_in:
            raise FTPError(R.ALREADY_LOGGED_IN)
        name = self.state.pending_user
        if name is None:
            raise FTPError(R.LOGIN_WITH_USER_FIRST)
        self.state.pending_user = None
        site = self.state.site
        assert site is not None  # USER guarantees it
        authentication = site.ftp_server.authentication
        address = (self.peer_host, self.peer_port)
        protected = self.state.tls is TlsState.PROTECTED
        credentials: Any
        if authentication.anonymous_enabled and name.lower() in ANONYMOUS_NAMES:
            credentials = FTPAnonymous(
                site=site.name, client_address=address, control_protected=protected, email=argument
            )
        else:
            credentials = FTPUsernamePassword(
                username=name.encode("utf-8", "surrogateescape"),
                password=argument.encode("utf-8", "surrogateescape"),
                site=site.name,
                client_address=address,
                control_protected=protected,
            )
        if self.server.is_locked_out(self.peer_host):
            log.warn(
                "session {session}: logon of {user!r} from {peer} refused: address locked out",
                session=self.session_id,
                user=name,
                peer=self.peer_host,
            )
            return self._logon_failed(R.LOGON_FAILED)
        d = self.server.login(site, credentials)
        d.addCallbacks(self._logged_on, self._logon_error, errbackArgs=(name,))
        return d

    def _logged_on(self: FTPSession, result: tuple[Any, Any, Any], code: int = 230) -> Reply:
        _, shell, logout = result
        if self._closing:
            logout()
            raise defer.CancelledError()
        self.state.identity = shell.identity
        self.state.shell = shell
        self.state.logout = logout
        self.state.cwd = shell.home
        self.server.record_logon_success(self.peer_host)
        log.info(
            "session {session}: {user} logged on to site {site} from {peer} ({tls})",
            session=self.session_id,
            user=shell.identity.name,
            site=self.state.site.name if self.state.site else "",
            peer=self.peer_host,
            tls=self.tls_summary(),
        )
        lines = self.message_lines(self.site_settings().messages.greeting_message)
        return framed_reply(R.LOGGED_IN if code == 230 else R.LOGGED_IN_CERT, before=lines)

    def _logon_error(self: FTPSession, failure: Failure, name: str) -> defer.Deferred[Reply]:
        reply = R.LOGON_FAILED
        if failure.check(LogonRefusedError):
            reply = failure.value.reply
            why = failure.value.reason
        elif failure.check(DirectoryUnavailableLogin):
            why = f"the directory is unavailable ({failure.value})"
        elif failure.check(UnauthorizedLogin, LoginFailed):
            why = "bad user name or password"
        else:
            log.failure("session {session}: logon error", failure, session=self.session_id)
            why = "internal error"
        log.warn(
            "session {session}: logon of {user!r} from {peer} to site {site} failed: {why}",
            session=self.session_id,
            user=name,
            peer=self.peer_host,
            site=self.state.site.name if self.state.site else "",
            why=why,
        )
        self.server.record_logon_failure(self.peer_host)
        return self._logon_failed(reply)

    def _logon_failed(self: FTPSession, reply: R) -> defer.Deferred[Reply]:
        """Answer a failed logon after a delay, so guessing is slow."""
        d: defer.Deferred[Reply] = defer.Deferred()

        def answer() -> None:
            if not d.called:
                d.errback(FTPError(reply))

        self.server.clock.callLater(self.server.failed_logon_delay, answer)
        return d

    def ftp_REIN(self: FTPSession, argument: str) -> Reply:
        """Back to the state right after connecting (RFC 959 §4.1.1, RFC 7151 §3.5).

        The TLS session stays: tearing down TLS on a control channel the client
        protected would drop protection it asked for (documented deviation).
        """
        if self.transfer is not None:
            self.transfer.abort("REIN")
        self.close_data_channel()
        self.state.reset_login()
        self.state.host = None
        self.set_site(self.endpoint.default_site(self.local_host))
        return format_reply(R.REIN_OK)

    def ftp_QUIT(self: FTPSession, argument: str) -> None:
        lines = self.message_lines(self.site_settings().messages.exit_message)
        self.send(message_reply(R.GOODBYE, lines))
        if self.transfer is not None:
            self.transfer.abort("QUIT")
        self.close()

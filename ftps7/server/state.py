"""What all sessions of one server process share.

Built once by the service from the immutable configuration: the per-site
portals and realms, the authorizer, the certificate store and TLS context
factory, the I/O and authentication thread pools, connection counting per site,
the failed-logon tracker. Sessions reach the outside world only through this
object, which keeps the protocol free of globals (DESIGN.md habit 7: the
reactor and the clock are passed in).
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from OpenSSL import SSL
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import Portal
from twisted.internet import defer
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from ftps7 import __version__, logfilter
from ftps7.config.model import UNLIMITED_BANDWIDTH, ClientCertificatePolicy, ServerConfig, Site
from ftps7.core.authz import Authorizer
from ftps7.core.bandwidth import Bandwidth
from ftps7.core.replies import R
from ftps7.server.proxyprotocol import ProxyTrust
from ftps7.server.realm import IFTPSiteShell, SiteRealm
from ftps7.server.w3clog import SiteLogs

if TYPE_CHECKING:
    from ftps7.server.datachannel import DataConnection
    from ftps7.server.handover import ThreadedTransfer
    from ftps7.server.protocol import FTPSession
    from ftps7.server.threadrecv import ThreadedReceiver
    from ftps7.server.threadsend import ThreadedSender
    from ftps7.server.transfers import FileReceiver, FileSender
    from ftps7.tls.contexts import SessionTls

log = Logger(observer=logfilter.observer)

_T = TypeVar("_T", bound="ThreadedTransfer")

#: Seconds a certificate looked up in the store is reused before the store is asked again.
CERTIFICATE_RECHECK = 5.0


@implementer(ICredentialsChecker)
class FirstSuccess:
    """Try several checkers for one credentials interface, in order.

    A Portal keeps one checker per interface; the local accounts checker and
    the ``--auth`` plugins all check IUsernamePassword, so they are chained.
    """

    def __init__(self, checkers: Sequence[Any], interface: Any) -> None:
        self.checkers = list(checkers)
        self.credentialInterfaces = (interface,)

    def requestAvatarId(self, credentials: Any) -> defer.Deferred[Any]:
        async def attempt() -> Any:
            last: BaseException = UnauthorizedLogin()
            for checker in self.checkers:
                try:
                    return await defer.maybeDeferred(checker.requestAvatarId, credentials)
                except UnauthorizedLogin as failure:
                    last = failure
            raise last

        return defer.ensureDeferred(attempt())


class ConnectionCounter:
    """``maxConnections`` per site."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def acquire(self, site: Site) -> bool:
        current = self.counts.get(site.name, 0)
        if current >= site.ftp_server.connections.max_connections:
            return False
        self.counts[site.name] = current + 1
        return True

    def release(self, site: Site) -> None:
        self.counts[site.name] = max(0, self.counts.get(site.name, 0) - 1)


class IpFilter:
    """system.ftpServer/security/ipSecurity."""

    def __init__(self, config: ServerConfig) -> None:
        security = config.server.ip_security
        self.allow_unlisted = security.allow_unlisted
        self.rules: list[tuple[Any, bool]] = []
        for entry in security.entries:
            text = entry.ip_address
            if entry.subnet_mask:
                text = f"{text}/{entry.subnet_mask}"
            self.rules.append((ipaddress.ip_network(text, strict=False), entry.allowed))

    def allows(self, host: str) -> bool:
        if not self.rules:
            return self.allow_unlisted
        address = ipaddress.ip_address(host)
        best: tuple[int, bool] | None = None
        for network, allowed in self.rules:
            matches = address.version == network.version and address in network
            if matches and (best is None or network.prefixlen > best[0]):
                best = (network.prefixlen, allowed)
        return self.allow_unlisted if best is None else best[1]


#: Downloads (from the REST offset) smaller than this stay on the reactor
#: path: handing them to a transfer thread and back cost more than sending
#: them (docs/performance.md, "Many small files").
SMALL_DOWNLOAD = 1 << 20


class ServerState:
    def __init__(
        self,
        config: ServerConfig,
        reactor: Any,
        *,
        io_pool: ThreadPool,
        auth_pool: ThreadPool,
        directory_pool: ThreadPool | None = None,
        transfer_pool: ThreadPool | None = None,
        extra_checkers: Sequence[Any] = (),
        failed_logon_delay: float = 1.0,
        worker: int = 0,
    ) -> None:
        self.worker = worker
        self.reactor = reactor
        self.clock = reactor
        self.io_pool = io_pool
        self.auth_pool = auth_pool
        self.directory_pool = directory_pool
        self.transfer_pool = transfer_pool
        self.threaded_transfers = 0
        self.failed_logon_delay = failed_logon_delay
        self.banner = "ftps7 FTP Service"
        self.version = __version__
        self.sessions: set[FTPSession] = set()
        # Worker i of n numbers its sessions i+1, i+1+n, ...: a session number
        # in the log or a W3C x-session field names one session of the server.
        self._session_ids = itertools.count(1 + worker, config.ftps7.process.workers)
        self.connections = ConnectionCounter()
        self.extra_checkers = list(extra_checkers)
        self.auto_certificate: Any = None
        self.directory: Any = None
        self.bandwidths: dict[str, Bandwidth] = {}
        from ftps7.tls.ocsp import HttpOcspPoster, OcspCache

        self.ocsp_cache = OcspCache(reactor, HttpOcspPoster(reactor))
        self._configure(config, None)

    def reconfigure(self, config: ServerConfig) -> None:
        """Serve new sessions with ``config`` (a reload; ``config.reload.applicable``).

        Running sessions keep what they already hold (their site, and once
        logged on their shell with its authorization rules), as PostgreSQL's
        connections keep the pg_hba.conf they were admitted under. What lives
        across sessions is kept where the settings behind it did not change:
        the certificate store and TLS contexts, denyByFailure's counters, the
        credentials cache, the directory connections, maxBandwidth buckets.
        Site logs are reopened (a changed folder or period applies at once).
        If building anything fails, nothing changes and the error is raised.
        """
        old_directory, old_logs = self.directory, self.site_logs
        saved = dict(self.__dict__)
        try:
            self._configure(config, self.config)
        except Exception:
            # All or nothing: e.g. an <activeDirectory caFile> that cannot be read.
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise
        if old_directory is not None and old_directory is not self.directory:
            old_directory.close()
        old_logs.close()

    def _configure(self, config: ServerConfig, previous: ServerConfig | None) -> None:
        """Build what ``config`` decides, keeping what ``previous`` built alike."""
        from ftps7.auth.accounts import AccountsFile
        from ftps7.auth.cache import CredentialsCache
        from ftps7.auth.lockout import FailureTracker
        from ftps7.tls.contexts import TlsContextFactory
        from ftps7.tls.revocation import CrlCache, HttpCrlFetcher
        from ftps7.tls.store import CertificateStore

        reactor = self.reactor
        self.config = config
        self.ip_filter = IpFilter(config)
        self.authorizer = Authorizer(config.authorization)
        ftps7 = config.ftps7
        if previous is None or previous.ftps7.certificate_store != ftps7.certificate_store:
            self.store = CertificateStore(ftps7.certificate_store.path)
            self.crl_cache = CrlCache(self.store.crl_dir, reactor, HttpCrlFetcher(reactor))
        if previous is None or previous.ftps7.tls != ftps7.tls:
            self.tls = TlsContextFactory(ftps7.tls)
        self._certificates: dict[tuple[str, str], tuple[float, Any]] = {}
        self._ca_names: tuple[float, list[Any]] | None = None
        deny = config.server.deny_by_failure
        if previous is None or previous.server.deny_by_failure != deny:
            self.failures = (
                FailureTracker(
                    reactor, deny.max_failure, deny.entry_expiration, deny.logging_only_mode
                )
                if deny.enabled
                else None
            )
        cache_settings = config.server.credentials_cache
        if previous is None or previous.server.credentials_cache != cache_settings:
            # Entries are bound to the stored hash, so a changed accounts file
            # cannot make a remembered password wrong-but-accepted.
            self.credentials_cache = (
                CredentialsCache(reactor, cache_settings.flush_interval)
                if cache_settings.enabled
                else None
            )
        accounts_settings = ftps7.local_accounts
        if previous is None or previous.ftps7.local_accounts != accounts_settings:
            self.accounts = (
                AccountsFile(accounts_settings.path)
                if accounts_settings.source.value == "file" and accounts_settings.path
                else None
            )
        if previous is None or previous.ftps7.active_directory != ftps7.active_directory:
            self.directory = None
            if ftps7.active_directory is not None:
                from ftps7.auth.ldapdir import Ldap3Directory

                # ldap3 blocks: it gets its own pool so a slow or dead directory
                # cannot starve local logons or file I/O.
                self.directory = Ldap3Directory(
                    ftps7.active_directory, self.directory_pool, reactor
                )
        self.site_logs = SiteLogs(config.sites, reactor)
        self.portals: dict[str, Portal] = {site.name: self._portal(site) for site in config.sites}
        if previous is None:  # restart-only (config/reload.py)
            proxy = ftps7.proxy_protocol
            self.proxy_trust: ProxyTrust | None = (
                ProxyTrust(proxy.trusted_proxies, reactor) if proxy.enabled else None
            )
        # maxBandwidth: one bucket per capped site, shared by its transfers in
        # this process; workers split the cap evenly. A reload keeps a bucket
        # whose cap did not change, so running and new transfers still share it.
        workers = ftps7.process.workers  # 1 or more (schema)
        buckets, self.bandwidths = self.bandwidths, {}
        for site in config.sites:
            cap = site.ftp_server.connections.max_bandwidth
            if cap == UNLIMITED_BANDWIDTH:
                continue
            rate = max(1, cap // workers)
            kept = buckets.get(site.name)
            self.bandwidths[site.name] = (
                kept if kept is not None and kept.rate == rate else (Bandwidth(rate))
            )

    def new_session_id(self) -> int:
        return next(self._session_ids)

    # --------------------------------------------------------------- threads
    def run_io(self, function: Callable[..., Any], *args: Any) -> defer.Deferred[Any]:
        return deferToThreadPool(self.reactor, self.io_pool, function, *args)

    def file_sender(
        self,
        source: Any,
        connection: DataConnection,
        *,
        ascii: bool,
        timeout: float,
        bandwidth: Bandwidth | None = None,
        size: int | None = None,
    ) -> FileSender | ThreadedSender:
        """The sender for a download: a pool thread when one is free, else the reactor.

        One thread per running download sends at about twice the rate per CPU
        second (server/handover.py); when every thread of the transfer pool is busy
        the download still runs, on the reactor path.
        """
        from ftps7.server.threadsend import ThreadedSender
        from ftps7.server.transfers import FileSender

        pool = self._lendable_pool(connection) if size is None or size >= SMALL_DOWNLOAD else None
        if pool is None:
            return FileSender(
                self.run_io, source, connection.transport, ascii, bandwidth, self.clock
            )
        return self._counted(
            ThreadedSender(
                pool,
                self.reactor,
                source,
                connection,
                ascii=ascii,
                timeout=timeout,
                bandwidth=bandwidth,
            )
        )

    def file_receiver(
        self,
        target: Any,
        connection: DataConnection,
        *,
        ascii: bool,
        timeout: float,
        bandwidth: Bandwidth | None = None,
    ) -> FileReceiver | ThreadedReceiver:
        """The receiver for an upload: a pool thread when one is free, else the reactor."""
        from ftps7.server.threadrecv import ThreadedReceiver
        from ftps7.server.transfers import FileReceiver

        pool = self._lendable_pool(connection)
        if pool is None:
            return FileReceiver(
                self.run_io, target, connection.transport, ascii, bandwidth, self.clock
            )
        return self._counted(
            ThreadedReceiver(
                pool,
                self.reactor,
                target,
                connection,
                ascii=ascii,
                timeout=timeout,
                bandwidth=bandwidth,
            )
        )

    def _lendable_pool(self, connection: DataConnection) -> ThreadPool | None:
        """The transfer pool, if it has a free thread and ``connection`` can be lent to it."""
        from ftps7.server.handover import usable

        pool = self.transfer_pool
        if pool is None or self.threaded_transfers >= pool.max or not usable(connection):
            return None
        return pool

    def _counted(self, transfer: _T) -> _T:
        """Count ``transfer`` against the pool until its thread hands the connection back."""
        self.threaded_transfers += 1

        def finished(result: Any) -> Any:
            self.threaded_transfers -= 1
            return result

        transfer.finished.addBoth(finished)
        return transfer

    # ------------------------------------------------------------------ auth
    def _groups_for(self, name: str) -> frozenset[str]:
        if self.accounts is None:
            return frozenset()
        try:
            return self.accounts.groups_for(name)
        except Exception:  # noqa: BLE001 - a broken file means no groups, never a crash
            return frozenset()

    def _password_checkers(self, site: Site) -> list[Any]:
        from ftps7.auth.checkers import LocalAccountsChecker

        settings = self.config.ftps7.local_accounts
        local: Any = None
        if self.accounts is not None:
            local = LocalAccountsChecker(
                self.accounts, self.auth_pool, self.reactor, self.credentials_cache
            )
        elif settings.source.value == "pam":
            from ftps7.auth.pam import PamChecker

            local = PamChecker(settings.service, self.auth_pool, self.reactor)
        first = local
        directory_settings = self.config.ftps7.active_directory
        if self.directory is not None and directory_settings is not None:
            from ftps7.auth.dirchecker import DirectoryPasswordChecker, DomainRoutingChecker

            # DOMAIN\user, user@upnSuffix and (with defaultLogonDomain) bare
            # names go to the directory; other names to the local accounts.
            first = DomainRoutingChecker(
                DirectoryPasswordChecker(
                    self.directory,
                    directory_settings.domain,
                    directory_settings.upn_suffix,
                    site.ftp_server.authentication.default_logon_domain,
                ),
                local,
            )
        checkers = [first] if first is not None else []
        checkers.extend(self.extra_checkers)
        return checkers

    def _portal(self, site: Site) -> Portal:
        from twisted.cred.credentials import IAnonymous, IUsernamePassword

        from ftps7.auth.checkers import AnonymousChecker

        authentication = site.ftp_server.authentication
        realm = SiteRealm(site, self.config, self.authorizer, self.run_io, self._groups_for)
        portal = Portal(realm)
        if authentication.anonymous_enabled:
            portal.registerChecker(AnonymousChecker(authentication.anonymous_user_name), IAnonymous)
        if authentication.basic_enabled:
            checkers = self._password_checkers(site)
            if len(checkers) == 1:  # the usual case: no chain (and no coroutine per logon)
                portal.registerChecker(checkers[0], IUsernamePassword)
            elif checkers:
                portal.registerChecker(FirstSuccess(checkers, IUsernamePassword), IUsernamePassword)
        directory_settings = self.config.ftps7.active_directory
        if (
            authentication.client_cert_enabled
            and site.ftp_server.client_certificates.use_active_directory_mapping
            and self.directory is not None
            and directory_settings is not None
        ):
            from ftps7.auth.credentials import ICertificateCredentials
            from ftps7.auth.dirchecker import CertificateMappingChecker

            portal.registerChecker(
                CertificateMappingChecker(
                    self.directory,
                    directory_settings.certificate_mapping,
                    directory_settings.user_certificate_match,
                ),
                ICertificateCredentials,
            )
        return portal

    def login(self, site: Site, credentials: Any) -> defer.Deferred[Any]:
        portal = self.portals.get(site.name)
        if portal is None:  # the session's site was removed by a reload
            return defer.fail(UnauthorizedLogin(f"the site {site.name} no longer exists"))
        return portal.login(credentials, None, IFTPSiteShell)

    def is_locked_out(self, host: str) -> bool:
        return self.failures is not None and self.failures.is_locked(host)

    def record_logon_failure(self, host: str) -> None:
        if self.failures is not None and self.failures.record_failure(host):
            log.warn("address {host} locked out after repeated logon failures", host=host)

    def record_logon_success(self, host: str) -> None:
        if self.failures is not None:
            self.failures.record_success(host)

    def admission_refusal(self, host: str) -> R | None:
        """Refuse a new connection from ``host`` (ipSecurity, denyByFailure)?"""
        if not self.ip_filter.allows(host):
            log.warn("connection from {host} refused by ipSecurity", host=host)
            return R.ADDRESS_DENIED
        if self.is_locked_out(host) and not self.config.server.deny_by_failure.logging_only_mode:
            return R.ADDRESS_DENIED
        return None

    # ------------------------------------------------------------------- TLS
    def certificate_for(self, site: Site | None) -> Any:
        """The site's certificate from the store, looked up at most every few seconds.

        The store re-reads changed files, but checking every file at every
        session cost ~8 % of a logon (docs/performance.md); a replaced
        certificate is still picked up within CERTIFICATE_RECHECK seconds.
        """
        ssl = site.ftp_server.ssl if site is not None else self.config.site_defaults.ssl
        if not ssl.server_cert_hash:
            return self.auto_certificate
        key = (ssl.server_cert_store_name, ssl.server_cert_hash)
        now = self.clock.seconds()
        cached = self._certificates.get(key)
        if cached is not None and now - cached[0] < CERTIFICATE_RECHECK:
            return cached[1]
        found = self.store.find(*key)
        self._certificates[key] = (now, found)
        return found

    def _usable(self, site: Site | None) -> Any:
        certificate = self.certificate_for(site)
        if certificate is not None and certificate.has_key:
            return certificate
        return None

    def initial_certificate(self, session: FTPSession) -> Any:
        """The certificate a handshake starts with, before SNI can change it.

        The selected site's (siteDefaults' certificate is inherited by every
        site), else the server-level one, else — so that SNI can still reach a
        virtual host that has one — the first usable certificate of a site on
        this endpoint.
        """
        for candidate in (session.site, None, *session.endpoint.all_sites()):
            certificate = self._usable(candidate)
            if certificate is not None:
                return certificate
        return None

    def tls_possible(self, session: FTPSession) -> bool:
        return self.initial_certificate(session) is not None

    def session_tls(self, session: FTPSession) -> SessionTls | None:
        """The FTP session's TLS identity (RESEARCH.md §2.4, §2.5; tls/contexts.py).

        All TLS connections of the session (control and data) are made by it,
        so they resume only each other's TLS sessions. Its SNI choice runs on
        every handshake: on the control connection the SNI name may select
        the virtual host and so the certificate; on data connections it
        always switches to the certificate the control connection
        negotiated, so a client that demands the same certificate on both
        channels (FileZilla) is satisfied whatever SNI it sends there.
        """
        from ftps7.tls.contexts import SessionTls

        initial = self.initial_certificate(session)
        if initial is None:
            return None
        contexts: dict[str, SSL.Context] = {}

        def context_for(certificate: Any, *, new_session: bool = False) -> SSL.Context:
            context = contexts.get(certificate.thumbprint)
            if context is None:
                settings = session.site_settings()
                policy = settings.client_certificates.client_certificate_policy
                request = policy is not ClientCertificatePolicy.CERT_IGNORE
                context = self.tls.shared_context(
                    certificate,
                    ssl128=settings.ssl.ssl128,
                    request_client_cert=request,
                    # Advertise the trusted roots so a client with several
                    # certificates offers the one this server accepts.
                    client_ca_names=self._client_ca_names() if request else (),
                    new_session=new_session,
                )
                contexts[certificate.thumbprint] = context
            return context

        def choose(server_name: bytes | None) -> SSL.Context:
            if session.control_certificate is not None:
                return context_for(session.control_certificate)
            session.on_server_name(server_name)
            certificate = self._usable(session.site) or initial
            session.negotiating_certificate = certificate
            return context_for(certificate)

        session.negotiating_certificate = initial
        return SessionTls(
            context_for(initial, new_session=True), b"ftps7-%d" % session.session_id, choose
        )

    def _client_ca_names(self) -> list[Any]:
        """The CA names advertised to clients, re-read like certificates (CERTIFICATE_RECHECK)."""
        now = self.clock.seconds()
        if self._ca_names is not None and now - self._ca_names[0] < CERTIFICATE_RECHECK:
            return self._ca_names[1]
        names = self._read_client_ca_names()
        self._ca_names = (now, names)
        return names

    def _read_client_ca_names(self) -> list[Any]:
        # Roots and intermediates both: GnuTLS clients (lftp) only offer a
        # certificate whose direct issuer is in the list.
        try:
            cas = [*self.store.trusted_roots(), *self.store.intermediates()]
            return list({ca.subject.public_bytes(): ca.subject for ca in cas}.values())
        except Exception:  # noqa: BLE001 - an unreadable store just advertises nothing
            return []

    def check_client_certificate(
        self, leaf: Any, chain: Sequence[Any], settings: Any
    ) -> defer.Deferred[Any]:
        """Validate a client certificate (chain, usage, revocation) without blocking."""
        from ftps7.tls.revocation import check_client_certificate

        return check_client_certificate(
            leaf, chain, self.store, settings, self.crl_cache, ocsp_cache=self.ocsp_cache
        )

    def data_tls_refusal(self, session: FTPSession, connection: DataConnection) -> R | None:
        """The data channel's TLS checks once its handshake is done."""
        from ftps7.server.clientcerts import data_certificate_refusal
        from ftps7.server.session import TlsState
        from ftps7.tls.session import session_reused

        refusal = data_certificate_refusal(session, connection)
        if refusal is not None:
            return refusal

        if (
            self.config.ftps7.tls.require_session_reuse
            and session.state.tls is not TlsState.CLEARED
            and not session_reused(connection.tls_connection())
        ):
            log.warn(
                "session {session}: data connection from {peer} did not resume the control "
                "connection's TLS session; refused",
                session=session.session_id,
                peer=connection.peer_host(),
            )
            return R.DATA_TLS_NOT_RESUMED
        return None

    def passive_range(self) -> tuple[int, int]:
        """This worker's slice of the passive port range (the whole range with one worker)."""
        from ftps7.server.workers import port_slice

        server = self.config.server
        return port_slice(
            server.low_data_channel_port,
            server.high_data_channel_port,
            self.config.ftps7.process.workers,
            self.worker,
        )

"""The effective configuration in words, and the warnings an administrator must see.

``ftps7 config check`` prints `format_report`; the server logs
`report_warnings` at start-up. Both are pure functions of the loaded
configuration plus an optional certificate lookup (the store is another
module's business, and the report must work without it): ``lookup(store_name,
thumbprint)`` returns a one-line description of the certificate, or None when
the store does not hold it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence

from ftps7.config import model as m

CertificateLookup = Callable[[str, str], "str | None"]

_PERMISSION_NAMES = {"Read": m.Permission.READ, "Write": m.Permission.WRITE}


# --------------------------------------------------------------------------
# Certificates


class _Certificate:
    """What the report knows about one site's server certificate."""

    def __init__(
        self, site: m.Site, config: m.ServerConfig, lookup: CertificateLookup | None
    ) -> None:
        ssl = site.ftp_server.ssl
        self.store = ssl.server_cert_store_name
        self.thumbprint = ssl.server_cert_hash
        self.auto_create = config.ftps7.certificate_store.auto_create
        self.inherited = (
            self.thumbprint is not None
            and self.thumbprint == config.site_defaults.ssl.server_cert_hash
        )
        self.description: str | None = None
        self.lookup_error: str | None = None
        self.checked = False
        if self.thumbprint is not None and lookup is not None:
            try:
                self.description = lookup(self.store, self.thumbprint)
                self.checked = True
            except Exception as error:  # noqa: BLE001 - a broken store must not hide the report
                self.lookup_error = f"{type(error).__name__}: {error}"

    @property
    def usable(self) -> bool:
        """False only when we know there is no certificate (unchecked counts as usable)."""
        if self.thumbprint is None:
            return self.auto_create is not None
        return not (self.checked and self.description is None)

    def problem(self) -> str | None:
        if self.thumbprint is None and self.auto_create is None:
            return "no serverCertHash on the site nor in siteDefaults"
        if self.thumbprint is not None and self.checked and self.description is None:
            return f"certificate {self.thumbprint} is not in store {self.store}"
        return None

    def line(self) -> str:
        if self.thumbprint is None:
            if self.auto_create is not None:
                return (
                    f"self-signed {self.auto_create!r} in store MY "
                    "(<certificateStore autoCreate>; created on first start)"
                )
            return "none (TLS is refused: AUTH answers 534)"
        text = f"{self.thumbprint} in store {self.store}"
        if self.inherited:
            text += " (from siteDefaults)"
        if self.lookup_error is not None:
            return f"{text}: could not read the store ({self.lookup_error})"
        if not self.checked:
            return f"{text} (store not checked)"
        if self.description is None:
            return f"{text}: NOT FOUND"
        return f"{text}: {self.description}"


# --------------------------------------------------------------------------
# Warnings


def _requires_ssl(site: m.Site) -> list[str]:
    ssl = site.ftp_server.ssl
    reasons: list[str] = []
    if ssl.control_channel_policy is not m.ControlChannelPolicy.SSL_ALLOW:
        reasons.append(f"controlChannelPolicy {ssl.control_channel_policy.value}")
    if ssl.data_channel_policy is m.DataChannelPolicy.SSL_REQUIRE:
        reasons.append(f"dataChannelPolicy {ssl.data_channel_policy.value}")
    if any(binding.implicit for binding in site.bindings):
        reasons.append("implicit FTPS binding")
    return reasons


def _client_cert_gaps(site: m.Site, certificate: _Certificate) -> list[str]:
    """What IIS requires before clientCertAuthentication can work, where unmet.

    From the IIS reference (seeds/iis-config-clientcertauthentication.txt): a
    server certificate, both channel policies allowing SSL, a client certificate
    policy that asks for certificates, and Active Directory mapping.
    """
    ftp = site.ftp_server
    gaps: list[str] = []
    if not certificate.usable:
        gaps.append("the site has no usable server certificate (serverCertHash)")
    if ftp.ssl.data_channel_policy is m.DataChannelPolicy.SSL_DENY:
        gaps.append("dataChannelPolicy SslDeny does not allow SSL")
    if ftp.client_certificates.client_certificate_policy is m.ClientCertificatePolicy.CERT_IGNORE:
        gaps.append("clientCertificatePolicy is CertIgnore (use CertAllow or CertRequire)")
    if not ftp.client_certificates.use_active_directory_mapping:
        gaps.append("useActiveDirectoryMapping is false")
    return gaps


def _site_warnings(
    site: m.Site, config: m.ServerConfig, lookup: CertificateLookup | None
) -> list[str]:
    warnings: list[str] = []
    certificate = _Certificate(site, config, lookup)
    problem = certificate.problem()
    needs = _requires_ssl(site)
    if needs and problem is not None:
        warnings.append(
            f"site {site.name!r} requires SSL ({', '.join(needs)}) but has no usable "
            f"certificate: {problem}"
        )
    elif problem is not None and certificate.thumbprint is not None:
        warnings.append(f"site {site.name!r}: {problem}; TLS will be refused (AUTH answers 534)")
    if certificate.lookup_error is not None:
        warnings.append(
            f"site {site.name!r}: could not check certificate {certificate.thumbprint} "
            f"in store {certificate.store}: {certificate.lookup_error}"
        )
    authentication = site.ftp_server.authentication
    if authentication.client_cert_enabled:
        gaps = _client_cert_gaps(site, certificate)
        if gaps:
            warnings.append(
                f"clientCertAuthentication is enabled but site {site.name!r} does not meet "
                f"its prerequisites: {'; '.join(gaps)}"
            )
    if not (
        authentication.anonymous_enabled
        or authentication.basic_enabled
        or authentication.client_cert_enabled
    ):
        warnings.append(
            f"site {site.name!r} has no authentication method enabled; nobody can log on"
        )
    return warnings


def report_warnings(
    config: m.ServerConfig, certificate_lookup: CertificateLookup | None = None
) -> list[str]:
    """The load warnings, then what makes a loaded configuration unable to work as meant."""
    warnings = list(config.warnings)
    for site in config.sites:
        warnings.extend(_site_warnings(site, config, certificate_lookup))
    return warnings


# --------------------------------------------------------------------------
# The report


def _flag_names(value: enum.Flag, names: dict[str, enum.Flag]) -> str:
    chosen = [name for name, flag in names.items() if flag in value and flag.value]
    return ", ".join(chosen) if chosen else "none"


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _ip(ip: str) -> str:
    return f"[{ip}]" if ":" in ip else ip


def _binding(binding: m.Binding) -> str:
    if binding.implicit:
        why = "protocol ftps" if binding.protocol == "ftps" else "port 990"
        mode = f"implicit FTPS ({why}: TLS from the first byte)"
    else:
        mode = "explicit (plain connect, then AUTH TLS)"
    host = f"host {binding.host}" if binding.host else "default site of the endpoint"
    return f"{_ip(binding.ip)}:{binding.port}:{binding.host}  {mode}, {host}"


def _rule(rule: m.AuthorizationRule) -> str:
    who = []
    if rule.users:
        who.append("users=" + ",".join(sorted(rule.users)))
    if rule.roles:
        who.append("roles=" + ",".join(sorted(rule.roles)))
    permissions = _flag_names(rule.permissions, dict(_PERMISSION_NAMES))
    return f"{rule.access_type.value} {' '.join(who)} permissions={permissions}"


def _site_lines(
    site: m.Site, config: m.ServerConfig, lookup: CertificateLookup | None
) -> Iterable[str]:
    ftp = site.ftp_server
    started = site.server_auto_start and ftp.server_auto_start
    yield f'Site "{site.name}" (id {site.id}): {"started" if started else "NOT started"}'
    yield "  bindings:"
    for binding in site.bindings:
        yield f"    {_binding(binding)}"
    yield "  virtual directories:"
    for directory in site.virtual_directories:
        yield f"    {directory.path} -> {directory.physical_path}"
    ssl = ftp.ssl
    yield (
        f"  ssl: controlChannelPolicy={ssl.control_channel_policy.value} "
        f"dataChannelPolicy={ssl.data_channel_policy.value} ssl128={_bool(ssl.ssl128)}"
    )
    yield f"  certificate: {_Certificate(site, config, lookup).line()}"
    client = ftp.client_certificates
    yield (
        f"  client certificates: {client.client_certificate_policy.value}, "
        f"useActiveDirectoryMapping={_bool(client.use_active_directory_mapping)}, "
        f"validationFlags={_flag_names(client.validation_flags, dict(m.VALIDATION_FLAG_NAMES))}"
    )
    auth = ftp.authentication
    methods = []
    if auth.anonymous_enabled:
        methods.append(f"anonymous (as {auth.anonymous_user_name})")
    if auth.basic_enabled:
        domain = (
            f", defaultLogonDomain {auth.default_logon_domain}" if auth.default_logon_domain else ""
        )
        methods.append(f"basic{domain}")
    if auth.client_cert_enabled:
        methods.append("client certificate")
    yield f"  authentication: {', '.join(methods) if methods else 'NONE'}"
    yield f"  user isolation: {ftp.user_isolation.value}"
    rules = [
        (key, section)
        for key, section in config.authorization
        if key.site in (None, site.name.lower())
    ]
    yield "  authorization:"
    if not rules:
        yield "    (no rules: every operation is denied)"
    for key, section in rules:
        where = key.path if key.site is not None else "/ (all sites)"
        clear = " [clear]" if section.clear else ""
        yield f"    {where}{clear}:"
        for rule in section.rules:
            yield f"      {_rule(rule)}"
    filtering = ftp.command_filtering
    listed = ", ".join(
        f"{entry.command}={'allow' if entry.allowed else 'deny'}" for entry in filtering.commands
    )
    yield (
        f"  command filtering: allowUnlisted={_bool(filtering.allow_unlisted)} "
        f"maxCommandLine={filtering.max_command_line}" + (f" [{listed}]" if listed else "")
    )
    data = ftp.data_channel_security
    yield (
        f"  data channel: matchClientAddressForPort={_bool(data.match_client_address_for_port)} "
        f"matchClientAddressForPasv={_bool(data.match_client_address_for_pasv)}"
        + (
            f" externalIp4Address={ftp.firewall_support.external_ip4_address}"
            if ftp.firewall_support.external_ip4_address
            else ""
        )
    )
    connections = ftp.connections
    yield (
        f"  connections: maxConnections={connections.max_connections} "
        f"unauthenticatedTimeout={connections.unauthenticated_timeout:g}s "
        f"controlChannelTimeout={connections.control_channel_timeout:g}s "
        f"dataChannelTimeout={connections.data_channel_timeout:g}s"
    )
    log = ftp.log_file
    log_directory = log.directory if log.enabled and log.directory else "off"
    yield (
        f"  flags: allowUTF8={_bool(ftp.allow_utf8)} "
        f"showFlags={_flag_names(ftp.directory_browse.show_flags, dict(m.SHOW_FLAG_NAMES))} "
        f"keepPartialUploads={_bool(ftp.file_handling.keep_partial_uploads)} "
        f"allowReplaceOnRename={_bool(ftp.file_handling.allow_replace_on_rename)} "
        f"logFile={log_directory}"
    )


def _endpoint_lines(config: m.ServerConfig) -> Iterable[str]:
    yield "Endpoints (listeners):"
    endpoints = config.endpoints()
    if not endpoints:
        yield "  none (no started site has a binding)"
    for (ip, port), sites in sorted(endpoints.items(), key=lambda item: (item[0][1], item[0][0])):
        bindings = [
            (site, binding)
            for site in sites
            for binding in site.bindings
            if binding.endpoint == (ip, port)
        ]
        implicit = any(binding.implicit for _, binding in bindings)
        where = "all IPv4 and IPv6 addresses" if ip == "*" else _ip(ip)
        mode = "implicit FTPS" if implicit else "explicit"
        yield f"  {_ip(ip)}:{port} ({where}), {mode}:"
        for site, binding in bindings:
            host = f"host {binding.host}" if binding.host else "default site"
            yield f'    "{site.name}" ({host})'


def _server_lines(config: m.ServerConfig) -> Iterable[str]:
    server = config.server
    yield "Server (system.ftpServer):"
    if server.low_data_channel_port:
        ports = f"{server.low_data_channel_port}-{server.high_data_channel_port}"
    else:
        ports = "any (0-0)"
    yield f"  passive data ports: {ports}"
    ip = server.ip_security
    yield f"  ipSecurity: allowUnlisted={_bool(ip.allow_unlisted)}, {len(ip.entries)} entries"
    for entry in ip.entries:
        mask = f"/{entry.subnet_mask}" if entry.subnet_mask else ""
        yield f"    {entry.ip_address}{mask} {'allow' if entry.allowed else 'deny'}"
    filtering = server.request_filtering
    yield (
        f"  requestFiltering: hiddenSegments={list(filtering.hidden_segments)} "
        f"fileExtensions allowUnlisted={_bool(filtering.file_extensions_allow_unlisted)} "
        f"{[f'{r.extension}={_bool(r.allowed)}' for r in filtering.file_extensions]} "
        f"denyUrlSequences={list(filtering.deny_url_sequences)} "
        f"maxAllowedContentLength={filtering.max_allowed_content_length} maxUrl={filtering.max_url}"
    )
    deny = server.deny_by_failure
    yield (
        f"  denyByFailure: enabled={_bool(deny.enabled)} maxFailure={deny.max_failure} "
        f"entryExpiration={deny.entry_expiration:g}s "
        f"loggingOnlyMode={_bool(deny.logging_only_mode)}"
    )
    yield f"  hostNameSupport: useDomainNameAsHostName={_bool(server.use_domain_name_as_host_name)}"
    cache = server.credentials_cache
    yield (
        f"  credentialsCache: enabled={_bool(cache.enabled)} "
        f"flushInterval={cache.flush_interval:g}s"
    )
    ftps7 = config.ftps7
    yield "ftps7:"
    store = ftps7.certificate_store
    auto = f" autoCreate={store.auto_create!r}" if store.auto_create else ""
    yield f"  certificate store: {store.path}{auto}"
    accounts = ftps7.local_accounts
    if accounts.source is m.AccountSource.PAM:
        yield f"  local accounts: PAM service {accounts.service!r}"
    else:
        yield f"  local accounts: file {accounts.path}"
    directory = ftps7.active_directory
    if directory is None:
        yield "  active directory: none"
    else:
        mapping = ", ".join(method.value for method in directory.certificate_mapping) or "none"
        yield (
            f"  active directory: {directory.url} domain={directory.domain or '-'} "
            f"baseDn={directory.base_dn or '-'} startTls={_bool(directory.start_tls)} "
            f"certificateMapping={mapping}"
        )
    tls = ftps7.tls
    yield (
        f"  tls: minimumVersion={tls.minimum_version} "
        f"requireSessionReuse={_bool(tls.require_session_reuse)} "
        f"handshakeTimeout={tls.handshake_timeout:g}s ciphers={tls.ciphers}"
    )
    yield f"  process workers: {ftps7.process.workers}"
    proxy = ftps7.proxy_protocol
    trusted = ", ".join(proxy.trusted_proxies) or "none"
    yield f"  PROXY protocol: enabled={_bool(proxy.enabled)} trustedProxies={trusted}"


def format_report(
    config: m.ServerConfig,
    certificate_lookup: CertificateLookup | None = None,
    extra_warnings: Sequence[str] = (),
) -> str:
    """The effective configuration: sites, endpoints, server settings, then WARNINGS."""
    lines = [f"Configuration {config.path}: OK", ""]
    if not config.sites:
        lines += ["No FTP sites.", ""]
    for site in sorted(config.sites, key=lambda site: site.id):
        lines += [*_site_lines(site, config, certificate_lookup), ""]
    lines += [*_endpoint_lines(config), ""]
    lines += [*_server_lines(config), ""]
    warnings = [*report_warnings(config, certificate_lookup), *extra_warnings]
    lines.append(f"WARNINGS ({len(warnings)}):" if warnings else "WARNINGS: none")
    lines += [f"  - {warning}" for warning in warnings]
    return "\n".join(lines) + "\n"

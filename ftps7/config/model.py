"""The configuration as immutable objects.

The loader (``ftps7.config.loader``) turns the IIS-shaped XML described in
CONFIG.md into these frozen dataclasses once, at start-up; every other module
reads them and none can change them, so a session never sees a half-applied
setting. Names follow PEP 8; each field's docstring-comment names the IIS
attribute it comes from so the mapping stays obvious.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

# --------------------------------------------------------------------------
# Enumerations: values are the IIS spellings (matched case-insensitively by
# the loader); the numeric IIS values are kept in the comments for reference.


class ControlChannelPolicy(enum.Enum):
    SSL_ALLOW = "SslAllow"  # 0
    SSL_REQUIRE = "SslRequire"  # 1
    SSL_REQUIRE_CREDENTIALS_ONLY = "SslRequireCredentialsOnly"  # 2


class DataChannelPolicy(enum.Enum):
    SSL_ALLOW = "SslAllow"  # 0
    SSL_REQUIRE = "SslRequire"  # 1
    SSL_DENY = "SslDeny"  # 2


class ClientCertificatePolicy(enum.Enum):
    CERT_IGNORE = "CertIgnore"  # 0
    CERT_ALLOW = "CertAllow"  # 1
    CERT_REQUIRE = "CertRequire"  # 2


class ValidationFlags(enum.Flag):
    NONE = 0
    NO_REVOCATION_CHECK = 1
    CERT_CHAIN_REVOCATION_CHECK_CACHE_ONLY = 2
    CERT_CHAIN_CACHE_ONLY_URL_RETRIEVAL = 4
    CERT_NO_USAGE_CHECK = 8


VALIDATION_FLAG_NAMES: dict[str, ValidationFlags] = {
    "NoRevocationCheck": ValidationFlags.NO_REVOCATION_CHECK,
    "CertChainRevocationCheckCacheOnly": ValidationFlags.CERT_CHAIN_REVOCATION_CHECK_CACHE_ONLY,
    "CertChainCacheOnlyUrlRetrieval": ValidationFlags.CERT_CHAIN_CACHE_ONLY_URL_RETRIEVAL,
    "CertNoUsageCheck": ValidationFlags.CERT_NO_USAGE_CHECK,
}


class UserIsolationMode(enum.Enum):
    NONE = "None"
    START_IN_USERS_DIRECTORY = "StartInUsersDirectory"
    ISOLATE_ROOT_DIRECTORY_ONLY = "IsolateRootDirectoryOnly"
    ISOLATE_ALL_DIRECTORIES = "IsolateAllDirectories"
    ACTIVE_DIRECTORY = "ActiveDirectory"


class ShowFlags(enum.Flag):
    NONE = 0
    STYLE_UNIX = 1
    LONG_DATE = 2
    DISPLAY_AVAILABLE_BYTES = 4
    DISPLAY_VIRTUAL_DIRECTORIES = 8


SHOW_FLAG_NAMES: dict[str, ShowFlags] = {
    "StyleUnix": ShowFlags.STYLE_UNIX,
    "LongDate": ShowFlags.LONG_DATE,
    "DisplayAvailableBytes": ShowFlags.DISPLAY_AVAILABLE_BYTES,
    "DisplayVirtualDirectories": ShowFlags.DISPLAY_VIRTUAL_DIRECTORIES,
}


class AccessType(enum.Enum):
    ALLOW = "Allow"
    DENY = "Deny"


class Permission(enum.Flag):
    NONE = 0
    READ = 1
    WRITE = 2


class LogPeriod(enum.Enum):
    MAX_SIZE = "MaxSize"
    DAILY = "Daily"
    WEEKLY = "Weekly"
    MONTHLY = "Monthly"
    HOURLY = "Hourly"


class AccountSource(enum.Enum):
    FILE = "file"
    PAM = "pam"


class UserCertificateMatch(enum.Enum):
    OCTET = "octet"
    GSER = "gser"
    FETCH_COMPARE = "fetch-compare"


class CertificateMappingMethod(enum.Enum):
    ISSUER_SERIAL = "IssuerSerial"  # strong
    SKI = "SKI"  # strong
    SHA1_PUBLIC_KEY = "SHA1PublicKey"  # strong
    UPN = "UPN"
    ISSUER_SUBJECT = "IssuerSubject"  # weak
    SUBJECT = "Subject"  # weak
    RFC822 = "RFC822"  # weak
    USER_CERTIFICATE = "UserCertificate"  # weak (one-to-one)


# --------------------------------------------------------------------------
# Site-level ftpServer settings (siteDefaults supplies the inherited values).


@dataclass(frozen=True)
class SslSettings:
    server_cert_hash: str | None = None  # serverCertHash, upper-case hex, no spaces
    server_cert_store_name: str = "MY"  # serverCertStoreName
    control_channel_policy: ControlChannelPolicy = ControlChannelPolicy.SSL_REQUIRE
    data_channel_policy: DataChannelPolicy = DataChannelPolicy.SSL_REQUIRE
    ssl128: bool = False


@dataclass(frozen=True)
class ClientCertificateSettings:
    client_certificate_policy: ClientCertificatePolicy = ClientCertificatePolicy.CERT_IGNORE
    use_active_directory_mapping: bool = False
    validation_flags: ValidationFlags = ValidationFlags.NONE
    revocation_freshness_time: float = 0.0  # seconds; 0 = use the cached CRL until it expires
    revocation_url_retrieval_timeout: float = 60.0  # seconds


@dataclass(frozen=True)
class AuthenticationSettings:
    anonymous_enabled: bool = False  # anonymousAuthentication enabled
    anonymous_user_name: str = "IUSR"  # anonymousAuthentication userName
    basic_enabled: bool = False  # basicAuthentication enabled
    default_logon_domain: str = ""  # basicAuthentication defaultLogonDomain
    client_cert_enabled: bool = False  # clientCertAuthentication enabled


@dataclass(frozen=True)
class CommandFilter:
    command: str  # upper case
    allowed: bool


@dataclass(frozen=True)
class CommandFiltering:
    max_command_line: int = 4096
    allow_unlisted: bool = True
    commands: tuple[CommandFilter, ...] = ()

    def is_allowed(self, command: str) -> bool:
        """Whether ``command`` (upper case) passes the filter."""
        for entry in self.commands:
            if entry.command == command:
                return entry.allowed
        return self.allow_unlisted


@dataclass(frozen=True)
class DataChannelSecurity:
    match_client_address_for_port: bool = True
    match_client_address_for_pasv: bool = True


#: ``maxBandwidth``'s default, IIS's: no cap.
UNLIMITED_BANDWIDTH = 4294967295


@dataclass(frozen=True)
class ConnectionSettings:
    unauthenticated_timeout: float = 30.0
    control_channel_timeout: float = 120.0
    data_channel_timeout: float = 30.0
    max_connections: int = 4294967295
    reset_on_max_connections: bool = False
    server_listen_backlog: int = 60
    min_bytes_per_second: int = 240
    max_bandwidth: int = UNLIMITED_BANDWIDTH  # bytes per second for the site


@dataclass(frozen=True)
class DirectoryBrowse:
    show_flags: ShowFlags = ShowFlags.NONE


@dataclass(frozen=True)
class Messages:
    greeting_message: str = ""
    banner_message: str = ""
    exit_message: str = ""
    max_clients_message: str = ""
    suppress_default_banner: bool = False
    allow_local_detailed_errors: bool = True
    expand_variables: bool = False


@dataclass(frozen=True)
class FileHandling:
    keep_partial_uploads: bool = False
    allow_replace_on_rename: bool = False
    allow_read_uploads_in_progress: bool = False


@dataclass(frozen=True)
class SiteFirewallSupport:
    external_ip4_address: str | None = None


@dataclass(frozen=True)
class LogFileSettings:
    enabled: bool = True
    directory: str | None = None  # absolute; None = no W3C log file
    period: LogPeriod = LogPeriod.DAILY
    truncate_size: int = 20971520
    log_ext_file_flags: tuple[str, ...] = (
        "Date", "Time", "ClientIP", "UserName", "ServerIP", "Method", "UriStem",
        "FtpStatus", "Win32Status", "FtpSubStatus", "ServerPort", "Session", "FullPath",
    )
    local_time_rollover: bool = False


@dataclass(frozen=True)
class SiteFtpServer:
    """One site's effective ``ftpServer`` element (siteDefaults already merged)."""

    server_auto_start: bool = True
    allow_utf8: bool = True
    ssl: SslSettings = field(default_factory=SslSettings)
    client_certificates: ClientCertificateSettings = field(
        default_factory=ClientCertificateSettings
    )
    authentication: AuthenticationSettings = field(default_factory=AuthenticationSettings)
    command_filtering: CommandFiltering = field(default_factory=CommandFiltering)
    data_channel_security: DataChannelSecurity = field(default_factory=DataChannelSecurity)
    connections: ConnectionSettings = field(default_factory=ConnectionSettings)
    user_isolation: UserIsolationMode = UserIsolationMode.NONE
    directory_browse: DirectoryBrowse = field(default_factory=DirectoryBrowse)
    messages: Messages = field(default_factory=Messages)
    file_handling: FileHandling = field(default_factory=FileHandling)
    firewall_support: SiteFirewallSupport = field(default_factory=SiteFirewallSupport)
    log_file: LogFileSettings = field(default_factory=LogFileSettings)


# --------------------------------------------------------------------------
# Sites


@dataclass(frozen=True)
class Binding:
    """``<binding protocol bindingInformation="IP:PORT:HOST">``."""

    protocol: str  # "ftp" or "ftps"
    ip: str  # "*", a dotted IPv4 address, or an IPv6 address without brackets
    port: int
    host: str  # lower case; "" = the endpoint's default site
    line: int = 0  # where it was declared, for messages

    @property
    def implicit(self) -> bool:
        """TLS from the first byte: ``protocol="ftps"`` or port 990, as IIS does."""
        return self.protocol == "ftps" or self.port == 990

    @property
    def endpoint(self) -> tuple[str, int]:
        return (self.ip, self.port)


@dataclass(frozen=True)
class VirtualDirectory:
    path: str  # FTP path: "/" or "/pub/docs" (no trailing slash)
    physical_path: str  # absolute, environment variables expanded


@dataclass(frozen=True)
class Site:
    name: str
    id: int
    server_auto_start: bool
    bindings: tuple[Binding, ...]
    virtual_directories: tuple[VirtualDirectory, ...]  # "/" first, then by path
    ftp_server: SiteFtpServer

    @property
    def root(self) -> VirtualDirectory:
        return self.virtual_directories[0]


# --------------------------------------------------------------------------
# Authorization (<location path="Site/sub"> ... <authorization>)


@dataclass(frozen=True)
class AuthorizationRule:
    access_type: AccessType
    users: frozenset[str]  # lower-cased names; "*" everyone, "?" anonymous
    roles: frozenset[str]  # lower-cased group names
    permissions: Permission


@dataclass(frozen=True)
class AuthorizationSection:
    """The rules declared at one location; ``clear`` drops the inherited ones."""

    clear: bool = False
    rules: tuple[AuthorizationRule, ...] = ()


@dataclass(frozen=True)
class LocationKey:
    """Where an authorization section applies: a site (None = every site) and a path."""

    site: str | None  # lower-cased site name
    path: str  # FTP path "/" or "/pub/docs"


# --------------------------------------------------------------------------
# Server-wide system.ftpServer


@dataclass(frozen=True)
class IpSecurityEntry:
    ip_address: str
    subnet_mask: str | None
    allowed: bool


@dataclass(frozen=True)
class IpSecurity:
    allow_unlisted: bool = True
    entries: tuple[IpSecurityEntry, ...] = ()


@dataclass(frozen=True)
class FileExtensionRule:
    extension: str  # lower case, with the dot: ".exe"
    allowed: bool


@dataclass(frozen=True)
class RequestFiltering:
    hidden_segments: tuple[str, ...] = ()
    file_extensions_allow_unlisted: bool = True
    file_extensions: tuple[FileExtensionRule, ...] = ()
    deny_url_sequences: tuple[str, ...] = ()
    max_allowed_content_length: int = 4294967295
    max_url: int = 4096


@dataclass(frozen=True)
class DenyByFailure:
    enabled: bool = False
    max_failure: int = 4
    entry_expiration: float = 30.0  # seconds
    logging_only_mode: bool = False


@dataclass(frozen=True)
class CredentialsCache:
    enabled: bool = True
    flush_interval: float = 60.0  # seconds


@dataclass(frozen=True)
class ServerFtpSettings:
    low_data_channel_port: int = 0
    high_data_channel_port: int = 0
    ip_security: IpSecurity = field(default_factory=IpSecurity)
    request_filtering: RequestFiltering = field(default_factory=RequestFiltering)
    deny_by_failure: DenyByFailure = field(default_factory=DenyByFailure)
    use_domain_name_as_host_name: bool = False
    credentials_cache: CredentialsCache = field(default_factory=CredentialsCache)


# --------------------------------------------------------------------------
# <ftps7>: what Linux needs that IIS takes from Windows


@dataclass(frozen=True)
class CertificateStoreSettings:
    path: str  # absolute
    # <certificateStore autoCreate="NAME">: when a site (and siteDefaults) has no
    # serverCertHash, use the self-signed certificate NAME in MY, created on first start.
    auto_create: str | None = None


@dataclass(frozen=True)
class LocalAccountsSettings:
    source: AccountSource = AccountSource.FILE
    path: str | None = None  # absolute; the accounts file when source is "file"
    service: str = "ftps7"  # the PAM service when source is "pam"


@dataclass(frozen=True)
class ActiveDirectorySettings:
    url: str
    domain: str = ""
    upn_suffix: str = ""
    base_dn: str = ""
    bind_dn: str | None = None
    bind_password_file: str | None = None
    start_tls: bool = False
    ca_file: str | None = None
    timeout: float = 5.0
    certificate_mapping: tuple[CertificateMappingMethod, ...] = (
        CertificateMappingMethod.ISSUER_SERIAL,
        CertificateMappingMethod.SKI,
        CertificateMappingMethod.SHA1_PUBLIC_KEY,
        CertificateMappingMethod.UPN,
    )
    user_certificate_match: UserCertificateMatch = UserCertificateMatch.OCTET


@dataclass(frozen=True)
class TlsSettings:
    minimum_version: str = "TLSv1.2"  # TLSv1, TLSv1.1, TLSv1.2, TLSv1.3
    ciphers: str = "HIGH:!aNULL:!eNULL:!MD5:!RC4:!3DES:!DSS:!PSK:!SRP:!CAMELLIA:!ARIA"
    require_session_reuse: bool = False
    handshake_timeout: float = 30.0


@dataclass(frozen=True)
class ProcessSettings:
    workers: int = 1
    # ftps7 extension: threads per worker that run transfers (server/handover.py);
    # 0 = every transfer on the reactor path.
    transfer_threads: int = 32


@dataclass(frozen=True)
class ProxyProtocolSettings:
    enabled: bool = False
    trusted_proxies: tuple[str, ...] = ()


@dataclass(frozen=True)
class Ftps7Settings:
    certificate_store: CertificateStoreSettings
    local_accounts: LocalAccountsSettings
    active_directory: ActiveDirectorySettings | None = None
    tls: TlsSettings = field(default_factory=TlsSettings)
    process: ProcessSettings = field(default_factory=ProcessSettings)
    proxy_protocol: ProxyProtocolSettings = field(default_factory=ProxyProtocolSettings)


# --------------------------------------------------------------------------
# The whole file


@dataclass(frozen=True)
class ServerConfig:
    path: str  # the configuration file, absolute
    sites: tuple[Site, ...]
    site_defaults: SiteFtpServer
    server: ServerFtpSettings
    authorization: tuple[tuple[LocationKey, AuthorizationSection], ...]
    ftps7: Ftps7Settings
    warnings: tuple[str, ...] = ()

    def site_named(self, name: str) -> Site | None:
        for site in self.sites:
            if site.name.lower() == name.lower():
                return site
        return None

    def endpoints(self) -> dict[tuple[str, int], tuple[Site, ...]]:
        """The distinct listening endpoints and the started sites bound to each."""
        result: dict[tuple[str, int], list[Site]] = {}
        for site in self.sites:
            if not (site.server_auto_start and site.ftp_server.server_auto_start):
                continue
            for binding in site.bindings:
                sites = result.setdefault(binding.endpoint, [])
                if site not in sites:
                    sites.append(site)
        return {key: tuple(value) for key, value in result.items()}

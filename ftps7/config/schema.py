"""The configuration schema, declared once: every element, its attributes and children.

Each `Element` lists its attributes (name, value type, the model field it
fills), its child elements, its collection (``<add>``/``<remove>``/``<clear/>``)
and the IIS names that are known but not implemented (loaded with a warning).
The walker (``walker.py``) validates a parsed file against this tree; the
builder (``builder.py``) turns the validated nodes into the frozen model
objects, taking each attribute from the site, then siteDefaults, then the
model's own default. Defaults therefore live in exactly one place: model.py.

An element with ``model`` set becomes that dataclass in its parent's ``field``;
an element without ``model`` is only a grouping (IIS's ``security``,
``authentication`` ...) and its attributes fill fields of the nearest model
above it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ftps7.config import model as m
from ftps7.config.values import (
    UINT32_MAX,
    Bool,
    Choice,
    Ciphers,
    EnumOf,
    FileExtension,
    FlagsOf,
    FtpPath,
    Integer,
    IpAddress,
    LdapUrl,
    NameList,
    Networks,
    Path,
    Principals,
    Seconds,
    SubnetMask,
    Text,
    Thumbprint,
    TimeSpan,
    ValueType,
)


class _NoDefault:
    def __repr__(self) -> str:
        return "NO_DEFAULT"


NO_DEFAULT: Any = _NoDefault()

#: Reasons shown in warnings (kept short: the warning already names the setting).
NOT_IMPLEMENTED = "an IIS FTP setting that ftps7 does not implement; ignored"
NOT_FTP = "not an FTP setting; ignored"


@dataclass(frozen=True)
class Attr:
    name: str
    type: ValueType
    field: str | None = None  # the model field this attribute fills
    required: bool = False
    default: Any = NO_DEFAULT  # only for collection entries (models carry their own)
    key: bool = False  # part of a collection entry's unique key


@dataclass(frozen=True)
class Collection:
    """An IIS collection: ``entry`` elements (``add``, ``site``, ...) plus remove/clear."""

    entry: Element
    field: str | None = None  # the model field receiving the tuple of items
    build: Callable[[Mapping[str, Any]], Any] | None = None  # entry values -> item
    # Whether <remove> and <clear/> are accepted (not for sites and locations,
    # which are not inherited from anywhere in a single file).
    removable: bool = True

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(attr.name for attr in self.entry.attrs if attr.key)


@dataclass(frozen=True)
class Element:
    name: str
    attrs: tuple[Attr, ...] = ()
    children: tuple[Element, ...] = ()
    collection: Collection | None = None
    model: Callable[..., Any] | None = None
    field: str | None = None
    # Known IIS names ftps7 does not use: name -> reason for the warning.
    ignored_attrs: Mapping[str, str] = dataclasses.field(default_factory=dict)
    ignored_children: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # Accepted and ignored without a word (only for attributes that do not matter here).
    silent_attrs: frozenset[str] = frozenset()
    # Unknown attributes: "error" (a typo), or "ignore" (bindings of other protocols).
    unknown_attrs: str = "error"
    # Unknown children: None = error; otherwise the reason given in the warning.
    unknown_children: str | None = None

    def child(self, name: str) -> Element | None:
        for child in self.children:
            if child.name == name:
                return child
        return None

    def attr(self, name: str) -> Attr | None:
        for attr in self.attrs:
            if attr.name == name:
                return attr
        return None


# --------------------------------------------------------------------------
# Collection item builders


def _command_filter(values: Mapping[str, Any]) -> m.CommandFilter:
    return m.CommandFilter(command=values["command"], allowed=values["allowed"])


def _ip_entry(values: Mapping[str, Any]) -> m.IpSecurityEntry:
    return m.IpSecurityEntry(
        ip_address=values["ipAddress"], subnet_mask=values["subnetMask"], allowed=values["allowed"]
    )


def _extension_rule(values: Mapping[str, Any]) -> m.FileExtensionRule:
    return m.FileExtensionRule(extension=values["fileExtension"], allowed=values["allowed"])


def authorization_rule(values: Mapping[str, Any]) -> m.AuthorizationRule:
    return m.AuthorizationRule(
        access_type=values["accessType"],
        users=values["users"],
        roles=values["roles"],
        permissions=values["permissions"],
    )


# --------------------------------------------------------------------------
# Site-level ftpServer (also siteDefaults/ftpServer)

_BOOL = Bool()
_TEXT = Text(strip=False)
_UINT = Integer(0, UINT32_MAX)

SSL = Element(
    "ssl",
    model=m.SslSettings,
    field="ssl",
    attrs=(
        Attr("serverCertHash", Thumbprint(), "server_cert_hash"),
        Attr(
            "serverCertStoreName",
            Text(
                required=True,
                case="upper",  # store names are case-insensitive, as in Windows
                pattern=r"[A-Z0-9][A-Z0-9_.-]{0,63}",
                pattern_text="a store folder name such as MY",
            ),
            "server_cert_store_name",
        ),
        Attr("controlChannelPolicy", EnumOf(m.ControlChannelPolicy), "control_channel_policy"),
        Attr("dataChannelPolicy", EnumOf(m.DataChannelPolicy), "data_channel_policy"),
        Attr("ssl128", _BOOL, "ssl128"),
    ),
)

SSL_CLIENT_CERTIFICATES = Element(
    "sslClientCertificates",
    model=m.ClientCertificateSettings,
    field="client_certificates",
    attrs=(
        Attr(
            "clientCertificatePolicy",
            EnumOf(m.ClientCertificatePolicy),
            "client_certificate_policy",
        ),
        Attr("useActiveDirectoryMapping", _BOOL, "use_active_directory_mapping"),
        Attr(
            "validationFlags",
            FlagsOf(m.VALIDATION_FLAG_NAMES, m.ValidationFlags.NONE),
            "validation_flags",
        ),
        Attr("revocationFreshnessTime", TimeSpan(), "revocation_freshness_time"),
        Attr("revocationUrlRetrievalTimeout", TimeSpan(), "revocation_url_retrieval_timeout"),
    ),
)

AUTHENTICATION = Element(
    "authentication",
    model=m.AuthenticationSettings,
    field="authentication",
    children=(
        Element(
            "anonymousAuthentication",
            attrs=(
                Attr("enabled", _BOOL, "anonymous_enabled"),
                Attr("userName", Text(required=True), "anonymous_user_name"),
            ),
            ignored_attrs={
                "password": NOT_IMPLEMENTED,
                "defaultLogonDomain": NOT_IMPLEMENTED,
                "logonMethod": NOT_IMPLEMENTED,
            },
        ),
        Element(
            "basicAuthentication",
            attrs=(
                Attr("enabled", _BOOL, "basic_enabled"),
                Attr("defaultLogonDomain", Text(), "default_logon_domain"),
            ),
            ignored_attrs={"logonMethod": NOT_IMPLEMENTED},
        ),
        Element("clientCertAuthentication", attrs=(Attr("enabled", _BOOL, "client_cert_enabled"),)),
    ),
    ignored_children={"customAuthentication": NOT_IMPLEMENTED},
)

COMMAND_FILTERING = Element(
    "commandFiltering",
    model=m.CommandFiltering,
    field="command_filtering",
    attrs=(
        Attr("maxCommandLine", Integer(1, UINT32_MAX), "max_command_line"),
        Attr("allowUnlisted", _BOOL, "allow_unlisted"),
    ),
    collection=Collection(
        Element(
            "add",
            attrs=(
                Attr(
                    "command",
                    Text(
                        required=True,
                        case="upper",
                        pattern=r"[A-Z]{1,16}",
                        pattern_text="an FTP command name such as SYST",
                    ),
                    required=True,
                    key=True,
                ),
                Attr("allowed", _BOOL, required=True),
            ),
        ),
        field="commands",
        build=_command_filter,
    ),
)

DATA_CHANNEL_SECURITY = Element(
    "dataChannelSecurity",
    model=m.DataChannelSecurity,
    field="data_channel_security",
    attrs=(
        Attr("matchClientAddressForPort", _BOOL, "match_client_address_for_port"),
        Attr("matchClientAddressForPasv", _BOOL, "match_client_address_for_pasv"),
    ),
)

SITE_SECURITY = Element(
    "security",
    children=(
        SSL,
        SSL_CLIENT_CERTIFICATES,
        AUTHENTICATION,
        COMMAND_FILTERING,
        DATA_CHANNEL_SECURITY,
    ),
    ignored_children={"customAuthorization": NOT_IMPLEMENTED},
)

_TIMEOUT = Seconds(0, 65535)

CONNECTIONS = Element(
    "connections",
    model=m.ConnectionSettings,
    field="connections",
    attrs=(
        Attr("unauthenticatedTimeout", _TIMEOUT, "unauthenticated_timeout"),
        Attr("controlChannelTimeout", _TIMEOUT, "control_channel_timeout"),
        Attr("dataChannelTimeout", _TIMEOUT, "data_channel_timeout"),
        Attr("maxConnections", _UINT, "max_connections"),
        Attr("resetOnMaxConnections", _BOOL, "reset_on_max_connections"),
        Attr("serverListenBacklog", Integer(1, 2147483647), "server_listen_backlog"),
        Attr("minBytesPerSecond", _UINT, "min_bytes_per_second"),
        Attr("maxBandwidth", Integer(1, UINT32_MAX), "max_bandwidth"),
    ),
    ignored_attrs={"disableSocketPooling": NOT_IMPLEMENTED},
)

USER_ISOLATION = Element(
    "userIsolation",
    attrs=(
        Attr(
            "mode",
            EnumOf(
                m.UserIsolationMode,
                refused={"Custom": "it needs an FTP extensibility provider, which ftps7 lacks"},
            ),
            "user_isolation",
        ),
    ),
    ignored_children={
        "activeDirectory": NOT_IMPLEMENTED + " (ftps7 uses <ftps7><activeDirectory>)"
    },
)

DIRECTORY_BROWSE = Element(
    "directoryBrowse",
    model=m.DirectoryBrowse,
    field="directory_browse",
    attrs=(
        Attr(
            "showFlags",
            FlagsOf(m.SHOW_FLAG_NAMES, m.ShowFlags.NONE, ignored=("UseGmtTime",)),
            "show_flags",
        ),
    ),
    ignored_attrs={"virtualDirectoryTimeout": NOT_IMPLEMENTED},
)

MESSAGES = Element(
    "messages",
    model=m.Messages,
    field="messages",
    attrs=(
        Attr("greetingMessage", _TEXT, "greeting_message"),
        Attr("bannerMessage", _TEXT, "banner_message"),
        Attr("exitMessage", _TEXT, "exit_message"),
        Attr("maxClientsMessage", _TEXT, "max_clients_message"),
        Attr("suppressDefaultBanner", _BOOL, "suppress_default_banner"),
        Attr("allowLocalDetailedErrors", _BOOL, "allow_local_detailed_errors"),
        Attr("expandVariables", _BOOL, "expand_variables"),
    ),
)

FILE_HANDLING = Element(
    "fileHandling",
    model=m.FileHandling,
    field="file_handling",
    attrs=(
        Attr("keepPartialUploads", _BOOL, "keep_partial_uploads"),
        Attr("allowReplaceOnRename", _BOOL, "allow_replace_on_rename"),
        Attr("allowReadUploadsInProgress", _BOOL, "allow_read_uploads_in_progress"),
    ),
)

SITE_FIREWALL_SUPPORT = Element(
    "firewallSupport",
    model=m.SiteFirewallSupport,
    field="firewall_support",
    attrs=(
        Attr("externalIp4Address", IpAddress(version=4, empty_none=True), "external_ip4_address"),
    ),
)

#: The W3C fields of an FTP log (IIS ``logExtFileFlags``), in IIS's spelling.
LOG_FIELDS = (
    "Date", "Time", "ClientIP", "UserName", "SiteName", "ComputerName", "ServerIP",
    "Method", "UriStem", "FtpStatus", "Win32Status", "BytesSent", "BytesRecv",
    "TimeTaken", "ServerPort", "Host", "FtpSubStatus", "Session", "FullPath", "Info",
    "ClientPort",
)  # fmt: skip

LOG_FILE = Element(
    "logFile",
    model=m.LogFileSettings,
    field="log_file",
    attrs=(
        Attr("enabled", _BOOL, "enabled"),
        Attr("directory", Path(empty_none=True), "directory"),
        Attr("period", EnumOf(m.LogPeriod), "period"),
        Attr("truncateSize", Integer(1048576, 2**63 - 1), "truncate_size"),
        Attr(
            "logExtFileFlags",
            NameList({name: name for name in LOG_FIELDS}),
            "log_ext_file_flags",
        ),
        Attr("localTimeRollover", _BOOL, "local_time_rollover"),
    ),
    ignored_attrs={
        "selectiveLogging": NOT_IMPLEMENTED,
        "customLogPluginClsid": NOT_IMPLEMENTED,
        "logFormat": NOT_IMPLEMENTED,
        "logTargetW3C": NOT_IMPLEMENTED,
    },
)

FTP_SERVER = Element(
    "ftpServer",
    model=m.SiteFtpServer,
    attrs=(
        Attr("serverAutoStart", _BOOL, "server_auto_start"),
        Attr("allowUTF8", _BOOL, "allow_utf8"),
    ),
    children=(
        CONNECTIONS,
        SITE_SECURITY,
        USER_ISOLATION,
        DIRECTORY_BROWSE,
        MESSAGES,
        FILE_HANDLING,
        SITE_FIREWALL_SUPPORT,
        LOG_FILE,
    ),
    ignored_children={"customFeatures": NOT_IMPLEMENTED},
)

# --------------------------------------------------------------------------
# Sites

_WEB_SITE_CHILDREN = {
    name: NOT_FTP
    for name in (
        "limits",
        "logFile",
        "traceFailedRequestsLogging",
        "hsts",
        "applicationDefaults",
        "virtualDirectoryDefaults",
    )
}

VIRTUAL_DIRECTORY = Element(
    "virtualDirectory",
    attrs=(
        Attr("path", FtpPath(), required=True, key=True),
        # Resolved by the loader (only for FTP sites: web sites' paths are Windows paths).
        Attr("physicalPath", Text(strip=False), required=True),
    ),
    ignored_attrs={
        name: NOT_FTP for name in ("userName", "password", "logonMethod", "allowSubDirConfig")
    },
)

APPLICATION = Element(
    "application",
    attrs=(Attr("path", FtpPath(), required=True, key=True),),
    collection=Collection(VIRTUAL_DIRECTORY),
    ignored_attrs={
        name: NOT_FTP
        for name in (
            "applicationPool",
            "enabledProtocols",
            "serviceAutoStartEnabled",
            "serviceAutoStartProvider",
            "preloadEnabled",
        )
    },
    ignored_children={"virtualDirectoryDefaults": NOT_FTP},
)

BINDING = Element(
    "binding",
    attrs=(
        # Parsed by the loader, and only for ftp/ftps: other protocols use other formats.
        Attr("bindingInformation", Text(), required=True, key=True),
        Attr("protocol", Text(required=True, case="lower"), required=True, key=True),
    ),
    unknown_attrs="ignore",  # sslFlags etc. of web bindings
)

BINDINGS = Element("bindings", collection=Collection(BINDING))

SITE = Element(
    "site",
    attrs=(
        Attr("name", Text(required=True), required=True, key=True),
        Attr("id", Integer(1, UINT32_MAX), required=True),
        Attr("serverAutoStart", _BOOL),
    ),
    children=(
        BINDINGS,
        FTP_SERVER,
    ),
    collection=Collection(APPLICATION),
    ignored_children=_WEB_SITE_CHILDREN,
)

SITES = Element(
    "sites",
    children=(
        Element("siteDefaults", children=(FTP_SERVER,), ignored_children=_WEB_SITE_CHILDREN),
    ),
    collection=Collection(SITE, removable=False),
    ignored_children={"applicationDefaults": NOT_FTP, "virtualDirectoryDefaults": NOT_FTP},
)

APPLICATION_HOST = Element(
    "system.applicationHost",
    children=(SITES,),
    unknown_children=NOT_FTP,
)

# --------------------------------------------------------------------------
# Server-wide system.ftpServer

AUTHORIZATION = Element(
    "authorization",
    collection=Collection(
        Element(
            "add",
            attrs=(
                Attr("accessType", EnumOf(m.AccessType), required=True, key=True),
                Attr("users", Principals(), default=frozenset(), key=True),
                Attr("roles", Principals(), default=frozenset(), key=True),
                Attr(
                    "permissions",
                    FlagsOf(
                        {"Read": m.Permission.READ, "Write": m.Permission.WRITE}, m.Permission.NONE
                    ),
                    default=m.Permission.NONE,
                    key=True,
                ),
            ),
        ),
        build=authorization_rule,
    ),
)

IP_SECURITY = Element(
    "ipSecurity",
    model=m.IpSecurity,
    field="ip_security",
    attrs=(Attr("allowUnlisted", _BOOL, "allow_unlisted"),),
    ignored_attrs={"enableReverseDns": NOT_IMPLEMENTED},
    collection=Collection(
        Element(
            "add",
            attrs=(
                Attr("ipAddress", IpAddress(), required=True, key=True),
                Attr("subnetMask", SubnetMask(), default=None, key=True),
                Attr("allowed", _BOOL, default=False),
            ),
            ignored_attrs={"domainName": NOT_IMPLEMENTED},
        ),
        field="entries",
        build=_ip_entry,
    ),
)

REQUEST_FILTERING = Element(
    "requestFiltering",
    model=m.RequestFiltering,
    field="request_filtering",
    ignored_attrs={"allowHighBitCharacters": NOT_IMPLEMENTED},
    children=(
        Element(
            "hiddenSegments",
            collection=Collection(
                Element(
                    "add",
                    attrs=(Attr("segment", Text(required=True), required=True, key=True),),
                ),
                field="hidden_segments",
                build=lambda values: values["segment"],
            ),
        ),
        Element(
            "fileExtensions",
            attrs=(Attr("allowUnlisted", _BOOL, "file_extensions_allow_unlisted"),),
            collection=Collection(
                Element(
                    "add",
                    attrs=(
                        Attr("fileExtension", FileExtension(), required=True, key=True),
                        Attr("allowed", _BOOL, default=True),
                    ),
                ),
                field="file_extensions",
                build=_extension_rule,
            ),
        ),
        Element(
            "denyUrlSequences",
            collection=Collection(
                Element(
                    "add",
                    attrs=(Attr("sequence", Text(required=True), required=True, key=True),),
                ),
                field="deny_url_sequences",
                build=lambda values: values["sequence"],
            ),
        ),
        Element(
            "requestLimits",
            attrs=(
                Attr("maxAllowedContentLength", _UINT, "max_allowed_content_length"),
                Attr("maxUrl", Integer(1, UINT32_MAX), "max_url"),
            ),
        ),
    ),
)

SERVER_SECURITY = Element(
    "security",
    children=(
        IP_SECURITY,
        REQUEST_FILTERING,
        Element(
            "authentication",
            children=(
                Element(
                    "denyByFailure",
                    model=m.DenyByFailure,
                    field="deny_by_failure",
                    attrs=(
                        Attr("enabled", _BOOL, "enabled"),
                        Attr("maxFailure", Integer(1, UINT32_MAX), "max_failure"),
                        Attr("entryExpiration", TimeSpan(minimum=1), "entry_expiration"),
                        Attr("loggingOnlyMode", _BOOL, "logging_only_mode"),
                    ),
                ),
            ),
        ),
        AUTHORIZATION,
    ),
)

_DATA_PORT = Integer(1024, 65535, also=(0,))

SYSTEM_FTP_SERVER = Element(
    "system.ftpServer",
    model=m.ServerFtpSettings,
    children=(
        Element(
            "firewallSupport",
            attrs=(
                Attr("lowDataChannelPort", _DATA_PORT, "low_data_channel_port"),
                Attr("highDataChannelPort", _DATA_PORT, "high_data_channel_port"),
            ),
        ),
        SERVER_SECURITY,
        Element(
            "serverRuntime",
            children=(
                Element(
                    "hostNameSupport",
                    attrs=(Attr("useDomainNameAsHostName", _BOOL, "use_domain_name_as_host_name"),),
                ),
            ),
        ),
        Element(
            "caching",
            children=(
                Element(
                    "credentialsCache",
                    model=m.CredentialsCache,
                    field="credentials_cache",
                    attrs=(
                        Attr("enabled", _BOOL, "enabled"),
                        Attr("flushInterval", Seconds(5, 604800), "flush_interval"),
                    ),
                ),
            ),
            ignored_children={"authorizationCache": NOT_IMPLEMENTED},
        ),
    ),
    ignored_children={
        "log": NOT_IMPLEMENTED,
        "logging": NOT_IMPLEMENTED,
        "providerDefinitions": NOT_IMPLEMENTED,
    },
)

# --------------------------------------------------------------------------
# <location path="Site/sub">: only authorization is supported per location.

_PER_LOCATION = (
    "not supported per location in ftps7 (set it in the top-level <system.ftpServer>); ignored"
)

LOCATION = Element(
    "location",
    attrs=(Attr("path", Text()),),
    silent_attrs=frozenset({"overrideMode", "allowOverride", "inheritInChildApplications"}),
    children=(
        Element(
            "system.ftpServer",
            children=(
                Element(
                    "security",
                    children=(AUTHORIZATION,),
                    ignored_children={
                        name: _PER_LOCATION
                        for name in ("ipSecurity", "requestFiltering", "authentication")
                    },
                ),
            ),
            ignored_children={
                name: _PER_LOCATION
                for name in (
                    "firewallSupport",
                    "serverRuntime",
                    "caching",
                    "log",
                    "providerDefinitions",
                )
            },
        ),
    ),
    unknown_children=NOT_FTP,
)

# --------------------------------------------------------------------------
# <ftps7>: what Linux needs that IIS takes from Windows

FTPS7 = Element(
    "ftps7",
    children=(
        Element(
            "certificateStore",
            attrs=(
                Attr("path", Path()),
                Attr("autoCreate", Text(empty_none=True)),
            ),
        ),
        Element(
            "localAccounts",
            attrs=(
                Attr("source", EnumOf(m.AccountSource)),
                Attr("path", Path()),
                Attr("service", Text(required=True)),
            ),
        ),
        Element(
            "activeDirectory",
            model=m.ActiveDirectorySettings,
            attrs=(
                Attr("url", LdapUrl(), "url", required=True),
                Attr("domain", Text(), "domain"),
                Attr("upnSuffix", Text(case="lower"), "upn_suffix"),
                Attr("baseDn", Text(), "base_dn"),
                Attr("bindDn", Text(empty_none=True), "bind_dn"),
                Attr("bindPasswordFile", Path(empty_none=True), "bind_password_file"),
                Attr("startTls", _BOOL, "start_tls"),
                Attr("caFile", Path(empty_none=True), "ca_file"),
                Attr("timeout", TimeSpan(minimum=1), "timeout"),
                Attr(
                    "certificateMapping",
                    NameList({method.value: method for method in m.CertificateMappingMethod}),
                    "certificate_mapping",
                ),
                Attr(
                    "userCertificateMatch",
                    EnumOf(m.UserCertificateMatch),
                    "user_certificate_match",
                ),
            ),
        ),
        Element(
            "tls",
            model=m.TlsSettings,
            attrs=(
                Attr(
                    "minimumVersion",
                    Choice(("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")),
                    "minimum_version",
                ),
                Attr("ciphers", Ciphers(), "ciphers"),
                Attr("requireSessionReuse", _BOOL, "require_session_reuse"),
                Attr("handshakeTimeout", TimeSpan(minimum=1), "handshake_timeout"),
            ),
        ),
        Element(
            "process",
            model=m.ProcessSettings,
            attrs=(
                Attr("workers", Integer(1, 64), "workers"),
                Attr("transferThreads", Integer(0, 1024), "transfer_threads"),
            ),
        ),
        Element(
            "proxyProtocol",
            model=m.ProxyProtocolSettings,
            attrs=(
                Attr("enabled", _BOOL, "enabled"),
                Attr("trustedProxies", Networks(), "trusted_proxies"),
            ),
        ),
    ),
)

# --------------------------------------------------------------------------
# The document

CONFIGURATION = Element(
    "configuration",
    children=(APPLICATION_HOST, SYSTEM_FTP_SERVER, FTPS7),
    collection=Collection(LOCATION, removable=False),
    silent_attrs=frozenset({"xmlns"}),
    unknown_children="unknown section; ignored",
)

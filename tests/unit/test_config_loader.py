"""The configuration loader: the IIS-shaped XML contract of CONFIG.md, without sockets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ftps7.config import ConfigError, ConfigErrors, load_config
from ftps7.config import model as m

THUMB = "57686F6120447564652C2049495320526F636B73"


def site_xml(
    name: str = "Default FTP Site",
    site_id: int = 1,
    bindings: str = '<binding protocol="ftp" bindingInformation="127.0.0.1:2121:" />',
    ftp_server: str = "",
    root: str = "root",
    extra: str = "",
    attrs: str = "",
) -> str:
    return f"""
      <site name="{name}" id="{site_id}"{attrs}>
        <application path="/">
          <virtualDirectory path="/" physicalPath="{root}" />{extra}
        </application>
        <bindings>
          {bindings}
        </bindings>
        {f"<ftpServer>{ftp_server}</ftpServer>" if ftp_server else ""}
      </site>"""


def document(sites: str | None = None, before_sites: str = "", after: str = "") -> str:
    sites = site_xml() if sites is None else sites
    return f"""<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <system.applicationHost>
    <sites>{before_sites}{sites}
    </sites>
  </system.applicationHost>{after}
</configuration>
"""


def write(tmp_path: Path, text: str, name: str = "ftps7.config") -> str:
    (tmp_path / "root").mkdir(exist_ok=True)
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based line of the ``occurrence``-th line containing ``needle``."""
    seen = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            seen += 1
            if seen == occurrence:
                return number
    raise AssertionError(f"{needle!r} not in document")


def load_errors(
    tmp_path: Path, text: str, environ: dict[str, str] | None = None
) -> list[ConfigError]:
    path = write(tmp_path, text)
    with pytest.raises(ConfigErrors) as caught:
        load_config(path, environ=environ or {})
    return caught.value.errors


def only_error(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> ConfigError:
    errors = load_errors(tmp_path, text, environ)
    assert len(errors) == 1, "\n".join(map(str, errors))
    return errors[0]


def load(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> m.ServerConfig:
    return load_config(write(tmp_path, text), environ=environ or {})


# --------------------------------------------------------------------------
# Valid files


def test_minimal_file_gets_every_default(tmp_path: Path) -> None:
    config = load(tmp_path, document())
    assert config.path == str(tmp_path / "ftps7.config")
    (site,) = config.sites
    assert (site.name, site.id, site.server_auto_start) == ("Default FTP Site", 1, True)
    assert site.bindings == (m.Binding("ftp", "127.0.0.1", 2121, "", line=site.bindings[0].line),)
    assert not site.bindings[0].implicit
    assert site.virtual_directories == (m.VirtualDirectory("/", str(tmp_path / "root")),)
    assert site.ftp_server == m.SiteFtpServer()
    assert config.site_defaults == m.SiteFtpServer()
    assert config.server == m.ServerFtpSettings()
    assert config.authorization == ()
    assert config.ftps7 == m.Ftps7Settings(
        certificate_store=m.CertificateStoreSettings(path=str(tmp_path / "certs")),
        local_accounts=m.LocalAccountsSettings(path=str(tmp_path / "users")),
    )
    assert config.warnings == ()


FULL_SITE_FTP_SERVER = f"""
  <connections unauthenticatedTimeout="10" controlChannelTimeout="300" dataChannelTimeout="45"
      maxConnections="100" resetOnMaxConnections="true" serverListenBacklog="128"
      minBytesPerSecond="0" maxBandwidth="1000000" />
  <security>
    <ssl serverCertHash="{THUMB.lower()}" serverCertStoreName="WebHosting"
        controlChannelPolicy="sslrequirecredentialsonly" dataChannelPolicy="SslAllow"
        ssl128="TRUE" />
    <sslClientCertificates clientCertificatePolicy="CertRequire" useActiveDirectoryMapping="true"
        validationFlags="NoRevocationCheck, CertNoUsageCheck"
        revocationFreshnessTime="1.00:00:00" revocationUrlRetrievalTimeout="00:00:15" />
    <authentication>
      <anonymousAuthentication enabled="true" userName="ftp" />
      <basicAuthentication enabled="true" defaultLogonDomain="EXAMPLE" />
      <clientCertAuthentication enabled="true" />
    </authentication>
    <commandFiltering maxCommandLine="1024" allowUnlisted="false">
      <add command="retr" allowed="true" />
      <add command="STOR" allowed="false" />
    </commandFiltering>
    <dataChannelSecurity matchClientAddressForPort="false" matchClientAddressForPasv="false" />
  </security>
  <userIsolation mode="IsolateAllDirectories" />
  <directoryBrowse showFlags="StyleUnix,DisplayVirtualDirectories , LongDate" />
  <messages greetingMessage="Hi %UserName%" bannerMessage="banner" exitMessage="bye"
      maxClientsMessage="busy" suppressDefaultBanner="true" allowLocalDetailedErrors="false"
      expandVariables="true" />
  <fileHandling keepPartialUploads="true" allowReplaceOnRename="true"
      allowReadUploadsInProgress="true" />
  <firewallSupport externalIp4Address="192.0.2.10" />
  <logFile enabled="true" directory="logs" period="Hourly" truncateSize="2097152"
      logExtFileFlags="Date, Time, ClientIP, Host" localTimeRollover="true" />
"""

FULL_SERVER = """
  <system.ftpServer>
    <firewallSupport lowDataChannelPort="50000" highDataChannelPort="50010" />
    <security>
      <ipSecurity allowUnlisted="false">
        <add ipAddress="127.0.0.1" allowed="true" />
        <add ipAddress="169.254.0.0" subnetMask="255.255.0.0" />
        <add ipAddress="2001:db8::1" subnetMask="64" allowed="true" />
      </ipSecurity>
      <requestFiltering>
        <hiddenSegments><add segment="_vti_bin" /></hiddenSegments>
        <fileExtensions allowUnlisted="false">
          <add fileExtension=".EXE" allowed="false" />
          <add fileExtension="txt" allowed="true" />
        </fileExtensions>
        <denyUrlSequences><add sequence=".." /></denyUrlSequences>
        <requestLimits maxAllowedContentLength="1000000" maxUrl="1024" />
      </requestFiltering>
      <authentication>
        <denyByFailure enabled="true" maxFailure="5" entryExpiration="00:01:00"
            loggingOnlyMode="true" />
      </authentication>
      <authorization>
        <add accessType="Allow" users="*" permissions="Read" />
      </authorization>
    </security>
    <serverRuntime><hostNameSupport useDomainNameAsHostName="true" /></serverRuntime>
    <caching><credentialsCache enabled="false" flushInterval="300" /></caching>
  </system.ftpServer>
"""

FULL_FTPS7 = """
  <ftps7>
    <certificateStore path="/srv/ftps7/certs" autoCreate="my server" />
    <localAccounts source="pam" service="ftp-pam" />
    <activeDirectory url="ldaps://dc.example.com:636" domain="EXAMPLE" upnSuffix="Example.COM"
        baseDn="dc=example,dc=com" bindDn="cn=svc,dc=example,dc=com"
        bindPasswordFile="%SECRETS%/bind.pw" caFile="ca.pem" timeout="00:00:07"
        certificateMapping="IssuerSerial, upn, SKI" userCertificateMatch="gser" />
    <tls minimumVersion="tlsv1.3" ciphers="ECDHE+AESGCM" requireSessionReuse="true"
        handshakeTimeout="00:00:10" />
    <process workers="4" transferThreads="8" />
    <proxyProtocol enabled="true" trustedProxies="127.0.0.1, 10.0.0.0/8 , ::1" />
  </ftps7>
"""


def test_full_file_sets_every_element(tmp_path: Path) -> None:
    (tmp_path / "pub").mkdir()
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "bind.pw").write_text("x")
    (tmp_path / "ca.pem").write_text("x")
    sites = site_xml(
        bindings="""
          <binding protocol="ftp" bindingInformation="*:21:" />
          <binding protocol="FTP" bindingInformation="*:21:FTP.Example.COM" />
          <binding protocol="ftp" bindingInformation="127.0.0.1:990:" />
          <binding protocol="ftps" bindingInformation="[::1]:2990:" />
          <binding protocol="http" bindingInformation="*:80:" sslFlags="0" />""",
        ftp_server=FULL_SITE_FTP_SERVER,
        extra='\n          <virtualDirectory path="/pub//docs/" physicalPath="pub" />',
        attrs=' serverAutoStart="false"',
    )
    after = (
        FULL_SERVER
        + """
  <location path="Default FTP Site/pub" overrideMode="Allow">
    <system.ftpServer><security><authorization>
      <add accessType="Deny" users="Bob, carol" roles="Guests" permissions="Write" />
    </authorization></security></system.ftpServer>
  </location>"""
        + FULL_FTPS7
    )
    config = load(tmp_path, document(sites, after=after), {"SECRETS": str(tmp_path / "secrets")})
    assert config.warnings == ()
    (site,) = config.sites
    assert site.server_auto_start is False
    assert [(b.protocol, b.ip, b.port, b.host, b.implicit) for b in site.bindings] == [
        ("ftp", "*", 21, "", False),
        ("ftp", "*", 21, "ftp.example.com", False),
        ("ftp", "127.0.0.1", 990, "", True),
        ("ftps", "::1", 2990, "", True),
    ]
    assert [d.path for d in site.virtual_directories] == ["/", "/pub/docs"]
    assert site.virtual_directories[1].physical_path == str(tmp_path / "pub")
    ftp = site.ftp_server
    assert ftp.connections == m.ConnectionSettings(10.0, 300.0, 45.0, 100, True, 128, 0, 1000000)
    assert ftp.ssl == m.SslSettings(
        THUMB,
        "WEBHOSTING",
        m.ControlChannelPolicy.SSL_REQUIRE_CREDENTIALS_ONLY,
        m.DataChannelPolicy.SSL_ALLOW,
        True,
    )
    assert ftp.client_certificates == m.ClientCertificateSettings(
        m.ClientCertificatePolicy.CERT_REQUIRE,
        True,
        m.ValidationFlags.NO_REVOCATION_CHECK | m.ValidationFlags.CERT_NO_USAGE_CHECK,
        86400.0,
        15.0,
    )
    assert ftp.authentication == m.AuthenticationSettings(True, "ftp", True, "EXAMPLE", True)
    assert ftp.command_filtering == m.CommandFiltering(
        1024, False, (m.CommandFilter("RETR", True), m.CommandFilter("STOR", False))
    )
    assert not ftp.command_filtering.is_allowed("LIST")
    assert ftp.data_channel_security == m.DataChannelSecurity(False, False)
    assert ftp.user_isolation is m.UserIsolationMode.ISOLATE_ALL_DIRECTORIES
    assert ftp.directory_browse.show_flags == (
        m.ShowFlags.STYLE_UNIX | m.ShowFlags.DISPLAY_VIRTUAL_DIRECTORIES | m.ShowFlags.LONG_DATE
    )
    assert ftp.messages == m.Messages("Hi %UserName%", "banner", "bye", "busy", True, False, True)
    assert ftp.file_handling == m.FileHandling(True, True, True)
    assert ftp.firewall_support.external_ip4_address == "192.0.2.10"
    assert ftp.log_file == m.LogFileSettings(
        True, str(tmp_path / "logs"), m.LogPeriod.HOURLY, 2097152,
        ("Date", "Time", "ClientIP", "Host"), True,
    )  # fmt: skip

    server = config.server
    assert (server.low_data_channel_port, server.high_data_channel_port) == (50000, 50010)
    assert server.ip_security == m.IpSecurity(
        False,
        (
            m.IpSecurityEntry("127.0.0.1", None, True),
            m.IpSecurityEntry("169.254.0.0", "255.255.0.0", False),
            m.IpSecurityEntry("2001:db8::1", "64", True),
        ),
    )
    assert server.request_filtering == m.RequestFiltering(
        ("_vti_bin",),
        False,
        (m.FileExtensionRule(".exe", False), m.FileExtensionRule(".txt", True)),
        ("..",),
        1000000,
        1024,
    )
    assert server.deny_by_failure == m.DenyByFailure(True, 5, 60.0, True)
    assert server.use_domain_name_as_host_name is True
    assert server.credentials_cache == m.CredentialsCache(False, 300.0)

    assert dict(config.authorization) == {
        m.LocationKey(None, "/"): m.AuthorizationSection(
            False,
            (m.AuthorizationRule(m.AccessType.ALLOW, frozenset({"*"}), frozenset(),
                                 m.Permission.READ),),
        ),
        m.LocationKey("default ftp site", "/pub"): m.AuthorizationSection(
            False,
            (m.AuthorizationRule(m.AccessType.DENY, frozenset({"bob", "carol"}),
                                 frozenset({"guests"}), m.Permission.WRITE),),
        ),
    }  # fmt: skip

    ftps7 = config.ftps7
    assert ftps7.certificate_store == m.CertificateStoreSettings("/srv/ftps7/certs", "my server")
    assert ftps7.local_accounts == m.LocalAccountsSettings(m.AccountSource.PAM, None, "ftp-pam")
    assert ftps7.active_directory == m.ActiveDirectorySettings(
        url="ldaps://dc.example.com:636",
        domain="EXAMPLE",
        upn_suffix="example.com",
        base_dn="dc=example,dc=com",
        bind_dn="cn=svc,dc=example,dc=com",
        bind_password_file=str(tmp_path / "secrets" / "bind.pw"),
        start_tls=False,
        ca_file=str(tmp_path / "ca.pem"),
        timeout=7.0,
        certificate_mapping=(
            m.CertificateMappingMethod.ISSUER_SERIAL,
            m.CertificateMappingMethod.UPN,
            m.CertificateMappingMethod.SKI,
        ),
        user_certificate_match=m.UserCertificateMatch.GSER,
    )
    assert ftps7.tls == m.TlsSettings("TLSv1.3", "ECDHE+AESGCM", True, 10.0)
    assert ftps7.process.workers == 4
    assert ftps7.process.transfer_threads == 8
    assert ftps7.proxy_protocol == m.ProxyProtocolSettings(
        True, ("127.0.0.1/32", "10.0.0.0/8", "::1/128")
    )


def test_site_defaults_are_inherited_attribute_by_attribute(tmp_path: Path) -> None:
    defaults = f"""
      <siteDefaults>
        <ftpServer allowUTF8="false">
          <security>
            <ssl serverCertHash="{THUMB}" dataChannelPolicy="SslAllow" />
            <commandFiltering maxCommandLine="2000">
              <add command="SYST" allowed="false" />
              <add command="SITE" allowed="false" />
            </commandFiltering>
          </security>
          <messages bannerMessage="from defaults" />
        </ftpServer>
      </siteDefaults>"""
    sites = site_xml(
        ftp_server="""
          <security>
            <ssl controlChannelPolicy="SslAllow" />
            <commandFiltering allowUnlisted="false">
              <remove command="site" />
              <add command="HELP" allowed="true" />
            </commandFiltering>
          </security>"""
    ) + site_xml(
        name="Other",
        site_id=2,
        bindings='<binding protocol="ftp" bindingInformation="127.0.0.1:2121:other" />',
        ftp_server="""<security><commandFiltering><clear /></commandFiltering></security>
                      <messages bannerMessage="" />""",
    )
    config = load(tmp_path, document(sites, before_sites=defaults))
    first, second = config.sites
    assert first.ftp_server.ssl == m.SslSettings(
        THUMB, "MY", m.ControlChannelPolicy.SSL_ALLOW, m.DataChannelPolicy.SSL_ALLOW, False
    )
    assert first.ftp_server.allow_utf8 is False
    assert first.ftp_server.messages.banner_message == "from defaults"
    assert first.ftp_server.command_filtering == m.CommandFiltering(
        2000, False, (m.CommandFilter("SYST", False), m.CommandFilter("HELP", True))
    )
    assert second.ftp_server.ssl.control_channel_policy is m.ControlChannelPolicy.SSL_REQUIRE
    assert second.ftp_server.ssl.server_cert_hash == THUMB
    assert second.ftp_server.command_filtering == m.CommandFiltering(2000, True, ())
    assert second.ftp_server.messages.banner_message == ""
    # The merged siteDefaults are the server-level ("global") settings.
    assert config.site_defaults.ssl.server_cert_hash == THUMB
    assert config.site_defaults.command_filtering.commands == (
        m.CommandFilter("SYST", False),
        m.CommandFilter("SITE", False),
    )


def test_thumbprint_copied_from_the_certificate_dialog_is_normalised(tmp_path: Path) -> None:
    pasted = "\u200e57 68 6f 61 20 44 75 64 65 2c 20 49 49 53 20 52 6f 63 6b 73"
    config = load(
        tmp_path,
        document(site_xml(ftp_server=f'<security><ssl serverCertHash="{pasted}" /></security>')),
    )
    assert config.sites[0].ftp_server.ssl.server_cert_hash == THUMB


def test_paths_expand_environment_and_are_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "data" / "site").mkdir(parents=True)
    text = document(site_xml(root="%DATA%/site"))
    config = load(tmp_path, text, {"DATA": "data"})
    assert config.sites[0].root.physical_path == str(tmp_path / "data" / "site")


def test_virtual_directories_of_applications_are_joined_and_ordered(tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
    sites = """
      <site name="S" id="7">
        <application path="/app" applicationPool="DefaultAppPool">
          <virtualDirectory path="/" physicalPath="a" />
          <virtualDirectory path="/x" physicalPath="b" />
        </application>
        <application path="/">
          <virtualDirectory path="/" physicalPath="c" />
        </application>
        <bindings><binding protocol="ftp" bindingInformation="*:2121:" /></bindings>
      </site>"""
    config = load(tmp_path, document(sites))
    site = config.sites[0]
    assert [(d.path, os.path.basename(d.physical_path)) for d in site.virtual_directories] == [
        ("/", "c"),
        ("/app", "a"),
        ("/app/x", "b"),
    ]
    assert site.root.path == "/"
    assert any("applicationPool" in warning for warning in config.warnings)


def test_web_bindings_and_web_only_sites_are_left_alone(tmp_path: Path) -> None:
    sites = (
        site_xml(
            bindings="""<binding protocol="http" bindingInformation="*:80:" />
                    <binding protocol="net.tcp" bindingInformation="808:*" />
                    <binding protocol="ftp" bindingInformation="*:2121:" />"""
        )
        + """
      <site name="Default Web Site" id="2">
        <application path="/">
          <virtualDirectory path="/" physicalPath="%SystemDrive%\\inetpub\\wwwroot" />
        </application>
        <bindings><binding protocol="https" bindingInformation="*:443:" sslFlags="1" /></bindings>
      </site>"""
    )
    config = load(tmp_path, document(sites))
    assert [site.name for site in config.sites] == ["Default FTP Site"]
    assert [b.port for b in config.sites[0].bindings] == [2121]
    # no warning for the mixed-in web bindings; one for the site that is not served
    (warning,) = config.warnings
    assert "Default Web Site" in warning and "not served" in warning


def test_endpoints_group_started_sites(tmp_path: Path) -> None:
    (tmp_path / "r2").mkdir()
    sites = (
        site_xml(bindings='<binding protocol="ftp" bindingInformation="*:2121:" />')
        + site_xml(
            name="Two",
            site_id=2,
            root="r2",
            bindings='<binding protocol="ftp" bindingInformation="*:2121:two.example" />',
        )
        + site_xml(
            name="Off",
            site_id=3,
            root="r2",
            attrs=' serverAutoStart="false"',
            bindings='<binding protocol="ftp" bindingInformation="*:2122:" />',
        )
    )
    config = load(tmp_path, document(sites))
    endpoints = config.endpoints()
    assert list(endpoints) == [("*", 2121)]
    assert [site.name for site in endpoints[("*", 2121)]] == ["Default FTP Site", "Two"]


def test_authorization_from_locations(tmp_path: Path) -> None:
    after = """
  <system.ftpServer><security><authorization>
    <add accessType="Allow" users="*" permissions="Read" />
  </authorization></security></system.ftpServer>
  <location path="Default FTP Site">
    <system.ftpServer><security><authorization>
      <add accessType="Allow" roles=" FtpUsers , admins" permissions="Read,Write" />
    </authorization></security></system.ftpServer>
  </location>
  <location path="default ftp site/private/">
    <system.ftpServer><security><authorization>
      <clear />
      <add accessType="Allow" users="alice" permissions="read" />
    </authorization></security></system.ftpServer>
    <system.webServer><directoryBrowse enabled="true" /></system.webServer>
  </location>
  <location path="Default FTP Site/pub">
    <system.ftpServer><security><authorization>
      <remove users="*" accessType="Allow" />
      <add accessType="Deny" users="?" permissions="Write" />
    </authorization></security></system.ftpServer>
  </location>"""
    config = load(tmp_path, document(after=after))
    sections = dict(config.authorization)
    everyone_read = m.AuthorizationRule(
        m.AccessType.ALLOW, frozenset({"*"}), frozenset(), m.Permission.READ
    )
    users_rw = m.AuthorizationRule(
        m.AccessType.ALLOW, frozenset(), frozenset({"ftpusers", "admins"}),
        m.Permission.READ | m.Permission.WRITE,
    )  # fmt: skip
    assert sections[m.LocationKey(None, "/")] == m.AuthorizationSection(False, (everyone_read,))
    assert sections[m.LocationKey("default ftp site", "/")] == m.AuthorizationSection(
        False, (users_rw,)
    )
    assert sections[m.LocationKey("default ftp site", "/private")] == m.AuthorizationSection(
        True,
        (
            m.AuthorizationRule(
                m.AccessType.ALLOW, frozenset({"alice"}), frozenset(), m.Permission.READ
            ),
        ),
    )
    # <remove> of an inherited rule: given as the full effective list with clear=True.
    assert sections[m.LocationKey("default ftp site", "/pub")] == m.AuthorizationSection(
        True,
        (users_rw,
         m.AuthorizationRule(m.AccessType.DENY, frozenset({"?"}), frozenset(), m.Permission.WRITE)),
    )  # fmt: skip
    assert any("system.webServer" in warning for warning in config.warnings)


def test_location_for_a_web_only_site_is_ignored_with_a_warning(tmp_path: Path) -> None:
    sites = (
        site_xml()
        + """
      <site name="Web" id="2">
        <bindings><binding protocol="http" bindingInformation="*:80:" /></bindings>
      </site>"""
    )
    after = """
  <location path="Web">
    <system.ftpServer><security><authorization>
      <add accessType="Allow" users="*" permissions="Read" />
    </authorization></security></system.ftpServer>
  </location>"""
    config = load(tmp_path, document(sites, after=after))
    assert config.authorization == ()
    assert any(
        "'Web'" in warning and "authorization is ignored" in warning for warning in config.warnings
    )


def test_local_accounts_and_store_defaults_and_overrides(tmp_path: Path) -> None:
    after = """
  <ftps7>
    <certificateStore path="%STATE%/certs" />
    <localAccounts path="accounts.db" />
  </ftps7>"""
    config = load(tmp_path, document(after=after), {"STATE": "/var/lib/ftps7"})
    assert config.ftps7.certificate_store == m.CertificateStoreSettings("/var/lib/ftps7/certs")
    assert config.ftps7.local_accounts == m.LocalAccountsSettings(
        m.AccountSource.FILE, str(tmp_path / "accounts.db")
    )
    assert config.ftps7.active_directory is None


def test_the_example_configuration_loads_cleanly() -> None:
    example = Path(__file__).resolve().parents[2] / "etc" / "ftps7.config"
    config = load_config(str(example), environ={})
    assert config.warnings == ()
    (site,) = config.sites
    assert site.name == "Default FTP Site" and site.id == 1
    assert [(b.protocol, b.ip, b.port, b.host, b.implicit) for b in site.bindings] == [
        ("ftp", "127.0.0.1", 2121, "", False),
        ("ftps", "127.0.0.1", 9990, "", True),
    ]
    assert site.root.physical_path == str(example.parent / "ftproot")
    ssl = site.ftp_server.ssl
    assert ssl.server_cert_hash is None
    assert ssl.control_channel_policy is m.ControlChannelPolicy.SSL_REQUIRE
    assert ssl.data_channel_policy is m.DataChannelPolicy.SSL_REQUIRE
    assert config.ftps7.certificate_store.auto_create == "ftps7 example"
    assert config.ftps7.local_accounts.path == str(example.parent / "users")
    auth = site.ftp_server.authentication
    assert auth.basic_enabled and not auth.anonymous_enabled
    ((key, section),) = config.authorization
    assert key == m.LocationKey("default ftp site", "/")
    assert section.rules == (
        m.AuthorizationRule(
            m.AccessType.ALLOW, frozenset(), frozenset({"ftpusers"}),
            m.Permission.READ | m.Permission.WRITE,
        ),
    )  # fmt: skip


# --------------------------------------------------------------------------
# Errors: each names file, line, element path, attribute, value and what is accepted

SITE_PATH = "configuration/system.applicationHost/sites/site[@name='Default FTP Site']"


def test_typo_element(tmp_path: Path) -> None:
    text = document(site_xml(ftp_server="<security><sssl /></security>"))
    error = only_error(tmp_path, text)
    assert error.file == str(tmp_path / "ftps7.config")
    assert error.line == line_of(text, "<sssl")
    assert error.element == f"{SITE_PATH}/ftpServer/security"
    assert "sssl" in error.message
    assert (
        error.accepted is not None
        and "ssl" in error.accepted
        and "authentication" in error.accepted
    )
    assert str(error).startswith(
        f"{tmp_path / 'ftps7.config'}:{error.line}: <{SITE_PATH}/ftpServer/security>"
    )


def test_typo_attribute(tmp_path: Path) -> None:
    text = document(
        site_xml(ftp_server='<security><ssl controlChannelPolcy="SslAllow" /></security>')
    )
    error = only_error(tmp_path, text)
    assert error.line == line_of(text, "controlChannelPolcy")
    assert error.element == f"{SITE_PATH}/ftpServer/security/ssl"
    assert (error.attribute, error.value) == ("controlChannelPolcy", "SslAllow")
    assert error.accepted is not None and "controlChannelPolicy" in error.accepted


def test_bad_enum(tmp_path: Path) -> None:
    text = document(
        site_xml(ftp_server='<security>\n<ssl controlChannelPolicy="SslRequired" />\n</security>')
    )
    error = only_error(tmp_path, text)
    assert error.line == line_of(text, "SslRequired")
    assert error.element == f"{SITE_PATH}/ftpServer/security/ssl"
    assert (error.attribute, error.value) == ("controlChannelPolicy", "SslRequired")
    assert error.accepted == ("SslAllow", "SslRequire", "SslRequireCredentialsOnly")
    assert str(error) == (
        f"{tmp_path / 'ftps7.config'}:{error.line}: <{SITE_PATH}/ftpServer/security/ssl> "
        "attribute controlChannelPolicy: bad value 'SslRequired'; "
        "accepted: SslAllow, SslRequire, SslRequireCredentialsOnly"
    )


def test_bad_bool(tmp_path: Path) -> None:
    text = document(site_xml(ftp_server='<fileHandling keepPartialUploads="yes" />'))
    error = only_error(tmp_path, text)
    assert error.line == line_of(text, "keepPartialUploads")
    assert error.element == f"{SITE_PATH}/ftpServer/fileHandling"
    assert (error.attribute, error.value, error.accepted) == (
        "keepPartialUploads",
        "yes",
        ("true", "false"),
    )


def test_bad_port(tmp_path: Path) -> None:
    text = document(site_xml(bindings='<binding protocol="ftp" bindingInformation="*:70000:" />'))
    error = only_error(tmp_path, text)
    assert error.line == line_of(text, "70000")
    assert error.element == f"{SITE_PATH}/bindings/binding[@bindingInformation='*:70000:']"
    assert (error.attribute, error.value) == ("bindingInformation", "*:70000:")
    assert error.accepted == ("port 1..65535",)


@pytest.mark.parametrize(
    ("information", "fragment"),
    [
        ("127.0.0.1:21", "IP:PORT:HOST"),
        ("::1:21:", "brackets"),
        ("300.1.1.1:21:", "IP address"),
        ("*:21:bad host", "host name"),
        ("[::1:21:", "IP:PORT:HOST"),
    ],
)
def test_bad_binding_information(tmp_path: Path, information: str, fragment: str) -> None:
    text = document(
        site_xml(bindings=f'<binding protocol="ftp" bindingInformation="{information}" />')
    )
    error = only_error(tmp_path, text)
    assert error.attribute == "bindingInformation" and error.value == information
    assert fragment in error.message or fragment in " ".join(error.accepted or ())


def test_bad_data_channel_ports(tmp_path: Path) -> None:
    after = """
  <system.ftpServer>
    <firewallSupport lowDataChannelPort="80" highDataChannelPort="50000" />
  </system.ftpServer>"""
    error = only_error(tmp_path, document(after=after))
    assert (error.attribute, error.value) == ("lowDataChannelPort", "80")
    assert error.accepted == ("0", "1024..65535")
    after = after.replace('"80"', '"60000"')
    error = only_error(tmp_path, document(after=after))
    assert error.element == "configuration/system.ftpServer/firewallSupport"
    assert "above" in error.message


def test_bad_thumbprint(tmp_path: Path) -> None:
    text = document(site_xml(ftp_server='<security><ssl serverCertHash="12 34 XY" /></security>'))
    error = only_error(tmp_path, text)
    assert error.line == line_of(text, "serverCertHash")
    assert (error.attribute, error.value) == ("serverCertHash", "12 34 XY")
    assert error.accepted == ("40 hexadecimal digits (a SHA-1 thumbprint)",)


def test_missing_physical_path(tmp_path: Path) -> None:
    text = document(site_xml(root="nowhere"))
    error = only_error(tmp_path, text)
    assert error.line == line_of(text, "nowhere")
    assert error.element == f"{SITE_PATH}/application[@path='/']/virtualDirectory[@path='/']"
    assert (error.attribute, error.value) == ("physicalPath", "nowhere")
    assert str(tmp_path / "nowhere") in error.message and "does not exist" in error.message
    assert error.accepted == ("an existing directory",)


def test_physical_path_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    error = only_error(tmp_path, document(site_xml(root="file")))
    assert "is not a directory" in error.message


def test_missing_required_attribute_and_root(tmp_path: Path) -> None:
    sites = """
      <site name="S" id="1">
        <application path="/pub"><virtualDirectory path="/" /></application>
        <bindings><binding protocol="ftp" bindingInformation="*:21:" /></bindings>
      </site>"""
    text = document(sites)
    root_error, missing = load_errors(tmp_path, text)
    assert (missing.attribute, missing.message) == ("physicalPath", "required attribute is missing")
    assert missing.line == line_of(text, "<virtualDirectory")
    assert root_error.line == line_of(text, "<site ")
    assert 'application path="/"' in root_error.message


def test_duplicate_site_name_and_id(tmp_path: Path) -> None:
    (tmp_path / "r2").mkdir()
    text = document(
        site_xml()
        + site_xml(name="default ftp SITE", site_id=2, root="r2",
                   bindings='<binding protocol="ftp" bindingInformation="*:1:" />')
        + site_xml(name="Third", site_id=1, root="r2",
                   bindings='<binding protocol="ftp" bindingInformation="*:2:" />')
    )  # fmt: skip
    name_error, id_error = load_errors(tmp_path, text)
    assert (name_error.attribute, name_error.value) == ("name", "default ftp SITE")
    assert name_error.line == line_of(text, 'name="default ftp SITE"')
    assert "duplicate site name" in name_error.message
    assert (id_error.attribute, id_error.value) == ("id", "1")
    assert id_error.line == line_of(text, 'name="Third"')
    assert "duplicate site id" in id_error.message


def test_duplicate_binding(tmp_path: Path) -> None:
    (tmp_path / "r2").mkdir()
    text = document(
        site_xml(bindings='<binding protocol="ftp" bindingInformation="*:21:ftp.example.com" />')
        + site_xml(name="B", site_id=2, root="r2",
                   bindings='<binding protocol="ftp" bindingInformation="*:21:FTP.example.com" />')
    )  # fmt: skip
    error = only_error(tmp_path, text)
    assert error.line == line_of(text, "FTP.example.com")
    assert error.element.endswith(
        "site[@name='B']/bindings/binding[@bindingInformation='*:21:FTP.example.com']"
    )
    assert (error.attribute, error.value) == ("bindingInformation", "*:21:ftp.example.com")
    assert "already bound by site 'Default FTP Site'" in error.message


def test_same_binding_twice_in_one_site(tmp_path: Path) -> None:
    text = document(
        site_xml(
            bindings="""<binding protocol="ftp" bindingInformation="*:21:" />
          <binding protocol="ftp" bindingInformation="*:21:" />"""
        )
    )
    error = only_error(tmp_path, text)
    assert error.line == line_of(text, "*:21:", occurrence=2)
    assert "duplicate <binding>" in error.message


def test_two_default_sites_on_one_endpoint(tmp_path: Path) -> None:
    (tmp_path / "r2").mkdir()
    text = document(
        site_xml(bindings='<binding protocol="ftp" bindingInformation="127.0.0.1:21:" />')
        + site_xml(name="B", site_id=2, root="r2",
                   bindings='<binding protocol="ftp" bindingInformation="127.0.0.1:21:" />')
    )  # fmt: skip
    error = only_error(tmp_path, text)
    assert error.line == line_of(text, "127.0.0.1:21:", occurrence=2)
    assert (error.attribute, error.value) == ("bindingInformation", "127.0.0.1:21:")
    assert "two default sites" in error.message and "'Default FTP Site'" in error.message


def test_implicit_and_explicit_on_one_endpoint(tmp_path: Path) -> None:
    (tmp_path / "r2").mkdir()
    text = document(
        site_xml(bindings='<binding protocol="ftp" bindingInformation="127.0.0.1:2121:" />')
        + site_xml(name="B", site_id=2, root="r2",
                   bindings='<binding protocol="ftps" bindingInformation="127.0.0.1:2121:b" />')
    )  # fmt: skip
    error = only_error(tmp_path, text)
    assert error.line == line_of(text, "127.0.0.1:2121:b")
    assert (error.attribute, error.value) == ("protocol", "ftps")
    assert "implicit FTPS" in error.message and "explicit" in error.message


def test_implicit_port_990_conflicts_with_wildcard_explicit(tmp_path: Path) -> None:
    text = document(
        site_xml(
            bindings="""<binding protocol="ftp" bindingInformation="*:990:a" />
          <binding protocol="ftp" bindingInformation="*:990:" />"""
        )
    )
    assert load(tmp_path, text).sites[0].bindings[0].implicit
    text = document(
        site_xml(
            bindings="""<binding protocol="ftps" bindingInformation="*:2121:a" />
          <binding protocol="ftp" bindingInformation="127.0.0.1:2121:" />"""
        )
    )
    error = only_error(tmp_path, text)
    assert error.line == line_of(text, "127.0.0.1:2121:")


def test_unknown_environment_variable(tmp_path: Path) -> None:
    text = document(site_xml(root="%NOPE%\\ftproot"))
    error = only_error(tmp_path, text, environ={"HOME": "/root"})
    assert error.line == line_of(text, "%NOPE%")
    assert (error.attribute, error.value) == ("physicalPath", "%NOPE%\\ftproot")
    assert "unknown environment variable %NOPE%" in error.message


def test_location_for_unknown_site(tmp_path: Path) -> None:
    after = """
  <location path="Missing Site/pub">
    <system.ftpServer><security><authorization>
      <add accessType="Allow" users="*" permissions="Read" />
    </authorization></security></system.ftpServer>
  </location>"""
    text = document(after=after)
    error = only_error(tmp_path, text)
    assert error.line == line_of(text, "<location")
    assert error.element == "configuration/location[@path='Missing Site/pub']"
    assert (error.attribute, error.value) == ("path", "Missing Site/pub")
    assert error.accepted == ("Default FTP Site",)


def test_doctype_is_refused(tmp_path: Path) -> None:
    text = """<?xml version="1.0"?>
<!DOCTYPE configuration [
  <!ENTITY a "aaaaaaaaaa">
  <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
]>
<configuration>&b;</configuration>
"""
    error = only_error(tmp_path, text)
    assert error.line == 2
    assert "DOCTYPE" in error.message


def test_external_entity_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("TOP SECRET")
    text = f"""<?xml version="1.0"?>
<!DOCTYPE configuration SYSTEM "file://{secret}">
<configuration />
"""
    error = only_error(tmp_path, text)
    assert "DOCTYPE" in error.message and "TOP SECRET" not in str(error)


def test_malformed_xml(tmp_path: Path) -> None:
    text = document().replace("</bindings>", "</bindingz>", 1)
    error = only_error(tmp_path, text)
    assert error.line == line_of(text, "</bindingz>")
    assert "mismatched tag" in error.message
    assert str(error) == f"{error.file}:{error.line}: {error.message}"
    assert error.file == str(tmp_path / "ftps7.config")


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigErrors) as caught:
        load_config(str(tmp_path / "absent.config"))
    (error,) = caught.value.errors
    assert error.file == str(tmp_path / "absent.config") and "cannot read" in error.message


def test_wrong_root_element(tmp_path: Path) -> None:
    error = only_error(tmp_path, "<settings />")
    assert error.accepted == ("configuration",)


def test_several_errors_are_reported_together(tmp_path: Path) -> None:
    text = document(
        site_xml(
            root="nowhere",
            ftp_server="""
          <security><ssl ssl128="maybe" /></security>
          <connections controlChannelTimeout="-1" />
          <directoryBrowse showFlags="StyleUnix, Colour" />""",
        ),
        after="""
  <ftps7><process workers="0" /><tls minimumVersion="SSLv3" /></ftps7>""",
    )
    path = write(tmp_path, text)
    with pytest.raises(ConfigErrors) as caught:
        load_config(path, environ={})
    attributes = [error.attribute for error in caught.value.errors]
    assert attributes == [
        "physicalPath", "ssl128", "controlChannelTimeout", "showFlags", "workers", "minimumVersion",
    ]  # fmt: skip
    lines = str(caught.value).splitlines()
    assert len(lines) == 6 and all(line.startswith(path + ":") for line in lines)
    assert [error.line for error in caught.value.errors] == sorted(
        e.line for e in caught.value.errors
    )


@pytest.mark.parametrize(
    ("fragment", "attribute", "accepted_part"),
    [
        ('<connections maxConnections="4294967296" />', "maxConnections", "0..4294967295"),
        ('<connections controlChannelTimeout="00:02:00" />', "controlChannelTimeout", "0..65535"),
        ('<userIsolation mode="Custom" />', "mode", "IsolateAllDirectories"),
        ('<security><sslClientCertificates revocationUrlRetrievalTimeout="1 minute" /></security>',
         "revocationUrlRetrievalTimeout", "hh:mm:ss"),
        ('<security><sslClientCertificates validationFlags="NoRevocationCheck, Bogus" />'
         "</security>",
         "validationFlags", "CertNoUsageCheck"),
        ('<firewallSupport externalIp4Address="::1" />', "externalIp4Address", "an IPv4 address"),
        ('<logFile period="Yearly" />', "period", "MaxSize"),
        ('<logFile logExtFileFlags="Date, Colour" />', "logExtFileFlags", "FtpSubStatus"),
        ('<security><commandFiltering><add command="SY ST" allowed="false" /></commandFiltering>'
         "</security>", "command", "an FTP command name such as SYST"),
        ('<security><ssl serverCertStoreName="../etc" /></security>', "serverCertStoreName",
         "a store folder name such as MY"),
    ],
)  # fmt: skip
def test_bad_values_name_what_is_accepted(
    tmp_path: Path, fragment: str, attribute: str, accepted_part: str
) -> None:
    error = only_error(tmp_path, document(site_xml(ftp_server=fragment)))
    assert error.attribute == attribute
    assert error.accepted is not None and any(accepted_part in item for item in error.accepted), (
        error
    )


def test_duplicate_collection_entry_needs_remove_first(tmp_path: Path) -> None:
    defaults = """
      <siteDefaults><ftpServer><security><commandFiltering>
        <add command="SYST" allowed="false" />
      </commandFiltering></security></ftpServer></siteDefaults>"""
    text = document(
        site_xml(ftp_server='<security><commandFiltering><add command="syst" allowed="true" />'
                            "</commandFiltering></security>"),
        before_sites=defaults,
    )  # fmt: skip
    error = only_error(tmp_path, text)
    assert error.line == line_of(text, 'command="syst"')
    assert "duplicate <add>" in error.message and "<remove>" in error.message


def test_duplicate_virtual_directory_path(tmp_path: Path) -> None:
    text = document(site_xml(extra='\n<virtualDirectory path="/" physicalPath="root" />'))
    error = only_error(tmp_path, text)
    assert "duplicate <virtualDirectory>" in error.message


def test_element_given_twice(tmp_path: Path) -> None:
    text = document(site_xml(ftp_server="<messages />\n<messages />"))
    error = only_error(tmp_path, text)
    assert error.line == line_of(text, "<messages />", occurrence=2)
    assert "more than once" in error.message


def test_text_content_is_refused(tmp_path: Path) -> None:
    error = only_error(tmp_path, document(site_xml(ftp_server="<messages>hello</messages>")))
    assert error.value == "hello"


def test_duplicate_location_sections(tmp_path: Path) -> None:
    rule = """<system.ftpServer><security><authorization>
      <add accessType="Allow" users="*" permissions="Read" />
    </authorization></security></system.ftpServer>"""
    text = document(
        after=f"""
  <location path="Default FTP Site/a">{rule}</location>
  <location path="Default FTP Site/a/">{rule}</location>"""
    )
    error = only_error(tmp_path, text)
    assert "already defined" in error.message


def test_authorization_rule_without_users_or_roles(tmp_path: Path) -> None:
    text = document(
        after="""
  <system.ftpServer><security><authorization>
    <add accessType="Allow" permissions="Read" />
  </authorization></security></system.ftpServer>"""
    )
    error = only_error(tmp_path, text)
    assert "users or roles" in error.message


def test_active_directory_is_required_by_isolation_and_mapping(tmp_path: Path) -> None:
    text = document(
        site_xml(
            ftp_server="""
          <security><sslClientCertificates useActiveDirectoryMapping="true" /></security>
          <userIsolation mode="ActiveDirectory" />"""
        )
    )
    errors = load_errors(tmp_path, text)
    assert [(error.attribute, error.line) for error in errors] == [
        ("useActiveDirectoryMapping", line_of(text, "useActiveDirectoryMapping")),
        ("mode", line_of(text, 'mode="ActiveDirectory"')),
    ]
    assert all("<ftps7><activeDirectory" in error.message for error in errors)


@pytest.mark.parametrize(
    ("attributes", "attribute"),
    [
        ('url="http://dc.example.com"', "url"),
        ('url="ldap://"', "url"),
        ('url="ldaps://dc" startTls="true"', "startTls"),
        ('url="ldap://dc" bindDn="cn=x"', "bindPasswordFile"),
        ('url="ldap://dc" certificateMapping="IssuerSerial, Magic"', "certificateMapping"),
        ('url="ldap://dc" userCertificateMatch="exact"', "userCertificateMatch"),
        ('domain="EXAMPLE"', "url"),
    ],
)
def test_bad_active_directory(tmp_path: Path, attributes: str, attribute: str) -> None:
    error = only_error(tmp_path, document(after=f"<ftps7><activeDirectory {attributes} /></ftps7>"))
    assert error.attribute == attribute
    assert error.element == "configuration/ftps7/activeDirectory"


@pytest.mark.parametrize(
    ("element", "attribute"),
    [
        ('<tls ciphers="NOT-A-CIPHER" />', "ciphers"),
        ('<tls handshakeTimeout="00:00:00" />', "handshakeTimeout"),
        ('<process workers="65" />', "workers"),
        ('<process transferThreads="-1" />', "transferThreads"),
        ('<process transferThreads="many" />', "transferThreads"),
        ('<proxyProtocol trustedProxies="10.0.0.0/8, example.com" />', "trustedProxies"),
        ('<localAccounts source="ldap" />', "source"),
    ],
)
def test_bad_ftps7_settings(tmp_path: Path, element: str, attribute: str) -> None:
    error = only_error(tmp_path, document(after=f"<ftps7>{element}</ftps7>"))
    assert error.attribute == attribute


def test_passive_range_smaller_than_the_workers(tmp_path: Path) -> None:
    text = document(
        after="""
  <system.ftpServer>
    <firewallSupport lowDataChannelPort="50000" highDataChannelPort="50001" />
  </system.ftpServer>
  <ftps7><process workers="4" /></ftps7>"""
    )
    error = only_error(tmp_path, text)
    assert "fewer ports than the 4 worker processes" in error.message


# --------------------------------------------------------------------------
# Warnings


def test_unimplemented_iis_settings_and_unknown_sections_warn(tmp_path: Path) -> None:
    defaults = """
      <siteDefaults>
        <logFile logFormat="W3C" directory="%SystemDrive%\\inetpub\\logs\\LogFiles" />
        <traceFailedRequestsLogging directory="x" />
        <ftpServer><connections disableSocketPooling="true" /></ftpServer>
      </siteDefaults>
      <applicationDefaults applicationPool="DefaultAppPool" />"""
    ftp_server = """
      <security>
        <authentication>
          <anonymousAuthentication enabled="true" logonMethod="ClearText" password="x" />
          <basicAuthentication enabled="true" logonMethod="Network" />
          <customAuthentication>
            <providers><add name="x" enabled="true" /></providers>
          </customAuthentication>
        </authentication>
        <customAuthorization><provider name="p" enabled="true" /></customAuthorization>
      </security>
      <userIsolation mode="None"><activeDirectory adUserName="u" adPassword="p" /></userIsolation>
      <customFeatures />
      <directoryBrowse showFlags="StyleUnix, UseGmtTime" virtualDirectoryTimeout="5" />
      <logFile selectiveLogging="LogSuccessful" />"""
    after = """
  <system.ftpServer>
    <log centralLogFileMode="Central" />
    <providerDefinitions />
    <caching><credentialsCache /><authorizationCache /></caching>
    <security>
      <ipSecurity enableReverseDns="true">
        <add ipAddress="10.0.0.1" domainName="x.example" />
      </ipSecurity>
    </security>
  </system.ftpServer>
  <system.webServer><defaultDocument enabled="true" /></system.webServer>
  <appSettings><add key="a" value="b" /></appSettings>
  <location path="Default FTP Site">
    <system.ftpServer><security><ipSecurity allowUnlisted="false" /></security></system.ftpServer>
  </location>"""
    text = document(
        site_xml(ftp_server=ftp_server).replace(
            "<bindings>", '<limits maxBandwidth="1" />\n<bindings>', 1
        ),
        before_sites=defaults.replace("<system.applicationHost>", ""),
        after=after,
    ).replace("<system.applicationHost>", "<system.applicationHost>\n    <applicationPools />", 1)
    config = load(tmp_path, text)
    warnings = "\n".join(config.warnings)
    for name in (
        "attribute logonMethod", "attribute password", "<customAuthentication>",
        "<customAuthorization>", "<activeDirectory>", "<customFeatures>", "UseGmtTime",
        "attribute virtualDirectoryTimeout", "attribute selectiveLogging",
        "attribute disableSocketPooling", "<log>", "<providerDefinitions>", "<authorizationCache>",
        "attribute enableReverseDns", "attribute domainName", "<system.webServer>", "<appSettings>",
        "<applicationPools>", "<limits>", "<traceFailedRequestsLogging>", "<applicationDefaults>",
        "<ipSecurity>",
    ):  # fmt: skip
        assert name in warnings, name
    for warning in config.warnings:
        assert warning.startswith(str(tmp_path / "ftps7.config") + ":")
    # the known-but-ignored settings did not change anything that is implemented
    assert config.sites[0].ftp_server.authentication.anonymous_enabled
    assert config.sites[0].ftp_server.directory_browse.show_flags == m.ShowFlags.STYLE_UNIX


def test_default_logon_domain_without_directory_warns(tmp_path: Path) -> None:
    text = document(
        site_xml(
            ftp_server="""<security><authentication>
        <basicAuthentication enabled="true" defaultLogonDomain="EXAMPLE" />
      </authentication></security>"""
        )
    )
    (warning,) = load(tmp_path, text).warnings
    assert "defaultLogonDomain" in warning and f":{line_of(text, 'defaultLogonDomain')}:" in warning


def test_settings_unused_by_the_chosen_account_source_warn(tmp_path: Path) -> None:
    config = load(
        tmp_path, document(after='<ftps7><localAccounts source="PAM" path="users" /></ftps7>')
    )
    assert config.ftps7.local_accounts == m.LocalAccountsSettings(
        m.AccountSource.PAM, None, "ftps7"
    )
    (warning,) = config.warnings
    assert "attribute path" in warning


def test_a_refused_directory_setting_does_not_hide_the_directory(tmp_path: Path) -> None:
    text = document(
        site_xml(ftp_server='<userIsolation mode="ActiveDirectory" />'),
        after='<ftps7><activeDirectory url="ldap://127.0.0.1:3389" timeout="soon" /></ftps7>',
    )
    error = only_error(tmp_path, text)
    assert error.attribute == "timeout"


def test_transfer_threads_default(tmp_path: Path) -> None:
    path = write(tmp_path, document(after="<ftps7><process /></ftps7>"))
    assert load_config(path, environ={}).ftps7.process.transfer_threads == 32

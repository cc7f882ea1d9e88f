"""``format_report``/``report_warnings``: the effective configuration and its warnings."""

from __future__ import annotations

from pathlib import Path

from ftps7.config import load_config
from ftps7.config import model as m
from ftps7.config.report import format_report, report_warnings

THUMB = "57686F6120447564652C2049495320526F636B73"


def make(tmp_path: Path, ftp_server: str = "", defaults: str = "", after: str = "",
         bindings: str = '<binding protocol="ftp" bindingInformation="127.0.0.1:2121:" />'
         ) -> m.ServerConfig:  # fmt: skip
    (tmp_path / "root").mkdir(exist_ok=True)
    text = f"""<configuration>
  <system.applicationHost><sites>
    {f"<siteDefaults><ftpServer>{defaults}</ftpServer></siteDefaults>" if defaults else ""}
    <site name="Site One" id="1">
      <application path="/"><virtualDirectory path="/" physicalPath="root" /></application>
      <bindings>{bindings}</bindings>
      <ftpServer>{ftp_server}</ftpServer>
    </site>
  </sites></system.applicationHost>{after}
</configuration>"""
    path = tmp_path / "ftps7.config"
    path.write_text(text)
    return load_config(str(path), environ={})


BASIC = (
    "<security><authentication><basicAuthentication enabled='true' /></authentication></security>"
)


def test_report_shows_sites_endpoints_and_server(tmp_path: Path) -> None:
    config = make(
        tmp_path,
        defaults=f'<security><ssl serverCertHash="{THUMB}" /></security>',
        ftp_server=BASIC.replace(
            "</security>", '<ssl controlChannelPolicy="SslAllow" /></security>'
        ),
        bindings="""<binding protocol="ftp" bindingInformation="127.0.0.1:2121:" />
                    <binding protocol="ftp" bindingInformation="*:990:files.example" />""",
        after="""<location path="Site One/pub"><system.ftpServer><security><authorization>
                   <add accessType="Allow" roles="staff" permissions="Read" />
                 </authorization></security></system.ftpServer></location>""",
    )
    calls: list[tuple[str, str]] = []

    def lookup(store: str, thumbprint: str) -> str | None:
        calls.append((store, thumbprint))
        return "CN=files.example, expires 2030-01-01"

    report = format_report(config, lookup)
    assert calls and set(calls) == {("MY", THUMB)}
    assert 'Site "Site One" (id 1): started' in report
    assert "127.0.0.1:2121:" in report and "explicit" in report
    assert "*:990:files.example" in report and "implicit FTPS" in report
    assert f"/ -> {tmp_path / 'root'}" in report
    assert "controlChannelPolicy=SslAllow dataChannelPolicy=SslRequire" in report
    assert (
        f"{THUMB} in store MY (from siteDefaults): CN=files.example, expires 2030-01-01" in report
    )
    assert "authentication: basic" in report
    assert "user isolation: None" in report
    assert "/pub:" in report and "Allow roles=staff permissions=Read" in report
    assert "Endpoints (listeners):" in report
    assert "127.0.0.1:2121 (127.0.0.1), explicit:" in report
    assert "*:990 (all IPv4 and IPv6 addresses), implicit FTPS:" in report
    assert '"Site One" (host files.example)' in report
    assert "passive data ports: any" in report
    assert "local accounts: file" in report
    assert report.rstrip().endswith("WARNINGS: none")


def test_ssl_required_without_certificate_warns(tmp_path: Path) -> None:
    config = make(tmp_path, ftp_server=BASIC)
    (warning,) = report_warnings(config, None)
    assert "site 'Site One' requires SSL" in warning
    assert (
        "controlChannelPolicy SslRequire" in warning and "dataChannelPolicy SslRequire" in warning
    )
    assert "no serverCertHash on the site nor in siteDefaults" in warning
    report = format_report(config, None)
    assert "WARNINGS (1):" in report and warning in report
    assert "certificate: none" in report


def test_implicit_binding_requires_a_certificate_even_with_ssl_allowed(tmp_path: Path) -> None:
    config = make(
        tmp_path,
        ftp_server=BASIC.replace(
            "</security>",
            '<ssl controlChannelPolicy="SslAllow" dataChannelPolicy="SslAllow" /></security>',
        ),
        bindings='<binding protocol="ftps" bindingInformation="127.0.0.1:9990:" />',
    )
    (warning,) = report_warnings(config)
    assert "implicit FTPS binding" in warning


def test_certificate_not_in_the_store_warns(tmp_path: Path) -> None:
    config = make(tmp_path, ftp_server=BASIC.replace(
        "</security>", f'<ssl serverCertHash="{THUMB}" /></security>'))  # fmt: skip
    (warning,) = report_warnings(config, lambda store, thumbprint: None)
    assert f"certificate {THUMB} is not in store MY" in warning
    assert "NOT FOUND" in format_report(config, lambda store, thumbprint: None)
    # Without a lookup the thumbprint cannot be checked: no warning, and the report says so.
    assert report_warnings(config, None) == []
    assert "(store not checked)" in format_report(config, None)


def test_a_broken_store_does_not_hide_the_report(tmp_path: Path) -> None:
    config = make(tmp_path, ftp_server=BASIC.replace(
        "</security>", f'<ssl serverCertHash="{THUMB}" /></security>'))  # fmt: skip

    def broken(store: str, thumbprint: str) -> str | None:
        raise PermissionError("denied")

    report = format_report(config, broken)
    assert "could not read the store (PermissionError: denied)" in report
    assert any("could not check certificate" in w for w in report_warnings(config, broken))


def test_auto_created_certificate_satisfies_ssl_require(tmp_path: Path) -> None:
    config = make(
        tmp_path,
        ftp_server=BASIC,
        after='<ftps7><certificateStore autoCreate="ftps7 test" /></ftps7>',
    )
    assert report_warnings(config, lambda store, thumbprint: None) == []
    assert "self-signed 'ftps7 test' in store MY" in format_report(config)


def test_client_certificate_authentication_prerequisites(tmp_path: Path) -> None:
    config = make(
        tmp_path,
        ftp_server=f"""<security>
            <ssl serverCertHash="{THUMB}" dataChannelPolicy="SslDeny" />
            <authentication><clientCertAuthentication enabled="true" /></authentication>
          </security>""",
    )
    (warning,) = report_warnings(config, lambda store, thumbprint: "a certificate")
    assert warning.startswith("clientCertAuthentication is enabled but site 'Site One'")
    assert "SslDeny" in warning
    assert "clientCertificatePolicy is CertIgnore" in warning
    assert "useActiveDirectoryMapping is false" in warning
    assert "server certificate" not in warning


def test_client_certificate_authentication_met(tmp_path: Path) -> None:
    config = make(
        tmp_path,
        ftp_server=f"""<security>
            <ssl serverCertHash="{THUMB}" />
            <sslClientCertificates clientCertificatePolicy="CertRequire"
                useActiveDirectoryMapping="true" />
            <authentication><clientCertAuthentication enabled="true" /></authentication>
          </security>""",
        after='<ftps7><activeDirectory url="ldap://127.0.0.1:3389" /></ftps7>',
    )
    assert report_warnings(config, lambda store, thumbprint: "a certificate") == []
    assert "authentication: client certificate" in format_report(config)


def test_no_authentication_method_warns(tmp_path: Path) -> None:
    config = make(tmp_path, after='<ftps7><certificateStore autoCreate="x" /></ftps7>')
    (warning,) = report_warnings(config)
    assert "no authentication method enabled" in warning


def test_load_warnings_come_first(tmp_path: Path) -> None:
    config = make(
        tmp_path,
        ftp_server=BASIC,
        after="<system.webServer /><ftps7><certificateStore autoCreate='x' /></ftps7>",
    )
    warnings = report_warnings(config)
    assert warnings == list(config.warnings) and "system.webServer" in warnings[0]

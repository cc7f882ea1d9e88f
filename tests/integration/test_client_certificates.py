"""Client certificates end to end (issue 4): validation, revocation, data-channel match,
logon by directory mapping (232) and domain logons, against a real slapd."""

from __future__ import annotations

import datetime
import ftplib
import shutil
import socket
import ssl
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.crlserver import CrlServer, OpensslOcsp
from tests.integration.conftest import ReusingFTP_TLS, Running
from tests.integration.harness import location, rule
from tests.pki import (
    Issued,
    crl_der,
    make_ca,
    make_client_cert,
    make_crl,
    make_leaf,
    ocsp_responders,
    pem,
)
from tests.slapd import SlapdServer, SlapdUnavailable, slapd_installed, start_slapd

pytestmark = pytest.mark.integration

NOW = datetime.datetime.now(datetime.UTC)


class Authority:
    """A root and an issuing CA; client certificates made on demand."""

    def __init__(self) -> None:
        self.root = make_ca("Test Root CA")
        self.issuing = make_ca("Test Issuing CA", issuer=self.root)

    def client(self, name: str = "alice", **kwargs: Any) -> Issued:
        kwargs.setdefault("upn", f"{name}@example.com")
        kwargs.setdefault("emails", (f"{name}@example.com",))
        kwargs.setdefault("usage", ExtendedKeyUsageOID.CLIENT_AUTH)
        return make_leaf(self.issuing, name, dns_names=(), **kwargs)

    def install(self, workdir: Path, crl: bytes | None = None) -> None:
        store = workdir / "certs"
        (store / "ROOT").mkdir(parents=True, exist_ok=True)
        (store / "CA").mkdir(parents=True, exist_ok=True)
        (store / "ROOT" / "root.pem").write_bytes(pem(self.root.cert))
        (store / "CA" / "issuing.pem").write_bytes(pem(self.issuing.cert))
        # Revocation covers every certificate below the root: the root's CRL
        # (for the issuing CA) and the issuing CA's (for clients).
        (store / "CRL").mkdir(exist_ok=True)
        (store / "CRL" / "root.crl").write_bytes(crl_der(make_crl(self.root)))
        (store / "CRL" / "issuing.crl").write_bytes(crl or crl_der(make_crl(self.issuing)))


@pytest.fixture(scope="module")
def authority() -> Authority:
    return Authority()


def _client_files(tmp_path: Path, issued: Issued, name: str) -> tuple[str, str]:
    cert = tmp_path / f"{name}.crt"
    key = tmp_path / f"{name}.key"
    cert.write_bytes(pem(issued.cert))
    key.write_bytes(issued.key_pem())
    return str(cert), str(key)


def _ftps(
    server: Running, tmp_path: Path, issued: Issued | None, name: str = "c"
) -> ReusingFTP_TLS:
    context = server.client_context()
    if issued is not None:
        context.load_cert_chain(*_client_files(tmp_path, issued, name))
    client = ReusingFTP_TLS(context=context, timeout=20)
    client.connect(server.host, server.port)
    client.auth()
    return client


def _cert_site(
    policy: str = "CertRequire",
    flags: str = "",
    timeout: str = "00:00:05",
    client_auth: bool = False,
) -> dict[str, Any]:
    flags_attr = f' validationFlags="{flags}"' if flags else ""
    security = (
        f'<sslClientCertificates clientCertificatePolicy="{policy}"{flags_attr} '
        f'revocationUrlRetrievalTimeout="{timeout}"'
        + (' useActiveDirectoryMapping="true"' if client_auth else "")
        + " />"
    )
    return {"security_extra": security}


def _refused(client: ftplib.FTP) -> str:
    with pytest.raises(ftplib.Error) as caught:
        client.sendcmd("USER alice")
    return str(caught.value)


def test_cert_require_without_a_certificate_is_421(
    start_server: Callable[..., Running], authority: Authority, tmp_path: Path
) -> None:
    server = start_server(prepare=authority.install, **_cert_site())
    client = _ftps(server, tmp_path, None)
    assert _refused(client).startswith("421")
    server.process.wait_for_log("presented no client certificate")


def test_valid_certificate_does_not_log_in_by_itself(
    start_server: Callable[..., Running], authority: Authority, tmp_path: Path
) -> None:
    server = start_server(prepare=authority.install, **_cert_site())
    client = _ftps(server, tmp_path, authority.client())
    assert client.sendcmd("USER alice").startswith("331")
    assert client.sendcmd("PASS alice-pw").startswith("230")
    client.prot_p()
    assert "hello.txt" in client.nlst()
    client.quit()
    server.process.wait_for_log(r"client certificate .*CN=alice.*: accepted")


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("expired", "expired"),
        ("not-yet-valid", "not-yet-valid"),
        ("untrusted", "untrusted-issuer"),
        ("server-auth-only", "no-client-auth-usage"),
        ("revoked", "revoked"),
    ],
)
def test_invalid_certificates_are_refused(
    start_server: Callable[..., Running],
    authority: Authority,
    tmp_path: Path,
    case: str,
    reason: str,
) -> None:
    revoked = authority.client("mallory")
    crl = crl_der(make_crl(authority.issuing, [revoked.cert]))
    certificates = {
        "expired": lambda: authority.client(
            not_before=NOW - datetime.timedelta(days=30), not_after=NOW - datetime.timedelta(days=1)
        ),
        "not-yet-valid": lambda: authority.client(not_before=NOW + datetime.timedelta(days=1)),
        "untrusted": lambda: make_leaf(
            make_ca("Rogue CA"), "alice", dns_names=(), usage=ExtendedKeyUsageOID.CLIENT_AUTH
        ),
        "server-auth-only": lambda: authority.client(usage=ExtendedKeyUsageOID.SERVER_AUTH),
        "revoked": lambda: revoked,
    }
    server = start_server(prepare=lambda w: authority.install(w, crl), **_cert_site())
    client = _ftps(server, tmp_path, certificates[case]())
    assert _refused(client).startswith("421")
    line = server.process.wait_for_log(f"refused, {reason}")
    assert "issuer" in line and "serial" in line


def test_cert_no_usage_check_accepts_server_auth_only(
    start_server: Callable[..., Running], authority: Authority, tmp_path: Path
) -> None:
    server = start_server(
        prepare=authority.install, **_cert_site(flags="CertNoUsageCheck, NoRevocationCheck")
    )
    client = _ftps(server, tmp_path, authority.client(usage=ExtendedKeyUsageOID.SERVER_AUTH))
    assert client.sendcmd("USER alice").startswith("331")
    client.close()


def test_revocation_over_http_and_fail_closed_on_timeout(
    start_server: Callable[..., Running], authority: Authority, tmp_path: Path
) -> None:
    with CrlServer() as crls:
        crls.serve("/good.crl", crl_der(make_crl(authority.issuing)))
        crls.hang("/hang.crl")
        fetched = make_client_cert(authority.issuing, "alice", crl_urls=[crls.url("/good.crl")])
        hanging = make_client_cert(authority.issuing, "alice", crl_urls=[crls.url("/hang.crl")])

        def install(workdir: Path) -> None:
            authority.install(workdir)
            (workdir / "certs" / "CRL" / "issuing.crl").unlink()  # only over HTTP

        server = start_server(prepare=install, **_cert_site(timeout="00:00:01"))
        # The hanging distribution point first: once the issuer's CRL is cached
        # (from any URL) it answers for every certificate of that issuer.
        client = _ftps(server, tmp_path, hanging, "hanging")
        assert _refused(client).startswith("421")
        server.process.wait_for_log("refused, revocation-unknown")
        client = _ftps(server, tmp_path, fetched, "fetched")
        assert client.sendcmd("USER alice").startswith("331")
        client.close()
        assert crls.requests("/good.crl") == 1


def test_revocation_from_an_ocsp_responder(
    start_server: Callable[..., Running], authority: Authority, tmp_path: Path
) -> None:
    with CrlServer() as http:
        issuing = authority.issuing
        responder = OpensslOcsp(pem(issuing.cert), pem(issuing.cert), issuing.key_pem())
        http.answer("/ocsp", responder)
        named = [(ocsp_responders(http.url("/ocsp")), False)]
        good = make_client_cert(issuing, "alice", extensions=named)
        revoked = make_client_cert(issuing, "alice", extensions=named)
        responder.know(good.cert.serial_number, "/CN=alice")
        responder.know(revoked.cert.serial_number, "/CN=alice", revoked_at="250101000000Z")

        def install(workdir: Path) -> None:
            authority.install(workdir)
            (workdir / "certs" / "CRL" / "issuing.crl").unlink()  # clients: OCSP only

        try:
            server = start_server(prepare=install, **_cert_site())
            client = _ftps(server, tmp_path, good, "good")
            assert client.sendcmd("USER alice").startswith("331")
            client.close()
            client = _ftps(server, tmp_path, revoked, "revoked")
            assert _refused(client).startswith("421")
            line = server.process.wait_for_log("refused, revoked")
            assert "OCSP http://127.0.0.1" in line
            assert http.requests("/ocsp") == 2
        finally:
            responder.close()


def test_no_revocation_check_lets_a_revoked_certificate_in(
    start_server: Callable[..., Running], authority: Authority, tmp_path: Path
) -> None:
    revoked = authority.client()
    crl = crl_der(make_crl(authority.issuing, [revoked.cert]))
    server = start_server(
        prepare=lambda w: authority.install(w, crl), **_cert_site(flags="NoRevocationCheck")
    )
    client = _ftps(server, tmp_path, revoked)
    assert client.sendcmd("USER alice").startswith("331")
    client.close()


def test_cert_allow_without_a_certificate(
    start_server: Callable[..., Running], authority: Authority, tmp_path: Path
) -> None:
    server = start_server(prepare=authority.install, **_cert_site(policy="CertAllow"))
    client = _ftps(server, tmp_path, None)
    client.login("alice", "alice-pw")
    client.quit()


def _data_with(server: Running, client: ReusingFTP_TLS, context: ssl.SSLContext) -> str:
    """Open a passive data connection with ``context`` (a new TLS session), LIST, and
    return the final reply."""
    _, port = ftplib.parse227(client.sendcmd("PASV"))
    raw = socket.create_connection((server.host, port), timeout=20)
    client.putcmd("LIST")
    try:
        data = context.wrap_socket(raw, server_hostname=server.host)
        data.recv(100)
    except (ssl.SSLError, OSError):
        pass  # the server drops the refused connection
    reply = client.getresp()
    if reply.startswith("150"):
        try:
            reply = client.getresp()
        except ftplib.Error as error:
            reply = str(error)
    return reply


def test_data_channel_certificate_must_match(
    start_server: Callable[..., Running], authority: Authority, tmp_path: Path
) -> None:
    server = start_server(prepare=authority.install, **_cert_site(flags="NoRevocationCheck"))
    alice = authority.client("alice")
    client = _ftps(server, tmp_path, alice, "alice")
    client.login("alice", "alice-pw")
    client.prot_p()
    other = server.client_context()
    other.load_cert_chain(*_client_files(tmp_path, authority.client("bob"), "bob"))
    assert _data_with(server, client, other).startswith("522")
    none = server.client_context()
    assert _data_with(server, client, none).startswith("522")
    assert "hello.txt" in client.nlst()  # resumed session: same certificate
    client.quit()
    server.process.wait_for_log("presented a different client certificate")


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_with_a_client_certificate(
    start_server: Callable[..., Running], authority: Authority, tmp_path: Path
) -> None:
    server = start_server(prepare=authority.install, **_cert_site(flags="NoRevocationCheck"))
    cert, key = _client_files(tmp_path, authority.client(), "curl")
    ok = subprocess.run(
        [
            "curl",
            "-sS",
            "--ssl-reqd",
            "--cacert",
            server.ca_file,
            "--cert",
            cert,
            "--key",
            key,
            "-u",
            "alice:alice-pw",
            f"ftp://127.0.0.1:{server.port}/hello.txt",
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == b"Hello, world!\n"
    refused = subprocess.run(
        [
            "curl",
            "-sS",
            "--ssl-reqd",
            "--cacert",
            server.ca_file,
            "-u",
            "alice:alice-pw",
            f"ftp://127.0.0.1:{server.port}/hello.txt",
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode != 0


@pytest.mark.skipif(shutil.which("lftp") is None, reason="lftp is not installed")
def test_lftp_with_a_client_certificate(
    start_server: Callable[..., Running], authority: Authority, tmp_path: Path
) -> None:
    server = start_server(prepare=authority.install, **_cert_site(flags="NoRevocationCheck"))
    cert, key = _client_files(tmp_path, authority.client(), "lftp")
    script = (
        f"set ssl:ca-file {server.ca_file}; set ssl:cert-file {cert}; set ssl:key-file {key}; "
        "set ftp:ssl-force true; set ftp:ssl-protect-data true; set net:max-retries 1; "
        f"open -u alice,alice-pw -p {server.port} 127.0.0.1; cat hello.txt"
    )
    result = subprocess.run(["lftp", "-c", script], capture_output=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"Hello, world!\n"


# --------------------------------------------------------------- directory logons

LDIF = """\
dn: cn=alice,ou=Users,dc=example,dc=com
objectClass: inetOrgPerson
objectClass: adUserAux
cn: alice
sn: alice
sAMAccountName: alice
userPrincipalName: alice@example.com
userAccountControl: 512
userPassword: alice-domain-pw

dn: cn=carol,ou=Users,dc=example,dc=com
objectClass: inetOrgPerson
objectClass: adUserAux
cn: carol
sn: carol
sAMAccountName: carol
userPrincipalName: carol@example.com
userAccountControl: 514
userPassword: carol-domain-pw

dn: cn=ftpusers,ou=Groups,dc=example,dc=com
objectClass: groupOfNames
cn: ftpusers
member: cn=alice,ou=Users,dc=example,dc=com
"""


@pytest.fixture
def slapd(tmp_path: Path) -> Iterator[SlapdServer]:
    if not slapd_installed():
        pytest.skip("needs OpenLDAP's slapd (apt-get install slapd)")
    try:
        server = start_slapd(tmp_path / "slapd", LDIF)
    except SlapdUnavailable as error:
        pytest.skip(str(error))
    yield server
    server.stop()


def _directory_server(
    start_server: Callable[..., Running], authority: Authority, slapd: SlapdServer, **extra: Any
) -> Running:
    directory = (
        f'<activeDirectory url="{slapd.url}" domain="EXAMPLE" upnSuffix="example.com" '
        'baseDn="dc=example,dc=com" timeout="00:00:02" />'
    )
    site = _cert_site(policy="CertAllow", flags="NoRevocationCheck", client_auth=True)
    return start_server(
        client_cert_auth=True,
        prepare=authority.install,
        ftps7_extra=directory,
        locations=location("Test Site", "", rule(roles="ftpusers"), rule(users="bob")),
        **site,
        **extra,
    )


def test_certificate_maps_to_the_account_232(
    start_server: Callable[..., Running], authority: Authority, slapd: SlapdServer, tmp_path: Path
) -> None:
    server = _directory_server(start_server, authority, slapd)
    client = _ftps(server, tmp_path, authority.client("alice"))
    assert client.sendcmd("USER alice").startswith("232")
    client.prot_p()
    assert "hello.txt" in client.nlst()
    client.quit()
    for name in ("EXAMPLE\\alice", "ALICE@example.com"):
        client = _ftps(server, tmp_path, authority.client("alice"), "again")
        assert client.sendcmd(f"USER {name}").startswith("232")
        client.quit()
    client = _ftps(server, tmp_path, authority.client("alice"), "wrong")
    with pytest.raises(ftplib.error_perm, match="^530"):
        client.sendcmd("USER bob")
    client.close()
    disabled = _ftps(server, tmp_path, authority.client("carol"), "carol")
    with pytest.raises(ftplib.error_perm, match="^530"):
        disabled.sendcmd("USER carol")
    disabled.close()


def test_domain_logons_bind_as_the_user(
    start_server: Callable[..., Running], authority: Authority, slapd: SlapdServer, tmp_path: Path
) -> None:
    server = _directory_server(start_server, authority, slapd)
    for name in ("EXAMPLE\\alice", "alice@example.com"):
        client = server.ftps(login=False)
        client.auth()
        client.login(name, "alice-domain-pw")  # the directory group ftpusers grants access
        client.quit()
    client = server.ftps(login=False)
    client.auth()
    with pytest.raises(ftplib.error_perm, match="^530"):
        client.login("EXAMPLE\\alice", "wrong")
    client.close()
    # A local account still logs on with its own password.
    local = server.ftps(login=False, user="bob")
    local.auth()
    local.login("bob", "bob-pw")
    local.quit()


def test_directory_outage_and_recovery(
    start_server: Callable[..., Running], authority: Authority, slapd: SlapdServer, tmp_path: Path
) -> None:
    server = _directory_server(start_server, authority, slapd)
    slapd.stop()
    client = server.ftps(login=False)
    client.auth()
    with pytest.raises(ftplib.error_perm, match="^530"):
        client.login("EXAMPLE\\alice", "alice-domain-pw")
    client.close()
    server.process.wait_for_log("directory is unavailable")
    local = server.ftps(user="bob")  # other logons are unaffected
    local.quit()
    slapd.start()
    client = server.ftps(login=False)
    client.auth()
    client.login("EXAMPLE\\alice", "alice-domain-pw")
    client.quit()


def test_active_directory_isolation_uses_msiis_ftp_attributes(
    start_server: Callable[..., Running], authority: Authority, tmp_path: Path
) -> None:
    if not slapd_installed():
        pytest.skip("needs OpenLDAP's slapd (apt-get install slapd)")
    homes = tmp_path / "homes"
    (homes / "dave").mkdir(parents=True)
    (homes / "dave" / "mine.txt").write_text("dave's file\n")
    ldif = f"""\
dn: cn=dave,ou=Users,dc=example,dc=com
objectClass: inetOrgPerson
objectClass: adUserAux
cn: dave
sn: dave
sAMAccountName: dave
userPrincipalName: dave@example.com
userAccountControl: 512
userPassword: dave-domain-pw
msIIS-FTPRoot: {homes}
msIIS-FTPDir: dave

dn: cn=ftpusers,ou=Groups,dc=example,dc=com
objectClass: groupOfNames
cn: ftpusers
member: cn=dave,ou=Users,dc=example,dc=com
"""
    try:
        slapd = start_slapd(tmp_path / "slapd-ad", ldif)
    except SlapdUnavailable as error:
        pytest.skip(str(error))
    try:
        directory = (
            f'<activeDirectory url="{slapd.url}" domain="EXAMPLE" upnSuffix="example.com" '
            'baseDn="dc=example,dc=com" timeout="00:00:02" />'
        )
        server = start_server(
            ftps7_extra=directory,
            extra='<userIsolation mode="ActiveDirectory" />',
        )
        client = server.ftps(login=False)
        client.auth()
        client.login("EXAMPLE\\dave", "dave-domain-pw")
        client.prot_p()
        assert client.nlst() == ["mine.txt"]
        assert client.pwd() == "/"
        client.cwd("..")
        assert client.nlst() == ["mine.txt"]
        client.quit()
    finally:
        slapd.stop()

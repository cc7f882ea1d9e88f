"""HOST virtual hosts: three sites on one port, each with its own certificate (issue 5)."""

from __future__ import annotations

import contextlib
import ftplib
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from ftps7.auth.accounts import AccountsFile
from ftps7.tls.certgen import new_self_signed
from ftps7.tls.store import CertificateStore
from tests.integration.conftest import USERS, ReusingFTP_TLS
from tests.integration.harness import (
    ServerProcess,
    SiteSpec,
    free_port,
    location,
    rule,
    write_config,
)

pytestmark = pytest.mark.integration

HOSTS = {"alpha": "alpha.test", "beta": "beta.test", "gamma": "localhost"}


@dataclass
class VHosts:
    port: int
    process: ServerProcess
    certs: dict[str, bytes]  # site → PEM
    ders: dict[str, bytes]
    roots: dict[str, Path]
    workdir: Path

    def ca_file(self, site: str) -> str:
        path = self.workdir / f"{site}.pem"
        path.write_bytes(self.certs[site])
        return str(path)

    def context(self, site: str) -> ssl.SSLContext:
        return ssl.create_default_context(cadata=self.certs[site].decode())


def _start(tmp_path: Path, *, default_site: bool, logs: Path | None = None) -> VHosts:
    store = CertificateStore(str(tmp_path / "certs"))
    accounts = AccountsFile(str(tmp_path / "users"))
    for name, (password, groups) in USERS.items():
        accounts.add(name, password, groups)
    port = free_port()
    sites: list[SiteSpec] = []
    certs: dict[str, bytes] = {}
    ders: dict[str, bytes] = {}
    roots: dict[str, Path] = {}
    policies = {"alpha": "SslRequire", "beta": "SslAllow", "gamma": "SslRequire"}
    for index, (site, host) in enumerate(HOSTS.items(), start=1):
        cert, key = new_self_signed(f"{site} site", [host], [])
        stored = store.add("MY", cert, [], key, site)
        certs[site] = stored.leaf.public_bytes(serialization.Encoding.PEM)
        ders[site] = stored.leaf.public_bytes(serialization.Encoding.DER)
        root = tmp_path / f"root-{site}"
        root.mkdir()
        (root / f"{site}.txt").write_text(f"this is {site}\n")
        roots[site] = root
        sites.append(
            SiteSpec(
                name=site,
                id=index,
                bindings=[f"ftp:*:{port}:{host}"],
                root=str(root),
                cert_hash=stored.thumbprint,
                control_policy=policies[site],
                data_policy="SslAllow" if site == "beta" else "SslRequire",
                extra=f'<logFile directory="{logs}" />' if logs else "",
            )
        )
    if default_site:
        cert, key = new_self_signed("default site", ["default.test"], ["127.0.0.1"])
        stored = store.add("MY", cert, [], key, "default")
        certs["default"] = stored.leaf.public_bytes(serialization.Encoding.PEM)
        ders["default"] = stored.leaf.public_bytes(serialization.Encoding.DER)
        root = tmp_path / "root-default"
        root.mkdir()
        (root / "default.txt").write_text("this is the default site\n")
        roots["default"] = root
        sites.append(
            SiteSpec(
                name="default",
                id=9,
                bindings=[f"ftp:*:{port}:"],
                root=str(root),
                cert_hash=stored.thumbprint,
            )
        )
    locations = "".join(location(spec.name, "", rule(roles="ftpusers")) for spec in sites)
    config = write_config(
        tmp_path / "ftps7.config",
        sites,
        store=str(tmp_path / "certs"),
        accounts=str(tmp_path / "users"),
        locations=locations,
    )
    process = ServerProcess(config).start()
    return VHosts(port, process, certs, ders, roots, tmp_path)


@pytest.fixture
def vhosts(tmp_path: Path) -> Iterator[VHosts]:
    running = _start(tmp_path, default_site=True)
    yield running
    running.process.stop()
    assert "Traceback" not in running.process.log, running.process.log


@pytest.fixture
def vhosts_no_default(tmp_path: Path) -> Iterator[VHosts]:
    running = _start(tmp_path, default_site=False)
    yield running
    running.process.stop()
    assert "Traceback" not in running.process.log, running.process.log


def _files(client: ftplib.FTP) -> list[str]:
    return sorted(client.nlst())


def _sni_client(v: VHosts, site: str) -> ReusingFTP_TLS:
    """ftplib with SNI = the site's host name (ftplib sends ``self.host`` as SNI)."""
    client = ReusingFTP_TLS(context=v.context(site), timeout=20)
    client.connect("127.0.0.1", v.port)
    client.host = HOSTS[site]
    return client


def test_sni_selects_site_and_certificate_on_both_channels(vhosts: VHosts) -> None:
    for site in HOSTS:
        client = _sni_client(vhosts, site)
        client.auth()
        assert client.sock.getpeercert(binary_form=True) == vhosts.ders[site]
        client.login("alice", "alice-pw")
        client.prot_p()
        assert _files(client) == [f"{site}.txt"]
        client.voidcmd("TYPE I")
        conn = client.transfercmd(f"RETR {site}.txt")
        try:
            assert conn.getpeercert(binary_form=True) == vhosts.ders[site]
            data = conn.recv(100)
        finally:
            conn.unwrap()
            conn.close()
        client.voidresp()
        assert data == f"this is {site}\n".encode()
        client.quit()


def test_host_command_before_auth_selects_site_and_certificate(vhosts: VHosts) -> None:
    client = ReusingFTP_TLS(context=vhosts.context("alpha"), timeout=20)
    client.connect("127.0.0.1", vhosts.port)
    assert client.sendcmd("HOST alpha.test").startswith("220")
    client.host = "alpha.test"  # only for certificate name checking
    client.auth()
    assert client.sock.getpeercert(binary_form=True) == vhosts.ders["alpha"]
    client.login("alice", "alice-pw")
    client.prot_p()
    assert _files(client) == ["alpha.txt"]
    client.quit()


def test_user_host_form_after_auth_keeps_negotiated_certificate(vhosts: VHosts) -> None:
    client = ReusingFTP_TLS(context=vhosts.context("default"), timeout=20)
    client.connect("127.0.0.1", vhosts.port)
    client.host = "default.test"
    client.auth()
    assert client.sock.getpeercert(binary_form=True) == vhosts.ders["default"]
    client.login("alpha.test|alice", "alice-pw")
    client.prot_p()
    assert _files(client) == ["alpha.txt"]
    conn = client.transfercmd("LIST")
    assert conn.getpeercert(binary_form=True) == vhosts.ders["default"]
    conn.recv(1000)
    conn.unwrap()
    conn.close()
    client.voidresp()
    client.quit()


def test_default_site_without_host(vhosts: VHosts) -> None:
    client = ReusingFTP_TLS(context=vhosts.context("default"), timeout=20)
    client.connect("127.0.0.1", vhosts.port)
    client.auth()  # SNI "127.0.0.1" is not sent (IP literal): the default site
    client.login("alice", "alice-pw")
    client.prot_p()
    assert _files(client) == ["default.txt"]
    client.quit()


def test_host_errors(vhosts: VHosts) -> None:
    client = ftplib.FTP(timeout=20)
    client.connect("127.0.0.1", vhosts.port)
    with pytest.raises(ftplib.error_perm, match="^504"):
        client.sendcmd("HOST unknown.test")
    with pytest.raises(ftplib.error_perm, match="^501"):
        client.sendcmd("HOST a b")
    with pytest.raises(ftplib.error_perm, match="^501"):
        client.sendcmd("HOST beta.test:21")
    assert client.sendcmd("HOST beta.test").startswith("220")
    client.login("alice", "alice-pw")  # beta allows a clear control channel
    with pytest.raises(ftplib.error_perm, match="^503"):
        client.sendcmd("HOST alpha.test")
    assert client.sendcmd("REIN").startswith("220")
    # After REIN the HOST is gone: the default site (SslRequire) is back.
    with pytest.raises(ftplib.error_perm, match="^534"):
        client.sendcmd("USER alice")
    client.close()


def test_host_must_match_sni(vhosts: VHosts) -> None:
    client = _sni_client(vhosts, "alpha")
    client.auth()
    with pytest.raises(ftplib.error_perm, match="^504"):
        client.sendcmd("HOST beta.test")
    assert client.sendcmd("HOST alpha.test").startswith("220")
    client.quit()


def test_policies_are_per_site(vhosts: VHosts) -> None:
    clear = ftplib.FTP(timeout=20)
    clear.connect("127.0.0.1", vhosts.port)
    clear.sendcmd("HOST beta.test")
    clear.login("alice", "alice-pw")
    assert _files(clear) == ["beta.txt"]
    clear.quit()
    required = ftplib.FTP(timeout=20)
    required.connect("127.0.0.1", vhosts.port)
    required.sendcmd("HOST alpha.test")
    with pytest.raises(ftplib.error_perm, match="^534"):
        required.login("alice", "alice-pw")
    required.close()


def test_no_default_site_requires_a_host(vhosts_no_default: VHosts) -> None:
    client = ftplib.FTP(timeout=20)
    client.connect("127.0.0.1", vhosts_no_default.port)
    with pytest.raises(ftplib.error_perm, match="^530"):
        client.sendcmd("USER alice")
    assert client.sendcmd("USER beta.test|alice").startswith("331")
    assert client.sendcmd("PASS alice-pw").startswith("230")
    assert _files(client) == ["beta.txt"]
    client.quit()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_sni(vhosts: VHosts) -> None:
    result = subprocess.run(
        [
            "curl",
            "-sS",
            "--ssl-reqd",
            "--cacert",
            vhosts.ca_file("alpha"),
            "--resolve",
            f"alpha.test:{vhosts.port}:127.0.0.1",
            "-u",
            "alice:alice-pw",
            f"ftp://alpha.test:{vhosts.port}/alpha.txt",
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"this is alpha\n"


@pytest.mark.skipif(shutil.which("lftp") is None, reason="lftp is not installed")
def test_lftp_sni_verifies_the_site_certificate(vhosts: VHosts) -> None:
    if socket.gethostbyname("localhost") != "127.0.0.1":
        pytest.skip("localhost does not resolve to 127.0.0.1")
    script = (
        f"set ssl:ca-file {vhosts.ca_file('gamma')}; set ssl:verify-certificate true; "
        "set ftp:ssl-force true; set ftp:ssl-protect-data true; set net:max-retries 1; "
        "set dns:order inet; "
        f"open -u alice,alice-pw -p {vhosts.port} localhost; cat gamma.txt"
    )
    result = subprocess.run(["lftp", "-c", script], capture_output=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"this is gamma\n"


def test_logs_and_limits_are_per_site(tmp_path: Path) -> None:
    running = _start(tmp_path, default_site=False, logs=tmp_path / "logs")
    try:
        for host in ("alpha.test", "beta.test"):
            client = ftplib.FTP(timeout=20)
            client.connect("127.0.0.1", running.port)
            client.sendcmd(f"HOST {host}")
            with contextlib.suppress(ftplib.error_perm):
                client.login("alice", "alice-pw")  # alpha refuses a clear logon: logged too
            client.quit()
    finally:
        running.process.stop()
    alpha = (tmp_path / "logs" / "FTPSVC1").glob("u_ex*.log")
    beta = (tmp_path / "logs" / "FTPSVC2").glob("u_ex*.log")
    alpha_text = "".join(path.read_text() for path in alpha)
    beta_text = "".join(path.read_text() for path in beta)
    assert " 534 " in alpha_text
    assert " 230 " in beta_text
    assert " 230 " not in alpha_text
    assert not (tmp_path / "logs" / "FTPSVC3").exists()

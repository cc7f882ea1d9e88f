"""Fixtures that run real ftps7 servers for the integration tests."""

from __future__ import annotations

import ftplib
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from ftps7.auth.accounts import AccountsFile
from ftps7.tls.certgen import new_self_signed
from ftps7.tls.store import CertificateStore
from tests.integration.harness import (
    ServerProcess,
    SiteSpec,
    free_port,
    location,
    rule,
    write_config,
)

pytestmark = pytest.mark.integration

USERS = {"alice": ("alice-pw", ("ftpusers",)), "bob": ("bob-pw", ("readers",))}


@dataclass
class Running:
    """A started server and what a test needs to talk to it."""

    host: str
    port: int
    root: Path
    workdir: Path
    process: ServerProcess
    cert_pem: bytes
    thumbprint: str
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def ca_file(self) -> str:
        path = self.workdir / "server-ca.pem"
        path.write_bytes(self.cert_pem)
        return str(path)

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cadata=self.cert_pem.decode())
        return context

    def ftps(
        self,
        *,
        login: bool = True,
        user: str = "alice",
        prot_p: bool = True,
        reuse: bool = True,
        port: int | None = None,
    ) -> ReusingFTP_TLS:
        client = ReusingFTP_TLS(context=self.client_context(), timeout=20)
        client.reuse_session = reuse
        client.connect(self.host, port or self.port)
        if login:
            client.auth()
            client.login(user, USERS[user][0])
            if prot_p:
                client.prot_p()
        return client

    def plain(self, port: int | None = None) -> ftplib.FTP:
        client = ftplib.FTP(timeout=20)
        client.connect(self.host, port or self.port)
        return client


class ReusingFTP_TLS(ftplib.FTP_TLS):
    """ftplib.FTP_TLS that resumes the control session on data connections.

    Python's ftplib does not (cpython#63699); real clients (curl, FileZilla,
    WinSCP) do, and servers that require reuse need it.
    """

    reuse_session = True

    def ntransfercmd(self, cmd: str, rest: Any = None) -> tuple[Any, Any]:
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:  # type: ignore[attr-defined]
            session = self.sock.session if self.reuse_session else None  # type: ignore[union-attr]
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=session)
        return conn, size


def make_certificate(store: CertificateStore, name: str = "test server") -> Any:
    cert, key = new_self_signed(name, ["localhost"], ["127.0.0.1", "::1"])
    return store.add("MY", cert, [], key, name.replace(" ", "-"))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Remember each phase's report so fixtures can tell whether the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def start_server(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Running]]:
    """Build a configuration and start ``twistd -n ftps7`` on it.

    Keyword arguments tune the default single-site configuration; ``sites``
    replaces it entirely. The default: basic logons, SslRequire on both
    channels, users alice (group ftpusers: Read, Write) and bob (group
    readers: Read).
    """
    started: list[ServerProcess] = []

    def start(
        *,
        sites: list[SiteSpec] | None = None,
        locations: str | None = None,
        system_ftp: str = "",
        tls: str = "",
        site_defaults: str = "",
        extra_args: tuple[str, ...] = (),
        host: str = "127.0.0.1",
        files: dict[str, bytes] | None = None,
        implicit: bool = False,
        ftps7_extra: str = "",
        prepare: Callable[[Path], None] | None = None,
        **site_options: Any,
    ) -> Running:
        workdir = tmp_path / f"server{len(started)}"
        root = workdir / "root"
        root.mkdir(parents=True)
        for relative, data in (files or {"hello.txt": b"Hello, world!\n"}).items():
            target = root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        store = CertificateStore(str(workdir / "certs"))
        certificate = make_certificate(store)
        accounts = AccountsFile(str(workdir / "users"))
        for name, (password, groups) in USERS.items():
            accounts.add(name, password, groups)
        port = free_port(host)
        ports = {"main": port}
        ip = f"[{host}]" if ":" in host else host
        if sites is None:
            bindings = [f"ftp:{ip}:{port}:"]
            if implicit:
                ports["implicit"] = free_port(host)
                bindings.append(f"ftps:{ip}:{ports['implicit']}:")
            site = SiteSpec(
                bindings=bindings,
                root=str(root),
                cert_hash=certificate.thumbprint,
                **site_options,
            )
            sites = [site]
        else:
            for spec in sites:
                spec.root = spec.root or str(root)
        if locations is None:
            locations = "".join(
                location(
                    spec.name,
                    "",
                    rule(roles="ftpusers"),
                    rule(roles="readers", permissions="Read"),
                )
                for spec in sites
            )
        config = write_config(
            workdir / "ftps7.config",
            sites,
            store=str(workdir / "certs"),
            accounts=str(workdir / "users"),
            locations=locations,
            system_ftp=system_ftp,
            tls=tls,
            site_defaults=site_defaults,
            ftps7_extra=ftps7_extra,
        )
        if prepare is not None:
            prepare(workdir)
        process = ServerProcess(config, extra_args)
        started.append(process)
        process.start()
        cert_pem = certificate.leaf.public_bytes(serialization.Encoding.PEM)
        return Running(host, port, root, workdir, process, cert_pem, certificate.thumbprint, ports)

    yield start
    failed = getattr(request.node, "report_call", None)
    for process in started:
        process.stop()
        log = process.log
        if failed is not None and failed.failed:
            # The server's side of a failure is what a CI log needs most.
            print(f"----- server log ({process.config}) -----\n{log}")
        assert "Traceback" not in log and "Unhandled" not in log, log


@pytest.fixture
def server(start_server: Callable[..., Running]) -> Running:
    return start_server()

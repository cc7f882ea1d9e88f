"""`ftps7 config check` flags virtual-host certificate set-ups that break clients."""

from __future__ import annotations

from pathlib import Path

import pytest

from ftps7.cli import main
from ftps7.config import load_config
from ftps7.tls.certgen import new_self_signed
from ftps7.tls.store import CertificateStore
from ftps7.tls.vhostcheck import virtual_host_warnings
from tests.integration.harness import SiteSpec, write_config


def _config(tmp_path: Path, *, implicit: bool, second_names: list[str]) -> Path:
    store = CertificateStore(str(tmp_path / "certs"))
    a = store.add("MY", *_pair("a", ["a.test"]), "a")
    b = store.add("MY", *_pair("b", second_names), "b")
    protocol = "ftps" if implicit else "ftp"
    sites = [
        SiteSpec(name="A", id=1, bindings=[f"{protocol}:*:2121:a.test"], root=str(tmp_path),
                 cert_hash=a.thumbprint),
        SiteSpec(name="B", id=2, bindings=[f"{protocol}:*:2121:b.test"], root=str(tmp_path),
                 cert_hash=b.thumbprint),
    ]
    return write_config(tmp_path / "ftps7.config", sites, store=str(tmp_path / "certs"),
                        accounts=str(tmp_path / "users"))


def _pair(name: str, dns: list[str]) -> tuple[object, list[object], object]:
    cert, key = new_self_signed(name, dns, [])
    return cert, [], key


def test_different_certificates_on_one_explicit_endpoint(tmp_path: Path) -> None:
    path = _config(tmp_path, implicit=False, second_names=["b.test"])
    config = load_config(str(path))
    warnings = virtual_host_warnings(config, CertificateStore(str(tmp_path / "certs")))
    assert len(warnings) == 1
    assert "USER host|user after AUTH" in warnings[0]


def test_implicit_endpoint_needs_sni(tmp_path: Path) -> None:
    path = _config(tmp_path, implicit=True, second_names=["b.test"])
    warnings = virtual_host_warnings(load_config(str(path)),
                                     CertificateStore(str(tmp_path / "certs")))
    assert any("only clients that send SNI" in w for w in warnings)


def test_certificate_not_naming_the_host(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = _config(tmp_path, implicit=False, second_names=["other.test"])
    warnings = virtual_host_warnings(load_config(str(path)),
                                     CertificateStore(str(tmp_path / "certs")))
    assert any("bound to host 'b.test'" in w and "other.test" in w for w in warnings)
    assert main(["config", "check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "bound to host 'b.test'" in out


def test_one_certificate_is_quiet(tmp_path: Path) -> None:
    store = CertificateStore(str(tmp_path / "certs"))
    cert, key = new_self_signed("both", ["a.test", "b.test"], [])
    both = store.add("MY", cert, [], key, "both")
    sites = [
        SiteSpec(name="A", id=1, bindings=["ftp:*:2121:a.test"], root=str(tmp_path),
                 cert_hash=both.thumbprint),
        SiteSpec(name="B", id=2, bindings=["ftp:*:2121:b.test"], root=str(tmp_path),
                 cert_hash=both.thumbprint),
    ]
    path = write_config(tmp_path / "c.config", sites, store=str(tmp_path / "certs"),
                        accounts=str(tmp_path / "users"))
    assert virtual_host_warnings(load_config(str(path)), store) == []

"""``ftps7 cert new|list|import|mapping`` against a real configuration file."""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from ftps7.cli import main
from ftps7.tls.store import CertificateStore
from tests.pki import Pki, key_pem, make_ca, make_client, make_leaf, make_pki, name, pem

CONFIG = """<configuration>
  <system.applicationHost>
    <sites>
      <site name="Default FTP Site" id="1">
        <application path="/">
          <virtualDirectory path="/" physicalPath="ftproot" />
        </application>
        <bindings>
          <binding protocol="ftp" bindingInformation="127.0.0.1:2121:" />
        </bindings>
      </site>
    </sites>
  </system.applicationHost>
  <ftps7>
    <certificateStore path="certs" />
  </ftps7>
</configuration>
"""

THUMBPRINT = re.compile(r"[0-9A-F]{40}")


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    (tmp_path / "ftproot").mkdir()
    path = tmp_path / "ftps7.config"
    path.write_text(CONFIG)
    return path


@pytest.fixture
def store(tmp_path: Path) -> CertificateStore:
    return CertificateStore(str(tmp_path / "certs"))


def run(config: Path, *argv: str, stdin: str | None = None) -> int:
    saved = sys.stdin
    if stdin is not None:
        sys.stdin = io.StringIO(stdin)
    try:
        return main(["--config", str(config), *argv])
    finally:
        sys.stdin = saved


def sha1(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA1()).hex().upper()


# ----------------------------------------------------------------------- new


def test_new_prints_the_thumbprint_alone_on_the_last_line(
    config: Path, store: CertificateStore, capsys: pytest.CaptureFixture[str]
) -> None:
    status = run(
        config, "cert", "new", "--name", "My FTP Certificate",
        "--dns", "ftp.example.com", "--ip", "127.0.0.1",
    )
    out = capsys.readouterr().out.splitlines()

    assert status == 0
    assert THUMBPRINT.fullmatch(out[-1])
    stored = store.find("MY", out[-1])
    assert stored is not None and stored.name == "My FTP Certificate" and stored.has_key
    assert stored.dns_names == ("ftp.example.com",)
    assert [str(ip) for ip in stored.ip_addresses] == ["127.0.0.1"]
    assert stored.key_type == "ecdsa-p256"
    key_file = config.parent / "certs" / "MY" / "My FTP Certificate.key"
    assert key_file.stat().st_mode & 0o777 == 0o600


def test_new_with_store_key_type_and_days(
    config: Path, store: CertificateStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(config, "cert", "new", "--name", "web", "--store", "WebHosting",
               "--key", "rsa-2048", "--days", "30") == 0
    thumb = capsys.readouterr().out.splitlines()[-1]
    stored = store.find("webhosting", thumb)
    assert stored is not None and stored.key_type == "rsa-2048"
    assert (stored.not_after - stored.not_before).days in (30, 29)
    assert store.find("MY", thumb) is None


def test_new_refuses_an_existing_name(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(config, "cert", "new", "--name", "ftp") == 0
    first = (config.parent / "certs" / "MY" / "ftp.pem").read_bytes()
    capsys.readouterr()

    assert run(config, "cert", "new", "--name", "ftp") == 1
    captured = capsys.readouterr()
    assert "already exists" in captured.err and "Traceback" not in captured.err
    assert captured.out == ""
    assert (config.parent / "certs" / "MY" / "ftp.pem").read_bytes() == first


def test_new_rejects_bad_input(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(config, "cert", "new", "--name", "x", "--ip", "not-an-ip") == 1
    assert "not-an-ip" in capsys.readouterr().err
    assert run(config, "cert", "new", "--name", "../x") == 1
    assert "invalid certificate name" in capsys.readouterr().err


def test_bad_configuration_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.config"
    bad.write_text("<configuration><ftps7><certificateStore pth='x'/></ftps7></configuration>")
    assert run(bad, "cert", "list") == 1
    err = capsys.readouterr().err
    assert str(bad) in err and "Traceback" not in err


# ---------------------------------------------------------------------- list


def test_list_shows_each_certificate_and_flags(
    config: Path, store: CertificateStore, pki: Pki, capsys: pytest.CaptureFixture[str]
) -> None:
    import datetime

    now = datetime.datetime.now(datetime.UTC)
    expired = make_leaf(pki.intermediate, "old.example.com", dns_names=("old.example.com",),
                        not_before=now - datetime.timedelta(days=9),
                        not_after=now - datetime.timedelta(days=2))
    good = store.add("MY", pki.server.cert, [pki.intermediate.cert], pki.server.key, "ftp")
    store.add("MY", expired.cert, [], expired.key, "old")
    store.add("MY", pki.client.cert, [], None, "keyless")
    (config.parent / "certs" / "MY" / "broken.pem").write_text("garbage")

    assert run(config, "cert", "list") == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()

    assert len(lines) == 3
    ftp_line = next(line for line in lines if good.thumbprint in line)
    for part in ("CN=ftp.example.com", "ftp.example.com, localhost, 127.0.0.1", "ecdsa-p256",
                 good.not_after.strftime("%Y-%m-%d")):
        assert part in ftp_line
    assert "EXPIRED" in next(line for line in lines if sha1(expired.cert) in line)
    assert "NO PRIVATE KEY" in next(line for line in lines if sha1(pki.client.cert) in line)
    assert "broken.pem" in captured.err


def test_list_of_an_empty_store(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(config, "cert", "list", "--store", "ROOT") == 0
    captured = capsys.readouterr()
    assert captured.out == "" and "no certificates" in captured.err


# -------------------------------------------------------------------- import


def test_import_pem_in_any_order(
    config: Path, store: CertificateStore, pki: Pki, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bundle = tmp_path / "site.pem"
    bundle.write_bytes(pem(pki.intermediate.cert) + key_pem(pki.server.key) + pem(pki.server.cert))

    assert run(config, "cert", "import", str(bundle)) == 0
    out = capsys.readouterr().out.splitlines()

    assert out[-1] == sha1(pki.server.cert)
    stored = store.find("MY", out[-1])
    assert stored is not None and stored.name == "site" and stored.has_key
    assert stored.chain == (pki.intermediate.cert,)


@pytest.mark.parametrize("password", [b"p@ss word", None])
def test_import_pkcs12(
    config: Path, store: CertificateStore, pki: Pki, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], password: bytes | None,
) -> None:
    encryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    pfx = tmp_path / "exported.pfx"
    pfx.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"My FTP Certificate", pki.server.key, pki.server.cert,
            [pki.root.cert, pki.intermediate.cert], encryption,
        )
    )
    stdin = password.decode() + "\n" if password else None
    args = ["cert", "import", str(pfx), "--name", "from windows"]
    if password:
        args.append("--password-stdin")

    assert run(config, *args, stdin=stdin) == 0
    thumb = capsys.readouterr().out.splitlines()[-1]

    stored = store.find("MY", thumb)
    assert thumb == sha1(pki.server.cert)
    assert stored is not None and stored.name == "from windows" and stored.has_key
    assert stored.chain == (pki.intermediate.cert, pki.root.cert)


def test_import_pkcs12_needs_its_password(
    config: Path, pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pfx = tmp_path / "locked.pfx"
    pfx.write_bytes(
        pkcs12.serialize_key_and_certificates(
            None, pki.server.key, pki.server.cert, None,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    assert run(config, "cert", "import", str(pfx), stdin="") == 1
    assert "--password-stdin" in capsys.readouterr().err

    assert run(config, "cert", "import", str(pfx), "--password-stdin", stdin="wrong\n") == 1
    err = capsys.readouterr().err
    assert "wrong password" in err and "Traceback" not in err
    assert not (config.parent / "certs" / "MY" / "locked.pem").exists()


def test_import_encrypted_pem_key(
    config: Path, store: CertificateStore, pki: Pki, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    locked = pki.server.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    bundle = tmp_path / "locked.pem"
    bundle.write_bytes(pem(pki.server.cert) + locked)

    assert run(config, "cert", "import", str(bundle), "--password-stdin", stdin="secret\n") == 0
    stored = store.find("MY", capsys.readouterr().out.splitlines()[-1])
    assert stored is not None and stored.has_key
    # Stored decrypted, for the server to load without a password.
    key_file = config.parent / "certs" / "MY" / "locked.key"
    assert b"ENCRYPTED" not in key_file.read_bytes()


def test_import_pem_with_a_needless_password(
    config: Path, store: CertificateStore, pki: Pki, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bundle = tmp_path / "plain.pem"
    bundle.write_bytes(pem(pki.server.cert) + key_pem(pki.server.key))
    assert run(config, "cert", "import", str(bundle), "--password-stdin", stdin="unused\n") == 0
    stored = store.find("MY", capsys.readouterr().out.splitlines()[-1])
    assert stored is not None and stored.has_key


def test_import_encrypted_pem_key_without_password(
    config: Path, pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    locked = pki.server.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    bundle = tmp_path / "locked.pem"
    bundle.write_bytes(pem(pki.server.cert) + locked)
    assert run(config, "cert", "import", str(bundle), stdin="") == 1
    assert "--password-stdin" in capsys.readouterr().err
    assert run(config, "cert", "import", str(bundle), "--password-stdin", stdin="bad\n") == 1
    assert "cannot import" in capsys.readouterr().err


def test_import_ca_certificate_into_root(
    config: Path, store: CertificateStore, pki: Pki, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    der = tmp_path / "Example Root CA.cer"
    der.write_bytes(pki.root.cert.public_bytes(serialization.Encoding.DER))

    assert run(config, "cert", "import", str(der), "--store", "ROOT") == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[-1] == sha1(pki.root.cert)
    assert "no private key" in captured.err
    assert store.trusted_roots() == [pki.root.cert]


def test_import_refuses_overwrite_and_garbage(
    config: Path, pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "ftp.pem"
    bundle.write_bytes(pem(pki.server.cert) + key_pem(pki.server.key))
    assert run(config, "cert", "import", str(bundle)) == 0
    capsys.readouterr()
    assert run(config, "cert", "import", str(bundle)) == 1
    assert "--name" in capsys.readouterr().err
    assert run(config, "cert", "import", str(bundle), "--name", "again") == 1
    assert "already in store MY as 'ftp'" in capsys.readouterr().err

    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00\x01 nothing")
    assert run(config, "cert", "import", str(junk)) == 1
    assert "cannot import" in capsys.readouterr().err
    assert run(config, "cert", "import", str(tmp_path / "missing.pem")) == 1
    assert "cannot read" in capsys.readouterr().err


# ------------------------------------------------------------------- mapping


def test_mapping_prints_the_strings(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ca = make_ca(subject=name("Example Issuing CA", dcs=("com", "example")))
    client = make_client(ca, serial=0x1234, ski=bytes(range(20)))
    path = tmp_path / "alice.cer"
    path.write_bytes(client.cert.public_bytes(serialization.Encoding.DER))

    assert run(config, "cert", "mapping", str(path)) == 0
    lines = capsys.readouterr().out.splitlines()

    assert lines[0].split() == [
        "IssuerSerial", "X509:<I>DC=com,DC=example,CN=Example", "Issuing", "CA<SR>3412"
    ]
    assert any(line.startswith("SKI") and line.endswith("X509:<SKI>" + bytes(range(20)).hex())
               for line in lines)
    assert any(line.split() == ["UPN", "alice@example.com"] for line in lines)
    assert any(line.startswith("RFC822") and "X509:<RFC822>alice@example.com" in line
               for line in lines)
    methods = [line.split()[0] for line in lines]
    assert methods.index("UPN") < methods.index("IssuerSubject")  # strong forms first


def test_mapping_of_a_pem_file_and_of_garbage(
    config: Path, pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.pem"
    path.write_bytes(pem(pki.client.cert, pki.intermediate.cert))
    assert run(config, "cert", "mapping", str(path)) == 0
    assert "CN=Example Issuing CA<SR>" in capsys.readouterr().out

    path.write_bytes(b"nope")
    assert run(config, "cert", "mapping", str(path)) == 1
    assert "cannot read a certificate" in capsys.readouterr().err

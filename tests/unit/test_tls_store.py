"""The certificate store: folders of PEM files named and found like IIS's store."""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from OpenSSL import crypto

from ftps7.tls.store import (
    CertificateStore,
    CertificateStoreError,
    normalize_thumbprint,
    order_chain,
)
from tests.pki import (
    Issued,
    Pki,
    key_pem,
    make_ca,
    make_key,
    make_leaf,
    make_pki,
    pem,
    write_pem_file,
)


def thumbprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA1()).hex().upper()


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


def test_leaf_chain_and_key_in_one_file(tmp_path: Path, pki: Pki) -> None:
    write_pem_file(
        tmp_path / "MY" / "ftp.pem", [pki.server.cert, pki.intermediate.cert], pki.server.key
    )
    store = CertificateStore(str(tmp_path))

    found = store.find("MY", thumbprint(pki.server.cert))

    assert found is not None
    assert found.name == "ftp"
    assert found.path == str(tmp_path / "MY" / "ftp.pem")
    assert found.leaf == pki.server.cert
    assert found.chain == (pki.intermediate.cert,)
    assert found.has_key
    assert found.key_type == "ecdsa-p256"
    assert found.subject == "CN=ftp.example.com"
    assert found.dns_names == ("ftp.example.com", "localhost")
    assert [str(ip) for ip in found.ip_addresses] == ["127.0.0.1"]
    assert found.not_before == pki.server.cert.not_valid_before_utc
    assert found.not_after.tzinfo is not None
    assert found.thumbprint == thumbprint(pki.server.cert)


def test_prebuilt_openssl_objects_match(tmp_path: Path, pki: Pki) -> None:
    write_pem_file(
        tmp_path / "MY" / "ftp.pem", [pki.server.cert, pki.intermediate.cert], pki.server.key
    )
    found = CertificateStore(str(tmp_path)).list()[0]

    assert isinstance(found.openssl_leaf, crypto.X509)
    assert found.openssl_leaf.to_cryptography() == pki.server.cert
    assert [c.to_cryptography() for c in found.openssl_chain] == [pki.intermediate.cert]
    assert isinstance(found.openssl_key, crypto.PKey)


def test_key_may_come_first_in_the_file(tmp_path: Path, pki: Pki) -> None:
    write_pem_file(tmp_path / "MY" / "a.pem", [pki.server.cert], pki.server.key, key_first=True)
    (found,) = CertificateStore(str(tmp_path)).list("MY")
    assert found.has_key and found.leaf == pki.server.cert


def test_key_in_separate_key_file(tmp_path: Path, pki: Pki) -> None:
    write_pem_file(tmp_path / "MY" / "site.pem", [pki.server.cert, pki.intermediate.cert])
    (tmp_path / "MY" / "site.key").write_bytes(key_pem(pki.server.key))

    (found,) = CertificateStore(str(tmp_path)).list()

    assert found.has_key
    assert found.key_path == str(tmp_path / "MY" / "site.key")


def test_symlinked_certificate_and_key(tmp_path: Path, pki: Pki) -> None:
    # e.g. certbot's live/fullchain.pem and live/privkey.pem linked into MY/
    live = tmp_path / "live"
    write_pem_file(live / "fullchain.pem", [pki.server.cert, pki.intermediate.cert])
    (live / "privkey.pem").write_bytes(key_pem(pki.server.key))
    (tmp_path / "certs" / "MY").mkdir(parents=True)
    (tmp_path / "certs" / "MY" / "ftp.pem").symlink_to(live / "fullchain.pem")
    (tmp_path / "certs" / "MY" / "ftp.key").symlink_to(live / "privkey.pem")

    (found,) = CertificateStore(str(tmp_path / "certs")).list()

    assert found.has_key and found.chain == (pki.intermediate.cert,)


def test_certificate_without_key_is_listed_without_key(tmp_path: Path, pki: Pki) -> None:
    write_pem_file(tmp_path / "MY" / "nokey.pem", [pki.server.cert])
    (found,) = CertificateStore(str(tmp_path)).list()
    assert not found.has_key
    assert found.private_key is None and found.openssl_key is None
    assert "NO PRIVATE KEY" in found.describe()


def test_bad_files_are_skipped_with_a_reason(tmp_path: Path, pki: Pki) -> None:
    my = tmp_path / "MY"
    write_pem_file(my / "good.pem", [pki.server.cert], pki.server.key)
    my.joinpath("garbage.pem").write_bytes(b"this is not PEM\n")
    my.joinpath("truncated.pem").write_bytes(pem(pki.server.cert)[:200])
    write_pem_file(my / "wrongkey.pem", [pki.server.cert], make_key())
    encrypted = pki.server.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    my.joinpath("locked.pem").write_bytes(pem(pki.server.cert) + encrypted)
    my.joinpath("README.txt").write_text("ignored: not a .pem")
    store = CertificateStore(str(tmp_path))

    names = [c.name for c in store.list()]
    problems = store.problems()

    assert names == ["good"]
    assert len(problems) == 4
    joined = "\n".join(problems)
    for bad in ("garbage.pem", "truncated.pem", "wrongkey.pem", "locked.pem"):
        assert bad in joined
    assert "does not belong" in joined
    assert "encrypted" in joined


def test_problem_disappears_when_file_is_fixed_or_removed(tmp_path: Path, pki: Pki) -> None:
    bad = tmp_path / "MY" / "x.pem"
    bad.parent.mkdir()
    bad.write_bytes(b"junk")
    store = CertificateStore(str(tmp_path))
    assert store.list() == [] and len(store.problems()) == 1

    write_pem_file(bad, [pki.server.cert], pki.server.key)
    assert [c.name for c in store.list()] == ["x"]
    assert store.problems() == []

    bad.write_bytes(b"junk again, different size")
    store.list()
    assert len(store.problems()) == 1
    bad.unlink()
    store.list()
    assert store.problems() == []


@pytest.mark.parametrize(
    "typed",
    [
        lambda t: t.lower(),
        lambda t: " ".join(t[i : i + 2] for i in range(0, 40, 2)),  # as IIS shows it
        lambda t: "\u200e" + " ".join(t[i : i + 2] for i in range(0, 40, 2)),  # pasted
        lambda t: ":".join(t[i : i + 2] for i in range(0, 40, 2)),  # as openssl shows it
    ],
)
def test_thumbprint_is_normalised(tmp_path: Path, pki: Pki, typed: Callable[[str], str]) -> None:
    write_pem_file(tmp_path / "MY" / "ftp.pem", [pki.server.cert], pki.server.key)
    store = CertificateStore(str(tmp_path))
    assert store.find("MY", typed(thumbprint(pki.server.cert))) is not None


def test_normalize_thumbprint() -> None:
    assert normalize_thumbprint("\u200e57 68 6f 61") == "57686F61"


def test_unknown_thumbprint_and_missing_store(tmp_path: Path) -> None:
    store = CertificateStore(str(tmp_path / "nowhere"))
    assert store.find("MY", "00" * 20) is None
    assert store.list() == []
    assert store.trusted_roots() == []


def test_store_names_are_case_insensitive(tmp_path: Path, pki: Pki) -> None:
    write_pem_file(tmp_path / "MY" / "a.pem", [pki.server.cert], pki.server.key)
    write_pem_file(tmp_path / "WebHosting" / "b.pem", [pki.client.cert], pki.client.key)
    store = CertificateStore(str(tmp_path))

    assert store.find("my", thumbprint(pki.server.cert)) is not None
    assert store.find("My", thumbprint(pki.server.cert)) is not None
    assert store.find("WEBHOSTING", thumbprint(pki.client.cert)) is not None
    assert store.find("webhosting", thumbprint(pki.client.cert)) is not None
    assert store.find("MY", thumbprint(pki.client.cert)) is None


@pytest.mark.parametrize("bad", ["../MY", "MY/..", "..", ".", "", "a b", "/etc"])
def test_store_names_cannot_escape_the_store(tmp_path: Path, bad: str) -> None:
    with pytest.raises(CertificateStoreError):
        CertificateStore(str(tmp_path)).list(bad)


def test_loading_is_cached_until_the_file_changes(tmp_path: Path, pki: Pki) -> None:
    path = write_pem_file(tmp_path / "MY" / "ftp.pem", [pki.server.cert], pki.server.key)
    store = CertificateStore(str(tmp_path))
    first = store.find("MY", thumbprint(pki.server.cert))
    assert store.find("MY", thumbprint(pki.server.cert)) is first

    other = make_leaf(pki.intermediate, "other.example.com")
    write_pem_file(path, [other.cert], other.key)
    later = datetime.datetime.now().timestamp() + 10
    os.utime(path, (later, later))

    assert store.find("MY", thumbprint(pki.server.cert)) is None
    assert store.find("MY", thumbprint(other.cert)) is not None


def test_key_file_change_is_noticed(tmp_path: Path, pki: Pki) -> None:
    write_pem_file(tmp_path / "MY" / "ftp.pem", [pki.server.cert])
    store = CertificateStore(str(tmp_path))
    assert not store.list()[0].has_key
    (tmp_path / "MY" / "ftp.key").write_bytes(key_pem(pki.server.key))
    assert store.list()[0].has_key


def test_trusted_roots_and_intermediates(tmp_path: Path, pki: Pki) -> None:
    other_root = make_ca("Other Root")
    write_pem_file(tmp_path / "ROOT" / "bundle.pem", [pki.root.cert, other_root.cert])
    der = pki.intermediate.cert.public_bytes(serialization.Encoding.DER)
    (tmp_path / "CA").mkdir()
    (tmp_path / "CA" / "issuing.cer").write_bytes(der)
    (tmp_path / "ROOT" / "junk.crt").write_bytes(b"nope")
    store = CertificateStore(str(tmp_path))

    assert store.trusted_roots() == [pki.root.cert, other_root.cert]
    assert store.intermediates() == [pki.intermediate.cert]
    assert any("junk.crt" in p for p in store.problems())
    assert store.crl_dir == str(tmp_path / "CRL")


def test_add_writes_pem_and_private_key(tmp_path: Path, pki: Pki) -> None:
    root = tmp_path / "certs"
    store = CertificateStore(str(root))

    added = store.add(
        "MY", pki.server.cert, [pki.intermediate.cert], pki.server.key, "My FTP Certificate"
    )

    pem_path = root / "MY" / "My FTP Certificate.pem"
    key_path = root / "MY" / "My FTP Certificate.key"
    assert pem_path.read_bytes() == pem(pki.server.cert, pki.intermediate.cert)
    assert b"PRIVATE KEY" in key_path.read_bytes()
    assert key_path.stat().st_mode & 0o777 == 0o600
    assert root.stat().st_mode & 0o777 == 0o700
    assert (root / "MY").stat().st_mode & 0o777 == 0o700
    assert [p.name for p in (root / "MY").iterdir() if p.name.startswith(".")] == []
    found = store.find("my", added.thumbprint)
    assert found is not None and found.has_key and found.chain == (pki.intermediate.cert,)


def test_add_refuses_to_overwrite(tmp_path: Path, pki: Pki) -> None:
    store = CertificateStore(str(tmp_path))
    store.add("MY", pki.server.cert, [], pki.server.key, "ftp")
    before = (tmp_path / "MY" / "ftp.pem").read_bytes()

    with pytest.raises(CertificateStoreError, match="already exists"):
        store.add("MY", pki.client.cert, [], pki.client.key, "ftp")
    assert (tmp_path / "MY" / "ftp.pem").read_bytes() == before


def test_add_refuses_a_certificate_already_in_the_store(tmp_path: Path, pki: Pki) -> None:
    store = CertificateStore(str(tmp_path))
    store.add("MY", pki.server.cert, [], pki.server.key, "first")
    with pytest.raises(CertificateStoreError, match="already in store MY as 'first'"):
        store.add("my", pki.server.cert, [], pki.server.key, "second")
    assert not (tmp_path / "MY" / "second.key").exists()
    store.add("WebHosting", pki.server.cert, [], pki.server.key, "second")  # another store


def test_add_refuses_a_key_that_does_not_match(tmp_path: Path, pki: Pki) -> None:
    with pytest.raises(CertificateStoreError, match="does not belong"):
        CertificateStore(str(tmp_path)).add("MY", pki.server.cert, [], make_key(), "x")
    assert not (tmp_path / "MY" / "x.pem").exists()


@pytest.mark.parametrize("bad", ["../escape", "a/b", ".hidden", "", "tab\there"])
def test_add_refuses_path_like_names(tmp_path: Path, pki: Pki, bad: str) -> None:
    with pytest.raises(CertificateStoreError):
        CertificateStore(str(tmp_path)).add("MY", pki.server.cert, [], pki.server.key, bad)


def test_add_without_key_writes_no_key_file(tmp_path: Path, pki: Pki) -> None:
    store = CertificateStore(str(tmp_path))
    store.add("ROOT", pki.root.cert, [], None, "root")
    assert sorted(p.name for p in (tmp_path / "ROOT").iterdir()) == ["root.pem"]
    assert store.trusted_roots() == [pki.root.cert]


def test_describe_has_the_facts(tmp_path: Path, pki: Pki) -> None:
    write_pem_file(tmp_path / "MY" / "ftp.pem", [pki.server.cert], pki.server.key)
    (found,) = CertificateStore(str(tmp_path)).list()
    line = found.describe()
    assert "\n" not in line
    for part in (found.thumbprint, "CN=ftp.example.com", "localhost", "127.0.0.1", "ecdsa-p256"):
        assert part in line
    assert found.not_after.strftime("%Y-%m-%d") in line
    assert "EXPIRED" not in line


def test_describe_flags_expired_and_expiring(tmp_path: Path) -> None:
    ca = make_ca()
    now = datetime.datetime.now(datetime.UTC)
    old = make_leaf(
        ca,
        not_before=now - datetime.timedelta(days=30),
        not_after=now - datetime.timedelta(days=1),
    )
    soon = make_leaf(ca, not_after=now + datetime.timedelta(days=10, hours=1))
    store = CertificateStore(str(tmp_path))
    store.add("MY", old.cert, [], old.key, "old")
    store.add("MY", soon.cert, [], soon.key, "soon")
    described = {c.name: c.describe() for c in store.list()}
    assert "EXPIRED" in described["old"]
    assert "EXPIRES IN 10 DAYS" in described["soon"]
    assert store.list()[0].is_expired()


def test_order_chain_puts_issuers_in_order() -> None:
    root = make_ca("Root")
    mid = make_ca("Mid", issuer=root)
    low = make_ca("Low", issuer=mid)
    leaf: Issued = make_leaf(low)
    stray = make_ca("Stray")
    assert order_chain(leaf.cert, [root.cert, stray.cert, mid.cert, low.cert, leaf.cert]) == (
        low.cert,
        mid.cert,
        root.cert,
        stray.cert,
    )


def test_rsa_key_type(tmp_path: Path) -> None:
    ca = make_ca()
    leaf = make_leaf(ca, key_type="rsa-2048")
    store = CertificateStore(str(tmp_path))
    assert store.add("MY", leaf.cert, [], leaf.key, "rsa").key_type == "rsa-2048"

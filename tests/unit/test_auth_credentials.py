"""Credentials objects, identities, and compatibility with stock twisted.cred."""

from __future__ import annotations

import dataclasses
import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.cred import checkers, credentials, portal
from twisted.cred.error import UnauthorizedLogin
from zope.interface import Interface, implementer
from zope.interface.verify import verifyObject

from ftps7.auth.credentials import (
    FTPAnonymous,
    FTPCertificateCredentials,
    FTPUsernamePassword,
    ICertificateCredentials,
    ILogonContext,
)
from ftps7.auth.identity import Identity, normalize_avatar_id


def result_of(deferred):
    results = []
    deferred.addBoth(results.append)
    assert results, "the Deferred has not fired"
    return results[0]


def make_certificate() -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "client")])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


def test_username_password_provides_the_interfaces():
    creds = FTPUsernamePassword(
        b"alice", b"pw", site="Site", client_address=("127.0.0.1", 5000), control_protected=True
    )
    assert verifyObject(credentials.IUsernamePassword, creds)
    assert ILogonContext.providedBy(creds)
    assert creds.checkPassword(b"pw")
    assert creds.checkPassword("pw")
    assert not creds.checkPassword(b"PW")
    assert creds.username_text == "alice"
    assert FTPUsernamePassword(b"\xff", b"x").username_text is None


def test_username_password_refuses_str():
    with pytest.raises(TypeError):
        FTPUsernamePassword("alice", b"pw")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        FTPUsernamePassword(b"alice", "pw")  # type: ignore[arg-type]


def test_credentials_are_frozen_and_hide_secrets():
    creds = FTPUsernamePassword(b"alice", b"distinctive-secret")
    assert "distinctive-secret" not in repr(creds)
    with pytest.raises(dataclasses.FrozenInstanceError):
        creds.username = b"bob"  # type: ignore[misc]
    anonymous = FTPAnonymous(email="distinctive-secret")
    assert "distinctive-secret" not in repr(anonymous)


def test_stock_file_password_db_accepts_our_bytes_credentials(tmp_path):
    """RESEARCH.md E14: FilePasswordDB (--auth file:) compares bytes."""
    path = tmp_path / "passwd"
    path.write_bytes(b"alice:s3cret\nbob:other\n")
    db = checkers.FilePasswordDB(str(path))
    assert result_of(db.requestAvatarId(FTPUsernamePassword(b"alice", b"s3cret"))) == b"alice"
    failure = result_of(db.requestAvatarId(FTPUsernamePassword(b"alice", b"wrong")))
    assert failure.check(UnauthorizedLogin)


def test_stock_in_memory_checker_accepts_our_credentials():
    db = checkers.InMemoryUsernamePasswordDatabaseDontUse(alice=b"pw")
    assert result_of(db.requestAvatarId(FTPUsernamePassword(b"alice", b"pw"))) == b"alice"


def test_anonymous_credentials_work_with_the_stock_checker():
    creds = FTPAnonymous(site="Site", client_address=("::1", 4000))
    assert credentials.IAnonymous.providedBy(creds)
    assert ILogonContext.providedBy(creds)
    avatar_id = result_of(checkers.AllowAnonymousAccess().requestAvatarId(creds))
    assert normalize_avatar_id(avatar_id, None, "IUSR") == Identity(
        "IUSR", anonymous=True, source="local"
    )


def test_certificate_credentials():
    certificate = make_certificate()
    creds = FTPCertificateCredentials(
        username="alice", certificate=certificate, site="Site", client_address=("::1", 1)
    )
    assert verifyObject(ICertificateCredentials, creds)
    assert ILogonContext.providedBy(creds)
    assert creds.chain == ()
    assert creds.control_protected


def test_identity_normalises_groups():
    identity = Identity("alice", frozenset({"Editors", "STAFF"}))
    assert identity.groups == frozenset({"editors", "staff"})
    assert identity.in_group("EDITORS")
    with pytest.raises(ValueError):
        Identity("alice", source="elsewhere")
    with pytest.raises(ValueError):
        Identity("")


def test_normalize_avatar_id():
    def groups_for(name: str) -> frozenset[str]:
        return frozenset({"Staff"}) if name == "alice" else frozenset()

    assert normalize_avatar_id(b"alice", groups_for) == Identity(
        "alice", frozenset({"staff"}), source="plugin"
    )
    assert normalize_avatar_id("bob", None) == Identity("bob", source="plugin")
    assert normalize_avatar_id("J\u00fcrgen".encode(), None).name == "J\u00fcrgen"
    identity = Identity("carol", source="directory", domain="EXAMPLE")
    assert normalize_avatar_id(identity, groups_for) is identity
    assert normalize_avatar_id((), None, "guest").anonymous
    with pytest.raises(UnauthorizedLogin):
        normalize_avatar_id(b"\xff\xfe", None)
    with pytest.raises(UnauthorizedLogin):
        normalize_avatar_id(b"", None)
    with pytest.raises(UnauthorizedLogin):
        normalize_avatar_id("a\nb", None)
    with pytest.raises(TypeError):
        normalize_avatar_id(42, None)


def test_portal_with_a_stock_checker_and_normalisation(tmp_path):
    """The whole path a third-party --auth checker takes to an Identity."""
    path = tmp_path / "passwd"
    path.write_bytes(b"alice:pw\n")

    class IAvatar(Interface):
        pass

    @implementer(portal.IRealm)
    class Realm:
        def requestAvatar(self, avatar_id, mind, *interfaces):
            identity = normalize_avatar_id(avatar_id, lambda name: frozenset({"G"}))
            return interfaces[0], identity, lambda: None

    the_portal = portal.Portal(Realm(), [checkers.FilePasswordDB(str(path))])
    _iface, avatar, _logout = result_of(
        the_portal.login(FTPUsernamePassword(b"alice", b"pw"), None, IAvatar)
    )
    assert avatar == Identity("alice", frozenset({"g"}), source="plugin")

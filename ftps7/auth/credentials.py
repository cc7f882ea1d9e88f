"""The credentials the FTP protocol hands to ``Portal.login``.

We never subclass Portal (DESIGN habit 2): a checker sees only the credentials
object, so everything a checker may need to decide travels inside it, frozen:
the site the client selected, the client address, the peer certificate
presented during the TLS handshake and whether the control channel was
protected when the credentials were sent. :class:`ILogonContext` names that
common part so a checker can read it from any of our credential types.

``FTPUsernamePassword`` carries **bytes**: the stock twisted.cred checkers
(``FilePasswordDB`` behind ``--auth file:``,
``InMemoryUsernamePasswordDatabaseDontUse``) compare bytes and reject str
(RESEARCH.md E14), so str here would silently break every third-party
checker. The constructor refuses str to catch that mistake early.

Passwords are excluded from ``repr`` so that logging a credentials object can
never leak one (DESIGN habit 12).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from cryptography import x509
from twisted.cred.credentials import IAnonymous, IUsernamePassword
from zope.interface import Attribute, Interface, implementer

ClientAddress = tuple[str, int]


class ILogonContext(Interface):
    """Where and how a logon attempt arrived; provided by all our credentials."""

    site = Attribute("The name of the site the client selected (str; '' if unknown).")
    client_address = Attribute("The client's (host, port), or None when unknown.")
    certificate = Attribute(
        "The client's TLS certificate (cryptography.x509.Certificate) or None."
    )
    control_protected = Attribute("Whether the control channel was under TLS (bool).")


class ICertificateCredentials(Interface):
    """A logon by client certificate (IIS clientCertAuthentication).

    The certificate has already passed TLS-level chain validation by the time
    these credentials exist; the checker decides which account it maps to.
    """

    username = Attribute("The USER argument as text (str); may be empty.")
    certificate = Attribute("The validated client certificate (x509.Certificate).")
    chain = Attribute("The rest of the presented chain, leaf excluded (tuple).")
    site = Attribute("The name of the site the client selected (str).")
    client_address = Attribute("The client's (host, port), or None when unknown.")


def _require_bytes(value: object, what: str) -> None:
    if not isinstance(value, bytes):
        raise TypeError(
            f"{what} must be bytes (stock twisted.cred checkers reject str), "
            f"not {type(value).__name__}"
        )


@implementer(IUsernamePassword, ILogonContext)
@dataclass(frozen=True)
class FTPUsernamePassword:
    """USER/PASS credentials, as bytes, plus the logon context."""

    username: bytes
    password: bytes = field(repr=False)
    site: str = ""
    client_address: ClientAddress | None = None
    certificate: x509.Certificate | None = None
    control_protected: bool = False

    def __post_init__(self) -> None:
        _require_bytes(self.username, "username")
        _require_bytes(self.password, "password")

    def checkPassword(self, password: bytes | str) -> bool:
        """Compare in constant time with a stored plaintext password.

        Only checkers that keep plaintext passwords use this (``FilePasswordDB``
        without a hash function); ours never do.
        """
        if isinstance(password, str):
            password = password.encode("utf-8")
        return hmac.compare_digest(self.password, password)

    @property
    def username_text(self) -> str | None:
        """The user name as text, or None when it is not valid UTF-8."""
        try:
            return self.username.decode("utf-8")
        except UnicodeDecodeError:
            return None


@implementer(IAnonymous, ILogonContext)
@dataclass(frozen=True)
class FTPAnonymous:
    """An anonymous logon (USER anonymous/ftp); ``email`` is whatever PASS sent.

    ``email`` is kept out of ``repr``: users do type real passwords there.
    """

    site: str = ""
    client_address: ClientAddress | None = None
    certificate: x509.Certificate | None = None
    control_protected: bool = False
    email: str = field(default="", repr=False)


@implementer(ICertificateCredentials, ILogonContext)
@dataclass(frozen=True)
class FTPCertificateCredentials:
    """A logon by client certificate, built by the protocol after the handshake."""

    username: str
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()
    site: str = ""
    client_address: ClientAddress | None = None
    # A certificate can only arrive over TLS; kept for ILogonContext symmetry.
    control_protected: bool = True

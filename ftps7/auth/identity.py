"""Who a logon turned out to be: the avatar id every ftps7 checker returns.

twisted.cred lets a checker return any object as the avatar id; stock checkers
return ``bytes`` (``FilePasswordDB``), ``str``, or ``checkers.ANONYMOUS`` (an
empty tuple). The realm and the authorization rules need more than a name:
the groups (IIS "roles"), whether the session is anonymous, the logon domain
(for ``userIsolation`` folder names) and where the account came from. So our
checkers return an :class:`Identity`, and :func:`normalize_avatar_id` turns
what third-party ``--auth`` checkers return into one, so the rest of the
server deals with a single shape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from twisted.cred.error import UnauthorizedLogin

#: Where an identity came from; the realm and the logs use it.
SOURCES = frozenset({"local", "pam", "directory", "certificate", "plugin"})

#: IIS's default anonymous account (``anonymousAuthentication userName``).
DEFAULT_ANONYMOUS_NAME = "IUSR"


def normalize_groups(groups: Iterable[str]) -> frozenset[str]:
    """Lower-case group names, as the authorization rules store their roles."""
    return frozenset(group.lower() for group in groups if group)


@dataclass(frozen=True)
class Identity:
    """The authenticated user of one session.

    ``groups`` is always lower-cased (normalised on construction) because the
    authorization rules compare roles case-insensitively, as Windows does.
    ``domain`` is empty for local and PAM accounts and the NetBIOS domain for
    directory accounts (``DOMAIN\\user``), which user isolation needs.
    """

    name: str
    groups: frozenset[str] = frozenset()
    anonymous: bool = False
    domain: str = ""
    source: str = "local"
    # msIIS-FTPRoot / msIIS-FTPDir of a directory account (userIsolation ActiveDirectory).
    ftp_root: str | None = None
    ftp_dir: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("an identity needs a non-empty str name")
        if self.source not in SOURCES:
            raise ValueError(f"unknown identity source {self.source!r}")
        # Frozen: normalise through object.__setattr__ (the dataclass idiom).
        object.__setattr__(self, "groups", normalize_groups(self.groups))

    def in_group(self, group: str) -> bool:
        """Case-insensitive group membership."""
        return group.lower() in self.groups


def _valid_avatar_name(name: str) -> bool:
    """A name we are willing to carry into logs, paths and rules."""
    return bool(name) and all(ch.isprintable() for ch in name)


def normalize_avatar_id(
    avatar_id: object,
    groups_for: Callable[[str], frozenset[str]] | None,
    anonymous_name: str = DEFAULT_ANONYMOUS_NAME,
) -> Identity:
    """Turn any checker's avatar id into an :class:`Identity`.

    - an :class:`Identity` is returned unchanged;
    - ``bytes`` (stock checkers such as ``FilePasswordDB``) are decoded as
      UTF-8; ``str`` is taken as is; either becomes a ``source="plugin"``
      identity whose groups come from ``groups_for(name)`` when given (for
      instance the local accounts file), so roles still work for users that a
      third-party checker authenticated;
    - ``twisted.cred.checkers.ANONYMOUS`` (the empty tuple returned by
      ``AllowAnonymousAccess``) becomes the anonymous identity
      ``anonymous_name`` (IIS's ``userName``, default ``IUSR``).

    A name that is not UTF-8, is empty or holds control characters fails
    closed with ``UnauthorizedLogin`` (the logon is refused rather than a
    strange name reaching paths and logs). Any other type is a programming
    error and raises ``TypeError``. ``groups_for`` runs on the caller's thread,
    so it must be fast (no file or network I/O).
    """
    if isinstance(avatar_id, Identity):
        return avatar_id
    if avatar_id == ():
        return Identity(name=anonymous_name, anonymous=True, source="local")
    if isinstance(avatar_id, bytes):
        try:
            name = avatar_id.decode("utf-8")
        except UnicodeDecodeError:
            raise UnauthorizedLogin("avatar id is not UTF-8") from None
    elif isinstance(avatar_id, str):
        name = avatar_id
    else:
        raise TypeError(f"unsupported avatar id type {type(avatar_id).__name__}")
    if not _valid_avatar_name(name):
        raise UnauthorizedLogin("avatar id is not a usable name")
    groups = groups_for(name) if groups_for is not None else frozenset()
    return Identity(name=name, groups=groups, source="plugin")

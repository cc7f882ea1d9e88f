"""IIS FTP authorization rules and request filtering, as pure functions.

Rules come from ``<location path="SITE[/path]"><system.ftpServer><security>
<authorization>`` sections (and a server-wide section outside any location).
For one request the effective rule list is built top-down:

1. the server-wide section (site None, path ``/``),
2. the site's ``/`` section,
3. each deeper location whose path is a segment-wise prefix of the request
   path, shallowest first.

Each section appends its rules to what it inherited, unless it declares
``<clear/>``, which drops everything inherited first. Site names and path
segments compare case-insensitively, as IIS does (so a rule on
``/Upload`` also governs a Linux folder spelled ``/upload``).

A rule matches the user when its ``users`` contain ``*`` (everyone), ``?``
and the session is anonymous, the user's name (case-insensitive; the
anonymous account's own name, e.g. ``IUSR``, matches by name too), or when
its ``roles`` contain one of the user's groups. A permission (Read, Write)
is granted iff a matching Allow rule grants it and no matching Deny rule
denies it: Deny wins, and no matching Allow means denied.

See docs/authorization.md for worked examples.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterable, Sequence

from ftps7.config.model import (
    AccessType,
    AuthorizationRule,
    AuthorizationSection,
    LocationKey,
    Permission,
    RequestFiltering,
)
from ftps7.core import paths

__all__ = [
    "Authorizer",
    "FilterReason",
    "PathRole",
    "extension_allowed",
    "filters_extensions",
    "permission_checks",
    "request_filter_allows",
    "required_permission",
]

_Key = tuple[str | None, tuple[str, ...]]


def _path_key(path: str) -> tuple[str, ...]:
    return tuple(part.lower() for part in paths.segments(paths.normalize(path)))


#: (site, user, groups, anonymous) combinations whose can_log_on answer is kept.
LOGON_CACHE_SIZE = 4096


class Authorizer:
    """The authorization sections of one configuration, ready for lookups.

    Built once per loaded configuration; every lookup is a handful of dict
    probes (one per path depth), cheap enough for the reactor thread.
    """

    def __init__(self, sections: Sequence[tuple[LocationKey, AuthorizationSection]]) -> None:
        self._sections: dict[_Key, list[AuthorizationSection]] = {}
        self._site_paths: dict[str | None, list[str]] = {}
        for location, section in sections:
            site = location.site.lower() if location.site is not None else None
            key: _Key = (site, _path_key(location.path))
            self._sections.setdefault(key, []).append(section)
            self._site_paths.setdefault(site, []).append(paths.normalize(location.path))
        # The rules never change and every logon asks (~2 % of a logon's
        # reactor time): answers are kept.
        self._can_log_on = functools.lru_cache(maxsize=LOGON_CACHE_SIZE)(self._decide_logon)

    def effective_rules(self, site: str, site_path: str) -> tuple[AuthorizationRule, ...]:
        """The rules that apply at ``site_path`` of ``site``, in evaluation order."""
        site_key = site.lower()
        parts = _path_key(site_path)
        rules: list[AuthorizationRule] = []
        for depth in range(len(parts) + 1):
            for owner in (None, site_key):
                for section in self._sections.get((owner, parts[:depth]), ()):
                    if section.clear:
                        rules.clear()
                    rules.extend(section.rules)
        return tuple(rules)

    def has_rules_below(self, site: str, site_path: str) -> bool:
        """Whether any location lies strictly below ``site_path``.

        When none does, every entry of that directory has the same effective
        rules, so a listing can compute permissions once instead of per entry.
        """
        site_key = site.lower()
        parts = _path_key(site_path)
        depth = len(parts)
        return any(
            owner in (None, site_key) and len(key) > depth and key[:depth] == parts
            for owner, key in self._sections
        )

    def permissions(
        self,
        site: str,
        site_path: str,
        user: str,
        groups: Iterable[str],
        anonymous: bool,
    ) -> Permission:
        """What ``user`` may do at ``site_path``: Read, Write, both or neither."""
        name = user.lower()
        roles = frozenset(group.lower() for group in groups)
        allowed = Permission.NONE
        denied = Permission.NONE
        for rule in self.effective_rules(site, site_path):
            if not _matches(rule, name, roles, anonymous):
                continue
            if rule.access_type is AccessType.ALLOW:
                allowed |= rule.permissions
            else:
                denied |= rule.permissions
        return allowed & ~denied

    def can_log_on(self, site: str, user: str, groups: Iterable[str], anonymous: bool) -> bool:
        """Whether the user may log on to ``site`` at all.

        IIS answers 530 at logon when the user has no access to the site:
        here, True iff the site's root or some location declared under it
        grants this user Read or Write. A user allowed only in ``/upload``
        may log on (and then sees "550 Access is denied." everywhere else).
        """
        return self._can_log_on(site, user, frozenset(groups), anonymous)

    def _decide_logon(self, site: str, user: str, groups: frozenset[str], anonymous: bool) -> bool:
        candidates = {"/"}
        for owner in (None, site.lower()):
            candidates.update(self._site_paths.get(owner, ()))
        return any(
            self.permissions(site, path, user, groups, anonymous) is not Permission.NONE
            for path in sorted(candidates)
        )


def _matches(rule: AuthorizationRule, name: str, roles: frozenset[str], anonymous: bool) -> bool:
    users = rule.users
    if "*" in users or name in users or (anonymous and "?" in users):
        return True
    return not rule.roles.isdisjoint(roles)


# --------------------------------------------------------------------------
# Which permission each FTP command needs


class PathRole(enum.Enum):
    """Which path of a command a permission check applies to."""

    TARGET = "target"  # the command's own argument (or the working directory)
    RENAME_SOURCE = "rename-source"  # the path remembered from RNFR (checked again at RNTO)


# fmt: off
_READ_COMMANDS = frozenset({
    "RETR", "LIST", "NLST", "MLSD", "MLST", "SIZE", "MDTM", "STAT",
    "CWD", "XCWD", "CDUP", "XCUP", "HASH",
})
_WRITE_COMMANDS = frozenset({
    "STOR", "APPE", "STOU", "DELE", "MKD", "XMKD", "RMD", "XRMD", "RNFR", "RNTO", "MFMT",
})
# fmt: on


def required_permission(command: str) -> Permission:
    """The permission a file command needs on its target path.

    Read for RETR, LIST, NLST, MLSD, MLST, SIZE, MDTM, STAT <path>, HASH and
    CWD/CDUP (entering a directory); Write for STOR, APPE, STOU, DELE, MKD,
    RMD, RNFR, RNTO and MFMT; NONE for commands that touch no path.
    """
    upper = command.upper()
    if upper in _READ_COMMANDS:
        return Permission.READ
    if upper in _WRITE_COMMANDS:
        return Permission.WRITE
    return Permission.NONE


def permission_checks(command: str) -> tuple[tuple[PathRole, Permission], ...]:
    """Every (path, permission) check a command needs, in the order to make them.

    RNTO needs Write on the new name *and* still on the source named by RNFR
    (rules may differ between the two folders).
    """
    needed = required_permission(command)
    if needed is Permission.NONE:
        return ()
    if command.upper() == "RNTO":
        return ((PathRole.RENAME_SOURCE, Permission.WRITE), (PathRole.TARGET, Permission.WRITE))
    return ((PathRole.TARGET, needed),)


# --------------------------------------------------------------------------
# system.ftpServer/security/requestFiltering


class FilterReason(enum.StrEnum):
    """Why request filtering refused a path (the server maps each to a 550)."""

    URL_TOO_LONG = "URL too long"
    DENIED_SEQUENCE = "denied URL sequence"
    HIDDEN_SEGMENT = "hidden segment"  # answer as if the path did not exist
    EXTENSION_DENIED = "file extension denied"


def _extension(name: str) -> str:
    dot = name.rfind(".")
    return name[dot:].lower() if dot >= 0 else ""


def request_filter_allows(
    path: str, request_filtering: RequestFiltering, *, check_extension: bool = True
) -> FilterReason | None:
    """None when ``path`` passes request filtering, else the reason it does not.

    - ``maxUrl``: the path's UTF-8 length in bytes must not exceed it;
    - ``denyUrlSequences``: no configured sequence may occur in the path
      (case-insensitive substring);
    - ``hiddenSegments``: no segment may equal a hidden one (case-insensitive);
      the server should answer as for a missing file;
    - ``fileExtensions``: the final segment's extension (from its last dot,
      lower-cased; ``.htaccess`` has the extension ``.htaccess``) must be
      allowed by a rule, or unlisted with ``allowUnlisted``. Pass
      ``check_extension=False`` for operations on directories (CWD, LIST,
      MKD, RMD), so that ``allowUnlisted="false"`` does not hide every folder.

    Pass the path the user typed, canonicalised (the user path): with user
    isolation the folders above the user's root are not part of the request.
    """
    if len(path.encode("utf-8", "surrogateescape")) > request_filtering.max_url:
        return FilterReason.URL_TOO_LONG
    lowered = path.lower()
    for sequence in request_filtering.deny_url_sequences:
        if sequence and sequence.lower() in lowered:
            return FilterReason.DENIED_SEQUENCE
    hidden = {segment.lower() for segment in request_filtering.hidden_segments}
    parts = paths.segments(path)
    if any(part.lower() in hidden for part in parts):
        return FilterReason.HIDDEN_SEGMENT
    if check_extension and parts and not extension_allowed(parts[-1], request_filtering):
        return FilterReason.EXTENSION_DENIED
    return None


def filters_extensions(request_filtering: RequestFiltering) -> bool:
    """Can ``fileExtensions`` refuse anything at all?"""
    return bool(request_filtering.file_extensions) or not (
        request_filtering.file_extensions_allow_unlisted
    )


def extension_allowed(name: str, request_filtering: RequestFiltering) -> bool:
    """Does ``fileExtensions`` allow a file called ``name``? The rule for its
    extension decides, else ``allowUnlisted``."""
    extension = _extension(name)
    for rule in request_filtering.file_extensions:
        if rule.extension.lower() == extension:
            return rule.allowed
    return request_filtering.file_extensions_allow_unlisted

"""Attribute value types: text in, typed value out, or a `BadValueError` saying what is accepted.

Each type follows the IIS configuration system's rules for the same kind of
attribute (booleans ``true``/``false``, enums and flags matched without regard
to case, time spans ``hh:mm:ss``), plus what Linux needs (``%NAME%`` from the
environment, paths relative to the configuration file). The types are small
objects rather than functions so the schema can list them declaratively and
``accepted`` can be produced from the same place as the parsing.
"""

from __future__ import annotations

import enum
import ipaddress
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

UINT32_MAX = 4294967295
INT64_MAX = 2**63 - 1


class BadValueError(Exception):
    """The text of an attribute is not acceptable."""

    def __init__(self, message: str, accepted: Sequence[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.accepted = tuple(accepted) if accepted is not None else None


@dataclass(frozen=True)
class ValueContext:
    """What a value type may need besides the text: where relative paths start, the
    environment for ``%NAME%``, and a way to warn about accepted-but-ignored parts."""

    base_dir: str
    environ: Mapping[str, str]
    warn: Callable[[str], None]


class ValueType(Protocol):
    def parse(self, raw: str, ctx: ValueContext) -> Any: ...


def _bad(raw: str) -> str:
    return f"bad value {raw!r}"


# --------------------------------------------------------------------------
# Scalars


@dataclass(frozen=True)
class Bool:
    def parse(self, raw: str, ctx: ValueContext) -> bool:
        text = raw.strip().lower()
        if text == "true":
            return True
        if text == "false":
            return False
        raise BadValueError(_bad(raw), ("true", "false"))


@dataclass(frozen=True)
class Integer:
    """A whole number in ``low..high``; ``also`` lists single extra values (0 = "any")."""

    low: int
    high: int
    also: tuple[int, ...] = ()

    def accepted(self) -> tuple[str, ...]:
        return (*(str(value) for value in self.also), f"{self.low}..{self.high}")

    def parse(self, raw: str, ctx: ValueContext) -> int:
        text = raw.strip()
        if not re.fullmatch(r"[0-9]{1,20}", text):
            raise BadValueError(_bad(raw) + " (not a whole number)", self.accepted())
        value = int(text)
        if value in self.also or self.low <= value <= self.high:
            return value
        raise BadValueError(_bad(raw) + " (out of range)", self.accepted())


@dataclass(frozen=True)
class Seconds:
    """Whole seconds, as IIS writes the ``connections`` time-outs; gives a float."""

    low: int
    high: int

    def parse(self, raw: str, ctx: ValueContext) -> float:
        return float(Integer(self.low, self.high).parse(raw, ctx))


_TIMESPAN = re.compile(
    r"(?:(?P<days>[0-9]{1,8})\.)?(?P<h>[0-9]{1,2}):(?P<m>[0-9]{1,2}):(?P<s>[0-9]{1,2})"
    r"(?:\.(?P<frac>[0-9]{1,7}))?"
)


@dataclass(frozen=True)
class TimeSpan:
    """IIS/.NET time span ``hh:mm:ss`` or ``d.hh:mm:ss`` (optionally ``.fffffff``) in seconds."""

    minimum: float = 0.0

    def parse(self, raw: str, ctx: ValueContext) -> float:
        accepted = ("hh:mm:ss", "d.hh:mm:ss")
        match = _TIMESPAN.fullmatch(raw.strip())
        if match is None:
            raise BadValueError(_bad(raw) + " (not a time span)", accepted)
        hours, minutes, seconds = int(match["h"]), int(match["m"]), int(match["s"])
        if hours > 23 or minutes > 59 or seconds > 59:
            raise BadValueError(_bad(raw) + " (hours 0-23, minutes and seconds 0-59)", accepted)
        total = int(match["days"] or 0) * 86400 + hours * 3600 + minutes * 60 + seconds
        value = total + (float("0." + match["frac"]) if match["frac"] else 0.0)
        if value < self.minimum:
            raise BadValueError(
                _bad(raw) + f" (must be at least {self.minimum:g} seconds)", accepted
            )
        return value


@dataclass(frozen=True)
class Text:
    """A string. ``strip`` trims spaces; ``required`` refuses an empty value;
    ``empty_none`` turns an empty value into None; ``case`` normalises."""

    required: bool = False
    strip: bool = True
    empty_none: bool = False
    case: str | None = None  # "upper" | "lower"
    pattern: str | None = None
    pattern_text: str | None = None  # what the pattern accepts, for the message

    def parse(self, raw: str, ctx: ValueContext) -> str | None:
        text = raw.strip() if self.strip else raw
        if not text:
            if self.required:
                raise BadValueError("the value must not be empty")
            if self.empty_none:
                return None
            return text
        if self.case == "upper":
            text = text.upper()
        elif self.case == "lower":
            text = text.lower()
        if self.pattern is not None and not re.fullmatch(self.pattern, text):
            raise BadValueError(_bad(raw), (self.pattern_text,) if self.pattern_text else None)
        return text


@dataclass(frozen=True)
class Choice:
    """One of a fixed list of strings, matched without case, returned as spelled here."""

    choices: tuple[str, ...]

    def parse(self, raw: str, ctx: ValueContext) -> str:
        wanted = raw.strip().lower()
        for choice in self.choices:
            if choice.lower() == wanted:
                return choice
        raise BadValueError(_bad(raw), self.choices)


# --------------------------------------------------------------------------
# Enumerations and flags


@dataclass(frozen=True)
class EnumOf:
    """An IIS enum (matched without case). ``refused`` maps IIS values that ftps7 cannot
    honour to the reason, so the message says why rather than just "bad value"."""

    enum_type: type[enum.Enum]
    refused: Mapping[str, str] | None = None

    def accepted(self) -> tuple[str, ...]:
        return tuple(str(member.value) for member in self.enum_type)

    def parse(self, raw: str, ctx: ValueContext) -> enum.Enum:
        wanted = raw.strip().lower()
        for member in self.enum_type:
            if str(member.value).lower() == wanted:
                return member
        for name, reason in (self.refused or {}).items():
            if name.lower() == wanted:
                raise BadValueError(f"value {raw!r} is not supported: {reason}", self.accepted())
        raise BadValueError(_bad(raw), self.accepted())


def _split_list(raw: str) -> list[str]:
    return [item.strip() for item in raw.split(",") if item.strip()]


@dataclass(frozen=True)
class FlagsOf:
    """IIS flags: comma-separated names (spaces allowed, any case) OR-ed together.

    ``ignored`` names are IIS flags that ftps7 accepts but does not implement: a
    warning, not an error, because real IIS files carry them.
    """

    names: Mapping[str, enum.Flag]
    zero: enum.Flag
    ignored: tuple[str, ...] = ()

    def parse(self, raw: str, ctx: ValueContext) -> enum.Flag:
        result = self.zero
        for item in _split_list(raw):
            found = _lookup(self.names, item)
            if found is not None:
                result = result | found
                continue
            ignored = next((name for name in self.ignored if name.lower() == item.lower()), None)
            if ignored is not None:
                ctx.warn(f"flag {ignored} is an IIS setting that ftps7 does not implement; ignored")
                continue
            raise BadValueError(f"bad flag {item!r} in {raw!r}", (*self.names, *self.ignored))
        return result


def _lookup(names: Mapping[str, Any], item: str) -> Any:
    for name, value in names.items():
        if name.lower() == item.lower():
            return value
    return None


@dataclass(frozen=True)
class NameList:
    """Comma-separated names from a fixed set, kept in order without repeats; gives a tuple
    of the mapped values (the canonical spelling, or an enum member)."""

    names: Mapping[str, Any]

    def parse(self, raw: str, ctx: ValueContext) -> tuple[Any, ...]:
        result: list[Any] = []
        for item in _split_list(raw):
            value = _lookup(self.names, item)
            if value is None:
                raise BadValueError(f"bad name {item!r} in {raw!r}", tuple(self.names))
            if value not in result:
                result.append(value)
        return tuple(result)


@dataclass(frozen=True)
class Principals:
    """``users``/``roles`` of an authorization rule: comma-separated, trimmed, lower-cased."""

    def parse(self, raw: str, ctx: ValueContext) -> frozenset[str]:
        return frozenset(item.lower() for item in _split_list(raw))


# --------------------------------------------------------------------------
# Security-relevant strings


_INVISIBLE = dict.fromkeys(map(ord, "\u200e\u200f\u200b\u200c\u200d\ufeff\u00a0: \t\r\n"))


@dataclass(frozen=True)
class Thumbprint:
    """A SHA-1 certificate thumbprint: 40 hex digits, given upper case.

    Spaces (the certificate dialog shows ``57 68 6f ...``), colons (OpenSSL's
    fingerprint format) and the invisible left-to-right mark that copying from
    the Windows certificate dialog adds are removed first. Empty = no certificate.
    """

    def parse(self, raw: str, ctx: ValueContext) -> str | None:
        text = raw.translate(_INVISIBLE)
        if not text:
            return None
        if not re.fullmatch(r"[0-9A-Fa-f]{40}", text):
            raise BadValueError(_bad(raw), ("40 hexadecimal digits (a SHA-1 thumbprint)",))
        return text.upper()


_ENV_VAR = re.compile(r"%([A-Za-z_][A-Za-z0-9_]*)%")


def expand_environment(raw: str, environ: Mapping[str, str]) -> str:
    """Replace every ``%NAME%`` from ``environ``; an unknown name is an error."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in environ:
            raise BadValueError(f"unknown environment variable %{name}% in {raw!r}")
        return environ[name]

    return _ENV_VAR.sub(replace, raw)


@dataclass(frozen=True)
class Path:
    """A file-system path: ``%NAME%`` expanded, relative to the configuration's folder.

    ``must_be_dir`` checks existence (virtual directories: serving from a folder
    that is not there is a configuration mistake, not a run-time surprise).
    """

    must_be_dir: bool = False
    empty_none: bool = False

    def parse(self, raw: str, ctx: ValueContext) -> str | None:
        text = raw.strip()
        if not text:
            if self.empty_none:
                return None
            raise BadValueError("the path must not be empty")
        expanded = expand_environment(text, ctx.environ)
        if "\x00" in expanded:
            raise BadValueError(_bad(raw) + " (NUL character)")
        path = os.path.normpath(os.path.join(ctx.base_dir, expanded))
        if self.must_be_dir and not os.path.isdir(path):
            what = "does not exist" if not os.path.exists(path) else "is not a directory"
            raise BadValueError(f"path {path!r} {what}", ("an existing directory",))
        return path


def normalize_ftp_path(raw: str) -> str:
    """``/a//b/`` → ``/a/b``; must start with ``/`` and have no ``.``/``..`` segments."""
    text = raw.strip()
    if not text.startswith("/"):
        raise BadValueError(_bad(raw) + " (must start with '/')", ("/", "/name", "/name/sub"))
    segments = [segment for segment in text.split("/") if segment]
    for segment in segments:
        if segment in (".", "..") or "\\" in segment or "\x00" in segment:
            raise BadValueError(_bad(raw) + f" (segment {segment!r} is not allowed)")
    return "/" + "/".join(segments)


@dataclass(frozen=True)
class FtpPath:
    def parse(self, raw: str, ctx: ValueContext) -> str:
        return normalize_ftp_path(raw)


@dataclass(frozen=True)
class IpAddress:
    """An IP address (``version`` 4 or 6 to restrict); gives its canonical text."""

    version: int | None = None
    empty_none: bool = False

    def parse(self, raw: str, ctx: ValueContext) -> str | None:
        text = raw.strip()
        if not text and self.empty_none:
            return None
        accepted = {4: ("an IPv4 address",), 6: ("an IPv6 address",)}.get(
            self.version or 0, ("an IPv4 or IPv6 address",)
        )
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            raise BadValueError(_bad(raw), accepted) from None
        if self.version is not None and address.version != self.version:
            raise BadValueError(_bad(raw), accepted)
        return str(address)


@dataclass(frozen=True)
class SubnetMask:
    """A dotted IPv4 mask (``255.255.0.0``), an IPv6 mask, or a prefix length; canonical text."""

    def parse(self, raw: str, ctx: ValueContext) -> str:
        text = raw.strip()
        accepted = ("a dotted mask such as 255.255.255.0", "a prefix length 0..128")
        if text.isdigit():
            if int(text) > 128:
                raise BadValueError(_bad(raw), accepted)
            return str(int(text))
        try:
            mask = ipaddress.ip_address(text)
            # A network whose netmask is this text exists only if the mask is contiguous.
            zero = "0.0.0.0" if mask.version == 4 else "::"  # noqa: S104 - not a bind address
            ipaddress.ip_network(f"{zero}/{text}")
        except ValueError:
            raise BadValueError(_bad(raw) + " (not a contiguous mask)", accepted) from None
        return str(mask)


@dataclass(frozen=True)
class Networks:
    """Comma-separated addresses or CIDR networks (``127.0.0.1, 10.0.0.0/8, ::1``)."""

    def parse(self, raw: str, ctx: ValueContext) -> tuple[str, ...]:
        result: list[str] = []
        for item in _split_list(raw):
            try:
                network = ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise BadValueError(
                    f"bad address {item!r} in {raw!r}", ("IP addresses or CIDR networks",)
                ) from None
            text = str(network)
            if text not in result:
                result.append(text)
        return tuple(result)


@dataclass(frozen=True)
class LdapUrl:
    """``ldap://host[:port]`` or ``ldaps://host[:port]``; nothing else is a directory URL."""

    def parse(self, raw: str, ctx: ValueContext) -> str:
        text = raw.strip()
        accepted = ("ldap://host[:port]", "ldaps://host[:port]")
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError:
            raise BadValueError(_bad(raw), accepted) from None
        if parts.scheme.lower() not in ("ldap", "ldaps") or not parts.hostname:
            raise BadValueError(_bad(raw), accepted)
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise BadValueError(_bad(raw) + " (no path, query or fragment)", accepted)
        if parts.username is not None or parts.password is not None:
            raise BadValueError(_bad(raw) + " (no credentials in the URL)", accepted)
        if port == 0:
            raise BadValueError(_bad(raw) + " (port out of range)", accepted)
        return text


@dataclass(frozen=True)
class Ciphers:
    """An OpenSSL cipher string, checked with OpenSSL itself so a typo fails at load time."""

    def parse(self, raw: str, ctx: ValueContext) -> str:
        text = raw.strip()
        if not text:
            raise BadValueError("the value must not be empty", ("an OpenSSL cipher list",))
        try:
            from OpenSSL import SSL
        except ImportError:  # pragma: no cover - pyOpenSSL is a dependency
            return text
        try:
            SSL.Context(SSL.TLS_METHOD).set_cipher_list(text.encode("ascii"))
        except (SSL.Error, UnicodeEncodeError):
            raise BadValueError(
                _bad(raw) + " (OpenSSL selects no cipher from it)", ("an OpenSSL cipher list",)
            ) from None
        return text


@dataclass(frozen=True)
class FileExtension:
    """``.exe`` (a leading dot is added when missing, as IIS Manager does); lower case."""

    def parse(self, raw: str, ctx: ValueContext) -> str:
        text = raw.strip().lower()
        if not text or text == ".":
            raise BadValueError("the value must not be empty", (".ext",))
        if not text.startswith("."):
            text = "." + text
        if "/" in text or "\\" in text:
            raise BadValueError(_bad(raw), (".ext",))
        return text

"""Site bindings: ``IP:PORT:HOST`` parsing and IIS's rules for sharing endpoints.

One listening socket serves every binding on its IP:PORT, and sites behind it
are told apart by host name (``HOST`` command or ``USER host|user``), so the
rules are about what one listener can serve: one owner per IP:PORT:HOST, one
default (empty HOST) site, and one TLS mode, implicit or explicit.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence

from ftps7.config import model as m
from ftps7.config.errors import Problems
from ftps7.config.values import BadValueError, Integer, ValueContext

_HOST = re.compile(r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*")
_BINDING_ACCEPTED = (
    "IP:PORT:HOST with IP *, an IPv4 address or [IPv6]; HOST empty or a host name",
)
#: The binding protocols ftps7 serves; bindings of other protocols are skipped.
FTP_PROTOCOLS = ("ftp", "ftps")


def parse_binding_information(text: str) -> tuple[str, int, str]:
    """``IP:PORT:HOST`` → (ip, port, host); ip is ``*``, IPv4 text, or IPv6 without brackets."""
    value = text.strip()
    if value.startswith("["):
        end = value.find("]")
        if end < 0 or value[end + 1 : end + 2] != ":":
            raise BadValueError(f"bad value {text!r}", _BINDING_ACCEPTED)
        ip_text = value[1:end]
        port_text, separator, host = value[end + 2 :].partition(":")
        if not separator:
            raise BadValueError(f"bad value {text!r} (missing ':HOST')", _BINDING_ACCEPTED)
        try:
            ip = str(ipaddress.IPv6Address(ip_text))
        except ValueError:
            raise BadValueError(
                f"bad value {text!r} (bad IPv6 address)", _BINDING_ACCEPTED
            ) from None
    else:
        parts = value.split(":")
        if len(parts) != 3:
            hint = " (write IPv6 addresses in brackets)" if len(parts) > 3 else ""
            raise BadValueError(f"bad value {text!r}{hint}", _BINDING_ACCEPTED)
        ip_text, port_text, host = parts
        if ip_text == "*":
            ip = "*"
        else:
            try:
                ip = str(ipaddress.IPv4Address(ip_text))
            except ValueError:
                raise BadValueError(
                    f"bad value {text!r} (bad IP address {ip_text!r})", _BINDING_ACCEPTED
                ) from None
    try:
        port = Integer(1, 65535).parse(port_text, _NO_CONTEXT)
    except BadValueError:
        raise BadValueError(
            f"bad value {text!r} (bad port {port_text!r})", ("port 1..65535",)
        ) from None
    host = host.strip().lower()
    if host and (len(host) > 253 or not _HOST.fullmatch(host)):
        raise BadValueError(f"bad value {text!r} (bad host name {host!r})", _BINDING_ACCEPTED)
    return ip, port, host


_NO_CONTEXT = ValueContext("/", {}, lambda message: None)


def check_endpoints(
    problems: Problems,
    sites: Sequence[m.Site],
    server: m.ServerFtpSettings,
    paths: Mapping[m.Binding, str],
) -> None:
    """IIS's binding rules: one owner per IP:PORT:HOST, one default site per IP:PORT,
    and one TLS mode (implicit or explicit) per port a listener serves."""
    owners: dict[tuple[str, int, str], tuple[m.Site, m.Binding]] = {}
    modes: dict[tuple[str, int], tuple[m.Site, m.Binding]] = {}
    for site in sites:
        for binding in site.bindings:
            key = (binding.ip, binding.port, binding.host)
            where = (binding.line, paths.get(binding, ""))
            value = _binding_text(binding)
            if key in owners:
                other_site, other = owners[key]
                if binding.host:
                    message = (
                        f"IP:PORT:HOST {value} is already bound by site "
                        f"{other_site.name!r} (line {other.line})"
                    )
                else:
                    message = (
                        f"two default sites (empty HOST) on {_endpoint_text(binding)}: "
                        f"{other_site.name!r} (line {other.line}) and {site.name!r}; give one "
                        "of them a host name"
                    )
                problems.error(*where, message, attribute="bindingInformation", value=value)
                continue
            owners[key] = (site, binding)
            for endpoint in _overlapping(binding, modes):
                other_site, other = modes[endpoint]
                if other.implicit != binding.implicit:
                    problems.error(
                        *where,
                        f"{_mode(binding)} on {_endpoint_text(binding)} conflicts with "
                        f"{_mode(other)} for site {other_site.name!r} (line {other.line}) "
                        "on the same listening port",
                        attribute="protocol",
                        value=binding.protocol,
                    )
                    break
            modes.setdefault(binding.endpoint, (site, binding))
            low, high = server.low_data_channel_port, server.high_data_channel_port
            if low and low <= binding.port <= high:
                problems.warn(
                    *where,
                    f"port {binding.port} lies inside the passive port range {low}-{high}",
                    attribute="bindingInformation",
                    value=value,
                )


def _binding_text(binding: m.Binding) -> str:
    ip = f"[{binding.ip}]" if ":" in binding.ip else binding.ip
    return f"{ip}:{binding.port}:{binding.host}"


def _endpoint_text(binding: m.Binding) -> str:
    ip = f"[{binding.ip}]" if ":" in binding.ip else binding.ip
    return f"{ip}:{binding.port}"


def _mode(binding: m.Binding) -> str:
    return "implicit FTPS" if binding.implicit else "explicit FTP/FTPS"


def _overlapping(
    binding: m.Binding, modes: Mapping[tuple[str, int], tuple[m.Site, m.Binding]]
) -> list[tuple[str, int]]:
    """Endpoints already seen that one listening socket would serve together with this one:
    the same IP:PORT, or the same port when either side is ``*`` (all addresses)."""
    return [
        endpoint
        for endpoint in modes
        if endpoint[1] == binding.port
        and (endpoint[0] == binding.ip or "*" in (endpoint[0], binding.ip))
    ]

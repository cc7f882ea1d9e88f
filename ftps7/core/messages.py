"""Site messages (banner, greeting, exit, max-clients): variables and lines.

With ``messages expandVariables="true"`` IIS replaces ``%UserName%``,
``%SiteName%``, ``%SessionID%``, ``%BytesSent%`` and ``%BytesReceived%``
in the message text. Names are matched case-insensitively, like Windows
environment variables; an unknown ``%Name%`` is left exactly as written, so a
literal percent sign never needs escaping. (IIS's own documentation swaps
the descriptions of the two byte counters; the server decides which number
goes in which - the sensible reading is "sent by the server" for
``%BytesSent%``.)

Messages are multi-line: the configuration carries real line breaks (IIS
Manager stores them as ``&#xD;&#xA;`` in applicationHost.config), and each
line becomes one line of the multi-line reply. A backslash followed by ``n``
is two ordinary characters - IIS does not interpret escapes in messages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["SUPPORTED_VARIABLES", "expand", "render", "split_lines"]

#: The variables IIS documents for expandVariables.
SUPPORTED_VARIABLES: tuple[str, ...] = (
    "UserName",
    "SiteName",
    "SessionID",
    "BytesSent",
    "BytesReceived",
)

_VARIABLE = re.compile(r"%([A-Za-z][A-Za-z0-9_]*)%")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_CONTROL = re.compile("[\x00-\x1f\x7f]")


def expand(template: str, variables: Mapping[str, str]) -> str:
    """``template`` with every ``%Name%`` found in ``variables`` substituted.

    Values are inserted with control characters replaced by spaces: a
    client-chosen user name must not be able to break a reply into extra
    lines.
    """
    table = {name.lower(): _CONTROL.sub(" ", value) for name, value in variables.items()}

    def substitute(match: re.Match[str]) -> str:
        return table.get(match.group(1).lower(), match.group(0))

    return _VARIABLE.sub(substitute, template)


def split_lines(text: str) -> list[str]:
    """Reply lines for a message: split at CRLF, LF or CR.

    An empty message gives no lines; a single trailing line break does not
    add an empty last line. Blank lines inside the message are kept.
    """
    if not text:
        return []
    lines = _LINE_BREAK.split(text)
    if lines[-1] == "":
        lines.pop()
    return lines


def render(template: str, variables: Mapping[str, str], *, expand_variables: bool) -> list[str]:
    """The reply lines for a configured message, expanded when configured to."""
    return split_lines(expand(template, variables) if expand_variables else template)

"""Every reply the server sends, in one table.

Handlers never build reply strings: they name a reply (``R.PATH_CREATED``) and
give its template arguments; `format_reply` renders it. Texts follow IIS FTP 7.5
where IIS's wording is known (RESEARCH.md §5: "234 AUTH command ok. Expecting
TLS Negotiation.", "534 Policy requires SSL.", "530 User cannot log in, home
directory inaccessible.") and the RFCs elsewhere. A unit test checks that every
name is used and that codes are valid.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass


class R(enum.Enum):
    """Symbolic reply names; the value is ``(code, template)``."""

    # 1xx
    OPENING_DATA = (150, "Opening {mode} mode data connection{suffix}.")
    OPENING_DATA_UNIQUE = (150, "FILE: {file}")
    # 2xx
    TYPE_SET = (200, "Type set to {type}.")
    MODE_SET = (200, "Mode S ok.")
    STRU_SET = (200, "Structure F ok.")
    PORT_OK = (200, "{command} command successful.")
    EPSV_ALL_OK = (200, "EPSV ALL command successful.")
    UTF8_ON = (200, "OPTS UTF8 command successful - UTF8 encoding now ON.")
    UTF8_OFF = (200, "OPTS UTF8 command successful - UTF8 encoding now OFF.")
    MLST_OPTS = (200, "MLST OPTS {facts}")
    PBSZ_OK = (200, "PBSZ=0")
    PROT_OK = (200, "PROT command successful.")
    CCC_OK = (200, "CCC command successful. Control channel is now clear.")
    ALLO_OK = (202, "ALLO command ignored; no storage allocation is necessary.")
    NOOP_OK = (200, "NOOP command successful.")
    FEATURES = (211, "Extensions supported:")
    FEATURES_END = (211, "END")
    STAT_END = (211, "End of status.")
    DIRECTORY_STATUS = (213, "Status of {path}:")
    FILE_STATUS = (213, "{value}")
    HELP = (214, "The following commands are recognized (* ==>'s unimplemented).")
    HELP_END = (214, "HELP command successful.")
    HELP_TOPIC = (214, "Syntax: {syntax}")
    SYSTEM_TYPE = (215, "UNIX Type: L8")
    GREETING = (220, "{text}")
    HOST_ACCEPTED = (220, "Host accepted.")
    REIN_OK = (220, "REIN command successful.")
    GOODBYE = (221, "Goodbye.")
    ABOR_NO_TRANSFER = (225, "ABOR command successful.")
    ABOR_OK = (226, "ABOR command successful.")
    TRANSFER_COMPLETE = (226, "Transfer complete.")
    TRANSFER_COMPLETE_UNIQUE = (226, "Transfer complete (unique file name: {file}).")
    PASV = (227, "Entering Passive Mode ({numbers}).")
    EPSV = (229, "Entering Extended Passive Mode (|||{port}|)")
    LOGGED_IN = (230, "User logged in.")
    LOGGED_IN_CERT = (232, "User logged in, authorized by security data exchange.")
    AUTH_OK = (234, "AUTH command ok. Expecting TLS Negotiation.")
    FILE_ACTION_OK = (250, "{command} command successful.")
    MLST_BEGIN = (250, "Listing {path}")
    MLST_END = (250, "End")
    PATH_CREATED = (257, '"{path}" directory created.')
    CURRENT_DIRECTORY = (257, '"{path}" is current directory.')
    # 3xx
    PASSWORD_REQUIRED = (331, "Password required")
    ANONYMOUS_PASSWORD = (331, "Anonymous access allowed, send identity (e-mail name) as password.")
    RESTARTING = (350, "Restarting at {offset}.")
    RENAME_PENDING = (350, "Requested file action pending further information.")
    # 4xx
    TIMEOUT = (421, "Timeout ({seconds} seconds): closing control connection.")
    TOO_MANY_CONNECTIONS = (421, "Too many users, try again later.")
    CLIENT_CERT_REQUIRED = (
        421,
        "A valid client certificate is required; closing control connection.",
    )
    CLIENT_CERT_REFUSED = (421, "Client certificate refused; closing control connection.")
    WEAK_CIPHER = (421, "Cipher strength below 128 bits; closing control connection.")
    ADDRESS_DENIED = (421, "Access denied for your address; closing control connection.")
    SHUTTING_DOWN = (421, "Service shutting down; closing control connection.")
    CANT_OPEN_DATA = (425, "Cannot open data connection.")
    TRANSFER_ABORTED = (426, "Connection closed; transfer aborted.")
    DATA_CLOSED_UNCLEAN = (
        426,
        "Data connection closed without TLS close_notify; transfer aborted.",
    )
    LOCAL_ERROR = (451, "Requested action aborted: local error in processing.")
    NO_SPACE = (452, "Insufficient storage space in system.")
    TRANSFER_BUSY = (450, "A transfer is already in progress.")
    # 5xx
    UNKNOWN_COMMAND = (500, "'{command}': command not understood.")
    LINE_TOO_LONG = (500, "Command line too long.")
    MLSD_NOT_A_DIRECTORY = (501, "MLSD requires a directory.")
    SYNTAX_ERROR = (501, "Syntax error in parameters or arguments.")
    NOT_IMPLEMENTED = (502, "Command not implemented.")
    COMMAND_FILTERED = (502, "Command not allowed by policy.")
    BAD_SEQUENCE = (503, "Bad sequence of commands.")
    AUTH_ALREADY = (503, "AUTH already negotiated.")
    PBSZ_BEFORE_AUTH = (503, "PBSZ requires a secure control connection (AUTH first).")
    PROT_BEFORE_PBSZ = (503, "PROT requires PBSZ first.")
    ALREADY_LOGGED_IN = (503, "Already logged in.")
    LOGIN_WITH_USER_FIRST = (503, "Login with USER first.")
    RNFR_FIRST = (503, "RNFR required first.")
    EPSV_ALL_ACTIVE = (503, "{command} not allowed after EPSV ALL.")
    PARAMETER_NOT_IMPLEMENTED = (504, "Command not implemented for that parameter.")
    AUTH_UNKNOWN = (504, "Unknown AUTH mechanism.")
    PROT_UNKNOWN = (504, "Unknown PROT level.")
    NOT_LOGGED_IN = (530, "Please login with USER and PASS.")
    LOGON_FAILED = (530, "User cannot log in.")
    HOME_INACCESSIBLE = (530, "User cannot log in, home directory inaccessible.")
    CCC_NOT_PROTECTED = (533, "CCC requires a protected control connection.")
    POLICY_REQUIRES_SSL = (534, "Policy requires SSL.")
    POLICY_DENIES_SSL = (534, "Policy denies SSL on the data channel.")
    POLICY_DENIES_CCC = (534, "Policy requires SSL on the control channel; CCC refused.")
    TLS_NOT_CONFIGURED = (534, "Local policy on server does not allow TLS secure connections.")
    HOST_UNKNOWN = (504, "Unknown host name: {host}.")
    HOST_AFTER_LOGIN = (503, "HOST not allowed after logon.")
    HOST_REQUIRED = (
        530,
        "Use HOST (or USER host|user) to choose a site: this address serves several.",
    )
    PROT_UNSUPPORTED = (536, "PROT {level} is not supported.")
    DATA_TLS_FAILED = (522, "Data connection TLS negotiation failed.")
    DATA_TLS_NOT_RESUMED = (
        522,
        "Data connection refused: it must resume the TLS session of the control connection.",
    )
    DATA_CLIENT_CERT_MISMATCH = (
        522,
        "Data connection refused: its client certificate must be the control connection's.",
    )
    EPRT_PROTOCOL = (522, "Network protocol not supported, use ({families}).")
    PASV_IPV6 = (522, "PASV is for IPv4 connections; use EPSV.")
    PROT_CHANGED = (521, "Data connection cannot be opened with this PROT setting.")
    FILE_UNAVAILABLE = (550, "The system cannot find the file specified.")
    PATH_UNAVAILABLE = (550, "The system cannot find the path specified.")
    ACCESS_DENIED = (550, "Access is denied.")
    ALREADY_EXISTS = (550, "Cannot create a file when that file already exists.")
    NOT_A_FILE = (550, "Not a regular file.")
    NOT_A_DIRECTORY = (550, "The directory name is invalid.")
    DIRECTORY_NOT_EMPTY = (550, "The directory is not empty.")
    PORT_DENIED = (501, "Server cannot accept argument: illegal PORT address.")
    FILE_TOO_LARGE = (552, "Requested file action aborted: exceeded storage allocation.")
    BAD_FILENAME = (553, "File name not allowed.")
    INVALID_RESTART = (554, "Invalid REST parameter.")

    @property
    def code(self) -> int:
        return int(self.value[0])

    @property
    def template(self) -> str:
        return str(self.value[1])


@dataclass(frozen=True)
class Reply:
    """A rendered reply: a code and one or more text lines."""

    code: int
    lines: tuple[str, ...]

    def encode(self) -> bytes:
        """The wire form (RFC 959 §4.2): ``ddd-`` continuation lines, ``ddd `` last."""
        return render(self.code, self.lines)


def _safe(text: str) -> str:
    # A reply line must never carry CR/LF from a file name or a message.
    return text.replace("\r", " ").replace("\n", " ")


def render(code: int, lines: Sequence[str]) -> bytes:
    """Encode a (possibly multi-line) reply.

    Continuation lines that would start with digits are prefixed with a space so
    a client never mistakes them for the final line (RFC 959 §4.2).
    """
    if not lines:
        lines = [""]
    out = []
    last = len(lines) - 1
    for index, line in enumerate(lines):
        line = _safe(line)
        if index == last:
            out.append(f"{code} {line}")
        elif index == 0:
            out.append(f"{code}-{line}")
        elif line[:3].isdigit():
            out.append(f" {line}")
        else:
            out.append(line)
    return ("\r\n".join(out) + "\r\n").encode("utf-8", "surrogateescape")


def format_reply(name: R, /, **arguments: object) -> Reply:
    """Render the named reply with its template arguments."""
    return Reply(name.code, (name.template.format(**arguments),))


def framed_reply(
    name: R, /, *, before: Sequence[str] = (), after: Sequence[str] = (), **arguments: object
) -> Reply:
    """The named reply with more lines around its text, all under its code.

    For multi-line replies whose frame is fixed text (``211-Extensions
    supported:`` ... ``211 END``, ``230-<greetingMessage>`` ``230 User logged
    in.``) while the lines in between come from the file system or the
    configuration.
    """
    return Reply(name.code, (*before, name.template.format(**arguments), *after))


def message_reply(name: R, lines: Sequence[str], /, **arguments: object) -> Reply:
    """A configured message under the named reply's code, or its own text if empty.

    IIS replaces the default text with ``bannerMessage``, ``exitMessage`` or
    ``maxClientsMessage`` when one is set.
    """
    if lines:
        return Reply(name.code, tuple(lines))
    return format_reply(name, **arguments)


class FTPError(Exception):
    """An expected failure that carries its reply; the protocol sends it.

    DESIGN.md habit 6: errors carry their reply and one place sends it.
    """

    def __init__(self, reply: R, **arguments: object) -> None:
        super().__init__(reply.name)
        self.reply = reply
        self.arguments = arguments

    def render(self) -> Reply:
        return format_reply(self.reply, **self.arguments)

"""The command table: what each FTP command needs before its handler runs.

One table drives all the gates (DESIGN.md habit 4), in this order:
unknown command → commandFiltering → argument arity → control-channel SSL
policy → logged in. The handler then runs with the gates passed. Handlers are
looked up by name on the protocol (``ftp_<VERB>``), aliases (XPWD, XCWD, ...)
map to their RFC 959 names here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Arg(enum.Enum):
    NONE = "none"  # an argument is ignored (NOOP, PWD, ...)
    REQUIRED = "required"
    OPTIONAL = "optional"


@dataclass(frozen=True)
class CommandSpec:
    name: str
    arg: Arg
    login: bool  # must be logged in
    during_transfer: bool = False  # answered at once while a transfer runs
    help: str = ""


def _spec(name: str, arg: Arg, login: bool, during: bool = False, help: str = "") -> CommandSpec:
    return CommandSpec(name, arg, login, during, help)


_A, _R, _O = Arg.NONE, Arg.REQUIRED, Arg.OPTIONAL

COMMANDS: dict[str, CommandSpec] = {
    spec.name: spec
    for spec in (
        # access control
        _spec("USER", _R, False, help="USER <name>"),
        _spec("PASS", _O, False, help="PASS <password>"),
        _spec("ACCT", _R, False, help="ACCT <account>"),
        _spec("REIN", _A, False, help="REIN (reinitialize)"),
        _spec("QUIT", _A, False, True, help="QUIT"),
        _spec("HOST", _R, False, help="HOST <name>"),
        # security (RFC 2228, 4217)
        _spec("AUTH", _R, False, help="AUTH TLS|SSL"),
        _spec("PBSZ", _R, False, help="PBSZ 0"),
        _spec("PROT", _R, False, help="PROT C|P"),
        _spec("CCC", _A, False, help="CCC"),
        # information
        _spec("FEAT", _A, False, help="FEAT"),
        _spec("OPTS", _R, False, help="OPTS UTF8 ON|MLST facts"),
        _spec("HELP", _O, False, help="HELP [command]"),
        _spec("SYST", _A, False, help="SYST"),
        _spec("STAT", _O, False, True, help="STAT [path]"),
        _spec("NOOP", _A, False, True, help="NOOP"),
        _spec("CLNT", _O, False, help="CLNT <client name>"),
        # navigation and file management
        _spec("PWD", _A, True, help="PWD"),
        _spec("CWD", _O, True, help="CWD <directory>"),
        _spec("CDUP", _A, True, help="CDUP"),
        _spec("MKD", _R, True, help="MKD <directory>"),
        _spec("RMD", _R, True, help="RMD <directory>"),
        _spec("DELE", _R, True, help="DELE <file>"),
        _spec("RNFR", _R, True, help="RNFR <path>"),
        _spec("RNTO", _R, True, help="RNTO <path>"),
        _spec("SIZE", _R, True, help="SIZE <file>"),
        _spec("MDTM", _R, True, help="MDTM <file>"),
        _spec("MLST", _O, True, help="MLST [path]"),
        # transfer parameters
        _spec("TYPE", _R, True, help="TYPE A|I"),
        _spec("MODE", _R, True, help="MODE S"),
        _spec("STRU", _R, True, help="STRU F"),
        _spec("ALLO", _O, True, help="ALLO <size>"),
        _spec("REST", _R, True, help="REST <offset>"),
        _spec("PASV", _A, True, help="PASV"),
        _spec("EPSV", _O, True, help="EPSV [1|2|ALL]"),
        _spec("PORT", _R, True, help="PORT h1,h2,h3,h4,p1,p2"),
        _spec("EPRT", _R, True, help="EPRT |af|addr|port|"),
        # transfers
        _spec("RETR", _R, True, help="RETR <file>"),
        _spec("STOR", _R, True, help="STOR <file>"),
        _spec("APPE", _R, True, help="APPE <file>"),
        _spec("STOU", _O, True, help="STOU [file]"),
        _spec("LIST", _O, True, help="LIST [path]"),
        _spec("NLST", _O, True, help="NLST [path]"),
        _spec("MLSD", _O, True, help="MLSD [directory]"),
        _spec("ABOR", _A, False, True, help="ABOR"),
    )
}

#: RFC 775 / IIS spellings of the same commands.
ALIASES = {"XPWD": "PWD", "XCWD": "CWD", "XCUP": "CDUP", "XMKD": "MKD", "XRMD": "RMD"}

#: Transfer commands: the data-channel policy is checked here (RFC 4217 §10.2).
TRANSFER_COMMANDS = frozenset({"RETR", "STOR", "APPE", "STOU", "LIST", "NLST", "MLSD"})


def lookup(verb: str) -> CommandSpec | None:
    """The spec for a verb (upper case), following aliases."""
    return COMMANDS.get(ALIASES.get(verb, verb))

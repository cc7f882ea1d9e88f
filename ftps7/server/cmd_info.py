"""Information commands: FEAT, OPTS, HELP, SYST, STAT, NOOP, CLNT."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ftps7.core import commands, listing
from ftps7.core.replies import FTPError, R, Reply, format_reply, framed_reply

if TYPE_CHECKING:
    from ftps7.server.protocol import FTPSession


class InfoCommands:
    def features(self: FTPSession) -> list[str]:
        """FEAT lines (RFC 2389): exactly what this session can use, never FEAT itself."""
        settings = self.site_settings()
        allowed = settings.command_filtering.is_allowed
        lines: list[str] = []
        if self.server.tls_possible(self) and allowed("AUTH"):
            lines += ["AUTH TLS", "AUTH SSL"]
        if self.server.tls_possible(self):
            if allowed("PBSZ"):
                lines.append("PBSZ")
            if allowed("PROT"):
                lines.append("PROT")
            if allowed("CCC"):
                lines.append("CCC")
        for command, feature in (
            ("EPRT", "EPRT"),
            ("EPSV", "EPSV"),
            ("HOST", "HOST"),
            ("MDTM", "MDTM"),
            ("MLST", listing.mlst_feature(self.state.mlst_facts)),
            ("REST", "REST STREAM"),
            ("SIZE", "SIZE"),
        ):
            if allowed(command):
                lines.append(feature)
        lines.append("TVFS")
        if settings.allow_utf8:
            lines.append("UTF8")
        return sorted(lines)

    def ftp_FEAT(self: FTPSession, argument: str) -> Reply:
        features = tuple(" " + f for f in self.features())
        return framed_reply(R.FEATURES, after=(*features, R.FEATURES_END.template))

    def ftp_OPTS(self: FTPSession, argument: str) -> Any:
        option, _, value = argument.strip().partition(" ")
        option = option.upper()
        value = value.strip()
        if option == "UTF8" or option == "UTF-8":
            if value.upper() in ("ON", ""):
                if not self.site_settings().allow_utf8:
                    raise FTPError(R.PARAMETER_NOT_IMPLEMENTED)
                self.state.utf8 = True
                return R.UTF8_ON
            if value.upper() == "OFF":
                self.state.utf8 = False
                return R.UTF8_OFF
            raise FTPError(R.SYNTAX_ERROR)
        if option == "MLST":
            chosen = listing.select_facts(value)
            self.state.mlst_facts = frozenset(chosen)
            text = "".join(f"{fact};" for fact in chosen)
            return format_reply(R.MLST_OPTS, facts=text)
        raise FTPError(R.PARAMETER_NOT_IMPLEMENTED)

    def ftp_HELP(self: FTPSession, argument: str) -> Reply:
        topic = argument.strip().upper()
        if topic:
            spec = commands.lookup(topic)
            if spec is None:
                raise FTPError(R.UNKNOWN_COMMAND, command=topic[:40])
            return format_reply(R.HELP_TOPIC, syntax=spec.help)
        names = sorted(set(commands.COMMANDS) | set(commands.ALIASES))
        rows = [
            " " + "  ".join(f"{n:<5}" for n in names[i : i + 8]) for i in range(0, len(names), 8)
        ]
        return framed_reply(R.HELP, after=(*rows, R.HELP_END.template))

    def ftp_SYST(self: FTPSession, argument: str) -> R:
        return R.SYSTEM_TYPE

    def ftp_NOOP(self: FTPSession, argument: str) -> R:
        return R.NOOP_OK

    def ftp_CLNT(self: FTPSession, argument: str) -> R:
        self.state.client_name = argument.strip()[:100]
        return R.NOOP_OK

    def ftp_STAT(self: FTPSession, argument: str) -> Any:
        if argument.strip():
            if not self.state.logged_in:
                raise FTPError(R.NOT_LOGGED_IN)
            return self.stat_path(argument)
        lines = [f"{self.server.banner} status:"]
        lines.append(f" Connected to {self.local_host}:{self.local_port}")
        lines.append(f" Client {self.peer_host}:{self.peer_port}")
        if self.state.site is not None:
            lines.append(f" Site {self.state.site.name}")
        if self.state.identity is not None:
            lines.append(f" Logged in as {self.state.identity.name}")
        lines.append(
            f" TLS: {self.state.tls.value}; data protection: "
            f"{'private' if self.state.prot_private else 'clear'}"
        )
        lines.append(
            f" TYPE: {'ASCII' if self.state.params.type_ascii else 'BINARY'}; "
            "STRUcture: File; transfer MODE: Stream"
        )
        if self.transfer is not None:
            lines.append(f" {self.transfer.describe()}")
        else:
            lines.append(" No data connection")
        return framed_reply(R.STAT_END, before=lines)

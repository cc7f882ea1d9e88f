"""The reply table and the command table, checked as data (no sockets).

DESIGN.md habit 5: replies live in one table, with a test that every entry is
valid and used; habit 4: one command table drives the gates, so every name in
it must lead to a handler.
"""

from __future__ import annotations

import re
import string
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from ftps7.config.model import CommandFilter, CommandFiltering, SiteFtpServer
from ftps7.core import commands
from ftps7.core.replies import (
    FTPError,
    R,
    Reply,
    format_reply,
    framed_reply,
    message_reply,
    render,
)
from ftps7.server.cmd_info import InfoCommands
from ftps7.server.protocol import OUT_OF_BAND, FTPSession
from ftps7.server.session import SessionState

SOURCE = Path(__file__).resolve().parents[2] / "ftps7"


def _placeholders(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field}


# ------------------------------------------------------------------ replies


@pytest.mark.parametrize("name", list(R.__members__))
def test_every_reply_has_a_valid_code_and_template(name: str) -> None:
    reply = R[name]
    assert 100 <= reply.code <= 599
    assert isinstance(reply.template, str) and reply.template
    arguments = {field: "x" for field in _placeholders(reply.template)}
    rendered = format_reply(reply, **arguments)
    assert rendered.code == reply.code
    assert "\r" not in rendered.lines[0] and "\n" not in rendered.lines[0]


def test_no_reply_is_an_alias_of_another() -> None:
    # Two entries with the same (code, text) would make an Enum alias: R.B *is*
    # R.A, and a test or a log naming B would silently talk about A.
    aliases = [name for name, member in R.__members__.items() if member.name != name]
    assert aliases == []


def test_every_reply_is_used_somewhere_in_the_server() -> None:
    text = "\n".join(
        path.read_text(encoding="utf-8")
        for path in SOURCE.rglob("*.py")
        if path.name != "replies.py" or path.parent.name != "core"
    )
    unused = [name for name in R.__members__ if not re.search(rf"\bR\.{name}\b", text)]
    assert unused == []


def test_render_multiline_and_guard_continuation_lines() -> None:
    wire = render(211, ["Extensions supported:", " UTF8", "226 looks final", "END"])
    assert wire == b"211-Extensions supported:\r\n UTF8\r\n 226 looks final\r\n211 END\r\n"


def test_render_never_lets_text_start_a_new_line() -> None:
    reply = format_reply(R.FILE_STATUS, value="1\r\n230 User logged in.")
    assert reply.encode() == b"213 1  230 User logged in.\r\n"


def test_render_keeps_undecodable_name_bytes() -> None:
    raw = b"caf\xe9"
    reply = format_reply(R.CURRENT_DIRECTORY, path="/" + raw.decode("utf-8", "surrogateescape"))
    assert reply.encode() == b'257 "/caf\xe9" is current directory.\r\n'


def test_empty_reply_still_has_a_line() -> None:
    assert Reply(200, ()).encode() == b"200 \r\n"


def test_framed_and_message_replies() -> None:
    framed = framed_reply(R.LOGGED_IN, before=["Welcome", "alice"])
    assert framed == Reply(230, ("Welcome", "alice", "User logged in."))
    assert framed_reply(R.MLST_BEGIN, after=[" x", "End"], path="/a").lines == (
        "Listing /a",
        " x",
        "End",
    )
    assert message_reply(R.GOODBYE, []) == Reply(221, ("Goodbye.",))
    assert message_reply(R.GOODBYE, ["See you"]) == Reply(221, ("See you",))
    assert message_reply(R.GREETING, [], text="ftps7") == Reply(220, ("ftps7",))


def test_template_arguments_may_be_called_name() -> None:
    # The reply is positional-only, so a template field can have any name.
    assert format_reply(R.UNKNOWN_COMMAND, command="X").lines == ("'X': command not understood.",)
    assert framed_reply(R.FEATURES, after=["END"], name="unused").code == 211


def test_ftp_error_renders_its_reply() -> None:
    error = FTPError(R.RESTARTING, offset=10)
    assert error.render() == Reply(350, ("Restarting at 10.",))


# ----------------------------------------------------------------- commands


def test_table_keys_match_spec_names_and_verbs_are_plain() -> None:
    for key, spec in commands.COMMANDS.items():
        assert key == spec.name
        assert key.isascii() and key.isalpha() and key.isupper()
        assert spec.help.split()[0] == key


@pytest.mark.parametrize(("alias", "target"), sorted(commands.ALIASES.items()))
def test_aliases_resolve_to_commands(alias: str, target: str) -> None:
    assert alias not in commands.COMMANDS
    spec = commands.lookup(alias)
    assert spec is not None and spec is commands.COMMANDS[target]


def test_lookup_unknown() -> None:
    assert commands.lookup("SITE") is None
    assert commands.lookup("") is None


def test_every_command_has_a_handler() -> None:
    missing = [
        name
        for name in commands.COMMANDS
        if not callable(getattr(FTPSession, f"ftp_{name}", None))
    ]
    assert missing == []


def test_transfer_and_out_of_band_sets_are_in_the_table() -> None:
    assert commands.TRANSFER_COMMANDS.issubset(commands.COMMANDS)
    for name in OUT_OF_BAND:
        assert commands.COMMANDS[name].during_transfer
    before_logon = ("USER", "PASS", "AUTH", "QUIT", "FEAT", "HOST")
    assert not any(commands.COMMANDS[name].login for name in before_logon)
    assert all(commands.COMMANDS[name].login for name in commands.TRANSFER_COMMANDS)


# --------------------------------------------------------------------- FEAT


class _FeatSession(InfoCommands):
    """Just enough of a session for FEAT: settings, TLS availability, MLST facts."""

    def __init__(self, settings: SiteFtpServer, tls: bool) -> None:
        self._settings = settings
        self.server = SimpleNamespace(tls_possible=lambda session: tls)
        self.state = SessionState(site=None)

    def site_settings(self) -> SiteFtpServer:
        return self._settings


def _feat(settings: SiteFtpServer, tls: bool = True) -> list[str]:
    reply = _FeatSession(settings, tls).ftp_FEAT("")  # type: ignore[arg-type]
    assert reply.code == 211
    assert reply.lines[0] == "Extensions supported:" and reply.lines[-1] == "END"
    body = list(reply.lines[1:-1])
    assert all(line.startswith(" ") and not line.startswith("  ") for line in body)
    return [line[1:] for line in body]


@pytest.mark.parametrize("tls", [True, False])
def test_feat_never_lists_feat(tls: bool) -> None:
    explicitly_allowed = replace(
        SiteFtpServer(),
        command_filtering=CommandFiltering(commands=(CommandFilter("FEAT", True),)),
    )
    for settings in (SiteFtpServer(), explicitly_allowed):
        features = _feat(settings, tls)
        assert "FEAT" not in features
        assert len(features) == len(set(features))


def test_feat_lists_what_is_usable() -> None:
    features = _feat(SiteFtpServer())
    for expected in ("AUTH TLS", "PBSZ", "PROT", "EPSV", "EPRT", "HOST", "SIZE", "MDTM",
                     "REST STREAM", "UTF8", "TVFS"):
        assert expected in features
    assert any(f.startswith("MLST ") for f in features)
    without_tls = _feat(SiteFtpServer(), tls=False)
    assert not {"AUTH TLS", "AUTH SSL", "PBSZ", "PROT", "CCC"} & set(without_tls)


def test_feat_hides_filtered_commands() -> None:
    filtered = replace(
        SiteFtpServer(),
        command_filtering=CommandFiltering(
            commands=(CommandFilter("EPSV", False), CommandFilter("SIZE", False))
        ),
    )
    features = _feat(filtered)
    assert "EPSV" not in features and "SIZE" not in features and "EPRT" in features

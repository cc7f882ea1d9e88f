"""Control-channel framing (ftps7.core.lines), without sockets.

The parser is what stands between arbitrary client bytes and the command
gates: these tests pin that any byte sequence yields well-formed events,
that memory stays bounded, and that the result never depends on where the
network split the packets.
"""

from __future__ import annotations

import pytest

from ftps7.core.lines import Line, LineParser, TooLong, split_command


def lines(*events: object) -> list[str]:
    out = []
    for event in events:
        assert isinstance(event, Line), event
        out.append(event.text)
    return out


def feed_bytewise(parser: LineParser, data: bytes) -> list[object]:
    events: list[object] = []
    for index in range(len(data)):
        events.extend(parser.feed(data[index : index + 1]))
    return events


# ---------------------------------------------------------------- framing


def test_crlf_and_bare_lf_both_end_a_line() -> None:
    parser = LineParser()
    assert lines(*parser.feed(b"USER alice\r\nPASS x\nNOOP\r\n")) == [
        "USER alice",
        "PASS x",
        "NOOP",
    ]


def test_partial_lines_wait_for_their_end() -> None:
    parser = LineParser()
    assert parser.feed(b"US") == []
    assert parser.feed(b"ER al") == []
    assert parser.feed(b"ice\r") == []
    assert lines(*parser.feed(b"\nNO")) == ["USER alice"]
    assert lines(*parser.feed(b"OP\r\n")) == ["NOOP"]


def test_byte_by_byte_equals_one_chunk() -> None:
    data = (
        b"USER alice\r\n\xff\xf4\xff\xf2ABOR\r\n"
        b"RETR caf\xc3\xa9 \xff\xff.txt\r\nX" + b"y" * 50 + b"\n"
    )
    whole = LineParser(32).feed(data)
    assert feed_bytewise(LineParser(32), data) == whole
    assert whole == [
        Line("USER alice"),
        Line("ABOR"),
        Line("RETR café \udcff.txt"),
        TooLong(51),
    ]


def test_only_one_trailing_cr_is_removed_and_lone_cr_is_data() -> None:
    parser = LineParser()
    assert lines(*parser.feed(b"NOOP\r\r\n")) == ["NOOP\r"]
    assert lines(*parser.feed(b"NOOP\rUSER x\r\n")) == ["NOOP\rUSER x"]


def test_empty_lines_are_events() -> None:
    assert lines(*LineParser().feed(b"\r\n\n")) == ["", ""]


def test_nul_and_control_bytes_are_kept_for_the_gates_to_refuse() -> None:
    assert lines(*LineParser().feed(b"NO\x00OP\x01\r\n")) == ["NO\x00OP\x01"]


# ------------------------------------------------------------------ telnet


def test_iac_ip_dm_before_abor_is_stripped() -> None:
    # RFC 959 §4.1.3: the "synch" a client sends before ABOR.
    assert lines(*LineParser().feed(b"\xff\xf4\xff\xf2ABOR\r\n")) == ["ABOR"]


def test_iac_iac_is_a_literal_ff() -> None:
    (event,) = LineParser().feed(b"STOR a\xff\xffb\r\n")
    assert isinstance(event, Line)
    assert event.text.encode("utf-8", "surrogateescape") == b"STOR a\xffb"


def test_option_negotiation_is_three_bytes() -> None:
    # IAC WILL/WONT/DO/DONT <option>: the option byte is not data, even "A".
    data = b"\xff\xfbA\xff\xfcB\xff\xfdC\xff\xfeDNOOP\r\n"
    assert lines(*LineParser().feed(data)) == ["NOOP"]


@pytest.mark.parametrize("split", range(1, 8))
def test_telnet_sequences_split_across_reads(split: int) -> None:
    data = b"\xff\xf4\xff\xfb\x01\xff\xffX\r\n"
    parser = LineParser()
    events = parser.feed(data[:split]) + parser.feed(data[split:])
    (event,) = events
    assert isinstance(event, Line)
    assert event.text.encode("utf-8", "surrogateescape") == b"\xffX"


def test_iac_at_the_very_end_is_held_not_dropped() -> None:
    parser = LineParser()
    assert parser.feed(b"RETR a\xff") == []
    (event,) = parser.feed(b"\xffb\r\n")
    assert isinstance(event, Line)
    assert event.text.encode("utf-8", "surrogateescape") == b"RETR a\xffb"


# --------------------------------------------------------------- too long


def test_a_line_of_exactly_the_maximum_is_accepted() -> None:
    parser = LineParser(10)
    assert lines(*parser.feed(b"A" * 10 + b"\r\n")) == ["A" * 10]


@pytest.mark.parametrize("cut", range(0, 13))
def test_the_maximum_does_not_depend_on_packet_boundaries(cut: int) -> None:
    data = b"A" * 10 + b"\r\n"
    parser = LineParser(10)
    assert lines(*(parser.feed(data[:cut]) + parser.feed(data[cut:]))) == ["A" * 10]


def test_a_longer_line_is_reported_once_and_the_next_line_works() -> None:
    parser = LineParser(10)
    events = parser.feed(b"B" * 11 + b"\r\nNOOP\r\n")
    assert events == [TooLong(11), Line("NOOP")]


def test_a_huge_line_in_many_reads_is_reported_once_with_bounded_memory() -> None:
    parser = LineParser(4096)
    chunk = b"C" * 8192
    for _ in range(13):  # ~100 KB without a line end
        assert parser.feed(chunk) == []
        assert len(parser._buffer) <= 4097  # the memory bound the parser promises
    events = parser.feed(b"tail\r\nPWD\r\n")
    assert len(events) == 2
    assert isinstance(events[0], TooLong) and events[0].length >= 13 * 8192
    assert events[1] == Line("PWD")


def test_max_line_can_change_between_lines() -> None:
    # The protocol lowers it once the site (and its maxCommandLine) is known.
    parser = LineParser(4096)
    assert lines(*parser.feed(b"USER " + b"u" * 100 + b"\r\n")) == ["USER " + "u" * 100]
    parser.max_line = 20
    assert parser.feed(b"USER " + b"u" * 100 + b"\r\n") == [TooLong(105)]


# ------------------------------------------------------------------- UTF-8


def test_utf8_is_decoded() -> None:
    assert lines(*LineParser().feed("STOR héllo wörld ✓.txt\r\n".encode())) == [
        "STOR héllo wörld ✓.txt"
    ]


@pytest.mark.parametrize(
    "raw",
    [b"\xe9t\xe9.txt", b"\xc3(", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"ok\x80\xbf"],
)
def test_invalid_utf8_round_trips_unchanged(raw: bytes) -> None:
    (event,) = LineParser().feed(b"RETR " + raw.replace(b"\xff", b"\xff\xff") + b"\r\n")
    assert isinstance(event, Line)
    assert event.text.encode("utf-8", "surrogateescape") == b"RETR " + raw


# ------------------------------------------------------------------- clear


def test_clear_reports_whether_anything_was_dropped() -> None:
    parser = LineParser()
    assert parser.clear() is False
    parser.feed(b"PASS secret-sent-in-the-clear")
    assert parser.clear() is True
    assert lines(*parser.feed(b"\r\nNOOP\r\n")) == ["", "NOOP"]


def test_clear_drops_a_pending_telnet_prefix() -> None:
    parser = LineParser()
    parser.feed(b"\xff")
    assert parser.clear() is True
    # Without clear() the held IAC would pair with "N" and eat it ("OOP").
    assert lines(*parser.feed(b"NOOP\r\n")) == ["NOOP"]


def test_clear_ends_discarding_of_an_over_long_line() -> None:
    parser = LineParser(10)
    parser.feed(b"X" * 50)
    assert parser.clear() is True
    assert lines(*parser.feed(b"PWD\r\n")) == ["PWD"]


# ----------------------------------------------------------- split_command


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("NOOP", ("NOOP", "")),
        ("noop", ("NOOP", "")),
        ("retr  my file ", ("RETR", " my file ")),
        ("STOR a b", ("STOR", "a b")),
        ("USER ", ("USER", "")),
        ("", ("", "")),
        ("Xpwd", ("XPWD", "")),
    ],
)
def test_split_command(line: str, expected: tuple[str, str]) -> None:
    assert split_command(line) == expected

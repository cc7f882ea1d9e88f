"""Control-channel framing: bytes in, command lines out (sans-IO).

Twisted's FTP decodes lines as latin-1 and crashes on 0xFF (RESEARCH.md §1.7,
defects 3 and 4). This parser instead:

- strips Telnet commands (RFC 959 §4.1.3 asks clients to send ``IAC IP IAC DM``
  before ABOR; RFC 854: ``IAC IAC`` is a literal 0xFF, ``IAC WILL/WONT/DO/DONT x``
  is a three-byte option negotiation, any other ``IAC x`` two bytes);
- accepts CRLF or a bare LF as the end of a line;
- enforces ``maxCommandLine``: a longer line is reported once as `TooLong` and
  the rest of it is discarded up to its end, so memory stays bounded whatever
  a client sends;
- decodes UTF-8 (RFC 2640) with ``surrogateescape``, so a file name that is not
  valid UTF-8 survives the round trip to the Linux file system unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

IAC = 0xFF
_NEGOTIATION = frozenset({0xFB, 0xFC, 0xFD, 0xFE})  # WILL WONT DO DONT


@dataclass(frozen=True)
class Line:
    text: str


@dataclass(frozen=True)
class TooLong:
    length: int


Event = Line | TooLong


class LineParser:
    """Feed bytes with `feed`; it returns the complete events found so far."""

    def __init__(self, max_line: int = 4096) -> None:
        self.max_line = max_line
        self._buffer = bytearray()
        self._discarding = False
        self._discarded = 0
        self._iac_pending = b""

    def clear(self) -> bool:
        """Drop everything buffered; return whether anything was dropped.

        Used after ``AUTH TLS``: bytes a client pipelined in plaintext behind
        AUTH must never be executed once TLS is up (STARTTLS injection).
        """
        had = bool(self._buffer or self._iac_pending or self._discarding)
        self._buffer.clear()
        self._iac_pending = b""
        self._discarding = False
        self._discarded = 0
        return had

    def _strip_telnet(self, data: bytes) -> bytes:
        if self._iac_pending:
            data = self._iac_pending + data
            self._iac_pending = b""
        if IAC not in data:
            return data
        out = bytearray()
        i = 0
        n = len(data)
        while i < n:
            byte = data[i]
            if byte != IAC:
                out.append(byte)
                i += 1
                continue
            if i + 1 >= n:
                self._iac_pending = data[i:]
                break
            command = data[i + 1]
            if command == IAC:
                out.append(IAC)
                i += 2
            elif command in _NEGOTIATION:
                if i + 2 >= n:
                    self._iac_pending = data[i:]
                    break
                i += 3
            else:
                i += 2
        return bytes(out)

    def feed(self, data: bytes) -> list[Event]:
        data = self._strip_telnet(data)
        events: list[Event] = []
        start = 0
        while True:
            newline = data.find(b"\n", start)
            if newline < 0:
                rest = data[start:]
                if self._discarding:
                    self._discarded += len(rest)
                else:
                    self._buffer += rest
                    # One byte of slack: the CR of a CRLF whose LF has not
                    # arrived yet is not part of the line, so a maximal line
                    # must not depend on where the packets were split.
                    if len(self._buffer) > self.max_line + 1:
                        self._discarding = True
                        self._discarded = len(self._buffer)
                        self._buffer.clear()
                return events
            chunk = data[start:newline]
            start = newline + 1
            if self._discarding:
                events.append(TooLong(self._discarded + len(chunk)))
                self._discarding = False
                self._discarded = 0
                continue
            self._buffer += chunk
            raw = bytes(self._buffer)
            self._buffer.clear()
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            if len(raw) > self.max_line:
                events.append(TooLong(len(raw)))
                continue
            events.append(Line(raw.decode("utf-8", "surrogateescape")))


def split_command(line: str) -> tuple[str, str]:
    """``"RETR  my file "`` → ``("RETR", " my file ")``: the verb upper-cased,
    the argument as sent after the first space (file names may begin or end
    with spaces, so only the single separating space is removed)."""
    verb, _, argument = line.partition(" ")
    return verb.strip().upper(), argument

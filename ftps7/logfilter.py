"""What of ftps7's own logging reaches the log, and at what cost.

Every ftps7 logger sends its events through :data:`observer`
(``Logger(observer=logfilter.observer)``), which does two things before the
events reach the global log publisher, and so twistd's log file:

- It drops events below the level of ``twistd ftps7 --log-level``. twistd has
  no level setting: its observer wrote every event, debug included.
- It renders the message of each event it passes on (``str.format_map``, in
  C) and replaces ``log_format`` with that text, braces escaped. Twisted's
  observers render a ``log_format`` with ``string.Formatter``, written in
  Python (it allows ``{f()}`` calls in formats; ftps7 uses none): for a line
  with five fields that was most of the ~100 µs an event cost on the reactor,
  and the three lines of every session (connect, logon, close) were ~18 % of
  a short session's CPU. The text of every observer's output is the same, and
  the event keeps its fields; only the template is gone from ``log_format``
  (it is kept in ``ftps7_format``). A format that ``format_map`` cannot
  render is left to Twisted.

Twisted's own events are not affected.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.logger import ILogObserver, LogEvent, LogLevel, globalLogPublisher
from zope.interface import implementer

#: The level names ``--log-level`` accepts, lowest first.
LEVEL_NAMES = tuple(level.name for level in LogLevel.iterconstants())
_RANK = {level: rank for rank, level in enumerate(LogLevel.iterconstants())}


@implementer(ILogObserver)
class LevelFilter:
    """Passes on events at ``level`` or above; events without a known level pass."""

    def __init__(
        self, observer: Callable[[LogEvent], object], level: LogLevel = LogLevel.info
    ) -> None:
        self._observer = observer
        self.level = level
        self._minimum = _RANK[level]

    def set_level(self, level: LogLevel) -> None:
        self.level = level
        self._minimum = _RANK[level]

    def __call__(self, event: LogEvent) -> None:
        if _RANK.get(event.get("log_level"), self._minimum) < self._minimum:
            return
        template = event.get("log_format")
        if isinstance(template, str):
            try:
                text: str | None = template.format_map(event)
            except Exception:  # noqa: BLE001 - left to Twisted's formatter, which reports it
                text = None
            if text is not None:
                event["ftps7_format"] = template
                event["log_format"] = text.replace("{", "{{").replace("}", "}}")
        self._observer(event)


#: What every ftps7 logger emits to: the global log publisher, at ``info`` and
#: above unless ``--log-level`` says otherwise.
observer = LevelFilter(globalLogPublisher)

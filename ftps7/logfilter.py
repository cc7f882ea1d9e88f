"""How much of ftps7's own logging reaches the log: ``twistd ftps7 --log-level``.

twistd has no level setting: its log observer writes every event, debug
included, and formats each one as text on the reactor thread (~30 µs per event
through twistd's observer; four events per session were a tenth of a short
session's CPU). Every ftps7 logger sends its events through :data:`observer`
(``Logger(observer=logfilter.observer)``), which drops those below the chosen
level before anything formats them. Twisted's own events are not affected.
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
        if _RANK.get(event.get("log_level"), self._minimum) >= self._minimum:
            self._observer(event)


#: What every ftps7 logger emits to: the global log publisher, at ``info`` and
#: above unless ``--log-level`` says otherwise.
observer = LevelFilter(globalLogPublisher)

"""ftps7's log level filter (``twistd ftps7 --log-level``)."""

from __future__ import annotations

import pytest
from twisted.logger import LogEvent, Logger, LogLevel, formatEvent
from twisted.python import usage

from ftps7 import logfilter
from ftps7.tap import Options


def _filtered(level: LogLevel) -> tuple[Logger, list[LogEvent]]:
    seen: list[LogEvent] = []
    observer = logfilter.LevelFilter(seen.append, level)
    return Logger(namespace="test", observer=observer), seen


def test_info_is_the_default_and_drops_debug() -> None:
    seen: list[LogEvent] = []
    observer = logfilter.LevelFilter(seen.append)
    log = Logger(namespace="test", observer=observer)
    log.debug("hidden")
    log.info("shown")
    log.error("shown too")
    assert observer.level is LogLevel.info
    assert [event["log_format"] for event in seen] == ["shown", "shown too"]


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        (LogLevel.debug, ["debug", "info", "warn", "error", "critical"]),
        (LogLevel.warn, ["warn", "error", "critical"]),
        (LogLevel.critical, ["critical"]),
    ],
)
def test_each_level_passes_itself_and_above(level: LogLevel, expected: list[str]) -> None:
    log, seen = _filtered(level)
    for name in logfilter.LEVEL_NAMES:
        getattr(log, name)(name)
    assert [event["log_format"] for event in seen] == expected


def test_set_level_takes_effect_for_existing_loggers() -> None:
    log, seen = _filtered(LogLevel.info)
    observer = log.observer
    assert isinstance(observer, logfilter.LevelFilter)
    log.debug("before")
    observer.set_level(LogLevel.debug)
    log.debug("after")
    assert [event["log_format"] for event in seen] == ["after"]


def test_events_without_a_level_pass() -> None:
    seen: list[LogEvent] = []
    logfilter.LevelFilter(seen.append, LogLevel.critical)({"log_format": "legacy"})
    assert [event["log_format"] for event in seen] == ["legacy"]


def test_messages_are_rendered_once_with_their_fields_kept() -> None:
    log, seen = _filtered(LogLevel.info)
    log.info("session {session}: {user!r} logged on {{literally}}", session=7, user="a{b}")
    (event,) = seen
    assert event["log_format"] == "session 7: 'a{{b}}' logged on {{literally}}"
    assert formatEvent(event) == "session 7: 'a{b}' logged on {literally}"
    assert event["session"] == 7 and event["user"] == "a{b}"
    assert event["ftps7_format"] == "session {session}: {user!r} logged on {{literally}}"


def test_a_format_it_cannot_render_is_left_to_twisted() -> None:
    log, seen = _filtered(LogLevel.info)
    log.info("calls {describe()}", describe=lambda: "work")  # Twisted's call syntax
    log.info("missing {field}")
    assert [event["log_format"] for event in seen] == ["calls {describe()}", "missing {field}"]
    assert formatEvent(seen[0]) == "calls work"


def test_ftps7_loggers_go_through_the_filter() -> None:
    from ftps7.server import protocol

    assert protocol.log.observer is logfilter.observer


def test_an_unknown_level_is_refused_with_the_accepted_names() -> None:
    with pytest.raises(usage.UsageError) as refused:
        Options().parseOptions(["--config", "/nonexistent", "--log-level", "verbose"])
    assert "'verbose'" in str(refused.value)
    assert "debug, info, warn, error, critical" in str(refused.value)

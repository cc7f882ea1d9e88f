"""Shutdown order: services stop one at a time; sessions end before what they use."""

from __future__ import annotations

from typing import Any

from twisted.application import service
from twisted.internet import defer
from twisted.internet.task import Clock

from ftps7.server.shutdown import InOrder, SessionsEnding


class Step(service.Service):
    def __init__(self, name: str, stopped: list[str], result: Any = None) -> None:
        self.name = name
        self.stopped = stopped
        self.result = result

    def stopService(self) -> Any:
        super().stopService()
        self.stopped.append(self.name)
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


def test_each_service_stops_after_the_one_added_after_it_has_stopped() -> None:
    stopped: list[str] = []
    waiting: defer.Deferred[None] = defer.Deferred()
    top = InOrder()
    for step in (Step("pools", stopped), Step("sessions", stopped, waiting)):
        step.setServiceParent(top)
    Step("listeners", stopped).setServiceParent(top)
    top.startService()
    done = top.stopService()
    assert stopped == ["listeners", "sessions"]  # the pools wait for the sessions
    assert not done.called
    waiting.callback(None)
    assert stopped == ["listeners", "sessions", "pools"]
    assert done.called


def test_a_service_that_fails_to_stop_does_not_keep_the_others_running() -> None:
    stopped: list[str] = []
    top = InOrder()
    Step("pools", stopped).setServiceParent(top)
    Step("broken", stopped, RuntimeError("no")).setServiceParent(top)
    top.startService()
    top.stopService()
    assert stopped == ["broken", "pools"]
    assert not top.running


class Session:
    """What SessionsEnding needs of a session: told to end, and when it has."""

    def __init__(self, sessions: set[Session]) -> None:
        self.sessions = sessions
        self.told = False
        self.done: defer.Deferred[None] = defer.Deferred()

    def shut_down(self) -> None:
        self.told = True

    def ended(self) -> defer.Deferred[None]:
        return self.done


class Logs:
    closed = False

    def close(self) -> None:
        self.closed = True


class State:
    def __init__(self) -> None:
        self.sessions: set[Session] = set()
        self.directory = None
        self.site_logs = Logs()
        self.clock = Clock()


def test_logs_close_only_after_every_session_has_ended() -> None:
    state = State()
    first, second = Session(state.sessions), Session(state.sessions)
    state.sessions.update((first, second))
    ending = SessionsEnding(state, grace=5)
    ending.startService()
    done = ending.stopService()
    assert first.told and second.told
    first.done.callback(None)
    assert not state.site_logs.closed  # the second's upload is still being discarded
    second.done.callback(None)
    assert state.site_logs.closed and done.called
    assert not state.clock.getDelayedCalls()


def test_a_session_that_does_not_end_is_left_after_the_grace_period() -> None:
    state = State()
    stuck = Session(state.sessions)
    state.sessions.add(stuck)
    ending = SessionsEnding(state, grace=5)
    ending.startService()
    done = ending.stopService()
    state.clock.advance(4.9)
    assert not done.called
    state.clock.advance(0.1)
    assert done.called and state.site_logs.closed

"""Certificates that expire while the server runs are reported in the log."""

from __future__ import annotations

import datetime
from types import SimpleNamespace
from typing import Any

from twisted.logger import LogEvent, formatEvent, globalLogPublisher

from ftps7.server.monitor import CertificateMonitor
from ftps7.tls.certgen import new_self_signed
from ftps7.tls.store import CertificateStore


def _state(tmp_path: Any, days: int, now: datetime.datetime) -> Any:
    store = CertificateStore(str(tmp_path / "certs"))
    cert, key = new_self_signed("soon", ["soon.test"], [], days=days, now=now)
    stored = store.add("MY", cert, [], key, f"soon{days}")
    return SimpleNamespace(
        config=SimpleNamespace(sites=()),
        certificate_for=lambda site: stored,
    )


def _check(state: Any) -> list[str]:
    seen: list[str] = []

    def observer(event: LogEvent) -> None:
        text = formatEvent(event)
        if "certificate" in text:
            seen.append(f"{event['log_level'].name}: {text}")

    globalLogPublisher.addObserver(observer)
    try:
        CertificateMonitor(state).check()
    finally:
        globalLogPublisher.removeObserver(observer)
    return seen


def test_expired_certificate_is_an_error(tmp_path: Any) -> None:
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=10)
    lines = _check(_state(tmp_path, 2, past))
    assert len(lines) == 1 and lines[0].startswith("error:") and "expired" in lines[0]


def test_certificate_expiring_soon_is_a_warning(tmp_path: Any) -> None:
    lines = _check(_state(tmp_path, 3, datetime.datetime.now(datetime.UTC)))
    assert len(lines) == 1 and lines[0].startswith("warn:") and "expires" in lines[0]


def test_healthy_certificate_is_quiet(tmp_path: Any) -> None:
    assert _check(_state(tmp_path, 365, datetime.datetime.now(datetime.UTC))) == []

"""What a reload applies: restart-only settings, the server state it rebuilds (no sockets)."""

from __future__ import annotations

from pathlib import Path

import pytest
from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet.task import Clock
from twisted.python.threadpool import ThreadPool

from ftps7.auth.directory import DirectoryError
from ftps7.config import load_config
from ftps7.config.model import ServerConfig
from ftps7.config.reload import (
    applicable,
    restart_only_changes,
    restart_only_text,
    with_restart_only,
)
from ftps7.server.state import ServerState


def _site(name: str, port: int, connections: str = "") -> str:
    return f"""
      <site name="{name}" id="{port}">
        <application path="/"><virtualDirectory path="/" physicalPath="root" /></application>
        <bindings><binding protocol="ftp" bindingInformation="127.0.0.1:{port}:" /></bindings>
        <ftpServer>
          <security>
            <authentication><basicAuthentication enabled="true" /></authentication>
          </security>
          {connections}
        </ftpServer>
      </site>"""


def _config(
    tmp_path: Path,
    *,
    sites: str | None = None,
    ftps7: str = "",
    system_ftp: str = "",
    store: str = "certs",
    name: str = "ftps7.config",
) -> ServerConfig:
    (tmp_path / "root").mkdir(exist_ok=True)
    path = tmp_path / name
    path.write_text(
        f"""<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <system.applicationHost><sites>{sites if sites is not None else _site("A", 2121)}</sites>
  </system.applicationHost>
  <system.ftpServer>{system_ftp}</system.ftpServer>
  <ftps7>
    <certificateStore path="{tmp_path / store}" />
    <localAccounts path="{tmp_path / "users"}" />
    {ftps7}
  </ftps7>
</configuration>
""",
        encoding="utf-8",
    )
    return load_config(str(path))


# ------------------------------------------------------------ restart-only settings


def test_the_same_file_needs_no_restart_and_applies_unchanged(tmp_path: Path) -> None:
    running = _config(tmp_path)
    loaded = _config(tmp_path)
    assert restart_only_changes(running, loaded) == ()
    assert applicable(running, loaded) == loaded


def test_site_bindings_and_limits_are_applied(tmp_path: Path) -> None:
    running = _config(tmp_path)
    loaded = _config(
        tmp_path,
        sites=_site("A", 2122, '<connections maxConnections="3" />') + _site("B", 2123),
    )
    assert restart_only_changes(running, loaded) == ()
    applied = applicable(running, loaded)
    assert [site.name for site in applied.sites] == ["A", "B"]
    assert applied.sites[0].bindings[0].port == 2122
    assert applied.sites[0].ftp_server.connections.max_connections == 3


def test_workers_and_transfer_threads_keep_their_running_values(tmp_path: Path) -> None:
    running = _config(tmp_path)
    loaded = _config(
        tmp_path,
        sites=_site("A", 2121, '<connections maxConnections="7" />'),
        ftps7='<process workers="2" transferThreads="4" />',
    )
    assert restart_only_changes(running, loaded) == (
        "<ftps7><process workers> (1 -> 2)",
        "<ftps7><process transferThreads> (32 -> 4)",
    )
    applied = applicable(running, loaded)
    assert applied.ftps7.process == running.ftps7.process
    assert applied.sites[0].ftp_server.connections.max_connections == 7  # the rest applies


def test_proxy_protocol_keeps_its_running_value(tmp_path: Path) -> None:
    running = _config(tmp_path)
    loaded = _config(
        tmp_path, ftps7='<proxyProtocol enabled="true" trustedProxies="127.0.0.9, ::1" />'
    )
    assert restart_only_changes(running, loaded) == (
        "<ftps7><proxyProtocol enabled> (false -> true)",
        '<ftps7><proxyProtocol trustedProxies> ("" -> "127.0.0.9/32, ::1/128")',
    )
    assert applicable(running, loaded).ftps7.proxy_protocol == running.ftps7.proxy_protocol


# ------------------------------------------------------------ the server state


def _state(config: ServerConfig) -> ServerState:
    pool = ThreadPool(minthreads=0, maxthreads=1)  # never started: nothing here runs in it
    return ServerState(config, Clock(), io_pool=pool, auth_pool=pool, directory_pool=pool)


def test_reconfigure_keeps_what_unchanged_settings_built(tmp_path: Path) -> None:
    capped = '<connections maxBandwidth="1000000" />'
    state = _state(_config(tmp_path, sites=_site("A", 2121, capped) + _site("B", 2122, capped)))
    store, tls, cache, accounts = state.store, state.tls, state.credentials_cache, state.accounts
    failures, portal_a = state.failures, state.portals["A"]
    bucket_a, bucket_b = state.bandwidths["A"], state.bandwidths["B"]
    logs = state.site_logs
    new = _config(
        tmp_path,
        sites=_site("A", 2121, capped) + _site("B", 2122, '<connections maxBandwidth="2000" />'),
        name="second.config",
    )
    state.reconfigure(new)
    assert state.config is new
    assert (state.store, state.tls, state.credentials_cache, state.accounts) == (
        store,
        tls,
        cache,
        accounts,
    )
    assert state.failures is failures
    assert state.portals["A"] is not portal_a  # rebuilt with the new sites
    assert state.bandwidths["A"] is bucket_a  # same cap: running transfers still share it
    assert state.bandwidths["B"] is not bucket_b and state.bandwidths["B"].rate == 2000
    assert state.site_logs is not logs


def test_reconfigure_rebuilds_what_changed_settings_decide(tmp_path: Path) -> None:
    state = _state(_config(tmp_path))
    store, tls, failures = state.store, state.tls, state.failures
    new = _config(
        tmp_path,
        ftps7='<tls minimumVersion="TLSv1.3" />',
        store="other",
        system_ftp=(
            '<security><authentication><denyByFailure enabled="true" maxFailure="3" />'
            "</authentication></security>"
        ),
        name="second.config",
    )
    state.reconfigure(new)
    assert state.store is not store and state.store.path == str(tmp_path / "other")
    assert state.tls is not tls
    assert state.failures is not failures and state.failures is not None


def test_a_logon_to_a_site_a_reload_removed_is_refused(tmp_path: Path) -> None:
    state = _state(_config(tmp_path, sites=_site("A", 2121) + _site("B", 2122)))
    site_b = state.config.sites[1]
    state.reconfigure(_config(tmp_path, sites=_site("A", 2121), name="second.config"))
    failures: list[object] = []
    state.login(site_b, UsernamePassword(b"alice", b"secret")).addErrback(failures.append)
    assert len(failures) == 1
    with pytest.raises(UnauthorizedLogin):
        failures[0].raiseException()  # type: ignore[attr-defined]


def test_a_reconfigure_that_fails_changes_nothing(tmp_path: Path) -> None:
    state = _state(_config(tmp_path))
    before = dict(state.__dict__)
    broken = _config(
        tmp_path,
        sites=_site("A", 2121) + _site("B", 2122),
        ftps7=(
            '<activeDirectory url="ldaps://127.0.0.1:636" '
            f'caFile="{tmp_path / "missing-ca.pem"}" />'
        ),
        name="second.config",
    )
    with pytest.raises(DirectoryError, match="caFile"):
        state.reconfigure(broken)
    assert state.__dict__ == before
    assert list(state.portals) == ["A"]


def test_restart_only_settings_travel_to_a_worker_as_text(tmp_path: Path) -> None:
    running = _config(
        tmp_path,
        ftps7='<process workers="2" transferThreads="3" />'
        '<proxyProtocol enabled="true" trustedProxies="10.0.0.0/8" />',
    )
    edited = _config(tmp_path, ftps7='<process workers="4" />', name="edited.config")
    started = with_restart_only(edited, restart_only_text(running))
    assert started.ftps7.process == running.ftps7.process
    assert started.ftps7.proxy_protocol == running.ftps7.proxy_protocol
    assert started.sites == edited.sites

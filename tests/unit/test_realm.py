"""SiteRealm: which logons need the I/O pool, and what a refused one looks like."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from twisted.internet import defer

from ftps7.auth.identity import Identity
from ftps7.config import load_config
from ftps7.core.authz import Authorizer
from ftps7.server.realm import IFTPSiteShell, LogonRefusedError, SiteRealm

CONFIG = """<?xml version="1.0" encoding="UTF-8"?>
<configuration>
  <system.applicationHost>
    <sites>
      <site name="S" id="1">
        <application path="/">
          <virtualDirectory path="/" physicalPath="{root}" />
        </application>
        <bindings><binding protocol="ftp" bindingInformation="127.0.0.1:2121:" /></bindings>
        <ftpServer><userIsolation mode="{mode}" /></ftpServer>
      </site>
    </sites>
  </system.applicationHost>
  <location path="S">
    <system.ftpServer><security><authorization>
      <add accessType="Allow" users="alice" permissions="Read" />
    </authorization></security></system.ftpServer>
  </location>
</configuration>
"""


class PoolRecorder:
    """Stands in for the I/O pool: runs the job at once and remembers that it was asked."""

    def __init__(self) -> None:
        self.jobs = 0

    def __call__(self, function: Any, *args: Any) -> defer.Deferred[Any]:
        self.jobs += 1
        return defer.maybeDeferred(function, *args)


def realm_for(tmp_path: Path, mode: str) -> tuple[SiteRealm, PoolRecorder]:
    root = tmp_path / "root"
    (root / "alice").mkdir(parents=True)
    (root / "LocalUser" / "alice").mkdir(parents=True)
    path = tmp_path / "ftps7.config"
    path.write_text(CONFIG.format(root=root, mode=mode), encoding="utf-8")
    config = load_config(str(path), environ={})
    pool = PoolRecorder()
    (site,) = config.sites
    return SiteRealm(site, config, Authorizer(config.authorization), pool, None), pool


def outcome(d: defer.Deferred[Any]) -> Any:
    results: list[Any] = []
    d.addBoth(results.append)
    (result,) = results
    return result


def test_no_isolation_builds_the_shell_without_the_pool(tmp_path: Path) -> None:
    # Nothing on disk to look at, so no thread hand-off for the logon.
    realm, pool = realm_for(tmp_path, "None")
    interface, shell, logout = outcome(
        realm.requestAvatar(Identity(name="alice"), None, IFTPSiteShell)
    )
    assert interface is IFTPSiteShell and shell.home == "/"
    assert pool.jobs == 0


@pytest.mark.parametrize("mode", ["StartInUsersDirectory", "IsolateAllDirectories"])
def test_isolation_looks_at_the_disk_in_the_pool(tmp_path: Path, mode: str) -> None:
    realm, pool = realm_for(tmp_path, mode)
    _, shell, _ = outcome(realm.requestAvatar(Identity(name="alice"), None, IFTPSiteShell))
    assert pool.jobs == 1
    assert shell.home == ("/alice" if mode == "StartInUsersDirectory" else "/")


def test_a_user_without_a_rule_is_refused_either_way(tmp_path: Path) -> None:
    realm, _ = realm_for(tmp_path, "None")
    failure = outcome(realm.requestAvatar(Identity(name="mallory"), None, IFTPSiteShell))
    assert failure.check(LogonRefusedError)


def test_sessions_with_the_same_plan_share_one_namespace(tmp_path: Path) -> None:
    realm, _ = realm_for(tmp_path, "None")
    shells = [
        outcome(realm.requestAvatar(Identity(name="alice"), None, IFTPSiteShell))[1]
        for _ in range(2)
    ]
    assert shells[0] is not shells[1]
    assert shells[0].namespace is shells[1].namespace


def test_isolated_users_get_their_own_namespace(tmp_path: Path) -> None:
    realm, _ = realm_for(tmp_path, "IsolateAllDirectories")
    alice = [
        outcome(realm.requestAvatar(Identity(name="alice"), None, IFTPSiteShell))[1]
        for _ in range(2)
    ]
    assert alice[0].namespace is alice[1].namespace
    assert alice[0].namespace.physical("/").real_path.endswith("/LocalUser/alice")

"""Per-site realms: turn an authenticated identity into a `SiteShell`.

The realm applies what IIS checks after the password: does the user have any
access to the site at all (``<authorization>``: 530 otherwise), and where does
the user live (``userIsolation``: a missing home folder under isolation is
``530 User cannot log in, home directory inaccessible.``). The folder checks
touch the file system, so they run in the I/O pool.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

from twisted.cred.portal import IRealm
from twisted.internet import defer
from zope.interface import Interface, implementer

from ftps7.auth.identity import Identity, normalize_avatar_id
from ftps7.config.model import ServerConfig, Site, UserIsolationMode
from ftps7.core import isolation
from ftps7.core.authz import Authorizer
from ftps7.core.namespace import SiteNamespace
from ftps7.core.replies import R
from ftps7.server.shell import SiteShell


class IFTPSiteShell(Interface):
    """The avatar interface: a user's `SiteShell` on one site."""


class LogonRefusedError(Exception):
    """The credentials were right but the user may not log on here."""

    def __init__(self, reply: R, reason: str) -> None:
        super().__init__(reason)
        self.reply = reply
        self.reason = reason


#: Isolation plans whose namespace a realm keeps (one per isolated user).
NAMESPACE_CACHE_SIZE = 1024


@implementer(IRealm)
class SiteRealm:
    def __init__(
        self,
        site: Site,
        config: ServerConfig,
        authorizer: Authorizer,
        run: Callable[..., defer.Deferred[Any]],
        groups_for: Callable[[str], frozenset[str]] | None,
    ) -> None:
        self.site = site
        self.config = config
        self.authorizer = authorizer
        self.run = run
        self.groups_for = groups_for
        self.hidden = config.server.request_filtering.hidden_segments
        self.namespace = SiteNamespace(site.virtual_directories, "/", self.hidden)
        # Namespaces never change once built, so sessions with the same plan
        # (every session without isolation; an isolated user's sessions) share
        # one; building it was ~5 % of a logon's reactor time.
        self._namespace_for = functools.lru_cache(maxsize=NAMESPACE_CACHE_SIZE)(
            self._build_namespace
        )

    def requestAvatar(  # type: ignore[override]
        self, avatarId: object, mind: object, *interfaces: Any
    ) -> defer.Deferred[tuple[Any, SiteShell, Callable[[], None]]]:
        if IFTPSiteShell not in interfaces:
            raise NotImplementedError("ftps7 realms only provide IFTPSiteShell")
        authentication = self.site.ftp_server.authentication
        identity = normalize_avatar_id(
            avatarId, self.groups_for, authentication.anonymous_user_name
        )
        if self.site.ftp_server.user_isolation is UserIsolationMode.NONE:
            # Nothing to look up on disk: no thread hand-off (two thread
            # round trips were ~5 % of a logon, docs/performance.md).
            return defer.maybeDeferred(self._build, identity)
        return self.run(self._build, identity)

    def _exists_for(self, mode: UserIsolationMode) -> Callable[[str], bool]:
        """ActiveDirectory isolation checks a physical home; the others a site path."""
        if mode is UserIsolationMode.ACTIVE_DIRECTORY:
            return os.path.isdir
        return self.namespace.is_dir

    def _build_namespace(self, plan: isolation.IsolationPlan) -> SiteNamespace:
        return plan.namespace(self.site.virtual_directories, self.hidden)

    def _build(self, identity: Identity) -> tuple[Any, SiteShell, Callable[[], None]]:
        site = self.site
        if not self.authorizer.can_log_on(
            site.name, identity.name, identity.groups, identity.anonymous
        ):
            raise LogonRefusedError(
                R.LOGON_FAILED, "no authorization rule grants access to the site"
            )
        try:
            plan = isolation.plan(
                site.ftp_server.user_isolation,
                identity.name,
                identity.domain,
                identity.anonymous,
                site.virtual_directories,
                self._exists_for(site.ftp_server.user_isolation),
                ad_root=identity.ftp_root,
                ad_dir=identity.ftp_dir,
            )
        except isolation.IsolationError as exc:
            raise LogonRefusedError(R.HOME_INACCESSIBLE, str(exc)) from None
        user_namespace = self._namespace_for(plan)
        shell = SiteShell(
            site_name=site.name,
            identity=identity,
            namespace=user_namespace,
            authorizer=self.authorizer,
            request_filtering=self.config.server.request_filtering,
            file_handling=site.ftp_server.file_handling,
            run=self.run,
            home=plan.start,
        )
        return IFTPSiteShell, shell, lambda: None

"""Reports certificates that are about to expire or have expired while running."""

from __future__ import annotations

import datetime

from twisted.application.internet import TimerService
from twisted.logger import Logger

from ftps7 import logfilter
from ftps7.server.state import ServerState

log = Logger(observer=logfilter.observer)
CHECK_EVERY = 3600.0
WARN_BEFORE = datetime.timedelta(days=14)


class CertificateMonitor(TimerService):
    def __init__(self, state: ServerState) -> None:
        super().__init__(CHECK_EVERY, self.check)
        self.state = state

    def check(self) -> None:
        now = datetime.datetime.now(datetime.UTC)
        sites = [None, *self.state.config.sites]
        seen: set[str] = set()
        for site in sites:
            certificate = self.state.certificate_for(site)
            if certificate is None or certificate.thumbprint in seen:
                continue
            seen.add(certificate.thumbprint)
            if certificate.not_after <= now:
                log.error(
                    "certificate {thumbprint} ({subject}) expired on {when}",
                    thumbprint=certificate.thumbprint,
                    subject=certificate.subject,
                    when=certificate.not_after.isoformat(),
                )
            elif certificate.not_after - now < WARN_BEFORE:
                log.warn(
                    "certificate {thumbprint} ({subject}) expires on {when}",
                    thumbprint=certificate.thumbprint,
                    subject=certificate.subject,
                    when=certificate.not_after.isoformat(),
                )

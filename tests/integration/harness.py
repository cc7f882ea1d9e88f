"""Start real ``twistd ftps7`` processes for the integration tests.

A test describes a configuration with `SiteSpec`s, `write_config` renders the
XML exactly as CONFIG.md defines it, and `ServerProcess` runs ``twistd -n
ftps7 --config ...`` and waits (with a timeout, never a sleep) for the
"ftps7 ready" line that the service logs once every listener is bound.
"""

from __future__ import annotations

import collections
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import quoteattr

TWISTD = str(Path(sys.executable).with_name("twistd"))


#: Listening ports for test servers come from below the kernel's ephemeral range
#: (32768+), so an outgoing connection of another test can never take the port
#: between this choice and the server's bind; each xdist worker has its own band.
_PORT_BAND = 2500
_PORT_BASE = 21000


#: Ports handed out lately: a test that asks for two ports before its server
#: binds either must not get the same one twice (it did, once in a while).
_recent_ports: collections.deque[int] = collections.deque(maxlen=_PORT_BAND // 4)


def free_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    low = _PORT_BASE + (index % 4) * _PORT_BAND
    for _ in range(500):
        port = random.randrange(low, low + _PORT_BAND)  # noqa: S311 - not a secret
        if port in _recent_ports:
            continue
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
            _recent_ports.append(port)
            return port
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def ipv6_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


@dataclass
class SiteSpec:
    name: str = "Test Site"
    id: int = 1
    bindings: list[str] = field(default_factory=list)  # "protocol:ip:port:host"
    root: str = ""
    vdirs: list[tuple[str, str]] = field(default_factory=list)
    cert_hash: str | None = None
    control_policy: str = "SslRequire"
    data_policy: str = "SslRequire"
    basic: bool = True
    anonymous: bool = False
    client_cert_auth: bool = False
    extra: str = ""  # more XML inside <ftpServer>
    security_extra: str = ""  # more XML inside <ftpServer><security>


def _binding_parts(spec: str) -> tuple[str, str]:
    protocol, information = spec.split(":", 1)
    return protocol, quoteattr(information)


def _site_xml(site: SiteSpec) -> str:
    bindings = "\n".join(
        '<binding protocol="{}" bindingInformation={} />'.format(*_binding_parts(b))
        for b in site.bindings
    )
    vdirs = "\n".join(
        f"<virtualDirectory path={quoteattr(p)} physicalPath={quoteattr(pp)} />"
        for p, pp in site.vdirs
    )
    cert = f" serverCertHash={quoteattr(site.cert_hash)}" if site.cert_hash else ""
    return f"""
      <site name={quoteattr(site.name)} id="{site.id}">
        <application path="/">
          <virtualDirectory path="/" physicalPath={quoteattr(site.root)} />
          {vdirs}
        </application>
        <bindings>{bindings}</bindings>
        <ftpServer>
          <security>
            <ssl{cert} controlChannelPolicy="{site.control_policy}"
                 dataChannelPolicy="{site.data_policy}" />
            <authentication>
              <anonymousAuthentication enabled="{str(site.anonymous).lower()}" />
              <basicAuthentication enabled="{str(site.basic).lower()}" />
              <clientCertAuthentication enabled="{str(site.client_cert_auth).lower()}" />
            </authentication>
            {site.security_extra}
          </security>
          {site.extra}
        </ftpServer>
      </site>"""


def write_config(
    path: Path,
    sites: Iterable[SiteSpec],
    *,
    store: str,
    accounts: str,
    locations: str = "",
    system_ftp: str = "",
    ftps7_extra: str = "",
    tls: str = "",
    site_defaults: str = "",
) -> Path:
    body = "\n".join(_site_xml(site) for site in sites)
    text = f"""<?xml version="1.0" encoding="UTF-8"?>
<configuration>
  <system.applicationHost>
    <sites>
      <siteDefaults><ftpServer>{site_defaults}</ftpServer></siteDefaults>
      {body}
    </sites>
  </system.applicationHost>
  <system.ftpServer>{system_ftp}</system.ftpServer>
  {locations}
  <ftps7>
    <certificateStore path={quoteattr(store)} />
    <localAccounts path={quoteattr(accounts)} />
    {tls}
    {ftps7_extra}
  </ftps7>
</configuration>
"""
    path.write_text(text, encoding="utf-8")
    return path


def rule(
    *, users: str = "", roles: str = "", permissions: str = "Read, Write", access: str = "Allow"
) -> str:
    who = ""
    if users:
        who += f" users={quoteattr(users)}"
    if roles:
        who += f" roles={quoteattr(roles)}"
    return f'<add accessType="{access}"{who} permissions="{permissions}" />'


def location(site: str, path: str = "", *rules: str, clear: bool = False) -> str:
    """A ``<location>`` with authorization rules (see `rule`)."""
    where = f"{site}/{path}" if path else site
    body = ("<clear />" if clear else "") + "".join(rules)
    return f"""
  <location path={quoteattr(where)}>
    <system.ftpServer><security><authorization>{body}</authorization></security></system.ftpServer>
  </location>"""


def allow_location(site: str, path: str = "", **kwargs: str) -> str:
    return location(site, path, rule(**kwargs))


class ServerProcess:
    """A ``twistd -n ftps7`` child process with its log captured."""

    def __init__(self, config: Path, extra_args: Iterable[str] = ()) -> None:
        self.config = config
        self.extra_args = list(extra_args)
        self.lines: list[str] = []
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._conditions: list[tuple[re.Pattern[str], threading.Event]] = []
        self.process: subprocess.Popen[str] | None = None
        self._terminated = False

    def start(self, timeout: float = 30.0) -> ServerProcess:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(
            [
                TWISTD,
                "-n",
                "--pidfile=",
                "--logfile=-",
                "ftps7",
                "--config",
                str(self.config),
                *self.extra_args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        threading.Thread(target=self._read, daemon=True).start()
        if not self._ready.wait(timeout) or "ftps7 ready" not in self.log:
            self.stop()
            raise RuntimeError("ftps7 did not become ready:\n" + self.log)
        return self

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            with self._lock:
                self.lines.append(line)
                for pattern, event in self._conditions:
                    if pattern.search(line):
                        event.set()
            if "ftps7 ready" in line:
                self._ready.set()
        self._ready.set()  # the process ended; start() reports it

    def wait_for_log(self, pattern: str, timeout: float = 15.0, occurrence: int = 1) -> str:
        """Block until ``occurrence`` log lines match ``pattern``; the last of them.

        Fails after ``timeout`` seconds.
        """
        regex = re.compile(pattern)
        event = threading.Event()
        deadline = time.monotonic() + timeout
        with self._lock:
            self._conditions.append((regex, event))
        try:
            while True:
                with self._lock:
                    found = [line for line in self.lines if regex.search(line)]
                    if len(found) >= occurrence:
                        return found[occurrence - 1]
                    event.clear()  # the reader sets it under the same lock
                if not event.wait(max(0.0, deadline - time.monotonic())):
                    raise AssertionError(
                        f"{occurrence} log lines matching {pattern!r} expected:\n{self.log}"
                    )
        finally:
            with self._lock:
                self._conditions.remove((regex, event))

    def count(self, pattern: str) -> int:
        """How many log lines so far match ``pattern``."""
        regex = re.compile(pattern)
        with self._lock:
            return sum(1 for line in self.lines if regex.search(line))

    @property
    def log(self) -> str:
        with self._lock:
            return "".join(self.lines)

    def terminate(self) -> None:
        """Send SIGTERM (as ``systemctl stop`` does) without waiting; `stop` waits."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        self._terminated = True

    def stop(self) -> int:
        if self.process is None:
            return 0
        if self.process.poll() is None:
            if not self._terminated:
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode or 0

"""The three servers under test, started the same way and torn down completely.

Each server is a child process of the bench, started through ``taskset -c
<server cpu>`` (for the ``workers`` workload: both CPUs) in its own process
group, listening on 127.0.0.1 only, with explicit FTPS required on logons and
data, one local account, a passive port range of its own and the certificate
the run asks for. ``stop`` ends the process and every descendant it still has
(vsftpd's per-session processes, ftps7's workers), by pid, and nothing else.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import quoteattr

import procstat

LISTEN_STATE = "0A"


class BenchError(Exception):
    """Something the bench cannot go on without; the message says what."""


@dataclass(frozen=True)
class Certificate:
    kind: str  # "ecdsa-p256" or "rsa-2048"
    cert: Path
    key: Path
    thumbprint: str


def make_certificate(directory: Path, kind: str) -> Certificate:
    """A self-signed certificate for 127.0.0.1 made with the openssl command."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{kind}.pem", directory / f"{kind}.key"
    if kind == "ecdsa-p256":
        newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
    elif kind == "rsa-2048":
        newkey = ["-newkey", "rsa:2048"]
    else:
        raise BenchError(f"unknown certificate type {kind!r}")
    subprocess.run(
        [
            "openssl", "req", "-x509", *newkey, "-nodes", "-sha256", "-days", "7",
            "-subj", "/CN=ftps7 bench", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    key.chmod(0o600)
    fingerprint = subprocess.run(
        ["openssl", "x509", "-noout", "-fingerprint", "-sha1", "-in", str(cert)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    thumbprint = fingerprint.split("=", 1)[1].strip().replace(":", "").upper()
    return Certificate(kind, cert, key, thumbprint)


def _listeners() -> list[int]:
    """The port of every IPv4 listening socket on 127.0.0.1 or any address (/proc/net/tcp).

    One entry per socket: processes sharing a port through SO_REUSEPORT
    (ftps7's workers) each have their own.
    """
    ports = []
    with open("/proc/net/tcp", encoding="ascii") as table:
        next(table)
        for line in table:
            fields = line.split()
            address, _, port = fields[1].partition(":")
            if fields[3] == LISTEN_STATE and address in ("0100007F", "00000000"):
                ports.append(int(port, 16))
    return ports


def listening_ports() -> set[int]:
    """TCP ports with an IPv4 listener on 127.0.0.1 or any address, from /proc/net/tcp."""
    return set(_listeners())


def listener_count(port: int) -> int:
    """How many sockets listen on ``port`` (more than one with SO_REUSEPORT)."""
    return _listeners().count(port)


def listening(port: int) -> bool:
    """Whether something listens on 127.0.0.1:``port`` (without connecting to it)."""
    return port in listening_ports()


@dataclass
class Common:
    """What every server of a run shares."""

    workdir: Path  # configurations, certificates, logs
    root: Path  # the served folder, on tmpfs
    user: str
    password: str
    server_cpu: int


@dataclass
class Server:
    """A server under test; subclasses say how to configure and start it."""

    name: str
    port: int
    passive: tuple[int, int]
    common: Common
    process: subprocess.Popen[bytes] | None = None
    certificate: Certificate | None = None
    notes: list[str] = field(default_factory=list)
    # taskset CPU list for the next start; None: the run's server CPU.
    cpus: str | None = None
    log_offset: int = 0  # size of the log when the running server was started

    @property
    def pid(self) -> int:
        if self.process is None or self.process.poll() is not None:
            raise BenchError(f"{self.name} is not running:\n{self.log_tail()}")
        return self.process.pid

    @property
    def directory(self) -> Path:
        path = self.common.workdir / self.name
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def log_path(self) -> Path:
        return self.directory / "server.log"

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def log_since_start(self) -> str:
        """What the running server has logged (the log file collects every start)."""
        try:
            with open(self.log_path, "rb") as handle:
                handle.seek(self.log_offset)
                return handle.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    # -- to be provided by each server
    def prepare(self) -> None:
        """One-time set-up for the run (accounts, configuration folders)."""

    def command(self, certificate: Certificate) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        return listening(self.port)

    def describe(self) -> dict[str, object]:
        return {}

    # -- common life cycle
    def start(self, certificate: Certificate, timeout: float = 60.0) -> None:
        self.stop()
        self.certificate = certificate
        argv = [
            "taskset",
            "-c",
            self.cpus or str(self.common.server_cpu),
            *self.command(certificate),
        ]
        env = dict(os.environ, BENCH_FTP_PASSWORD=self.common.password, PYTHONUNBUFFERED="1")
        with open(self.log_path, "ab") as log:
            self.log_offset = log.tell()
            self.process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.directory,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not self.ready():
            if self.process.poll() is not None:
                raise BenchError(f"{self.name} exited at start:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise BenchError(
                    f"{self.name} did not start in {timeout:.0f} s:\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM the server and its descendants; SIGKILL what is left after 10 s."""
        if self.process is None:
            return
        process, self.process = self.process, None
        family = procstat.tree_pids(process.pid) if process.poll() is None else []
        for pid in family:
            _signal(pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        deadline = time.monotonic() + 5
        for pid in family[1:]:
            while procstat.read_stat(pid) is not None and time.monotonic() < deadline:
                time.sleep(0.05)
            _signal(pid, signal.SIGKILL)


def _signal(pid: int, number: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, number)


# -- ftps7 -------------------------------------------------------------------


@dataclass
class Ftps7(Server):
    python: Path = Path()
    certificates: list[Certificate] = field(default_factory=list)
    credentials_cache: bool = True
    # <ftps7><process workers="N"/> for the next start; None: the element is left out
    # (the default, one process), as in every workload but ``workers``.
    workers: int | None = None

    @property
    def tool(self) -> Path:
        return self.python.with_name("ftps7")

    @property
    def config(self) -> Path:
        return self.directory / "ftps7.config"

    def prepare(self) -> None:
        store = self.directory / "certs" / "MY"
        store.mkdir(parents=True, exist_ok=True)
        for certificate in self.certificates:
            (store / certificate.cert.name).write_bytes(certificate.cert.read_bytes())
            key = store / certificate.key.name
            key.write_bytes(certificate.key.read_bytes())
            key.chmod(0o600)
        self._write_config(self.certificates[0])
        subprocess.run(
            [str(self.tool), "--config", str(self.config), "user", "add", self.common.user,
             "--groups", "benchusers", "--password-stdin"],
            input=self.common.password + "\n",
            text=True,
            check=True,
            capture_output=True,
        )  # fmt: skip

    def _write_config(self, certificate: Certificate) -> None:
        low, high = self.passive
        cache = "true" if self.credentials_cache else "false"
        process = "" if self.workers is None else f'\n    <process workers="{self.workers}" />'
        self.config.write_text(
            f"""<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by bench/servers.py for one benchmark run. -->
<configuration>
  <system.applicationHost>
    <sites>
      <site name="bench" id="1">
        <application path="/">
          <virtualDirectory path="/" physicalPath={quoteattr(str(self.common.root))} />
        </application>
        <bindings>
          <binding protocol="ftp" bindingInformation="127.0.0.1:{self.port}:" />
        </bindings>
        <ftpServer>
          <security>
            <ssl serverCertHash="{certificate.thumbprint}"
                 controlChannelPolicy="SslRequire" dataChannelPolicy="SslRequire" />
            <authentication>
              <anonymousAuthentication enabled="false" />
              <basicAuthentication enabled="true" />
            </authentication>
          </security>
          <logFile directory={quoteattr(str(self.directory / "w3c"))} />
        </ftpServer>
      </site>
    </sites>
  </system.applicationHost>
  <system.ftpServer>
    <firewallSupport lowDataChannelPort="{low}" highDataChannelPort="{high}" />
    <caching><credentialsCache enabled="{cache}" /></caching>
  </system.ftpServer>
  <location path="bench">
    <system.ftpServer><security><authorization>
      <add accessType="Allow" roles="benchusers" permissions="Read, Write" />
    </authorization></security></system.ftpServer>
  </location>
  <ftps7>
    <certificateStore path="certs" />
    <localAccounts path="users" />{process}
  </ftps7>
</configuration>
""",
            encoding="utf-8",
        )
        check = subprocess.run(
            [str(self.tool), "--config", str(self.config), "config", "check"],
            capture_output=True,
            text=True,
        )
        if check.returncode != 0:
            raise BenchError(f"ftps7 config check failed:\n{check.stdout}{check.stderr}")

    def command(self, certificate: Certificate) -> list[str]:
        self._write_config(certificate)
        twistd = self.python.with_name("twistd")
        return [
            str(twistd),
            "-n",
            "--pidfile=",
            "--logfile=-",
            "ftps7",
            "--config",
            str(self.config),
        ]

    def ready(self) -> bool:
        """Every worker has bound the control port and said so.

        With ``workers`` > 1 the kernel spreads connections only over the
        sockets already listening, so a measurement that began while worker 1
        was still starting would send every session to worker 0.
        """
        count = self.workers or 1
        if listener_count(self.port) < count:
            return False
        logged = self.log_since_start()
        return all(f"ftps7 ready (worker {index})" in logged for index in range(count))

    def describe(self) -> dict[str, object]:
        return {
            "command": "twistd -n ftps7 --config <generated>",
            "python": str(self.python),
            "password_check": "argon2id local account (ftps7 user add), credentials cache "
            + ("on (default, flushInterval 60 s)" if self.credentials_cache else "off"),
            "logging": "W3C log file per site (default fields)",
        }


# -- pyftpdlib ---------------------------------------------------------------


@dataclass
class Pyftpdlib(Server):
    python: Path = Path()
    script: Path = Path()

    def command(self, certificate: Certificate) -> list[str]:
        low, high = self.passive
        return [
            str(self.python), str(self.script), "--port", str(self.port),
            "--passive", f"{low}-{high}", "--cert", str(certificate.cert),
            "--key", str(certificate.key), "--user", self.common.user,
            "--root", str(self.common.root),
        ]  # fmt: skip

    def ready(self) -> bool:
        return listening(self.port) and "bench-server ready" in self.log_tail(50)

    def describe(self) -> dict[str, object]:
        return {
            "command": "python bench/pyftpdlib_server.py (TLS_FTPHandler)",
            "python": str(self.python),
            "password_check": "DummyAuthorizer: plaintext comparison (pyftpdlib's built-in)",
            "logging": "INFO log to a file",
        }


# -- vsftpd ------------------------------------------------------------------


@dataclass
class Vsftpd(Server):
    binary: str = "/usr/sbin/vsftpd"
    supports_tls13_option: bool = False
    extra_options: list[str] = field(default_factory=list)  # KEY=VALUE lines, last wins

    @property
    def config(self) -> Path:
        return self.directory / "vsftpd.conf"

    def command(self, certificate: Certificate) -> list[str]:
        low, high = self.passive
        lines = [
            "# Generated by bench/servers.py for one benchmark run.",
            "listen=YES",
            "listen_ipv6=NO",
            "listen_address=127.0.0.1",
            f"listen_port={self.port}",
            "background=NO",
            "anonymous_enable=NO",
            "local_enable=YES",
            "write_enable=YES",
            "local_umask=022",
            f"local_root={self.common.root}",
            "pasv_enable=YES",
            f"pasv_min_port={low}",
            f"pasv_max_port={high}",
            "ssl_enable=YES",
            "allow_anon_ssl=NO",
            "force_local_logins_ssl=YES",
            "force_local_data_ssl=YES",
            "ssl_sslv2=NO",
            "ssl_sslv3=NO",
            # require_ssl_reuse stays at its default (YES).
            # The default cipher list names only an RSA suite for TLS <= 1.2;
            # TLS 1.3 suites are not affected, HIGH keeps an ECDSA key usable.
            "ssl_ciphers=HIGH",
            f"rsa_cert_file={certificate.cert}",
            f"rsa_private_key_file={certificate.key}",
            "pam_service_name=vsftpd",
            "xferlog_enable=YES",
            "xferlog_std_format=NO",
            f"vsftpd_log_file={self.directory / 'vsftpd.log'}",
            "dirmessage_enable=NO",
            # Unlimited, as the other servers. Left unset, this build answers a
            # 51st session from one address with 421 although its man page says
            # the default is 0 (unlimited); the idle-memory test holds 500.
            "max_per_ip=0",
            "max_clients=0",
            "secure_chroot_dir=/var/run/vsftpd/empty",
        ]
        if self.supports_tls13_option:
            lines.append("ssl_tlsv1_3=YES")
        lines.extend(self.extra_options)
        self.config.write_text("\n".join(lines) + "\n", encoding="ascii")
        self.config.chmod(0o600)
        Path("/var/run/vsftpd/empty").mkdir(parents=True, exist_ok=True)
        return [self.binary, str(self.config)]

    def describe(self) -> dict[str, object]:
        return {
            "command": "vsftpd <generated conf> (listen=YES, background=NO)",
            "password_check": "PAM (service vsftpd: pam_unix against /etc/shadow)",
            "logging": "vsftpd_log_file (xferlog_enable=YES, xferlog_std_format=NO)",
            "extra_options": list(self.extra_options),
            "tls13": "ssl_tlsv1_3=YES"
            if self.supports_tls13_option
            else "this vsftpd has no ssl_tlsv1_3 option; TLS 1.3 is negotiated because "
            "nothing disables it (the client requires TLS 1.3)",
        }

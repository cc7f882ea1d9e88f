#!/usr/bin/env python3
"""ftps7 against pyftpdlib and vsftpd: the one benchmark command.

    sudo python3 bench/run.py [--only download,sessions] [--size 1G] [--reps 5]
    sudo python3 bench/run.py --only workers       # ftps7, 1 against 2 worker processes

Installs what it needs (vsftpd from apt, a bench venv with pyftpdlib and
pyOpenSSL), starts the three servers on 127.0.0.1 pinned to one CPU, drives
them from clients pinned to the other CPU, prints a table with ftps7's ratio
to each peer and writes bench/results/<timestamp>.json. It removes its
processes, its temporary user and its tmpfs files when it ends, however it
ends. See bench/README.md.

The ``workers`` workload is the exception to the pinning: it compares ftps7
with one and with two worker processes, so the server needs both CPUs, and
the clients share them. It runs only when asked for (``--only workers``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import procstat
import pyspy
import report
import setup_env
from servers import (
    BenchError,
    Certificate,
    Common,
    Ftps7,
    Pyftpdlib,
    Server,
    Vsftpd,
    listening_ports,
    make_certificate,
)

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
WORKLOADS = ("download", "upload", "sessions", "mlsd", "smallfiles", "memory", "sessions_rsa")
# Not in the default set: it cannot keep the servers and clients on separate CPUs.
EXTRA_WORKLOADS = ("workers",)
PROFILE_WORKLOADS = ("download", "sessions")
USER = "ftps7bench"
DOWNLOAD_FILE = "big.bin"
LIST_FOLDER = "list10k"
SMALL_FOLDER = "small"
SMALL_FILE = "small-{:04d}.dat"
WORKERS_FILE = "workers.bin"


def parse_size(text: str) -> int:
    """``1G``, ``256M``, ``64K`` or bytes; binary multiples."""
    match = re.fullmatch(r"(\d+)\s*([KMG]?)(?:i?B)?", text.strip(), re.IGNORECASE)
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 1G or 256M)")
    return int(match.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[match.group(2).upper()]


def parse_list(allowed: tuple[str, ...]) -> Any:
    def parse(text: str) -> list[str]:
        names = [name.strip() for name in text.split(",") if name.strip()]
        unknown = [name for name in names if name not in allowed]
        if unknown:
            raise argparse.ArgumentTypeError(
                f"unknown: {', '.join(unknown)} (choose from {', '.join(allowed)})"
            )
        return names

    return parse


def parse_cpus(text: str) -> str:
    """A taskset CPU list of single CPUs: ``0,1`` or ``2,3``."""
    try:
        cpus = sorted({int(cpu) for cpu in text.split(",") if cpu.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a CPU list: {text!r} (try 0,1)") from None
    if not cpus or cpus[0] < 0:
        raise argparse.ArgumentTypeError(f"not a CPU list: {text!r} (try 0,1)")
    return ",".join(map(str, cpus))


def default_ftps7_python() -> Path:
    """The project's .venv if there is one, else the interpreter running the bench."""
    venv = REPO / ".venv" / "bin" / "python"
    return venv if venv.exists() else Path(sys.executable)


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark ftps7 against pyftpdlib and vsftpd (run as root).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--only",
        type=parse_list(WORKLOADS + EXTRA_WORKLOADS),
        default=list(WORKLOADS),
        help="comma-separated workloads: " + ",".join(WORKLOADS + EXTRA_WORKLOADS) + "; "
        "'workers' (ftps7 with 1 and with 2 worker processes, 8 parallel PROT P downloads) "
        "is not in the default set: the server needs both CPUs there, so neither the server "
        "nor its clients are pinned (taskset -c <server cpu>,<client cpu>), unlike every "
        "other workload",
    )
    parser.add_argument(
        "--servers",
        type=parse_list(report.SERVERS),
        default=list(report.SERVERS),
        help="comma-separated servers",
    )
    parser.add_argument(
        "--size",
        type=parse_size,
        default=parse_size("1G"),
        help="transfer file size (1G, 256M, ...)",
    )
    parser.add_argument("--reps", type=int, default=5, help="repetitions of every measurement")
    parser.add_argument(
        "--cert",
        choices=("ecdsa-p256", "rsa-2048"),
        default="ecdsa-p256",
        help="certificate type for all workloads but sessions_rsa",
    )
    parser.add_argument("--concurrency", type=int, default=16, help="session-rate clients")
    parser.add_argument(
        "--session-tls",
        choices=("c", "pyopenssl", "stdlib"),
        default="c",
        help="session-rate clients: sessload.c (GnuTLS), or Python with pyOpenSSL or ssl"
        " (see bench/README.md)",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=10.0,
        help="measured seconds of each session-rate run",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=2.0,
        help="unmeasured seconds before each session-rate window",
    )
    parser.add_argument("--files", type=int, default=10000, help="files in the listed folder")
    parser.add_argument(
        "--small-files", type=int, default=300, help="files the smallfiles workload downloads"
    )
    parser.add_argument(
        "--small-size", type=int, default=4096, help="bytes of each of those files"
    )
    parser.add_argument(
        "--workers-clients",
        type=int,
        default=8,
        help="workers workload: simultaneous download clients",
    )
    parser.add_argument(
        "--workers-size",
        type=parse_size,
        default=None,
        help="workers workload: bytes each client downloads (None: --size divided by "
        "--workers-clients)",
    )
    parser.add_argument(
        "--workers-server-cpus",
        type=parse_cpus,
        default=None,
        help="workers workload: CPUs ftps7 may use (None: --server-cpu and --client-cpu)",
    )
    parser.add_argument(
        "--workers-client-cpus",
        type=parse_cpus,
        default=None,
        help="workers workload: CPUs the clients may use (None: the same as the server; "
        "on a machine with 4+ CPUs, separate CPUs show the server's own scaling)",
    )
    parser.add_argument(
        "--workers-balance",
        action="store_true",
        help="workers workload, a diagnostic: clients reconnect until every worker has the "
        "same number of sessions (real clients get the kernel's random SO_REUSEPORT spread)",
    )
    parser.add_argument(
        "--workers-client-tls",
        choices=("pyopenssl", "stdlib"),
        default="pyopenssl",
        help="workers workload: the clients' data-connection TLS (see bench/README.md)",
    )
    parser.add_argument("--idle-sessions", type=int, default=500, help="sessions held for PSS")
    parser.add_argument(
        "--quiet-threshold",
        type=float,
        default=0.10,
        help="before each measurement, wait while either CPU is busier than this share",
    )
    parser.add_argument(
        "--quiet-timeout",
        type=float,
        default=120.0,
        help="longest wait for quiet CPUs (s)",
    )
    parser.add_argument(
        "--disturbed-threshold",
        type=float,
        default=0.2,
        help="measure again when other work used more than this share of either CPU",
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=2,
        help="how often a disturbed measurement is repeated",
    )
    parser.add_argument("--server-cpu", type=int, default=0, help="CPU the servers run on")
    parser.add_argument("--client-cpu", type=int, default=1, help="CPU the clients run on")
    parser.add_argument(
        "--base-port",
        type=int,
        default=30000,
        help="control ports base..base+2, passive ranges from base+10",
    )
    parser.add_argument(
        "--ftps7-python",
        type=Path,
        default=default_ftps7_python(),
        help="Python of the environment ftps7 is installed in (its twistd "
        "and ftps7 scripts are taken from the same folder)",
    )
    parser.add_argument(
        "--no-credentials-cache",
        action="store_true",
        help="ftps7 with credentialsCache off (argon2id at every logon)",
    )
    parser.add_argument(
        "--vsftpd-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra vsftpd.conf line (repeatable), e.g. isolate_network=NO",
    )
    parser.add_argument(
        "--bench-venv",
        type=Path,
        default=BENCH / ".venv",
        help="venv for pyftpdlib, pyOpenSSL, py-spy and the clients",
    )
    parser.add_argument(
        "--no-install",
        action="store_true",
        help="never apt-get/pip install; fail if something is missing",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="afterwards, profile ftps7 with py-spy under " + " and ".join(PROFILE_WORKLOADS),
    )
    parser.add_argument(
        "--profile-native", action="store_true", help="py-spy --native (C frames too)"
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=BENCH / "results",
        help="folder for the JSON file and profiles",
    )
    parser.add_argument(
        "--keep-workdir",
        action="store_true",
        help="keep configurations and server logs (never the data files)",
    )
    return parser.parse_args(argv)


def recycle_pages(folder: Path, size: int) -> None:
    """Write and delete ``size`` bytes in ``folder`` (tmpfs) before an upload.

    The pages an upload lands on cost the kernel (and, on a virtual machine,
    the hypervisor) far more the first time they are touched: 2.4 CPU-s per
    GiB on fresh tmpfs pages against 0.43 on recycled ones here. Which server
    met fresh pages used to depend on the order of the runs (one upload at
    332 MB/s and the next at 1186); this gives every upload recycled pages.
    """
    scratch = folder / ".recycle-pages"
    block = bytes(4 << 20)
    with scratch.open("wb") as handle:
        for _ in range(0, size, len(block)):
            handle.write(block)
    scratch.unlink()


class Bench:
    """One run: set-up, the workloads, clean-up."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
        self.runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
        self.profiles: dict[str, Any] = {}
        self.discarded: list[dict[str, Any]] = []
        self.servers: list[Server] = []
        self.certificates: dict[str, Certificate] = {}
        self.workdir: Path | None = None
        self.user_created = False
        self.bench_python = Path(sys.executable)
        self.pyspy: Path | None = None
        self.meta: dict[str, Any] = {}
        self.password = ""

    # -- set-up ---------------------------------------------------------------
    def setup(self) -> None:
        args = self.args
        if os.geteuid() != 0:
            raise BenchError("run the bench as root (it creates a local user for vsftpd)")
        if args.server_cpu == args.client_cpu:
            raise BenchError("--server-cpu and --client-cpu must differ")
        if "workers" in args.only:
            if "ftps7" not in args.servers:
                raise BenchError("the workers workload measures ftps7: add it to --servers")
            if args.workers_clients < 1 or self.workers_size() < 1:
                raise BenchError("--workers-clients and the per-client size must be positive")
            if not set(args.only) - {"workers"}:
                args.servers = ["ftps7"]  # the only server it measures
        for tool in ("taskset", "openssl", "useradd", "chpasswd", "userdel"):
            if shutil.which(tool) is None:
                raise BenchError(f"{tool} is missing")
        self.bench_python = setup_env.ensure_bench_venv(
            args.bench_venv, not args.no_install, args.profile
        )
        if args.profile:
            self.pyspy = args.bench_venv / "bin" / "py-spy"
        if args.session_tls == "c" and (
            {"sessions", "sessions_rsa"} & set(args.only) or args.profile
        ):
            setup_env.ensure_sessload(args.bench_venv, not args.no_install)
        vsftpd_binary = "/usr/sbin/vsftpd"
        if "vsftpd" in args.servers:
            vsftpd_binary = setup_env.ensure_vsftpd(not args.no_install)
        ftps7_python = args.ftps7_python.absolute()
        if "ftps7" in args.servers:
            probe = subprocess.run(
                [str(ftps7_python), "-c", "import ftps7; print(ftps7.__version__)"],
                capture_output=True,
                text=True,
            )
            if probe.returncode != 0 or not ftps7_python.with_name("twistd").exists():
                raise BenchError(f"ftps7 is not installed for {ftps7_python} (give --ftps7-python)")

        # The bench itself sits on the client CPU; servers are started with taskset.
        os.sched_setaffinity(0, {args.client_cpu})
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = 65536 if hard == resource.RLIM_INFINITY else min(65536, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))

        self.workdir = Path(tempfile.mkdtemp(prefix="ftps7-bench-", dir="/dev/shm"))
        self.workdir.chmod(0o711)  # vsftpd's session runs as the bench user: let it reach data/
        root = self.workdir / "data"
        root.mkdir()
        password = secrets.token_urlsafe(18)
        setup_env.create_user(USER, root, password)
        self.user_created = True
        self._make_data(root)
        shutil.chown(root, USER, USER)
        root.chmod(0o755)

        certs = self.workdir / "certs"
        for kind in ("ecdsa-p256", "rsa-2048"):
            self.certificates[kind] = make_certificate(certs, kind)
        common = Common(self.workdir, root, USER, password, args.server_cpu)
        base = args.base_port
        self.password = password
        # Built only when selected: vsftpd's binary exists only if vsftpd is benched.
        makers: dict[str, Callable[[], Server]] = {
            "ftps7": lambda: Ftps7(
                "ftps7", base, (base + 10, base + 109), common,
                python=ftps7_python,
                certificates=[self.certificates[args.cert],
                              *(c for k, c in self.certificates.items() if k != args.cert)],
                credentials_cache=not args.no_credentials_cache,
            ),
            "pyftpdlib": lambda: Pyftpdlib(
                "pyftpdlib", base + 1, (base + 110, base + 209), common,
                python=self.bench_python, script=BENCH / "pyftpdlib_server.py",
            ),
            "vsftpd": lambda: Vsftpd(
                "vsftpd", base + 2, (base + 210, base + 309), common,
                binary=vsftpd_binary,
                supports_tls13_option=setup_env.vsftpd_has_option(vsftpd_binary, "ssl_tlsv1_3"),
                extra_options=list(args.vsftpd_option),
            ),
        }  # fmt: skip
        self.servers = [makers[name]() for name in report.SERVERS if name in args.servers]
        taken = listening_ports()
        for server in self.servers:
            low, high = server.passive
            busy = sorted(taken.intersection([server.port, *range(low, high + 1)]))
            if busy:
                raise BenchError(f"ports {busy} are in use; choose another --base-port")
            server.prepare()
        self.meta = self._meta(ftps7_python, vsftpd_binary)

    def workers_size(self) -> int:
        """Bytes each client of the workers workload downloads."""
        args = self.args
        return int(args.workers_size or args.size // max(1, args.workers_clients))

    def _make_data(self, root: Path) -> None:
        if "workers" in self.args.only:
            chunk = os.urandom(1 << 20)
            whole, rest = divmod(self.workers_size(), len(chunk))
            with open(root / WORKERS_FILE, "wb") as handle:
                for _ in range(whole):
                    handle.write(chunk)
                handle.write(chunk[:rest])
            (root / WORKERS_FILE).chmod(0o644)
        if "download" in self.args.only or self.args.profile:
            chunk = os.urandom(1 << 20)
            whole, rest = divmod(self.args.size, len(chunk))
            with open(root / DOWNLOAD_FILE, "wb") as handle:
                for _ in range(whole):
                    handle.write(chunk)
                handle.write(chunk[:rest])
            (root / DOWNLOAD_FILE).chmod(0o644)
        if "mlsd" in self.args.only:
            folder = root / LIST_FOLDER
            folder.mkdir()
            for index in range(self.args.files):
                (folder / f"file-{index:05d}.dat").write_bytes(b"x" * (index % 4096))
            shutil.chown(folder, USER, USER)
        if "smallfiles" in self.args.only:
            folder = root / SMALL_FOLDER
            folder.mkdir()
            for index in range(self.args.small_files):
                path = folder / SMALL_FILE.format(index)
                path.write_bytes(os.urandom(self.args.small_size))
                path.chmod(0o644)
            shutil.chown(folder, USER, USER)

    def _meta(self, ftps7_python: Path, vsftpd_binary: str) -> dict[str, Any]:
        def git(*argv: str) -> str:
            result = subprocess.run(["git", "-C", str(REPO), *argv], capture_output=True, text=True)
            return result.stdout.strip()

        cpu_model = ""
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
        versions = {
            "ftps7": setup_env.python_package_version(ftps7_python, "ftps7"),
            "ftps7_git": git("rev-parse", "--short", "HEAD")
            + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else ""),
            "ftps7_openssl": subprocess.run(
                [str(ftps7_python), "-c", "from OpenSSL import SSL; "
                 "print(SSL.OpenSSL_version(SSL.OPENSSL_VERSION).decode())"],
                capture_output=True, text=True,
            ).stdout.strip(),
            "twisted": setup_env.python_package_version(ftps7_python, "twisted"),
            "pyftpdlib": setup_env.python_package_version(
                self.bench_python, "pyftpdlib", "__ver__"
            ),
            "pyftpdlib_openssl": subprocess.run(
                [str(self.bench_python), "-c", "from OpenSSL import SSL; "
                 "print(SSL.OpenSSL_version(SSL.OPENSSL_VERSION).decode())"],
                capture_output=True, text=True,
            ).stdout.strip(),
            "vsftpd": setup_env.package_version("vsftpd"),
            "vsftpd_libssl": setup_env.package_version("libssl3"),
            "client_python": platform.python_version(),
            "client_openssl": subprocess.run(
                [str(self.bench_python), "-c", "import ssl; print(ssl.OPENSSL_VERSION)"],
                capture_output=True, text=True,
            ).stdout.strip(),
        }  # fmt: skip
        return {
            "timestamp": self.stamp,
            "command": " ".join([sys.executable, *sys.argv]),
            "kernel": platform.release(),
            "cpu": cpu_model,
            "cpus": os.cpu_count(),
            "versions": versions,
            "settings": {
                key: (str(value) if isinstance(value, Path) else value)
                for key, value in vars(self.args).items()
            },
            "servers": {server.name: server.describe() for server in self.servers},
            "notes": [
                "MB = 10^6 bytes; GiB = 2^30 bytes",
                "TLS 1.3 required by the client on every connection; the data connection "
                "resumes the control connection's TLS session",
                "servers pinned with taskset to --server-cpu; clients, py-spy and the bench "
                "to --client-cpu",
                "except the workers workload: ftps7 and its clients not pinned to one CPU "
                "(taskset -c <server cpu>,<client cpu> for both unless --workers-server-cpus/"
                "--workers-client-cpus say otherwise); the bench itself stays on --client-cpu",
            ],
        }

    # -- running clients --------------------------------------------------------
    def client(
        self,
        server: Server,
        workload: list[str],
        timeout: float,
        *,
        quiet: bool = True,
        cpus: str | None = None,
    ) -> dict[str, Any]:
        argv = [
            "taskset", "-c", cpus or str(self.args.client_cpu), str(self.bench_python),
            str(BENCH / "ftpsclient.py"), "--port", str(server.port), "--user", USER,
            "--server-pid", str(server.pid), "--server-cpu", str(self.args.server_cpu),
            "--client-cpu", str(self.args.client_cpu), *workload,
        ]  # fmt: skip
        env = dict(os.environ, BENCH_FTP_PASSWORD=self.password)
        # py-spy keeps the client CPU busy while profiling: no quiet to wait for then.
        background = self.wait_quiet() if quiet else {}
        # Its own session, so that it and the worker processes it forks can be
        # ended together (by this process-group id) if it overruns or the bench
        # is interrupted.
        process = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=BENCH,
            start_new_session=True,
        )
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            return {
                "error": f"client timed out after {timeout:.0f} s",
                "background_busy": background,
            }
        finally:
            if process.returncode is None:  # overran, or the bench was interrupted
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        lines = stdout.strip().splitlines()
        try:
            result: dict[str, Any] = json.loads(lines[-1])
        except (IndexError, json.JSONDecodeError):
            result = {"error": f"client failed: {stderr.strip()[-2000:]}"}
        result["background_busy"] = background
        return result

    def wait_quiet(self) -> dict[str, float]:
        """Wait until both CPUs are nearly idle; return how busy they were.

        On a shared machine other work on either CPU distorts every figure.
        Before each measurement the bench samples both cores for half a second
        and waits (up to ``--quiet-timeout``) while either is busier than
        ``--quiet-threshold``; the last sample goes into the result, so a
        disturbed measurement can be recognised afterwards.
        """
        cpus = (self.args.server_cpu, self.args.client_cpu)
        deadline = time.monotonic() + self.args.quiet_timeout
        waited = False
        while True:
            before = [procstat.core_ticks(cpu) for cpu in cpus]
            time.sleep(0.5)
            after = [procstat.core_ticks(cpu) for cpu in cpus]
            busy = [
                (a.busy - b.busy) / max(1, a.total - b.total)
                for b, a in zip(before, after, strict=True)
            ]
            quiet = max(busy) <= self.args.quiet_threshold
            if quiet or time.monotonic() >= deadline:
                if not quiet:
                    log(f"  (CPUs still busy: {busy[0]:.0%} / {busy[1]:.0%}; measuring anyway)")
                elif waited:
                    log("  (CPUs quiet again)")
                return {"server_cpu": busy[0], "client_cpu": busy[1], "quiet": quiet}
            if not waited:
                log(f"  waiting for quiet CPUs (busy {busy[0]:.0%} / {busy[1]:.0%})")
                waited = True

    def record(
        self,
        workload: str,
        server: Server,
        result: dict[str, Any],
        rep: int,
        label: str | None = None,
    ) -> None:
        name = label or server.name
        result.setdefault("rep", rep)
        self.runs.setdefault(workload, {}).setdefault(name, []).append(result)
        if "error" in result:
            log(f"[{workload}] {name} rep {rep}: ERROR {result['error']}")
            log(f"  {server.name} log tail:\n{server.log_tail(15)}")
            return
        shown = {
            "download": _show_transfer,
            "upload": _show_transfer,
            "sessions": _show_sessions,
            "sessions_rsa": _show_sessions,
            "mlsd": lambda r: (
                f"{r['seconds']:.3f} s, {r['entries']} entries, NOOP max "
                f"{r['noop_max_ms_during']:.1f} ms ({r['noop_probes_during']} probes)"
            ),
            "smallfiles": lambda r: (
                f"{r['files_per_s']:.0f} files/s, {r['ms_per_file']:.2f} ms/file, "
                f"{r['server_cpu_ms_per_file']:.2f} server CPU ms/file"
            ),
            "memory": lambda r: (
                f"{r['kib_per_session']:.1f} KiB/session (anon {r['anon_kib_per_session']:.1f}, "
                f"file {r['file_kib_per_session']:.1f}, from fresh "
                f"{r['kib_per_session_from_fresh']:.1f})"
            ),
            "workers": _show_workers,
        }[workload]
        flags = " [disturbed]" if result.get("disturbed") else ""
        log(f"[{workload}] {name} rep {rep}: {shown(result)}{flags}")

    def rotation(self, rep: int) -> list[Server]:
        """The servers in a different order each repetition (no fixed first/last)."""
        shift = rep % len(self.servers)
        return self.servers[shift:] + self.servers[:shift]

    def start_all(self, kind: str) -> None:
        for server in self.servers:
            server.start(self.certificates[kind])

    # -- workloads -------------------------------------------------------------
    def run(self) -> None:
        args = self.args
        assert self.workdir is not None
        root = self.workdir / "data"
        primary = args.cert
        transfer_timeout = 120 + args.size / 20e6
        if set(args.only) & {"download", "upload", "sessions", "mlsd", "smallfiles"}:
            self.start_all(primary)
        for direction in ("download", "upload"):
            if direction not in args.only:
                continue
            for rep in range(args.reps):
                for server in self.rotation(rep):
                    path = DOWNLOAD_FILE if direction == "download" else f"upload-{server.name}.bin"
                    self.measure(
                        direction,
                        server,
                        rep,
                        ["transfer", "--direction", direction, "--path", path,
                         "--size", str(args.size)],
                        transfer_timeout,
                        certificate=primary,
                        cleanup=(root / path) if direction == "upload" else None,
                        before=(
                            (lambda: recycle_pages(root, args.size))
                            if direction == "upload"
                            else None
                        ),
                    )  # fmt: skip
        if "sessions" in args.only:
            self._sessions("sessions", primary)
        if "mlsd" in args.only:
            for rep in range(args.reps):
                for server in self.rotation(rep):
                    command = "LIST" if server.name == "vsftpd" else "MLSD"
                    self.measure(
                        "mlsd",
                        server,
                        rep,
                        ["listing", "--command", command, "--path", LIST_FOLDER],
                        300,
                        certificate=primary,
                    )
        if "smallfiles" in args.only:
            for rep in range(args.reps):
                for server in self.rotation(rep):
                    self.measure(
                        "smallfiles",
                        server,
                        rep,
                        ["smallfiles", "--folder", SMALL_FOLDER, "--pattern", SMALL_FILE,
                         "--count", str(args.small_files)],
                        300,
                        certificate=primary,
                    )  # fmt: skip
        if "memory" in args.only:
            for rep in range(args.reps):
                for server in self.rotation(rep):
                    server.start(self.certificates[primary])  # fresh for every measurement
                    result = self.client(server, ["idle", "--count", str(args.idle_sessions)], 600)
                    result["certificate"] = primary
                    self.record("memory", server, result, rep)
        if "sessions_rsa" in args.only:
            self.start_all("rsa-2048")
            self._sessions("sessions_rsa", "rsa-2048")
        for server in self.servers:
            server.stop()
        if "workers" in args.only:
            self._workers(primary)
        if args.profile:
            self.profile()

    def measure(
        self,
        workload: str,
        server: Server,
        rep: int,
        client_args: list[str],
        timeout: float,
        *,
        certificate: str,
        cleanup: Path | None = None,
        label: str | None = None,
        before: Callable[[], None] | None = None,
        cpus: str | None = None,
    ) -> None:
        """Run one measurement; repeat it (up to ``--retries``) if other work disturbed it.

        Disturbed: during the measured window, either CPU was busier with work
        that is neither the server's nor the client's processes nor softirq
        (`ftpsclient.Window`) than ``--disturbed-threshold`` (for unpinned
        runs: both CPUs together, `ftpsclient.MachineWindow`). Discarded
        attempts are kept in the JSON under ``discarded``. ``before`` runs
        ahead of every attempt (a fresh server); ``label`` names the result
        instead of the server.
        """
        name = label or server.name
        for attempt in range(1 + self.args.retries):
            if before is not None:
                before()
            result = self.client(server, client_args, timeout, cpus=cpus)
            result["certificate"] = certificate
            result["attempt"] = attempt + 1
            if cleanup is not None:
                cleanup.unlink(missing_ok=True)
            other = max(
                result.get("server_core_other", 0.0),
                result.get("client_core_other", 0.0),
                result.get("machine_other", 0.0),
            )
            result["disturbed"] = (
                "error" not in result
                and result.get("window_s", 0.0) >= 1.0
                and other > self.args.disturbed_threshold
            )
            if not result["disturbed"] or attempt == self.args.retries:
                self.record(workload, server, result, rep, label)
                return
            log(
                f"[{workload}] {name} rep {rep}: disturbed ({other:.0%} of a CPU busy "
                "with other work); measuring again"
            )
            self.discarded.append({"workload": workload, "server": name, **result})

    def _workers(self, kind: str) -> None:
        """ftps7 with one and with two worker processes, ``--workers-clients`` downloads each.

        Every measurement gets a freshly started server (also a repeated
        one), alternating which worker count goes first. Server and clients
        may use both CPUs: the point is whether a second process turns the
        second CPU into throughput.
        """
        args = self.args
        ftps7 = next(server for server in self.servers if server.name == "ftps7")
        assert isinstance(ftps7, Ftps7)
        both = parse_cpus(f"{args.server_cpu},{args.client_cpu}")
        server_cpus = args.workers_server_cpus or both
        client_cpus = args.workers_client_cpus or server_cpus
        cpus = parse_cpus(f"{server_cpus},{client_cpus}")  # all the CPUs the run may use
        size = self.workers_size()
        low, high = ftps7.passive
        timeout = 120 + size * args.workers_clients / 20e6
        log(
            f"[workers] ftps7 with {' and '.join(map(str, report.WORKER_COUNTS))} workers, "
            f"{args.workers_clients} clients x {size / (1 << 20):.0f} MiB; not pinned to one "
            f"CPU: server taskset -c {server_cpus}, clients taskset -c {client_cpus}"
            + ("; sessions balanced by reconnecting (diagnostic)" if args.workers_balance else "")
        )
        try:
            for rep in range(args.reps):
                counts = report.WORKER_COUNTS
                order = counts if rep % 2 == 0 else counts[::-1]
                for count in order:

                    def fresh(count: int = count) -> None:
                        ftps7.workers = count
                        ftps7.cpus = server_cpus
                        ftps7.start(self.certificates[kind])

                    self.measure(
                        "workers",
                        ftps7,
                        rep,
                        ["parallel", "--clients", str(args.workers_clients),
                         "--path", WORKERS_FILE, "--size", str(size), "--cpus", cpus,
                         "--passive", f"{low}-{high}", "--workers", str(count),
                         "--tls", args.workers_client_tls,
                         *(["--balance"] if args.workers_balance else [])],
                        timeout,
                        certificate=kind,
                        label=report.workers_label(count),
                        before=fresh,
                        cpus=client_cpus,
                    )  # fmt: skip
        finally:
            ftps7.stop()
            ftps7.workers = None
            ftps7.cpus = None

    def _sessions(self, workload: str, kind: str) -> None:
        args = self.args
        for rep in range(args.reps):
            for server in self.rotation(rep):
                self.measure(
                    workload,
                    server,
                    rep,
                    self._session_args(),
                    args.warmup + args.duration + 120,
                    certificate=kind,
                )

    def _session_args(self) -> list[str]:
        args = self.args
        return [
            "sessions", "--concurrency", str(args.concurrency), "--warmup", str(args.warmup),
            "--duration", str(args.duration), "--tls", args.session_tls,
        ]  # fmt: skip

    def profile(self) -> None:
        """py-spy on ftps7 under the download and the session workloads."""
        ftps7 = next((server for server in self.servers if server.name == "ftps7"), None)
        if ftps7 is None or self.pyspy is None:
            return
        args = self.args
        assert self.workdir is not None
        args.results.mkdir(parents=True, exist_ok=True)
        for workload in PROFILE_WORKLOADS:
            if workload == "download" and not (self.workdir / "data" / DOWNLOAD_FILE).exists():
                continue
            ftps7.start(self.certificates[args.cert])
            output = args.results / f"{self.stamp}-pyspy-{workload}.txt"
            recorder = pyspy.Recorder(
                self.pyspy,
                ftps7.pid,
                output,
                args.client_cpu,
                native=args.profile_native,
            )
            time.sleep(1.0)  # let py-spy attach before the load starts
            results = []
            for _ in range(args.reps):  # more samples
                if workload == "download":
                    download = [
                        "transfer",
                        "--direction",
                        "download",
                        "--path",
                        DOWNLOAD_FILE,
                    ]
                    workload_args = [*download, "--size", str(args.size)]
                    timeout = 120 + args.size / 20e6
                else:
                    workload_args = self._session_args()
                    timeout = args.warmup + args.duration + 120
                results.append(self.client(ftps7, workload_args, timeout, quiet=False))
            recorder.stop()
            summary = pyspy.summarize(output)
            summary["raw_file"] = str(output)
            summary["runs_under_profiler"] = results
            self.profiles[workload] = summary
            log(pyspy.format_summary(workload, summary))
        ftps7.stop()

    # -- output and clean-up -------------------------------------------------------
    def write(self) -> Path:
        summary = report.metrics(self.runs)
        document = {
            "meta": self.meta,
            "metrics": summary,
            "runs": self.runs,
            "discarded": self.discarded,
            "profiles": self.profiles,
        }
        self.args.results.mkdir(parents=True, exist_ok=True)
        path = self.args.results / f"{self.stamp}.json"
        path.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
        print(report.table(summary))
        print(f"\nJSON: {path}")
        return path

    def cleanup(self) -> None:
        for server in self.servers:
            try:
                server.stop()
            except Exception as error:  # noqa: BLE001 - clean up the rest regardless
                log(f"stopping {server.name}: {error}")
        if self.user_created:
            setup_env.delete_user(USER)
        if self.workdir is not None:
            if self.args.keep_workdir:
                shutil.rmtree(self.workdir / "data", ignore_errors=True)
                kept = Path(tempfile.gettempdir()) / self.workdir.name
                shutil.copytree(self.workdir, kept, dirs_exist_ok=True)
                log(f"configurations and logs kept in {kept}")
            shutil.rmtree(self.workdir, ignore_errors=True)


def _show_transfer(result: dict[str, Any]) -> str:
    return (
        f"{result['mb_per_s']:.0f} MB/s, {result['server_cpu_s_per_gib']:.2f} CPU s/GiB, "
        f"cores busy: server {result['server_core_busy'] * 100:.0f}% client "
        f"{result['client_core_busy'] * 100:.0f}% ({result['bottleneck']})"
    )


def _show_workers(result: dict[str, Any]) -> str:
    busy = " ".join(f"{share * 100:.0f}%" for share in result["cpu_busy"].values())
    workers = "/".join(
        f"{process['cpu_s']:.1f}"
        for process in sorted(result["server_processes"], key=lambda p: p["worker"])
    )
    return (
        f"{result['mb_per_s']:.0f} MB/s; server {result['server_cpus']:.2f} CPUs "
        f"({result['server_cpu_s_per_gib']:.2f} s/GiB, per worker {workers} CPU s), clients "
        f"{result['client_cpus']:.2f} CPUs ({result['client_cpu_s_per_gib']:.2f} s/GiB); "
        f"CPUs busy {busy}; sessions per worker "
        f"{'/'.join(map(str, result['sessions_per_worker']))} ({result['bottleneck']}); "
        f"speed probe {'/'.join(f'{ms:.0f}' for ms in result['speed_probe_ms'])} ms"
    )


def _show_sessions(result: dict[str, Any]) -> str:
    return (
        f"{result['sessions_per_s']:.0f}/s, p50 {result['p50_ms']:.1f} ms, "
        f"p99 {result['p99_ms']:.1f} ms, {result['server_cpu_ms_per_session']:.2f} CPU ms, "
        f"cores busy: server {result['server_core_busy'] * 100:.0f}% client "
        f"{result['client_core_busy'] * 100:.0f}% ({result['bottleneck']}), "
        f"errors {result['error_count']}"
    )


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    for number in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, _terminate)
    bench = Bench(args)
    try:
        bench.setup()
        bench.run()
        bench.write()
    except BenchError as error:
        log(f"bench: {error}")
        return 1
    except KeyboardInterrupt:
        log("bench: interrupted; cleaning up")
        return 130
    finally:
        bench.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())

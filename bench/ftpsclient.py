"""The benchmark's FTPS client: one workload, measured once, printed as JSON.

Run by ``run.py`` as a separate process pinned to the client CPU, with the
bench venv's Python. The FTP side is `ftpcontrol.Control`: raw FTP lines on
a blocking socket, TLS over memory BIOs.

Why blocking sockets and processes rather than asyncio: a session is a chain
of request/reply round trips, and with a blocking socket each step is one
``send`` and one ``recv`` with the TLS work done in C; there is no event loop
in Python between them. Concurrency comes from worker processes (16 for the
session rate, 8 parallel downloads for ``workers``). Every result carries the
CPU use of the server, of the client processes and of both CPUs over the
measured window, and which CPU was the bottleneck (see `bottleneck`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import multiprocessing.connection
import os
import resource
import ssl
import statistics
import subprocess
import sys
import time
import traceback
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import procstat
from ftpcontrol import (
    FAILURES,
    TIMEOUT,
    Control,
    FtpError,
    PyOpenSslDownload,
    Target,
    TlsContext,
    pyopenssl_context,
    stdlib_context,
)

TLS_ENGINES: dict[str, Callable[[], TlsContext]] = {
    "pyopenssl": pyopenssl_context,
    "stdlib": stdlib_context,
}


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not values:
        return float("nan")
    rank = max(1, round(share * len(values) + 0.5))
    return values[min(rank, len(values)) - 1]


class Window:
    """CPU use of the server, the client processes and both cores over a window."""

    def __init__(self, target: Target, server_cpu: int, client_cpu: int) -> None:
        self.target = target
        self.cpus = (server_cpu, client_cpu)

    def start(self, client_pids: Sequence[int]) -> None:
        self.client_pids = list(client_pids)
        self.t0 = time.monotonic()
        self.server0 = procstat.tree_cpu_seconds(self.target.server_pid)
        self.client0 = procstat.process_cpu_seconds(self.client_pids)
        self.cores0 = [procstat.core_ticks(cpu) for cpu in self.cpus]

    def stop(self) -> dict[str, Any]:
        self.t1 = time.monotonic()
        elapsed = self.t1 - self.t0
        server = procstat.tree_cpu_seconds(self.target.server_pid) - self.server0
        client = procstat.process_cpu_seconds(self.client_pids) - self.client0
        cores = [procstat.core_ticks(cpu) for cpu in self.cpus]
        shares = []
        for before, after in zip(self.cores0, cores, strict=True):
            total = max(1, after.total - before.total)
            shares.append(
                (
                    (after.busy - before.busy) / total,
                    (after.softirq - before.softirq) / total,
                )
            )
        (server_busy, server_softirq), (client_busy, client_softirq) = shares
        # Busy time of each CPU that our processes do not explain: other work on
        # the machine, or kernel threads. (Softirq that runs in a process's
        # context is also in that process's system time, so it is no part of
        # this.) Process times tick at 10 ms: meaningful for windows of a
        # second or more only.
        server_other = max(0.0, server_busy - server / elapsed)
        client_other = max(0.0, client_busy - client / elapsed)
        return {
            "window_s": elapsed,
            "server_cpu_s": server,
            "client_cpu_s": client,
            "server_process_share": server / elapsed,
            "client_process_share": client / elapsed,
            "server_core_busy": server_busy,
            "client_core_busy": client_busy,
            "server_core_softirq": server_softirq,
            "client_core_softirq": client_softirq,
            "server_core_other": server_other,
            "client_core_other": client_other,
            "bottleneck": bottleneck(server_busy, client_busy),
        }


def bottleneck(server_core_busy: float, client_core_busy: float) -> str:
    """Which CPU limited a measurement: the one that was (nearly) saturated.

    "server" means the server's CPU was >= 95 % busy and the client's was
    not, so a faster client could not have got more out of the server.
    "client" is the reverse (the result understates the server), "both" and
    "neither" (waiting, or a single stream that does not fill a core) are
    possible too. It relies on the machine being quiet apart from the bench,
    which the bench checks before each measurement.
    """
    server, client = server_core_busy >= 0.95, client_core_busy >= 0.95
    if server and client:
        return "both"
    if server:
        return "server"
    if client:
        return "client"
    return "neither"


# -- transfers -------------------------------------------------------------


def run_transfer(
    target: Target,
    direction: str,
    path: str,
    size: int,
    server_cpu: int,
    client_cpu: int,
    engine: str = "pyopenssl",
) -> dict[str, Any]:
    """One PROT P RETR (download) or STOR (upload) of ``size`` bytes.

    Timed from the RETR/STOR command to the final 226 reply (for an upload:
    the server has written everything). Downloads read with the cheapest
    honest reader (``PyOpenSslDownload``, every record decrypted) unless
    ``engine`` is ``stdlib``: with ``ssl.SSLSocket`` the client CPU, not the
    server, limited the fastest server.
    """
    cheap = direction == "download" and engine == "pyopenssl"
    context: Any = TLS_ENGINES["pyopenssl"]() if cheap else stdlib_context()
    control = Control(target)
    window = Window(target, server_cpu, client_cpu)
    try:
        control.logon(context)
        control.secure_data()
        port = control.passive()
        data = control.open_download(port) if cheap else control.open_data(port)
        buffer = bytearray(1 << 20)
        chunk = memoryview(os.urandom(1 << 20))
        moved = 0
        reused: bool | None
        version: str | None
        cipher_name: str | None
        window.start([os.getpid()])
        if cheap:
            control.command(f"RETR {path}", 150, 125)
            download: PyOpenSslDownload = control.download_tls(context, data)
            download.handshake()
            moved = download.receive_all(buffer, bytearray(1 << 20))
            reused, version = download.session_reused, download.version()
            cipher_name = download.cipher()
            download.close()
            data.close()
            control.reply(226, 250)
            measured = window.stop()
            control.quit()
        elif direction == "download":
            control.command(f"RETR {path}", 150, 125)
            secure = control.wrap_data(context, data)
            view = memoryview(buffer)
            while True:
                try:
                    count = secure.recv_into(view)
                except ssl.SSLEOFError:
                    break
                if not count:
                    break
                moved += count
        else:
            control.command(f"STOR {path}", 150, 125)
            secure = control.wrap_data(context, data)
            whole, rest = divmod(size, len(chunk))
            for _ in range(whole):
                secure.sendall(chunk)
            if rest:
                secure.sendall(chunk[:rest])
            moved = size
        if not cheap:
            reused = secure.session_reused
            cipher = secure.cipher()
            cipher_name = cipher[0] if cipher else None
            version = secure.version()
            if direction == "upload":
                # close_notify: an upload ends with a TLS end, not just a FIN.
                with contextlib.suppress(OSError, ValueError):
                    secure.unwrap()
            secure.close()
            data.close()
            control.reply(226, 250)
            measured = window.stop()
            control.quit()
    finally:
        control.close()
    if moved != size:
        raise FtpError(f"{direction}: moved {moved} bytes, expected {size}")
    elapsed = measured["window_s"]
    return {
        "bytes": moved,
        "seconds": elapsed,
        "mb_per_s": moved / elapsed / 1e6,
        "server_cpu_s_per_gib": measured["server_cpu_s"] / (moved / (1 << 30)),
        **measured,
        "tls_version": version,
        "cipher": cipher_name,
        "data_session_reused": reused,
        "client_tls": engine if direction == "download" else "stdlib",
    }


# -- parallel downloads from several server processes ------------------------


def own_usage() -> tuple[float, float, int, int]:
    """This (single-threaded) process's user and system CPU seconds (microsecond
    resolution, where /proc's ticks are 10 ms) and its voluntary and involuntary
    context switches."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime, usage.ru_nvcsw, usage.ru_nivcsw


def worker_of_port(port: int, low: int, high: int, workers: int) -> int | None:
    """Which ftps7 worker owns passive ``port`` (None: outside the range).

    The same slicing as ``ftps7.server.workers.port_slice`` (this client runs
    in the bench venv, without ftps7): equal slices in worker order, the last
    one taking the remainder.
    """
    if not low <= port <= high:
        return None
    size = (high - low + 1) // max(1, workers)
    return min(workers - 1, (port - low) // size) if size else 0


def worker_index_of(pid: int) -> int:
    """The ftps7 worker number of a server process, from its FTPS7_WORKER variable."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            variables = handle.read().split(b"\0")
    except OSError:
        return -1
    for variable in variables:
        if variable.startswith(b"FTPS7_WORKER="):
            with contextlib.suppress(ValueError):
                return int(variable.partition(b"=")[2])
    return 0  # worker 0 is the process started without the variable


def _download_client(
    target: Target,
    engine: str,
    path: str,
    start_fds: tuple[int, int],
    pipe: Connection,
) -> None:
    """One of the parallel clients: log on, wait for the start signal, RETR.

    Logon, PBSZ/PROT/TYPE, EPSV and the TCP connect of the data connection
    happen before the signal, so only the transfers are timed. The client's
    own CPU time is taken around the transfer with getrusage (exact, where
    /proc's ticks are 10 ms).

    After EPSV the client reports its passive port (which names the worker
    that owns the session) and waits for "stay" or, only when the bench
    balances sessions as a diagnostic, "again": log off and reconnect.
    """
    start_read, start_write = start_fds
    os.close(start_write)  # else the start pipe never reports the bench's end
    control: Control | None = None
    try:
        context = TLS_ENGINES[engine]()
        while True:
            control = Control(target)
            control.logon(context)
            control.secure_data()
            port = control.passive()
            pipe.send(("port", port))
            if pipe.recv() == "stay":
                break
            control.quit()
            control.close()
            control = None
        plain = bytearray(1 << 20)
        network = bytearray(1 << 20)
        data = control.open_download(port) if engine == "pyopenssl" else control.open_data(port)
        pipe.send(("ready", port))
        if os.read(start_read, 1) != b"s":
            raise FtpError("the bench ended before the start signal")
        usage0 = own_usage()
        began = time.monotonic()
        control.command(f"RETR {path}", 150, 125)
        if isinstance(context, ssl.SSLContext):
            secure = control.wrap_data(context, data)
            view = memoryview(plain)
            moved = 0
            recv_calls = 0  # OpenSSL's own recv() calls: not counted
            while True:
                try:
                    count = secure.recv_into(view)
                except ssl.SSLEOFError:
                    break
                if not count:
                    break
                moved += count
            reused, version = secure.session_reused, secure.version()
            cipher = secure.cipher()
            cipher_name = cipher[0] if cipher else None
            secure.close()
        else:
            download: PyOpenSslDownload = control.download_tls(context, data)
            download.handshake()
            moved = download.receive_all(plain, network)
            recv_calls = download.recv_calls
            reused, version = download.session_reused, download.version()
            cipher_name = download.cipher()
            download.close()
        data.close()
        received = time.monotonic()
        control.reply(226, 250)
        ended = time.monotonic()
        user, system, voluntary, involuntary = (
            after - before for after, before in zip(own_usage(), usage0, strict=True)
        )
        pipe.send(
            (
                "done",
                {
                    "port": port,
                    "bytes": moved,
                    "began": began,
                    "data_end": received,
                    "ended": ended,
                    "cpu_s": user + system,
                    "user_s": user,
                    "system_s": system,
                    "voluntary_switches": voluntary,
                    "involuntary_switches": involuntary,
                    "recv_calls": recv_calls,
                    "tls_version": version,
                    "cipher": cipher_name,
                    "data_session_reused": reused,
                },
            )
        )
        control.quit()
    except FAILURES as error:
        with contextlib.suppress(OSError):
            pipe.send(("error", f"{type(error).__name__}: {error}"[:500]))
    finally:
        if control is not None:
            control.close()
        pipe.close()


def _affinity(pid: int) -> list[int]:
    """The CPUs a process may run on (the proof that nothing was pinned)."""
    try:
        return sorted(os.sched_getaffinity(pid))
    except OSError:
        return []


class MachineWindow:
    """CPU use over a window when nothing is pinned: per server process and per CPU.

    With the server's processes and the clients free to run on any CPU,
    neither CPU belongs to one side; what shows the limit is how busy each
    CPU was, and how much of that the server's processes (each worker
    separately) and the clients used.
    """

    def __init__(self, server_pid: int, cpus: Sequence[int]) -> None:
        self.server_pid = server_pid
        self.cpus = list(cpus)

    def start(self) -> None:
        self.pids = procstat.tree_pids(self.server_pid)
        self.t0 = time.monotonic()
        self.server0 = {pid: procstat.process_times(pid) for pid in self.pids}
        self.cores0 = [procstat.core_ticks(cpu) for cpu in self.cpus]

    def stop(self) -> dict[str, Any]:
        cores = [procstat.core_ticks(cpu) for cpu in self.cpus]
        after = {pid: procstat.process_times(pid).minus(self.server0[pid]) for pid in self.pids}
        self.t1 = time.monotonic()
        elapsed = self.t1 - self.t0
        busy: dict[str, float] = {}
        softirq: dict[str, float] = {}
        steal: dict[str, float] = {}
        for cpu, before, now in zip(self.cpus, self.cores0, cores, strict=True):
            total = max(1, now.total - before.total)
            busy[str(cpu)] = (now.busy - before.busy) / total
            softirq[str(cpu)] = (now.softirq - before.softirq) / total
            steal[str(cpu)] = (now.steal - before.steal) / total
        processes = [
            {
                "pid": pid,
                "worker": worker_index_of(pid),
                "cpu_s": after[pid].user_s + after[pid].system_s,
                "main_thread_s": after[pid].main_thread_s,
                "affinity": _affinity(pid),
                "user_s": after[pid].user_s,
                "system_s": after[pid].system_s,
                "voluntary_switches": after[pid].voluntary_switches,
                "involuntary_switches": after[pid].involuntary_switches,
            }
            for pid in self.pids
        ]
        return {
            "window_s": elapsed,
            "server_cpu_s": sum(process["cpu_s"] for process in processes),
            "server_processes": processes,
            "cpu_busy": busy,
            "cpu_softirq": softirq,
            "cpu_steal": steal,
        }


def _message(pipe: Connection) -> tuple[str, Any]:
    """The next message of a client; a client that died without one is a failure too."""
    try:
        kind, value = pipe.recv()
    except EOFError:
        raise FtpError("a client ended without reporting") from None
    return str(kind), value


def run_parallel_downloads(
    target: Target,
    engine: str,
    clients: int,
    path: str,
    size: int,
    cpus: Sequence[int],
    passive: tuple[int, int],
    workers: int,
    balance: bool = False,
) -> dict[str, Any]:
    """``clients`` simultaneous PROT P downloads of one ``size``-byte file.

    Every client logs on and opens its data connection first, then waits on a
    pipe; one write of ``clients`` bytes starts them all. The aggregate rate
    is all bytes over the time from the first RETR to the last 226. Server
    CPU is per process (so per ftps7 worker), client CPU the sum of the
    clients' own, and each CPU's busy share is read at the window's edges.

    ``balance`` (a diagnostic, not what real clients get): a client whose
    session landed on a worker that already has its equal share logs off and
    connects again, until every worker has the same number of sessions. It
    separates what the CPUs allow from what the kernel's SO_REUSEPORT hash,
    which spreads connections at random, leaves of it.
    """
    forked = multiprocessing.get_context("fork")
    start_read, start_write = os.pipe()
    children = []
    low, high = passive
    quota = -(-clients // max(1, workers))
    placed = [0] * workers
    reconnects = 0
    try:
        for _ in range(clients):
            mine, theirs = forked.Pipe()
            process = forked.Process(
                target=_download_client,
                args=(target, engine, path, (start_read, start_write), theirs),
            )
            process.start()
            theirs.close()
            children.append((process, mine))
        os.close(start_read)
        start_read = -1
        waiting = {mine for _, mine in children}
        deadline = time.monotonic() + 4 * TIMEOUT
        while waiting:
            ready = multiprocessing.connection.wait(
                list(waiting), max(0.0, deadline - time.monotonic())
            )
            if not ready:
                raise FtpError("clients did not log on in time")
            for pipe in ready:
                assert isinstance(pipe, Connection)
                kind, value = _message(pipe)
                if kind == "ready":
                    waiting.discard(pipe)
                    continue
                if kind != "port":
                    raise FtpError(f"a client failed before the start: {value}")
                worker = worker_of_port(value, low, high, workers)
                if balance and worker is not None and placed[worker] >= quota:
                    reconnects += 1
                    if reconnects > 50 * clients:
                        raise FtpError("could not balance the sessions over the workers")
                    pipe.send("again")
                    continue
                if worker is not None:
                    placed[worker] += 1
                pipe.send("stay")
        probe_before = procstat.speed_probe_ms()
        window = MachineWindow(target.server_pid, cpus)
        window.start()
        os.write(start_write, b"s" * clients)
        done = []
        for _, receive in children:
            kind, value = _message(receive)
            if kind != "done":
                raise FtpError(f"a client failed: {value}")
            done.append(value)
        measured = window.stop()
        probe_after = procstat.speed_probe_ms()
        for process, _ in children:
            process.join(TIMEOUT)
    finally:
        if start_read >= 0:
            os.close(start_read)
        os.close(start_write)  # clients still waiting for the start give up
        for process, _ in children:
            if process.is_alive():
                process.kill()
            process.join()
    wrong = [client["bytes"] for client in done if client["bytes"] != size]
    if wrong:
        raise FtpError(f"clients received {wrong} bytes, expected {size}")
    first = min(client["began"] for client in done)
    last = max(client["ended"] for client in done)
    seconds = last - first
    moved = sum(client["bytes"] for client in done)
    gib = moved / (1 << 30)
    window_s = measured["window_s"]
    server_cpu = measured["server_cpu_s"]
    client_cpu = sum(client["cpu_s"] for client in done)
    sessions = [0] * workers
    per_client = []
    for client in done:
        worker = worker_of_port(client["port"], low, high, workers)
        if worker is not None:
            sessions[worker] += 1
        per_client.append(
            {
                "port": client["port"],
                "worker": worker,
                "start_offset_s": client["began"] - first,
                "seconds": client["ended"] - client["began"],
                "mb_per_s": client["bytes"] / (client["ended"] - client["began"]) / 1e6,
                **{
                    key: client[key]
                    for key in (
                        "cpu_s",
                        "user_s",
                        "system_s",
                        "voluntary_switches",
                        "involuntary_switches",
                        "recv_calls",
                    )
                },
            }
        )
    busy = measured["cpu_busy"]
    machine_busy = sum(busy.values())
    processes = measured["server_processes"]
    busiest_process = max((p["cpu_s"] for p in processes), default=0.0) / window_s
    busiest_reactor = max((p["main_thread_s"] for p in processes), default=0.0) / window_s
    return {
        "clients": clients,
        "client_tls": engine,
        "cpus": list(cpus),
        "client_affinity": _affinity(0),
        "balanced": balance,
        "balance_reconnects": reconnects,
        "speed_probe_ms": [probe_before, probe_after],
        "speed_probe_mean_ms": (probe_before + probe_after) / 2,
        "workers": workers,
        "server_process_count": len(processes),
        "bytes": moved,
        "bytes_per_client": size,
        "seconds": seconds,
        "mb_per_s": moved / seconds / 1e6,
        "slowest_client_s": max(c["seconds"] for c in per_client),
        "fastest_client_s": min(c["seconds"] for c in per_client),
        **measured,
        "server_cpus": server_cpu / window_s,
        "server_cpu_s_per_gib": server_cpu / gib,
        "mb_per_server_cpu_s": moved / server_cpu / 1e6 if server_cpu else float("nan"),
        "client_cpu_s": client_cpu,
        "client_cpus": client_cpu / window_s,
        "client_cpu_s_per_gib": client_cpu / gib,
        "client_user_s_per_gib": sum(c["user_s"] for c in done) / gib,
        "client_system_s_per_gib": sum(c["system_s"] for c in done) / gib,
        "server_user_s_per_gib": sum(p["user_s"] for p in processes) / gib,
        "server_system_s_per_gib": sum(p["system_s"] for p in processes) / gib,
        "client_switches_per_mib": sum(
            c["voluntary_switches"] + c["involuntary_switches"] for c in done
        )
        / (moved / (1 << 20)),
        "server_switches_per_mib": sum(
            p["voluntary_switches"] + p["involuntary_switches"] for p in processes
        )
        / (moved / (1 << 20)),
        "client_kib_per_recv": moved / 1024 / max(1, sum(c["recv_calls"] for c in done))
        if engine == "pyopenssl"
        else None,
        "machine_busy": machine_busy,
        # CPU time neither the server nor the clients account for, in CPUs
        # (other work on a shared machine, kernel threads such as ksoftirqd).
        "machine_other": max(0.0, machine_busy - (server_cpu + client_cpu) / window_s),
        # The rate all the CPUs could carry at this run's cost per byte: the
        # machine's ceiling for this server configuration and these clients.
        "cpu_bound_mb_per_s": len(cpus) * moved / (server_cpu + client_cpu) / 1e6
        if server_cpu + client_cpu
        else float("nan"),
        "sessions_per_worker": sessions,
        "busiest_worker_sessions": max(sessions) if sessions else clients,
        "busiest_server_process_cpus": busiest_process,
        "busiest_reactor_thread_cpus": busiest_reactor,
        "bottleneck": machine_bottleneck(list(busy.values()), busiest_process),
        "per_client": per_client,
        "tls_version": sorted({str(c["tls_version"]) for c in done}),
        "cipher": sorted({str(c["cipher"]) for c in done}),
        "data_session_reused": all(c["data_session_reused"] for c in done),
    }


def machine_bottleneck(cpu_busy: Sequence[float], busiest_process_cpus: float) -> str:
    """What limited parallel downloads on unpinned CPUs.

    "cpus" when every CPU was saturated (>= 95 %): the machine was full,
    whoever used it. Else "worker" when one server process used a whole CPU
    or more: its Python threads share one interpreter lock, so only the
    system calls its thread pool makes without the lock (file reads) can add
    to that. Else "neither": for example one worker that ran out of sessions
    while the other still had several, or a client that was slow to be
    scheduled.
    """
    if cpu_busy and min(cpu_busy) >= 0.95:
        return "cpus"
    if busiest_process_cpus >= 0.95:
        return "worker"
    return "neither"


# -- session rate ----------------------------------------------------------


def one_session(target: Target, context: TlsContext) -> str | None:
    """connect, AUTH TLS, USER/PASS, PWD, QUIT; the key-exchange group if known."""
    control = Control(target)
    try:
        control.logon(context)
        group = control.tls.group() if control.tls is not None else None
        control.command("PWD", 257)
        control.quit()
    finally:
        control.close()
    return group


def _session_worker(target: Target, engine: str, stop_at: float, pipe: Connection) -> None:
    context = TLS_ENGINES[engine]()
    times = array("d")
    errors: Counter[str] = Counter()
    while True:
        began = time.monotonic()
        if began >= stop_at:
            break
        try:
            one_session(target, context)
        except FAILURES as error:
            errors[f"{type(error).__name__}: {error}"[:200]] += 1
            time.sleep(0.01)  # do not spin on a refusing server
            continue
        times.append(began)
        times.append(time.monotonic())
    pipe.send((times.tobytes(), dict(errors)))
    pipe.close()


#: The session client in C (`sessload.c`, GnuTLS), built by run.py next to the
#: bench venv's Python: ``--tls c``.
SESSLOAD = Path(sys.executable).with_name("sessload")


def _sessload(target: Target, stop_at: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(SESSLOAD), target.host, str(target.port), target.user, stop_at],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "BENCH_FTP_PASSWORD": target.password},
    )


def _sessload_report(stderr: bytes) -> tuple[str | None, dict[str, int]]:
    """The group (named as OpenSSL does) and the error counts a `sessload` printed."""
    group, errors = None, {}
    for line in stderr.decode("utf-8", "replace").splitlines():
        key, _, value = line.partition("\t")
        if key == "group":
            group = value.lower()
        elif key.isdigit():
            errors[value] = int(key)
    return group, errors


def _first_session(target: Target, engine: str) -> str | None:
    """One session alone, with the engine of the run: the group it got."""
    if engine != "c":
        return one_session(target, TLS_ENGINES[engine]())
    process = _sessload(target, "once")
    _, stderr = process.communicate(timeout=TIMEOUT)
    group, errors = _sessload_report(stderr)
    if process.returncode != 0:
        raise FtpError(f"sessload: the first session failed: {errors or stderr!r}")
    return group


class _Workers:
    """The session-rate client processes, Python or `sessload`."""

    def __init__(self, target: Target, engine: str, concurrency: int, stop_at: float) -> None:
        self.python: list[tuple[multiprocessing.process.BaseProcess, Connection]] = []
        self.native: list[subprocess.Popen[bytes]] = []
        if engine == "c":
            self.native = [_sessload(target, repr(stop_at)) for _ in range(concurrency)]
            return
        forked = multiprocessing.get_context("fork")
        for _ in range(concurrency):
            receive, send = forked.Pipe(duplex=False)
            process = forked.Process(target=_session_worker, args=(target, engine, stop_at, send))
            process.start()
            send.close()
            self.python.append((process, receive))

    def pids(self) -> list[int]:
        pids = [process.pid for process, _ in self.python if process.pid is not None]
        return pids + [process.pid for process in self.native]

    def collect(self) -> list[tuple[array[float], dict[str, int]]]:
        """(begin, end) pairs and error counts of every worker, once all ended."""
        results = []
        for process, receive in self.python:
            raw, errors = receive.recv()
            process.join()
            times = array("d")
            times.frombytes(raw)
            results.append((times, errors))
        for native in self.native:
            out, err = native.communicate(timeout=TIMEOUT)
            times = array("d")
            times.frombytes(out)
            results.append((times, _sessload_report(err)[1]))
        return results


def run_sessions(
    target: Target,
    engine: str,
    concurrency: int,
    warmup: float,
    duration: float,
    server_cpu: int,
    client_cpu: int,
) -> dict[str, Any]:
    """Sessions per second with ``concurrency`` worker processes.

    One session runs first, alone: it proves the logon works and, for a
    server with a credentials cache, fills it. The workers then run for
    ``warmup`` seconds before the measured window of ``duration`` seconds;
    sessions that *end* inside the window count. Server CPU, worker CPU and
    the busy share of both cores are read at the window's edges.

    ``sessions_per_busy_server_s`` divides the sessions by the busy time of
    the server's CPU: the rate the server would reach with its CPU saturated.
    It equals the measured rate when the server was the bottleneck and
    estimates the server's capacity when the client was.
    """
    group = _first_session(target, engine)
    begin = time.monotonic() + warmup
    end = begin + duration
    workers = _Workers(target, engine, concurrency, end)
    window = Window(target, server_cpu, client_cpu)
    time.sleep(max(0.0, begin - time.monotonic()))
    window.start(workers.pids())
    time.sleep(max(0.0, end - time.monotonic()))
    measured = window.stop()
    t0, t1 = window.t0, window.t1
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    for times, worker_errors in workers.collect():
        for index in range(0, len(times), 2):
            if t0 <= times[index + 1] <= t1:
                latencies.append(times[index + 1] - times[index])
        errors.update(worker_errors)
    count = len(latencies)
    latencies.sort()
    busy_server_s = measured["server_core_busy"] * measured["window_s"]
    return {
        "concurrency": concurrency,
        "client_tls": engine,
        "group": group,
        "sessions": count,
        "sessions_per_s": count / measured["window_s"],
        "sessions_per_busy_server_s": count / busy_server_s if busy_server_s else float("nan"),
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "mean_ms": statistics.fmean(latencies) * 1000 if latencies else float("nan"),
        "server_cpu_ms_per_session": measured["server_cpu_s"] * 1000 / count
        if count
        else float("nan"),
        "client_cpu_ms_per_session": measured["client_cpu_s"] * 1000 / count
        if count
        else float("nan"),
        **measured,
        "errors": dict(errors.most_common(5)),
        "error_count": sum(errors.values()),
    }


# -- directory listing while another session pings ---------------------------


def _noop_prober(target: Target, interval: float, ready: Any, stop: Any, pipe: Connection) -> None:
    context = stdlib_context()
    control = Control(target)
    samples = array("d")
    try:
        control.logon(context)
        ready.set()
        while not stop.is_set():
            sent = time.monotonic()
            control.command("NOOP", 200)
            samples.append(sent)
            samples.append(time.monotonic() - sent)
            time.sleep(interval)
        control.quit()
    finally:
        control.close()
        ready.set()
        pipe.send(samples.tobytes())
        pipe.close()


def _read_to_end(secure: ssl.SSLSocket, size: int) -> bytearray:
    """What a PROT P data connection carries, up to the server's close
    (with or without close_notify)."""
    received = bytearray()
    while True:
        try:
            block = secure.recv(size)
        except ssl.SSLEOFError:
            break
        if not block:
            break
        received += block
    return received


def run_listing(
    target: Target, command: str, path: str, probe_interval: float, baseline: float
) -> dict[str, Any]:
    """Time one PROT P MLSD/LIST while a second logged-in session sends NOOPs.

    The NOOP round trips during the listing, compared with those just before
    it, show whether the server keeps serving other sessions meanwhile.
    """
    forked = multiprocessing.get_context("fork")
    ready, stop = forked.Event(), forked.Event()
    receive, send = forked.Pipe(duplex=False)
    prober = forked.Process(target=_noop_prober, args=(target, probe_interval, ready, stop, send))
    prober.start()
    send.close()
    context = stdlib_context()
    control = Control(target)
    try:
        control.logon(context)
        control.secure_data()
        if not ready.wait(TIMEOUT):
            raise FtpError("the NOOP prober did not log on")
        time.sleep(baseline)
        port = control.passive()
        data = control.open_data(port)
        server0 = procstat.tree_cpu_seconds(target.server_pid)
        start = time.monotonic()
        control.command(f"{command} {path}", 150, 125)
        secure = control.wrap_data(context, data)
        received = _read_to_end(secure, 1 << 18)
        secure.close()
        data.close()
        control.reply(226, 250)
        finish = time.monotonic()
        server_cpu = procstat.tree_cpu_seconds(target.server_pid) - server0
        control.quit()
    finally:
        stop.set()
        control.close()
    raw = receive.recv()
    prober.join()
    samples = array("d")
    samples.frombytes(raw)
    before, during = [], []
    for index in range(0, len(samples), 2):
        sent, rtt = samples[index], samples[index + 1]
        if sent < start:
            before.append(rtt)
        elif sent <= finish:
            during.append(rtt)
    before.sort()
    during.sort()
    entries = sum(1 for line in bytes(received).split(b"\r\n") if line.strip())
    return {
        "command": command,
        "seconds": finish - start,
        "entries": entries,
        "bytes": len(received),
        "server_cpu_s": server_cpu,
        "noop_probes_during": len(during),
        "noop_p50_ms_before": percentile(before, 0.5) * 1000,
        "noop_max_ms_before": (before[-1] if before else float("nan")) * 1000,
        "noop_p50_ms_during": percentile(during, 0.5) * 1000,
        "noop_max_ms_during": (during[-1] if during else float("nan")) * 1000,
    }


# -- many small files --------------------------------------------------------


def run_small_files(target: Target, folder: str, pattern: str, count: int) -> dict[str, Any]:
    """RETR ``count`` small files (``pattern`` numbered from 0) one after another
    in one PROT P session.

    Each file takes a PASV, a new data connection with its own TLS handshake
    (resuming the control session), the file and the 226: what a mirror of
    many small files costs per file, where a single large download says
    nothing about the end of a transfer.
    """
    context = stdlib_context()
    control = Control(target)
    try:
        control.logon(context)
        control.secure_data()
        server0 = procstat.tree_cpu_seconds(target.server_pid)
        received = 0
        start = time.monotonic()
        for index in range(count):
            data = control.open_data(control.passive())
            control.command(f"RETR {folder}/{pattern.format(index)}", 150, 125)
            secure = control.wrap_data(context, data)
            received += len(_read_to_end(secure, 1 << 16))
            secure.close()
            control.reply(226, 250)
        seconds = time.monotonic() - start
        server_cpu = procstat.tree_cpu_seconds(target.server_pid) - server0
        control.quit()
    finally:
        control.close()
    return {
        "files": count,
        "bytes": received,
        "seconds": seconds,
        "files_per_s": count / seconds,
        "ms_per_file": seconds * 1000 / count,
        "server_cpu_ms_per_file": server_cpu * 1000 / count,
    }


# -- memory of idle sessions -----------------------------------------------


def _idle_worker(target: Target, count: int, pipe: Connection) -> None:
    context = stdlib_context()
    sessions: list[Control] = []
    error = ""
    try:
        for _ in range(count):
            control = Control(target, timeout=300)
            try:
                control.logon(context)
            except FAILURES:
                control.close()
                raise
            sessions.append(control)
    except FAILURES as failure:
        error = f"{type(failure).__name__}: {failure}"
    pipe.send((len(sessions), error))
    pipe.recv()  # "close"
    for control in sessions:
        control.close()
    pipe.send("closed")
    pipe.close()


def run_idle(target: Target, count: int, processes: int, settle: float) -> dict[str, Any]:
    """PSS of the server's process tree with 0 and with ``count`` idle sessions.

    Called on a freshly started server. "Fresh" is the PSS before any
    session; the baseline is taken after one logon and logoff, so code and
    caches loaded lazily by the first session are not charged to the idle
    sessions (both are reported).
    """
    pss_fresh = procstat.tree_pss_kib(target.server_pid)
    one_session(target, stdlib_context())
    time.sleep(settle)
    pss_base = procstat.tree_pss_kib(target.server_pid)
    forked = multiprocessing.get_context("fork")
    workers = []
    shares = [count // processes + (1 if i < count % processes else 0) for i in range(processes)]
    started = time.monotonic()
    for share in shares:
        mine, theirs = forked.Pipe()
        process = forked.Process(target=_idle_worker, args=(target, share, theirs))
        process.start()
        theirs.close()
        workers.append((process, mine))
    opened = 0
    errors = []
    for _, pipe in workers:
        made, error = pipe.recv()
        opened += made
        if error:
            errors.append(error)
    open_seconds = time.monotonic() - started
    time.sleep(settle)
    pss_loaded = procstat.tree_pss_kib(target.server_pid)
    processes_loaded = len(procstat.tree_pids(target.server_pid))
    for _, pipe in workers:
        pipe.send("close")
    for process, pipe in workers:
        pipe.recv()
        process.join()
    if opened != count or errors:
        raise FtpError(f"opened {opened} of {count} sessions: {errors[:3]}")
    return {
        "sessions": opened,
        "open_seconds": open_seconds,
        "pss_fresh_kib": pss_fresh,
        "pss_base_kib": pss_base,
        "pss_loaded_kib": pss_loaded,
        "server_processes_loaded": processes_loaded,
        "kib_per_session": (pss_loaded["Pss"] - pss_base["Pss"]) / count,
        "kib_per_session_from_fresh": (pss_loaded["Pss"] - pss_fresh["Pss"]) / count,
        "anon_kib_per_session": (pss_loaded["Pss_Anon"] - pss_base["Pss_Anon"]) / count,
        "file_kib_per_session": (pss_loaded["Pss_File"] - pss_base["Pss_File"]) / count,
    }


# -- command line -----------------------------------------------------------


def _range(text: str) -> tuple[int, int]:
    low, _, high = text.partition("-")
    return int(low), int(high)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--server-pid", type=int, required=True)
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    commands = parser.add_subparsers(dest="workload", required=True)
    transfer = commands.add_parser("transfer")
    transfer.add_argument("--direction", choices=("download", "upload"), required=True)
    transfer.add_argument("--path", required=True)
    transfer.add_argument("--size", type=int, required=True)
    transfer.add_argument(
        "--tls",
        choices=("pyopenssl", "stdlib"),
        default="pyopenssl",
        help="download reader: pyOpenSSL into preallocated buffers, or ssl.SSLSocket",
    )
    sessions = commands.add_parser("sessions")
    sessions.add_argument("--concurrency", type=int, default=16)
    sessions.add_argument(
        "--tls",
        choices=[*sorted(TLS_ENGINES), "c"],
        default="c",
        help="session client: sessload.c (GnuTLS), or Python with pyOpenSSL or ssl",
    )
    sessions.add_argument("--warmup", type=float, default=2.0)
    sessions.add_argument("--duration", type=float, default=10.0)
    listing = commands.add_parser("listing")
    listing.add_argument("--command", default="MLSD")
    listing.add_argument("--path", required=True)
    listing.add_argument("--probe-interval", type=float, default=0.005)
    listing.add_argument("--baseline", type=float, default=0.3)
    small = commands.add_parser("smallfiles")
    small.add_argument("--folder", required=True)
    small.add_argument("--pattern", required=True, help="file names, str.format of the index")
    small.add_argument("--count", type=int, required=True)
    parallel = commands.add_parser("parallel")
    parallel.add_argument("--clients", type=int, default=8)
    parallel.add_argument("--path", required=True)
    parallel.add_argument("--size", type=int, required=True, help="bytes per client (the file)")
    parallel.add_argument("--cpus", default="0,1", help="CPUs whose busy share is recorded")
    parallel.add_argument("--passive", required=True, help="the server's range, LOW-HIGH")
    parallel.add_argument("--workers", type=int, default=1, help="server processes")
    parallel.add_argument("--tls", choices=sorted(TLS_ENGINES), default="pyopenssl")
    parallel.add_argument(
        "--balance", action="store_true", help="diagnostic: equal sessions per worker"
    )
    idle = commands.add_parser("idle")
    idle.add_argument("--count", type=int, default=500)
    idle.add_argument("--processes", type=int, default=8)
    idle.add_argument("--settle", type=float, default=1.0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # The password comes from the environment, never the command line (ps).
    target = Target(
        args.host,
        args.port,
        args.user,
        os.environ["BENCH_FTP_PASSWORD"],
        args.server_pid,
    )
    runners: dict[str, Callable[[], dict[str, Any]]] = {
        "transfer": lambda: run_transfer(
            target,
            args.direction,
            args.path,
            args.size,
            args.server_cpu,
            args.client_cpu,
            args.tls,
        ),
        "sessions": lambda: run_sessions(
            target,
            args.tls,
            args.concurrency,
            args.warmup,
            args.duration,
            args.server_cpu,
            args.client_cpu,
        ),
        "listing": lambda: run_listing(
            target, args.command, args.path, args.probe_interval, args.baseline
        ),
        "idle": lambda: run_idle(target, args.count, args.processes, args.settle),
        "smallfiles": lambda: run_small_files(target, args.folder, args.pattern, args.count),
        "parallel": lambda: run_parallel_downloads(
            target,
            args.tls,
            args.clients,
            args.path,
            args.size,
            [int(cpu) for cpu in args.cpus.split(",")],
            _range(args.passive),
            args.workers,
            args.balance,
        ),
    }
    try:
        result = runners[args.workload]()
    except FAILURES as error:
        where = traceback.extract_tb(error.__traceback__)[-6:]
        json.dump(
            {
                "error": f"{type(error).__name__}: {error}",
                "where": traceback.format_list(where),
            },
            sys.stdout,
        )
        sys.stdout.write("\n")
        return 1
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

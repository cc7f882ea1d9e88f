"""The benchmark's FTPS client: one workload, measured once, printed as JSON.

Run by ``run.py`` as a separate process pinned to the client CPU, with the
bench venv's Python. The FTP side is `ftpcontrol.Control`: raw FTP lines on
a blocking socket, TLS over memory BIOs.

Why blocking sockets and processes rather than asyncio: a session is a chain
of request/reply round trips, and with a blocking socket each step is one
``send`` and one ``recv`` with the TLS work done in C; there is no event loop
in Python between them. Concurrency comes from worker processes (16 for the
session rate). Every result carries the CPU use of the server, of the client
processes and of both CPUs over the measured window, and which CPU was the
bottleneck (see `bottleneck`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import ssl
import statistics
import sys
import time
import traceback
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any

import procstat
from ftpcontrol import (
    FAILURES,
    TIMEOUT,
    Control,
    FtpError,
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
) -> dict[str, Any]:
    """One PROT P RETR (download) or STOR (upload) of ``size`` bytes.

    Timed from the RETR/STOR command to the final 226 reply (for an upload:
    the server has written everything).
    """
    context = stdlib_context()
    control = Control(target)
    window = Window(target, server_cpu, client_cpu)
    try:
        control.logon(context)
        control.secure_data()
        port = control.passive()
        data = control.open_data(port)
        buffer = bytearray(1 << 20)
        chunk = memoryview(os.urandom(1 << 20))
        moved = 0
        window.start([os.getpid()])
        if direction == "download":
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
        reused = secure.session_reused
        cipher = secure.cipher()
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
        "cipher": cipher[0] if cipher else None,
        "data_session_reused": reused,
    }


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
    group = one_session(target, TLS_ENGINES[engine]())
    forked = multiprocessing.get_context("fork")
    begin = time.monotonic() + warmup
    end = begin + duration
    workers = []
    for _ in range(concurrency):
        receive, send = forked.Pipe(duplex=False)
        process = forked.Process(target=_session_worker, args=(target, engine, end, send))
        process.start()
        send.close()
        workers.append((process, receive))
    pids = [process.pid for process, _ in workers if process.pid is not None]
    window = Window(target, server_cpu, client_cpu)
    time.sleep(max(0.0, begin - time.monotonic()))
    window.start(pids)
    time.sleep(max(0.0, end - time.monotonic()))
    measured = window.stop()
    t0, t1 = window.t0, window.t1
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    for process, receive in workers:
        raw, worker_errors = receive.recv()
        process.join()
        times = array("d")
        times.frombytes(raw)
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
        received = bytearray()
        while True:
            try:
                block = secure.recv(1 << 18)
            except ssl.SSLEOFError:
                break
            if not block:
                break
            received += block
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
    sessions = commands.add_parser("sessions")
    sessions.add_argument("--concurrency", type=int, default=16)
    sessions.add_argument("--tls", choices=sorted(TLS_ENGINES), default="pyopenssl")
    sessions.add_argument("--warmup", type=float, default=2.0)
    sessions.add_argument("--duration", type=float, default=10.0)
    listing = commands.add_parser("listing")
    listing.add_argument("--command", default="MLSD")
    listing.add_argument("--path", required=True)
    listing.add_argument("--probe-interval", type=float, default=0.005)
    listing.add_argument("--baseline", type=float, default=0.3)
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

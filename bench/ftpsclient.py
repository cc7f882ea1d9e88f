"""The benchmark's FTPS client: explicit FTPS with raw FTP lines over ``ssl``.

Run by ``run.py`` as a separate process pinned to the client CPU; one
invocation measures one workload once and prints its result as one JSON
object on standard output.

Why blocking sockets and processes rather than asyncio: a session is a chain
of request/reply round trips, and with a blocking socket each step is one
``send`` and one ``recv`` with the TLS work done in C; there is no event-loop
or Python-level TLS-BIO bookkeeping per byte. Concurrency comes from worker
processes (16 for the session rate), so the client spends its CPU on TLS and
system calls, and the script measures how busy the client core was to show
it is not the bottleneck.

The client does not verify the server's certificate (the bench made it a
minute ago; chain verification would only add client CPU). TLS 1.3 is
required on every connection, so all servers are measured on the same
protocol. Data connections resume the control connection's TLS session, as
FileZilla, lftp and curl do (vsftpd requires it: ``require_ssl_reuse``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import re
import socket
import ssl
import statistics
import sys
import time
import traceback
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import procstat

TIMEOUT = 60.0
_EPSV = re.compile(r"\(\|\|\|(\d+)\|\)")
_PASV = re.compile(r"(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)")


class FtpError(Exception):
    """An unexpected reply or a broken connection."""


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    user: str
    password: str
    server_pid: int


def client_context() -> ssl.SSLContext:
    """TLS 1.3 only, no certificate verification (see the module docstring)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.maximum_version = ssl.TLSVersion.TLSv1_3
    return context


class Control:
    """One control connection: lines out, (possibly multi-line) replies in."""

    def __init__(self, target: Target, timeout: float = TIMEOUT) -> None:
        self.target = target
        self.raw = socket.create_connection((target.host, target.port), timeout=timeout)
        self.raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock: socket.socket = self.raw
        self.buffer = bytearray()

    def _line(self) -> bytes:
        while True:
            end = self.buffer.find(b"\n")
            if end >= 0:
                line = bytes(self.buffer[: end + 1])
                del self.buffer[: end + 1]
                return line.rstrip(b"\r\n")
            data = self.sock.recv(16384)
            if not data:
                raise FtpError("control connection closed")
            self.buffer += data

    def reply(self, *expected: int) -> str:
        line = self._line()
        text = [line]
        if line[3:4] == b"-":
            last = line[:3] + b" "
            while not line.startswith(last):
                line = self._line()
                text.append(line)
        joined = b"\n".join(text).decode("utf-8", "replace")
        if not line[:3].isdigit():
            raise FtpError(f"not an FTP reply: {joined!r}")
        if expected and int(line[:3]) not in expected:
            raise FtpError(joined)
        return joined

    def send(self, line: str) -> None:
        self.sock.sendall(line.encode("utf-8") + b"\r\n")

    def command(self, line: str, *expected: int) -> str:
        self.send(line)
        try:
            return self.reply(*expected)
        except FtpError as error:
            verb = line.split(" ", 1)[0]
            shown = verb if verb == "PASS" else line
            raise FtpError(f"{shown}: {error}") from None

    def logon(self, context: ssl.SSLContext) -> None:
        """Banner, AUTH TLS, USER, PASS: a logged-in TLS control connection."""
        self.reply(220)
        self.command("AUTH TLS", 234)
        if self.buffer:
            raise FtpError("bytes after the AUTH reply")
        self.sock = context.wrap_socket(self.raw)
        self.command(f"USER {self.target.user}", 331)
        self.command(f"PASS {self.target.password}", 230)

    def quit(self) -> None:
        """QUIT, then wait for the server to close first.

        Letting the server close first leaves TIME_WAIT on the server's side of
        each connection rather than on the client's ephemeral ports, so
        thousands of sessions per run do not exhaust them.
        """
        self.command("QUIT", 221)
        with contextlib.suppress(OSError):
            while self.sock.recv(16384):
                pass

    def close(self) -> None:
        self.sock.close()
        self.raw.close()

    def passive(self) -> int:
        """EPSV (PASV if refused): the data port to connect to."""
        self.send("EPSV")
        text = self.reply()
        match = _EPSV.search(text)
        if text.startswith("229") and match:
            return int(match.group(1))
        found = _PASV.search(self.command("PASV", 227))
        if not found:
            raise FtpError("cannot parse the PASV reply")
        return int(found.group(5)) * 256 + int(found.group(6))

    def secure_data(self) -> None:
        self.command("PBSZ 0", 200)
        self.command("PROT P", 200)
        self.command("TYPE I", 200)

    def open_data(self, port: int) -> socket.socket:
        data = socket.create_connection((self.target.host, port), timeout=TIMEOUT)
        data.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return data

    def wrap_data(self, context: ssl.SSLContext, data: socket.socket) -> ssl.SSLSocket:
        session = self.sock.session if isinstance(self.sock, ssl.SSLSocket) else None
        return context.wrap_socket(data, session=session)


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not values:
        return float("nan")
    rank = max(1, round(share * len(values) + 0.5))
    return values[min(rank, len(values)) - 1]


# -- transfers -------------------------------------------------------------


def run_transfer(target: Target, direction: str, path: str, size: int) -> dict[str, Any]:
    """One PROT P RETR (download) or STOR (upload) of ``size`` bytes."""
    context = client_context()
    control = Control(target)
    try:
        control.logon(context)
        control.secure_data()
        port = control.passive()
        data = control.open_data(port)
        buffer = bytearray(1 << 20)
        chunk = memoryview(os.urandom(1 << 20))
        server0 = procstat.tree_cpu_seconds(target.server_pid)
        client0 = time.process_time()
        start = time.monotonic()
        moved = 0
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
            # close_notify: an upload ends with a TLS end, not just a FIN.
            with contextlib.suppress(OSError, ValueError):
                secure.unwrap()
        reused = secure.session_reused
        cipher = secure.cipher()
        version = secure.version()
        secure.close()
        data.close()
        control.reply(226, 250)
        elapsed = time.monotonic() - start
        client_cpu = time.process_time() - client0
        server_cpu = procstat.tree_cpu_seconds(target.server_pid) - server0
        control.quit()
    finally:
        control.close()
    if moved != size:
        raise FtpError(f"{direction}: moved {moved} bytes, expected {size}")
    gib = moved / (1 << 30)
    return {
        "bytes": moved,
        "seconds": elapsed,
        "mb_per_s": moved / elapsed / 1e6,
        "server_cpu_s": server_cpu,
        "server_cpu_s_per_gib": server_cpu / gib,
        "server_core_share": server_cpu / elapsed,
        "client_cpu_s": client_cpu,
        "client_core_share": client_cpu / elapsed,
        "tls_version": version,
        "cipher": cipher[0] if cipher else None,
        "data_session_reused": reused,
    }


# -- session rate ----------------------------------------------------------


def one_session(target: Target, context: ssl.SSLContext) -> None:
    """connect, AUTH TLS, USER/PASS, PWD, QUIT."""
    control = Control(target)
    try:
        control.logon(context)
        control.command("PWD", 257)
        control.quit()
    finally:
        control.close()


def _session_worker(target: Target, stop_at: float, pipe: Connection) -> None:
    context = client_context()
    times = array("d")
    errors: Counter[str] = Counter()
    while True:
        began = time.monotonic()
        if began >= stop_at:
            break
        try:
            one_session(target, context)
        except (OSError, FtpError) as error:
            errors[f"{type(error).__name__}: {error}"[:200]] += 1
            time.sleep(0.01)  # do not spin on a refusing server
            continue
        times.append(began)
        times.append(time.monotonic())
    pipe.send((times.tobytes(), dict(errors)))
    pipe.close()


def run_sessions(
    target: Target,
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
    """
    one_session(target, client_context())
    forked = multiprocessing.get_context("fork")
    begin = time.monotonic() + warmup
    end = begin + duration
    workers = []
    for _ in range(concurrency):
        receive, send = forked.Pipe(duplex=False)
        process = forked.Process(target=_session_worker, args=(target, end, send))
        process.start()
        send.close()
        workers.append((process, receive))
    pids = [process.pid for process, _ in workers if process.pid is not None]
    time.sleep(max(0.0, begin - time.monotonic()))
    t0 = time.monotonic()
    server0 = procstat.tree_cpu_seconds(target.server_pid)
    client0 = procstat.process_cpu_seconds(pids)
    score0, ccore0 = procstat.core_ticks(server_cpu), procstat.core_ticks(client_cpu)
    time.sleep(max(0.0, end - time.monotonic()))
    t1 = time.monotonic()
    server1 = procstat.tree_cpu_seconds(target.server_pid)
    client1 = procstat.process_cpu_seconds(pids)
    score1, ccore1 = procstat.core_ticks(server_cpu), procstat.core_ticks(client_cpu)
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
    window = t1 - t0
    count = len(latencies)
    latencies.sort()
    server_cpu_s = server1 - server0
    return {
        "concurrency": concurrency,
        "window_s": window,
        "sessions": count,
        "sessions_per_s": count / window,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "mean_ms": statistics.fmean(latencies) * 1000 if latencies else float("nan"),
        "server_cpu_ms_per_session": server_cpu_s * 1000 / count if count else float("nan"),
        "server_process_share": server_cpu_s / window,
        "client_process_share": (client1 - client0) / window,
        "server_core_busy": _busy(score0, score1),
        "client_core_busy": _busy(ccore0, ccore1),
        "errors": dict(errors.most_common(5)),
        "error_count": sum(errors.values()),
    }


def _busy(before: tuple[int, int], after: tuple[int, int]) -> float:
    total = after[1] - before[1]
    return (after[0] - before[0]) / total if total else float("nan")


# -- directory listing while another session pings ---------------------------


def _noop_prober(target: Target, interval: float, ready: Any, stop: Any, pipe: Connection) -> None:
    context = client_context()
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
    context = client_context()
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
    context = client_context()
    sessions: list[Control] = []
    error = ""
    try:
        for _ in range(count):
            control = Control(target, timeout=300)
            sessions.append(control)
            control.logon(context)
    except (OSError, FtpError) as failure:
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
    one_session(target, client_context())
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
        "kib_per_session": (pss_loaded - pss_base) / count,
        "kib_per_session_from_fresh": (pss_loaded - pss_fresh) / count,
    }


# -- command line -----------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--server-pid", type=int, required=True)
    commands = parser.add_subparsers(dest="workload", required=True)
    transfer = commands.add_parser("transfer")
    transfer.add_argument("--direction", choices=("download", "upload"), required=True)
    transfer.add_argument("--path", required=True)
    transfer.add_argument("--size", type=int, required=True)
    sessions = commands.add_parser("sessions")
    sessions.add_argument("--concurrency", type=int, default=16)
    sessions.add_argument("--warmup", type=float, default=2.0)
    sessions.add_argument("--duration", type=float, default=10.0)
    sessions.add_argument("--server-cpu", type=int, default=0)
    sessions.add_argument("--client-cpu", type=int, default=1)
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
        args.host, args.port, args.user, os.environ["BENCH_FTP_PASSWORD"], args.server_pid
    )
    runners: dict[str, Callable[[], dict[str, Any]]] = {
        "transfer": lambda: run_transfer(target, args.direction, args.path, args.size),
        "sessions": lambda: run_sessions(
            target, args.concurrency, args.warmup, args.duration, args.server_cpu, args.client_cpu
        ),
        "listing": lambda: run_listing(
            target, args.command, args.path, args.probe_interval, args.baseline
        ),
        "idle": lambda: run_idle(target, args.count, args.processes, args.settle),
    }
    try:
        result = runners[args.workload]()
    except (OSError, FtpError) as error:
        where = traceback.extract_tb(error.__traceback__)[-6:]
        json.dump(
            {"error": f"{type(error).__name__}: {error}", "where": traceback.format_list(where)},
            sys.stdout,
        )
        sys.stdout.write("\n")
        return 1
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""CPU time and memory of a server's whole process tree, read from /proc.

Why a tree and not one pid: vsftpd forks two processes per session and they
exit when the session ends, so their CPU time lands in the listener's
``cutime``/``cstime`` once it reaps them. Summing ``utime + stime + cutime +
cstime`` over every live process of the tree (zombies included: they still
show their own times) counts every CPU tick exactly once: a tick belongs
either to a live process or to the c-times of the live ancestor that reaped
it. ftps7 and pyftpdlib are one process each (threads are included in a
process's ``stat``), so for them this is simply their own time.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcStat:
    pid: int
    ppid: int
    cpu_ticks: int  # utime + stime + cutime + cstime


def read_stat(pid: int) -> ProcStat | None:
    """One process's parent and CPU ticks; None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ")".
    fields = data[data.rindex(b")") + 2 :].split()
    # fields[0] is field 3 (state); utime is field 14, so fields[11]; then stime, cutime, cstime.
    ppid = int(fields[1])
    ticks = sum(int(value) for value in fields[11:15])
    return ProcStat(pid, ppid, ticks)


def _all_pids() -> Iterable[int]:
    for name in os.listdir("/proc"):
        if name.isdigit():
            yield int(name)


def tree_pids(root: int) -> list[int]:
    """``root`` and all its live descendants (one scan of /proc)."""
    children: dict[int, list[int]] = {}
    for pid in _all_pids():
        stat = read_stat(pid)
        if stat is not None:
            children.setdefault(stat.ppid, []).append(pid)
    found = [root]
    index = 0
    while index < len(found):
        found.extend(children.get(found[index], ()))
        index += 1
    return found


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds used so far by ``root``'s process tree, reaped children included."""
    if read_stat(root) is None:
        raise ProcessLookupError(root)
    total = 0
    for pid in tree_pids(root):
        stat = read_stat(pid)
        if stat is not None:
            total += stat.cpu_ticks
    return total / CLOCK_TICKS


def process_cpu_seconds(pids: Iterable[int]) -> float:
    """CPU seconds of the given processes (own time and their reaped children)."""
    total = 0
    for pid in pids:
        stat = read_stat(pid)
        if stat is not None:
            total += stat.cpu_ticks
    return total / CLOCK_TICKS


@dataclass(frozen=True)
class ProcessTimes:
    """One live process's own CPU time, split, and its context switches (threads summed).

    ``main_thread_s`` is the CPU time of the thread whose id is the pid: for
    a Twisted server, the reactor thread, which cannot use more than one CPU
    however many thread-pool threads help it.
    """

    user_s: float
    system_s: float
    voluntary_switches: int
    involuntary_switches: int
    main_thread_s: float

    def minus(self, earlier: ProcessTimes) -> ProcessTimes:
        return ProcessTimes(
            self.user_s - earlier.user_s,
            self.system_s - earlier.system_s,
            self.voluntary_switches - earlier.voluntary_switches,
            self.involuntary_switches - earlier.involuntary_switches,
            self.main_thread_s - earlier.main_thread_s,
        )


def _stat_fields(path: str) -> list[bytes] | None:
    """The fields of a /proc stat file after the command name (field 3 on)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return data[data.rindex(b")") + 2 :].split()


def process_times(pid: int) -> ProcessTimes:
    """User and system time from /proc/<pid>/stat, context switches of all its threads.

    Why the switches: when server processes and clients share CPUs, how
    often each is descheduled explains part of what a byte costs.
    """
    fields = _stat_fields(f"/proc/{pid}/stat")
    if fields is None:
        return ProcessTimes(0.0, 0.0, 0, 0, 0.0)
    user, system = int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS
    main = _stat_fields(f"/proc/{pid}/task/{pid}/stat")
    main_thread = (int(main[11]) + int(main[12])) / CLOCK_TICKS if main else 0.0
    voluntary = involuntary = 0
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except (FileNotFoundError, ProcessLookupError):
        threads = []
    for thread in threads:
        try:
            with open(f"/proc/{pid}/task/{thread}/status", encoding="ascii") as status:
                for line in status:
                    if line.startswith("voluntary_ctxt_switches:"):
                        voluntary += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches:"):
                        involuntary += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            continue
    return ProcessTimes(user, system, voluntary, involuntary, main_thread)


@dataclass(frozen=True)
class CoreTicks:
    """Jiffies of one CPU since boot: busy (all but idle and iowait), softirq, total.

    ``steal`` (part of busy) is time the hypervisor ran something else while
    this virtual CPU wanted to run: on a shared host it makes every CPU
    second of the guest buy less work.
    """

    busy: int
    softirq: int
    total: int
    steal: int = 0


def core_ticks(cpu: int) -> CoreTicks:
    """One CPU's line of /proc/stat.

    Why whole cores and not just processes: a saturated CPU is what says who
    limited a measurement, and the difference between a CPU's busy time and
    our processes' CPU time is work that is not ours (other processes on a
    shared machine, kernel threads), which makes a measurement suspect.
    (Softirq that runs in a process's context shows in both: in the CPU's
    softirq column and in the process's system time.)
    """
    prefix = f"cpu{cpu} "
    with open("/proc/stat", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(prefix):
                values = [int(value) for value in line.split()[1:]]
                total = sum(values[:8])  # guest time is already inside user/nice
                return CoreTicks(total - values[3] - values[4], values[6], total, values[7])
    raise ValueError(f"no cpu{cpu} in /proc/stat")


PSS_FIELDS = ("Pss", "Pss_Anon", "Pss_File", "Pss_Shmem")


def pss_detail_kib(pid: int) -> dict[str, int]:
    """PSS of one process and its anonymous/file/shmem parts, in KiB (zeros if gone).

    Why the parts: file-backed pages (libpython, OpenSSL, cryptography's Rust
    library) are shared with every other process that maps the same files,
    and PSS divides them by the number of such processes. On a machine where
    other Python processes come and go, ``Pss_File`` of an idle server moves
    by megabytes; ``Pss_Anon`` (heap, stacks) is what sessions allocate.
    """
    found = dict.fromkeys(PSS_FIELDS, 0)
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as handle:
            for line in handle:
                name, _, rest = line.partition(":")
                if name in found:
                    found[name] = int(rest.split()[0])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return found


def tree_pss_kib(root: int) -> dict[str, int]:
    """`pss_detail_kib` summed over ``root`` and all its descendants."""
    total = dict.fromkeys(PSS_FIELDS, 0)
    for pid in tree_pids(root):
        for name, value in pss_detail_kib(pid).items():
            total[name] += value
    return total


def speed_probe_ms() -> float:
    """Milliseconds for a fixed piece of pure-Python work (32 ms on a fast CPU here).

    On a shared virtual machine the speed of a CPU second is not constant:
    on the bench's machine each virtual CPU switched between about 32 and
    about 60 ms for this loop, in phases of a tenth of a second to several
    seconds, independently of the other CPU, with no other work in the
    guest and no steal time reported (other guests on the host's cores, or
    its clock speed). Taken right before and after a measured window, it
    shows the state of the host around a repetition: context, not a
    correction (the window itself may have seen either speed).
    """
    began = time.perf_counter()
    total = 0
    for number in range(1_000_000):
        total += number * number
    return (time.perf_counter() - began) * 1000

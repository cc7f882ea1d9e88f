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
class CoreTicks:
    """Jiffies of one CPU since boot: busy (all but idle and iowait), softirq, total."""

    busy: int
    softirq: int
    total: int


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
                return CoreTicks(total - values[3] - values[4], values[6], total)
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

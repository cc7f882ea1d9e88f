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


def core_ticks(cpu: int) -> tuple[int, int]:
    """(busy, total) jiffies of one CPU core from /proc/stat.

    Busy is everything but idle and iowait. Comparing the client core's busy
    share with the server core's over a measurement window shows which side
    was saturated.
    """
    prefix = f"cpu{cpu} "
    with open("/proc/stat", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(prefix):
                values = [int(value) for value in line.split()[1:]]
                idle = values[3] + values[4]
                total = sum(values[:8])  # guest time is already inside user/nice
                return total - idle, total
    raise ValueError(f"no cpu{cpu} in /proc/stat")


def pss_kib(pid: int) -> int:
    """Proportional set size of one process in KiB (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return 0


def tree_pss_kib(root: int) -> int:
    """PSS of ``root`` and all its descendants, in KiB."""
    return sum(pss_kib(pid) for pid in tree_pids(root))

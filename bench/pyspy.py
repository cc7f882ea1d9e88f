"""Profile the ftps7 server under a workload with py-spy, and find its hot spots.

py-spy samples the running server from outside (no code change, no restart
with a profiler). It runs on the client CPU, so it takes time from the
clients, not from the server; profiling runs are separate from measured
ones and their numbers are not reported as results.

``--function`` makes every frame name its function's first line, so samples
aggregate per function; ``--format raw`` writes collapsed stacks
(``frame;frame;frame count``), which flamegraph.pl and speedscope read too.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from servers import BenchError


class Recorder:
    """``py-spy record`` attached to one pid until `stop`."""

    def __init__(
        self,
        pyspy: Path,
        pid: int,
        output: Path,
        cpu: int,
        rate: int = 100,
        native: bool = False,
    ) -> None:
        self.output = output
        argv = [
            "taskset", "-c", str(cpu), str(pyspy), "record", "--pid", str(pid),
            "--rate", str(rate), "--function", "--format", "raw", "--output", str(output),
        ]  # fmt: skip
        if native:
            argv.append("--native")
        self.log = output.with_suffix(".log")
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)

    def stop(self) -> Path:
        """SIGINT makes py-spy write its output and exit."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if not self.output.exists():
            raise BenchError(f"py-spy wrote nothing:\n{self.log.read_text(errors='replace')}")
        return self.output


_PREFIXES = (
    "site-packages/",
    str(Path(__file__).resolve().parents[1]) + "/",  # the repository
    f"lib/python{sys.version_info.major}.{sys.version_info.minor}/",
)


def _short(frame: str) -> str:
    """``func (/long/path/site-packages/pkg/mod.py:12)`` → ``func (pkg/mod.py:12)``."""
    for marker in _PREFIXES:
        if marker in frame:
            head, _, tail = frame.partition("(")
            return head + "(" + tail.split(marker, 1)[-1]
    return frame


# Leaf frames that mean "this thread was waiting", not working: py-spy's own
# idle detection does not catch them all (thread-pool workers blocked on a
# condition variable, the reactor in epoll_wait).
IDLE_LEAVES = (
    "Condition.wait (",
    "Event.wait (",
    "Thread.join (",
    "EPollReactor.doPoll (",
    "PollReactor.doPoll (",
    "SelectReactor.doSelect (",
)


def summarize(raw: Path, top: int = 20) -> dict[str, object]:
    """Self and inclusive shares per function of the busy samples.

    Samples whose innermost frame is a wait (`IDLE_LEAVES`) are counted as
    idle and left out of the shares.
    """
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = idle = 0
    for line in raw.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(frame) for frame in stack.split(";")]
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        if frames[-1].startswith(IDLE_LEAVES):
            idle += count
            continue
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return {"samples": 0, "idle_samples": idle, "self": [], "inclusive": []}

    def rows(counter: Counter[str]) -> list[dict[str, object]]:
        return [
            {"function": frame, "samples": count, "share": count / total}
            for frame, count in counter.most_common(top)
        ]

    own_code = Counter({frame: n for frame, n in inclusive.items() if "(ftps7/" in frame})
    return {
        "samples": total,
        "idle_samples": idle,
        "self": rows(own),
        "inclusive": rows(inclusive),
        "inclusive_ftps7": rows(own_code),
    }


def format_summary(name: str, summary: dict[str, object], top: int = 15) -> str:
    lines = [
        f"py-spy: ftps7 under {name} ({summary['samples']} busy samples, "
        f"{summary['idle_samples']} idle left out)"
    ]
    for kind, title in (
        ("self", "self time"),
        ("inclusive_ftps7", "inclusive time, ftps7 code"),
    ):
        lines.append(f"  top by {title}:")
        entries = summary[kind]
        assert isinstance(entries, list)
        for entry in entries[:top]:
            lines.append(f"    {entry['share'] * 100:5.1f}%  {entry['function']}")
    return "\n".join(lines)

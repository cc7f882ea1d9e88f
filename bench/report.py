"""From per-repetition client results to metrics, the table and the JSON file.

Every metric is summarised by its median and spread (min, max, and the
quartiles when there are enough repetitions). The ratio columns are always
``ftps7 / peer`` of the medians; the "better" column says whether a ratio
above 1 is good (throughput, sessions per second) or bad (time, CPU, memory).
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass
from typing import Any

SERVERS = ("ftps7", "pyftpdlib", "vsftpd")


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    higher_is_better: bool
    workload: str
    field: str


METRICS = (
    Metric("download_mb_s", "download PROT P", "MB/s", True, "download", "mb_per_s"),
    Metric(
        "download_cpu",
        "  server CPU",
        "s/GiB",
        False,
        "download",
        "server_cpu_s_per_gib",
    ),
    Metric("upload_mb_s", "upload PROT P", "MB/s", True, "upload", "mb_per_s"),
    Metric("upload_cpu", "  server CPU", "s/GiB", False, "upload", "server_cpu_s_per_gib"),
    Metric("sessions", "sessions, ECDSA P-256", "1/s", True, "sessions", "sessions_per_s"),
    Metric(
        "sessions_capacity",
        "  per busy server-CPU second",
        "1/s",
        True,
        "sessions",
        "sessions_per_busy_server_s",
    ),
    Metric("sessions_p50", "  latency p50", "ms", False, "sessions", "p50_ms"),
    Metric("sessions_p99", "  latency p99", "ms", False, "sessions", "p99_ms"),
    Metric(
        "sessions_cpu",
        "  server CPU",
        "ms/sess",
        False,
        "sessions",
        "server_cpu_ms_per_session",
    ),
    Metric("mlsd_s", "MLSD 10k files (LIST: vsftpd)", "s", False, "mlsd", "seconds"),
    Metric(
        "mlsd_noop",
        "  NOOP max RTT meanwhile",
        "ms",
        False,
        "mlsd",
        "noop_max_ms_during",
    ),
    Metric("idle_kib", "idle TLS session (PSS)", "KiB", False, "memory", "kib_per_session"),
    Metric(
        "idle_anon",
        "  of which Pss_Anon",
        "KiB",
        False,
        "memory",
        "anon_kib_per_session",
    ),
    Metric(
        "rsa_sessions",
        "sessions, RSA-2048",
        "1/s",
        True,
        "sessions_rsa",
        "sessions_per_s",
    ),
    Metric(
        "rsa_capacity",
        "  per busy server-CPU second",
        "1/s",
        True,
        "sessions_rsa",
        "sessions_per_busy_server_s",
    ),
    Metric("rsa_p50", "  latency p50", "ms", False, "sessions_rsa", "p50_ms"),
    Metric("rsa_p99", "  latency p99", "ms", False, "sessions_rsa", "p99_ms"),
    Metric(
        "rsa_cpu",
        "  server CPU",
        "ms/sess",
        False,
        "sessions_rsa",
        "server_cpu_ms_per_session",
    ),
)

# Shown under the table: the evidence that the clients were not the bottleneck.
CHECK_WORKLOADS = ("download", "upload", "sessions", "sessions_rsa")
CHECK_FIELDS = (
    "server_core_busy",
    "client_core_busy",
    "server_process_share",
    "client_process_share",
)


def summarize(samples: list[float]) -> dict[str, Any]:
    values = sorted(value for value in samples if not math.isnan(value))
    if not values:
        return {"n": 0}
    summary: dict[str, Any] = {
        "n": len(values),
        "median": statistics.median(values),
        "min": values[0],
        "max": values[-1],
        "samples": values,
    }
    if len(values) >= 4:
        q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
        summary["q1"], summary["q3"] = q1, q3
    return summary


def _samples(runs: dict[str, dict[str, list[dict[str, Any]]]], workload: str, server: str,
             field: str) -> list[float]:  # fmt: skip
    return [
        float(result[field])
        for result in runs.get(workload, {}).get(server, [])
        if "error" not in result and result.get(field) is not None
    ]


def metrics(runs: dict[str, dict[str, list[dict[str, Any]]]]) -> dict[str, Any]:
    """Summaries per metric and server, and ftps7's ratio to each peer."""
    out: dict[str, Any] = {}
    for metric in METRICS:
        if metric.workload not in runs:
            continue
        servers = {
            server: summarize(_samples(runs, metric.workload, server, metric.field))
            for server in SERVERS
            if server in runs[metric.workload]
        }
        ratios = {}
        mine = servers.get("ftps7", {}).get("median")
        for peer in ("pyftpdlib", "vsftpd"):
            theirs = servers.get(peer, {}).get("median")
            if mine is not None and theirs:
                ratios[peer] = mine / theirs
        out[metric.key] = {
            "label": metric.label.strip(),
            "unit": metric.unit,
            "better": "higher" if metric.higher_is_better else "lower",
            "servers": servers,
            "ftps7_ratio": ratios,
        }
    checks: dict[str, Any] = {}
    for workload in CHECK_WORKLOADS:
        for server, results in runs.get(workload, {}).items():
            good = [result for result in results if "error" not in result]
            entry: dict[str, Any] = {
                field: summarize(_samples(runs, workload, server, field)) for field in CHECK_FIELDS
            }
            entry["bottleneck"] = dict(Counter(str(result.get("bottleneck")) for result in good))
            checks.setdefault(workload, {})[server] = entry
    out["_checks"] = checks
    return out


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def _cell(summary: dict[str, Any]) -> str:
    if not summary.get("n"):
        return "-"
    return f"{_number(summary['median'])} [{_number(summary['min'])}-{_number(summary['max'])}]"


def table(result: dict[str, Any]) -> str:
    """The plain-text table: median [min-max] per server, ratios of medians."""
    header = ["metric", "unit", *SERVERS, "ftps7/pyftpdlib", "ftps7/vsftpd", "better"]
    rows = [header]
    for metric in METRICS:
        entry = result.get(metric.key)
        if entry is None:
            continue
        ratios = entry["ftps7_ratio"]
        rows.append([
            metric.label,
            metric.unit,
            *(_cell(entry["servers"].get(server, {})) for server in SERVERS),
            f"{ratios['pyftpdlib']:.2f}x" if "pyftpdlib" in ratios else "-",
            f"{ratios['vsftpd']:.2f}x" if "vsftpd" in ratios else "-",
            entry["better"],
        ])  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    checks = result.get("_checks", {})
    if checks:
        lines.append("")
        lines.append(
            "who limited it: median busy share of the server/client CPU (of which the "
            "server/client processes), and the bottleneck of each repetition:"
        )
        for workload, per_server in checks.items():
            cells = []
            for server in SERVERS:
                entry = per_server.get(server)
                if not entry or not entry["server_core_busy"].get("n"):
                    continue
                cores, procs = (
                    "/".join(f"{entry[field]['median'] * 100:.0f}%" for field in pair)
                    for pair in (CHECK_FIELDS[:2], CHECK_FIELDS[2:])
                )
                limits = ",".join(f"{name}x{count}" for name, count in entry["bottleneck"].items())
                cells.append(f"{server} {cores} ({procs}) {limits}")
            lines.append(f"  {workload:<13} " + "   ".join(cells))
    return "\n".join(lines)

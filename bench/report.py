"""From per-repetition client results to metrics, the table and the JSON file.

Every metric is summarised by its median and spread (min, max, and the
quartiles when there are enough repetitions). The ratio columns are always
``ftps7 / peer`` of the medians; the "better" column says whether a ratio
above 1 is good (throughput, sessions per second) or bad (time, CPU, memory).

The ``workers`` workload has a row group of its own: ftps7 against itself,
with one and with two worker processes, and the ratio 2 workers / 1 worker.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass
from typing import Any

SERVERS = ("ftps7", "pyftpdlib", "vsftpd")
WORKER_COUNTS = (1, 2)


def workers_label(count: int) -> str:
    """How results of the workers workload are named in the runs and the table."""
    return f"{count} worker" if count == 1 else f"{count} workers"


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
    Metric(
        "small_files", "small files one by one", "1/s", True, "smallfiles", "files_per_s"
    ),
    Metric(
        "small_cpu",
        "  server CPU",
        "ms/file",
        False,
        "smallfiles",
        "server_cpu_ms_per_file",
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


@dataclass(frozen=True)
class WorkersMetric:
    key: str
    label: str
    unit: str
    better: str  # "higher", "lower" or "-" (a measure of where the CPU went)
    field: str


WORKERS_METRICS = (
    WorkersMetric("workers_mb_s", "parallel downloads PROT P", "MB/s", "higher", "mb_per_s"),
    WorkersMetric("workers_server_cpus", "  server processes", "CPUs", "-", "server_cpus"),
    WorkersMetric(
        "workers_busiest_process",
        "  busiest server process",
        "CPUs",
        "-",
        "busiest_server_process_cpus",
    ),
    WorkersMetric(
        "workers_busiest_reactor",
        "  its reactor thread",
        "CPUs",
        "-",
        "busiest_reactor_thread_cpus",
    ),
    WorkersMetric("workers_server_cpu", "  server CPU", "s/GiB", "lower", "server_cpu_s_per_gib"),
    WorkersMetric(
        "workers_mb_per_server_cpu",
        "  per server-CPU second",
        "MB",
        "higher",
        "mb_per_server_cpu_s",
    ),
    WorkersMetric("workers_client_cpus", "  client processes", "CPUs", "-", "client_cpus"),
    WorkersMetric("workers_client_cpu", "  client CPU", "s/GiB", "lower", "client_cpu_s_per_gib"),
    WorkersMetric("workers_machine_busy", "  both CPUs busy", "CPUs", "-", "machine_busy"),
    WorkersMetric(
        "workers_ceiling",
        "  ceiling of the CPUs at these costs",
        "MB/s",
        "higher",
        "cpu_bound_mb_per_s",
    ),
    WorkersMetric(
        "workers_busiest_sessions",
        "  sessions on the busiest worker",
        "",
        "lower",
        "busiest_worker_sessions",
    ),
    WorkersMetric(
        "workers_speed_probe",
        "  host speed probe (fixed work)",
        "ms",
        "-",
        "speed_probe_mean_ms",
    ),
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
    if "workers" in runs:
        out["_workers"] = workers_metrics(runs["workers"])
    return out


def workers_metrics(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The workers row group: summaries per worker count, the ratio 2 workers / 1 worker."""
    labels = [workers_label(count) for count in WORKER_COUNTS]
    good = {label: [r for r in runs.get(label, []) if "error" not in r] for label in labels}
    rows: dict[str, Any] = {}

    def add(key: str, label: str, unit: str, better: str, values: dict[str, list[float]]) -> None:
        summaries = {name: summarize(samples) for name, samples in values.items()}
        one, two = (summaries[name].get("median") for name in labels)
        rows[key] = {
            "label": label.strip(),
            "display": label,
            "unit": unit,
            "better": better,
            "workers": summaries,
            "ratio_2_to_1": two / one if one and two is not None else None,
        }

    for metric in WORKERS_METRICS:
        add(
            metric.key,
            metric.label,
            metric.unit,
            metric.better,
            {
                name: [float(r[metric.field]) for r in results if r.get(metric.field) is not None]
                for name, results in good.items()
            },
        )
    cpus = sorted({cpu for results in good.values() for r in results for cpu in r["cpu_busy"]})
    for cpu in cpus:
        add(
            f"workers_cpu{cpu}_busy",
            f"  CPU {cpu} busy",
            "%",
            "-",
            {
                name: [r["cpu_busy"][cpu] * 100 for r in results if cpu in r["cpu_busy"]]
                for name, results in good.items()
            },
        )
    first = next((r for results in good.values() for r in results), {})
    # Each 2-worker repetition against the 1-worker median, by how the kernel
    # happened to spread the sessions: the split, not only the CPUs, sets it.
    by_split: dict[str, list[float]] = {}
    one = rows["workers_mb_s"]["workers"][labels[0]].get("median")
    for r in good[labels[1]]:
        if one:
            split = "/".join(map(str, sorted(r["sessions_per_worker"], reverse=True)))
            by_split.setdefault(split, []).append(r["mb_per_s"] / one)
    # The two worker counts of one repetition ran back to back: their ratio
    # is less exposed to slow drifts of the host's speed than the medians'.
    by_rep: dict[Any, dict[str, float]] = {}
    for name, results in good.items():
        for r in results:
            by_rep.setdefault(r.get("rep"), {})[name] = r["mb_per_s"]
    paired = [
        rates[labels[1]] / rates[labels[0]]
        for rates in by_rep.values()
        if labels[0] in rates and labels[1] in rates
    ]
    return {
        "rows": rows,
        "labels": labels,
        "balanced": any(r.get("balanced") for results in good.values() for r in results),
        "paired_ratio": summarize(paired),
        "clients": first.get("clients"),
        "cpus": [str(cpu) for cpu in first.get("cpus", [])],
        "bytes_per_client": first.get("bytes_per_client"),
        "sessions_per_worker": {
            name: ["/".join(map(str, r["sessions_per_worker"])) for r in results]
            for name, results in good.items()
        },
        "bottleneck": {
            name: dict(Counter(str(r.get("bottleneck")) for r in results))
            for name, results in good.items()
        },
        "ratio_by_split": {split: sorted(values) for split, values in sorted(by_split.items())},
        "errors": sum(1 for results in runs.values() for r in results if "error" in r),
    }


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


def _columns(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return lines


def workers_table(group: dict[str, Any]) -> list[str]:
    """The workers row group, its own header, and where the sessions went."""
    labels = group["labels"]
    rows = [["metric", "unit", *labels, f"{labels[1]}/{labels[0]}", "better"]]
    for entry in group["rows"].values():
        ratio = entry["ratio_2_to_1"]
        rows.append([
            entry["display"],
            entry["unit"],
            *(_cell(entry["workers"].get(label, {})) for label in labels),
            f"{ratio:.2f}x" if ratio is not None else "-",
            entry["better"],
        ])  # fmt: skip
    clients = group.get("clients") or 0
    size = (group.get("bytes_per_client") or 0) / (1 << 20)
    lines = [
        f"workers: ftps7 with {' and '.join(labels)}, {clients} clients downloading "
        f"{size:.0f} MiB each at once; server and clients NOT pinned to one CPU each "
        f"(CPUs {','.join(group.get('cpus') or [])})"
        + (
            "; sessions BALANCED over the workers by reconnecting (a diagnostic)"
            if group.get("balanced")
            else ""
        ),
        *_columns(rows),
    ]
    for label in labels:
        spread = ", ".join(group["sessions_per_worker"].get(label, [])) or "-"
        limits = ",".join(f"{k}x{v}" for k, v in group["bottleneck"].get(label, {}).items())
        lines.append(f"  {label}: sessions per worker {spread}; limited by {limits or '-'}")
    paired = group.get("paired_ratio", {})
    if paired.get("n"):
        lines.append(
            f"  {labels[1]}/{labels[0]} within each repetition: "
            f"{_number(paired['median'])}x [{_number(paired['min'])}-{_number(paired['max'])}]"
            f" over {paired['n']} repetitions"
        )
    if group.get("ratio_by_split"):
        parts = [
            f"{split}: " + ", ".join(f"{value:.2f}x" for value in values)
            for split, values in group["ratio_by_split"].items()
        ]
        lines.append(
            f"  each {labels[1]} repetition / {labels[0]} median, by sessions per worker: "
            + "; ".join(parts)
        )
    if group.get("errors"):
        lines.append(f"  failed repetitions: {group['errors']} (see the JSON)")
    return lines


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
    lines = _columns(rows) if len(rows) > 1 else []
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
    group = result.get("_workers")
    if group:
        if lines:
            lines.append("")
        lines.extend(workers_table(group))
    return "\n".join(lines)

"""Prometheus metric definitions, and the small functions the apps call to observe them.

Definitions only: nothing here reads the database or knows a model. Both apps import this module (approvals for
decisions, inventory for scans and imports) without importing each other; the gauges derived from the database
(sealing lag, open findings, age of the last scan) are computed when /metrics is scraped, by the collector in
`operations/collectors.py`.

With PROMETHEUS_MULTIPROC_DIR set (gunicorn with several workers, each a process), prometheus-client keeps every
value in a memory-mapped file in that directory and /metrics adds up all processes' files: the variable must be set
before this module is first imported, and the directory emptied before gunicorn starts (see the README).
"""

from prometheus_client import Counter, Histogram

# Sub-millisecond buckets at the bottom: an authorize decision takes about a millisecond, and a regression from 1 ms
# to 3 ms must show.
_FAST = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_SLOW = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)

http_requests = Counter(
    "nhi_http_requests",
    "HTTP requests answered, by method, route pattern (never the raw path) and status code.",
    ["method", "route", "status"],
)
http_request_seconds = Histogram(
    "nhi_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route pattern.",
    ["method", "route"],
    buckets=_FAST,
)
decisions = Counter(
    "nhi_authorize_decisions",
    "Authorization decisions, by decision (allow or deny) and reason code.",
    ["decision", "reason"],
)
decision_seconds = Histogram(
    "nhi_authorize_decision_duration_seconds",
    "Time to reach an authorization decision, by decision.",
    ["decision"],
    buckets=_FAST,
)
detector_seconds = Histogram(
    "nhi_scan_detector_duration_seconds",
    "Time one detector took in a scan, by detector.",
    ["detector"],
    buckets=_SLOW,
)
import_runs = Counter(
    "nhi_import_runs",
    "Import runs, by source kind (`document` for the JSON import) and outcome (e.g. ok, dry_run, rejected, failed).",
    ["kind", "outcome"],
)


def observe_decision(decision: str, reason: str, seconds: float) -> None:
    """One authorization decision: `decision` is allow or deny, `reason` its machine-readable reason code."""
    decisions.labels(decision, reason).inc()
    decision_seconds.labels(decision).observe(seconds)


def observe_detector(detector: str, seconds: float) -> None:
    """One detector's run in a scan."""
    detector_seconds.labels(detector).observe(seconds)


def observe_import(kind: str, outcome: str) -> None:
    """One import run finished: its source kind and outcome."""
    import_runs.labels(kind, outcome).inc()

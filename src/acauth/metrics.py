"""Prometheus metrics. With several workers (``PROMETHEUS_MULTIPROC_DIR`` set by
``acauth serve --workers N``) every worker writes its samples there and ``/metrics``
sums them."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter(
    "acauth_requests_total", "AC API requests answered, by path and AC code.", ["path", "code"]
)
LATENCY = Histogram(
    "acauth_request_seconds",
    "Time to answer an AC API request, by path.",
    ["path"],
    buckets=(0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
EVENTS = Counter(
    "acauth_events_total",
    "Audited events by kind: login.ok, login.failed, login.lockout, login.locked, "
    "token.renewed, token.reuse, admin.*",
    ["kind"],
)
STORE_ERRORS = Counter(
    "acauth_store_errors_total",
    "Store operations that failed after their retries, by op (read, write) and cause "
    "(disk_full, read_only, locked, timeout, unreachable, other).",
    ["op", "cause"],
)
PROPAGATION = Histogram(
    "acauth_propagation_seconds",
    "From a change (revocation, status) being written to this instance applying it.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def render() -> tuple[bytes, str]:
    """The exposition text and its content type."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST

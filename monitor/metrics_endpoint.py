"""Optional Prometheus metrics for ``monitor run``, on 127.0.0.1 only, in a registry of its own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from monitor.errors import ConfigError


@dataclass
class Metrics:
    polls: Any
    fetch_errors: Any
    items: Any
    stories: Any
    alerts: Any
    job_seconds: Any

    def record_poll(self, outcomes: list[Any], stories: int) -> None:
        self.polls.inc(len(outcomes))
        for outcome in outcomes:
            if outcome.error_kind:
                self.fetch_errors.labels(kind=outcome.error_kind).inc()
        self.items.inc(sum(o.new for o in outcomes))
        self.stories.inc(stories)


def start(port: int) -> Metrics:
    """Serve /metrics on 127.0.0.1:port and return the instruments."""
    try:
        from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
    except ImportError:
        raise ConfigError(
            "metrics.enabled", "needs the prometheus-client package (pip install 'escalation-monitor[metrics]')"
        ) from None
    registry = CollectorRegistry()
    metrics = Metrics(
        Counter("monitor_feed_polls", "Feed fetches attempted", registry=registry),
        Counter("monitor_fetch_errors", "Failed fetches by error kind", ["kind"], registry=registry),
        Counter("monitor_items", "New items stored", registry=registry),
        Counter("monitor_stories", "Stories created or grown", registry=registry),
        Counter("monitor_alerts", "Alerts delivered", registry=registry),
        Histogram("monitor_job_seconds", "Duration of scheduler jobs", ["job"], registry=registry),
    )
    start_http_server(port, addr="127.0.0.1", registry=registry)
    return metrics

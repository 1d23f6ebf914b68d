"""A Prometheus exporter over the metrics views: every scrape reads the database."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import REGISTRY, Collector

from control.queries import query


class AllocatorCollector(Collector):
    """Reads booking states and assignment metrics on each scrape."""

    def __init__(self, url: str) -> None:
        self.url = url

    def collect(self) -> Iterator[Metric]:
        states = GaugeMetricFamily(
            "allocator_bookings", "Bookings by restaurant and state", labels=["restaurant", "state"]
        )
        rates = {
            name: GaugeMetricFamily(f"allocator_{name}", help_text, labels=["restaurant"])
            for name, help_text in [
                ("success_rate", "Confirmed share of bookings created in the last 24 h"),
                ("manual_review_rate", "Manual-review share of bookings created in the last 24 h"),
                ("created_to_confirmed_p50_ms", "P50 created to confirmed, ms, last 24 h"),
                ("created_to_confirmed_p95_ms", "P95 created to confirmed, ms, last 24 h"),
                ("lock_wait_p95_ms", "P95 booking lock wait, ms, last 24 h"),
                ("lease_wait_p95_ms", "P95 lease wait, ms, last 24 h"),
            ]
        }
        with psycopg.connect(self.url, autocommit=True) as conn:
            for restaurant_id, state, count in conn.execute(query("metrics_states")).fetchall():
                states.add_metric([str(restaurant_id), state], float(count))
            for row in conn.execute(query("metrics_assignment")).fetchall():
                values: dict[str, Any] = dict(
                    zip(
                        [
                            "restaurant_id",
                            "bookings",
                            "confirmed",
                            "manual_review",
                            "success_rate",
                            "manual_review_rate",
                            "created_to_confirmed_p50_ms",
                            "created_to_confirmed_p95_ms",
                            "lock_wait_p95_ms",
                            "lease_wait_p95_ms",
                        ],
                        row,
                        strict=True,
                    )
                )
                for name, family in rates.items():
                    if values[name] is not None:
                        family.add_metric([str(values["restaurant_id"])], float(values[name]))
        yield states
        yield from rates.values()


def serve(url: str, address: str, port: int) -> None:
    """Serve /metrics until SIGTERM or SIGINT."""
    from prometheus_client import start_http_server

    REGISTRY.register(AllocatorCollector(url))
    start_http_server(port, addr=address)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"serving metrics on http://{address}:{port}/metrics", flush=True)
    stop.wait()

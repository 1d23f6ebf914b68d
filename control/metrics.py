"""A Prometheus exporter over the metrics views: every scrape reads the database.

The figures come from the same named queries `allocator status` prints (queue, deferrals,
states, breakers, leases) and from the views `metric_totals`, `metric_histograms` and
`assignment_metrics`; nothing is computed here but label grouping.

Restaurant labels are bounded: the ``top`` restaurants with the most bookings get a label of
their own (their id); the others are folded into ``restaurant="other"`` (counts summed, ages
the largest). Counters and histograms carry no restaurant label at all.
"""

from __future__ import annotations

import operator
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import Any

import psycopg
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import REGISTRY, Collector

from control.queries import query

DEFAULT_TOP_RESTAURANTS = 20
OTHER = "other"
BREAKER_STATES = ("closed", "open", "half_open")
DEFERRAL_REASONS = ("row_locked", "rate_limited", "circuit_open")
SHADOW_DAYS = 7
SHADOW_GAUGES = [
    ("shadow_decisions", "Shadow-mode decisions in the last 7 days", 1),
    ("shadow_agreement_rate", "Share of them the engine and the legacy planner agreed on", 3),
    ("shadow_engine_covers", "Covers the engine would have seated in them", 6),
    ("shadow_legacy_covers", "Covers the legacy planner seated in them", 7),
]
MAIL_STATUSES = ("pending", "sending", "committing", "sent", "failed", "in_doubt")

COUNTERS: dict[str, tuple[str, list[str]]] = {
    "bookings_created": ("Bookings created (that started in state created)", []),
    "assignment_attempts": (
        "Assignment attempts (process_booking calls that worked a booking) by outcome",
        ["outcome"],
    ),
    "retries": ("Retries scheduled by the engine, by reason", ["reason"]),
    "manual_reviews": ("Bookings sent to manual review (state changes into it)", []),
    "state_transitions": ("Booking state changes by from and to state", ["from_state", "to_state"]),
    "optimizer_runs": ("apply_optimal_assignment runs by status", ["status"]),
    "notifications": ("Customer notifications written to the outbox, by kind", ["kind"]),
    "notifications_repeated": (
        "Notifications of a kind the booking had been sent already, by kind",
        ["kind"],
    ),
    "mails_sent": ("Notifications the SMTP server accepted, by kind", ["kind"]),
    "assignments_aborted": (
        "Calls that put a booking back without working on it (row_locked, rate_limited, "
        "circuit_open), by reason",
        ["reason"],
    ),
}

HISTOGRAMS: dict[str, str] = {
    "assignment_latency_seconds": "Created to confirmed latency of bookings, seconds",
    "lock_wait_seconds": "Booking row lock wait of each assignment attempt, seconds",
    "lease_wait_seconds": "lease_acquire waits, seconds",
    "optimizer_score_delta": "Score improvement each optimizer run promised (fraction)",
}

ASSIGNMENT_24H = [
    ("success_rate", "Confirmed share of bookings created in the last 24 h"),
    ("manual_review_rate", "Manual-review share of bookings created in the last 24 h"),
    ("created_to_confirmed_p50_ms", "P50 created to confirmed, ms, last 24 h"),
    ("created_to_confirmed_p95_ms", "P95 created to confirmed, ms, last 24 h"),
    ("lock_wait_p95_ms", "P95 booking lock wait, ms, last 24 h"),
    ("lease_wait_p95_ms", "P95 lease wait, ms, last 24 h"),
]
ASSIGNMENT_COLUMNS = [
    "restaurant_id",
    "bookings",
    "confirmed",
    "manual_review",
    *(name for name, _ in ASSIGNMENT_24H),
]

# Gauge, help, column of the status_queue row, how restaurants under one label combine.
QUEUE_GAUGES: list[tuple[str, str, int, Callable[[float, float], float]]] = [
    ("queue_depth", "Queue rows (bookings waiting for the engine)", 1, operator.add),
    ("queue_due", "Queue rows due now and not leased", 2, operator.add),
    ("queue_leased", "Queue rows leased to a worker", 3, operator.add),
    ("queue_scheduled", "Queue rows due later (retries, cooldowns, pooled)", 4, operator.add),
    ("queue_pooled", "Queue rows waiting for the day's cut-off", 5, operator.add),
    (
        "queue_oldest_due_age_seconds",
        "How long the queue row due longest has been due, seconds (0: none due)",
        7,
        max,
    ),
]


def _le(bound: Decimal) -> str:
    return "+Inf" if bound.is_infinite() else format(bound.normalize(), "f")


class Labels:
    """Which restaurants get a label of their own: the ``top`` with the most bookings."""

    def __init__(self, counts: Iterable[tuple[int, int]], top: int) -> None:
        ranked = sorted(counts, key=lambda item: (-item[1], item[0]))
        self.own = {restaurant for restaurant, _ in ranked[:top]}

    def __call__(self, restaurant_id: int) -> str:
        return str(restaurant_id) if restaurant_id in self.own else OTHER


class AllocatorCollector(Collector):
    """Reads the metrics views on each scrape."""

    def __init__(self, url: str, top: int = DEFAULT_TOP_RESTAURANTS) -> None:
        self.url = url
        self.top = top

    def collect(self) -> Iterator[Metric]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            states = conn.execute(query("status_states")).fetchall()
            breakers = conn.execute(query("status_breakers")).fetchall()
            queue = conn.execute(query("status_queue")).fetchall()
            deferrals = conn.execute(query("status_deferrals")).fetchall()
            leases = conn.execute(query("status_leases")).fetchall()
            mail = conn.execute(query("status_mail")).fetchall()
            shadow = conn.execute(query("shadow_report"), (SHADOW_DAYS,)).fetchall()
            worker_attempts = conn.execute(query("metrics_worker_attempts")).fetchall()
            totals = conn.execute(query("metrics_totals")).fetchall()
            histograms = conn.execute(query("metrics_histograms")).fetchall()
            assignment = conn.execute(query("metrics_assignment")).fetchall()

        per_restaurant: dict[int, int] = {restaurant: 0 for restaurant, *_ in breakers}
        for restaurant, _state, count in states:
            per_restaurant[restaurant] = per_restaurant.get(restaurant, 0) + int(count)
        label = Labels(per_restaurant.items(), self.top)
        groups = sorted({label(r) for r in per_restaurant})

        yield from self._states(states, label)
        yield from self._breakers(breakers, label, groups)
        yield from self._queue(queue, deferrals, label, groups)
        yield from self._assignment(assignment, label)
        workers = GaugeMetricFamily("allocator_workers_live", "Workers whose name lease is live")
        workers.add_metric(
            [], sum(1 for name, *_, live in leases if name.startswith("worker:") and live)
        )
        yield workers
        processed = CounterMetricFamily(
            "allocator_worker_attempts",
            "Assignment attempts made by each live worker (by its --name)",
            labels=["worker"],
        )
        for name, count in worker_attempts:
            processed.add_metric([str(name)], float(count))
        yield processed
        yield from self._shadow(shadow, label)
        yield from self._mail(mail)
        yield from self._counters(totals)
        yield from self._histograms(histograms)

    @staticmethod
    def _shadow(rows: list[tuple[Any, ...]], label: Labels) -> Iterator[Metric]:
        # Per restaurant, for restaurants with a label of their own (allocator shadow shows all).
        families = [
            (GaugeMetricFamily(f"allocator_{name}", text, labels=["restaurant"]), column)
            for name, text, column in SHADOW_GAUGES
        ]
        for row in rows:
            group = label(row[0])
            if group == OTHER:
                continue
            for family, column in families:
                family.add_metric([group], float(row[column]))
        yield from (family for family, _ in families)

    @staticmethod
    def _mail(rows: list[tuple[Any, ...]]) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "allocator_mail_notifications",
            "Notifications to mail by status (in_doubt: its sender died committing)",
            labels=["status"],
        )
        counts = dict.fromkeys(MAIL_STATUSES, 0.0)
        for _restaurant, status, count, _oldest in rows:
            counts[status] = counts.get(status, 0.0) + float(count)
        for status, value in counts.items():
            family.add_metric([status], value)
        yield family

    @staticmethod
    def _states(rows: list[tuple[Any, ...]], label: Labels) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "allocator_bookings", "Bookings by restaurant and state", labels=["restaurant", "state"]
        )
        sums: dict[tuple[str, str], float] = {}
        for restaurant, state, count in rows:
            key = (label(restaurant), state)
            sums[key] = sums.get(key, 0.0) + float(count)
        for key, value in sorted(sums.items()):
            family.add_metric(list(key), value)
        yield family

    @staticmethod
    def _breakers(
        rows: list[tuple[Any, ...]], label: Labels, groups: list[str]
    ) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "allocator_circuit_breakers",
            "Restaurants whose circuit breaker is in each state",
            labels=["restaurant", "state"],
        )
        counts = {(group, state): 0.0 for group in groups for state in BREAKER_STATES}
        for restaurant, state, _failures, _opened_at in rows:
            counts[(label(restaurant), state)] += 1
        for key, value in sorted(counts.items()):
            family.add_metric(list(key), value)
        yield family

    @staticmethod
    def _queue(
        rows: list[tuple[Any, ...]],
        deferral_rows: list[tuple[Any, ...]],
        label: Labels,
        groups: list[str],
    ) -> Iterator[Metric]:
        values = {name: dict.fromkeys(groups, 0.0) for name, *_ in QUEUE_GAUGES}
        for row in rows:
            group = label(row[0])
            for name, _text, column, fold in QUEUE_GAUGES:
                if row[column] is not None:
                    values[name][group] = fold(values[name].get(group, 0.0), float(row[column]))
        for name, text, _column, _fold in QUEUE_GAUGES:
            family = GaugeMetricFamily(f"allocator_{name}", text, labels=["restaurant"])
            for group, value in sorted(values[name].items()):
                family.add_metric([group], value)
            yield family
        deferred = GaugeMetricFamily(
            "allocator_queue_deferred",
            "Queue rows put back without being worked on, by the reason of the last time",
            labels=["reason"],
        )
        in_a_row = GaugeMetricFamily(
            "allocator_queue_deferrals",
            "Deferrals in a row of the queue rows put back without being worked on, by reason",
            labels=["reason"],
        )
        bookings = dict.fromkeys(DEFERRAL_REASONS, 0.0)
        total = dict.fromkeys(DEFERRAL_REASONS, 0.0)
        for _restaurant, reason, count, deferrals in deferral_rows:
            bookings[reason] = bookings.get(reason, 0.0) + float(count)
            total[reason] = total.get(reason, 0.0) + float(deferrals)
        for reason in sorted(bookings):
            deferred.add_metric([reason], bookings[reason])
            in_a_row.add_metric([reason], total[reason])
        yield deferred
        yield in_a_row

    @staticmethod
    def _assignment(rows: list[tuple[Any, ...]], label: Labels) -> Iterator[Metric]:
        # Rates and percentiles cannot be folded into "other": only restaurants with a label
        # of their own have them. Fleet-wide figures come from the histograms and counters.
        families = {
            name: GaugeMetricFamily(f"allocator_{name}", text, labels=["restaurant"])
            for name, text in ASSIGNMENT_24H
        }
        for row in rows:
            values = dict(zip(ASSIGNMENT_COLUMNS, row, strict=True))
            group = label(values["restaurant_id"])
            if group == OTHER:
                continue
            for name, family in families.items():
                if values[name] is not None:
                    family.add_metric([group], float(values[name]))
        yield from families.values()

    @staticmethod
    def _counters(rows: list[tuple[Any, ...]]) -> Iterator[Metric]:
        families = {
            name: CounterMetricFamily(f"allocator_{name}", text, labels=labels)
            for name, (text, labels) in COUNTERS.items()
        }
        for metric, labels, value in rows:
            family = families[metric]
            names = COUNTERS[metric][1]
            family.add_metric([str(labels[n]) for n in names], float(value))
        yield from families.values()

    @staticmethod
    def _histograms(rows: list[tuple[Any, ...]]) -> Iterator[Metric]:
        buckets: dict[str, list[tuple[str, float]]] = {name: [] for name in HISTOGRAMS}
        sums: dict[str, float] = dict.fromkeys(HISTOGRAMS, 0.0)
        for metric, le, bucket_count, _count, total in rows:
            buckets[metric].append((_le(le), float(bucket_count)))
            sums[metric] = float(total)
        for name, text in HISTOGRAMS.items():
            family = HistogramMetricFamily(f"allocator_{name}", text)
            family.add_metric([], buckets[name], sum_value=sums[name])
            yield family


def serve(url: str, address: str, port: int, top: int = DEFAULT_TOP_RESTAURANTS) -> None:
    """Serve /metrics until SIGTERM or SIGINT."""
    from prometheus_client import start_http_server

    REGISTRY.register(AllocatorCollector(url, top))
    start_http_server(port, addr=address)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"serving metrics on http://{address}:{port}/metrics", flush=True)
    stop.wait()

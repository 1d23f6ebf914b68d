"""The Grafana dashboard against a real Prometheus: Prometheus (the Debian binary, its own data
folder and port) scrapes `allocator metrics serve` every second while `allocator demo` pushes
bookings through two workers; then every query of every panel returns data, and the alert
rules load and evaluate without error."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import create_database, database_name_for, drop_database

ROOT = Path(__file__).resolve().parents[2]
ALLOCATOR = str(ROOT / ".venv" / "bin" / "allocator")
DASHBOARD = ROOT / "ops" / "grafana" / "allocator-dashboard.json"
RULES = ROOT / "ops" / "prometheus" / "allocator-rules.yml"
RATE_INTERVAL = "2m"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def api(port: int, path: str, **params: str) -> Any:
    url = f"http://127.0.0.1:{port}/api/v1/{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]


def wait_for(what: str, check: Any, deadline_s: float = 60.0) -> Any:
    """Poll ``check`` until it returns something true (a deadline, not a measurement)."""
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            result = check()
        except OSError:
            result = None
        if result:
            return result
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.2)


def panel_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        (f"{panel['title']} / {target['refId']}", target["expr"])
        for panel in dashboard["panels"]
        for target in panel["targets"]
    ]


@pytest.fixture
def scratch_url() -> Iterator[str]:
    name = database_name_for("dashboard")
    url = create_database(name)
    env = {**os.environ, "DATABASE_URL": url}
    migrate = subprocess.run(
        [ALLOCATOR, "migrate", "up"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert migrate.returncode == 0, migrate.stderr
    yield url
    drop_database(name)


def test_the_dashboard_has_the_panels_the_documents_list() -> None:
    titles = {panel["title"] for panel in json.loads(DASHBOARD.read_text())["panels"]}
    for title in (
        "Assignment success rate",
        "Manual review rate",
        "Assignment latency P50 / P95 / P99",
        "Lock acquisition P95",
        "Circuit breakers",
        "Bookings per state",
        "Transition error rate",
        "Confirmation emails sent",
        "Emails in doubt, failed, waiting",
    ):
        assert title in titles
    latency = [q for name, q in panel_queries() if name.startswith("Assignment latency")]
    assert [q.split(",")[0] for q in latency] == [
        "histogram_quantile(0.5",
        "histogram_quantile(0.95",
        "histogram_quantile(0.99",
    ]


def test_every_panel_query_returns_data_from_a_real_prometheus(
    scratch_url: str, tmp_path: Path
) -> None:
    prometheus = shutil.which("prometheus")
    assert prometheus, "prometheus not found: `make setup` installs the Debian package"
    exporter_port, prometheus_port = free_port(), free_port()
    env = {**os.environ, "DATABASE_URL": scratch_url, "COLUMNS": "200"}
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"rule_files:\n  - {RULES}\n"
        "scrape_configs:\n  - job_name: allocator\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{exporter_port}']\n"
    )
    procs: list[subprocess.Popen[str]] = []
    try:
        exporter = subprocess.Popen(
            [ALLOCATOR, "metrics", "serve", "--port", str(exporter_port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append(exporter)
        assert exporter.stdout is not None and "serving metrics" in exporter.stdout.readline()
        procs.append(
            subprocess.Popen(
                [
                    prometheus,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={tmp_path / 'data'}",
                    f"--web.listen-address=127.0.0.1:{prometheus_port}",
                    "--log.level=warn",
                ],
                cwd=tmp_path,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                text=True,
            )
        )
        # Scraped once before any booking exists: every counter starts at 0.
        wait_for(
            "the first scrape",
            lambda: api(prometheus_port, "query", query="allocator_bookings_created_total")[
                "result"
            ],
        )
        demo = subprocess.run(
            [ALLOCATOR, "demo", "--bookings", "20"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert demo.returncode == 0, demo.stdout + demo.stderr
        with psycopg.connect(scratch_url) as conn:
            row = conn.execute("select count(*) from allocator.bookings").fetchone()
        assert row is not None and row[0] > 0
        booked = int(row[0])

        def scraped_all() -> bool:
            result = api(prometheus_port, "query", query="allocator_bookings_created_total")
            return bool(result["result"]) and float(result["result"][0]["value"][1]) == booked

        wait_for("a scrape after the demo", scraped_all)

        empty = []
        for name, expr in panel_queries():
            query = expr.replace("$__rate_interval", RATE_INTERVAL)
            result = api(prometheus_port, "query", query=query)["result"]
            values = [float(sample["value"][1]) for sample in result]
            if not any(math.isfinite(v) for v in values):
                empty.append((name, query, values))
        assert not empty, empty

        groups = wait_for(
            "the rules to be evaluated",
            lambda: [
                g
                for g in api(prometheus_port, "rules")["groups"]
                if all(r.get("lastEvaluation", "").startswith("2") for r in g["rules"])
                and not any(r["lastEvaluation"].startswith("0001") for r in g["rules"])
            ],
        )
        rules = [r for g in groups for r in g["rules"]]
        # Every rule of the file was loaded and evaluated.
        in_file = re.findall(r"^      - alert: (\w+)$", RULES.read_text(), re.MULTILINE)
        assert sorted(r["name"] for r in rules) == sorted(in_file)
        assert all(r["health"] == "ok" for r in rules), rules
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

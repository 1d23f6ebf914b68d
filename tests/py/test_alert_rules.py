"""The alert rules in ops/prometheus pass `promtool check rules` and their `promtool test rules`
suite, and that suite has, for every alert, a case where it fires and one where it stays
silent: an alert changed to never fire, or to always fire, fails it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "ops" / "prometheus" / "allocator-rules.yml"
SUITE = ROOT / "ops" / "prometheus" / "allocator-rules.test.yml"
ALERT = re.compile(
    r"^      - alert: (\w+)\n        expr: (?:\|\n(?: {10}.*\n)+|.*\n)", re.MULTILINE
)
ALERTS = [m.group(1) for m in ALERT.finditer(RULES.read_text())]


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    assert tool, "promtool not found: `make setup` installs the Debian package prometheus"
    return subprocess.run(
        [tool, *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=120
    )


def with_expr(tmp_path: Path, alert: str, expr: str) -> Path:
    """A copy of the rules and the suite in which ``alert`` has the expression ``expr``."""
    rules = ALERT.sub(
        lambda m: (
            f"      - alert: {alert}\n        expr: {expr}\n" if m.group(1) == alert else m[0]
        ),
        RULES.read_text(),
    )
    assert rules != RULES.read_text()
    (tmp_path / RULES.name).write_text(rules)
    shutil.copy(SUITE, tmp_path / SUITE.name)
    return tmp_path


def test_the_rules_and_their_unit_tests_pass() -> None:
    assert sorted(ALERTS) == sorted(
        [
            "coordinator_high_error_rate",
            "circuit_breaker_open",
            "manual_review_volume_high",
            "manual_review_volume_critical",
            "assignment_latency_p95_high",
            "lock_wait_p95_high",
            "queue_oldest_due_age_high",
            "retry_rate_above_baseline",
            "mail_in_doubt",
        ]
    ), ALERTS
    check = promtool("check", "rules", RULES.name, cwd=RULES.parent)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in check.stdout
    suite = promtool("test", "rules", SUITE.name, cwd=SUITE.parent)
    assert suite.returncode == 0, suite.stdout + suite.stderr
    assert "SUCCESS" in suite.stdout


def test_every_alert_has_a_severity_and_is_documented() -> None:
    operations = (ROOT / "docs" / "operations.md").read_text()
    blocks = re.split(r"^      - alert: ", RULES.read_text(), flags=re.MULTILINE)[1:]
    for block in blocks:
        name = block.split("\n", 1)[0]
        assert re.search(r"severity: P[123]\n", block), name
        assert f"`{name}`" in operations, f"{name} is not in docs/operations.md"


@pytest.mark.parametrize("alert", ALERTS)
@pytest.mark.parametrize(
    ("expr", "failed_case"),
    [("vector(0) > 1", r"exp:\[\n"), ("vector(1)", r"exp:\[\], ")],
    ids=["never-fires", "always-fires"],
)
def test_the_suite_fails_if_the_alert_is_changed(
    tmp_path: Path, alert: str, expr: str, failed_case: str
) -> None:
    # Never firing fails a case that expects the alert; always firing fails one that does not.
    result = promtool("test", "rules", SUITE.name, cwd=with_expr(tmp_path, alert, expr))
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert re.search(rf"alertname: {alert}, time: [^\n]*\n\s+{failed_case}", output), output

"""What the command line prints: text from the database shown literally (never read as rich
markup, control characters as visible escapes), and no traceback for any bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from rich.console import Console

from control.display import cell, json_text, literal, visible
from tests.conftest import create_database, database_name_for, drop_database
from tests.py.test_cli import ALLOCATOR, ROOT

# Rich markup, an SGR colour, a carriage return, BEL, DEL, the C1 CSI, a right-to-left
# override and an OSC sequence that would set the terminal's title.
RAW = ("\x1b", "\r", "\x07", "\x7f", "\x9b", "\u202e")


def hostile(tag: str) -> str:
    return f"{tag}[/][bold]x\x1b[31m\r\x07\x7f\x9b\u202e\x1b]0;pwned\x07"


def shown(tag: str) -> str:
    """How ``hostile(tag)`` must appear on the terminal."""
    return f"{tag}[/][bold]x\\x1b[31m\\r\\x07\\x7f\\x9b\\u202e\\x1b]0;pwned\\x07"


def env(url: str) -> dict[str, str]:
    # Wide enough that no table cell wraps; output is not a terminal, so rich adds no styles.
    base = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    return {**base, "DATABASE_URL": url, "COLUMNS": "1000"}


def run(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ALLOCATOR, *args],
        cwd=ROOT,
        env=env(url),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def clean(result: subprocess.CompletedProcess[str], code: int) -> str:
    """stdout + stderr of a command that exited with ``code``, printed no traceback and sent
    no raw control character to the terminal."""
    out = result.stdout + result.stderr
    assert result.returncode == code, (result.args, out)
    assert "Traceback" not in out, out
    for raw in RAW:
        assert raw not in out, (result.args, repr(raw), out)
    return out


@pytest.fixture
def scratch_url() -> Iterator[str]:
    name = database_name_for("cli_output")
    url = create_database(name)
    assert run(url, "migrate", "up").returncode == 0
    yield url
    drop_database(name)


def test_the_helpers_show_text_literally() -> None:
    text = hostile("h") + "\nline two \u2028 Caffè"
    assert visible(text) == shown("h") + "\\nline two \\u2028 Caffè"
    assert visible(text, multiline=True) == shown("h") + "\nline two \\u2028 Caffè"
    console = Console(width=1000, color_system=None)
    with console.capture() as capture:
        console.print(f"[bold]{literal(text)}[/bold]")
        console.print(cell(text))
        console.print(json_text({"note": text}))
    out = capture.get()
    assert out.count(shown("h") + "\\nline two \\u2028 Caffè") == 2, out
    assert '"h[/][bold]x\\u001b[31m\\r\\u0007\\u007f\\u009b\\u202e' in out, out
    assert "Caffè" in out
    for raw in RAW:
        assert raw not in out
    assert json.loads(json_text({"note": text}).plain) == {"note": text}


def test_database_text_is_printed_literally(scratch_url: str, tmp_path: Path) -> None:
    url = scratch_url
    layout = tmp_path / "hostile.json"
    layout.write_text(
        json.dumps(
            {
                "name": hostile("R"),
                "timezone": "Europe/Rome",
                "zones": [{"name": hostile("Z")}],
                "tables": [
                    {"label": hostile("T1"), "max_capacity": 4, "zone": hostile("Z")},
                    {"label": hostile("T2"), "max_capacity": 4, "zone": hostile("Z")},
                ],
                "adjacency": [[hostile("T1"), hostile("T2")]],
            }
        )
    )
    out = clean(run(url, "layout", "load", str(layout)), 0)
    for tag in ("R", "Z", "T1", "T2"):
        assert shown(tag) in out, (tag, out)
    assert f"{shown('T1')}+{shown('T2')}" in out, out

    day = date.today() + timedelta(days=3)
    with psycopg.connect(url, autocommit=True) as conn:
        (rid,) = conn.execute("select id from allocator.restaurants").fetchone()  # type: ignore[misc]
        created: Any = conn.execute(
            "select allocator.create_booking(%s, 2, %s::timestamptz, p_preferred_zone => %s)",
            (rid, f"{day}T19:00:00+01:00", hostile("Z")),
        ).fetchone()
        booking_id = created[0]["booking_id"]
        conn.execute(
            "select allocator.cancel_booking(%s, p_actor => %s, p_reason => %s)",
            (booking_id, "staff:" + hostile("A"), hostile("W")),
        )
        conn.execute("select allocator.lease_acquire(%s, %s, 600)", (hostile("L"), hostile("O")))

    out = clean(run(url, "layout", "show", str(rid)), 0)
    for tag in ("R", "Z", "T1", "T2"):
        assert shown(tag) in out, (tag, out)

    out = clean(run(url, "inspect", str(booking_id)), 0)
    assert "staff:" + shown("A") in out and shown("W") in out, out

    out = clean(run(url, "status"), 0)
    assert shown("L") in out and shown("O") in out, out

    # An unknown zone: the error repeats the name, literally.
    start = f"{day}T20:00:00+01:00"
    book = ["booking", "create", "--restaurant", str(rid), "--party", "2", "--start", start]
    out = clean(run(url, *book, "--zone", hostile("Q")), 1)
    assert "RA002" in out and shown("Q") in out, out
    out = clean(run(url, *book, "--zone", "[/]"), 1)
    assert "has no zone [/]" in out, out
    clean(run(url, *book, "--zone", hostile("Z")), 0)

    clean(run(url, "optimize", "--restaurant", str(rid), "--date", day.isoformat()), 0)

    bookings = tmp_path / "bookings.jsonl"
    bookings.write_text(
        json.dumps({"external_id": hostile("E"), "party_size": 2, "start": start})
        + "\n"
        + json.dumps({"external_id": "x2", "party_size": 2, "start": start, "zone": hostile("Y")})
        + "\n"
    )
    out = clean(run(url, "import", "bookings", str(bookings), "--restaurant", str(rid)), 1)
    assert "refused 1" in out and shown("Y") in out, out
    out = clean(
        run(url, "import", "bookings", str(bookings), "--restaurant", str(rid), "--dry-run"), 1
    )
    assert "refused 1" in out, out

    # The events outbox as JSON lines: every string exactly as stored, escaped as JSON.
    tail = subprocess.Popen(
        [ALLOCATOR, "events", "tail", "--from-start"],
        cwd=ROOT,
        env=env(url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        assert tail.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = tail.stdout.readline()
            assert line, "events tail ended early"
            lines.append(line)
            if json.loads(line)["payload"].get("actor") == "staff:" + hostile("A"):
                break
        else:
            pytest.fail(f"the cancellation event did not show: {lines}")
    finally:
        tail.send_signal(signal.SIGINT)
        stdout, stderr = tail.communicate(timeout=30)
    result = subprocess.CompletedProcess(
        tail.args, tail.returncode, "".join(lines) + stdout, stderr
    )
    clean(result, 0)


def test_bad_input_never_prints_a_traceback(scratch_url: str, tmp_path: Path) -> None:
    url = scratch_url
    with psycopg.connect(url, autocommit=True) as conn:
        layout = {"name": "Plain", "tables": [{"label": "A", "max_capacity": 4}]}
        rid = str(
            conn.execute(
                "select allocator.import_layout(%s::jsonb) ->> 'restaurant_id'",
                (json.dumps(layout),),
            ).fetchone()[0]  # type: ignore[index]
        )
    files = {
        "not_json.json": b"{not json",
        "array.json": b"[]",
        "latin1.json": b'{"name": "Caf\xe9"}',
        "latin1.csv": b"external_id,party_size,start\n\xe9,2,2027-01-01T19:00+01:00\n",
        "not_json.jsonl": b'{"x":\n',
        "array.jsonl": b"[1, 2]\n",
        "no_header.csv": b"a,b\n1,2\n",
        "nul.csv": b"external_id,party_size,start\na\x00b,2,2027-01-01T19:00+01:00\n",
        "bad_values.csv": b"external_id,party_size,start\nb1,many,tomorrow\n",
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    f = {name: str(tmp_path / name) for name in files}
    missing = str(tmp_path / "missing.json")
    start = "2027-03-01T19:00+01:00"
    book = ["booking", "create", "--party", "2", "--start", start]
    cases: list[tuple[int, list[str]]] = [
        (2, ["inspect", "abc"]),
        (1, ["inspect", "987654321"]),
        (1, ["inspect", "99999999999999999999"]),
        (2, ["layout", "show", "x"]),
        (1, ["layout", "show", "987654321"]),
        (2, ["layout", "load", missing]),
        (2, ["layout", "load", str(tmp_path)]),
        (2, ["layout", "load", f["not_json.json"]]),
        (2, ["layout", "load", f["latin1.json"]]),
        (1, ["layout", "load", f["array.json"]]),
        (1, ["layout", "load", "--replace", f["array.json"]]),
        (1, [*book, "--restaurant", "987654321"]),
        (1, [*book, "--restaurant", "99999999999999999999"]),
        (2, [*book, "--restaurant", "one"]),
        (1, [*book, "--restaurant", rid, "--zone", "[/]"]),
        (1, [*book, "--restaurant", rid, "--duration", "-5"]),
        (2, ["booking", "create", "--restaurant", rid, "--party", "2", "--start", "31/12/2027"]),
        (1, ["optimize", "--restaurant", "987654321", "--date", "2027-01-01"]),
        (2, ["optimize", "--restaurant", rid, "--date", "2027-02-30"]),
        (1, ["optimize", "--restaurant", rid, "--date", "2027-01-01", "--time-limit-ms", "-1"]),
        (2, ["import", "bookings", missing, "--restaurant", rid]),
        (2, ["import", "bookings", str(tmp_path), "--restaurant", rid]),
        (2, ["import", "bookings", f["latin1.csv"], "--restaurant", rid]),
        (2, ["import", "bookings", f["not_json.jsonl"], "--restaurant", rid]),
        (2, ["import", "bookings", f["array.jsonl"], "--restaurant", rid]),
        (2, ["import", "bookings", f["no_header.csv"], "--restaurant", rid]),
        (1, ["import", "bookings", f["bad_values.csv"], "--restaurant", rid]),
        (1, ["import", "bookings", f["bad_values.csv"], "--restaurant", "987654321"]),
        (1, ["migrate", "up", "nonexistent"]),
        (1, ["migrate", "down", "nonexistent"]),
        (2, ["metrics", "serve", "--port", "99999"]),
        (1, ["metrics", "serve", "--port", "9187", "--address", "no.such.host.invalid"]),
        (2, ["worker", "--log-level", "LOUD"]),
        (2, ["demo", "--workers", "0"]),
        (2, ["demo", "--bookings", "-1"]),
    ]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda case: run(url, *case[1]), cases))
    for (code, _args), result in zip(cases, results, strict=True):
        clean(result, code)
    # A NUL byte is refused by the database or the driver; either way, one line, exit 1.
    result = run(url, "import", "bookings", f["nul.csv"], "--restaurant", rid)
    assert result.returncode in (1, 2) and "Traceback" not in result.stdout + result.stderr
    with psycopg.connect(url) as conn:
        assert conn.execute("select count(*) from allocator.bookings").fetchone() == (0,)

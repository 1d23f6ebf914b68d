"""`allocator import bookings`: a file of another system's bookings, in batches of 500 in one
transaction, run as a user runs it against a scratch database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from tests.conftest import create_database, database_name_for, drop_database
from tests.py.test_cli import run

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def restaurant(tmp_path: Path) -> Iterator[tuple[str, int]]:
    name = database_name_for("import")
    url = create_database(name)
    assert run(url, "migrate", "up").returncode == 0
    loaded = run(url, "layout", "load", str(ROOT / "data" / "sample_restaurant.json"))
    assert loaded.returncode == 0, loaded.stderr
    with psycopg.connect(url) as conn:
        row = conn.execute("select max(id) from allocator.restaurants").fetchone()
    assert row is not None
    yield url, int(row[0])
    drop_database(name)


def counts(url: str, restaurant_id: int) -> tuple[int, int, int]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            """select (select count(*) from allocator.bookings where restaurant_id = %(r)s),
                      (select count(*) from allocator.booking_state_history where restaurant_id = %(r)s),
                      (select count(*) from allocator.allocations where restaurant_id = %(r)s)""",
            {"r": restaurant_id},
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def test_csv_import_is_idempotent_and_seats_the_given_tables(
    restaurant: tuple[str, int], tmp_path: Path
) -> None:
    url, rid = restaurant
    day = (datetime.now(UTC) + timedelta(days=3)).date()
    csv_file = tmp_path / "bookings.csv"
    csv_file.write_text(
        "external_id,party_size,start,tables,guest\n"
        f"A-1,2,{day} 19:00,M1,Rossi\n"
        f"A-2,5,{day} 21:30,M1+M2+M3,Bianchi\n"
        f"A-3,4,{day} 21:00,,Verdi\n"
    )
    first = run(url, "import", "bookings", str(csv_file), "--restaurant", str(rid))
    assert first.returncode == 0, first.stdout + first.stderr
    assert "3 rows: imported 3, already there 0, refused 0" in first.stdout
    assert counts(url, rid) == (3, 3, 4)
    with psycopg.connect(url) as conn:
        guest = conn.execute(
            "select metadata ->> 'guest', state from allocator.bookings where external_id = 'A-2'"
        ).fetchone()
    assert guest == ("Bianchi", "confirmed")

    again = run(url, "import", "bookings", str(csv_file), "--restaurant", str(rid))
    assert again.returncode == 0, again.stderr
    assert "imported 0, already there 3" in again.stdout
    assert counts(url, rid) == (3, 3, 4)


def test_a_refused_row_in_a_late_batch_leaves_nothing_imported(
    restaurant: tuple[str, int], tmp_path: Path
) -> None:
    url, rid = restaurant
    start = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0) + timedelta(days=2)
    rows = [
        {
            "external_id": f"J-{n}",
            "party_size": 2,
            "start": (start + timedelta(hours=3 * n)).isoformat(),
            "table_note": "window",
        }
        for n in range(1200)
    ]
    # Row 1,101 double-books table M1 with row 1,100.
    rows[1099]["tables"] = ["M1"]
    rows[1100]["tables"] = ["M1"]
    rows[1100]["start"] = rows[1099]["start"]
    jsonl = tmp_path / "bookings.jsonl"
    jsonl.write_text("\n".join(json.dumps(row) for row in rows) + "\n")

    refused = run(url, "import", "bookings", str(jsonl), "--restaurant", str(rid))
    assert refused.returncode == 1
    assert "row 1101 external_id=J-1100: RA003" in refused.stderr
    assert "nothing was imported" in refused.stderr
    assert counts(url, rid) == (0, 0, 0)

    rows[1100]["start"] = (start + timedelta(hours=3 * 1100 + 1)).isoformat()
    rows[1100].pop("tables")
    jsonl.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    dry = run(url, "import", "bookings", str(jsonl), "--restaurant", str(rid), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "1200 rows: would import 1200" in dry.stdout
    assert counts(url, rid) == (0, 0, 0)
    done = run(url, "import", "bookings", str(jsonl), "--restaurant", str(rid))
    assert done.returncode == 0, done.stderr
    assert counts(url, rid) == (1200, 1200, 1)


def test_unreadable_files_are_usage_errors(restaurant: tuple[str, int], tmp_path: Path) -> None:
    url, rid = restaurant
    no_header = tmp_path / "rows.csv"
    no_header.write_text("1,2,3\n")
    result = run(url, "import", "bookings", str(no_header), "--restaurant", str(rid))
    assert result.returncode == 2 and "external_id" in result.stderr
    bad_json = tmp_path / "rows.jsonl"
    bad_json.write_text('{"external_id": "x"}\n[1, 2]\n')
    result = run(url, "import", "bookings", str(bad_json), "--restaurant", str(rid))
    assert result.returncode == 2 and "rows.jsonl:2" in result.stderr
    unknown = run(url, "import", "bookings", str(no_header), "--restaurant", "999999")
    assert unknown.returncode != 0
    assert counts(url, rid) == (0, 0, 0)

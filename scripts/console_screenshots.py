"""The README's screenshots of the console: the board and the manual review queue, taken in
Debian's Chromium from the demo's data (run `make demo` first).

    .venv/bin/python scripts/console_screenshots.py

It adds three phone bookings for the demo's busiest evening and puts them in manual review,
as a full evening would, signs in as the demo's staff member and writes docs/img/console-*.png.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from control.db import connect, database_url  # noqa: E402
from control.queries import query  # noqa: E402
from control.web.auth import hash_password  # noqa: E402
from control.web.serve import running  # noqa: E402
from tests.py.browser import launch_chromium  # noqa: E402

REASONS = (
    (9, "no table or combination seats 9 at 20:00"),
    (6, "preferred zone Terrace is full at 20:00"),
    (10, "no table or combination seats 10 at 21:00"),
)


def main() -> None:
    url = database_url()
    password = secrets.token_urlsafe(12)
    with connect(url) as conn:
        found = conn.execute(query("restaurant_by_name"), {"name": "Trattoria Demo"}).fetchone()
        if found is None:
            raise SystemExit("run `make demo` first: there is no Trattoria Demo")
        restaurant_id = found[0]
        day = conn.execute(query("busiest_day"), {"restaurant_id": restaurant_id}).fetchone()[0]
        for hour, (party, reason) in zip((20, 20, 21), REASONS, strict=True):
            created = conn.execute(
                "select (allocator.create_booking(%s, %s,"
                " (%s::date + make_time(%s, 0, 0)) at time zone 'Europe/Rome',"
                " p_actor => 'staff:screenshots') ->> 'booking_id')::bigint",
                (restaurant_id, party, day, hour),
            ).fetchone()
            assert created is not None
            # What a full evening ends in after the workers' retries, without waiting for them.
            conn.execute(
                "select allocator.dequeue(b.restaurant_id, b.id), allocator.transition(b.id,"
                " b.version, 'manual_review', 'worker:screenshots', %s)"
                " from allocator.bookings b where b.id = %s",
                (reason, created[0]),
            )
        params = {
            "login": "demo",
            "display_name": "Demo staff",
            "password_hash": hash_password(password),
            "restaurant_ids": [restaurant_id],
        }
        if any(r[0] == "demo" for r in conn.execute(query("staff_members")).fetchall()):
            conn.execute(query("set_staff_password"), params)
            conn.execute(query("set_staff_restaurants"), params)
        else:
            conn.execute(query("add_staff"), params)
    out = ROOT / "docs" / "img"
    out.mkdir(parents=True, exist_ok=True)
    with (
        running(url, "127.0.0.1", 8189, ROOT / "var" / "console-secret") as base,
        sync_playwright() as pw,
    ):
        browser = launch_chromium(pw)
        page = browser.new_page(viewport={"width": 1280, "height": 760})
        page.goto(base + "/login")
        page.get_by_label("Login").fill("demo")
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.goto(f"{base}/?date={day.isoformat()}")
        page.screenshot(path=str(out / "console-board.png"))
        page.goto(f"{base}/review")
        page.screenshot(path=str(out / "console-review.png"))
        browser.close()
    print(f"wrote {out / 'console-board.png'} and {out / 'console-review.png'}")


if __name__ == "__main__":
    main()

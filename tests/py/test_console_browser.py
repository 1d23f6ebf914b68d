"""The console in a real browser (Debian's Chromium driven by Playwright): a worker's
confirmation appears on the board live, staff resolve manual review with the mouse and with
the keyboard only, another restaurant's staff see none of it, and axe finds no serious or
critical accessibility violation on any page."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.py.browser import axe_violations, format_violations, launch_chromium
from tests.py.console import ConsoleWorld, Member, console_world, to_manual_review, tomorrow_at

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def world(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleWorld]:
    with console_world(db_url, tmp_path_factory.mktemp("console")) as w:
        yield w


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_playwright() as pw:
        chromium = launch_chromium(pw)
        yield chromium
        chromium.close()


def signed_in(browser: Any, world: ConsoleWorld, member: Member) -> Page:
    page: Page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.set_default_timeout(15_000)
    page.goto(world.base + "/login")
    page.get_by_label("Login").fill(member.login)
    page.get_by_label("Password").fill(member.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Pipeline board")).to_be_visible()
    return page


def create(world: ConsoleWorld, member: Member, hour: int, minute: int = 0) -> int:
    with world.api(member) as api:
        answer = api.post(
            "/api/bookings",
            json={
                "restaurant_id": member.restaurant_id,
                "party_size": 2,
                "start": tomorrow_at(hour, minute).isoformat(),
            },
        )
    assert answer.status_code == 201, answer.text
    return int(answer.json()["booking_id"])


def state(world: ConsoleWorld, booking_id: int) -> str:
    with psycopg.connect(world.db) as conn:
        row = conn.execute(
            "select state from allocator.bookings where id = %s", (booking_id,)
        ).fetchone()
    assert row is not None
    return str(row[0])


def test_a_workers_confirmation_appears_on_the_board_without_reload(
    world: ConsoleWorld, browser: Any, tmp_path: Path
) -> None:
    page = signed_in(browser, world, world.a)
    page.goto(
        f"{world.base}/?date={tomorrow_at(19).date().isoformat()}&restaurant={world.a.restaurant_id}"
    )
    page.evaluate("window.__noReload = true")
    booking_id = create(world, world.a, 19, 30)
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "control.cli",
            "worker",
            "--poll-interval",
            "0.2",
            "--name",
            f"console-test-{os.getpid()}",
        ],
        env={**os.environ, "DATABASE_URL": world.db},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "worker.log").open("w"),
    )
    try:
        card = page.locator(f'section[data-state="confirmed"] [data-booking-id="{booking_id}"]')
        expect(card).to_be_visible(timeout=30_000)
    finally:
        worker.terminate()
        worker.wait(30)
    assert page.evaluate("window.__noReload") is True, "the page was not reloaded"
    assert state(world, booking_id) == "confirmed"
    page.context.close()


def test_force_confirm_from_the_queue(world: ConsoleWorld, browser: Any) -> None:
    booking_id = create(world, world.a, 18, 15)
    to_manual_review(world.db, booking_id)
    page = signed_in(browser, world, world.a)
    page.get_by_role("link", name="Manual review").click()
    row = page.locator(f'tr[data-booking-id="{booking_id}"]')
    expect(row).to_contain_text("no table fits")
    row.get_by_role("link", name=f"Resolve #{booking_id}").click()
    page.get_by_role("radio").first.check()
    page.get_by_label("Reason").fill("regular guest, table by the window")
    page.get_by_role("button", name="Force confirm").click()
    expect(page.get_by_role("status")).to_contain_text(f"Booking {booking_id} confirmed")
    expect(page.locator(f'tr[data-booking-id="{booking_id}"]')).to_have_count(0)
    assert state(world, booking_id) == "confirmed"
    page.goto(f"{world.base}/bookings/{booking_id}")
    expect(page.locator("ol.timeline")).to_contain_text("regular guest, table by the window")
    expect(page.locator("ol.timeline")).to_contain_text(f"staff:{world.a.login}")
    page.context.close()


def focus_by_tab(page: Page, text: str, limit: int = 80) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        if (
            page.evaluate("document.activeElement && document.activeElement.textContent.trim()")
            == text
        ):
            return
    raise AssertionError(f"{text!r} was not reached with Tab")


def test_manual_review_with_the_keyboard_only(world: ConsoleWorld, browser: Any) -> None:
    booking_id = create(world, world.a, 21, 15)
    to_manual_review(world.db, booking_id)
    page = signed_in(browser, world, world.a)
    page.goto(world.base + "/review")
    focus_by_tab(page, f"Resolve #{booking_id}")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=f"Resolve booking #{booking_id}")).to_be_visible()
    # The first table choice, then the reason, then the button: all by keyboard.
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.type") == "radio":
            break
    page.keyboard.press("Space")
    assert page.evaluate("document.activeElement.checked") is True
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.tagName") == "TEXTAREA":
            break
    page.keyboard.type("confirmed by phone")
    focus_by_tab(page, "Force confirm", limit=5)
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text(f"Booking {booking_id} confirmed")
    assert state(world, booking_id) == "confirmed"
    page.context.close()


def test_another_restaurants_staff_see_none_of_it(world: ConsoleWorld, browser: Any) -> None:
    booking_id = create(world, world.a, 20, 45)
    to_manual_review(world.db, booking_id)
    day = tomorrow_at(20).date().isoformat()
    page = signed_in(browser, world, world.b)
    for path in (
        f"/?date={day}",
        "/review",
        f"/floor?date={day}&restaurant={world.a.restaurant_id}",
        "/health",
    ):
        page.goto(world.base + path)
        body = page.locator("body").inner_text()
        assert world.a.name not in body and "Console A" not in body, path
        assert f"#{booking_id}" not in body, path
    answer = page.goto(f"{world.base}/bookings/{booking_id}")
    assert answer is not None and answer.status == 404
    answer = page.goto(f"{world.base}/review/{booking_id}")
    assert answer is not None and answer.status == 404
    page.context.close()
    assert state(world, booking_id) == "manual_review"


def test_no_serious_accessibility_violation_on_any_page(world: ConsoleWorld, browser: Any) -> None:
    booking_id = create(world, world.a, 17, 30)
    to_manual_review(world.db, booking_id)
    day = tomorrow_at(17).date().isoformat()
    anonymous = browser.new_page()
    anonymous.goto(world.base + "/login")
    found = {"/login": axe_violations(anonymous)}
    anonymous.goto(world.base + "/docs")
    found["/docs"] = axe_violations(anonymous)
    anonymous.close()
    page = signed_in(browser, world, world.a)
    for path in (
        f"/?date={day}",
        "/review",
        f"/review/{booking_id}",
        f"/bookings/{booking_id}",
        f"/floor?date={day}",
        "/health",
        "/bookings/9007199254740991",
    ):
        page.goto(world.base + path)
        found[path] = axe_violations(page)
    page.context.close()
    bad = {path: format_violations(v) for path, v in found.items() if v}
    assert not bad, bad

"""The real-browser test setup works: Playwright drives Debian's /usr/bin/chromium (no
downloaded browser), axe-core finds serious accessibility violations where there are some and
none where there are none, and the keyboard reaches and activates a button.

A missing Chromium fails these tests rather than skipping them: CI installs it through the
Makefile's APT_PACKAGES, so its absence is a broken setup."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.py import browser as browser_helpers
from tests.py.browser import axe_violations, format_violations, launch_chromium

GOOD_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Accessible page</title></head>
<body>
<main>
  <h1>Confirm the booking</h1>
  <p>Table for two at 19:30.</p>
  <button type="button" id="confirm">Confirm</button>
  <p id="status" role="status"></p>
</main>
<script>
  document.getElementById("confirm").addEventListener("click", () => {
    document.getElementById("status").textContent = "Booking confirmed";
  });
</script>
</body>
</html>
"""

# An image without alt text and an input without a label: both "critical" in axe-core.
BAD_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Inaccessible page</title></head>
<body>
<main>
  <h1>Floor plan</h1>
  <img src="plan.png" width="10" height="10">
  <input type="text" name="guests">
</main>
</body>
</html>
"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A static HTTP server on 127.0.0.1 serving the two pages; yields its base URL."""
    root: Path = tmp_path_factory.mktemp("site")
    (root / "good.html").write_text(GOOD_PAGE)
    (root / "bad.html").write_text(BAD_PAGE)
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    browser_helpers.require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context()
    page = context.new_page()
    page.set_default_timeout(5000)
    try:
        yield page
    finally:
        context.close()


def test_launches_debian_chromium(chromium: Any) -> None:
    assert browser_helpers.have_chromium()
    # Debian's build, not one that Playwright downloaded.
    assert chromium.version.split(".")[0].isdigit(), chromium.version


def test_good_page_has_no_serious_violations(page: Any, site: str) -> None:
    page.goto(f"{site}/good.html")
    violations = axe_violations(page)
    assert violations == [], format_violations(violations)


def test_bad_page_has_serious_violations(page: Any, site: str) -> None:
    page.goto(f"{site}/bad.html")
    violations = axe_violations(page)
    ids = {v["id"] for v in violations}
    assert {"image-alt", "label"} <= ids, format_violations(violations)
    for v in violations:
        assert v["impact"] in ("serious", "critical")
        assert v["help"] and v["targets"], v
    image_alt = next(v for v in violations if v["id"] == "image-alt")
    assert image_alt["targets"] == ["img"], image_alt


def test_keyboard_tab_and_enter_activate_the_button(page: Any, site: str) -> None:
    page.goto(f"{site}/good.html")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement && document.activeElement.id")
    assert focused == "confirm"
    page.keyboard.press("Enter")
    status = page.locator("#status")
    status.wait_for(state="attached")
    page.wait_for_function("document.getElementById('status').textContent === 'Booking confirmed'")
    assert status.text_content() == "Booking confirmed"


def test_missing_chromium_fails_instead_of_skipping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(browser_helpers, "CHROMIUM", "/nonexistent/chromium")
    assert not browser_helpers.have_chromium()
    with pytest.raises(pytest.fail.Exception, match="chromium"):
        browser_helpers.require_chromium()

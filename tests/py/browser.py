"""Real-browser test helpers: Debian's Chromium driven by Playwright for Python, and axe-core
(bundled in the axe-playwright-python package) for accessibility checks.

Nothing here downloads a browser: `playwright install` is never needed, because Playwright
launches the Debian package's /usr/bin/chromium (installed by `make apt` from the Makefile's
APT_PACKAGES). A missing Chromium is a broken setup, so tests should call `require_chromium()`,
which fails (never skips) with a message that says how to install it.

Typical use::

    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        page = browser.new_page()
        page.goto(url)
        assert axe_violations(page) == [], format_violations(axe_violations(page))
        browser.close()
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"

# Flags for a headless Chromium on a machine without a GPU, a display or a network other than
# loopback. Without the background-networking/component-update/sync flags, Chromium keeps
# trying (and failing) to reach Google's hosts; --disable-dev-shm-usage keeps shared memory in
# /tmp (Debian's wrapper adds it too when /dev/shm looks small). Playwright itself adds
# --headless, --remote-debugging-pipe and a fresh temporary --user-data-dir.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)

SERIOUS = ("serious", "critical")


def have_chromium() -> bool:
    """Whether Debian's Chromium is installed where the browser tests expect it."""
    return os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)


def require_chromium() -> None:
    """Fail the calling test (not skip) when Chromium is missing: CI installs it via the
    Makefile, so its absence means the setup is broken."""
    if not have_chromium():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's chromium package "
            "(run `make apt`, or `apt-get install -y chromium fonts-dejavu-core`); "
            "`playwright install` is not used",
            pytrace=False,
        )


def launch_chromium(playwright: Any, **kwargs: Any) -> Any:
    """Launch headless Debian Chromium through Playwright (a `playwright.sync_api.Playwright`,
    e.g. from `sync_playwright()`); returns the Browser. Extra keyword arguments go to
    `playwright.chromium.launch` (e.g. `slow_mo=`)."""
    require_chromium()
    args = list(CHROMIUM_ARGS) + list(kwargs.pop("args", ()))
    return playwright.chromium.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=args,
        **kwargs,
    )


def _target(selector: Any) -> str:
    # axe gives a node's target as a list of CSS selectors; an entry is itself a list when the
    # node sits inside a shadow root or an iframe (one selector per level).
    if isinstance(selector, list):
        return " >>> ".join(_target(s) for s in selector)
    return str(selector)


def axe_violations(
    page: Any,
    impacts: Iterable[str] = SERIOUS,
    context: str | list[Any] | dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Run axe-core on the page's current document and return its violations whose impact is
    in `impacts`, each as {"id", "impact", "help", "targets": [selector, ...]}, so that
    `assert not violations, format_violations(violations)` reads well on failure.
    `context` is axe's context (a selector, or {"include": ..., "exclude": ...})."""
    # Imported here so that merely importing this module needs no axe package.
    from axe_playwright_python.sync_playwright import Axe

    wanted = set(impacts)
    results = Axe().run(page, context=context)
    found = []
    for violation in results.response["violations"]:
        if violation.get("impact") not in wanted:
            continue
        found.append(
            {
                "id": violation["id"],
                "impact": violation["impact"],
                "help": violation["help"],
                "targets": [
                    ", ".join(_target(s) for s in node["target"]) for node in violation["nodes"]
                ],
            }
        )
    return found


def format_violations(violations: list[dict[str, Any]]) -> str:
    """One line per violation, for assertion messages."""
    return "\n".join(
        f"{v['id']} ({v['impact']}): {v['help']} at {'; '.join(v['targets'])}" for v in violations
    )

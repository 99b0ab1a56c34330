"""Headless Chromium for the browser tests (Debian's `chromium` package, driven
by Playwright). Tests that need it are marked `needs_browser`: skipped when
Chromium or the `playwright` package is missing, unless GENSEQ_REQUIRE_BROWSER=1
(CI after .ci/browser), where that is a failure. Never runs `playwright install`:
it uses the system Chromium. The `browser` fixture lives in conftest.py."""
import os
import shutil

import pytest

CHROMIUM = shutil.which(os.environ.get("GENSEQ_CHROMIUM") or "chromium") or shutil.which("chromium-browser")
REQUIRED = os.environ.get("GENSEQ_REQUIRE_BROWSER") == "1"
try:
    from playwright.sync_api import sync_playwright
except ImportError:
    sync_playwright = None

MISSING = ("Chromium not found (apt-get install chromium, or set GENSEQ_CHROMIUM)" if not CHROMIUM else
           "the playwright Python package is missing (pip install playwright)" if sync_playwright is None else None)
if MISSING and REQUIRED:
    raise RuntimeError(f"GENSEQ_REQUIRE_BROWSER=1 but {MISSING}; run .ci/browser")
needs_browser = pytest.mark.skipif(MISSING is not None, reason=f"browser test: {MISSING}")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--force-color-profile=srgb"]


def launch(pw):
    """A headless Chromium (Playwright gives every launch a fresh temporary profile)."""
    return pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)


def open_studio(browser, url: str, timeout_ms: int = 120_000, **context):
    """The studio page at `url`, loaded and ready. The page's CSP forbids eval, which
    Playwright's wait_for_function needs, so the context bypasses it."""
    ctx = browser.new_context(**{"viewport": {"width": 1100, "height": 900}, "bypass_csp": True, **context})
    page = ctx.new_page()
    page.set_default_timeout(timeout_ms)
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']")
    return page

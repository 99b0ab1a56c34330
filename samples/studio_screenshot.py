"""The studio's picture for the README and docs: samples/studio.png.

    python samples/studio_screenshot.py

Starts the studio's server with the bundled models, opens it in headless
Chromium (.ci/browser), writes a short letter at the default quality and
seed 1, lets the pen finish, and saves the page as a PNG.
"""
from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

TEXT = "Dear Ada, meet me at 7:45 by the station.\nCall me on 020 7946 0321. Yours, Charles"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--out", type=Path, default=HERE / "studio.png", help="the PNG to write")
    out = ap.parse_args().out
    from chromium import MISSING, launch, open_studio, sync_playwright
    if MISSING:
        sys.exit(f"needs a browser: {MISSING}")
    from genseq.studio import StudioServer, StudioSession
    srv = StudioServer(StudioSession(), 0)
    threading.Thread(target=srv.serve, daemon=True).start()
    with sync_playwright() as pw:
        browser = launch(pw)
        page = open_studio(browser, srv.url, viewport={"width": 1100, "height": 880})
        page.fill("#text", TEXT)
        page.fill("#seed", "1")
        page.click("#write")
        page.wait_for_function("window.studioLog.some(e => e[0] === 'done')")
        page.click("#skip")
        page.wait_for_timeout(500)
        page.screenshot(path=str(out))
        browser.close()
    srv.shutdown()
    print(out)


if __name__ == "__main__":
    main()

"""The studio through a real browser: from pressing Write to the first ink on screen.

    python bench/studio.py [--rounds 5] [--json out.json]

Starts `genseq studio`'s server in this process (bundled models, loaded once:
the server is warm), opens the page in headless Chromium (.ci/browser), and
for each quality presses Write on a 40-character text and waits until the
first line has ink in the page's SVG. Seeds change every round, so no answer
is cached. Also reports when the first line is final and when the whole text
is done. A figure is the median over the rounds; the rounds of the qualities
alternate, so a busy machine slows each alike.
"""
from __future__ import annotations

import statistics
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import _common as C  # noqa: E402

TEXT = "Meet me at the station at 7:45 tomorrow."  # 40 characters


def main() -> None:
    p = C.parser(__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    C.set_threads(args.threads)
    from chromium import MISSING, launch, open_studio, sync_playwright
    if MISSING:
        sys.exit(f"bench/studio.py needs a browser: {MISSING}")
    from genseq.studio import StudioServer, StudioSession
    srv = StudioServer(StudioSession(), 0)
    threading.Thread(target=srv.serve, daemon=True).start()
    qualities = ["fast", "best"] if not args.quick else ["fast"]
    rounds = 1 if args.quick else args.rounds
    got: dict[str, dict[str, list[float]]] = {q: {"first_ink": [], "first_final": [], "done": []} for q in qualities}
    with sync_playwright() as pw:
        browser = launch(pw)
        page = open_studio(browser, srv.url)
        page.fill("#text", TEXT)
        for r in range(rounds + 1):  # round 0 warms up
            for q in (qualities if r % 2 else qualities[::-1]):
                page.select_option("#quality", q)
                page.fill("#seed", str(100 + r))
                page.click("#write")
                page.wait_for_function("window.studioLog.some(e => e[0] === 'done')")
                log = page.evaluate("window.studioLog")
                if r == 0:
                    continue
                when = {what: next(t for w, line, t in log if w == what and line in (0, -1))
                        for what in ("ink", "final", "done")}
                got[q]["first_ink"].append(when["ink"] / 1000)
                got[q]["first_final"].append(when["final"] / 1000)
                got[q]["done"].append(when["done"] / 1000)
        browser.close()
    srv.shutdown()
    results = {"machine": C.machine(), "text": TEXT, "rounds": rounds,
               "seconds": {q: {k: statistics.median(v) for k, v in d.items()} for q, d in got.items()},
               "all": got}
    rows = [[q, *(results["seconds"][q][k] for k in ("first_ink", "first_final", "done"))] for q in qualities]
    text = C.table(f"studio: Write to ink on screen, {len(TEXT)} characters ({C.where(results['machine'])})",
                   ["quality", "first ink s", "first line final s", "all done s"], rows,
                   [f"median of {rounds} rounds; server warm; headless Chromium"])
    C.emit(args, results, text)


if __name__ == "__main__":
    main()

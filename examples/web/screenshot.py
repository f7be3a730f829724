"""Take the demo page's screenshot (examples/web/screenshot.png) the way a person uses it: draw two items with the
mouse and add them to "my examples", fine-tune one epoch of the training slice with them, draw a third item for the
live guess, and save the whole page. Needs what examples/web/prepare.py writes, Playwright for Python and Debian's
chromium (no browser download):

    python examples/web/screenshot.py [--out examples/web/screenshot.png]

Prints the page's result (steps, images, seconds, held-out accuracy before and after).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # tests.js_harness: the static server and the Chromium launch the tests use

from tests.js_harness import chromium_page, draw_on_pad, serve  # noqa: E402

# Strokes in fractions of the drawing pad, drawn with the thick brush.
TROUSERS = [
    [(0.3, 0.12), (0.7, 0.12)],
    [(0.33, 0.12), (0.3, 0.9)],
    [(0.67, 0.12), (0.7, 0.9)],
    [(0.45, 0.15), (0.55, 0.15)],
]
T_SHIRT = [
    [(0.15, 0.3), (0.35, 0.18), (0.65, 0.18), (0.85, 0.3)],
    [(0.35, 0.25), (0.35, 0.85), (0.65, 0.85), (0.65, 0.25)],
    [(0.45, 0.3), (0.45, 0.8)],
    [(0.55, 0.3), (0.55, 0.8)],
]
BAG = [
    [(0.2, 0.45), (0.8, 0.45), (0.8, 0.85), (0.2, 0.85), (0.2, 0.55), (0.8, 0.55), (0.8, 0.7), (0.2, 0.7)],
    [(0.35, 0.45), (0.4, 0.25), (0.6, 0.25), (0.65, 0.45)],
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "examples" / "web" / "screenshot.png"), help="PNG to write")
    args = parser.parse_args(argv)
    with serve(ROOT) as base, chromium_page() as page:
        page.set_viewport_size({"width": 960, "height": 900})
        page.goto(base + "examples/web/")
        page.wait_for_function("window.demoReady === true || window.demoError !== undefined", timeout=120_000)
        if page.evaluate("window.demoError"):
            raise SystemExit(f"The demo page failed: {page.text_content('#error')}")
        page.select_option("#brush", "thick")
        for strokes, name in ((TROUSERS, "Trouser"), (T_SHIRT, "T-shirt/top")):
            draw_on_pad(page, strokes, steps=8)
            page.select_option("#example-class", name)
            page.click("#add")
        page.click("#train")
        page.wait_for_function("window.demoResult !== undefined || window.demoError !== undefined", timeout=600_000)
        result = page.evaluate("window.demoResult")
        draw_on_pad(page, BAG, steps=8)
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=args.out, full_page=True)
        print(json.dumps({**result, "status": page.text_content("#status")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

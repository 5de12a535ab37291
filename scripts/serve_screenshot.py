"""Refresh the README's screenshot of the editor: docs/images/serve_editor.png.

Runs the browser test that builds a graph, drags a box, undoes, loads examples/sheep.json
and resizes the sheep, and asks it to copy its last screenshot into docs/images/. Needs Chromium
(apt-get install chromium) and the dev extra (playwright).

    python scripts/serve_screenshot.py [--out docs/images/serve_editor.png]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST = "tests/test_serve_browser.py::test_build_drag_undo_load_and_errors"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "images" / "serve_editor.png"))
    args = ap.parse_args()
    env = {**os.environ, "SG2IMG_DOCS_SCREENSHOT": str(Path(args.out).resolve()), "CI": "1"}
    rc = subprocess.call([sys.executable, "-m", "pytest", "-q", TEST], cwd=ROOT, env=env)
    if rc == 0:
        print(f"wrote {args.out}")
    return rc


if __name__ == "__main__":
    sys.exit(main())

"""The editor page in a real headless Chromium (Debian's package) driven by Playwright: the
fixtures and helpers of the ``test_serve_browser*.py`` files.

The server is the real one (uvicorn on a free 127.0.0.1 port) with the bundled model, so the
pictures mean something: moving the sheep's box moves the sheep in the image. It also offers
``tiny`` (32 px, no attributes) and ``spatial`` (per-object noise). Screenshots go to the
test's tmp folder.

Skipped only when no Chromium (or no Playwright) is found and ``CI`` is not set; in CI a
missing browser is a failure.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 60_000
STARTER = ["sky", "grass", "sheep", "tree", "cloud"]   # the page's example graph
STATE_FORMAT = "sg2img-editor-state"


def _missing(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the browser tests (.ci/run installs chromium)")
    pytest.skip(f"{reason}; install it with: apt-get install chromium (CI=1 makes this a "
                f"failure)")


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright is not installed (pip install 'sg2img[dev]')")
    path = _chromium()
    if path is None:
        _missing("no Chromium found on PATH")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    pytest.importorskip("uvicorn", reason="the serve extra is not installed")
    from sg2img import load_model
    from sg2img.checkpoint import export_inference
    from sg2img.config import Config
    from sg2img.model import GALSGenerator
    from sg2img.serve import EditorServer, ModelRegistry, ServedModel
    from sg2img.vocab import Vocab

    vocab = Vocab.from_names(["sky", "grass", "sheep", "tree"], ["above", "below", "inside"])
    cfg = Config.from_preset("tiny")
    torch.manual_seed(0)
    gen = GALSGenerator(cfg.model, vocab.num_objects, vocab.num_preds)
    tiny = export_inference(tmp_path_factory.mktemp("model") / "tiny.pt", cfg, vocab, gen)
    # A model with per-object noise (model.renderer.noise=spatial): its objects get "another look".
    cfg = Config.from_preset("tiny", ["model.renderer.noise=spatial"])
    torch.manual_seed(0)
    gen = GALSGenerator(cfg.model, vocab.num_objects, vocab.num_preds)
    spatial = export_inference(tmp_path_factory.mktemp("model") / "spatial.pt", cfg, vocab, gen)
    registry = ModelRegistry([ServedModel("default", "bundled model", load_model(None, "cpu")),
                              ServedModel("tiny", "tiny.pt", load_model(tiny, "cpu")),
                              ServedModel("spatial", "spatial.pt", load_model(spatial, "cpu"))])
    srv = EditorServer(registry, "127.0.0.1", 0).start()
    yield srv.url
    srv.stop()


def new_page(browser, width=1440, height=960):
    """A page in a fresh browser context (its own localStorage); returns (page, errors)."""
    context = browser.new_context(viewport={"width": width, "height": height},
                                  device_scale_factor=1, accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return pg, errors


def page_errors(errors):
    # 4xx answers the page asked for show up as console errors ("Failed to load resource").
    return [e for e in errors if "Failed to load resource" not in e]


@pytest.fixture
def page(browser, server):
    pg, errors = new_page(browser)
    yield pg
    pg.context.close()
    assert not page_errors(errors), errors


def open_page(page, url, empty=False, hash_=""):
    page.goto(url + ("#empty" if empty else hash_))
    page.wait_for_selector("body[data-ready='1']")


def decode(data_url: str) -> np.ndarray:
    raw = base64.b64decode(data_url.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"), dtype=np.float32) / 255.0


def image_src(page) -> str | None:
    return page.get_attribute("[data-testid=image]", "src")


def wait_image_change(page, old):
    page.wait_for_function("(old) => { const s = document.getElementById('image').src;"
                           " return s && s !== old && !document.body.classList.contains('busy'); }",
                           arg=old or "")
    return image_src(page)


def wait_idle(page):
    page.wait_for_function("() => !document.body.classList.contains('busy')")


def add_object(page, name, pred=None, target=None):
    page.fill("[data-testid=add-name]", name)
    if pred is not None:
        page.select_option("#add-pred", pred)
        page.select_option("#add-target", str(target))
    page.click("#add-object button[type=submit]")


def object_names(page):
    return [page.input_value(f"#obj-name-{i}")
            for i in range(page.locator("[data-testid=objects] > li").count())]


def history_labels(page):
    return page.locator("[data-testid=history] .what").all_inner_texts()


def shot(page, tmp_path, name):
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def box_of(page, i):
    """Object i's box in the layout, as fractions of the frame (x0, y0, x1, y1)."""
    frame = page.locator("[data-testid=layout]").bounding_box()
    b = page.locator(f"[data-testid=box-{i}]").bounding_box()
    return [(b["x"] - frame["x"]) / frame["width"], (b["y"] - frame["y"]) / frame["height"],
            (b["x"] + b["width"] - frame["x"]) / frame["width"],
            (b["y"] + b["height"] - frame["y"]) / frame["height"]]


def grab_point(page, i):
    """A point of object i's box that no smaller box covers (its centre when free)."""
    b = page.locator(f"[data-testid=box-{i}]").bounding_box()
    for fy in (0.5, 0.35, 0.65, 0.2, 0.8):
        for fx in (0.5, 0.35, 0.65, 0.2, 0.8, 0.1, 0.9):
            x, y = b["x"] + fx * b["width"], b["y"] + fy * b["height"]
            hit = page.evaluate("([x, y]) => { const e = document.elementFromPoint(x, y);"
                                " const b = e && e.closest('.box'); return b ? b.dataset.index"
                                " : null; }", [x, y])
            if hit == str(i):
                return x, y
    raise AssertionError(f"every point of box {i} is covered by another box")


def drag_box(page, i, dx_frac, dy_frac=0.0, steps=10):
    """Drag object i's box by fractions of the layout frame (the page pins it on release)."""
    frame = page.locator("[data-testid=layout]").bounding_box()
    cx, cy = grab_point(page, i)
    page.mouse.move(cx, cy)
    page.mouse.down()
    for k in range(1, steps + 1):
        page.mouse.move(cx + dx_frac * frame["width"] * k / steps,
                        cy + dy_frac * frame["height"] * k / steps)
    page.mouse.up()


def sideways(box, limit=0.45):
    """How far to drag a box sideways (fraction of the frame), towards the side with more room."""
    left, right = box[0], 1 - box[2]
    return -min(left, limit) if left >= right else min(right, limit)


def open_menu(page):
    if not page.locator("[data-testid=downloads]").evaluate("d => d.open"):
        page.click("[data-testid=downloads] > summary")


def pack_state(state: dict | str | bytes) -> str:
    """A link hash for a state: deflated (raw) JSON in base64url, as the page packs it."""
    raw = state if isinstance(state, bytes) else (
        state if isinstance(state, str) else json.dumps(state)).encode()
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    packed = c.compress(raw) + c.flush()
    return "#state=" + base64.urlsafe_b64encode(packed).decode().rstrip("=")


def snapshot(objects, relationships, seed, *, sample=0, pins=None, label="", kind="new",
             edits=(), attributes=None):
    """One history entry of an editor state (a new layout, or ``edits`` from it)."""
    graph = {"objects": list(objects), "relationships": [list(r) for r in relationships]}
    if attributes is not None:
        graph["attributes"] = attributes
    pins = pins or [None] * len(objects)
    base = dict(graph)
    if any(pins):
        base["boxes"] = pins
    return {"graph": graph, "pins": pins, "seed": seed, "sample": sample, "base": base,
            "edits": list(edits), "label": label or f"seed {seed}", "kind": kind}


def editor_state(history, current=None, model="default"):
    return {"format": STATE_FORMAT, "version": 1, "model": model,
            "current": len(history) - 1 if current is None else current, "history": history}

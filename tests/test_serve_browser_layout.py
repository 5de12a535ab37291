"""The editor page in a real headless Chromium at several window widths: nothing overflows
sideways, the download menu stays on screen, history numbers are never cut; screenshots at
900, 1280 and 1920 px go to the test's tmp folder (fixtures in ``browser_fixtures.py``)."""

import json

import pytest
from browser_fixtures import (
    ROOT,
    editor_state,
    new_page,
    open_menu,
    open_page,
    page_errors,
    snapshot,
    wait_image_change,
)

STREET = ROOT / "examples" / "attributes" / "street.json"

# The widest element's right edge and the document's scroll width, against the window's.
OVERFLOW = """() => {
  const w = document.documentElement.clientWidth;
  const out = [];
  for (const e of document.querySelectorAll('body *')) {
    const r = e.getBoundingClientRect();
    if (r.width && (r.right > w + 0.5 || r.left < -0.5)) {
      out.push(`${e.tagName.toLowerCase()}#${e.id}.${e.className} ${r.left}..${r.right}`);
    }
  }
  return {width: w, scroll: document.documentElement.scrollWidth, out: out.slice(0, 8)};
}"""


@pytest.mark.parametrize("width", [900, 1280, 1920])
def test_no_sideways_overflow_and_screenshots(browser, server, tmp_path, width):
    pg, errors = new_page(browser, width=width, height=900)
    try:
        open_page(pg, server, empty=True)
        pg.set_input_files("[data-testid=json-file]", str(STREET))
        wait_image_change(pg, None)
        pg.click("#obj-name-3")                 # the attribute picker shows on the selected row
        fit = pg.evaluate(OVERFLOW)
        assert fit["scroll"] <= fit["width"] and not fit["out"], fit
        # The pictures sit side by side and are not squeezed below a useful size.
        image = pg.locator("[data-testid=image]").bounding_box()
        assert image["width"] >= 200, image
        pg.evaluate("window.scrollTo(0, 0)")
        pg.screenshot(path=str(tmp_path / f"editor_{width}.png"), full_page=True)

        open_menu(pg)
        panel = pg.locator("#downloads .menu-panel").bounding_box()
        assert panel["x"] >= 0 and panel["x"] + panel["width"] <= width, panel
        assert pg.evaluate(OVERFLOW)["scroll"] <= width
        pg.screenshot(path=str(tmp_path / f"editor_{width}_menu.png"))
        assert not page_errors(errors), errors
    finally:
        pg.context.close()


def test_long_history_numbers_are_fully_visible(browser, server, tmp_path):
    history = [snapshot(["sky", "grass"], [[0, "above", 1]], seed=k, label=f"new seed {k}")
               for k in range(14)]
    pg, errors = new_page(browser, width=900, height=900)
    try:
        state = tmp_path / "state.json"
        state.write_text(json.dumps(editor_state(history, current=11)))
        open_page(pg, server, empty=True)
        pg.set_input_files("[data-testid=json-file]", str(state))
        pg.wait_for_function("() => document.querySelectorAll('#history li').length === 14")
        assert pg.inner_text("[data-testid=seed]") == "11"
        items = pg.locator("[data-testid=history] li")
        for k in (9, 11, 13):
            num = items.nth(k).locator(".num")
            assert num.inner_text() == str(k + 1)
            fits = num.evaluate("""e => {
                const r = e.getBoundingClientRect(), l = e.closest('ol').getBoundingClientRect();
                return e.scrollWidth <= e.clientWidth && r.left >= l.left && r.right <= l.right;
            }""")
            assert fits, k
        assert "current" in items.nth(11).get_attribute("class")     # current: the 12th
        pg.locator("[data-testid=history]").screenshot(path=str(tmp_path / "history.png"))
        assert not page_errors(errors), errors
    finally:
        pg.context.close()

"""The editor page in a real headless Chromium: its state (graph, seed, sample, pins, the
history of edit chains) survives a reload, travels in a link and a file, and a bad or hostile
link is refused with a message and a clean start (fixtures in ``browser_fixtures.py``)."""

import json

import numpy as np
from browser_fixtures import (
    STARTER,
    box_of,
    decode,
    drag_box,
    editor_state,
    history_labels,
    image_src,
    new_page,
    object_names,
    open_menu,
    open_page,
    pack_state,
    page_errors,
    sideways,
    snapshot,
    wait_image_change,
)

STORAGE_KEY = "sg2img.editor.state.v1"


def shown(page):
    """What the page shows of its state: graph JSON, seed, sample, history, picture, pins."""
    return {"json": page.input_value("[data-testid=json]"),
            "seed": page.inner_text("[data-testid=seed]"),
            "sample": page.inner_text("[data-testid=sample]"),
            "history": history_labels(page), "image": image_src(page),
            "pinned": [page.get_attribute(f"[data-testid=unpin-{i}]", "class").split().count("on")
                       for i in range(len(object_names(page)))]}


def test_reload_restores_graph_seed_sample_pins_and_history(page, server):
    open_page(page, server)
    assert object_names(page) == STARTER
    page.click("#samples-btn")
    page.locator("[data-testid=sample-1]").wait_for()
    picked = page.get_attribute("[data-testid=sample-1] img", "src")
    page.click("[data-testid=sample-1]")
    assert image_src(page) == picked
    drag_box(page, 2, sideways(box_of(page, 2), 0.3))
    wait_image_change(page, picked)
    before = shown(page)
    assert before["pinned"][2] == 1 and '"boxes"' in before["json"]
    assert len(before["history"]) == 3

    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    page.wait_for_function("() => !!document.getElementById('image').src")
    after = shown(page)
    assert after == before
    assert not page.locator("[data-testid=notice]").is_visible()   # no message needed

    # The history came back without pictures: undo asks the server for the sample again and
    # gets the very picture that was picked; redo the dragged one.
    page.click("#undo")
    assert wait_image_change(page, before["image"]) == picked
    assert page.inner_text("[data-testid=seed]") == before["seed"]
    page.click("#redo")
    assert image_src(page) == before["image"]


def test_a_link_and_a_file_carry_the_state(browser, page, server, tmp_path):
    open_page(page, server)
    src = image_src(page)
    drag_box(page, 2, sideways(box_of(page, 2), 0.3))
    wait_image_change(page, src)
    here = shown(page)
    page.click("#share")
    field = page.locator("[data-testid=share-url]")
    field.wait_for()
    link = field.input_value()
    assert link.startswith(server) and "#state=" in link
    open_menu(page)
    with page.expect_download() as info:
        page.click("#dl-state")
    saved = tmp_path / "state.json"
    info.value.save_as(saved)

    # The link elsewhere (a new browser profile): the same graph, pins, seed and picture; the
    # link carries the current snapshot and its edit chain, and is taken once.
    other, errors = new_page(browser)
    try:
        other.goto(link)
        other.wait_for_selector("body[data-ready='1']")
        there = shown(other)
        assert {k: there[k] for k in ("json", "seed", "sample", "image", "pinned")} == \
            {k: here[k] for k in ("json", "seed", "sample", "image", "pinned")}
        assert there["history"] == here["history"][-1:]
        assert "restored" in other.inner_text("[data-testid=notice]")
        assert other.evaluate("location.hash") == ""
        assert not page_errors(errors), errors

        # The file: the whole history.
        open_page(other, server, empty=True)
        other.set_input_files("[data-testid=json-file]", str(saved))
        other.wait_for_function("() => document.querySelectorAll('#history li').length === 2")
        assert shown(other)["history"] == here["history"]
        assert image_src(other) == here["image"]

        # A broken state file leaves the page as it was.
        bad = tmp_path / "bad_state.json"
        bad.write_text(json.dumps(editor_state([snapshot(["sky"], [], seed=-5)])))
        other.set_input_files("[data-testid=json-file]", str(bad))
        other.wait_for_function("() => document.getElementById('notice').innerText"
                                ".includes('unchanged')")
        assert "history[0].seed" in other.inner_text("[data-testid=notice]")
        assert shown(other)["history"] == here["history"]

        # The link pasted into the open page (only the hash changes) is taken as well.
        other.evaluate("(h) => { location.hash = h; }", link[link.index("#"):])
        other.wait_for_function("() => document.querySelectorAll('#history li').length === 1")
        other.wait_for_function("() => !document.body.classList.contains('busy')")
        assert shown(other)["image"] == here["image"]
        assert other.evaluate("location.hash") == ""
    finally:
        other.context.close()


def test_a_links_sample_goes_into_every_request(page, server):
    sent = []

    def forward(route):
        sent.append(dict(route.request.post_data_json))
        route.continue_()

    page.route("**/api/generate", forward)
    page.route("**/api/manipulate", forward)
    state = editor_state([snapshot(["sky", "grass", "sheep"], [[0, "above", 1], [2, "inside", 1]],
                                   seed=7, sample=3, label="shared")])
    open_page(page, server, hash_=pack_state(state))
    assert object_names(page) == ["sky", "grass", "sheep"]
    assert (page.inner_text("[data-testid=seed]"), page.inner_text("[data-testid=sample]")) == \
        ("7", "3")
    assert sent[-1]["seed"] == 7 and sent[-1]["sample"] == 3
    assert "--seed 7 --sample 3" in page.inner_text("[data-testid=command]")
    src = image_src(page)
    drag_box(page, 2, sideways(box_of(page, 2), 0.3))
    wait_image_change(page, src)
    assert sent[-1]["seed"] == 7 and sent[-1]["sample"] == 3
    assert sent[-1]["edits"][0]["op"] == "move"


def _hostile_links():
    ok = snapshot(["sky", "grass"], [[0, "above", 1]], seed=1)
    bad_snap = [
        dict(ok, graph={"objects": [1, 2], "relationships": []}),
        dict(ok, graph={"objects": ["sky"], "relationships": [[0, "above", 5]]}),
        dict(ok, pins=[[0, 0, 2, 1], None]),
        dict(ok, pins=[[0.1, 0.1, 0.2], None]),
        dict(ok, seed=-1),
        dict(ok, seed=1.5),
        dict(ok, sample="0"),
        dict(ok, kind="<script>"),
        dict(ok, edits=[{"op": "move", "index": 0, "box": [0, 0, 1, 1]}], base=None),
        dict(ok, graph={"objects": ["x" * 5000], "relationships": []}),
    ]
    return [
        ("#state=%%%not-base64", "base64url"),
        ("#state=" + "A" * 70_000, "characters long"),
        ("#state=" + "_" * 400, "deflated"),    # 0xff...: a block type deflate does not have
        (pack_state(b" " * 5_000_000), "inflates to more"),
        (pack_state(b"\xff\xfe\x00garbage"), "UTF-8"),
        (pack_state("hello"), "not valid JSON"),
        (pack_state("[" * 100_000), "not valid JSON"),
        (pack_state({"format": "something else"}), "format"),
        (pack_state(dict(editor_state([ok]), version=99)), "version"),
        (pack_state(editor_state([ok] * 500)), "history"),
        (pack_state(editor_state([ok], current=3)), "current"),
        *[(pack_state(editor_state([s])), "history[0]") for s in bad_snap],
        # Well-formed, but the server cannot draw it: refused as well.
        (pack_state(editor_state([snapshot(["dragon"], [], seed=1)])), "unknown object name"),
    ]


def test_hostile_links_are_refused_with_a_message_and_a_clean_start(browser, server):
    for hash_, reason in _hostile_links():
        pg, errors = new_page(browser)
        try:
            open_page(pg, server, hash_=hash_)
            pg.wait_for_function("() => !!document.getElementById('image').src")
            note = pg.locator("[data-testid=notice]")
            assert note.is_visible(), hash_[:80]
            text = note.inner_text()
            assert "cannot be" in text and reason in text, (hash_[:80], text)
            assert "starts clean" in text
            assert object_names(pg) == STARTER, hash_[:80]
            assert pg.evaluate("location.hash") == ""
            assert not page_errors(errors), (hash_[:80], errors)
        finally:
            pg.context.close()


def test_a_hostile_label_is_text_and_proto_keys_pollute_nothing(page, server):
    label = '<img src=x onerror="window.pwned=1">'
    snap = snapshot(["sky", "grass"], [[0, "above", 1]], seed=2, label=label)
    raw = json.dumps(editor_state([snap]))
    raw = raw.replace('"format"', '"__proto__": {"polluted": 1}, "format"', 1)
    open_page(page, server, hash_=pack_state(raw))
    assert object_names(page) == ["sky", "grass"]
    assert history_labels(page) == [label]
    assert page.evaluate("() => [window.pwned, ({}).polluted, "
                         "document.querySelectorAll('#history img').length]") == [None, None, 0]


def test_a_broken_kept_state_is_dropped_with_a_message(page, server):
    open_page(page, server)
    page.evaluate(f"localStorage.setItem('{STORAGE_KEY}', '{{\"format\": \"sg2img-editor-state\"')")
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    assert "kept from your last visit cannot be used" in page.inner_text("[data-testid=notice]")
    assert object_names(page) == STARTER
    kept = json.loads(page.evaluate(f"localStorage.getItem('{STORAGE_KEY}')"))
    assert kept["history"][-1]["label"] == "example graph"


def _inside(box, shape):
    """(H, W) bool: pixels whose centre lies in the box (sg2img.manipulation.boxes_region)."""
    H, W = shape[:2]
    ys, xs = (np.arange(H) + 0.5) / H, (np.arange(W) + 0.5) / W
    return (((ys >= box[1]) & (ys <= box[3]))[:, None]
            & ((xs >= box[0]) & (xs <= box[2]))[None, :])


def test_an_edit_changes_little_outside_the_moved_box(page, server):
    """New seed, then drag a box: outside the box (before and after) the picture stays.

    Needs a server whose manipulate starts its chain from exactly the picture that generate
    gave for the graph, seed and sample; the page's numbers are checked against the server's
    own ``change_outside``.
    """
    open_page(page, server)
    for _ in range(3):
        src = image_src(page)
        with page.expect_response("**/api/generate") as gen:
            page.click("#new-seed")
        src = wait_image_change(page, src)
        first = gen.value.json()
        old = first["objects"][2]["box"]
        with page.expect_response("**/api/manipulate") as man:
            drag_box(page, 2, sideways(box_of(page, 2), 0.3))
        moved = wait_image_change(page, src)
        answer = man.value.json()
        new = answer["objects"][2]["box"]
        before, after = decode(src), decode(moved)
        outside = ~(_inside(old, after.shape) | _inside(new, after.shape))
        change = float(np.abs(after - before).mean(axis=2)[outside].mean())
        server_change = answer["steps"][-1]["change_outside"]
        assert change <= 0.04, (first["seed"], change)
        assert abs(change - server_change) <= 0.005, (first["seed"], change, server_change)
        page.click("[data-testid=unpin-2]")      # next round from the model's layout
        wait_image_change(page, moved)

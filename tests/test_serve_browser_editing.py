"""The editor page in a real headless Chromium: attributes through the whole editor, the
attribute picker, predicate selects, the warning for pinned boxes against relationships,
larger image downloads and the layout exports (fixtures in ``browser_fixtures.py``)."""

import json
import random

from browser_fixtures import (
    ROOT,
    STARTER,
    box_of,
    decode,
    drag_box,
    history_labels,
    image_src,
    object_names,
    open_menu,
    open_page,
    sideways,
    wait_idle,
    wait_image_change,
)
from PIL import Image

STREET = ROOT / "examples" / "attributes" / "street.json"


def requests_to(page, path):
    """The JSON bodies the page posts to ``path``, as they are sent."""
    bodies = []
    page.on("request", lambda r: bodies.append(r.post_data_json)
            if r.url.endswith(path) and r.method == "POST" else None)
    return bodies


def json_panel(page):
    return json.loads(page.input_value("[data-testid=json]"))


def test_attributes_survive_load_drag_download_and_the_picker_sends_edits(page, server,
                                                                         tmp_path):
    open_page(page, server, empty=True)
    sent = requests_to(page, "/api/manipulate")
    page.set_input_files("[data-testid=json-file]", str(STREET))
    src = wait_image_change(page, None)
    want = [[], [], [], ["red"], ["blue"]]
    assert json_panel(page)["attributes"] == want
    assert page.inner_text("[data-testid=tag-3]").startswith("3 red car")
    assert page.inner_text("[data-testid=tag-4]").startswith("4 blue person")
    assert page.inner_text("[data-testid=attr-3-red]").startswith("red")

    # Drag the car: the edit chain starts from the graph with its attributes, and the car
    # stays red (the answer's graph and the JSON panel keep them).
    drag_box(page, 3, sideways(box_of(page, 3), 0.2))
    src = wait_image_change(page, src)
    assert sent[-1]["graph"]["attributes"] == want
    assert sent[-1]["edits"][-1]["op"] == "move"
    assert json_panel(page)["attributes"] == want
    assert "boxes" in json_panel(page)
    assert page.inner_text("[data-testid=tag-3]").startswith("3 red car")

    # The download keeps them too.
    open_menu(page)
    with page.expect_download() as info:
        page.click("#dl-json")
    path = tmp_path / "graph.json"
    info.value.save_as(path)
    assert json.loads(path.read_text())["attributes"] == want

    # The picker: select the wall, give it "brick" (the attributes edit), then take the car's
    # red away by its chip.
    assert not page.locator("[data-testid=attr-add-1]").is_visible()   # until selected
    page.click("#obj-name-1")
    picker = page.locator("[data-testid=attr-add-1]")
    picker.wait_for(state="visible")
    options = picker.locator("option").all_inner_texts()
    # The bundled model's class table: a wall is only ever brick in its data.
    assert options == ["+ attribute", "brick"]
    picker.select_option("brick")
    src = wait_image_change(page, src)
    assert sent[-1]["edits"][-1] == {"op": "attributes", "index": 1, "attributes": ["brick"]}
    assert json_panel(page)["attributes"] == [[], ["brick"], [], ["red"], ["blue"]]
    assert page.inner_text("[data-testid=tag-1]").startswith("1 brick wall")
    assert "brick wall" in history_labels(page)[-1]

    page.click("[data-testid=attr-3-red]")
    wait_image_change(page, src)
    assert sent[-1]["edits"][-1] == {"op": "attributes", "index": 3, "attributes": []}
    assert json_panel(page)["attributes"] == [[], ["brick"], [], [], ["blue"]]
    assert page.inner_text("[data-testid=tag-3]").startswith("3 car")
    assert page.locator("[data-testid=attr-3-red]").count() == 0

    # Undo brings the red car back, from the history, without asking the server.
    page.click("#undo")
    assert json_panel(page)["attributes"][3] == ["red"]


def test_the_picker_paints_the_car_blue_for_three_seeds(page, server):
    """street.json's red car made blue with the picker, after three new seeds: the shipped
    colour classifier names the car's crop, in the picture the page shows, blue."""
    import torch

    from sg2img.eval import crop_boxes, load_shipped_net

    clf = load_shipped_net("AttributeClassifier")
    labels = clf.labels()
    open_page(page, server, empty=True)
    seeds = set()
    for _ in range(3):
        src = image_src(page)
        page.set_input_files("[data-testid=json-file]", str(STREET))
        src = wait_image_change(page, src)
        with page.expect_response("**/api/generate") as gen:
            page.click("#new-seed")
        src = wait_image_change(page, src)
        seeds.add(gen.value.json()["seed"])
        page.click("[data-testid=attr-3-red]")              # take red away
        src = wait_image_change(page, src)
        page.click("#obj-name-3")
        picker = page.locator("[data-testid=attr-add-3]")
        picker.wait_for(state="visible")
        with page.expect_response("**/api/manipulate") as man:
            picker.select_option("blue")
        src = wait_image_change(page, src)
        answer = man.value.json()
        assert answer["graph"]["attributes"][3] == ["blue"]
        image = torch.from_numpy(decode(src)).permute(2, 0, 1)[None] * 2 - 1
        box = torch.tensor([answer["objects"][3]["box"]])
        with torch.no_grad():
            read = labels[int(clf(crop_boxes(image, box, torch.tensor([0]),
                                             clf.crop_size)).argmax(1))]
        assert read == "blue", (gen.value.json()["seed"], read)
    assert len(seeds) == 3


def test_attribute_picker_hidden_for_a_model_without_attributes(page, server):
    open_page(page, server, empty=True)
    page.fill("[data-testid=json]", '{"objects": ["sky", "grass"], "relationships": '
                                    '[[0, "above", 1]], "attributes": [[], ["green"]]}')
    page.click("#json-load")
    src = wait_image_change(page, None)
    assert page.locator("[data-testid=attr-1-green]").count() == 1
    page.click("#obj-name-0")
    assert page.locator("[data-testid=attr-add-0]").is_visible()

    # 'tiny' has no attributes: switching drops them (and says so), and no picker shows.
    page.select_option("[data-testid=model]", "tiny")
    wait_image_change(page, src)
    assert page.input_value("[data-testid=model]") == "tiny"
    assert "attributes: they are dropped" in history_labels(page)[-1]
    assert "attributes" not in json_panel(page)
    page.click("#obj-name-0")
    assert page.locator(".attrs").count() == 0
    assert page.locator("[data-testid^=attr-add-]").count() == 0


def test_predicates_are_selects_of_the_models_predicates(page, server):
    open_page(page, server)
    assert object_names(page) == STARTER
    preds = ["left of", "right of", "above", "below", "inside", "surrounding"]
    assert page.locator("#rel-p option").all_inner_texts()[1:] == preds
    rel0 = page.locator("[data-testid=rel-p-0]")
    assert rel0.evaluate("e => e.tagName") == "SELECT"
    assert rel0.locator("option").all_inner_texts() == preds
    assert rel0.input_value() == "above"

    sent = requests_to(page, "/api/manipulate")
    src = image_src(page)
    rel0.select_option("below")
    wait_image_change(page, src)
    assert sent[-1]["edits"][-1] == {"op": "predicate", "relationship": 0, "predicate": "below",
                                     "move": "subject"}
    assert page.locator("[data-testid=rel-p-0]").input_value() == "below"

    # The add form: a select too; a new relationship between existing objects.
    src = image_src(page)
    page.select_option("#rel-s", "3")
    page.select_option("#rel-p", "left of")
    page.select_option("#rel-o", "1")
    page.click("#add-rel button[type=submit]")
    wait_image_change(page, src)
    assert [3, "left of", 1] in json_panel(page)["relationships"]


def test_relation_rule_mirrors_the_metric(page, server):
    """geometry.js gives the predicate sg2img.data.common.spatial_predicate gives with box
    centres (what relation_satisfaction counts), boundaries and containment included."""
    from sg2img.data.common import spatial_predicate
    from sg2img.vocab import COCO_PREDICATES

    open_page(page, server, empty=True)
    rng = random.Random(0)
    pairs = []
    for _ in range(400):
        def box():
            x0, y0 = rng.random() * 0.8, rng.random() * 0.8
            return [x0, y0, x0 + 0.05 + rng.random() * 0.2, y0 + 0.05 + rng.random() * 0.2]
        pairs.append([box(), box()])
    s = [0.4, 0.4, 0.6, 0.6]     # the sector boundaries exactly: 45 and 135 degrees
    pairs += [[s, [0.2, 0.2, 0.4, 0.4]], [s, [0.6, 0.2, 0.8, 0.4]], [s, [0.2, 0.6, 0.4, 0.8]],
              [s, [0.6, 0.6, 0.8, 0.8]], [s, [0.1, 0.1, 0.9, 0.9]], [[0.1, 0.1, 0.9, 0.9], s],
              [s, [0.4, 0.4, 0.6, 0.6]], [s, [0.4, 0.1, 0.6, 0.3]]]
    got = page.evaluate("async (pairs) => { const g = await import('/static/geometry.js');"
                        " return pairs.map(([a, b]) => g.spatialPredicate(a, b)); }", pairs)

    def centre(b):
        return [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2]

    want = [COCO_PREDICATES[spatial_predicate(a, b, centre(a), centre(b))] for a, b in pairs]
    assert got == want
    assert len(set(want)) == 6


def test_a_pin_against_a_relationship_warns_without_blocking(page, server):
    open_page(page, server)   # the example: sky above grass
    warning = page.locator("[data-testid=layout-warning]")
    assert not warning.is_visible()
    sky = box_of(page, 0)
    src = image_src(page)
    drag_box(page, 0, 0, 0.95 - sky[3])       # the sky to the bottom of the picture
    src = wait_image_change(page, src)        # applied all the same
    warning.wait_for(state="visible")
    text = warning.inner_text()
    assert "but the graph says sky above grass" in text and "sky (pinned) is" in text
    assert '[0, "above", 1]' in page.input_value("[data-testid=json]")
    # Unpinning lets the model place the sky again: the warning goes.
    page.click("[data-testid=unpin-0]")
    wait_image_change(page, src)
    assert not warning.is_visible()


def test_image_download_sizes_and_layout_exports(page, server, tmp_path):
    open_page(page, server, empty=True)
    page.set_input_files("[data-testid=json-file]", str(STREET))
    wait_image_change(page, None)
    for scale in (1, 2, 4):
        open_menu(page)
        page.select_option("[data-testid=dl-scale]", str(scale))
        with page.expect_download() as info:
            page.click("#dl-image")
        path = tmp_path / info.value.suggested_filename
        info.value.save_as(path)
        with Image.open(path) as im:
            assert im.size == (64 * scale, 64 * scale), (scale, im.size)
    assert "4× · 256 px" in page.locator("[data-testid=dl-scale] option").all_text_contents()

    # The layout exports go through POST /api/export: what the page sends is recorded on the
    # way, and every file of the server's answer is saved.
    sent = []

    def record(route):
        sent.append(route.request.post_data_json)
        route.continue_()

    page.route("**/api/export", record)
    downloads = []
    page.on("download", lambda d: downloads.append(d))
    expected = {"gligen": {"layout_gligen.json"}, "seg": {"layout_seg.png", "layout_seg.json"},
                "coco": {"layout_coco.json"}}
    for fmt in ("gligen", "seg", "coco"):
        open_menu(page)
        page.click(f"#export-{fmt}")
        wait_idle(page)
        for _ in range(100):
            if len(downloads) >= len(expected[fmt]):
                break
            page.wait_for_timeout(50)
        names = {d.suggested_filename for d in downloads}
        if fmt == "gligen":
            path = tmp_path / "gligen.json"
            downloads[0].save_as(path)
            gligen = json.loads(path.read_text())
            assert "red car" in gligen["gligen_phrases"]
            assert len(gligen["gligen_boxes"]) == 5
        downloads.clear()
        assert names == expected[fmt], names
    assert [b["format"] for b in sent] == ["gligen", "seg", "coco"]
    body = sent[0]
    assert body["graph"]["objects"] == ["sky", "wall", "road", "car", "person"]
    assert body["graph"]["attributes"][3] == ["red"]
    assert body["seed"] == int(page.inner_text("[data-testid=seed]")) and body["sample"] == 0
    assert body["model"] == "default" and "boxes" not in body     # nothing pinned

"""Layouts for other renderers (``sg2img.layout_export``, ``sg2img layout``, ``/api/export``):
each export read back and compared with the layout ``generate`` drew."""

import base64
import dataclasses
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as mask_utils

from sg2img import generate, load_model
from sg2img.cli import main
from sg2img.data.coco import CocoSceneGraphDataset
from sg2img.data.shapes import shapes_vocab
from sg2img.files import OutputError
from sg2img.layout_export import (
    EXPORT_FORMATS,
    NO_OBJECT,
    LayoutExportError,
    LayoutFile,
    class_map,
    gligen_inputs,
    graph_caption,
    layout_files,
    to_coco,
    to_gligen,
    to_segmentation,
    write_layout,
)
from sg2img.scene_graph import SceneGraph
from sg2img.testing import random_model_export
from sg2img.vis import class_palette
from sg2img.vocab import Vocab

STREET = {"objects": ["sky", "wall", "road", "car", "person", "umbrella"],
          "relationships": [[0, "above", 1], [1, "above", 2], [3, "inside", 2],
                            [4, "left of", 3], [5, "above", 4]],
          "attributes": [[], ["brick"], [], ["red"], ["blue"], []]}
SHEEP = {"objects": ["sky", "grass", "sheep", "tree"],
         "relationships": [[0, "above", 1], [2, "inside", 1], [3, "left of", 2]]}


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> str:
    """A random tiny model with the procedural scenes' vocabulary, attributes included, and a
    sampling layout head (its layout depends on the seed and the sample)."""
    return str(random_model_export(tmp_path_factory.mktemp("model") / "tiny.pt", shapes_vocab(),
                                   ["model.layout.head=sample"]))


@pytest.fixture(scope="module")
def model(ckpt):
    return load_model(ckpt, "cpu")


@pytest.fixture(scope="module")
def result(model):
    return generate([STREET, SHEEP], model, seed=3, return_layout=True)


def _write(path: Path, data) -> str:
    path.write_text(json.dumps(data))
    return str(path)


# ------------------------------------------------------------------------ gligen
def test_caption_reads_the_graph():
    g = SceneGraph.from_dict({"objects": ["car", "road", "sky-other", "umbrella"],
                              "relationships": [[0, "on", 1], [2, "above", 1]],
                              "attributes": [["red"], [], [], []]})
    assert graph_caption(g) == "a red car on a road, sky above the road, an umbrella"


def test_gligen_fields_by_name_type_and_range(result, model):
    out = to_gligen(result, 0)
    assert set(out) == {"prompt", "gligen_phrases", "gligen_boxes"}
    assert isinstance(out["prompt"], str) and "a red car inside the road" in out["prompt"]
    assert out["gligen_phrases"] == ["sky", "brick wall", "road", "red car", "blue person",
                                     "umbrella"]
    boxes = np.array(out["gligen_boxes"])
    assert boxes.shape == (6, 4) and all(isinstance(v, float) for b in out["gligen_boxes"]
                                         for v in b)
    assert (boxes >= 0).all() and (boxes <= 1).all()
    assert (boxes[:, 2] >= boxes[:, 0]).all() and (boxes[:, 3] >= boxes[:, 1]).all()
    np.testing.assert_allclose(boxes, result.boxes[0].clamp(0, 1).numpy(), atol=1e-4)
    # The JSON is the pipeline's keyword arguments as they are.
    assert json.loads(json.dumps(out)) == out
    with pytest.raises(LayoutExportError, match="one per object"):
        gligen_inputs(result.graphs[0], result.boxes[0][:2])


# ------------------------------------------------------------------------ seg
def test_segmentation_is_the_argmax_of_the_layout(result, model):
    for k in range(len(result)):
        im, info = to_segmentation(result, k)
        ids = np.asarray(im)
        assert im.mode == "P" and im.size == (model.image_size, model.image_size)
        want = result.layout[k].argmax(dim=0).numpy()
        np.testing.assert_array_equal(ids, want)
        graph_ids = {model.vocab.object_idx(n) for n in result.graphs[k].objects}
        assert set(np.unique(ids)) <= graph_ids | {NO_OBJECT}
        assert len(set(np.unique(ids)) & graph_ids) >= 2
        # Palette and class list agree with each other, the vocabulary and vis.
        palette = np.array(im.getpalette()[:3 * model.vocab.num_objects]).reshape(-1, 3)
        np.testing.assert_array_equal(palette, class_palette(model.vocab.num_objects))
        assert info["palette"] == palette.tolist() and info["no_object"] == NO_OBJECT
        names = {c["id"]: c["name"] for c in info["classes"]}
        assert names[NO_OBJECT] == "no object"
        assert all(names[i] == model.vocab.object_names[i] for i in graph_ids)
        assert [o["class_id"] for o in info["objects"]] == \
            [model.vocab.object_idx(n) for n in result.graphs[k].objects]
        # The streaming class map at the model's size is the same argmax.
        again = class_map(result.graphs[k], result.boxes[k], result.masks[k], model.vocab,
                          model.image_size)
        assert (again == want).mean() > 0.999


def test_segmentation_at_another_size_is_the_same_layout(result, model):
    small = np.asarray(to_segmentation(result, 0)[0])
    im, info = to_segmentation(result, 0, size=4 * model.image_size)
    big = np.asarray(im)
    assert big.shape == (4 * model.image_size,) * 2 and info["size"] == list(big.shape)
    nearest = big[2::4, 2::4]               # the pixel centres of the model-size grid
    assert (nearest == small).mean() > 0.95
    with pytest.raises(LayoutExportError, match="8..4096"):
        to_segmentation(result, 0, size=5000)


def test_seg_png_and_json_files_agree(result, model, tmp_path):
    files = layout_files(result, "seg", names=["street", "sheep"])
    assert [(f.name, f.media_type) for f in files] == [
        ("street_seg.png", "image/png"), ("street_seg.json", "application/json"),
        ("sheep_seg.png", "image/png"), ("sheep_seg.json", "application/json")]
    write_layout(files, tmp_path)
    with Image.open(tmp_path / "street_seg.png") as im:
        assert im.mode == "P"
        ids = np.asarray(im)
    info = json.loads((tmp_path / "street_seg.json").read_text())
    assert info["image"] == "street_seg.png"
    np.testing.assert_array_equal(ids, result.layout[0].argmax(dim=0).numpy())
    names = {c["id"]: c["name"] for c in info["classes"]}
    assert {names[int(v)] for v in np.unique(ids)} <= {"no object", *STREET["objects"]}


def test_seg_refuses_a_vocabulary_a_palette_cannot_hold(result):
    big = Vocab.from_names([f"c{i}" for i in range(300)], ["above"])
    with pytest.raises(LayoutExportError, match="301 object classes.*'coco'"):
        to_segmentation(dataclasses.replace(result, vocab=big), 0)


# ------------------------------------------------------------------------ coco
def test_coco_reads_back_through_our_loader(result, model, tmp_path):
    size = model.image_size
    write_layout(layout_files(result, "coco", names=["street_000", "sheep_000"],
                              coco_name="both.json"), tmp_path)
    data = json.loads((tmp_path / "both.json").read_text())
    assert [im["file_name"] for im in data["images"]] == ["street_000_s0.png",
                                                          "sheep_000_s0.png"]
    assert len(data["annotations"]) == len(STREET["objects"]) + len(SHEEP["objects"])
    ds = CocoSceneGraphDataset(tmp_path, tmp_path / "both.json", image_size=size,
                               min_object_size=0.0, min_objects=1, max_objects=64)
    assert ds.vocab.object_names == model.vocab.object_names
    assert len(ds) == 2
    ds.with_images = False
    for k in range(2):
        classes, boxes = ds.object_boxes(k)
        g = result.graphs[k]
        assert classes.tolist() == [model.vocab.object_idx(n) for n in g.objects]
        torch.testing.assert_close(boxes, result.boxes[k].clamp(0, 1), atol=0.01 / size,
                                   rtol=0)
        attrs = ds[k].attributes[:-1]
        assert [{ds.vocab.attribute_names[a] for a in torch.nonzero(row).flatten().tolist()}
                for row in attrs] == [set(a) for a in (g.attributes or [()] * len(boxes))]
    for ann in data["annotations"]:
        x, y, w, h = ann["bbox"]
        assert ann["iscrowd"] == 0 and ann["segmentation"]["size"] == [size, size]
        rle = dict(ann["segmentation"], counts=ann["segmentation"]["counts"].encode())
        m = mask_utils.decode(rle)
        assert ann["area"] == int(m.sum())
        rows, cols = np.nonzero(m)
        if len(rows):        # the mask lies in its box
            assert cols.min() >= x - 1 and cols.max() <= x + w + 1
            assert rows.min() >= y - 1 and rows.max() <= y + h + 1


def test_coco_categories_are_the_vocabulary(result, model):
    data = to_coco(result, [1], file_names=["a.png"], size=128)
    assert data["images"] == [{"id": 1, "file_name": "a.png", "width": 128, "height": 128}]
    assert {c["id"]: c["name"] for c in data["categories"]} == {
        i: n for i, n in enumerate(model.vocab.object_names) if i > 0}
    assert data["attributes"] == list(model.vocab.attribute_names)
    assert data["info"]["seed"] == 3


# ------------------------------------------------------------------------ files
def test_unknown_format_names_the_three(result):
    with pytest.raises(LayoutExportError, match="gligen, seg, coco"):
        layout_files(result, "png")


def test_write_layout_is_all_or_nothing(tmp_path):
    out = tmp_path / "out"
    files = [LayoutFile("a.json", "application/json", b"{}"),
             LayoutFile("a.json", "application/json", b"{}")]
    with pytest.raises(OutputError, match="twice"):
        write_layout(files, out)
    assert not out.exists()


# ------------------------------------------------------------------------ command line
def test_cli_layout_help_shows_the_formats(capsys):
    assert main(["layout", "--help"]) == 0
    out = capsys.readouterr().out
    assert "examples:" in out and all(f"--format {f}" in out for f in EXPORT_FORMATS)


def test_cli_layout_is_the_layout_generate_draws(ckpt, model, tmp_path, capsys):
    path = _write(tmp_path / "scenes.json", [STREET, SHEEP])
    out = tmp_path / "out"
    assert main(["layout", path, "--format", "gligen", "--checkpoint", ckpt, "--seed", "5",
                 "--device", "cpu", "--out", str(out)]) == 0
    assert "wrote 2 files" in capsys.readouterr().out
    full = generate([STREET, SHEEP], model, seed=5)
    for i in range(2):
        got = json.loads((out / f"scenes_{i:03d}_gligen.json").read_text())
        np.testing.assert_allclose(got["gligen_boxes"], full.boxes[i].clamp(0, 1).numpy(),
                                   atol=1e-4)
    # --index: graph 1's layout, which (the seed rule) is its layout alone too.
    assert main(["layout", path, "--format", "gligen", "--checkpoint", ckpt, "--seed", "5",
                 "--index", "1", "--device", "cpu", "--out", str(tmp_path / "one")]) == 0
    assert [p.name for p in (tmp_path / "one").iterdir()] == ["scenes_001_gligen.json"]
    one = json.loads((tmp_path / "one" / "scenes_001_gligen.json").read_text())
    np.testing.assert_allclose(one["gligen_boxes"], full.boxes[1].clamp(0, 1).numpy(),
                               atol=1e-4)
    alone = generate(SHEEP, model, seed=5).boxes[0].clamp(0, 1).numpy()
    np.testing.assert_allclose(one["gligen_boxes"], alone, atol=1e-4)
    # --sample K: the layout of sample K, named as generate names that picture.
    assert main(["layout", path, "--format", "coco", "--checkpoint", ckpt, "--seed", "5",
                 "--sample", "3", "--device", "cpu", "--out", str(tmp_path / "k")]) == 0
    coco = json.loads((tmp_path / "k" / "scenes_coco.json").read_text())
    assert [im["file_name"] for im in coco["images"]] == ["scenes_000_s3.png",
                                                          "scenes_001_s3.png"]
    third = generate([STREET, SHEEP], model, seed=5, first_sample=3)
    assert (third.boxes[1] - full.boxes[1]).abs().max() > 1e-3
    S = model.image_size
    got = [a["bbox"] for a in coco["annotations"] if a["image_id"] == coco["images"][1]["id"]]
    want = [[x0 * S, y0 * S, (x1 - x0) * S, (y1 - y0) * S]
            for x0, y0, x1, y1 in third.boxes[1].clamp(0, 1).tolist()]
    np.testing.assert_allclose(got, want, atol=1.0)


def test_cli_layout_seg_and_coco_files(ckpt, tmp_path):
    a = _write(tmp_path / "street.json", STREET)
    b = _write(tmp_path / "more.json", [SHEEP, STREET])
    out = tmp_path / "out"
    assert main(["layout", a, b, "--format", "seg", "--size", "48", "--checkpoint", ckpt,
                 "--device", "cpu", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "more_000_seg.json", "more_000_seg.png", "more_001_seg.json", "more_001_seg.png",
        "street_000_seg.json", "street_000_seg.png"]
    with Image.open(out / "more_001_seg.png") as im:
        assert im.mode == "P" and im.size == (48, 48)
    assert main(["layout", a, b, "--format", "coco", "--checkpoint", ckpt, "--device", "cpu",
                 "--out", str(out)]) == 0
    data = json.loads((out / "more_coco.json").read_text())
    assert [im["file_name"] for im in data["images"]] == ["more_000_s0.png", "more_001_s0.png"]


def test_cli_layout_errors(ckpt, tmp_path, capsys):
    path = _write(tmp_path / "g.json", SHEEP)
    out = tmp_path / "out"
    assert main(["layout", path, "--format", "png", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert all(f"'{f}'" in err for f in EXPORT_FORMATS)
    assert main(["layout", path, "--out", str(out)]) == 2
    assert "--format" in capsys.readouterr().err
    assert main(["layout", path, "--format", "seg", "--index", "1", "--checkpoint", ckpt,
                 "--out", str(out)]) == 2
    assert "--index 1 is out of range" in capsys.readouterr().err
    bad = _write(tmp_path / "bad.json", {"objects": ["sheep", "shep"]})
    assert main(["layout", bad, "--format", "coco", "--checkpoint", ckpt, "--device", "cpu",
                 "--out", str(out)]) == 2
    assert "bad.json" in (err := capsys.readouterr().err) and "'sheep'" in err
    assert not out.exists()


# ------------------------------------------------------------------------ server
def test_api_export_answers_the_three_formats(ckpt, model):
    pytest.importorskip("starlette", reason="the serve extra is not installed: pip install "
                                            "'sg2img[serve]'")
    pytest.importorskip("httpx2", reason="the test client needs httpx2 (the dev extra)")
    from starlette.testclient import TestClient

    from sg2img.serve import ModelRegistry, ServedModel, create_app

    registry = ModelRegistry([ServedModel("tiny", "tiny.pt", model)])
    pin = [None, None, None, [0.1, 0.5, 0.4, 0.9], None, None]
    want = generate(STREET, model, seed=7, boxes=pin, return_layout=True)
    with TestClient(create_app(registry)) as client:
        body = {"graph": STREET, "seed": 7, "boxes": pin}
        r = client.post("/api/export", json={**body, "format": "gligen"})
        assert r.status_code == 200, r.text
        got = r.json()
        assert (got["format"], got["seed"]) == ("gligen", 7)
        [f] = got["files"]
        assert (f["name"], f["media_type"]) == ("layout_gligen.json", "application/json")
        gl = json.loads(f["data"])
        assert gl == to_gligen(want) and gl["gligen_boxes"][3] == [0.1, 0.5, 0.4, 0.9]

        files = client.post("/api/export", json={**body, "format": "seg"}).json()["files"]
        assert [(f["name"], f["media_type"]) for f in files] == [
            ("layout_seg.png", "image/png"), ("layout_seg.json", "application/json")]
        with Image.open(io.BytesIO(base64.b64decode(files[0]["data"]))) as im:
            assert im.mode == "P"
            np.testing.assert_array_equal(np.asarray(im), np.asarray(to_segmentation(want)[0]))
        assert json.loads(files[1]["data"])["image"] == "layout_seg.png"

        files = client.post("/api/export", json={**body, "format": "coco"}).json()["files"]
        assert [f["name"] for f in files] == ["layout_coco.json"]
        assert json.loads(files[0]["data"])["images"][0]["file_name"] == "layout_s0.png"

        r = client.post("/api/export", json={**body, "format": "png"})
        assert r.status_code == 400
        err = r.json()["error"]
        assert err["field"] == "format" and err["choices"] == list(EXPORT_FORMATS)
        r = client.post("/api/export", json={**body, "format": "seg", "include": ["image"]})
        assert r.status_code == 400 and "unknown keys" in r.json()["error"]["message"]
        r = client.post("/api/export", json={"graph": {"objects": ["shep"]}, "format": "seg"})
        assert r.status_code == 400 and r.json()["error"]["field"] == "graph.objects[0]"

"""Objects given no attributes take their class's usual ones (the vocabulary's defaults).

The model never sees an object without attributes in the procedural data, so a graph that
gives none is encoded with the set each class most often has there.
"""

import json
from collections import Counter

import pytest
import torch

from sg2img.config import Config
from sg2img.data.coco import CocoSceneGraphDataset
from sg2img.edits import apply_edit
from sg2img.model import GALSGenerator
from sg2img.scene_graph import SceneGraph
from sg2img.vocab import Vocab, VocabError

NAMES = ["sky", "grass", "sheep", "tree", "cloud", "car"]
PREDS = ["left of", "right of", "above", "below", "inside", "surrounding"]
ATTRS = ("blue", "green", "white", "red", "black", "small", "large")
TABLE = {"sky": ["blue"], "grass": ["green"], "sheep": ["white", "small"], "tree": ["green"],
         "cloud": ["white"], "car": ["red", "black", "white", "small", "large"]}
DEFAULTS = {"sky": ["blue"], "grass": ["green"], "sheep": ["white"], "tree": ["green"],
            "cloud": ["white"], "car": ["red"]}
# examples/sheep.json, and the same graph with its objects' defaults written out.
SHEEP = {"objects": ["sky", "grass", "sheep", "tree", "cloud"],
         "relationships": [[0, "above", 1], [2, "inside", 1], [3, "left of", 2],
                           [4, "inside", 0]]}
SHEEP_SPELLED = {**SHEEP, "attributes": [["blue"], ["green"], ["white"], ["green"], ["white"]]}


def _vocab(defaults=DEFAULTS, table=TABLE) -> Vocab:
    return Vocab.from_names(NAMES, PREDS, ATTRS, class_attributes=table,
                            class_default_attributes=defaults)


def _rows(sample, vocab) -> list[list[str]]:
    """The attribute names of each object's row of an encoded graph (image node dropped)."""
    return [[vocab.attribute_names[j] for j in row.nonzero().flatten().tolist()]
            for row in sample.attributes[:-1]]


# ----------------------------------------------------------------------------- the table
def test_the_table_is_completed_stored_and_shown():
    v = _vocab({"sheep": ["white"], "car": ["red", "small"]})
    # Every object name gets an entry, in vocabulary order; a class left out gets none.
    assert v.class_default_attributes == {"sky": (), "grass": (), "sheep": ("white",),
                                          "tree": (), "cloud": (), "car": ("red", "small")}
    assert v.default_attribute_names("car") == ("red", "small")
    assert v.default_attribute_names("truck") is None
    d = v.to_dict()
    assert d["class_default_attributes"]["car"] == ["red", "small"]
    back = Vocab.from_dict(json.loads(json.dumps(d)))
    assert back.class_default_attributes == v.class_default_attributes
    assert back.class_attributes == v.class_attributes and back.to_dict() == d
    assert v.describe()["default_attributes"] == {n: list(a) for n, a in
                                                  v.class_default_attributes.items()}
    # Old vocabularies have no table; equality (what the weights index) ignores it.
    old = {k: val for k, val in d.items() if k != "class_default_attributes"}
    plain = Vocab.from_dict(old)
    assert plain.class_default_attributes is None and plain.default_attribute_names("car") is None
    assert plain.describe()["default_attributes"] is None and plain.to_dict() == old
    assert plain == v and hash(plain) == hash(v)


def test_defaults_without_a_class_table_are_allowed():
    v = Vocab.from_names(NAMES, PREDS, ATTRS, class_default_attributes={"car": ["blue"]})
    assert v.class_attributes is None and v.default_attribute_names("car") == ("blue",)


@pytest.mark.parametrize("table, message", [
    (["car"], "'class_default_attributes' must map object names to lists of attribute names"),
    ({"truck": ["red"]}, "'class_default_attributes' names 'truck', which is not an object "
                         "name of the vocabulary; list only its object names"),
    ({7: []}, "names 7, which is not an object name"),
    ({"__image__": []}, "names '__image__', which is not an object name"),
    ({"car": "red"}, "'class_default_attributes' of 'car' must be a list of at most 7 "
                     "attribute names"),
    ({"car": ["red"] * 1_000_000}, "must be a list of at most 7 attribute names"),
    ({"car": ["purple"]}, "'class_default_attributes' of 'car': 'purple' is not an attribute "
                          "name of the vocabulary; use names from 'attribute_idx_to_name'"),
    ({"car": [None]}, "None is not an attribute name"),
    ({"car": ["red", "red"]}, "'class_default_attributes' of 'car' lists an attribute twice"),
    ({f"o{i}": [] for i in range(7)}, "'class_default_attributes' has 7 entries but the "
                                      "vocabulary has 6 object names"),
    ({"sky": ["green"]}, "'class_default_attributes' of 'sky': 'green' is not among the "
                         "attributes sky takes \\('class_attributes': blue\\); give sky "
                         "defaults from those"),
    ({"car": ["red", "blue"]}, "'blue' is not among the attributes car takes"),
])
def test_a_bad_default_table_is_refused_naming_its_key(table, message):
    d = {**_vocab().to_dict(), "class_default_attributes": table}
    with pytest.raises(VocabError, match=message):
        Vocab.from_dict(d)


def test_a_default_table_needs_attributes():
    with pytest.raises(VocabError, match="vocab 'class_default_attributes' needs an attribute "
                                         "vocabulary; give 'attribute_idx_to_name' or remove "
                                         "'class_default_attributes'"):
        Vocab.from_names(["car"], ["above"], class_default_attributes={"car": []})


def test_a_checkpoint_with_a_bad_table_is_a_one_line_error(tmp_path, capsys):
    from sg2img.cli import main
    from sg2img.testing import random_model_export

    bad = random_model_export(tmp_path / "bad.pt", Vocab.from_names(["cow"], ["above"], ["red"]))
    ck = torch.load(bad, weights_only=True)
    ck["vocab"]["class_default_attributes"] = {"horse": []}
    torch.save(ck, bad)
    assert main(["vocab", "--checkpoint", str(bad)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "vocabulary is invalid" in err
    assert "'class_default_attributes' names 'horse', which is not an object name" in err


# ----------------------------------------------------------------------------- the loader
def _polygon_ann(i, image_id, category_id, attributes, x=0.0):
    return {"id": i, "image_id": image_id, "category_id": category_id, "iscrowd": 0,
            "bbox": [x, 0.0, 8.0, 8.0], "attributes": attributes,
            "segmentation": [[x, 0.0, x + 8, 0.0, x + 8, 8.0, x, 8.0]]}


def test_the_loader_breaks_ties_by_the_set_seen_first(tmp_path):
    """Counts by set, not list order; equal counts go to the set seen first."""
    (tmp_path / "images").mkdir()
    anns = [_polygon_ann(1, 1, 1, ["blue"]), _polygon_ann(2, 1, 2, ["small", "white"], 8),
            _polygon_ann(3, 2, 1, ["red"]), _polygon_ann(4, 2, 2, ["white", "small"], 8),
            _polygon_ann(5, 2, 2, ["white"], 16), _polygon_ann(6, 2, 3, [], 24)]
    data = {"images": [{"id": i, "file_name": f"{i}.png", "width": 32, "height": 32}
                       for i in (1, 2)],
            "categories": [{"id": 1, "name": "car"}, {"id": 2, "name": "sheep"},
                           {"id": 3, "name": "kite"}, {"id": 4, "name": "cow"}],
            "attributes": ["blue", "red", "small", "white"], "annotations": anns}
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(data))
    vocab = CocoSceneGraphDataset(tmp_path / "images", path, min_objects=1).vocab
    assert vocab.class_default_attributes == {"car": ("blue",), "sheep": ("small", "white"),
                                              "kite": (), "cow": ()}
    # Counted from the images used: the second alone has red cars and white sheep.
    second = CocoSceneGraphDataset(tmp_path / "images", path, min_objects=1,
                                   subset=slice(1, 2)).vocab
    assert second.default_attribute_names("car") == ("red",)
    assert second.default_attribute_names("sheep") == ("white", "small")
    # Files without attributes (real COCO-Stuff) give no table.
    for ann in anns:
        del ann["attributes"]
    del data["attributes"]
    path.write_text(json.dumps(data))
    assert CocoSceneGraphDataset(tmp_path / "images", path, min_objects=1
                                 ).vocab.class_default_attributes is None


@pytest.fixture(scope="module")
def shapes32(tmp_path_factory):
    """A small procedural dataset written by the real writer."""
    from sg2img.data.shapes import write_dataset

    out = tmp_path_factory.mktemp("shapes32")
    write_dataset(out, size=32, num_images={"val": 24}, seed=11, workers=1)
    return out


def _hand_count(root, images: int | None = None) -> dict[str, list[str]]:
    """Each class's most common attribute set in the annotation files, ties to the set seen
    first (images in file order, each image's instances before its stuff)."""
    files = [json.loads((root / "annotations" / f"{k}_val.json").read_text())
             for k in ("instances", "stuff")]
    order = [im["id"] for im in files[0]["images"]][:images]
    names = {c["id"]: c["name"] for f in files for c in f["categories"]}
    counts: dict[str, Counter] = {}
    first: dict[str, dict[frozenset, list[str]]] = {}
    for image_id in order:
        for f in files:
            for ann in f["annotations"]:
                if ann["image_id"] != image_id:
                    continue
                name, key = names[ann["category_id"]], frozenset(ann["attributes"])
                counts.setdefault(name, Counter())[key] += 1
                first.setdefault(name, {}).setdefault(key, ann["attributes"])
    table = {}
    for name, c in counts.items():
        top = max(c.values())
        table[name] = next(v for k, v in first[name].items() if c[k] == top)
    return table


def _everything(root, **kw) -> CocoSceneGraphDataset:
    """The val split with no object or image filtered out, so it counts what the files hold."""
    return CocoSceneGraphDataset(
        root / "images" / "val", root / "annotations" / "instances_val.json",
        root / "annotations" / "stuff_val.json", image_size=32, min_object_size=0.0,
        min_objects=0, max_objects=100, include_other=True, stuff_only=False, **kw)


def test_the_loader_counts_each_class_s_most_common_set_as_a_hand_count_does(shapes32):
    data = _everything(shapes32)
    files = [json.loads((shapes32 / "annotations" / f"{k}_val.json").read_text())
             for k in ("instances", "stuff")]
    assert sum(map(data.num_objects, range(len(data)))) == sum(len(f["annotations"])
                                                                for f in files)
    expected = _hand_count(shapes32)
    got = data.vocab.class_default_attributes
    assert {n: list(a) for n, a in got.items() if n in expected} == expected
    assert all(got[n] == () for n in got if n not in expected)      # never seen: none
    assert got["sky"] == ("blue",) and got["grass"] == ("green",) and got["cloud"] == ("white",)
    # A subset counts only its own images.
    part = _everything(shapes32, subset=slice(0, 5)).vocab.class_default_attributes
    few = _hand_count(shapes32, 5)
    assert {n: list(a) for n, a in part.items() if a or n in few} == few
    # The defaults are within the class table counted from the same rows.
    assert all(set(a) <= set(data.vocab.class_attributes[n]) for n, a in got.items())


# ----------------------------------------------------------------------------- encoding
def test_encode_fills_only_objects_without_attributes():
    vocab = _vocab()
    graph = SceneGraph.from_dict({**SHEEP, "objects": ["sky", "grass", "sheep", "car", "cloud"],
                                  "attributes": [[], ["green"], ["small"], ["black", "large"],
                                                 []]})
    assert _rows(graph.encode(vocab), vocab) == [["blue"], ["green"], ["small"],
                                                 ["black", "large"], ["white"]]
    assert graph.attributes[0] == () and graph.attributes[2] == ("small",)   # not modified
    bare = SceneGraph.from_dict(SHEEP)
    assert bare.drawn_attributes(vocab) == (("blue",), ("green",), ("white",), ("green",),
                                            ("white",))
    assert torch.equal(bare.encode(vocab).attributes,
                       SceneGraph.from_dict(SHEEP_SPELLED).encode(vocab).attributes)
    # A class whose default is no attributes, and a vocabulary without the table: zero rows.
    sparse = _vocab({"sky": ["blue"]})
    assert _rows(bare.encode(sparse), sparse) == [["blue"], [], [], [], []]
    assert bare.encode(_vocab(None)).attributes.sum() == 0


def test_from_sample_round_trips_through_encode():
    vocab = _vocab()
    sample = SceneGraph.from_dict(SHEEP).encode(vocab)
    back = SceneGraph.from_sample(sample, vocab)
    # The sample's attributes are the defaults the bare graph was drawn with: kept, by name.
    bare = SceneGraph.from_dict(SHEEP)
    assert back.objects == bare.objects and back.relationships == bare.relationships
    assert back.attributes == bare.drawn_attributes(vocab)
    assert torch.equal(back.encode(vocab).attributes, sample.attributes)
    # A sample whose objects carry other attributes keeps them (a dataset item, say).
    coloured = SceneGraph.from_dict({**SHEEP, "attributes": [[], [], ["small"], [],
                                                             []]}).encode(vocab)
    back = SceneGraph.from_sample(coloured, vocab)
    assert back.attributes[2] == ("small",)
    assert torch.equal(back.encode(vocab).attributes, coloured.attributes)


def test_edits_keep_the_attributes_they_set_and_replace_gives_the_new_class_s_defaults():
    vocab = _vocab()
    cars = {**SHEEP, "objects": ["sky", "grass", "sheep", "tree", "car"],
            "attributes": [[], [], [], [], ["black"]]}
    # An edit that sets attributes keeps them; setting none gives the class's defaults.
    res = apply_edit(cars, {"op": "attributes", "index": 2, "attributes": ["small"]}, vocab)
    assert _rows(res.graph.encode(vocab), vocab)[2] == ["small"]
    res = apply_edit(cars, {"op": "attributes", "index": 4, "attributes": []}, vocab)
    assert _rows(res.graph.encode(vocab), vocab)[4] == ["red"]
    # A replaced object keeps what its new class takes; left with none, it gets the defaults.
    res = apply_edit(cars, {"op": "replace", "index": 4, "object": "sheep"}, vocab)
    assert res.graph.attributes[4] == () and "drops black" in res.description
    assert _rows(res.graph.encode(vocab), vocab)[4] == ["white"]
    res = apply_edit(cars, {"op": "replace", "index": 2, "object": "car"}, vocab)
    assert _rows(res.graph.encode(vocab), vocab)[2] == ["red"]
    white_car = apply_edit({**cars, "attributes": [[], [], [], [], ["white"]]},
                           {"op": "replace", "index": 4, "object": "sheep"}, vocab)
    assert _rows(white_car.graph.encode(vocab), vocab)[4] == ["white"]


# ----------------------------------------------------------------------------- generating
def _export(path, vocab: Vocab):
    """A random generator whose attribute embedding dominates, exported with ``vocab``."""
    from sg2img.checkpoint import export_inference

    cfg = Config.from_preset("tiny")
    torch.manual_seed(0)
    gen = GALSGenerator(cfg.model, vocab.num_objects, vocab.num_preds, vocab.num_attributes)
    with torch.no_grad():
        gen.attr_embeddings.weight.mul_(20)
    return export_inference(path, cfg, vocab, gen)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The same weights with and without the default table in their vocabulary."""
    from sg2img.api import load_model

    tmp = tmp_path_factory.mktemp("defaults")
    return {k: load_model(_export(tmp / f"{k}.pt", v), "cpu")
            for k, v in (("table", _vocab()), ("plain", _vocab(None)))}


def test_generate_draws_a_bare_graph_as_its_defaults_written_out(models):
    from sg2img.api import generate

    for seed in (0, 5):
        bare = generate(SHEEP, models["table"], seed=seed)
        spelled = generate(SHEEP_SPELLED, models["table"], seed=seed)
        assert torch.equal(bare.tensors, spelled.tensors)
        assert bare.graphs[0].attributes is None        # the result keeps the graph as given
        without = generate(SHEEP, models["plain"], seed=seed)
        assert (without.tensors - bare.tensors).abs().max() > 1e-3
        # The model without the table draws the spelled-out graph as the one with it does.
        assert torch.equal(generate(SHEEP_SPELLED, models["plain"], seed=seed).tensors,
                           bare.tensors)


def test_manipulate_starts_from_generate_s_picture(models):
    from sg2img.api import generate
    from sg2img.manipulation import manipulate

    model = models["table"]
    res = manipulate(SHEEP, [{"op": "attributes", "index": 2, "attributes": ["small"]},
                             {"op": "replace", "index": 3, "object": "car"}], model, seed=3)
    assert torch.equal(res.tensors[0], generate(SHEEP, model, seed=3).tensors[0])
    assert res.graphs[1].attributes[2] == ("small",)
    assert (res.tensors[1] - res.tensors[0]).abs().max() > 1e-3


def test_the_cli_draws_a_bare_graph_as_its_defaults(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    from sg2img.cli import main

    ckpt = _export(tmp_path / "m.pt", _vocab())
    for name, graph in (("bare", SHEEP), ("spelled", SHEEP_SPELLED)):
        (tmp_path / f"{name}.json").write_text(json.dumps(graph))
        assert main(["generate", str(tmp_path / f"{name}.json"), "--checkpoint", str(ckpt),
                     "--seed", "2", "--out", str(tmp_path / name)]) == 0
    bare, spelled = (np.asarray(Image.open(tmp_path / n / f"{n}_000_s0.png"))
                     for n in ("bare", "spelled"))
    assert np.array_equal(bare, spelled)
    assert main(["vocab", "--checkpoint", str(ckpt)]) == 0
    out = capsys.readouterr().out
    assert "  sheep  white, small (given none: white)" in out
    assert "  car    red, black, white, small, large (given none: red)" in out


def test_layout_exports_describe_objects_with_the_attributes_they_were_drawn_with(models):
    from sg2img.api import generate
    from sg2img.layout_export import to_coco, to_gligen, to_segmentation

    bare = generate(SHEEP, models["table"], seed=0, return_layout=True)
    spelled = generate(SHEEP_SPELLED, models["table"], seed=0, return_layout=True)
    assert to_gligen(bare) == to_gligen(spelled)
    assert to_segmentation(bare)[1] == to_segmentation(spelled)[1]
    assert ([a["attributes"] for a in to_coco(bare)["annotations"]]
            == [a["attributes"] for a in to_coco(spelled)["annotations"]])
    plain = generate(SHEEP, models["plain"], seed=0, return_layout=True)
    assert to_gligen(plain)["gligen_phrases"] != to_gligen(bare)["gligen_phrases"]

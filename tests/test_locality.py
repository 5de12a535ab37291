"""How local edits and resampling are (sg2img.locality), on a random tiny model and a few
procedural scenes."""

import random

import pytest
import torch

from sg2img.api import load_model
from sg2img.checkpoint import export_inference
from sg2img.config import Config
from sg2img.data import build_dataset
from sg2img.data.shapes import shapes_vocab, write_dataset
from sg2img.locality import EDIT_KINDS, edit_locality, nan_mean, random_box, random_edit
from sg2img.model import GALSGenerator
from sg2img.scene_graph import SceneGraph


@pytest.fixture(scope="module")
def model_and_data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("locality")
    vocab = shapes_vocab()
    cfg = Config.from_preset("tiny")
    torch.manual_seed(0)
    gen = GALSGenerator(cfg.model, vocab.num_objects, vocab.num_preds)
    model = load_model(export_inference(tmp / "tiny.pt", cfg, vocab, gen), "cpu")
    write_dataset(tmp / "data", size=32, num_images={"val": 4}, workers=1)
    data_cfg = Config.from_preset("tiny", [f"data.root={tmp / 'data'}"]).data
    return model, build_dataset(data_cfg, "val", cfg.model.renderer.image_size,
                                cfg.model.layout.mask_size)


def test_edit_locality_measures_every_kind(model_and_data):
    model, dataset = model_and_data
    figures = edit_locality(model, dataset, edits=2, seed=0)
    assert list(figures) == ["two_seed_change", "kinds"]
    assert list(figures["kinds"]) == list(EDIT_KINDS)
    for row in figures["kinds"].values():
        assert row["count"] == 2
        assert 0 <= row["outside"] <= 1 and 0 < row["region_fraction"] <= 1
    assert figures["two_seed_change"] > 0


def test_random_edits_fit_their_graph():
    vocab = shapes_vocab()
    names, preds = vocab.user_object_names(), vocab.user_pred_names()
    rng = random.Random(0)
    lone = SceneGraph(("sky",))
    assert random_edit("remove", lone, names, preds, rng) is None
    assert random_edit("predicate", lone, names, preds, rng) is None
    graph = SceneGraph(("sky", "grass", "sheep"), ((0, "above", 1), (2, "inside", 1)))
    for kind in EDIT_KINDS:
        edit = random_edit(kind, graph, names, preds, rng)
        assert edit["op"] == kind
    replaced = random_edit("replace", graph, names, preds, rng)
    assert replaced["object"] != graph.objects[replaced["index"]]
    with pytest.raises(ValueError, match="unknown edit kind 'swap'"):
        random_edit("swap", graph, names, preds, rng)
    x0, y0, x1, y1 = random_box(rng)
    assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1 and 0.15 <= x1 - x0 <= 0.45


def test_nan_mean_skips_nan():
    assert nan_mean([1.0, float("nan"), 3.0]) == 2.0
    assert nan_mean([float("nan")]) != nan_mean([float("nan")])          # nan

"""The Python API on a randomly initialised tiny model: loading, generation, manipulation."""

import copy
import json
import math
from pathlib import Path

import pytest
import torch
from PIL import Image

from sg2img import bundled
from sg2img.api import GenerationError, generate, load_model
from sg2img.checkpoint import CheckpointError, export_inference
from sg2img.edits import EditError
from sg2img.manipulation import manipulate
from sg2img.scene_graph import SceneGraph, SceneGraphError
from sg2img.testing import random_model_export
from sg2img.vocab import Vocab

NAMES = ["sky", "grass", "sheep", "tree", "water", "boat"]
PREDS = ["left of", "right of", "above", "below", "standing on", "inside", "surrounding"]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    vocab = Vocab.from_names(NAMES, PREDS)
    return random_model_export(tmp_path_factory.mktemp("model") / "tiny.pt", vocab)


@pytest.fixture(scope="module")
def model(ckpt):
    return load_model(ckpt, "cpu")


SHEEP = {"objects": ["sky", "grass", "sheep"],
         "relationships": [[0, "above", 1], [2, "standing on", 1]]}
LAKE = {"objects": ["sky", "water", "boat", "tree", "sheep"],
        "relationships": [[0, "above", 1], [2, "inside", 1], [3, "left of", 2],
                          [4, "right of", 3], [4, "right of", 3], [4, "above", 4]]}
TREE = {"objects": ["tree"]}


# ------------------------------------------------------------------------ loading
def test_load_model_eval_and_vocab(model):
    assert not model.generator.training
    assert model.vocab.user_object_names() == NAMES
    assert model.image_size == 32 and model.device == torch.device("cpu")


def test_load_model_errors(tmp_path, monkeypatch, ckpt):
    for name in bundled.BUNDLED_MODELS:
        monkeypatch.setitem(bundled.BUNDLED_MODELS, name, bundled.BundledModel(
            name, tmp_path / f"{name}.pt", 64))
    with pytest.raises(CheckpointError, match="bundled model 'default' is not installed"):
        load_model()
    with pytest.raises(CheckpointError, match="bundled model 'default-128' is not installed"):
        load_model("default-128")
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "nope.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not an sg2img checkpoint"):
        load_model(tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_model(tmp_path / "junk.pt")
    # Weights trained with 7 object names, vocab with 8: a vocabulary mismatch.
    state = torch.load(ckpt, weights_only=True)
    bigger = Vocab.from_names([*NAMES, "cow"], PREDS)
    export_inference(tmp_path / "mismatch.pt", state["config"], bigger, state["generator"])
    with pytest.raises(CheckpointError, match="vocabulary mismatch: the vocabulary has 8"):
        load_model(tmp_path / "mismatch.pt")
    with pytest.raises(GenerationError, match="unknown device"):
        load_model(ckpt, device="tpu:x")
    if not torch.cuda.is_available():
        with pytest.raises(GenerationError, match="CUDA is not available"):
            load_model(ckpt, device="cuda")


def test_a_bundled_name_is_the_model_and_a_path_is_always_a_file(tmp_path, monkeypatch, ckpt):
    monkeypatch.setitem(bundled.BUNDLED_MODELS, "default-128", bundled.BundledModel(
        "default-128", Path(ckpt), 32))
    assert load_model("default-128").source == str(ckpt)
    assert generate(TREE, model="default-128", seed=0).images[0].size == (32, 32)
    monkeypatch.chdir(tmp_path)
    for as_path in (Path("default-128"), "./default-128"):
        with pytest.raises(CheckpointError, match="not found"):
            load_model(as_path)


# ------------------------------------------------------------------------ generate
def test_generate_result_shapes_and_types(model):
    res = generate([SHEEP, LAKE], model, seed=0, num_samples=2, return_layout=True)
    assert len(res) == 4 and all(isinstance(im, Image.Image) for im in res)
    assert res[0].size == (32, 32) and res.images[3] is res[3]
    assert res.tensors.shape == (4, 3, 32, 32)
    assert res.tensors.min() >= -1 and res.tensors.max() <= 1
    assert res.graph_index == [0, 0, 1, 1] and res.sample_index == [0, 1, 0, 1]
    assert [b.shape for b in res.boxes] == [(3, 4), (3, 4), (5, 4), (5, 4)]
    assert [m.shape for m in res.masks] == [(3, 8, 8)] * 2 + [(5, 8, 8)] * 2
    assert res.layout.shape == (4, 7, 32, 32)
    assert res.graphs[2] == SceneGraph.from_dict(LAKE) and res.seed == 0
    assert not torch.equal(res.tensors[0], res.tensors[1])          # samples differ
    assert generate(SHEEP, model, seed=0).layout is None
    sheet = res.sheet(cell_height=64)
    assert sheet.height > 4 * 64
    # Graphs are drawn top to bottom in sheets, so the graph column stays about as wide as
    # a picture (drawn left to right it was 4-7 pictures wide).
    assert sheet.width < 5 * 64


def test_generate_is_deterministic_per_seed(model):
    a = generate(SHEEP, model, seed=3).tensors
    b = generate(SHEEP, model, seed=3).tensors
    c = generate(SHEEP, model, seed=4).tensors
    assert torch.equal(a, b)
    assert (a - c).abs().max() > 1e-3
    r1, r2 = generate(SHEEP, model), generate(SHEEP, model)
    assert r1.seed != r2.seed or torch.equal(r1.tensors, r2.tensors)


def test_graphs_of_different_sizes_in_one_batch(model):
    graphs = [SHEEP, LAKE, TREE]
    together = generate(graphs, model, seed=5)
    one_by_one = generate(graphs, model, seed=5, batch_size=1)
    assert torch.allclose(together.tensors, one_by_one.tensors, atol=1e-5)
    for k in range(3):
        assert torch.allclose(together.boxes[k], one_by_one.boxes[k], atol=1e-6)
    # Image k's noise does not depend on how many graphs there are.
    alone = generate([SHEEP], model, seed=5)
    assert torch.equal(alone.z[0], together.z[0])
    assert torch.allclose(alone.tensors[0], together.tensors[0], atol=1e-5)


def test_generate_does_not_mutate_input_and_reads_files(model, tmp_path):
    graphs = [copy.deepcopy(SHEEP), copy.deepcopy(LAKE)]
    before = copy.deepcopy(graphs)
    res = generate(graphs, model, seed=0, boxes=[None, [None, None, [0.1, 0.1, 0.4, 0.4],
                                                        None, None]])
    assert graphs == before
    path = tmp_path / "g.json"
    path.write_text(json.dumps([SHEEP, LAKE]))
    from_file = generate(path, model, seed=0)
    assert len(from_file) == 2
    assert torch.equal(from_file.tensors[0], res.tensors[0])
    # The pinned box is used exactly.
    assert res.boxes[1][2].tolist() == pytest.approx([0.1, 0.1, 0.4, 0.4])


def test_generate_pinned_boxes_single_graph(model):
    res = generate(SHEEP, model, seed=0, boxes=[None, [0.0, 0.5, 1.0, 1.0], None])
    assert res.boxes[0][1].tolist() == [0.0, 0.5, 1.0, 1.0]
    with pytest.raises(SceneGraphError, match="'boxes' has 1 entries but there are 3"):
        generate(SHEEP, model, boxes=[[0.0, 0.5, 1.0, 1.0]])


def test_generate_image_size_resizes(model):
    res = generate(SHEEP, model, seed=0, image_size=48)
    assert res[0].size == (48, 48) and res.tensors.shape == (1, 3, 48, 48)
    with pytest.raises(GenerationError, match="image_size"):
        generate(SHEEP, model, image_size=0)


@pytest.mark.parametrize("graphs,message", [
    ({"objects": ["sky", "sheeep"]}, r"objects\[1\]: unknown object name 'sheeep'; "
                                     r"closest names: \['sheep'"),
    ([SHEEP, {"objects": ["sky"], "relationships": [[0, "abov", 0]]}],
     r"graph 1: relationships\[0\]: unknown predicate 'abov'"),
    ({"objects": ["sky"], "relationships": [[0, "above", 3]]}, "object index 3 is out of range"),
    ({"objects": []}, "at least one object"),
])
def test_generate_errors_name_the_problem(model, graphs, message):
    with pytest.raises(SceneGraphError, match=message):
        generate(graphs, model)


def test_generate_errors_carry_the_graph_and_the_field(model):
    with pytest.raises(SceneGraphError) as info:
        generate([SHEEP, {"objects": ["sky"], "relationships": [[0, "abov", 0]]}], model)
    e = info.value
    assert (e.graph, e.field, e.suggestions[0]) == (1, "relationships[0].predicate", "above")
    assert str(e) == f"graph 1: relationships[0]: {e.detail}"
    with pytest.raises(SceneGraphError) as info:
        generate(SHEEP, model, boxes=[None, [0.0, 0.5, 2.0, 1.0], None])
    assert (info.value.graph, info.value.field) == (None, "boxes[1]")
    assert str(info.value).startswith("boxes for graph 0: boxes[1]: ")
    with pytest.raises(GenerationError) as info:
        generate([SHEEP, SHEEP], model, resample_object=[None, [7]])
    assert info.value.graph == 1 and str(info.value).startswith("graph 1: resample_object")


def test_generate_argument_errors(model, tmp_path):
    with pytest.raises(GenerationError, match="num_samples"):
        generate(SHEEP, model, num_samples=0)
    with pytest.raises(GenerationError, match=r"precision must be one of \('fp32', 'bf16'\)"):
        generate(SHEEP, model, precision="fp16")
    with pytest.raises(GenerationError, match="seed"):
        generate(SHEEP, model, seed=-1)
    with pytest.raises(GenerationError, match="model must be"):
        generate(SHEEP, model=42)
    with pytest.raises(CheckpointError, match="not found"):
        generate(SHEEP, tmp_path / "missing.pt")


def test_generate_from_checkpoint_path(ckpt, model):
    a = generate(SHEEP, ckpt, seed=1, device="cpu")
    b = generate(SHEEP, model, seed=1)
    assert torch.equal(a.tensors, b.tensors)


# ------------------------------------------------------------------------ manipulate
def _check_frozen(res, k):
    """Objects frozen by edit k have exactly the boxes and masks of the image before it."""
    step = res.steps[k]
    assert step.frozen, "the edit should leave some objects frozen"
    for new, old in step.frozen.items():
        assert torch.equal(res.boxes[k + 1][new], res.boxes[k][old])
        assert torch.equal(res.masks[k + 1][new], res.masks[k][old])


@pytest.mark.parametrize("edit", [
    {"op": "add", "object": "boat", "relationship": ["new", "left of", 1]},
    {"op": "remove", "index": 2},
    {"op": "replace", "index": 2, "object": "tree"},
    {"op": "predicate", "relationship": 2, "predicate": "right of"},
    {"op": "move", "index": 3, "box": [0.05, 0.5, 0.35, 0.95]},
])
def test_each_edit_freezes_untouched_objects(model, edit):
    res = manipulate(LAKE, [edit], model, seed=2)
    assert len(res.images) == 2 and res.tensors.shape == (2, 3, 32, 32)
    assert res.z.shape == (1, model.noise_dim)
    _check_frozen(res, 0)
    step = res.steps[0]
    for new, old in step.keep_box.items():                 # replace: same box, new class
        assert torch.equal(res.boxes[1][new], res.boxes[0][old])
    for new, old in step.keep_mask.items():                # move: same mask, the new box
        assert torch.equal(res.masks[1][new], res.masks[0][old])
        assert res.boxes[1][new].tolist() == pytest.approx(edit["box"])
    assert res.regions[0].shape == (32, 32) and res.regions[0].any()
    # The region covers every touched object's box (after the edit) ...
    H = W = 32
    for j in step.touched:
        x0, y0, x1, y1 = res.boxes[1][j].tolist()
        inner = res.regions[0][math.ceil(y0 * H):int(y1 * H), math.ceil(x0 * W):int(x1 * W)]
        assert inner.all()              # every pixel lying wholly inside the box
    # ... and change() is the mean |delta| (in [0, 1]) of the saved images inside and outside it.
    import numpy as np

    a, b = (np.asarray(im, dtype=np.float64) / 255 for im in res.images)
    diff = np.abs(b - a).mean(axis=2)
    region = res.regions[0].numpy()
    inside, outside = res.change(0)
    assert inside == pytest.approx(diff[region].mean(), abs=2 / 255)
    assert outside == pytest.approx(diff[~region].mean(), abs=2 / 255)


def test_manipulate_chain_reuses_noise(model):
    edits = [{"op": "add", "object": "boat", "relationship": ["new", "inside", 1]},
             {"op": "remove", "index": 0},
             {"op": "replace", "index": 0, "object": "grass"}]
    res = manipulate(SHEEP, edits, model, seed=7)
    assert [g.objects for g in res.graphs] == [
        ("sky", "grass", "sheep"), ("sky", "grass", "sheep", "boat"),
        ("grass", "sheep", "boat"), ("grass", "sheep", "boat")]
    for k in range(3):
        _check_frozen(res, k)
    # The first image is what generate makes with the same seed.
    assert torch.allclose(res.tensors[0], generate(SHEEP, model, seed=7).tensors[0], atol=1e-6)
    assert res.sheet(cell_height=64).width > 4 * 64
    assert len(res.descriptions) == 3 and "add boat" in res.descriptions[0]


def test_manipulate_without_freezing_differs(model):
    edit = [{"op": "add", "object": "boat", "relationship": ["new", "left of", 1]}]
    frozen = manipulate(LAKE, edit, model, seed=1)
    free = manipulate(LAKE, edit, model, seed=1, freeze=False)
    assert torch.equal(frozen.tensors[0], free.tensors[0])
    # Without freezing, the untouched objects take their newly predicted boxes.
    assert not torch.equal(frozen.boxes[1][:5], free.boxes[1][:5])


def test_manipulate_errors(model, tmp_path):
    with pytest.raises(EditError, match=r"edit 1 \(remove\): remove: 'index' 5 is out of range"):
        manipulate(SHEEP, [{"op": "remove", "index": 0}, {"op": "remove", "index": 5}], model)
    with pytest.raises(EditError, match="unknown object name 'bot'"):
        manipulate(SHEEP, [{"op": "replace", "index": 0, "object": "bot"}], model)
    with pytest.raises(GenerationError, match="one scene graph"):
        manipulate([SHEEP, LAKE], [{"op": "remove", "index": 0}], model)

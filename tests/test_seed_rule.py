"""The seed rule: sample k of a graph under seed s depends only on the model, the graph's
content, s and k (``sg2img.noise``), in ``generate``, the command line, ``manipulate`` and
``evaluate``. Batching may change float rounding (tensors within 1e-4, PNG values within 1),
never the noise."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from sg2img import generate, load_model, manipulate
from sg2img.cli import main
from sg2img.eval.run import seed_rule_noise
from sg2img.noise import MAX_SEED, graph_key
from sg2img.scene_graph import SceneGraph, collate_graphs
from sg2img.testing import random_model_export
from sg2img.vocab import Vocab

NAMES = ["sky", "grass", "sheep", "tree", "cloud"]
PREDS = ["left of", "above", "inside"]
SHEEP = {"objects": ["sky", "grass", "sheep", "tree"],
         "relationships": [[0, "above", 1], [2, "inside", 1], [3, "left of", 2]]}
OTHER = {"objects": ["cloud", "grass"], "relationships": [[0, "above", 1]]}
THIRD = {"objects": ["sky", "sheep", "sheep"], "relationships": [[1, "left of", 2]]}


def close(a, b):
    torch.testing.assert_close(a, b, rtol=0, atol=1e-4)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """Every noise stream at once: z, per-object noise and a sampling layout head."""
    path = random_model_export(tmp_path_factory.mktemp("m") / "all_noise.pt",
                               Vocab.from_names(NAMES, PREDS),
                               ["model.renderer.noise=spatial", "model.layout.head=sample"])
    return load_model(path, "cpu")


def test_a_sample_does_not_depend_on_the_other_graphs_or_the_sample_count(model):
    alone = generate(SHEEP, model, seed=7, num_samples=4)
    second = generate([OTHER, SHEEP, THIRD], model, seed=7, num_samples=4, batch_size=5)
    close(second.tensors[4:8], alone.tensors)
    for k in range(4):   # each sample redrawn alone, as --sample K does
        one = generate(SHEEP, model, seed=7, first_sample=k)
        close(one.tensors[0], alone.tensors[k])
        close(one.boxes[0], alone.boxes[k])
    # Samples differ from each other (image and layout) and from another seed.
    assert (alone.tensors[1] - alone.tensors[0]).abs().mean() > 1e-3
    assert (alone.boxes[1] - alone.boxes[0]).abs().max() > 1e-3
    assert (generate(SHEEP, model, seed=8).tensors[0] - alone.tensors[0]).abs().mean() > 1e-3


def test_the_same_graph_twice_gives_the_same_pictures(model):
    res = generate([SHEEP, SHEEP], model, seed=3, num_samples=2)
    assert torch.equal(res.z[0], res.z[2]) and torch.equal(res.z[1], res.z[3])
    close(res.tensors[0], res.tensors[2])
    close(res.tensors[1], res.tensors[3])
    # A path, a dict and a SceneGraph of the same content are the same graph.
    assert torch.equal(generate(SceneGraph.from_dict(SHEEP), model, seed=3).z, res.z[:1])


def test_pins_and_attributes_are_conditions_not_part_of_the_draw(model):
    pinned = {**SHEEP, "boxes": [None, None, [0.1, 0.5, 0.4, 0.9], None]}
    a, b = generate(SHEEP, model, seed=2), generate(pinned, model, seed=2)
    assert torch.equal(a.z, b.z)
    encoded = SceneGraph.from_dict(SHEEP).encode(model.vocab)
    moved = SceneGraph.from_dict({**SHEEP, "relationships": [[0, "above", 1]]})
    other = moved.encode(model.vocab)
    assert graph_key(encoded.objs, encoded.triples) != graph_key(other.objs, other.triples)


def test_seeds_near_the_maximum_give_distinct_samples(model):
    res = generate(SHEEP, model, seed=MAX_SEED, num_samples=4)
    flat = res.tensors.flatten(1)
    assert all((flat[i] - flat[j]).abs().mean() > 1e-3 for i in range(4) for j in range(i))


def test_manipulate_starts_from_the_shown_sample(model):
    for k in (0, 2):
        shown = generate(SHEEP, model, seed=5, first_sample=k)
        res = manipulate(SHEEP, [{"op": "move", "index": 2, "box": [0.5, 0.5, 0.8, 0.9]}],
                         model, seed=5, sample=k)
        assert torch.equal(res.tensors[0], shown.tensors[0]) and res.sample == k
        assert torch.equal(res.boxes[0], shown.boxes[0])
        # Objects the edit does not touch keep their boxes (from the sampled layout).
        for j in (0, 1, 3):
            assert torch.equal(res.boxes[1][j], shown.boxes[0][j])


def test_evaluate_draws_as_generate_draws(model):
    graphs = [SceneGraph.from_dict(g) for g in (OTHER, SHEEP, THIRD)]
    batch = collate_graphs([g.encode(model.vocab) for g in graphs])
    for k in (0, 1):
        kwargs = seed_rule_noise(model.generator, batch, 11, k, "sample")
        with torch.inference_mode():
            out = model.generator(batch, layout_mode="sample", training_outputs=False,
                                  **kwargs)
        ref = generate(graphs, model, seed=11, first_sample=k, layout_mode="sample")
        close(out.images, ref.tensors)


def test_cli_samples_and_sample_name_the_same_pictures(model, tmp_path):
    graph = tmp_path / "sheep.json"
    graph.write_text(__import__("json").dumps(SHEEP))
    ck = model.source
    assert main(["generate", str(graph), "--checkpoint", ck, "--seed", "4", "--samples", "4",
                 "--out", str(tmp_path / "four")]) == 0
    assert main(["generate", str(graph), "--checkpoint", ck, "--seed", "4", "--sample", "2",
                 "--out", str(tmp_path / "one")]) == 0
    assert main(["generate", str(graph), "--checkpoint", ck, "--seed", "4", "--sample", "1",
                 "--samples", "2", "--out", str(tmp_path / "two")]) == 0
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == ["sheep_000_s2.png"]
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["sheep_000_s1.png",
                                                                    "sheep_000_s2.png"]
    four = np.asarray(Image.open(tmp_path / "four" / "sheep_000_s2.png"), dtype=int)
    for folder in ("one", "two"):
        again = np.asarray(Image.open(tmp_path / folder / "sheep_000_s2.png"), dtype=int)
        assert np.abs(again - four).max() <= 1
    lib = np.asarray(generate(SHEEP, model, seed=4, first_sample=2).images[0], dtype=int)
    assert np.abs(lib - four).max() <= 1


def test_bad_sample_numbers_are_refused(model):
    from sg2img.api import GenerationError

    for bad in (-1, True, 1.5, 2**32):
        with pytest.raises(GenerationError, match="first_sample must be a sample number"):
            generate(SHEEP, model, seed=0, first_sample=bad)
    with pytest.raises(GenerationError, match="sample must be a sample number"):
        manipulate(SHEEP, [{"op": "remove", "index": 3}], model, seed=0, sample=-2)


def test_cli_a_file_gives_the_same_pictures_with_other_files_beside_it(model, tmp_path):
    import json

    (tmp_path / "a.json").write_text(json.dumps([OTHER, THIRD]))
    (tmp_path / "b.json").write_text(json.dumps(SHEEP))
    ck = model.source
    assert main(["generate", str(tmp_path / "b.json"), "--checkpoint", ck, "--seed", "7",
                 "--out", str(tmp_path / "alone")]) == 0
    assert main(["generate", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--checkpoint",
                 ck, "--seed", "7", "--out", str(tmp_path / "both")]) == 0
    alone = np.asarray(Image.open(tmp_path / "alone" / "b_000_s0.png"), dtype=int)
    both = np.asarray(Image.open(tmp_path / "both" / "b_000_s0.png"), dtype=int)
    assert np.abs(alone - both).max() <= 1

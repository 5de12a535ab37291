"""Object attributes ("a red car"): JSON -> SceneGraph -> tensors -> model, edits and metrics."""

import pytest
import torch

from sg2img.config import Config
from sg2img.model import GALSGenerator
from sg2img.scene_graph import SceneGraph, SceneGraphError, collate_graphs, encode_graphs
from sg2img.testing import random_graph_batch
from sg2img.vocab import Vocab

ATTRS = ("red", "blue", "yellow", "white", "small", "large")


@pytest.fixture
def avocab() -> Vocab:
    return Vocab.from_names(["sky", "road", "car", "bus", "grass"],
                            ["left of", "right of", "above", "below", "on"], ATTRS)


CARS = {"objects": ["sky", "road", "car"],
        "relationships": [[0, "above", 1], [2, "on", 1]],
        "attributes": [[], [], ["red", "small"]]}


# ----------------------------------------------------------------------------- JSON -> tensors
def test_attributes_round_trip_json_graph_encode_collate(avocab, tmp_path):
    import json

    path = tmp_path / "g.json"
    path.write_text(json.dumps([CARS, {"objects": ["grass", "bus"],
                                       "relationships": [[1, "on", 0]]}]))
    graphs = [SceneGraph.from_dict(d) for d in json.loads(path.read_text())]
    assert graphs[0].attributes == ((), (), ("red", "small"))
    assert SceneGraph.from_dict(graphs[0].to_dict()) == graphs[0]
    batch = encode_graphs(str(path), avocab)
    # 3 + 1 and 2 + 1 objects (image nodes); the graph without attributes gets zero rows.
    assert batch.attributes.shape == (7, len(ATTRS))
    car = batch.attributes[2]
    assert car[ATTRS.index("red")] == 1 and car[ATTRS.index("small")] == 1 and car.sum() == 2
    assert batch.attributes[[0, 1, 3, 4, 5, 6]].sum() == 0
    one = collate_graphs([graphs[0].encode(avocab)])
    torch.testing.assert_close(one.attributes, batch.attributes[:4])


def test_unknown_attribute_names_closest(avocab):
    g = SceneGraph.from_dict({**CARS, "attributes": [[], [], ["rde"]]})
    with pytest.raises(SceneGraphError, match=r"attributes\[2\].*unknown attribute 'rde'.*red"):
        g.encode(avocab)


def test_attributes_need_a_vocabulary_with_attributes(vocab):
    g = SceneGraph.from_dict({"objects": ["sky", "sheep"], "attributes": [[], ["white"]]})
    with pytest.raises(SceneGraphError, match="no attributes"):
        g.encode(vocab)


# ----------------------------------------------------------------------------- model
def _gen(avocab, *overrides, num_attributes=None):
    torch.manual_seed(0)
    cfg = Config.from_preset("tiny", list(overrides))
    n = avocab.num_attributes if num_attributes is None else num_attributes
    return GALSGenerator(cfg.model, avocab.num_objects, avocab.num_preds, n).eval(), cfg


def _outputs(gen, cfg, batch):
    with torch.no_grad():
        return gen(batch, use_gt_layout=True, rng=torch.Generator().manual_seed(0))


def test_attribute_embedding_changes_the_output(avocab):
    gen, cfg = _gen(avocab)
    assert gen.attr_embeddings is not None
    batch = random_graph_batch(avocab.num_objects, avocab.num_preds, (3, 2),
                               image_size=cfg.model.image_size, mask_size=cfg.model.mask_size,
                               num_attributes=avocab.num_attributes)
    a, vecs = _outputs(gen, cfg, batch), gen.encode_graph(batch)[0]
    batch.attributes = torch.roll(batch.attributes, 1, dims=1)
    b = _outputs(gen, cfg, batch)
    # An untrained tiny generator is nearly flat in its conditioning: small but real changes.
    assert (a.images - b.images).abs().max() > 1e-5
    assert (a.boxes_pred - b.boxes_pred).abs().max() > 1e-5
    assert (vecs - gen.encode_graph(batch)[0]).abs().max() > 1e-3


def test_use_attributes_false_ignores_them(avocab):
    gen, cfg = _gen(avocab, "model.use_attributes=false")
    assert gen.attr_embeddings is None
    batch = random_graph_batch(avocab.num_objects, avocab.num_preds, (3, 2),
                               image_size=cfg.model.image_size, mask_size=cfg.model.mask_size,
                               num_attributes=avocab.num_attributes)
    a = _outputs(gen, cfg, batch)
    batch.attributes = torch.roll(batch.attributes, 1, dims=1)
    torch.testing.assert_close(_outputs(gen, cfg, batch).images, a.images)
    batch.attributes = None
    torch.testing.assert_close(_outputs(gen, cfg, batch).images, a.images)


def test_attribute_gradients_and_shape_check(avocab):
    gen, cfg = _gen(avocab)
    gen.train()
    batch = random_graph_batch(avocab.num_objects, avocab.num_preds, (3,),
                               image_size=cfg.model.image_size, mask_size=cfg.model.mask_size,
                               num_attributes=avocab.num_attributes)
    gen(batch, use_gt_layout=True).images.mean().backward()
    assert gen.attr_embeddings.weight.grad.abs().sum() > 0
    batch.attributes = batch.attributes[:, :3]
    with pytest.raises(ValueError, match="attributes must have shape"):
        gen(batch, use_gt_layout=True)


def test_no_attribute_vocabulary_builds_no_embedding(vocab):
    """A vocabulary without attributes (every checkpoint from before them): no new weights."""
    cfg = Config.from_preset("tiny")
    gen = GALSGenerator(cfg.model, vocab.num_objects, vocab.num_preds, vocab.num_attributes)
    assert gen.attr_embeddings is None
    assert not any("attr" in k for k in gen.state_dict())

"""SceneGraph.from_sample: an encoded graph (a dataset item) back in the user's form."""

import pytest
import torch

from sg2img.data.shapes import shapes_vocab
from sg2img.scene_graph import GraphSample, SceneGraph, SceneGraphError


def test_from_sample_inverts_encode():
    vocab = shapes_vocab()
    graph = SceneGraph(("sky", "grass", "sheep"), ((0, "above", 1), (2, "inside", 1)))
    assert SceneGraph.from_sample(graph.encode(vocab), vocab) == graph


def test_from_sample_pins_the_ground_truth_boxes_when_asked():
    vocab = shapes_vocab()
    boxes = ((0.0, 0.0, 1.0, 0.5), (0.0, 0.5, 1.0, 1.0), (0.25, 0.5, 0.5, 0.75))
    sample = SceneGraph(("sky", "grass", "sheep"), ((0, "above", 1),), boxes).encode(vocab)
    back = SceneGraph.from_sample(sample, vocab, boxes=True)
    assert back.boxes == boxes and back.relationships == ((0, "above", 1),)
    assert SceneGraph.from_sample(sample, vocab).boxes is None
    bare = GraphSample(torch.tensor([1]), torch.zeros(0, 3, dtype=torch.long)).with_image_node()
    with pytest.raises(SceneGraphError, match="no boxes"):
        SceneGraph.from_sample(bare, vocab, boxes=True)

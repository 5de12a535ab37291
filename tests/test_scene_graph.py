import copy
import json

import pytest
import torch

from sg2img.scene_graph import (
    GraphSample,
    SceneGraph,
    SceneGraphError,
    collate_graphs,
    encode_graphs,
    load_scene_graphs,
)

# In the style of sg2im's scene_graphs/*.json: a list of graphs, with a duplicate triple
# and a self-loop, which must load unchanged.
SG2IM_STYLE = [
    {"objects": ["sky", "grass", "sheep", "sheep", "tree"],
     "relationships": [[0, "above", 1], [2, "standing on", 1], [3, "standing on", 1],
                       [2, "standing on", 1], [4, "left of", 4]]},
    {"objects": ["sky", "water", "boat"],
     "relationships": [[0, "above", 1], [2, "inside", 1]]},
]


def test_sg2im_file_loads_unchanged(tmp_path, vocab):
    path = tmp_path / "graphs.json"
    path.write_text(json.dumps(SG2IM_STYLE))
    graphs = load_scene_graphs(path)
    assert [g.to_dict() for g in graphs] == SG2IM_STYLE
    batch = encode_graphs(path, vocab)
    # 5 + 1 and 3 + 1 objects; 5 + 5 and 2 + 3 triples (duplicates and self-loops kept)
    assert batch.num_images == 2
    assert batch.objs.tolist() == [1, 2, 3, 3, 4, 0, 1, 5, 6, 0]
    assert batch.obj_to_img.tolist() == [0] * 6 + [1] * 4
    assert batch.triples.shape == (15, 3)
    assert batch.triple_to_img.tolist() == [0] * 10 + [1] * 5
    # the second graph's indices are offset by the first graph's 6 objects
    assert batch.triples[10].tolist() == [6, vocab.pred_idx("above"), 7]
    # every object has an __in_image__ triple to its image node (id 0, pred 0)
    in_image = batch.triples[batch.triples[:, 1] == 0]
    assert in_image.tolist() == [[i, 0, 5] for i in range(5)] + [[i, 0, 9] for i in range(6, 9)]
    assert torch.equal(batch.objs[in_image[:, 2]], torch.zeros(8, dtype=torch.long))


def test_single_graph_file_and_dict_forms(tmp_path, sheep_graph, vocab):
    path = tmp_path / "one.json"
    path.write_text(json.dumps(sheep_graph))
    assert load_scene_graphs(path) == load_scene_graphs(sheep_graph)
    assert load_scene_graphs([sheep_graph, SceneGraph(("sky",))])[1].objects == ("sky",)
    assert load_scene_graphs(str(path))[0].objects == ("sky", "grass", "sheep")


def test_caller_data_is_not_mutated(sheep_graph, vocab):
    before = copy.deepcopy(sheep_graph)
    g = SceneGraph.from_dict(sheep_graph)
    g.encode(vocab)
    encode_graphs([sheep_graph, sheep_graph], vocab)
    assert sheep_graph == before
    assert "__image__" not in sheep_graph["objects"]
    with pytest.raises(AttributeError):
        g.objects = ("x",)  # frozen


def test_image_without_relationships_counts(vocab):
    batch = encode_graphs([{"objects": ["sky"]}, {"objects": ["grass", "sheep"]},
                           {"objects": ["tree"], "relationships": []}], vocab)
    assert batch.num_images == 3
    assert batch.obj_to_img.tolist() == [0, 0, 1, 1, 1, 2, 2]
    assert batch.triples.shape == (4, 3)  # only __in_image__ triples


def test_boxes_and_attributes(vocab):
    g = {"objects": ["sky", "sheep"], "relationships": [[0, "above", 1]],
         "boxes": [None, [0.25, 0.5, 0.75, 1.0]]}
    batch = encode_graphs(g, vocab)
    assert batch.boxes.tolist() == [[0, 0, 1, 1], [0.25, 0.5, 0.75, 1.0], [0, 0, 1, 1]]
    assert batch.box_given.tolist() == [False, True, True]
    # graphs with and without boxes share a batch; boxes absent are marked not given
    b2 = encode_graphs([g, {"objects": ["tree"]}], vocab)
    assert b2.box_given.tolist() == [False, True, True, False, False]
    v = type(vocab)(vocab.object_names, vocab.pred_names, ("white", "green"),
                    class_attributes={"sheep": ["white"], "grass": ["green"]})
    s = SceneGraph.from_dict({"objects": ["sheep", "grass"], "attributes": [["white"], []]})
    enc = s.encode(v)
    assert enc.attributes.tolist() == [[1, 0], [0, 0], [0, 0]]


@pytest.mark.parametrize("graph, message", [
    ({"objects": []}, "'objects' is empty"),
    ({"relationships": []}, "needs an 'objects' list"),
    ({"objects": "sky"}, "'objects' must be a list"),
    ({"objects": ["sky", 3]}, r"objects\[1\] must be a non-empty string"),
    ({"objects": ["sky"], "relationships": [[0, "above"]]}, r"relationships\[0\] must be"),
    ({"objects": ["sky"], "relationships": [0]}, r"relationships\[0\] must be"),
    ({"objects": ["sky"], "relationships": [[0, "above", 1]]}, "object index 1 is out of range"),
    ({"objects": ["sky"], "relationships": [[-1, "above", 0]]}, "subject index -1 is out of range"),
    ({"objects": ["sky", "grass"], "relationships": [[0.0, "above", 1]]},
     "subject must be an integer"),
    ({"objects": ["sky", "grass"], "relationships": [[True, "above", 1]]},
     "subject must be an integer"),
    ({"objects": ["sky", "grass"], "relationships": [[0, 5, 1]]}, "predicate must be"),
    ({"objects": ["sky"], "boxes": [[0, 0, 1]]}, "list of 4 numbers"),
    ({"objects": ["sky"], "boxes": [[0, 0, float("nan"), 1]]}, "finite"),
    ({"objects": ["sky"], "boxes": [[0.5, 0, 0.4, 1]]}, "x0 < x1"),
    ({"objects": ["sky"], "boxes": [[0, 0.5, 1, 0.5]]}, "y0 < y1"),
    ({"objects": ["sky"], "boxes": [[0, 0, 1.5, 1]]}, r"in \[0, 1\]"),
    ({"objects": ["sky"], "boxes": [["0", 0, 1, 1]]}, "must be numbers"),
    ({"objects": ["sky", "grass"], "boxes": [[0, 0, 1, 1]]}, "'boxes' has 1 entries"),
    ({"objects": ["sky"], "attributes": [["a"], ["b"]]}, "'attributes' has 2 entries"),
    ({"objects": ["sky"], "attributes": "red"}, "'attributes' must be a list"),
    ({"objects": ["sky"], "colour": "red"}, "unknown scene graph keys"),
    ([1, 2], "must be a JSON object"),
])
def test_bad_graphs(graph, message):
    with pytest.raises(SceneGraphError, match=message):
        SceneGraph.from_dict(graph)
    with pytest.raises(SceneGraphError, match=message):
        load_scene_graphs([graph])


@pytest.mark.parametrize("graph, field, detail", [
    ({"objects": []}, "objects", None),
    ({"objects": ["sky", 3]}, "objects[1]", None),
    ({"objects": ["sky"], "relationships": [0]}, "relationships[0]", None),
    ({"objects": ["sky"], "relationships": [[0, "above", 1]]}, "relationships[0].object",
     "object index 1 is out of range; the graph has 1 objects; indices are 0-based: "
     "objects 0..0 (sky=0)"),
    ({"objects": ["sky", "grass"], "relationships": [[True, "above", 1]]},
     "relationships[0].subject", "the subject must be an integer index into 'objects', got True"),
    ({"objects": ["sky", "grass"], "relationships": [[0, 5, 1]]}, "relationships[0].predicate",
     "the predicate must be a non-empty string, got 5"),
    ({"objects": ["sky"], "boxes": [[0.5, 0, 0.4, 1]]}, "boxes[0]",
     "a box needs x0 < x1 and y0 < y1, got (0.5, 0, 0.4, 1)"),
    ({"objects": ["sky", "grass"], "boxes": [[0, 0, 1, 1]]}, "boxes", None),
    ({"objects": ["sky"], "attributes": "red"}, "attributes", None),
    ({"objects": ["sky"], "colour": "red"}, None, None),
])
def test_errors_say_where_in_the_graph(graph, field, detail):
    with pytest.raises(SceneGraphError) as info:
        SceneGraph.from_dict(graph)
    e = info.value
    assert (e.field, e.suggestions) == (field, ())
    assert e.detail == (detail or str(e)) and str(e).endswith(e.detail)
    # The position in a list goes into the message and ``graph``; the field stays.
    with pytest.raises(SceneGraphError) as info:
        load_scene_graphs([{"objects": ["sky"]}, graph])
    assert (info.value.graph, info.value.field, info.value.detail) == (1, field, e.detail)
    assert str(info.value) == f"graph 1: {e}"


def test_unknown_names_carry_the_closest_names(vocab):
    with pytest.raises(SceneGraphError) as info:
        encode_graphs({"objects": ["sky", "grass"], "relationships": [[0, "abov", 1]]}, vocab)
    e = info.value
    assert e.field == "relationships[0].predicate" and e.suggestions[0] == "above"
    assert e.detail.startswith("unknown predicate 'abov'")
    moved = e.located("a.json")
    assert type(moved) is SceneGraphError and str(moved) == f"a.json: {e}"
    assert (moved.field, moved.suggestions, moved.detail) == (e.field, e.suggestions, e.detail)
    assert copy.copy(e).suggestions == e.suggestions


def test_bad_names_list_closest(vocab):
    with pytest.raises(SceneGraphError, match=r"objects\[1\]: unknown object name 'shep'.*sheep"):
        encode_graphs({"objects": ["sky", "shep"]}, vocab)
    with pytest.raises(SceneGraphError,
                       match=r"relationships\[0\]: unknown predicate 'abov'.*above"):
        encode_graphs({"objects": ["sky", "grass"], "relationships": [[0, "abov", 1]]}, vocab)
    with pytest.raises(SceneGraphError, match="no attributes"):
        encode_graphs({"objects": ["sky"], "attributes": [["blue"]]}, vocab)


def test_max_objects_is_configurable(vocab):
    g = {"objects": ["sky"] * 5}
    with pytest.raises(SceneGraphError, match="5 objects, more than the maximum of 4"):
        load_scene_graphs(g, max_objects=4)
    assert len(load_scene_graphs(g, max_objects=5)[0].objects) == 5


def test_bad_files(tmp_path):
    with pytest.raises(SceneGraphError, match="not found"):
        load_scene_graphs(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("[{]")
    with pytest.raises(SceneGraphError, match="not valid JSON"):
        load_scene_graphs(bad)
    many = tmp_path / "many.json"
    many.write_text(json.dumps([{"objects": ["a"]}, {"objects": []}]))
    with pytest.raises(SceneGraphError, match="many.json graph 1: .*empty"):
        load_scene_graphs(many)
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    with pytest.raises(SceneGraphError, match="empty list"):
        load_scene_graphs(empty)
    with pytest.raises(SceneGraphError, match="expected a scene graph"):
        load_scene_graphs(42)


def test_collate_dataset_samples_with_masks_and_images():
    def sample(n, value):
        return GraphSample(
            objs=torch.arange(1, n + 1), triples=torch.tensor([[0, 1, n - 1]]),
            boxes=torch.rand(n, 4).sort(dim=1).values, masks=torch.rand(n, 4, 4),
            image=torch.full((3, 8, 8), value), image_id=value).with_image_node()

    batch = collate_graphs([sample(2, 0.0), sample(3, 1.0)])
    assert batch.num_images == 2
    assert batch.images.shape == (2, 3, 8, 8) and batch.images[1].eq(1).all()
    assert batch.masks.shape == (7, 4, 4)
    assert batch.masks[2].eq(1).all() and batch.masks[6].eq(1).all()  # image nodes
    assert batch.boxes[2].tolist() == [0, 0, 1, 1]
    assert batch.box_given.all()
    assert batch.image_ids == [0.0, 1.0]
    assert batch.triples[0].tolist() == [0, 1, 1] and batch.triples[3].tolist() == [3, 1, 5]
    moved = batch.to("cpu")
    assert moved.num_images == 2 and torch.equal(moved.objs, batch.objs)
    with pytest.raises(ValueError, match="'masks'"):
        s = sample(2, 0.0)
        s.masks = None
        collate_graphs([s, sample(2, 1.0)])
    with pytest.raises(ValueError, match="at least one"):
        collate_graphs([])

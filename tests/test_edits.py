"""Graph edits: pure, index mappings, touched objects, the edit JSON format and its errors."""

import copy
import json

import pytest

from sg2img.edits import (
    AddObject,
    ChangePredicate,
    EditError,
    MoveObject,
    RemoveObject,
    ReplaceObject,
    ResampleObject,
    apply_edit,
    apply_edits,
    edit_from_dict,
    edit_to_dict,
    load_edits,
)
from sg2img.scene_graph import SceneGraph


@pytest.fixture
def graph() -> dict:
    return {"objects": ["sky", "grass", "sheep", "tree"],
            "relationships": [[0, "above", 1], [2, "standing on", 1], [3, "left of", 2]],
            "boxes": [None, [0.0, 0.6, 1.0, 1.0], None, None],
            "attributes": [[], ["green"], [], []]}


def test_add_object(graph, vocab):
    before = copy.deepcopy(graph)
    res = apply_edit(graph, AddObject("boat", (("new", "left of", 2), (0, "above", "new"))),
                     vocab)
    assert graph == before
    g = res.graph
    assert g.objects == ("sky", "grass", "sheep", "tree", "boat")
    assert g.relationships[-2:] == ((4, "left of", 2), (0, "above", 4))
    assert g.boxes[-1] is None and g.attributes[-1] == ()
    assert res.old_to_new == (0, 1, 2, 3)
    assert res.touched == {4} and res.frozen == {0: 0, 1: 1, 2: 2, 3: 3}
    boxed = apply_edit({"objects": ["sky"]}, AddObject("boat", (("new", "below", 0),),
                                                       (0.1, 0.5, 0.3, 0.9)))
    assert boxed.graph.boxes == (None, (0.1, 0.5, 0.3, 0.9))


def test_remove_object_reindexes(graph):
    sg = SceneGraph.from_dict(graph)
    res = apply_edit(sg, RemoveObject(1))
    assert sg.objects == ("sky", "grass", "sheep", "tree")            # unchanged
    assert res.graph.objects == ("sky", "sheep", "tree")
    assert res.graph.relationships == ((2, "left of", 1),)
    assert res.graph.boxes is None                                    # only grass had one
    assert res.graph.attributes == ((), (), ())
    assert res.old_to_new == (0, None, 1, 2)
    assert res.touched == frozenset() and res.removed == {1}
    assert res.frozen == {0: 0, 1: 2, 2: 3}
    with pytest.raises(EditError, match="only object"):
        apply_edit({"objects": ["sky"]}, RemoveObject(0))


def test_replace_keeps_box(graph):
    res = apply_edit(graph, ReplaceObject(2, "boat"))
    assert res.graph.objects[2] == "boat" and res.graph.relationships == \
        SceneGraph.from_dict(graph).relationships
    assert res.touched == {2} and res.keep_box == {2: 2} and not res.keep_mask
    assert 2 not in res.frozen and res.frozen[3] == 3


@pytest.mark.parametrize("move,touched", [("subject", {2}), ("object", {1}), ("both", {1, 2})])
def test_change_predicate(graph, move, touched):
    res = apply_edit(graph, ChangePredicate(1, "above", move))
    assert res.graph.relationships[1] == (2, "above", 1)
    assert res.touched == touched
    assert "sheep standing on grass -> sheep above grass" in res.description


def test_move_keeps_mask(graph):
    res = apply_edit(graph, MoveObject(2, (0.1, 0.2, 0.3, 0.4)))
    assert res.graph.boxes[2] == (0.1, 0.2, 0.3, 0.4)
    assert res.graph.boxes[1] == (0.0, 0.6, 1.0, 1.0)
    assert res.touched == {2} and res.keep_mask == {2: 2}
    with pytest.raises(EditError, match="x0 < x1"):
        apply_edit(graph, MoveObject(2, (0.5, 0.2, 0.3, 0.4)))


def test_resample_keeps_the_graph_and_the_layout(graph):
    res = apply_edit(graph, {"op": "resample", "index": 2})
    assert res.graph == SceneGraph.from_dict(graph)
    assert res.touched == {2} and res.keep_layout == {2: 2} and res.redraw_noise == {2}
    assert res.frozen == {0: 0, 1: 1, 3: 3} and res.old_to_new == (0, 1, 2, 3)
    assert res.description == "resample 2 sheep (another look)"
    # Other edits redraw no noise.
    assert apply_edit(graph, MoveObject(2, (0.1, 0.1, 0.3, 0.3))).redraw_noise == frozenset()


def test_apply_edits_in_sequence_and_names_position(graph):
    results = apply_edits(graph, [{"op": "remove", "index": 0},
                                  {"op": "replace", "index": 0, "object": "water"}])
    assert results[1].graph.objects == ("water", "sheep", "tree")
    with pytest.raises(EditError, match=r"edit 1 \(remove\): remove: 'index' 3 is out of range; "
                                        r"the graph has 3 objects; indices are 0-based: "
                                        r"objects 0..2"):
        apply_edits(graph, [{"op": "remove", "index": 0}, {"op": "remove", "index": 3}])


def test_vocab_check_lists_closest_names(graph, vocab):
    with pytest.raises(EditError, match=r"unknown object name 'shep'.*'sheep'"):
        apply_edit(graph, ReplaceObject(0, "shep"), vocab)
    with pytest.raises(EditError, match=r"unknown predicate 'abov'.*'above'"):
        apply_edit(graph, ChangePredicate(0, "abov"), vocab)


@pytest.mark.parametrize("edit,message", [
    ({"op": "grow"}, "unknown edit op 'grow'; choose one of"),
    ({"op": "remove"}, r"remove: missing \['index'\]"),
    ({"op": "remove", "index": 1, "extra": 2}, r"unknown keys \['extra'\]"),
    ({"op": "add", "object": "boat"}, "at least one relationship"),
    ({"op": "add", "object": "boat", "relationship": [0, "above", 1]}, '"new"'),
    ({"op": "add", "object": "boat", "relationship": ["new", "above", 9]}, "out of range"),
    ({"op": "predicate", "relationship": 7, "predicate": "above"}, "relationship 7 is out of"),
    ({"op": "predicate", "relationship": 0, "predicate": "above", "move": "x"}, "'move'"),
    ({"op": "remove", "index": "2"}, "must be an integer"),
    ({"op": "resample", "index": 4}, "resample: 'index' 4 is out of range; the graph has 4"),
    ({"op": "resample", "index": True}, "resample: 'index' must be an integer"),
    ({"op": "resample"}, r"resample: missing \['index'\]"),
    ({"op": "resample", "index": 1, "object": "cow"}, r"unknown keys \['object'\]"),
    ("remove", "or its JSON dict, got str"),
])
def test_edit_errors(graph, edit, message):
    with pytest.raises(EditError, match=message):
        apply_edit(graph, edit)


@pytest.mark.parametrize("edit, field", [
    ({"op": "grow"}, "edits[1].op"),
    ({"op": "remove"}, "edits[1].index"),
    ({"op": "remove", "index": 1, "extra": 2}, "edits[1].extra"),
    ({"op": "add", "object": "boat"}, "edits[1].relationships"),
    ({"op": "add", "object": "boat", "relationship": [0, "above", 1]},
     "edits[1].relationships[0]"),
    ({"op": "add", "object": "boat", "relationship": ["new", "above", 9]},
     "edits[1].relationships[0].object"),
    ({"op": "add", "object": "boat", "relationship": ["new", "abve", 1]},
     "edits[1].relationships[0].predicate"),
    ({"op": "add", "object": "boat", "relationship": ["new", "above", 1], "box": [0, 0, 2, 1]},
     "edits[1].box"),
    ({"op": "replace", "index": 0, "object": "shep"}, "edits[1].object"),
    ({"op": "predicate", "relationship": 7, "predicate": "above"}, "edits[1].relationship"),
    ({"op": "predicate", "relationship": 0, "predicate": "above", "move": "x"}, "edits[1].move"),
    ({"op": "attributes", "index": 0, "attributes": "red"}, "edits[1].attributes"),
    ({"op": "resample", "index": 4}, "edits[1].index"),
])
def test_edit_errors_say_which_edit_and_key(graph, vocab, edit, field):
    before = {"op": "move", "index": 0, "box": [0.0, 0.0, 0.5, 0.5]}
    with pytest.raises(EditError) as info:
        apply_edits(graph, load_edits([before, edit]), vocab)
    e = info.value
    assert (e.edit, e.field) == (1, field)
    assert str(e).startswith("edit 1") and str(e).endswith(e.detail)
    assert bool(e.suggestions) == ("shep" in str(edit) or "abve" in str(edit))


def test_json_round_trip_and_files(tmp_path):
    edits = [AddObject("boat", (("new", "above", 1),), (0.1, 0.1, 0.2, 0.2)), RemoveObject(1),
             ReplaceObject(0, "sky"), ChangePredicate(0, "below", "both"),
             MoveObject(1, (0.0, 0.0, 0.5, 0.5)), ResampleObject(0)]
    dicts = [edit_to_dict(e) for e in edits]
    path = tmp_path / "edits.json"
    path.write_text(json.dumps(dicts))
    loaded = load_edits(path)
    assert [edit_to_dict(e) for e in loaded] == dicts
    assert loaded[0] == AddObject("boat", (("new", "above", 1),), (0.1, 0.1, 0.2, 0.2))
    assert edit_from_dict({"op": "add", "object": "boat",
                           "relationship": ["new", "above", 1]}).relationships == \
        (("new", "above", 1),)
    one = tmp_path / "one.json"
    one.write_text(json.dumps({"op": "remove", "index": 0}))
    assert load_edits(one) == [RemoveObject(0)]
    bad = tmp_path / "bad.json"
    bad.write_text("[{")
    with pytest.raises(EditError, match="not valid JSON"):
        load_edits(bad)
    with pytest.raises(EditError, match="not found"):
        load_edits(tmp_path / "missing.json")
    path.write_text(json.dumps([{"op": "remove", "index": 0}, {"op": "nope"}]))
    with pytest.raises(EditError, match=r"edits.json: edit 1: unknown edit op"):
        load_edits(path)
    with pytest.raises(EditError, match="empty"):
        load_edits([])

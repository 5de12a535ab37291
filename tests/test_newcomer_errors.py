"""The first mistakes a newcomer makes with the README in hand get messages that name the fix:
object names instead of a graph, one edit not in a list, indices counted from 1, an unknown
name with nothing close, and a dataset folder that is not there."""

import json

import pytest

from sg2img import generate
from sg2img.cli import main
from sg2img.config import DataConfig
from sg2img.data import DatasetNotFoundError, build_dataset
from sg2img.data.shapes import shapes_vocab
from sg2img.edits import (
    AddObject,
    ChangePredicate,
    EditError,
    RemoveObject,
    apply_edit,
    apply_edits,
    load_edits,
)
from sg2img.hints import GRAPH_FORM
from sg2img.manipulation import manipulate
from sg2img.scene_graph import SceneGraph, SceneGraphError, load_scene_graphs
from sg2img.testing import random_model_export
from sg2img.vocab import LISTED_NAMES, UnknownNameError, Vocab

SHAPES_PREDICATES = "above, below, inside, left of, right of, surrounding"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> str:
    return str(random_model_export(tmp_path_factory.mktemp("model") / "tiny.pt", shapes_vocab()))


def _one_line(message: str, limit: int = 700) -> None:
    assert "\n" not in message and len(message) < limit, message


# ------------------------------------------------------- object names instead of a graph
def test_object_names_get_the_graph_they_meant():
    with pytest.raises(SceneGraphError) as err:
        generate(["sky", "grass"])          # refused before any model loads
    msg = str(err.value)
    assert "not found" not in msg
    assert GRAPH_FORM in msg
    assert 'did you mean {"objects": ["sky", "grass"], "relationships": []}?' in msg
    _one_line(msg)


def test_one_object_name_gets_the_graph_it_meant():
    with pytest.raises(SceneGraphError, match=r"'sky' is neither a scene graph file \(no such "
                                              r"file\) nor a scene graph") as err:
        load_scene_graphs("sky")
    assert '{"objects": ["sky"], "relationships": []}' in str(err.value)
    assert "in a .json file" in str(err.value)          # what to do on the command line


def test_a_name_among_graphs_is_placed_by_position():
    with pytest.raises(SceneGraphError, match=r"^graph 1: 'sheep' is neither") as err:
        load_scene_graphs([{"objects": ["sky"]}, "sheep"])
    assert err.value.graph == 1


@pytest.mark.parametrize("path", ["graphs/x.json", "x.json", "X.JSON", "graphs/x"])
def test_missing_files_are_still_missing_files(path):
    with pytest.raises(SceneGraphError, match=r"^scene graph file not found: ") as err:
        load_scene_graphs(path)
    assert "did you mean" not in str(err.value)
    with pytest.raises(SceneGraphError, match="scene graph file not found"):
        load_scene_graphs([path])


def test_an_existing_file_without_json_suffix_is_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sky").write_text(json.dumps({"objects": ["sky"]}))
    assert load_scene_graphs("sky")[0].objects == ("sky",)
    assert load_scene_graphs(["sky"])[0].objects == ("sky",)


def test_json_text_is_told_to_parse_it():
    with pytest.raises(SceneGraphError, match=r"is JSON text.*json\.loads\(text\)"):
        load_scene_graphs('{"objects": ["sky"]}')


def test_the_names_message_is_bounded():
    names = [f"{'x' * 300}{i}" for i in range(1000)]
    with pytest.raises(SceneGraphError) as err:
        load_scene_graphs(names)
    _one_line(str(err.value))
    assert str(err.value).count('"x') <= 6 and '..."' not in str(err.value)
    assert ', ...], "relationships": []}' in str(err.value)


def test_the_command_line_says_the_same(capsys):
    assert main(["generate", "sky", "--out", "unused"]) == 2
    err = capsys.readouterr().err
    assert '{"objects": ["sky"], "relationships": []}' in err and "not found" not in err


# ------------------------------------------------------------------ one edit, no list
SHEEP = {"objects": ["sky", "grass", "sheep"], "relationships": [[0, "above", 1],
                                                                 [2, "inside", 1]]}


def test_one_edit_is_accepted_without_a_list():
    assert load_edits({"op": "remove", "index": 2}) == [RemoveObject(2)]
    assert load_edits(RemoveObject(2)) == [RemoveObject(2)]
    [res] = apply_edits(SHEEP, {"op": "remove", "index": 2})
    assert res.graph.objects == ("sky", "grass")


def test_manipulate_takes_one_edit(ckpt):
    res = manipulate(SHEEP, {"op": "remove", "index": 2}, ckpt, seed=0, device="cpu")
    assert len(res.images) == 2 and res.graphs[1].objects == ("sky", "grass")


@pytest.mark.parametrize("source", [5, None, b"edits.json"])
def test_what_is_not_edits_says_what_is(source):
    with pytest.raises(EditError, match=r"expected a list of edits \(dicts such as "
                                        r"\{\"op\": \"remove\", \"index\": 2\}\), one edit"):
        load_edits(source)


# ------------------------------------------------------------------ counting from 1
def test_relationship_index_one_past_the_end_says_0_based():
    with pytest.raises(SceneGraphError) as err:
        SceneGraph.from_dict({"objects": ["sky", "grass"], "relationships": [[1, "above", 2]]})
    assert str(err.value) == ("relationships[0]: object index 2 is out of range; the graph has "
                              "2 objects; indices are 0-based: objects 0..1 (sky=0, grass=1)")


def test_other_bad_indices_get_the_valid_range():
    with pytest.raises(SceneGraphError) as err:
        SceneGraph.from_dict({"objects": ["sky", "grass"], "relationships": [[0, "above", 7]]})
    assert str(err.value).endswith("the graph has 2 objects (0..1)")
    assert "0-based" not in str(err.value)


def test_long_graphs_show_the_first_indices():
    names = [f"o{i}" for i in range(10)]
    with pytest.raises(SceneGraphError) as err:
        SceneGraph(tuple(names), ((0, "above", 10),))
    assert str(err.value).endswith("indices are 0-based: objects 0..9 (o0=0, o1=1, o2=2, o3=3, "
                                   "...)")


@pytest.mark.parametrize("edit, expected", [
    (RemoveObject(3), "remove: 'index' 3 is out of range; the graph has 3 objects; indices "
                      "are 0-based: objects 0..2 (sky=0, grass=1, sheep=2)"),
    (AddObject("boat", (("new", "above", 3),)), "indices are 0-based: objects 0..2"),
    (ChangePredicate(2, "below"), "predicate: relationship 2 is out of range; the graph has 2 "
                                  "relationships; indices are 0-based: relationships 0..1 "
                                  "(0: sky above grass, 1: sheep inside grass)"),
])
def test_edit_indices_one_past_the_end_say_0_based(edit, expected):
    with pytest.raises(EditError) as err:
        apply_edit(SHEEP, edit)
    assert expected in str(err.value)


def test_other_bad_edit_indices_get_the_valid_range():
    with pytest.raises(EditError) as err:
        apply_edit(SHEEP, RemoveObject(9))
    assert str(err.value).endswith("the graph has 3 objects (0..2)")


# ------------------------------------------------------------ a name with nothing close
def test_unknown_predicate_lists_the_few_there_are():
    vocab = shapes_vocab()
    with pytest.raises(UnknownNameError) as err:
        vocab.pred_idx("on")
    assert str(err.value) == f"unknown predicate 'on'; predicates: {SHAPES_PREDICATES}"
    assert err.value.suggestions == ()


def test_unknown_object_and_attribute_list_the_few_there_are():
    vocab = shapes_vocab()
    with pytest.raises(UnknownNameError) as err:
        vocab.object_idx("zzzz")
    listed = ", ".join(sorted(vocab.user_object_names()))
    assert str(err.value) == f"unknown object name 'zzzz'; object names: {listed}"
    with pytest.raises(UnknownNameError) as err:
        vocab.attribute_idx("qqqq")
    listed = ", ".join(sorted(vocab.user_attribute_names()))
    assert str(err.value) == f"unknown attribute 'qqqq'; attributes: {listed}"


def test_close_names_are_still_the_answer():
    with pytest.raises(UnknownNameError, match=r"closest names: \['sheep'"):
        shapes_vocab().object_idx("shep")


def test_large_vocabularies_point_to_the_vocab_command():
    vocab = Vocab.from_names([f"thing{i:03d}" for i in range(LISTED_NAMES + 1)], ["above"])
    with pytest.raises(UnknownNameError) as err:
        vocab.object_idx("zzzz")
    assert str(err.value) == ("unknown object name 'zzzz'; none of the 31 object names is "
                              "close; run `sg2img vocab` (with --checkpoint for a trained "
                              "model) to list them")


def test_few_but_long_names_are_not_all_listed():
    vocab = Vocab.from_names(["a" * 200 + str(i) for i in range(10)], ["above"])
    with pytest.raises(UnknownNameError, match="run `sg2img vocab`") as err:
        vocab.object_idx("zzzz")
    _one_line(str(err.value), 200)


def test_generate_names_the_predicates_of_the_bundled_model():
    graph = {"objects": ["sky", "grass"], "relationships": [[0, "on", 1]]}
    with pytest.raises(SceneGraphError) as err:
        generate(graph, device="cpu")
    assert str(err.value) == f"relationships[0]: unknown predicate 'on'; predicates: " \
                             f"{SHAPES_PREDICATES}"


# ----------------------------------------------------------- a dataset that is not there
def test_missing_coco_names_its_files_and_the_guide(tmp_path):
    cfg = DataConfig(dataset="coco", root=str(tmp_path / "coco"))
    with pytest.raises(DatasetNotFoundError) as err:
        build_dataset(cfg, "train", 32, 8)
    msg = str(err.value)
    assert "annotations/instances_train2017.json" in msg and "images/train2017/" in msg
    assert "docs/datasets.md" in msg and "make_shapes" not in msg
    _one_line(msg)


def test_missing_vg_names_its_files_and_the_guide(tmp_path):
    cfg = DataConfig(dataset="vg", root=str(tmp_path / "vg"))
    with pytest.raises(DatasetNotFoundError) as err:
        build_dataset(cfg, "train", 32, 8)
    msg = str(err.value)
    assert "{train,val,test}.h5, vocab.json and images/" in msg
    assert "data_tools/preprocess_vg.py" in msg and "docs/datasets.md" in msg
    assert "make_shapes" not in msg


def test_missing_shapes_points_to_make_shapes(tmp_path):
    root = tmp_path / "shapes64"
    with pytest.raises(DatasetNotFoundError, match=rf"make the procedural scenes with python "
                                                   rf"data_tools/make_shapes\.py --out {root}$"):
        build_dataset(DataConfig(root=str(root)), "train", 32, 8)


def test_train_coco64_without_the_data_says_what_coco_needs(tmp_path, capsys):
    argv = ["train", "--preset", "coco64", "--data", str(tmp_path / "coco"),
            "--out", str(tmp_path / "run")]
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert "instances_train2017.json" in err and "docs/datasets.md" in err
    assert "make_shapes" not in err and not (tmp_path / "run").exists()

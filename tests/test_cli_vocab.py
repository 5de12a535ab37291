"""``sg2img vocab``: what a model knows, for a person (text) and for tools (``--json``)."""

import json

import pytest
import torch

from sg2img.api import DEFAULT_MODEL_PATH
from sg2img.cli import main
from sg2img.data.shapes import OTHER_NAME, STUFF_CLASSES, THING_CLASSES, class_attributes
from sg2img.testing import random_model_export
from sg2img.vocab import COCO_PREDICATES, Vocab

THINGS = [c.name for c in THING_CLASSES]
STUFF = [c.name for c in STUFF_CLASSES] + [OTHER_NAME]


def _run(argv, capsys) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_the_bundled_model_lists_27_objects_6_predicates_and_attributes_per_class(capsys):
    code, out, err = _run(["vocab", "--json"], capsys)
    assert code == 0 and err == ""
    d = json.loads(out)
    assert len(d["objects"]) == 27 and OTHER_NAME in d["objects"]
    assert d["things"] == THINGS and d["stuff"] == STUFF
    assert sorted(d["objects"]) == sorted(THINGS + STUFF)
    assert d["predicates"] == list(COCO_PREDICATES[1:]) and len(d["predicates"]) == 6
    assert len(d["attributes"]) == 16
    table = d["class_attributes"]
    assert list(table) == d["objects"]
    # Counted from the model's 10000 training images: every pair the renderer can write.
    assert table == {name: list(attrs) for name, attrs in class_attributes().items()}
    assert table["sheep"] == ["white", "small"] and table[OTHER_NAME] == []
    assert table["car"] == ["black", "blue", "green", "red", "white", "large", "small"]


def test_the_text_listing_reads_in_a_terminal(capsys):
    code, out, _ = _run(["vocab"], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "Vocabulary of the bundled model"
    assert max(map(len, lines)) <= 88
    assert "objects (27):" in lines
    assert any(line.startswith("  things (18): sun, cloud,") for line in lines)
    assert "  stuff (9): sky, mountain, grass, water, sand, road, wall, snow, other" in lines
    assert "predicates (6): left of, right of, above, below, inside, surrounding" in lines
    assert any(line.startswith("attributes (16): black, blue,") for line in lines)
    # Each class's attributes, then the ones an object given none takes (the bundled
    # vocabulary records both).
    assert "  sheep     white, small (given none: white)" in lines
    assert "  other     none" in lines
    assert "  car       black, blue, green, red, white, large, small (given none: white)" in lines


def test_default_is_the_bundled_model(capsys):
    assert main(["vocab", "--json"]) == 0
    default = json.loads(capsys.readouterr().out)
    assert main(["vocab", "--json", "--checkpoint", str(DEFAULT_MODEL_PATH)]) == 0
    assert json.loads(capsys.readouterr().out) == default


def test_a_model_without_attributes_or_table(tmp_path, capsys):
    plain = random_model_export(tmp_path / "plain.pt", Vocab.from_names(["cow", "sky"],
                                                                        ["above"]))
    code, out, _ = _run(["vocab", "--checkpoint", str(plain)], capsys)
    assert code == 0 and out.splitlines()[0] == f"Vocabulary of {plain}"
    assert "objects (2): cow, sky" in out and "things" not in out
    assert "attributes: none (the model was trained without attributes)" in out
    vg_like = random_model_export(tmp_path / "vg.pt", Vocab.from_names(
        ["cow", "sky"], ["above"], ["brown", "blue"]))
    code, out, _ = _run(["vocab", "--checkpoint", str(vg_like)], capsys)
    assert "attributes (2): brown, blue" in out
    assert "attributes per class: not recorded" in out
    code, out, _ = _run(["vocab", "--checkpoint", str(vg_like), "--json"], capsys)
    assert json.loads(out) == {"objects": ["cow", "sky"], "things": None, "stuff": None,
                               "predicates": ["above"], "attributes": ["brown", "blue"],
                               "class_attributes": None, "default_attributes": None}


def test_bad_checkpoints_are_one_line_errors(tmp_path, capsys):
    code, out, err = _run(["vocab", "--checkpoint", str(tmp_path / "missing.pt")], capsys)
    assert code == 2 and out == "" and "missing.pt" in err and len(err.splitlines()) == 1
    bad = random_model_export(tmp_path / "bad.pt", Vocab.from_names(["cow"], ["above"], ["red"]))
    ck = torch.load(bad, weights_only=True)
    ck["vocab"]["class_attributes"] = {"horse": []}
    torch.save(ck, bad)
    code, _, err = _run(["vocab", "--checkpoint", str(bad)], capsys)
    assert code == 2
    assert "vocabulary is invalid" in err and "'horse', which is not an object name" in err


@pytest.mark.parametrize("argv", [["--help"], ["vocab", "--help"]])
def test_help_names_the_command(argv, capsys):
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "sg2img vocab" in out

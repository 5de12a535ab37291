"""The ``sg2img`` command, the example files and the manipulation benchmark script."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sg2img.cli import build_parser, main
from sg2img.data.shapes import shapes_vocab
from sg2img.edits import apply_edits, load_edits
from sg2img.scene_graph import load_scene_graphs
from sg2img.testing import random_model_export

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> str:
    """A random tiny model with the procedural scenes' vocabulary (what the examples use)."""
    return str(random_model_export(tmp_path_factory.mktemp("model") / "tiny.pt", shapes_vocab()))


SHEEP = {"objects": ["sky", "grass", "sheep"],
         "relationships": [[0, "above", 1], [2, "inside", 1]]}


def _image(path: Path) -> Image.Image:
    with Image.open(path) as im:
        return im.convert("RGB")


def _write(path: Path, data) -> str:
    path.write_text(json.dumps(data))
    return str(path)


# ------------------------------------------------------------------------ help
@pytest.mark.parametrize("argv", [["--help"], ["generate", "--help"], ["manipulate", "--help"],
                                  ["train", "--help"], ["evaluate", "--help"]])
def test_help_shows_examples(argv, capsys):
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "sg2img " in out


def test_help_does_not_load_the_model_stack():
    code = ("import sys; from sg2img.cli import main; main(['generate', '--help']); "
            "heavy = [m for m in ('sg2img.api', 'sg2img.model', 'torch_geometric', "
            "'matplotlib') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout
    assert out.strip().endswith("[]")


def test_help_does_not_import_torch():
    code = ("import sys; from sg2img.cli import main; main(['--help']); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout
    assert out.strip().endswith("False")


def test_usage_error_returns_2(capsys):
    assert main(["generate"]) == 2
    assert "GRAPHS.json" in capsys.readouterr().err


def test_train_and_evaluate_arguments_parse():
    args = build_parser().parse_args(
        ["train", "--preset", "tiny", "--data", "d", "--set", "a.b=1", "--set", "c.d=2",
         "--out", "runs/x", "--resume"])
    assert (args.preset, args.data, args.set, args.out, args.resume) == \
        ("tiny", "d", ["a.b=1", "c.d=2"], "runs/x", "auto")
    assert build_parser().parse_args(["train", "--out", "r", "--resume", "c.pt"]).resume == "c.pt"
    args = build_parser().parse_args(
        ["evaluate", "--checkpoint", "c.pt", "--data", "d", "--split", "test", "--metrics",
         "fid", "is", "--samples-per-graph", "2", "--out", "r.json", "--seed", "3",
         "--device", "cpu"])
    assert (args.checkpoint, args.split, args.metrics, args.samples_per_graph, args.seed) == \
        ("c.pt", "test", ["fid", "is"], 2, 3)


# ------------------------------------------------------------------------ generate
def test_generate_writes_predictable_names(ckpt, tmp_path, capsys):
    graphs = _write(tmp_path / "scenes.json", [SHEEP, {"objects": ["sky", "water", "boat"]}])
    one = _write(tmp_path / "one.json", SHEEP)
    out = tmp_path / "out"
    rc = main(["generate", graphs, one, "--checkpoint", ckpt, "--out", str(out), "--seed", "1",
               "--samples", "2", "--save-layout", "--draw-graph", "--sheet"])
    assert rc == 0
    expected = {f"scenes_{i:03d}_s{s}.png" for i in range(2) for s in range(2)}
    expected |= {f"scenes_{i:03d}_{kind}.png" for i in range(2) for kind in ("layout", "graph")}
    expected |= {"one_000_s0.png", "one_000_s1.png", "one_000_layout.png", "one_000_graph.png",
                 "scenes_sheet.png", "one_sheet.png"}
    assert {p.name for p in out.iterdir()} == expected
    assert _image(out / "scenes_001_s1.png").size == (32, 32)
    printed = capsys.readouterr().out
    assert f"wrote {len(expected)} files to {out}" in printed
    assert str(out / "one_000_s0.png") in printed
    # Same seed, same pixels; the same graph in another file gets the same image.
    again = tmp_path / "again"
    assert main(["generate", one, "--checkpoint", ckpt, "--out", str(again), "--seed", "1"]) == 0
    assert _image(again / "one_000_s0.png").tobytes() == \
        _image(out / "scenes_000_s0.png").tobytes()
    assert main(["generate", one, "--checkpoint", ckpt, "--out", str(again), "--size", "64"]) == 0
    assert _image(again / "one_000_s0.png").size == (64, 64)
    # --precision bf16: the same graph and seed, a slightly different picture.
    half = tmp_path / "bf16"
    assert main(["generate", one, "--checkpoint", ckpt, "--out", str(half), "--seed", "1",
                 "--precision", "bf16"]) == 0
    a = np.asarray(_image(half / "one_000_s0.png"), dtype=np.float32)
    b = np.asarray(_image(out / "scenes_000_s0.png"), dtype=np.float32)
    assert 0 < np.abs(a - b).mean() < 10, np.abs(a - b).mean()


@pytest.mark.parametrize("content,message", [
    ({"objects": ["sky", "sheeep"]}, "unknown object name 'sheeep'; closest names: ['sheep'"),
    ({"objects": ["sky"], "relationships": [[0, "above", 4]]}, "object index 4 is out of range"),
    ("{not json", "is not valid JSON"),
    ([SHEEP, {"objects": ["sky", "grass"], "relationships": [[0, "on", 1]]}],
     "bad.json graph 1: relationships[0]: unknown predicate 'on'"),
])
def test_generate_bad_input_one_line_nothing_written(ckpt, tmp_path, capsys, content, message):
    bad = tmp_path / "bad.json"
    bad.write_text(content if isinstance(content, str) else json.dumps(content))
    out = tmp_path / "out"
    rc = main(["generate", str(bad), "--checkpoint", ckpt, "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("sg2img: error: ") and err.count("\n") == 1, err
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_generate_errors_keep_existing_folder_clean(ckpt, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    good = _write(tmp_path / "good.json", SHEEP)
    assert main(["generate", good, "--checkpoint", str(tmp_path / "none.pt"),
                 "--out", str(out)]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    assert main(["generate", good, str(tmp_path / "missing.json"), "--checkpoint", ckpt,
                 "--out", str(out)]) == 2
    assert "scene graph file not found" in capsys.readouterr().err
    sub = tmp_path / "sub"
    sub.mkdir()
    same_stem = _write(sub / "good.json", SHEEP)
    assert main(["generate", good, same_stem, "--checkpoint", ckpt, "--out", str(out)]) == 2
    assert "same names" in capsys.readouterr().err
    assert main(["generate", good, "--checkpoint", ckpt, "--out", str(out),
                 "--samples", "0"]) == 2
    assert list(out.iterdir()) == []


def test_debug_shows_the_traceback(ckpt, tmp_path):
    bad = _write(tmp_path / "bad.json", {"objects": ["sheeep"]})
    with pytest.raises(ValueError, match="sheeep"):
        main(["generate", bad, "--checkpoint", ckpt, "--out", str(tmp_path / "o"), "--debug"])
    with pytest.raises(ValueError, match="sheeep"):
        main(["--debug", "generate", bad, "--checkpoint", ckpt, "--out", str(tmp_path / "o")])


# ------------------------------------------------------------------------ manipulate
def test_manipulate_writes_steps_sheet_and_json(ckpt, tmp_path, capsys):
    out = tmp_path / "edits_out"
    rc = main(["manipulate", str(EXAMPLES / "lake.json"), str(EXAMPLES / "edits" / "lake.json"),
               "--checkpoint", ckpt, "--out", str(out), "--seed", "2"])
    assert rc == 0, capsys.readouterr().err
    n = len(load_edits(EXAMPLES / "edits" / "lake.json"))
    names = {f"lake_step{k:02d}.png" for k in range(n + 1)}
    names |= {"lake_manipulation.png", "lake_steps.json"}
    assert {p.name for p in out.iterdir()} == names
    steps = json.loads((out / "lake_steps.json").read_text())["steps"]
    assert len(steps) == n + 1 and steps[1]["edit"]["op"] == "add"
    assert steps[1]["change_inside"] is not None
    assert "lake_manipulation.png" in capsys.readouterr().out


def test_manipulate_bad_edits_and_index(ckpt, tmp_path, capsys):
    graph = _write(tmp_path / "g.json", SHEEP)
    edits = _write(tmp_path / "e.json", [{"op": "remove", "index": 7}])
    out = tmp_path / "out"
    assert main(["manipulate", graph, edits, "--checkpoint", ckpt, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "e.json: edit 0 (remove): remove: 'index' 7 is out of range" in err
    assert err.count("\n") == 1 and not out.exists()
    many = _write(tmp_path / "many.json", [SHEEP, SHEEP])
    ok = _write(tmp_path / "ok.json", [{"op": "remove", "index": 0}])
    assert main(["manipulate", many, ok, "--checkpoint", ckpt, "--out", str(out)]) == 2
    assert "--index" in capsys.readouterr().err
    assert main(["manipulate", many, ok, "--checkpoint", ckpt, "--out", str(out),
                 "--index", "1"]) == 0
    assert (out / "many_001_step01.png").exists()


# ------------------------------------------------------------------------------- examples
def test_examples_are_valid_for_the_procedural_vocabulary():
    vocab = shapes_vocab()
    files = sorted(EXAMPLES.glob("*.json"))
    assert len(files) >= 3
    counts = []
    for f in files:
        graphs = load_scene_graphs(f)
        counts.append(len(graphs))
        for g in graphs:
            g.check_vocab(vocab)
    assert 1 in counts and max(counts) > 1          # one single graph, one list of graphs
    (lake,) = load_scene_graphs(EXAMPLES / "lake.json")
    apply_edits(lake, load_edits(EXAMPLES / "edits" / "lake.json"), vocab)


def test_evaluate_gt_layout_reaches_evaluate_checkpoint(monkeypatch, capsys):
    """``--gt-layout`` renders from the ground-truth layout (the renderer alone); without it
    the predicted layout is used."""
    import sg2img.eval as E

    seen = []

    def fake(checkpoint, data, split, **kw):
        seen.append((kw["use_gt_layout"], kw["precision"]))
        return {"split": split, "metrics": {}, "protocols": {}}

    monkeypatch.setattr(E, "evaluate_checkpoint", fake)
    assert main(["evaluate", "--checkpoint", "c.pt", "--gt-layout"]) == 0
    assert main(["evaluate", "--checkpoint", "c.pt", "--precision", "bf16"]) == 0
    assert seen == [(True, "fp32"), (False, "bf16")]


def test_precision_choices_are_the_libraries():
    """The CLI names its --precision choices without importing torch (fast --help); they must
    stay the ones generate() and evaluate() accept."""
    from sg2img.model import PRECISIONS

    parser = build_parser()
    for command in ("generate", "evaluate"):
        sub = next(a for a in parser._subparsers._group_actions[0].choices[command]._actions
                   if a.dest == "precision")
        assert tuple(sub.choices) == tuple(PRECISIONS)


def test_layout_mode_choices_are_the_libraries():
    """Likewise --layout-mode of generate and evaluate: the layout head's modes."""
    from sg2img.layout_head import LAYOUT_MODES

    parser = build_parser()
    for command in ("generate", "evaluate"):
        sub = next(a for a in parser._subparsers._group_actions[0].choices[command]._actions
                   if a.dest == "layout_mode")
        assert set(sub.choices) == set(LAYOUT_MODES)

"""Hostile input (issue 11): every case fails cleanly, bounded, and leaves nothing behind.

Command line: exit status 2, exactly one line on stderr that names the file and the problem
(no traceback, bounded length), no partial outputs. Python API: only the documented
exceptions (SceneGraphError, EditError, CheckpointError, GenerationError, BoxFileError,
DatasetError / DatasetNotFoundError, EvalWeightsError). Everything runs on a tiny random model
and datasets written into tmp_path; nothing large is held in memory (the 400-megapixel image is
a PNG header that claims the size).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from data_fixtures import STUFF_CATS, THING_CATS, write_tiny_coco

from sg2img.api import GenerationError, generate, load_model
from sg2img.checkpoint import CheckpointError, export_inference
from sg2img.cli import main
from sg2img.config import Config
from sg2img.data import CocoSceneGraphDataset, DatasetError, DatasetNotFoundError
from sg2img.data.common import load_image
from sg2img.data.shapes import shapes_vocab
from sg2img.edits import MAX_EDITS, EditError, apply_edits
from sg2img.eval import BoxFileError, load_box_file, write_report
from sg2img.files import DiskFullError, atomic_torch_save
from sg2img.manipulation import manipulate
from sg2img.model import GALSGenerator
from sg2img.scene_graph import (
    DEFAULT_MAX_OBJECTS,
    DEFAULT_MAX_RELATIONSHIPS,
    SceneGraphError,
)
from sg2img.vocab import Vocab

SHEEP = {"objects": ["sky", "grass", "sheep"],
         "relationships": [[0, "above", 1], [2, "inside", 1]]}
DEEP = "[" * 100_000 + "]" * 100_000
LONG_INT = "1" * 5000
API_ERRORS = (SceneGraphError, CheckpointError, GenerationError)
MAX_LINE = 1200


class _Hang(BaseException):
    """Raised by the alarm when a read hangs (not an Exception, so the CLI cannot catch it)."""


@pytest.fixture(autouse=True)
def no_hang():
    """Fail instead of hanging forever on a FIFO or a device."""

    def handler(signum, frame):
        raise _Hang("hung for 60 s")

    old = signal.signal(signal.SIGALRM, handler)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


# ------------------------------------------------------------------------ fixtures
def _tiny_export(path: Path, vocab: Vocab) -> Path:
    cfg = Config.from_preset("tiny")
    torch.manual_seed(0)
    gen = GALSGenerator(cfg.model, vocab.num_objects, vocab.num_preds)
    return export_inference(path, cfg, vocab, gen)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    """A random tiny model with the procedural scenes' vocabulary."""
    return _tiny_export(tmp_path_factory.mktemp("model") / "tiny.pt", shapes_vocab())


@pytest.fixture(scope="module")
def model(ckpt):
    return load_model(ckpt, "cpu")


@pytest.fixture(scope="module")
def coco_ckpt(tmp_path_factory) -> Path:
    """A random tiny model with the vocabulary of the tiny COCO fixture."""
    vocab = Vocab.from_coco_categories(THING_CATS + STUFF_CATS)
    return _tiny_export(tmp_path_factory.mktemp("coco_model") / "coco.pt", vocab)


def _coco(root: Path, split: str = "val") -> Path:
    write_tiny_coco(root, (f"instances_{split}.json", f"stuff_{split}.json"), f"images/{split}")
    return root


GOOD_BOXES = {"1": [[0.1, 0.1, 0.3, 0.4]] * 4, "5": [[0.2, 0.2, 0.5, 0.6]] * 3}


def _write(path: Path, data) -> str:
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


def _fails_cleanly(argv: list[str], capsys, *contains: str, out: Path | None = None) -> str:
    """Run the CLI; assert exit 2, one bounded stderr line containing ``contains``.

    Training and evaluation draw a progress bar on stderr (lines of ``\r``-separated tqdm
    updates); those lines are not messages and are set aside.
    """
    rc = main(argv)
    cap = capsys.readouterr()
    err = "".join(line + "\n" for line in cap.err.split("\n")[:-1]
                  if not (argv[0] in ("train", "evaluate")
                          and (line.startswith("\r") or "%|" in line)))
    err += cap.err.split("\n")[-1]
    assert rc == 2, (rc, err[:2000])
    assert err.startswith("sg2img") and err.count("\n") == 1, err[:2000]
    assert "Traceback" not in err and len(err) < MAX_LINE, err[:2000]
    for c in contains:
        assert c in err, (c, err)
    if out is not None:
        assert not out.exists() or not any(out.iterdir()), list(out.iterdir())
    return err


def _png_header(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height`` pixels but holds no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"") + chunk(b"IEND", b"")


# ------------------------------------------------------------------------ generate: files
def _generate_case(kind: str, tmp_path: Path, monkeypatch) -> tuple[str, list[str]]:
    """The graph file for a ``generate`` case and what its error line must contain."""
    g = tmp_path / "g.json"
    if kind == "fifo":
        os.mkfifo(g)
        return str(g), [str(g), "not a regular file"]
    if kind == "dev_zero":
        return "/dev/zero", ["/dev/zero", "not a regular file"]
    if kind == "directory":
        return str(tmp_path), [str(tmp_path), "is a directory"]
    if kind == "size_limit":
        monkeypatch.setenv("SG2IMG_MAX_JSON_MB", "0.001")
        _write(g, {**SHEEP, "objects": ["sky", "grass", "sheep" + " " * 2000]})
        return str(g), [str(g), "limit", "SG2IMG_MAX_JSON_MB"]
    if kind == "many_relationships":  # the 1M-relationship file, scaled down
        _write(g, {"objects": ["sky", "grass"], "relationships": [[0, "above", 1]] * 200_000})
        return str(g), [str(g), "200000 relationships", f"maximum of {DEFAULT_MAX_RELATIONSHIPS}"]
    if kind == "many_objects":
        _write(g, {"objects": ["sky"] * (DEFAULT_MAX_OBJECTS + 1)})
        return str(g), [str(g), f"{DEFAULT_MAX_OBJECTS + 1} objects"]
    if kind == "deep_json":
        _write(g, DEEP)
        return str(g), [str(g), "nested too deeply"]
    if kind == "box_not_a_list":
        _write(g, {"objects": ["sky", "grass"], "boxes": [None, 0.5]})
        return str(g), [str(g), "boxes[1]", "0.5"]
    if kind == "relationship_not_a_list":
        _write(g, {"objects": ["sky", "grass"], "relationships": [5]})
        return str(g), [str(g), "relationships[0]"]
    if kind == "nan_box":
        _write(g, '{"objects": ["sky"], "boxes": [[0, 0, NaN, 1]]}')
        return str(g), [str(g), "boxes[0]", "finite"]
    if kind == "huge_int_box":
        _write(g, '{"objects": ["sky"], "boxes": [[0, 0, 1' + "0" * 400 + ', 1]]}')
        return str(g), [str(g), "boxes[0]"]
    if kind == "long_integer":
        _write(g, '{"objects": ["sky", "grass"], "relationships": [[0, "above", '
               + LONG_INT + "]]}")
        return str(g), [str(g), "number too long"]
    if kind == "duplicate_keys":
        _write(g, '{"objects": ["sky"], "objects": ["grass"]}')
        return str(g), [str(g), "duplicate key 'objects'"]
    if kind == "huge_name":  # 50 MB, echoed whole before
        _write(g, {"objects": ["sky", "x" * 50_000_000]})
        return str(g), [str(g), "objects[1] is 50000000 characters long"]
    if kind == "huge_unknown_key":
        _write(g, {"objects": ["sky"], "y" * 1_000_000: 1})
        return str(g), [str(g), "unknown scene graph keys"]
    if kind == "not_utf8":
        g.write_bytes(b'{"objects": ["\xff\xfe"]}')
        return str(g), [str(g), "not UTF-8"]
    raise AssertionError(kind)


GENERATE_FILE_CASES = ["fifo", "dev_zero", "directory", "size_limit", "many_relationships",
                       "many_objects", "deep_json", "box_not_a_list", "relationship_not_a_list",
                       "nan_box", "huge_int_box", "long_integer", "duplicate_keys", "huge_name",
                       "huge_unknown_key", "not_utf8"]


@pytest.mark.parametrize("kind", GENERATE_FILE_CASES)
def test_cli_generate_bad_graph_file(kind, ckpt, tmp_path, monkeypatch, capsys):
    graph, contains = _generate_case(kind, tmp_path, monkeypatch)
    out = tmp_path / "out"
    err = _fails_cleanly(["generate", graph, "--checkpoint", str(ckpt), "--out", str(out),
                          "--draw-graph"], capsys, *contains, out=out)
    assert len(err) - len(graph) < 300, err


@pytest.mark.parametrize("kind", GENERATE_FILE_CASES)
def test_api_generate_bad_graph_file(kind, model, tmp_path, monkeypatch):
    graph, contains = _generate_case(kind, tmp_path, monkeypatch)
    with pytest.raises(SceneGraphError) as info:
        generate(graph, model, seed=0)
    msg = str(info.value)
    assert all(c in msg for c in contains) and len(msg) < MAX_LINE, msg[:2000]


def test_2000_relationships_with_draw_graph_are_refused_before_drawing(ckpt, tmp_path, capsys):
    rels = [[0, "above", 1]] * 2000
    g = _write(tmp_path / "g.json", {"objects": ["sky", "grass"], "relationships": rels})
    out = tmp_path / "out"
    _fails_cleanly(["generate", g, "--checkpoint", str(ckpt), "--out", str(out),
                    "--draw-graph", "--sheet"], capsys, "2000 relationships", out=out)


# ------------------------------------------------------------------------ arguments
@pytest.mark.parametrize("argv_tail,contains", [
    (["--seed", str(2**64)], "--seed: must be in 0..18446744073709551615"),
    (["--seed", LONG_INT], "--seed: expected an integer"),
    (["--seed", "-1"], "--seed"),
    (["--samples", "0"], "--samples: must be at least 1"),
    (["--samples", LONG_INT], "--samples: expected an integer"),
    (["--size", "abc"], "--size: expected an integer"),
    (["--no-such-option"], "unrecognized arguments"),
])
def test_cli_bad_argumentsone_line(argv_tail, contains, ckpt, tmp_path, capsys):
    g = _write(tmp_path / "g.json", SHEEP)
    out = tmp_path / "out"
    _fails_cleanly(["generate", g, "--checkpoint", str(ckpt), "--out", str(out), *argv_tail],
                   capsys, contains, out=out)


def test_cli_out_is_a_file(ckpt, tmp_path, capsys):
    g = _write(tmp_path / "g.json", SHEEP)
    out = tmp_path / "file"
    out.write_text("x")
    _fails_cleanly(["generate", g, "--checkpoint", str(ckpt), "--out", str(out)], capsys,
                   str(out), "not a folder")
    assert out.read_text() == "x"


@pytest.mark.parametrize("seed", [2**64, -1, 10**5000, "1", 1.5, True],
                         ids=["2**64", "-1", "10**5000", "str", "float", "bool"])
def test_api_bad_seed(seed, model):
    with pytest.raises(GenerationError, match="seed must be an integer"):
        generate(SHEEP, model, seed=seed)


def test_api_seed_edges_work(model):
    assert generate(SHEEP, model, seed=2**64 - 1).seed == 2**64 - 1


# ------------------------------------------------------------------------ API graph objects
@pytest.mark.parametrize("graph", [
    {"objects": ["sky", "grass"], "boxes": [None, 0.5]},
    {"objects": "sky"},
    {"objects": 5},
    {"objects": ["sky"], "relationships": [[0, "above", 10**5000]]},
    {"objects": ["sky"], "relationships": 7},
    {"objects": ["sky"], "attributes": [5]},
    {"objects": ["sky", ["grass"]]},
    {"objects": ["sky", "x" * 50_000_000]},
    {"objects": ["sky"] * 65},
    {"objects": ["sky", "grass"], "relationships": [[0, "above", 1]] * 513},
    {"objects": ["sky"], 1: 2, "b": 3},
    [[[[[]]]]],
    42,
    b"bytes",
], ids=lambda g: f"{type(g).__name__}")
def test_api_generate_malformed_graph(graph, model):
    with pytest.raises(SceneGraphError) as info:
        generate(graph, model, seed=0)
    assert len(str(info.value)) < MAX_LINE


def test_api_unknown_long_name_is_quick_and_bounded(model):
    # 256 characters passes the length check and reaches the vocabulary lookup.
    with pytest.raises(SceneGraphError, match="unknown object name") as info:
        generate({"objects": ["q" * 256]}, model, seed=0)
    # The name is echoed cut short; the rest is the vocabulary's names (bounded in vocab.py).
    assert "q" * 100 not in str(info.value) and len(str(info.value)) < MAX_LINE


# ------------------------------------------------------------------------ checkpoints
def _variant(ckpt: Path, tmp_path: Path, change) -> Path:
    state = torch.load(ckpt, weights_only=True)
    change(state)
    path = tmp_path / "variant.pt"
    torch.save(state, path)
    return path


def _set(keys, value):
    def change(state):
        d = state
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value
    return change


def _nan_weights(state):
    name = next(k for k, v in state["generator"].items() if v.is_floating_point())
    state["generator"][name] = torch.full_like(state["generator"][name], float("nan"))


def _vocab_index_1e9(state):
    v = state["vocab"]
    v.pop("object_idx_to_name", None)
    v["object_name_to_idx"] = {"__image__": 0, "sky": 10**9}


CHECKPOINT_VARIANTS = {
    "config_is_int": _set(["config"], 5),
    "section_is_int": _set(["config", "model"], 5),
    "image_size_str": _set(["config", "model", "image_size"], "64"),
    "image_size_float": _set(["config", "model", "image_size"], 64.5),
    "image_size_bool": _set(["config", "model", "image_size"], True),
    "image_size_none": _set(["config", "model", "image_size"], None),
    "image_size_huge": _set(["config", "model", "image_size"], 10**30),
    "gconv_dim_1e9": _set(["config", "model", "gconv_dim"], 10**9),
    "lr_nan": _set(["config", "train", "lr_g"], float("nan")),
    "unknown_key": _set(["config", "model", "surprise"], 1),
    "vocab_is_list": _set(["vocab"], [1, 2]),
    "vocab_index_1e9": _vocab_index_1e9,
    "generator_is_list": _set(["generator"], [1]),
    "generator_tensor_key": _set(["generator", "extra"], torch.zeros(3)),
    "nan_weights": _nan_weights,
    "format_version_str": _set(["format_version"], "1"),
    "format_version_new": _set(["format_version"], 99),
}


@pytest.mark.parametrize("name", sorted(CHECKPOINT_VARIANTS))
def test_api_bad_checkpoint_content(name, ckpt, tmp_path):
    path = _variant(ckpt, tmp_path, CHECKPOINT_VARIANTS[name])
    with pytest.raises(CheckpointError) as info:
        load_model(path, "cpu")
    assert str(path) in str(info.value) and len(str(info.value)) < MAX_LINE


@pytest.mark.parametrize("name", ["section_is_int", "image_size_str", "vocab_index_1e9",
                                  "nan_weights"])
def test_cli_bad_checkpoint_content(name, ckpt, tmp_path, capsys):
    path = _variant(ckpt, tmp_path, CHECKPOINT_VARIANTS[name])
    g = _write(tmp_path / "g.json", SHEEP)
    out = tmp_path / "out"
    _fails_cleanly(["generate", g, "--checkpoint", str(path), "--out", str(out)], capsys,
                   str(path), out=out)


@pytest.mark.parametrize("content", [b"", b"\x00", b"P", b"PK\x03\x04", b"\x80\x02}q\x00.",
                                     b"\x80\x04\x95" + b"\xff" * 20])
def test_cli_tiny_checkpoint_files(content, ckpt, tmp_path, capsys):
    path = tmp_path / "small.pt"
    path.write_bytes(content)
    g = _write(tmp_path / "g.json", SHEEP)
    out = tmp_path / "out"
    _fails_cleanly(["generate", g, "--checkpoint", str(path), "--out", str(out)], capsys,
                   str(path), out=out)


@pytest.mark.parametrize("where", ["fifo", "dev_zero", "directory"])
def test_cli_checkpoint_not_a_file(where, tmp_path, capsys):
    path = {"fifo": tmp_path / "c.pt", "dev_zero": Path("/dev/zero"), "directory": tmp_path}[where]
    if where == "fifo":
        os.mkfifo(path)
    g = _write(tmp_path / "g.json", SHEEP)
    _fails_cleanly(["generate", g, "--checkpoint", str(path), "--out", str(tmp_path / "o")],
                   capsys, str(path))


def test_fuzzed_checkpoints_raise_only_checkpoint_error(ckpt, tmp_path):
    """Truncations, byte flips and random small files: CheckpointError or a clean load.

    Flips land in the zip headers, the pickle and the central directory (the first and last
    4 KB); flips inside tensor data only change weights.
    """
    data = Path(ckpt).read_bytes()
    rng = np.random.default_rng(0)
    variants = [data[:n] for n in sorted(set(rng.integers(1, len(data), 30).tolist()))]
    for _ in range(30):
        b = bytearray(data)
        for pos in rng.integers(0, 4096, 3):
            b[pos if rng.random() < 0.5 else len(b) - 1 - pos] ^= int(rng.integers(1, 256))
        variants.append(bytes(b))
    variants += [rng.integers(0, 256, int(n), dtype=np.uint8).tobytes()
                 for n in rng.integers(1, 200, 30)]
    variants += [b"PK" + v[2:] for v in variants[-10:]]
    path = tmp_path / "fuzz.pt"
    outcomes = {"error": 0, "loaded": 0}
    for v in variants:
        path.write_bytes(v)
        try:
            load_model(path, "cpu")
            outcomes["loaded"] += 1
        except CheckpointError:
            outcomes["error"] += 1
    assert sum(outcomes.values()) == len(variants) >= 90
    assert outcomes["error"] >= 60


# ------------------------------------------------------------------------ non-finite output
def test_nan_images_are_refused_before_writing(ckpt, model, tmp_path, monkeypatch, capsys):
    real = GALSGenerator.forward

    def nan_forward(self, *args, **kwargs):
        out = real(self, *args, **kwargs)
        out.images = out.images * float("nan")
        return out

    monkeypatch.setattr(GALSGenerator, "forward", nan_forward)
    with pytest.raises(GenerationError, match="NaN or infinite pixels"):
        generate(SHEEP, model, seed=0)
    with pytest.raises(GenerationError, match="NaN or infinite pixels"):
        manipulate(SHEEP, [{"op": "remove", "index": 2}], model, seed=0)
    g = _write(tmp_path / "g.json", SHEEP)
    e = _write(tmp_path / "e.json", [{"op": "remove", "index": 2}])
    out = tmp_path / "out"
    _fails_cleanly(["generate", g, "--checkpoint", str(ckpt), "--out", str(out)], capsys,
                   "NaN or infinite pixels", out=out)
    _fails_cleanly(["manipulate", g, e, "--checkpoint", str(ckpt), "--out", str(out)], capsys,
                   "NaN or infinite pixels", out=out)


# ------------------------------------------------------------------------ edits
# kind: (the edits file's content, what the error says besides the file's name)
EDIT_FILES = {
    "op_is_list": ([{"op": ["add"], "object": "boat"}], "unknown edit op ['add']"),
    "deep_json": (DEEP, "nested too deeply"),
    "duplicate_keys": ('[{"op": "remove", "index": 0, "index": 1}]', "duplicate key 'index'"),
    "too_many": ([{"op": "replace", "index": 0, "object": "sky"}] * (MAX_EDITS + 1),
                 f"more than the maximum of {MAX_EDITS}"),
    "fifo": (None, "not a regular file"),                    # a named pipe, not a file
    "index_long_int": ('[{"op": "remove", "index": ' + LONG_INT + "}]", "number too long"),
    "huge_object_name": ([{"op": "replace", "index": 0, "object": "z" * 5_000_000}],
                         "unknown object name"),
    "relationships_not_lists": ([{"op": "add", "object": "boat", "relationships": [5]}],
                                "must be a list of [subject, predicate, object]"),
    # grows the 3-object graph past max_objects
    "add_70": ([{"op": "add", "object": "boat", "relationship": ["new", "above", 0]}] * 70,
               f"the maximum a scene graph may have ({DEFAULT_MAX_OBJECTS})"),
}
EDIT_CASES = list(EDIT_FILES)


def _hostile_file(path: Path, content: Any, message: str) -> tuple[str, list[str]]:
    """Write ``content`` to ``path`` (a named pipe when None); the path and what the error
    about it must contain."""
    if content is None:
        os.mkfifo(path)
    else:
        _write(path, content)
    return str(path), [str(path), message]


def _edit_case(kind: str, tmp_path: Path) -> tuple[str, list[str]]:
    return _hostile_file(tmp_path / "e.json", *EDIT_FILES[kind])


@pytest.mark.parametrize("kind", EDIT_CASES)
def test_cli_manipulate_bad_edits(kind, ckpt, tmp_path, capsys):
    edits, contains = _edit_case(kind, tmp_path)
    g = _write(tmp_path / "g.json", SHEEP)
    out = tmp_path / "out"
    _fails_cleanly(["manipulate", g, edits, "--checkpoint", str(ckpt), "--out", str(out)],
                   capsys, *contains, out=out)


@pytest.mark.parametrize("kind", [k for k in EDIT_CASES if k != "add_70"])  # see below
def test_api_manipulate_bad_edits(kind, model, tmp_path):
    edits, contains = _edit_case(kind, tmp_path)
    with pytest.raises(EditError) as info:
        manipulate(SHEEP, edits, model, seed=0)
    assert all(c.replace(f"{edits}", "") in str(info.value) for c in contains[1:])
    assert len(str(info.value)) < MAX_LINE


def test_70_add_edits_keep_max_objects(model):
    add = {"op": "add", "object": "boat", "relationship": ["new", "above", 0]}
    steps = apply_edits(SHEEP, [add] * 61)  # 3 + 61 = 64 objects: allowed
    assert len(steps[-1].graph.objects) == DEFAULT_MAX_OBJECTS
    with pytest.raises(EditError, match=r"edit 61 \(add\).*already has 64 objects"):
        apply_edits(SHEEP, [add] * 70)
    # manipulate itself (a 60-object graph keeps the test short: it regenerates per edit)
    big = {"objects": ["sky"] * 60, "relationships": []}
    with pytest.raises(EditError, match=r"edit 4 \(add\).*already has 64 objects"):
        manipulate(big, [add] * 70, model, seed=0)


@pytest.mark.parametrize("edit", [{"op": ["add"]}, {"op": "remove", "index": 10**5000},
                                  {"op": "move", "index": 0, "box": [0, 0, "1", 1]},
                                  {"op": "add", "object": "boat", "relationships": 5},
                                  {"op": "remove", "index": 0, 7: 1}, 42],
                         ids=["op_list", "index_10**5000", "box_str", "rels_int", "int_key",
                              "int"])
def test_api_malformed_edit_objects(edit, model):
    with pytest.raises(EditError):
        manipulate(SHEEP, [edit], model, seed=0)
    with pytest.raises(EditError):
        apply_edits(SHEEP, [edit])


# ------------------------------------------------------------------------ datasets (CLI: box file)
def _dataset_case(kind: str, root: Path) -> tuple[list[str], list[str]]:
    """Break the tiny COCO val split in one way; the error line must contain these."""
    inst = root / "annotations" / "instances_val.json"
    stuff = root / "annotations" / "stuff_val.json"
    image = root / "images" / "val" / "000000000001.png"
    data = json.loads(inst.read_text())
    if kind == "unknown_category":
        data["annotations"][0]["category_id"] = 999
        _write(inst, data)
        return [str(inst), "category_id 999"], []
    if kind == "json_list":
        _write(inst, [data])
        return [str(inst), "got a JSON list"], []
    if kind == "no_annotations_key":
        del data["annotations"]
        _write(inst, data)
        return [str(inst), "no 'annotations'"], []
    if kind == "nan_bbox":
        text = json.dumps(data).replace(json.dumps(data["annotations"][0]["bbox"]),
                                        "[NaN, 3.0, 10.0, 10.0]", 1)
        _write(inst, text)
        return [str(inst), "'bbox'", "finite"], []
    if kind == "duplicate_keys":
        _write(stuff, stuff.read_text().replace('"images":', '"images": [], "images":', 1))
        return [str(stuff), "duplicate key 'images'"], []
    if kind == "bad_segmentation":
        data["annotations"][0]["segmentation"] = {"counts": 5, "size": "x"}
        _write(inst, data)
        return [str(inst), "segmentation"], []
    if kind == "image_fields":
        data["images"][0]["width"] = "40"
        _write(inst, data)
        return [str(inst), "images[0]"], []
    if kind == "decompression_bomb":  # 20000 x 20000 = 400 megapixels, header only
        image.write_bytes(_png_header(20_000, 20_000))
        return [str(image), "too large"], []
    if kind == "truncated_png":
        image.write_bytes(image.read_bytes()[:200])
        return [str(image)], []
    if kind == "image_fifo":
        image.unlink()
        os.mkfifo(image)
        return [str(image), "not a regular file"], []
    if kind == "image_missing":
        image.unlink()
        return [str(image), "not found"], []
    raise AssertionError(kind)


IMAGE_CASES = ("decompression_bomb", "truncated_png", "image_fifo", "image_missing")
DATASET_CASES = ["unknown_category", "json_list", "no_annotations_key", "nan_bbox",
                 "duplicate_keys", "bad_segmentation", "image_fields", "decompression_bomb",
                 "truncated_png", "image_fifo", "image_missing"]


@pytest.mark.parametrize("kind", DATASET_CASES)
def test_cli_bad_dataset(kind, coco_ckpt, tmp_path, capsys):
    root = _coco(tmp_path / "data")
    contains, _ = _dataset_case(kind, root)
    boxes = _write(tmp_path / "boxes.json", GOOD_BOXES)
    report = tmp_path / "report" / "r.json"
    box_file = ["evaluate", "--box-file", boxes, "--data", str(root), "--image-size", "32",
                "--out", str(report)]
    if kind in IMAGE_CASES:
        # Scoring a box file reads boxes and graphs, never an image file: it succeeds. A
        # model's evaluation reads the images and must fail cleanly.
        assert main(box_file) == 0
        capsys.readouterr()
        shutil.rmtree(report.parent)
        _fails_cleanly(["evaluate", "--checkpoint", str(coco_ckpt), "--data", str(root),
                        "--metrics", "layout_recall", "--device", "cpu", "--out", str(report)],
                       capsys, *contains)
    else:
        _fails_cleanly(box_file, capsys, *contains)
    assert not report.parent.exists()


@pytest.mark.parametrize("kind", DATASET_CASES)
def test_api_bad_dataset(kind, tmp_path):
    root = _coco(tmp_path / "data")
    contains, _ = _dataset_case(kind, root)
    ann = root / "annotations"
    with pytest.raises((DatasetError, DatasetNotFoundError)) as info:
        ds = CocoSceneGraphDataset(root / "images" / "val", ann / "instances_val.json",
                                   ann / "stuff_val.json", image_size=32)
        [ds[i] for i in range(len(ds))]
    assert all(c in str(info.value) for c in contains), str(info.value)


def test_decompression_bomb_in_the_warning_band_is_refused(tmp_path, monkeypatch):
    """PIL only warns between its limit and twice it; load_image refuses those too."""
    from PIL import Image

    path = tmp_path / "big.png"
    Image.new("RGB", (40, 30)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 1200 px: in the warning band
    with pytest.raises(DatasetError, match="too large"):
        load_image(path, 32)


# ------------------------------------------------------------------------ box files
BOX_FILES = {   # kind: (the box file's content, what the error says besides its name)
    "inverted": ({**GOOD_BOXES, "5": [[0.5, 0.2, 0.2, 0.6]] * 3}, "inverted"),
    "nan": (json.dumps(GOOD_BOXES).replace("0.3", "NaN", 1), "finite"),
    "deep_json": (DEEP, "nested too deeply"),
    "duplicate_keys": ('{"1": [], "1": []}', "duplicate key '1'"),
    "huge_number": ('{"1": [[0, 0, 1' + "0" * 400 + ", 1]]}", "too large"),
}
BOX_CASES = list(BOX_FILES)


def _box_case(kind: str, tmp_path: Path) -> tuple[str, list[str]]:
    return _hostile_file(tmp_path / "boxes.json", *BOX_FILES[kind])


@pytest.mark.parametrize("kind", BOX_CASES)
def test_cli_bad_box_file(kind, tmp_path, capsys):
    root = _coco(tmp_path / "data")
    boxes, contains = _box_case(kind, tmp_path)
    _fails_cleanly(["evaluate", "--box-file", boxes, "--data", str(root), "--image-size", "32"],
                   capsys, *contains)


@pytest.mark.parametrize("kind", BOX_CASES)
def test_api_bad_box_file(kind, tmp_path):
    boxes, contains = _box_case(kind, tmp_path)
    with pytest.raises(BoxFileError) as info:
        load_box_file(boxes)
    assert all(c in str(info.value) for c in contains)


# ------------------------------------------------------------------------ evaluation weights
@pytest.mark.parametrize("option,metric,content", [
    ("--inception-weights", "fid", b""),
    ("--inception-weights", "fid", b"\x00"),
    ("--inception-weights", "fid", None),
    ("--lpips-weights", "diversity", None),
    ("--lpips-weights", "diversity", b""),
])
def test_cli_bad_evaluation_weights(option, metric, content, coco_ckpt, tmp_path, capsys):
    root = _coco(tmp_path / "data")
    weights = tmp_path / "weights.pth"
    if content is not None:
        weights.write_bytes(content)
    report = tmp_path / "report.json"
    _fails_cleanly(["evaluate", "--checkpoint", str(coco_ckpt), "--data", str(root),
                    "--metrics", metric, option, str(weights), "--out", str(report),
                    "--device", "cpu"], capsys, str(weights))
    assert not report.exists()


# ------------------------------------------------------------------------ leftovers
def _age(path: Path, seconds: float = 3600) -> None:
    t = path.stat().st_mtime - seconds
    os.utime(path, (t, t))


def test_stale_staging_folders_are_cleaned_on_the_next_run(ckpt, tmp_path, capsys):
    out = tmp_path / "out"
    stale, fresh = out / ".sg2img-killed", out / ".sg2img-running"
    for d in (stale, fresh):
        d.mkdir(parents=True)
        (d / "g_000_s0.png").write_bytes(b"x")
    _age(stale / "g_000_s0.png")
    _age(stale)
    g = _write(tmp_path / "g.json", SHEEP)
    assert main(["generate", g, "--checkpoint", str(ckpt), "--out", str(out)]) == 0
    assert not stale.exists() and fresh.exists()  # a writer running now is left alone
    assert (out / "g_000_s0.png").exists()


def test_evaluate_out_with_trailing_slash_is_a_folder(tmp_path, capsys):
    root = _coco(tmp_path / "data")
    boxes = _write(tmp_path / "boxes.json", GOOD_BOXES)
    out = str(tmp_path / "reports") + "/"
    assert main(["evaluate", "--box-file", boxes, "--data", str(root), "--image-size", "32",
                 "--out", out]) == 0
    assert (tmp_path / "reports" / "report.json").exists()
    assert (tmp_path / "reports" / "report.md").exists()
    assert not (tmp_path / "reports.json").exists()
    # An existing folder without the slash is a folder too; a plain name is a file stem.
    j, _ = write_report({"metrics": {}, "protocols": {}}, tmp_path / "reports")
    assert j == tmp_path / "reports" / "report.json"
    j, _ = write_report({"metrics": {}, "protocols": {}}, tmp_path / "plain")
    assert j == tmp_path / "plain.json"


# ------------------------------------------------------------------------ training
def _train_argv(root: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--preset", "tiny", "--data", str(root), "--out", str(out),
            "--device", "cpu", "--set", "train.sample_every=100", *extra]


def test_cli_train_bad_data_leaves_no_run_folder(tmp_path, capsys):
    out = tmp_path / "run"
    _fails_cleanly(_train_argv(tmp_path / "missing", out), capsys, "missing", out=out)
    assert not out.exists()
    root = _coco(tmp_path / "data", "train")
    (root / "annotations" / "instances_train.json").write_text("[]")
    _fails_cleanly(_train_argv(root, out), capsys, "instances_train.json", out=out)
    assert not out.exists()


@pytest.fixture(scope="module")
def trained_once(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("trained")
    root = _coco(tmp / "data", "train")
    assert main(_train_argv(root, tmp / "run", "--set", "train.num_steps=1",
                            "--set", "train.checkpoint_every=1")) == 0
    return tmp


@pytest.fixture
def trained(trained_once, tmp_path):
    """A copy of a tiny 1-step run on the tiny COCO fixture: (data, run, its checkpoint)."""
    import shutil

    shutil.copytree(trained_once / "data", tmp_path / "data")
    shutil.copytree(trained_once / "run", tmp_path / "run")
    run = tmp_path / "run"
    return tmp_path / "data", run, run / "checkpoints" / "ckpt_00000001.pt"


def test_cli_resume_from_nan_checkpoint(trained, tmp_path, capsys):
    root, run, ckpt_path = trained
    state = torch.load(ckpt_path, weights_only=True)
    _nan_weights({"generator": state["generator_ema"]})
    bad = tmp_path / "nan.pt"
    torch.save(state, bad)
    out = tmp_path / "new_run"
    _fails_cleanly(_train_argv(root, out, "--set", "train.num_steps=3", "--resume", str(bad)),
                   capsys, "NaN", out=out)
    assert not out.exists()


DISK_FULL_ERRORS = [  # as Python's file writes and as torch's zip writer report it
    OSError(errno.ENOSPC, "No space left on device"),
    RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 4480 vs 4374"),
    RuntimeError("[enforce fail at inline_container.cc:858] . PytorchStreamWriter failed "
                 "writing file data/0: file write failed"),
]


@pytest.mark.parametrize("change,contains", [
    (_set(["generator"], [1]), "not a state dict"),
    (lambda st: st.pop("optim_g"), "lacks ['optim_g']"),
    (_set(["step"], "x"), "damaged"),
    (lambda st: st["generator"].pop(next(iter(st["generator"]))), "missing"),
], ids=["generator_list", "no_optimizer", "step_str", "missing_weight"])
def test_cli_resume_from_damaged_checkpoint(change, contains, trained, tmp_path, capsys):
    root, run, ckpt_path = trained
    bad = _variant(ckpt_path, tmp_path, change)
    out = tmp_path / "new_run"
    _fails_cleanly(_train_argv(root, out, "--set", "train.num_steps=3", "--resume", str(bad)),
                   capsys, contains, out=out)
    assert not out.exists()


def test_cli_init_from_nan_checkpoint(trained, tmp_path, capsys):
    root, run, ckpt_path = trained
    bad = _variant(ckpt_path, tmp_path, _nan_weights)
    out = tmp_path / "new_run"
    _fails_cleanly(_train_argv(root, out, "--set", f"train.init_from={bad}"), capsys, "NaN",
                   str(bad), out=out)
    assert not out.exists()


@pytest.mark.parametrize("error", DISK_FULL_ERRORS[1:2])  # the others: the unit test below
def test_cli_disk_full_while_training(error, trained, monkeypatch, capsys):
    root, run, ckpt_path = trained
    before = ckpt_path.read_bytes()
    real = torch.save
    calls = {"n": 0}

    def save(obj, f, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:  # write part of the file, as a full disk does, then fail
            real(obj, f, *args, **kwargs)
            f.truncate(100)
            raise error
        return real(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    err = _fails_cleanly(_train_argv(root, run, "--set", "train.num_steps=2", "--set",
                                     "train.checkpoint_every=1", "--resume", "auto"), capsys,
                         "disk full while writing checkpoint", "ckpt_00000002.pt")
    assert "inline_container" not in err
    assert ckpt_path.read_bytes() == before  # the previous checkpoint is intact
    left = [p.name for p in (run / "checkpoints").iterdir()]
    assert left == ["ckpt_00000001.pt"], left  # no temp file, no partial checkpoint


@pytest.mark.parametrize("error", DISK_FULL_ERRORS)
def test_atomic_write_disk_full_isone_line(error, tmp_path, monkeypatch, capsys):
    def full(*args, **kwargs):
        raise error

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(DiskFullError) as info:
        atomic_torch_save({"x": 1}, tmp_path / "a.pt")
    assert str(info.value).startswith("disk full while writing checkpoint")
    assert list(tmp_path.iterdir()) == []
    # and the CLI shows any OSError(ENOSPC) as one line too (e.g. from a PNG write)
    from sg2img.cli import one_line

    assert one_line(OSError(errno.ENOSPC, "No space left on device", "x.png")) == \
        "disk full while writing x.png"


def test_cli_sigterm_exits_143_with_a_checkpoint(trained, monkeypatch, capsys):
    from sg2img.train import Trainer

    root, run, _ = trained
    real = Trainer.d_step

    def d_step(self, batch, out):
        if self.step == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(self, batch, out)

    monkeypatch.setattr(Trainer, "d_step", d_step)
    rc = main(_train_argv(root, run, "--set", "train.num_steps=50", "--resume", "auto"))
    assert rc == 128 + signal.SIGTERM
    assert "stopped by signal 15" in capsys.readouterr().err
    assert (run / "checkpoints" / "ckpt_00000003.pt").exists()


def test_stale_checkpoint_temp_files_are_cleaned_on_the_next_run(trained):
    root, run, _ = trained
    ckdir = run / "checkpoints"
    stale = [ckdir / ".ckpt_00000002.pt.tmp", ckdir / ".sg2img-ckpt_00000002.pt.abc.tmp",
             run / ".sg2img-export.pt.abc.tmp"]
    fresh = ckdir / ".sg2img-ckpt_00000003.pt.xyz.tmp"
    for p in [*stale, fresh]:
        p.write_bytes(b"")
    for p in stale:
        _age(p)
    assert main(_train_argv(root, run, "--set", "train.num_steps=2", "--resume", "auto")) == 0
    assert not any(p.exists() for p in stale) and fresh.exists()


# ------------------------------------------------------------------------ API: documented only
def test_api_load_model_paths(tmp_path):
    fifo = tmp_path / "fifo.pt"
    os.mkfifo(fifo)
    for path in (fifo, Path("/dev/zero"), tmp_path, tmp_path / "missing.pt"):
        with pytest.raises(CheckpointError, match=str(path)):
            load_model(path, "cpu")
    with pytest.raises(API_ERRORS):
        generate(SHEEP, 42)



@pytest.mark.parametrize("error,code,line", [
    (KeyboardInterrupt(), 130, "sg2img: interrupted"),
    (RuntimeError("a bug\nspread over lines"), 1, "sg2img: internal error: RuntimeError: a bug"),
])
def test_cli_exit_codes_for_interrupts_and_bugs(error, code, line, monkeypatch, capsys):
    import sg2img.cli as cli

    def boom(args):
        raise error

    monkeypatch.setitem(cli.COMMANDS, "generate", boom)
    assert main(["generate", "x.json"]) == code
    err = capsys.readouterr().err
    assert err.startswith(line) and err.count("\n") == 1, err


def test_errors_from_dataloader_workers_becomeone_line(tmp_path):
    """A worker re-raises with the whole traceback as the message; keep its last line."""
    from torch.utils.data import DataLoader

    from sg2img.cli import one_line

    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")

    class Images(torch.utils.data.Dataset):
        def __len__(self):
            return 1

        def __getitem__(self, i):
            return load_image(bad, 32)

    with pytest.raises(DatasetError) as info:
        next(iter(DataLoader(Images(), num_workers=1)))
    assert "Original Traceback" in str(info.value)
    line = one_line(info.value)
    assert line.startswith(f"cannot read image {bad}") and "Traceback" not in line, line

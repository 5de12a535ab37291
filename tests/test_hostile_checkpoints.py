"""Hostile checkpoints and weight files: compression bombs, foreign records, hostile tensors.

Every weights file goes through one door (``sg2img.files.load_torch_file``): its zip directory
is checked before ``torch.load`` inflates anything. Once loaded, unexpected entries are
refused by name before any value is scanned, and the values are checked for what would end
in an internal error deep in the model. Each case gives ``CheckpointError`` (or the caller's
documented error) through the API, and exit 2 with one line through the CLI. The bomb here is
small (64 MB inflated); ``scripts/bench_hostile_checkpoint.py`` builds the 3 GiB one and
measures peak memory.
"""

from __future__ import annotations

import math
import re
import zipfile
from pathlib import Path

import pytest
import torch

from sg2img.api import load_model
from sg2img.checkpoint import CheckpointError, export_inference, load_checkpoint
from sg2img.cli import main
from sg2img.config import Config
from sg2img.data.shapes import shapes_vocab
from sg2img.eval import nets as E
from sg2img.files import load_state_dict_file, load_torch_file
from sg2img.generators.local_specific import class_conv
from sg2img.losses import VGGPerceptualLoss
from sg2img.model import GALSGenerator
from sg2img.torch_archive import check_torch_archive, rewrite_archive

GRAPH = '{"objects": ["sky", "grass"], "relationships": [[0, "above", 1]]}'
JUNK_FLOATS = 16 * 2**20        # 64 MB of zeros: a DEFLATE record of about 64 KB
EMBED = "obj_embeddings.weight"


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Path:
    cfg = Config.from_preset("tiny")
    vocab = shapes_vocab()
    torch.manual_seed(0)
    gen = GALSGenerator(cfg.model, vocab.num_objects, vocab.num_preds)
    return export_inference(tmp_path_factory.mktemp("model") / "tiny.pt", cfg, vocab, gen)


def _variant(export: Path, path: Path, **changes) -> Path:
    """The export with generator entries replaced (``None`` removes one)."""
    ckpt = torch.load(export, weights_only=True)
    for key, value in changes.items():
        key = key.replace("__", ".")
        if value is None:
            ckpt["generator"].pop(key)
        else:
            ckpt["generator"][key] = value
    torch.save(ckpt, path)
    return path


def _bomb(export: Path, folder: Path) -> Path:
    """The probe's bomb at a small scale: a junk zero tensor, every record DEFLATE-compressed."""
    plain = _variant(export, folder / "plain.pt", junk=torch.zeros(JUNK_FLOATS))
    bomb = rewrite_archive(plain, folder / "bomb.pt", compression=zipfile.ZIP_DEFLATED)
    assert bomb.stat().st_size * 20 < plain.stat().st_size
    plain.unlink()
    return bomb


def _cli_refuses(capsys, tmp_path, ckpt: Path, *needles: str) -> str:
    graph = tmp_path / "g.json"
    graph.write_text(GRAPH)
    out = tmp_path / "out"
    assert main(["generate", str(graph), "--checkpoint", str(ckpt), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert re.search(needle, err), err
    assert not out.exists()
    return err


# ------------------------------------------------------------- V1: the compression bomb
def test_bomb_is_refused_before_torch_load_inflates_it(export, tmp_path, monkeypatch):
    bomb = _bomb(export, tmp_path)

    def no_load(*args, **kwargs):
        raise AssertionError("torch.load ran on a compression bomb")

    monkeypatch.setattr(torch, "load", no_load)
    with pytest.raises(CheckpointError, match="compressed"):
        load_checkpoint(bomb)


def test_bomb_through_the_cli(export, tmp_path, capsys):
    _cli_refuses(capsys, tmp_path, _bomb(export, tmp_path), "compressed", r"torch\.save")


def test_bomb_through_serve_init_from_and_third_party_weights(export, tmp_path):
    from test_train import ToyScenes

    from sg2img.serve.models import load_registry
    from sg2img.train import run_training

    bomb = _bomb(export, tmp_path)
    with pytest.raises(CheckpointError, match="compressed"):
        load_registry([bomb], "cpu", include_default=False)
    cfg = Config.from_preset("tiny", ["train.num_steps=1", f"train.init_from={bomb}"])
    with pytest.raises(CheckpointError, match="compressed"):
        run_training(cfg, tmp_path / "run", dataset=ToyScenes(), device="cpu")
    with pytest.raises(ValueError, match="compressed"):
        VGGPerceptualLoss(str(bomb))
    with pytest.raises(E.EvalWeightsError, match="compressed"):
        E.inception_feature_extractor(bomb)
    with pytest.raises(E.EvalWeightsError, match="compressed"):
        E.load_eval_net(bomb)


def test_uncompressed_size_counts_against_the_limit(export, tmp_path, monkeypatch):
    bomb = _bomb(export, tmp_path)          # 2 MB on disk, 66 MB uncompressed
    monkeypatch.setenv("SG2IMG_MAX_WEIGHTS_MB", "10")
    with pytest.raises(CheckpointError, match=r"6\d\.\d MB of records uncompressed, over the "
                                              r"10 MB limit .*SG2IMG_MAX_WEIGHTS_MB"):
        load_checkpoint(bomb)
    path = _variant(export, tmp_path / "big.pt", junk=torch.zeros(2**18))   # 1 MB of data
    size = path.stat().st_size
    total = check_torch_archive(path, "checkpoint", CheckpointError, size, "X")
    assert 2**20 <= total <= size
    with pytest.raises(CheckpointError, match=r"\d\.\d MB of records uncompressed, over the 1 MB"):
        check_torch_archive(path, "checkpoint", CheckpointError, 2**20, "SG2IMG_MAX_WEIGHTS_MB")


@pytest.mark.filterwarnings("ignore:Duplicate name")
@pytest.mark.parametrize("extra, needle", [
    ({"junk": b"x"}, "unexpected record"),
    ({"code/__torch__.py": b"x"}, "TorchScript"),
    ({"data/0": b"x"}, "appears twice"),
    ({".data/version": b"3\n" * 3000}, "metadata record"),
    ({"x" * 600: b""}, "over 512 characters"),
])
def test_records_a_torch_file_does_not_have(export, tmp_path, extra, needle):
    path = rewrite_archive(export, tmp_path / "x.pt", extra=extra)
    with pytest.raises(CheckpointError, match=needle):
        load_checkpoint(path)


def test_record_outside_the_folder_and_no_pickle(export, tmp_path):
    path = tmp_path / "x.pt"
    with zipfile.ZipFile(export) as zin, zipfile.ZipFile(path, "w") as zout:
        for rec in zin.infolist():
            zout.writestr(rec.filename, zin.read(rec))
        zout.writestr("other/data.pkl", b"x")
    with pytest.raises(CheckpointError, match="outside the archive's folder"):
        load_checkpoint(path)
    with zipfile.ZipFile(export) as zin, zipfile.ZipFile(path, "w") as zout:
        for rec in zin.infolist():
            if not rec.filename.endswith("data.pkl"):
                zout.writestr(rec.filename, zin.read(rec))
    with pytest.raises(CheckpointError, match="no data.pkl"):
        load_checkpoint(path)


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_torchscript_file_is_refused(tmp_path):
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), path)
    with pytest.raises(ValueError, match="TorchScript archive .torch.jit.save."):
        load_state_dict_file(path, "VGG19 weights", ValueError)


def test_clean_files_still_load(export, tmp_path):
    """torch.save's own archives (path or file object) and its legacy format pass the door."""
    assert load_checkpoint(export)["kind"] == "inference"
    state = {"w": torch.ones(3)}
    torch.save(state, tmp_path / "zip.pth")
    torch.save(state, tmp_path / "legacy.pth", _use_new_zipfile_serialization=False)
    torch.save(state, tmp_path / "my model (2).pth")   # the archive's folder is "my model (2)"
    for name in ("zip.pth", "legacy.pth", "my model (2).pth"):
        assert torch.equal(load_torch_file(tmp_path / name, "w", ValueError)["w"], state["w"])
    stored = rewrite_archive(export, tmp_path / "stored.pt")   # re-zipped, still STORED
    load_model(stored, "cpu")


# ------------------------------------- unexpected entries are refused before value checks
def test_unexpected_entries_are_refused_before_their_values(export, tmp_path):
    path = _variant(export, tmp_path / "x.pt", junk=torch.full((4,), math.nan))
    with pytest.raises(CheckpointError, match="unexpected: 'junk'"):
        load_model(path, "cpu")


# --------------------------------------------------- U5: hostile tensors and leaves
def _hostile(shape):
    return {
        "complex NaN": (torch.full(shape, complex(math.nan, 0)), "dtype complex64"),
        "3e38": (torch.full(shape, 3e38), r"values as large as 3e\+38"),
        "coo": (torch.ones(shape).to_sparse(), "is a sparse tensor .sparse_coo."),
        "no data": (torch.empty(shape, device="meta"), "is a meta tensor"),
        "stride 0": (torch.ones(1).expand(*shape), "is a view larger than the data"),
        "inf": (torch.full(shape, math.inf), "holds NaN or infinite"),
    }


@pytest.mark.parametrize("case", list(_hostile((1,))))
def test_hostile_tensors_give_checkpoint_error(export, tmp_path, case):
    shape = tuple(torch.load(export, weights_only=True)["generator"][EMBED].shape)
    value, needle = _hostile(shape)[case]
    path = _variant(export, tmp_path / "x.pt", **{EMBED.replace(".", "__"): value})
    with pytest.raises(CheckpointError, match=needle):
        load_model(path, "cpu")


@pytest.mark.parametrize("case", ["complex NaN", "3e38", "coo", "no data"])
def test_hostile_tensors_through_the_cli(export, tmp_path, capsys, case):
    shape = tuple(torch.load(export, weights_only=True)["generator"][EMBED].shape)
    value, needle = _hostile(shape)[case]
    path = _variant(export, tmp_path / "x.pt", **{EMBED.replace(".", "__"): value})
    _cli_refuses(capsys, tmp_path, path, needle)


def test_non_tensor_leaf(export, tmp_path):
    path = _variant(export, tmp_path / "x.pt", **{EMBED.replace(".", "__"): [1.0, 2.0]})
    with pytest.raises(CheckpointError, match="not a tensor: 'obj_embeddings.weight'"):
        load_model(path, "cpu")


def test_hostile_tensors_in_third_party_weights(tmp_path):
    for case, (value, needle) in _hostile((2, 2)).items():
        path = tmp_path / "w.pth"
        torch.save({"w": value}, path)
        with pytest.raises(ValueError, match=needle):
            load_state_dict_file(path, "weights", ValueError)
        del case


def test_init_from_refuses_hostile_tensors(export, tmp_path):
    from test_train import ToyScenes

    from sg2img.train import run_training

    ckpt = torch.load(export, weights_only=True)
    ckpt["vocab"] = ToyScenes.vocab.to_dict()
    ckpt["generator"]["junk"] = torch.ones(3).to_sparse()  # a name the model does not have
    path = tmp_path / "x.pt"
    torch.save(ckpt, path)
    cfg = Config.from_preset("tiny", ["train.num_steps=1", f"train.init_from={path}"])
    with pytest.raises(CheckpointError, match="is a sparse tensor"):
        run_training(cfg, tmp_path / "run", dataset=ToyScenes(), device="cpu")


@pytest.mark.parametrize("version", [True, -5, 0, 2.0, "2"])
def test_format_version_must_be_a_plain_int_in_range(export, tmp_path, version):
    ckpt = torch.load(export, weights_only=True)
    ckpt["format_version"] = version
    torch.save(ckpt, tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match="format_version .*a whole number from 1 to 2"):
        load_checkpoint(tmp_path / "x.pt")


def test_class_conv_with_no_class_present():
    """A layout without any class (NaN from overflowing weights) gives an empty result, not
    conv2d's "non-positive groups" error."""
    x = torch.zeros(0, 4, 8, 8)
    out = class_conv(x, torch.zeros(3 * 5, 4, 3, 3), torch.zeros(3, 5),
                     torch.zeros(0, dtype=torch.long), 3)
    assert out.shape == (0, 5, 8, 8)

"""Checkpoints: atomic plain-dict round trips, inference export, clear errors, unwrapping."""

import os

import pytest
import torch

from sg2img.checkpoint import (
    FORMAT_VERSION,
    CheckpointError,
    build_generator,
    export_inference,
    load_checkpoint,
    save_checkpoint,
    unwrap_state_dict,
)
from sg2img.config import Config
from sg2img.model import GALSDiscriminator, GALSGenerator
from sg2img.scene_graph import encode_graphs
from sg2img.vocab import Vocab


@pytest.fixture
def parts(vocab):
    cfg = Config.from_preset("tiny")
    torch.manual_seed(0)
    gen = GALSGenerator(cfg.model, vocab.num_objects, vocab.num_preds)
    disc = GALSDiscriminator(cfg.model, vocab.num_objects)
    return cfg, gen, disc


def _training_state(cfg, vocab, gen, disc):
    opt = torch.optim.Adam(gen.parameters(), lr=1e-3)
    gen(encode_graphs({"objects": ["sky", "sheep"]}, vocab)).images.mean().backward()
    opt.step()
    return {"kind": "training", "step": 7, "config": cfg.to_dict(), "vocab": vocab.to_dict(),
            "generator": gen.state_dict(), "generator_ema": gen.state_dict(),
            "discriminator": disc.state_dict(), "optim_g": opt.state_dict(),
            "rng": {"torch": torch.get_rng_state()}}


def test_training_checkpoint_round_trip(tmp_path, vocab, parts):
    cfg, gen, disc = parts
    path = save_checkpoint(tmp_path / "ck" / "ckpt.pt", _training_state(cfg, vocab, gen, disc))
    assert path.exists() and os.listdir(path.parent) == ["ckpt.pt"]  # no temp file left
    ck = load_checkpoint(path)
    assert ck["format_version"] == FORMAT_VERSION and ck["step"] == 7
    assert Config.from_dict(ck["config"]) == cfg
    assert Vocab.from_dict(ck["vocab"]) == vocab
    for k, v in gen.state_dict().items():
        assert torch.equal(ck["generator"][k], v)
    disc2 = GALSDiscriminator(cfg.model, vocab.num_objects)
    disc2.load_state_dict(ck["discriminator"])
    opt = torch.optim.Adam(gen.parameters(), lr=1e-3)
    opt.load_state_dict(ck["optim_g"])
    assert opt.state_dict()["state"][0]["step"] == 1
    # Plain data: a bare weights_only load works too.
    torch.load(path, weights_only=True)


def test_export_and_build_generator_give_same_images(tmp_path, vocab, parts):
    cfg, gen, _ = parts
    wrapped = torch.nn.ModuleDict({"module": gen})  # state dict keys gain a "module." prefix
    path = export_inference(tmp_path / "export.pt", cfg, vocab, wrapped)
    ck = load_checkpoint(path)
    assert set(ck) == {"format_version", "kind", "config", "vocab", "generator"}
    assert ck["kind"] == "inference"
    model, cfg2, vocab2 = build_generator(path)
    assert cfg2 == cfg and vocab2 == vocab and not model.training
    batch = encode_graphs({"objects": ["sky", "grass", "sheep"],
                           "relationships": [[2, "standing on", 1]]}, vocab)
    gen.eval()
    z = torch.randn(1, cfg.model.noise_dim)
    with torch.no_grad():
        assert torch.equal(gen(batch, z=z).images, model(batch, z=z).images)


def test_build_generator_prefers_ema(vocab, parts):
    cfg, gen, _ = parts
    ema = GALSGenerator(cfg.model, vocab.num_objects, vocab.num_preds)
    ck = {"format_version": 1, "config": cfg.to_dict(), "vocab": vocab.to_dict(),
          "generator": gen.state_dict(), "generator_ema": ema.state_dict()}
    model, _, _ = build_generator(ck)
    for k, v in ema.state_dict().items():
        assert torch.equal(model.state_dict()[k], v)


def test_unwrap_state_dict_strips_wrappers():
    sd = {"module._orig_mod.a.weight": torch.ones(1), "_orig_mod.b": torch.zeros(1),
          "c.d": torch.ones(2)}
    assert set(unwrap_state_dict(sd)) == {"a.weight", "b", "c.d"}
    lin = torch.nn.Linear(2, 2)
    assert set(unwrap_state_dict(torch.nn.ModuleDict({"module": lin}))) == {"weight", "bias"}


class NotPlain:
    """Pickled by class reference: weights_only loading refuses it."""


def test_load_errors(tmp_path, vocab, parts):
    cfg, gen, _ = parts
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match="directory"):
        load_checkpoint(tmp_path)
    good = export_inference(tmp_path / "good.pt", cfg, vocab, gen)
    data = good.read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated, corrupt"):
        load_checkpoint(tmp_path / "trunc.pt")
    for junk in (b"not a checkpoint at all", b"hello world"):   # the 2nd: a bare KeyError
        (tmp_path / "junk.pt").write_bytes(junk)
        with pytest.raises(CheckpointError, match="truncated, corrupt") as info:
            load_checkpoint(tmp_path / "junk.pt")
        assert "\n" not in str(info.value) and len(str(info.value)) < 400
    torch.save({"x": NotPlain()}, tmp_path / "pickled.pt")
    with pytest.raises(CheckpointError, match="plain tensors") as info:
        load_checkpoint(tmp_path / "pickled.pt")
    assert "\n" not in str(info.value) and len(str(info.value)) < 400
    torch.save({"state_dict": gen.state_dict()}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not an sg2img checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    torch.save({"format_version": FORMAT_VERSION + 1}, tmp_path / "new.pt")
    with pytest.raises(CheckpointError, match="newer"):
        load_checkpoint(tmp_path / "new.pt")
    assert isinstance(CheckpointError("x"), ValueError)
    other_vocab = Vocab.from_names(["a"], ["b"])
    bad = {"format_version": 1, "config": cfg.to_dict(), "vocab": other_vocab.to_dict(),
           "generator": gen.state_dict()}
    with pytest.raises(CheckpointError, match="do not match"):
        build_generator(bad)
    with pytest.raises(CheckpointError, match="no generator"):
        build_generator({"format_version": 1, "config": cfg.to_dict(),
                         "vocab": vocab.to_dict()})


def test_save_is_atomic_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, {"step": 1})

    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"step": 2})
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1
    assert os.listdir(tmp_path) == ["ckpt.pt"]

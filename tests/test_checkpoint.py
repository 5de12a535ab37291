"""Checkpoints: atomic plain-dict round trips, inference export, clear errors, unwrapping."""

import hashlib
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from sg2img.checkpoint import (
    FORMAT_VERSION,
    CheckpointError,
    build_generator,
    export_inference,
    load_checkpoint,
    restore_training_state,
    same_vocabulary,
    save_checkpoint,
    starting_weights,
    training_state,
    unwrap_state_dict,
    upgrade_checkpoint,
    with_vocabulary,
)
from sg2img.config import Config
from sg2img.config_aliases import MODEL_KEY_ALIASES, flat_model_section
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
    opt_d = torch.optim.Adam(disc.parameters(), lr=1e-3)
    gen(encode_graphs({"objects": ["sky", "sheep"]}, vocab)).images.mean().backward()
    opt.step()
    return training_state(step=7, config=cfg, vocab=vocab, generator=gen, generator_ema=gen,
                          discriminator=disc, optim_g=opt, optim_d=opt_d,
                          rng={"torch": torch.get_rng_state()}, batches_per_epoch=3,
                          world_size=1)


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
    z = torch.randn(1, cfg.model.renderer.noise_dim)
    with torch.no_grad():
        assert torch.equal(gen(batch, z=z).images, model(batch, z=z).images)


def test_build_generator_prefers_ema(vocab, parts):
    cfg, gen, _ = parts
    ema = GALSGenerator(cfg.model, vocab.num_objects, vocab.num_preds)
    ck = {"format_version": FORMAT_VERSION, "config": cfg.to_dict(), "vocab": vocab.to_dict(),
          "generator": gen.state_dict(), "generator_ema": ema.state_dict()}
    model, _, _ = build_generator(ck)
    for k, v in ema.state_dict().items():
        assert torch.equal(model.state_dict()[k], v)


def test_build_generator_puts_overrides_on_the_checkpoint_s_config(tmp_path, vocab, parts):
    from sg2img.config import ConfigError

    cfg, gen, _ = parts
    path = export_inference(tmp_path / "export.pt", cfg, vocab, gen)
    model, cfg2, _ = build_generator(path, overrides=["model.layout.sample_temperature=0.5"])
    assert cfg2.model.layout.sample_temperature == 0.5 and model.cfg == cfg2.model
    for k, v in gen.state_dict().items():
        assert torch.equal(model.state_dict()[k], v)
    with pytest.raises(ConfigError):
        build_generator(path, overrides=["model.layout.no_such_key=1"])


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
    bad = {"format_version": FORMAT_VERSION, "config": cfg.to_dict(),
           "vocab": other_vocab.to_dict(),
           "generator": gen.state_dict()}
    with pytest.raises(CheckpointError, match="do not match"):
        build_generator(bad)
    with pytest.raises(CheckpointError, match="no generator"):
        build_generator({"format_version": FORMAT_VERSION, "config": cfg.to_dict(),
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


# ------------------------------------------------------------------ format upgrades
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def test_a_format_1_checkpoint_loads_upgraded_and_draws_the_same_images():
    """tests/fixtures/tiny_v1.pt was written by sg2img 0.1.0 (see its README)."""
    assert torch.load(FIXTURES / "tiny_v1.pt", weights_only=True)["format_version"] == 1
    ck = load_checkpoint(FIXTURES / "tiny_v1.pt")
    assert ck["format_version"] == FORMAT_VERSION == 2
    assert "spade_kernel" not in ck["config"]["model"]
    model, cfg, vocab = build_generator(ck)
    expected = torch.load(FIXTURES / "tiny_v1_expected.pt", weights_only=True)
    # 0.1.0's vocabularies have attributes but no class table: they cannot be checked.
    with torch.no_grad(), pytest.warns(UserWarning, match="cannot be checked against"):
        images = model(encode_graphs(expected["graph"], vocab), z=expected["z"]).images
    torch.testing.assert_close(images, expected["images"], rtol=0, atol=1e-6)


def test_a_format_1_training_checkpoint_restores_into_a_run():
    ck = load_checkpoint(FIXTURES / "tiny_v1.pt")
    cfg, vocab = Config.from_dict(ck["config"]), Vocab.from_dict(ck["vocab"])
    gen, ema = (GALSGenerator(cfg.model, vocab.num_objects, vocab.num_preds,
                              vocab.num_attributes) for _ in range(2))
    disc = GALSDiscriminator(cfg.model, vocab.num_objects, vocab.num_attributes)
    opt_g, opt_d = (torch.optim.Adam(m.parameters(), lr=1e-3, betas=(0.0, 0.999))
                    for m in (gen, disc))
    rng = []
    progress = restore_training_state(ck, vocab=vocab, generator=gen, generator_ema=ema,
                                      discriminator=disc, optim_g=opt_g, optim_d=opt_d,
                                      set_rng_state=rng.append)
    assert (progress.step, progress.nonfinite_skipped) == (1, 0)
    assert progress.data_state["world_size"] == 1 and len(rng) == 1
    assert len(opt_d.state_dict()["state"]) == len(list(disc.parameters()))
    for k, v in ck["generator_ema"].items():
        assert torch.equal(ema.state_dict()[k], v)
    # Saved again, it is a format-2 training checkpoint with the same entries.
    again = training_state(step=progress.step, config=cfg, vocab=vocab, generator=gen,
                           generator_ema=ema, discriminator=disc, optim_g=opt_g, optim_d=opt_d,
                           rng=rng[0], batches_per_epoch=1, world_size=1)
    assert set(again) == set(ck) and again["format_version"] == 2
    with pytest.raises(CheckpointError, match="vocabulary differs"):
        restore_training_state(ck, vocab=Vocab.from_names(["a"], ["b"]), generator=gen,
                               generator_ema=ema, discriminator=disc, optim_g=opt_g,
                               optim_d=opt_d, set_rng_state=rng.append)
    with pytest.raises(CheckpointError, match="inference export"):
        restore_training_state({**ck, "kind": "inference"}, vocab=vocab, generator=gen,
                               generator_ema=ema, discriminator=disc, optim_g=opt_g,
                               optim_d=opt_d, set_rng_state=rng.append)


def test_a_key_missing_from_a_format_1_config_means_format_1s_default(tmp_path):
    """The attribute options were off in 0.1.0's ModelConfig and are on in 0.2.0's."""
    vocab = Vocab.from_names(["sky", "sheep"], ["above"], ["white"],
                             class_attributes={"sheep": ["white"]})
    old = Config.from_preset("tiny", ["model.renderer.paint_attributes=false",
                                      "model.discriminator.classify_attributes=false"])
    torch.manual_seed(0)
    gen = GALSGenerator(old.model, vocab.num_objects, vocab.num_preds, vocab.num_attributes)
    d = _flat_v1_config(old)
    for key in ("attribute_layout", "object_disc_attributes"):
        del d["model"][key]                                  # written before the options
    state = {"format_version": 1, "kind": "inference", "config": d, "vocab": vocab.to_dict(),
             "generator": gen.state_dict()}
    torch.save(state, tmp_path / "old.pt")
    model, cfg, _ = build_generator(tmp_path / "old.pt")
    assert not cfg.model.renderer.paint_attributes
    assert not cfg.model.discriminator.classify_attributes
    batch = encode_graphs({"objects": ["sky", "sheep"], "relationships": [[0, "above", 1]],
                           "attributes": [[], ["white"]]}, vocab)
    z = torch.randn(1, old.model.renderer.noise_dim)
    with torch.no_grad():
        assert torch.equal(model(batch, z=z).images, gen.eval()(batch, z=z).images)
    # The same config read as format 2 takes today's defaults, which this model lacks (and
    # its flat keys are the deprecated names).
    with pytest.warns(FutureWarning), pytest.raises(CheckpointError, match="do not match"):
        build_generator({**state, "format_version": 2})


def test_a_removed_option_names_the_last_version_that_reads_it(tmp_path):
    ck = torch.load(FIXTURES / "tiny_v1.pt", weights_only=True)
    ck["config"]["model"]["spade_kernel"] = 1
    torch.save(ck, tmp_path / "k1.pt")
    with pytest.raises(CheckpointError, match=r"model\.spade_kernel=1.*removed in sg2img "
                                              r"0\.2\.0.*sg2img 0\.1\.0 is the last"):
        load_checkpoint(tmp_path / "k1.pt")
    ck["config"]["model"]["spade_kernel"] = 3      # what every model computes with: dropped
    assert "spade_kernel" not in upgrade_checkpoint(ck)["config"]["model"]
    assert upgrade_checkpoint(ck)["format_version"] == FORMAT_VERSION


def test_a_format_1_setting_its_model_ignored_goes_back_to_the_default():
    """0.1.0 did not check settings against the architecture; 0.2.0 refuses them, so the
    upgrade resets the ones the model never read (the same model either way)."""
    d = _flat_v1_config(Config.from_preset("tiny", ["model.renderer.global_generator=cc"]))
    d["model"]["narrow_upsample"] = True
    d["loss"]["seg_weight"] = 5.0
    up = upgrade_checkpoint({"format_version": 1, "config": d})["config"]
    assert up["model"]["renderer"]["narrow_upsample"] is False
    assert up["loss"]["seg_weight"] == 1.0
    Config.from_dict(up)


def _flat_v1_config(cfg: Config) -> dict:
    """``cfg.to_dict()`` with the model section flat, under 0.1.0's key names."""
    d = cfg.to_dict()
    return {**d, "model": flat_model_section(d["model"])}


def test_a_format_1_model_section_is_grouped_on_load():
    """0.1.0 wrote the model section flat; the upgrade nests every key without a warning,
    and the grouped config is the one a flat config given to ``Config.from_dict`` gives."""
    ck = torch.load(FIXTURES / "tiny_v1.pt", weights_only=True)
    assert "gconv_dim" in ck["config"]["model"]
    up = upgrade_checkpoint(ck)["config"]
    assert set(up["model"]) == {"layout", "renderer", "discriminator"}
    cfg = Config.from_dict(up)
    assert cfg.model.renderer.channels == 2 and cfg.model.discriminator.kind == "multiscale"
    flat = _flat_v1_config(cfg)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert Config.from_dict(flat) == cfg
    assert len(caught) == len(MODEL_KEY_ALIASES)
    assert all(w.category is FutureWarning for w in caught)


def test_vocabularies_compare_by_names_so_checkpoints_from_before_class_tables_still_fit():
    from sg2img.data.shapes import shapes_vocab

    vocab = shapes_vocab()                                   # with a class table
    old = {k: v for k, v in vocab.to_dict().items()
           if k not in ("class_attributes", "stuff_names")}
    assert same_vocabulary(old, vocab) and same_vocabulary(vocab.to_dict(), vocab)
    assert not same_vocabulary(Vocab.from_names(["sky"], ["above"]).to_dict(), vocab)
    assert not same_vocabulary({"object_idx_to_name": 3}, vocab)
    assert not same_vocabulary(None, vocab)
    weights = {"w": torch.ones(2)}
    ckpt = {"format_version": 1, "kind": "inference", "vocab": old, "generator": weights}
    assert torch.equal(starting_weights(ckpt, vocab, "old.pt")["generator_ema"]["w"], weights["w"])
    new = with_vocabulary(ckpt, vocab)
    assert new["vocab"] == vocab.to_dict() and new["vocab"]["class_attributes"]["sheep"]
    assert new["generator"] is weights and new["format_version"] == 1 and ckpt["vocab"] is old
    with pytest.raises(CheckpointError, match="names other ids"):
        with_vocabulary(ckpt, Vocab.from_names(["sky"], ["above"]))


# Hash of the bundled model's pixels for fixed noise. The second edition's (checkpoint format 1,
# recorded with sg2img 0.1.0 before the upgrade on load existed) held through every format
# change; this is the third edition's, recorded when it was shipped.
BUNDLED_PIXELS_SHA256 = "3d33231aed4b263299d5fb30730a40d5e271af3594569df5754c3fab89a74057"


def test_the_bundled_model_draws_the_pixels_it_was_shipped_with():
    """Fixed noise (drawn as 0.1.0 drew it, before the seed rule) gives the pixels recorded
    when the model was shipped: a change to the code path that moves them must say so."""
    from sg2img import api, vis
    from sg2img.layout_head import draw_layout_noise
    from sg2img.scene_graph import load_scene_graphs

    examples = Path(__file__).resolve().parents[1] / "examples" / "scenes.json"
    model = api.load_model(device="cpu")
    samples = [g.encode(model.vocab) for g in load_scene_graphs(examples) for _ in range(2)]
    z_gen = torch.Generator().manual_seed(0)
    z = torch.stack([torch.randn(model.noise_dim, generator=z_gen) for _ in samples])
    layout_gen = torch.Generator().manual_seed(2**32)
    layout = torch.cat([draw_layout_noise(len(s.objs), layout_gen) for s in samples])
    assert model.generator.samples_layout and not model.object_noise_dim
    run = api.run_generator(model, samples, z, layout_mode="sample", layout_noise=layout)
    images = vis.to_pil(run.images)
    pixels = b"".join(np.asarray(image).tobytes() for image in images)
    assert len(images) == 10
    assert hashlib.sha256(pixels).hexdigest() == BUNDLED_PIXELS_SHA256

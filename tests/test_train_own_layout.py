"""Renderer stages: the model's own layouts (loss.own_layout_weight), a frozen layout branch
(train.freeze_layout), jittered true layouts (train.layout_jitter), and their ablation variants."""

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from test_train import VOCAB, ToyScenes, tiny_cfg

from sg2img import ablation
from sg2img.checkpoint import build_generator, load_checkpoint
from sg2img.config import Config, ConfigError
from sg2img.objectives import (
    OWN_PREFIX,
    OWN_TERM_NAMES,
    discriminator_loss_terms,
    generator_loss_terms,
)
from sg2img.optimization import FROZEN_LAYOUT_MODULES
from sg2img.own_layout import predicted_layout
from sg2img.own_layout_training import degrade_masks, jitter_layout, jitter_rng, layout_free
from sg2img.testing import random_model_export
from sg2img.train import Trainer, run_training

ROOT = Path(__file__).resolve().parents[1]
OWN_GCONV = {"model.layout.use_own_gconv": True, "model.layout.head": "sample"}


def _trainer(path, **over):
    return Trainer(tiny_cfg(**over), path, device="cpu", dataset=ToyScenes())


def _batch(trainer):
    return next(iter(trainer.loader)).to(trainer.device)


def _frozen(name):
    return name.split(".")[0] in FROZEN_LAYOUT_MODULES


# ------------------------------------------------------------------------ own layouts
def test_own_layout_terms_are_logged_and_weighted(tmp_path):
    """Both steps log the own-layout adversarial terms; G/total adds them at
    loss.own_layout_weight times their terms' weights; with the weight 0 there are none."""
    t = _trainer(tmp_path / "on", **{"loss.own_layout_weight": 0.5})
    logs = t.train_step(_batch(t))
    assert {"D/own_gan", "D/own_obj_gan", "G/own_gan", "G/own_obj_gan",
            "G/own_obj_aux"} <= set(logs)
    # No paired real image: no reconstruction, feature-matching or classifier-on-real term.
    own = {k.split("/")[1] for k in logs if OWN_PREFIX in k}
    assert own == {"own_gan", "own_obj_gan", "own_obj_aux"} and own <= set(OWN_TERM_NAMES)
    loss = t.cfg.loss
    expected = 0.0
    for key, value in logs.items():
        side, name = key.split("/")
        if side != "G" or name == "total":
            continue
        base = name.removeprefix(OWN_PREFIX)
        weight = getattr(loss, f"{base}_weight") * (0.5 if name != base else 1.0)
        expected += weight * value
    assert logs["G/total"] == pytest.approx(expected, rel=1e-5, abs=1e-5)
    off = _trainer(tmp_path / "off")
    assert not any(OWN_PREFIX in k for k in off.train_step(_batch(off)))


def test_own_layout_step_runs_under_bfloat16_autocast(tmp_path):
    """The loop's mixed precision (bf16 autocast, on CUDA in training; on the CPU here): the
    own-layout images, built from a layout predicted in float32, meet the teacher-forced ones
    in one discriminator forward, and every term is finite."""
    t = _trainer(tmp_path, **OWN_GCONV, **{"loss.own_layout_weight": 1.0,
                                           "train.freeze_layout": True})
    t.use_amp = True
    logs = t.train_step(_batch(t))
    assert {"G/own_gan", "D/own_gan", "G/own_obj_gan"} <= set(logs)
    assert all(torch.isfinite(torch.tensor(v)) for v in logs.values())


def test_own_layout_images_are_built_from_the_predicted_layout_and_train_the_renderer(
        tmp_path):
    """The own-layout images come from the model's own boxes and masks (the true, pinned ones
    ignored); their adversarial terms reach the renderer and the graph network it reads, and
    no gradient reaches the layout heads."""
    t = _trainer(tmp_path, **{"loss.own_layout_weight": 1.0})
    batch = _batch(t)
    assert batch.box_given.all()                       # the data pins every true box
    own = t.forward_own_layout(batch)
    boxes, masks = predicted_layout(t.G, layout_free(batch))   # regress head: one layout
    assert torch.equal(own.boxes, boxes) and torch.equal(own.masks, masks)
    assert not torch.allclose(own.boxes, batch.boxes)
    out = t.forward(batch)
    terms = generator_loss_terms(out, t.D, batch, t.cfg.loss, own=own)
    sum(v for k, v in terms.items() if k.startswith(OWN_PREFIX)).backward()
    grads = {n: p.grad for n, p in t.G.named_parameters()}

    def moved(prefix):
        return any(g is not None and g.abs().sum() > 0
                   for n, g in grads.items() if n.startswith(prefix))

    assert moved("global_gen.") and moved("local_gen.") and moved("cond_encoder.")
    assert moved("gconv.")
    assert not moved("box_head.") and not moved("mask_head.")


def test_discriminator_keeps_its_real_half_and_scores_own_images_as_fakes(tmp_path):
    """The own-layout images are extra fakes in the same D forward: the terms of the real
    images and the teacher-forced fakes are what they are without them."""
    t = _trainer(tmp_path, **{"loss.own_layout_weight": 1.0})
    t.D.eval()                                   # spectral norm: no power iteration per call
    batch = _batch(t)
    with torch.no_grad():
        out, own = t.forward(batch), t.forward_own_layout(batch)
        plain = discriminator_loss_terms(out, t.D, batch, t.cfg.loss)
        extra = discriminator_loss_terms(out, t.D, batch, t.cfg.loss, own=own)
        # The same own images scored as the real ones: the hinge's fake half is larger.
        swapped = discriminator_loss_terms(out, t.D, batch, t.cfg.loss,
                                           own=_with_images(own, batch.images))
    assert set(extra) - set(plain) == {"own_gan", "own_obj_gan"}
    for name, value in plain.items():
        torch.testing.assert_close(extra[name], value, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(extra["own_gan"], swapped["own_gan"])


def _with_images(out, images):
    return replace(out, images=images)


# ------------------------------------------------------------------------ frozen layout
def test_freeze_layout_keeps_the_layout_exactly_and_trains_the_renderer(tmp_path):
    """From an inference export (no discriminator: it starts fresh), with the own-layout terms
    on: the layout branch is bit-identical after the steps, in the generator, its EMA copy and
    the layouts a graph gets; the renderer and its graph network moved; the optimizer holds
    only what trains."""
    start = random_model_export(tmp_path / "start.pt", VOCAB, [
        "model.layout.use_own_gconv=true", "model.layout.head=sample"])
    cfg = tiny_cfg(**OWN_GCONV, **{"train.freeze_layout": True, "loss.own_layout_weight": 1.0,
                                   "train.init_from": str(start), "train.num_steps": 2})
    res = run_training(cfg, tmp_path / "run", dataset=ToyScenes(), device="cpu")
    assert res["step"] == 2
    before = load_checkpoint(start)["generator"]
    ckpt = load_checkpoint(tmp_path / "run/checkpoints/ckpt_00000002.pt")
    frozen = [k for k in before if _frozen(k)]
    assert {k.split(".")[0] for k in frozen} == {"obj_embeddings", "pred_embeddings",
                                                 "layout_gconv", "box_head", "mask_head"}
    for key in ("generator", "generator_ema"):
        assert all(torch.equal(ckpt[key][k], before[k]) for k in frozen), key
        changed = {k for k in before if not torch.equal(ckpt[key][k], before[k])}
        assert changed and not any(_frozen(k) for k in changed)
        assert any(k.startswith("gconv.") for k in changed)
        assert any(k.startswith("global_gen.") for k in changed)
    trainable = [n for n, _ in Trainer(cfg, tmp_path / "x", device="cpu",
                                       dataset=ToyScenes()).G.named_parameters()
                 if not _frozen(n)]
    assert len(ckpt["optim_g"]["param_groups"][0]["params"]) == len(trainable)
    assert ckpt["discriminator"]
    # What users get: the same boxes and masks for a graph as the starting model.
    a, _, _ = build_generator(start)
    b, _, _ = build_generator(tmp_path / "run/export.pt")
    graphs = layout_free(_batch(_trainer(tmp_path / "y")))
    for mode in ("mode", "sample"):
        la = predicted_layout(a, graphs, layout_mode=mode, rng=torch.Generator().manual_seed(3))
        lb = predicted_layout(b, graphs, layout_mode=mode, rng=torch.Generator().manual_seed(3))
        assert all(torch.equal(x, y) for x, y in zip(la, lb, strict=True))


def test_freeze_layout_from_a_training_checkpoint_takes_the_ema_layout(tmp_path):
    """A training checkpoint has a raw and an EMA generator; the frozen layout is the EMA's
    (what its export gave users) in both of the new run's generators."""
    gan = tiny_cfg(**OWN_GCONV, **{"train.num_steps": 2, "train.checkpoint_every": 2})
    run_training(gan, tmp_path / "gan", dataset=ToyScenes(), device="cpu")
    path = tmp_path / "gan/checkpoints/ckpt_00000002.pt"
    src = load_checkpoint(path)
    frozen = [k for k in src["generator"] if _frozen(k)]
    assert any(not torch.equal(src["generator"][k], src["generator_ema"][k]) for k in frozen)
    t = _trainer(tmp_path / "fine", **OWN_GCONV, **{"train.freeze_layout": True})
    t.init_from(path)
    g, ema = t.G.state_dict(), t.G_ema.state_dict()
    assert all(torch.equal(g[k], src["generator_ema"][k]) for k in frozen)
    assert all(torch.equal(ema[k], src["generator_ema"][k]) for k in frozen)
    assert all(torch.equal(g[k], v) for k, v in src["generator"].items() if not _frozen(k))


def test_freeze_layout_needs_the_layout_graph_network():
    with pytest.raises(ConfigError, match="model.layout.use_own_gconv=true") as e:
        tiny_cfg(**{"train.freeze_layout": True})
    assert "drop train.freeze_layout" in str(e.value)
    with pytest.raises(ConfigError, match="train.stage=gan"):
        tiny_cfg(**OWN_GCONV, **{"train.freeze_layout": True, "train.stage": "layout"})


# ------------------------------------------------------------------------ jitter
def test_layout_jitter_moves_the_rendered_layout_and_zero_does_not(tmp_path):
    plain = _trainer(tmp_path / "plain")
    batch = _batch(plain)
    with torch.no_grad():
        out = plain.forward(batch)
    assert torch.equal(out.boxes, batch.boxes) and torch.equal(out.masks, batch.masks)

    t = _trainer(tmp_path / "jit", **{"train.layout_jitter": 0.1})
    image = batch.objs == 0
    with torch.no_grad():
        a, b = t.forward(batch), t.forward(batch)
        t.step = 1
        c = t.forward(batch)
    # One jitter per step: every forward of a step sees the same layout, the next step another.
    assert torch.equal(a.boxes, b.boxes) and torch.equal(a.masks, b.masks)
    assert not torch.equal(a.boxes, c.boxes)
    boxes = a.boxes[~image]
    assert not torch.allclose(boxes, batch.boxes[~image])
    assert boxes.min() >= 0 and boxes.max() <= 1
    assert (boxes[:, 2:] > boxes[:, :2]).all()
    assert torch.equal(a.boxes[image], batch.boxes[image])
    masks = a.masks[~image]
    assert not torch.equal(masks, batch.masks[~image])
    assert masks.min() > 0 and masks.max() < 1
    # The losses still compare with the real image and the true layout.
    terms = generator_loss_terms(a, t.D, batch, t.cfg.loss)
    assert terms["box"] > 0 and terms["l1"] > 0


def test_jitter_has_the_asked_spread_and_follows_the_seed():
    n = 4000
    from sg2img.scene_graph import GraphBatch

    boxes = torch.tensor([[0.4, 0.4, 0.6, 0.6]]).repeat(n, 1)
    batch = GraphBatch(objs=torch.ones(n, dtype=torch.long), triples=torch.zeros(0, 3).long(),
                       obj_to_img=torch.arange(n), triple_to_img=torch.zeros(0).long(),
                       num_images=n, boxes=boxes, masks=torch.ones(n, 8, 8))
    moved = jitter_layout(batch, 0.1, jitter_rng(0, 0, 5)).boxes
    shift = ((moved[:, :2] + moved[:, 2:]) / 2 - 0.5) / 0.2
    scale = torch.log((moved[:, 2:] - moved[:, :2]) / 0.2)
    assert shift.std().item() == pytest.approx(0.1, rel=0.1)
    assert scale.std().item() == pytest.approx(0.1, rel=0.1)
    assert abs(shift.mean().item()) < 0.01 and abs(scale.mean().item()) < 0.01
    again = jitter_layout(batch, 0.1, jitter_rng(0, 0, 5))
    other = jitter_layout(batch, 0.1, jitter_rng(1, 0, 5))
    assert torch.equal(again.boxes, moved) and not torch.equal(other.boxes, moved)
    assert jitter_layout(batch, 0.0, jitter_rng(0, 0, 5)) is batch
    # Sides on the image's edge stay there (sky over the whole width, ground along the bottom).
    edge = replace(batch, boxes=torch.tensor([[0.0, 0.0, 1.0, 0.4], [0.1, 0.5, 0.7, 1.0]]
                                             ).repeat(n // 2, 1))
    moved = jitter_layout(edge, 0.1, jitter_rng(0, 0, 5)).boxes
    assert (moved[0::2, :3] == edge.boxes[0::2, :3]).all()
    assert (moved[1::2, 3] == 1).all() and not (moved[1::2, :3] == edge.boxes[1::2, :3]).all()


def test_degraded_masks_are_soft_and_keep_their_shape():
    masks = torch.zeros(64, 16, 16)
    masks[:, 4:12, 4:12] = 1
    soft = degrade_masks(masks, 0.1, torch.Generator().manual_seed(0))
    assert soft.min() > 0 and soft.max() < 1
    assert ((soft > 0.5) == (masks > 0.5)).float().mean() > 0.9
    assert (soft[:, 8, 8] > 0.9).all() and (soft[:, 0, 0] < 0.1).all()


# ------------------------------------------------------------------------ ablation variants
def test_renderer_stage_variants_start_from_the_checkpoint(tmp_path, monkeypatch):
    """Every renderer-stage variant trains from AblationSettings.init_from with that
    checkpoint's model settings, then its own overrides; the command parses and builds."""
    from sg2img.cli import build_parser

    start = random_model_export(tmp_path / "start.pt", VOCAB, ["model.layout.head=sample"],
                                preset="small")
    settings = ablation.AblationSettings(data=tmp_path, out=tmp_path / "out", init_from=start)
    settings.out.mkdir()
    commands = {}

    def fake_run(cmd, **kwargs):
        run = Path(cmd[cmd.index("--out") + 1])
        run.mkdir(parents=True)
        commands[run.name] = cmd

    monkeypatch.setattr(ablation.subprocess, "run", fake_run)
    for name in ablation.NEEDS_INIT_FROM:
        ablation.train_variant(name, settings)
        cmd = commands[name]
        sets = [cmd[i + 1] for i, arg in enumerate(cmd) if arg == "--set"]
        own = ablation.VARIANTS[name][1]
        assert sets[-len(own):] == own
        assert sets.index(f"train.init_from={start}") < sets.index(own[0])
        assert "model.layout.head=sample" in sets
        args = build_parser().parse_args(cmd[3:])
        cfg = Config.from_preset(args.preset, args.set)
        assert cfg.train.freeze_layout and cfg.train.init_from == str(start)
        assert cfg.model.layout.head == "sample" and cfg.model.layout.use_own_gconv
    assert Config.from_preset("small", [*ablation.start_overrides(settings),
                                        *ablation.VARIANTS["render_own"][1]]
                              ).loss.own_layout_weight == 1.0
    assert Config.from_preset("small", ablation.VARIANTS["render_own01"][1]
                              ).loss.own_layout_weight == 0.1
    assert Config.from_preset("small", ablation.VARIANTS["render_jitter"][1]
                              ).train.layout_jitter == 0.1


def test_renderer_stage_variants_need_a_starting_checkpoint(tmp_path):
    with pytest.raises(ValueError, match="--init-from"):
        ablation.run_ablation(ablation.AblationSettings(data=tmp_path, out=tmp_path / "o"),
                              ["full", "render_own"])
    assert not (tmp_path / "o").exists()
    with pytest.raises(ValueError, match="not a file"):
        ablation.AblationSettings(data=tmp_path, init_from=tmp_path / "missing.pt")
    # The command line says so too, before anything runs.
    res = subprocess.run([sys.executable, str(ROOT / "scripts/ablation.py"), "--data",
                          str(tmp_path), "--out", str(tmp_path / "o"), "--variants",
                          "render_gt"], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 2 and "--init-from" in res.stderr


def test_ablation_scores_the_predicted_layout_as_generate_draws_it(tmp_path, monkeypatch):
    """A sampling head's export is also scored from sampled layouts (the layout generate()
    draws), in its own column beside the mode layout's."""
    import sg2img.eval as E

    calls = []

    def fake_evaluate(export, data, metrics, **kw):
        calls.append((tuple(metrics), kw.get("layout_mode", "mode"), kw.get("use_gt_layout")))
        fid = {"mode": 10.0, "sample": 20.0}[kw.get("layout_mode", "mode")]
        size = {"accuracy": 0.5, "real_crop_accuracy": 0.9, "num_crops": 3}
        return {"metrics": {"fid": {"fid": fid}, "layout_recall": {"R@0.5": 0.3},
                            "obj_acc": {"accuracy": 0.5, "real_crop_accuracy": 0.9,
                                        "by_size": {"area[0,0.05)": size}},
                            "diversity": {"mean_pixel_distance": 0.1, "lpips": 0.1,
                                          "feature_distance": 1.0,
                                          "feature_distance_ratio": 0.5}},
                "num_graphs": 4, "image_size": 32, "feature_network": "test"}

    monkeypatch.setattr(E, "evaluate_checkpoint", fake_evaluate)
    settings = ablation.AblationSettings(data=tmp_path)
    for head, sampled in (("sample", 20.0), ("regress", 10.0)):
        calls.clear()
        export = random_model_export(tmp_path / f"{head}.pt", VOCAB,
                                     [f"model.layout.head={head}"])
        scores = ablation.score_variant(export, settings)
        assert scores["fid_pred_layout"] == 10.0
        assert scores["fid_pred_layout_sampled"] == sampled
        assert (("fid",), "sample", None) in calls if head == "sample" else all(
            mode == "mode" for _, mode, _ in calls)
    text = ablation.table({"render_own": scores}, settings)
    assert "FID (predicted layout, sampled)" in text

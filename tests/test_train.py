"""Training: exact resume, checkpoint hygiene, signals, non-finite steps, 2-process DDP."""

import json
import os
import signal
import subprocess
import time
from dataclasses import replace

import pytest
import torch
import torch.multiprocessing as mp
from torch.utils.data import Dataset

from sg2img.checkpoint import CheckpointError, load_checkpoint
from sg2img.config import Config, ConfigError
from sg2img.testing import random_graph
from sg2img.train import Trainer, list_checkpoints, run_training
from sg2img.vocab import Vocab

VOCAB = Vocab.from_names(["sky", "grass", "sheep", "tree"], ["left of", "above", "on"])


class ToyScenes(Dataset):
    """Deterministic tiny scenes; relationship choice uses numpy's global RNG like a real
    training set's random sampling does, so resume must restore / seed it correctly."""

    vocab = VOCAB

    def __init__(self, n=12, size=32, mask=8):
        self.n, self.size, self.mask = n, size, mask

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        import numpy as np

        sample = random_graph(torch.Generator().manual_seed(i), VOCAB.num_objects,
                              VOCAB.num_preds, k=2 + i % 2, image_size=self.size,
                              mask_size=self.mask)
        p = int(np.random.randint(1, 4))
        sample.triples[0, 1] = p              # the first triple is the user's [0, p, k - 1]
        return sample


def tiny_cfg(**over):
    items = [f"{k}={v}" for k, v in over.items()]
    return Config.from_preset("tiny", items)


def _state(path):
    return load_checkpoint(path)["generator"]


@pytest.fixture
def two_threads():
    """Run with 2 intra-op threads (the default on 2 cores), where CPU reductions can race."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


# The renderer-stage options draw from the RNG streams too: the own layout's sampled boxes
# and noise (the global generator), the jitter (a generator per step).
RESUME_OPTIONS = {
    "plain": {},
    "own_layout": {"loss.own_layout_weight": 1.0, "model.layout.head": "sample"},
    "jitter": {"train.layout_jitter": 0.1},
}


@pytest.mark.parametrize("options", RESUME_OPTIONS.values(), ids=RESUME_OPTIONS)
def test_stop_and_resume_equals_uninterrupted(tmp_path, two_threads, options):
    assert torch.get_num_threads() == 2
    cfg = tiny_cfg(**{"train.num_steps": 4, "train.checkpoint_every": 2, **options})
    full = run_training(cfg, tmp_path / "full", dataset=ToyScenes(), device="cpu")
    assert full["step"] == 4
    run_training(cfg, tmp_path / "part", dataset=ToyScenes(), device="cpu", num_steps=2)
    assert [p.name for p in list_checkpoints(tmp_path / "part")] == ["ckpt_00000002.pt"]
    res = run_training(cfg, tmp_path / "part", dataset=ToyScenes(), device="cpu", resume="auto")
    assert res["step"] == 4
    a = load_checkpoint(tmp_path / "full/checkpoints/ckpt_00000004.pt")
    b = load_checkpoint(tmp_path / "part/checkpoints/ckpt_00000004.pt")
    for key in ("generator", "generator_ema", "discriminator"):
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), (key, name)
    # 12 items / batch 2 = 6 batches per epoch; 4 steps stay in epoch 0 -> also check a
    # resume across an epoch boundary below.


def test_resume_takes_the_configs_learning_rates_and_keeps_adams_moments(tmp_path):
    cfg = tiny_cfg(**{"train.num_steps": 4, "train.checkpoint_every": 2})
    run_training(cfg, tmp_path / "same", dataset=ToyScenes(), device="cpu")
    run_training(cfg, tmp_path / "drop", dataset=ToyScenes(), device="cpu", num_steps=2)
    lower = replace(cfg, train=replace(cfg.train, lr_g=cfg.train.lr_g / 4,
                                       lr_d=cfg.train.lr_d / 4))
    run_training(lower, tmp_path / "drop", dataset=ToyScenes(), device="cpu", resume="auto")
    same, drop = (load_checkpoint(tmp_path / d / "checkpoints/ckpt_00000004.pt")
                  for d in ("same", "drop"))
    for key, lr in (("optim_g", lower.train.lr_g), ("optim_d", lower.train.lr_d)):
        assert {g["lr"] for g in drop[key]["param_groups"]} == {lr}
        # Adam went on counting from the checkpoint: its moments were kept, not restarted.
        assert {float(s["step"]) for s in drop[key]["state"].values()} == {4.0}
    assert {g["lr"] for g in same["optim_g"]["param_groups"]} == {cfg.train.lr_g}
    assert not all(torch.equal(same["generator"][k], drop["generator"][k])
                   for k in same["generator"])


def test_resume_across_epoch_boundary(tmp_path, two_threads):
    cfg = tiny_cfg(**{"train.num_steps": 5, "train.checkpoint_every": 1})
    ds = ToyScenes(n=4)  # 2 batches per epoch
    run_training(cfg, tmp_path / "full", dataset=ds, device="cpu")
    run_training(cfg, tmp_path / "part", dataset=ds, device="cpu", num_steps=3)
    run_training(cfg, tmp_path / "part", dataset=ds, device="cpu", resume="auto")
    a, b = (_state(tmp_path / d / "checkpoints/ckpt_00000005.pt") for d in ("full", "part"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_run_dir_contents_and_keep_last(tmp_path):
    cfg = tiny_cfg(**{"train.num_steps": 4, "train.checkpoint_every": 1,
                      "train.keep_checkpoints": 2, "train.sample_every": 2})
    run_training(cfg, tmp_path, dataset=ToyScenes(), device="cpu")
    assert [p.name for p in list_checkpoints(tmp_path)] == ["ckpt_00000003.pt",
                                                            "ckpt_00000004.pt"]
    assert Config.from_dict(json.loads((tmp_path / "config.json").read_text())) == cfg
    rows = [json.loads(x) for x in (tmp_path / "stats.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert all("G/total" in r and "D/total" in r and r["images_per_s"] > 0 for r in rows)
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == [
        "step_00000002.png", "step_00000004.png"]
    assert (tmp_path / "loss_curves.png").stat().st_size > 1000
    export = load_checkpoint(tmp_path / "export.pt")
    assert export["kind"] == "inference" and "discriminator" not in export
    # checkpoints are plain data
    torch.load(tmp_path / "checkpoints/ckpt_00000004.pt", weights_only=True)


def test_corrupt_checkpoint_is_a_clear_error_and_previous_survives(tmp_path):
    cfg = tiny_cfg(**{"train.num_steps": 2, "train.checkpoint_every": 1})
    run_training(cfg, tmp_path, dataset=ToyScenes(), device="cpu")
    latest = list_checkpoints(tmp_path)[-1]
    latest.write_bytes(latest.read_bytes()[:100])  # truncated
    with pytest.raises(CheckpointError, match="ckpt_00000002.pt"):
        run_training(cfg.with_overrides(["train.num_steps=3"]), tmp_path, dataset=ToyScenes(),
                     device="cpu", resume="auto")
    prev = tmp_path / "checkpoints/ckpt_00000001.pt"
    assert load_checkpoint(prev)["step"] == 1
    res = run_training(cfg.with_overrides(["train.num_steps=3"]), tmp_path,
                       dataset=ToyScenes(), device="cpu", resume=str(prev))
    assert res["step"] == 3


def test_sigterm_checkpoints_and_stops(tmp_path, monkeypatch):
    cfg = tiny_cfg(**{"train.num_steps": 50, "train.checkpoint_every": 100})
    trainer = Trainer(cfg, tmp_path, device="cpu", dataset=ToyScenes())
    real = trainer.d_step

    def d_step(batch, out):
        if trainer.step == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(batch, out)

    monkeypatch.setattr(trainer, "d_step", d_step)
    summary = trainer.train()
    assert summary["stopped_by_signal"] == signal.SIGTERM
    assert summary["step"] == 3
    assert load_checkpoint(tmp_path / "checkpoints/ckpt_00000003.pt")["step"] == 3


def test_a_stop_on_a_checkpoint_step_writes_the_checkpoint_once(tmp_path, monkeypatch):
    cfg = tiny_cfg(**{"train.num_steps": 50, "train.checkpoint_every": 3})
    trainer = Trainer(cfg, tmp_path, device="cpu", dataset=ToyScenes())
    real_d, real_save, saves = trainer.d_step, trainer.save, []

    def d_step(batch, out):
        if trainer.step == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return real_d(batch, out)

    def save():
        saves.append(trainer.step)
        real_save()

    monkeypatch.setattr(trainer, "d_step", d_step)
    monkeypatch.setattr(trainer, "save", save)
    assert trainer.train()["step"] == 3 and saves == [3]


def test_a_signal_to_the_whole_process_group_still_checkpoints(tmp_path, monkeypatch):
    """Ctrl-C or a preemption reaches the data-loader workers too: they leave it to the
    trainer, which finishes its step and checkpoints (a killed worker used to stop it first)."""
    cfg = tiny_cfg(**{"train.num_steps": 50, "train.checkpoint_every": 100,
                      "data.num_workers": 1})
    trainer = Trainer(cfg, tmp_path, device="cpu", dataset=ToyScenes())
    real = trainer.d_step

    def d_step(batch, out):
        if trainer.step == 2:   # this trainer's workers (earlier tests may have left others)
            workers.extend(p for p in mp.active_children() if p.pid not in before)
            assert workers
            # Sent by another process (`kill`), as from a shell or a cluster's scheduler.
            pids = [str(p.pid) for p in workers] + [str(os.getpid())]
            subprocess.run(["kill", "-TERM", *pids], check=True)
            time.sleep(0.5)
        return real(batch, out)

    workers, before = [], {p.pid for p in mp.active_children()}
    monkeypatch.setattr(trainer, "d_step", d_step)
    summary = trainer.train()
    assert summary["stopped_by_signal"] == signal.SIGTERM and summary["step"] == 3
    assert load_checkpoint(tmp_path / "checkpoints/ckpt_00000003.pt")["step"] == 3
    for p in workers:   # the worker lived on, and still stops when its trainer says so
        assert p.is_alive()
        p.terminate()
        p.join(timeout=10)
        assert p.exitcode == 0


def test_nonfinite_loss_is_skipped_and_counted(tmp_path, monkeypatch):
    import sg2img.objectives as objectives

    cfg = tiny_cfg(**{"train.num_steps": 3})
    trainer = Trainer(cfg, tmp_path, device="cpu", dataset=ToyScenes())
    real = objectives.weighted_total
    calls = {"n": 0}

    def flaky(terms, loss_cfg):
        calls["n"] += 1
        total = real(terms, loss_cfg)
        return total * float("nan") if calls["n"] == 2 else total  # step 0's G loss

    monkeypatch.setattr(objectives, "weighted_total", flaky)
    before = {k: v.clone() for k, v in trainer.G.state_dict().items()}
    trainer.train(num_steps=1)
    assert trainer.nonfinite_skipped == 1
    after = trainer.G.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # G untouched
    trainer.train(num_steps=2)
    assert trainer.step == 3 and trainer.nonfinite_skipped == 1


def test_training_uses_deterministic_kernels_on_cpu_and_restores(tmp_path, monkeypatch,
                                                               two_threads):
    seen = []
    trainer = Trainer(tiny_cfg(), tmp_path, device="cpu", dataset=ToyScenes())
    real = trainer.d_step
    monkeypatch.setattr(trainer, "d_step", lambda b, o: (
        seen.append(torch.are_deterministic_algorithms_enabled()), real(b, o))[1])
    assert not torch.are_deterministic_algorithms_enabled()
    trainer.train(num_steps=1)
    assert seen == [True] and not torch.are_deterministic_algorithms_enabled()
    off = Trainer(tiny_cfg(**{"train.deterministic": "false"}), tmp_path / "off",
                  device="cpu", dataset=ToyScenes())
    monkeypatch.setattr(off, "d_step", lambda b, o: (
        seen.append(torch.are_deterministic_algorithms_enabled()), real(b, o))[1])
    off.train(num_steps=1)
    assert seen == [True, False]


def test_public_step_is_the_loop_step(tmp_path):
    """What scripts time by hand (a batch, train_step, the EMA update, under the trainer's
    kernels) is what the loop does: the same weights after one step."""
    from sg2img.optimization import ema_decay_at, update_ema

    cfg = tiny_cfg(**{"train.ema_start": 0})
    loop = Trainer(cfg, tmp_path / "loop", device="cpu", dataset=ToyScenes())
    loop.train(num_steps=1)
    trainer = Trainer(cfg, tmp_path / "hand", device="cpu", dataset=ToyScenes())
    assert trainer.sample_batch(n=3).num_images == 3
    batch = next(iter(trainer.loader)).to(trainer.device)
    trainer.G.train()
    trainer.D.train()
    with trainer.deterministic_kernels():
        assert torch.are_deterministic_algorithms_enabled()
        logs = trainer.train_step(batch)
    assert not torch.are_deterministic_algorithms_enabled()
    assert {"D/total", "G/total"} <= set(logs)
    update_ema(trainer.G_ema, trainer.G, ema_decay_at(0, cfg.train))
    for mine, theirs in ((trainer.G, loop.G), (trainer.G_ema, loop.G_ema), (trainer.D, loop.D)):
        ref = theirs.state_dict()
        assert all(torch.equal(v, ref[k]) for k, v in mine.state_dict().items())


def test_stop_signals_call_back_and_restore_the_handlers():
    from sg2img.resumable import stop_signals

    before = signal.getsignal(signal.SIGTERM)
    got = []
    with stop_signals(got.append):
        os.kill(os.getpid(), signal.SIGTERM)
    assert got == [signal.SIGTERM] and signal.getsignal(signal.SIGTERM) is before


def test_indexing_backward_is_deterministic_under_the_setting(two_threads):
    """The op that made 2-thread runs differ: x[idx] backward (accumulating index_put_)."""
    torch.manual_seed(0)
    x = torch.randn(2000, 64, requires_grad=True)
    idx, g = torch.randint(0, 2000, (8000,)), torch.randn(8000, 64)

    def grad():
        x.grad = None
        x[idx].backward(g)
        return x.grad.clone()

    torch.use_deterministic_algorithms(True)
    try:
        first = grad()
        assert all(torch.equal(grad(), first) for _ in range(20))
    finally:
        torch.use_deterministic_algorithms(False)


def _ddp_worker(rank, world, init_file, out_dir, options):
    import torch.distributed as dist

    os.environ.update(WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank))
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world)
    torch.set_num_threads(1)
    cfg = tiny_cfg(**{"train.num_steps": 3, "train.checkpoint_every": 10, **options})
    trainer = Trainer(cfg, out_dir, device="cpu", dataset=ToyScenes())
    trainer.train()
    torch.save({k: v.clone() for k, v in trainer.G.state_dict().items()},
               os.path.join(out_dir, f"rank{rank}.pt"))
    dist.destroy_process_group()


# A renderer stage: a second generator forward (the own layout) before the backward, and
# frozen layout weights that DDP must leave out.
DDP_OPTIONS = {"plain": {}, "renderer_stage": {
    "loss.own_layout_weight": 1.0, "train.freeze_layout": True,
    "model.layout.use_own_gconv": True, "train.layout_jitter": 0.1}}


@pytest.mark.parametrize("options", DDP_OPTIONS.values(), ids=DDP_OPTIONS)
def test_two_process_ddp_keeps_ranks_identical(tmp_path, options):
    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), str(tmp_path), options), nprocs=2)
    a = torch.load(tmp_path / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "checkpoints/ckpt_00000003.pt").exists()  # rank 0 wrote it
    # and training did move the weights away from their (shared) initial values
    init = Trainer(tiny_cfg(**options), tmp_path / "init_run", device="cpu",
                   dataset=ToyScenes())
    assert any(not torch.equal(a[k], v) for k, v in init.G.state_dict().items())


def test_train_command_round_trips_through_the_parser():
    """command.txt records a command that parses back to the same arguments."""
    import shlex

    from sg2img.cli import build_parser, train_command

    argv = ["train", "--preset", "tiny", "--data", "my data", "--set", "train.num_steps=5",
            "--set", "model.renderer.use_local=false", "--out", "runs/x", "--resume", "auto"]
    args = build_parser().parse_args(argv)
    line = train_command(args)
    assert line.startswith("sg2img train ")
    again = build_parser().parse_args(shlex.split(line)[1:])
    drop = ("func",)          # a fresh closure per parser
    assert {k: v for k, v in vars(again).items() if k not in drop} == \
        {k: v for k, v in vars(args).items() if k not in drop}


def test_coarse_to_fine_init_from_half_size_run(tmp_path):
    """pix2pixHD's schedule: an H/2 run initialises the H model with an enhancer stage."""
    coarse = tiny_cfg(**{"train.num_steps": 2, "train.checkpoint_every": 2})
    run_training(coarse, tmp_path / "coarse", dataset=ToyScenes(size=32), device="cpu")
    ckpt = tmp_path / "coarse/checkpoints/ckpt_00000002.pt"

    fine = tiny_cfg(**{"model.renderer.image_size": 64, "model.renderer.coarse_to_fine": True,
                       "train.num_steps": 1, "train.init_from": str(ckpt)})
    trainer = Trainer(fine, tmp_path / "fine", device="cpu", dataset=ToyScenes(size=64))
    info = trainer.init_from(ckpt)
    # Only the enhancer stage is new; everything else (graph net, local generator, the
    # coarse stages) carries over, in the EMA copy and the discriminator too.
    assert info["new"] and all(k.startswith("global_gen.blocks.5.") for k in info["new"])
    src = load_checkpoint(ckpt)
    for name, value in src["generator"].items():
        assert torch.equal(trainer.G.state_dict()[name], value), name
    for name, value in src["generator_ema"].items():
        assert torch.equal(trainer.G_ema.state_dict()[name], value), name
    for name, value in src["discriminator"].items():
        assert torch.equal(trainer.D.state_dict()[name], value), name

    # Through run_training (train.init_from), the fine run trains at 64 from step 0.
    res = run_training(fine, tmp_path / "fine2", dataset=ToyScenes(size=64), device="cpu")
    assert res["step"] == 1
    out = load_checkpoint(tmp_path / "fine2/export.pt")
    assert out["config"]["model"]["renderer"]["coarse_to_fine"] is True

    # A run on another dataset cannot start from these weights.
    other = Vocab.from_names(["sky", "sea"], ["left of"])

    class Other(ToyScenes):
        vocab = other

    t = Trainer(fine, tmp_path / "x", device="cpu", dataset=Other(size=64))
    with pytest.raises(CheckpointError, match="another vocabulary"):
        t.init_from(ckpt)


def test_coarse_to_fine_needs_size_divisible_by_32():
    from sg2img.config import ConfigError

    with pytest.raises(ConfigError, match="coarse_to_fine"):
        tiny_cfg(**{"model.renderer.image_size": 48, "model.renderer.coarse_to_fine": True})


def test_ema_decay_ramps_up_then_holds():
    from sg2img.optimization import ema_decay_at

    tc = tiny_cfg(**{"train.ema_decay": 0.999, "train.ema_start": 5}).train
    decays = [ema_decay_at(s, tc) for s in range(5, 20000, 7)]
    assert decays[0] == 0.0                                   # first update copies G
    assert all(a <= b for a, b in zip(decays, decays[1:], strict=False))
    assert ema_decay_at(105, tc) < 0.95                        # a short run averages recent weights
    assert max(decays) == 0.999 and ema_decay_at(19_000, tc) == 0.999
    # After 1000 updates the initial weights weigh almost nothing (0.999 ** 1000 = 0.37).
    keep = 1.0
    for s in range(6, 1006):
        keep *= ema_decay_at(s, tc)
    assert keep < 1e-3
    flat = tiny_cfg(**{"train.ema_decay": 0.999, "train.ema_rampup": False}).train
    assert ema_decay_at(0, flat) == 0.0 and ema_decay_at(1, flat) == 0.999


def test_layout_stage_trains_the_layout_branch_only_and_resumes_exactly(tmp_path):
    from sg2img.optimization import LAYOUT_MODULES

    torch.set_num_threads(2)
    gan = tiny_cfg(**{"train.num_steps": 2, "train.checkpoint_every": 2})
    run_training(gan, tmp_path / "gan", dataset=ToyScenes(), device="cpu")
    start = tmp_path / "gan/checkpoints/ckpt_00000002.pt"
    over = {"train.stage": "layout", "train.init_from": str(start), "train.num_steps": 4,
            "train.checkpoint_every": 2, "model.layout.head": "sample"}
    cfg = tiny_cfg(**over)
    res = run_training(cfg, tmp_path / "lay", dataset=ToyScenes(), device="cpu")
    assert res["step"] == 4
    before, after = load_checkpoint(start)["generator"], _state(
        tmp_path / "lay/checkpoints/ckpt_00000004.pt")
    changed = {k for k in after if k not in before or not torch.equal(after[k], before[k])}
    assert changed and all(k.split(".")[0] in LAYOUT_MODULES for k in changed), changed
    stats = [json.loads(line) for line in (tmp_path / "lay/stats.jsonl").read_text().splitlines()]
    assert "L/box_nll" in stats[-1] and "L/layout_anchor" in stats[-1]
    assert not any(k.startswith(("G/", "D/")) for k in stats[-1])
    # Stopped at 2 and resumed: the same weights as the uninterrupted run.
    run_training(cfg.with_overrides(["train.num_steps=2"]), tmp_path / "lay2",
                 dataset=ToyScenes(), device="cpu")
    run_training(cfg, tmp_path / "lay2", dataset=ToyScenes(), device="cpu", resume="auto")
    again = _state(tmp_path / "lay2/checkpoints/ckpt_00000004.pt")
    for k, v in after.items():
        assert torch.equal(again[k], v), k


def test_layout_stage_heads_only_keeps_the_object_vectors(tmp_path):
    """``train.layout_modules=heads``: only the box and mask heads learn, so the vectors the
    renderer reads (embeddings, graph convolution) are the starting model's exactly. With
    ``model.layout.use_own_gconv`` the heads' own graph network starts as a copy of the renderer's
    and learns too."""
    from sg2img.optimization import LAYOUT_HEADS

    torch.set_num_threads(2)
    gan = tiny_cfg(**{"train.num_steps": 2, "train.checkpoint_every": 2})
    run_training(gan, tmp_path / "gan", dataset=ToyScenes(), device="cpu")
    start = tmp_path / "gan/checkpoints/ckpt_00000002.pt"
    before = load_checkpoint(start)["generator"]
    for own_gconv in (False, True):
        cfg = tiny_cfg(**{"train.stage": "layout", "train.init_from": str(start),
                          "train.num_steps": 2, "train.checkpoint_every": 2,
                          "model.layout.head": "sample", "train.layout_modules": "heads",
                          "model.layout.use_own_gconv": own_gconv})
        run = tmp_path / f"lay{int(own_gconv)}"
        run_training(cfg, run, dataset=ToyScenes(), device="cpu")
        after = _state(run / "checkpoints/ckpt_00000002.pt")
        changed = {k for k in after if k not in before or not torch.equal(after[k], before[k])}
        expect = set(LAYOUT_HEADS) if own_gconv else set(LAYOUT_HEADS) - {"layout_gconv"}
        assert {k.split(".")[0] for k in changed} == expect, changed
    with pytest.raises(ConfigError, match="train.layout_modules"):
        tiny_cfg(**{"train.layout_modules": "gconv"})


def test_layout_gconv_copy_of_gconv_changes_nothing():
    """A model whose layout graph network equals its graph network lays out and draws exactly
    what the same model without one does; with other weights only the layout changes."""
    from sg2img.model import GALSGenerator
    from sg2img.testing import random_graph_batch

    torch.manual_seed(0)
    cfg = tiny_cfg(**{"model.layout.head": "sample"}).model
    plain = GALSGenerator(cfg, VOCAB.num_objects, VOCAB.num_preds).eval()
    own_cfg = replace(cfg, layout=replace(cfg.layout, use_own_gconv=True))
    own = GALSGenerator(own_cfg, VOCAB.num_objects, VOCAB.num_preds).eval()
    state = plain.state_dict()
    own.load_state_dict({**state, **{"layout_" + k: v for k, v in state.items()
                                     if k.startswith("gconv.")}})
    batch = random_graph_batch(VOCAB.num_objects, VOCAB.num_preds, [3, 4, 2],
                               image_size=cfg.renderer.image_size,
                               mask_size=cfg.layout.mask_size, seed=1)
    z = torch.randn(3, cfg.renderer.noise_dim)
    with torch.no_grad():
        a = plain(batch, z=z, rng=torch.Generator().manual_seed(0))
        b = own(batch, z=z, rng=torch.Generator().manual_seed(0))
        assert torch.equal(a.boxes_pred, b.boxes_pred) and torch.equal(a.images, b.images)
        assert torch.equal(a.masks_pred, b.masks_pred)
        for w in own.layout_gconv.parameters():
            torch.nn.init.normal_(w)
        c = own(batch, z=z, rng=torch.Generator().manual_seed(0))
        vecs_a, vecs_c = plain.encode_graph(batch)[0], own.encode_graph(batch)[0]
    # The untrained box head's mixture ignores its input at first; the mask head does not.
    assert not torch.allclose(a.masks_pred, c.masks_pred)
    assert torch.equal(vecs_a, vecs_c)

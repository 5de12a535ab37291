"""One readable GAN training loop: CPU or GPU, single process or torchrun + DDP, exact resume.

A run directory holds ``config.json``, ``stats.jsonl``, ``samples/``, ``checkpoints/``,
``loss_curves.png`` and ``export.pt`` (the inference export of the EMA generator).

Resuming restores weights, the EMA copy, both optimizers, the step, every RNG state and the
position in the data order, so a run that is stopped and resumed ends with the same weights as
one that never stopped (same seed, same number of processes and threads; on the CPU this
relies on ``train.deterministic``, see ``Trainer.deterministic_kernels``). The pieces live
beside this module: ``distributed.py`` (torchrun and DDP), ``resumable.py`` (data order and
RNG states), ``optimization.py`` (optimizers, clipping, EMA).
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import Dataset

from . import checkpoint
from .checkpoint import (
    CheckpointError,
    export_inference,
    generator_state,
    load_checkpoint,
    save_checkpoint,
    unwrap_state_dict,
)
from .config import Config
from .distributed import all_ranks_true, all_reduce_mean, average_gradients, setup_device, wrap_ddp
from .files import atomic_write, remove_stale_temp_files
from .losses import build_vgg_loss
from .optimization import (
    FROZEN_LAYOUT_MODULES,
    apply_learning_rates,
    build_layout_optimizer,
    build_optimizers,
    clip_gradients,
    ema_decay_at,
    freeze_layout_branch,
    set_requires_grad,
    update_ema,
)
from .own_layout_training import jitter_layout, jitter_rng, render_own_layout
from .resumable import (
    ResumableSampler,
    build_loader,
    deterministic_kernels,
    rng_state,
    seed_everything,
    set_rng_state,
    stop_signals,
)
from .scene_graph import GraphBatch, collate_graphs
from .vocab import Vocab

if TYPE_CHECKING:
    from .model import GeneratorOutput

logger = logging.getLogger(__name__)

CKPT_GLOB = "ckpt_*.pt"


def list_checkpoints(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "checkpoints").glob(CKPT_GLOB))


def _checkpoint_path(run_dir: Path, step: int) -> Path:
    return run_dir / "checkpoints" / f"ckpt_{step:08d}.pt"


# ----------------------------------------------------------------------------- building
def build_datasets(cfg: Config, val_dataset: Dataset | None = None
                   ) -> tuple[Dataset, Dataset | None]:
    """The training split and (for sample grids) the val split, if the dataset has one."""
    from .data import build_dataset

    dataset = build_dataset(cfg.data, "train", cfg.model.renderer.image_size,
                            cfg.model.layout.mask_size)
    if val_dataset is None:
        try:
            val_dataset = build_dataset(cfg.data, "val", cfg.model.renderer.image_size,
                                        cfg.model.layout.mask_size)
        except (FileNotFoundError, ValueError) as e:
            logger.warning("no val split for sample grids (%s); using train items", e)
    return dataset, val_dataset


def build_models(cfg: Config, vocab: Vocab, device: torch.device, channels_last: bool
                 ) -> tuple[nn.Module, nn.Module, nn.Module]:
    """Generator, discriminator and the generator's frozen EMA copy, on ``device``."""
    from .model import GALSDiscriminator, GALSGenerator

    G = GALSGenerator(cfg.model, vocab.num_objects, vocab.num_preds, vocab.num_attributes,
                      pred_names=vocab.pred_names, stuff_ids=vocab.stuff_ids()).to(device)
    D = GALSDiscriminator(cfg.model, vocab.num_objects, vocab.num_attributes).to(device)
    if channels_last:
        G.to(memory_format=torch.channels_last)
        D.to(memory_format=torch.channels_last)
    G_ema = copy.deepcopy(G).eval()
    set_requires_grad(G_ema, False)
    return G, D, G_ema


def _seed_layout_gconv(state: dict[str, Tensor] | None) -> dict[str, Tensor] | None:
    """``state`` plus ``layout_gconv.*`` copied from ``gconv.*`` when it has none."""
    if not state or any(k.startswith("layout_gconv.") for k in state):
        return state
    return {**state, **{"layout_" + k: v.clone() for k, v in state.items()
                        if k.startswith("gconv.")}}


class Trainer:
    """Builds everything from a ``Config`` and runs the loop. The composition root for training.

    Args:
        cfg: the full configuration (``cfg.data.root`` names the dataset directory).
        run_dir: where config, stats, samples and checkpoints go.
        device: ``"cpu"``, ``"cuda"`` or None (CUDA when available).
        dataset: optional dataset override (tests); must have a ``vocab`` attribute.
    """

    def __init__(self, cfg: Config, run_dir: str | os.PathLike, device: str | None = None,
                 dataset: Dataset | None = None, val_dataset: Dataset | None = None):
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.device, self.dist = setup_device(device)
        self.use_amp = cfg.train.mixed_precision and self.device.type == "cuda"
        self.channels_last = cfg.train.channels_last and self.device.type == "cuda"
        seed_everything(cfg.train.seed)

        if dataset is None:
            dataset, val_dataset = build_datasets(cfg, val_dataset)
        self.dataset = dataset
        self.vocab: Vocab = dataset.vocab
        self.sampler = ResumableSampler(len(dataset), cfg.train.batch_size, cfg.train.seed,
                                        self.dist.rank, self.dist.world_size)
        self.loader = build_loader(dataset, self.sampler, batch_size=cfg.train.batch_size,
                                   seed=cfg.train.seed, num_workers=cfg.data.num_workers,
                                   pin_memory=self.device.type == "cuda")
        self.G, self.D, self.G_ema = build_models(cfg, self.vocab, self.device,
                                                  self.channels_last)
        if cfg.train.freeze_layout:   # before the optimizer and DDP, which skip frozen weights
            freeze_layout_branch(self.G)
        self.opt_g, self.opt_d = build_optimizers(cfg, self.G, self.D)
        if cfg.train.stage == "layout":
            self.opt_g = build_layout_optimizer(cfg, self.G)
            if hasattr(dataset, "with_images") and val_dataset is not None:
                dataset.with_images = False   # the layout stage reads no training image
        self.anchor: nn.Module | None = None
        vgg = build_vgg_loss(cfg.loss.vgg_weight, cfg.train.vgg_weights or None)
        self.vgg = vgg.to(self.device) if vgg is not None else None
        self.G_train, self.D_train = wrap_ddp(self.G, self.D, self.dist, self.device,
                                              find_unused=cfg.data.dataset == "vg")

        self.step = 0
        self.nonfinite_skipped = 0
        self.command: str | None = None
        self._stop_signal: int | None = None
        self._fixed_batch = self.sample_batch(val_dataset or dataset)
        self._fixed_z = torch.randn(self._fixed_batch.num_images, cfg.model.renderer.noise_dim,
                                    generator=torch.Generator().manual_seed(cfg.train.seed))
        # Re-seed: building modules and the fixed batch must not shift the training RNG streams.
        torch.manual_seed(cfg.train.seed + 1)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """The training checkpoint (``checkpoint.training_state``)."""
        return checkpoint.training_state(
            step=self.step, config=self.cfg, vocab=self.vocab, generator=self.G,
            generator_ema=self.G_ema, discriminator=self.D, optim_g=self.opt_g,
            optim_d=self.opt_d, rng=rng_state(),
            batches_per_epoch=self.sampler.batches_per_epoch,
            world_size=self.dist.world_size, nonfinite_skipped=self.nonfinite_skipped)

    def load_state_dict(self, ckpt: dict[str, Any]) -> None:
        """Resume from a training checkpoint (``checkpoint.restore_training_state``), at the
        config's learning rates (``apply_learning_rates``).

        Raises:
            CheckpointError: not a training checkpoint of this run's vocabulary and config,
                or damaged.
        """
        progress = checkpoint.restore_training_state(
            ckpt, vocab=self.vocab, generator=self.G, generator_ema=self.G_ema,
            discriminator=self.D, optim_g=self.opt_g, optim_d=self.opt_d,
            set_rng_state=set_rng_state, world_size=self.dist.world_size)
        self.step = progress.step
        self.nonfinite_skipped = progress.nonfinite_skipped
        changed = apply_learning_rates(self.cfg, self.opt_g, self.opt_d)
        if changed:
            logger.info("learning rates from the config, not the checkpoint: %s",
                        ", ".join(changed))

    def init_from(self, path: str | os.PathLike) -> dict[str, list[str]]:
        """Start a new run from another run's weights where names and shapes match.

        pix2pixHD's coarse-to-fine schedule: a model trained at ``H/2`` initialises an ``H`` model
        with ``model.renderer.coarse_to_fine=true`` (every generator stage but the enhancer, the
        graph network, the local generator and the fully convolutional discriminators carry over).
        The step, optimizers and data order start afresh. Accepts a training checkpoint or an
        inference export (generator only).

        Returns:
            ``{"loaded": [...], "new": [...]}``: generator parameter names taken from the
            checkpoint and those that keep their fresh initialisation.

        Raises:
            CheckpointError: the vocabularies differ, or no generator weight matches.
        """
        start = checkpoint.starting_weights(load_checkpoint(path, map_location="cpu"),
                                            self.vocab, str(path))

        def copy_matching(module: nn.Module, state: dict[str, Tensor] | None) -> list[str]:
            if not state:
                return []
            own = module.state_dict()
            hits = [k for k, v in state.items() if k in own and own[k].shape == v.shape]
            module.load_state_dict({**own, **{k: state[k] for k in hits}})
            return hits

        g_state, g_raw = start["generator_ema"], start["generator"]
        if getattr(self.G, "layout_gconv", None) is not None:
            # model.layout.use_own_gconv from a model without one: the layout graph network starts
            # as a copy of the graph network (the renderer's), then the two part ways.
            g_state, g_raw = _seed_layout_gconv(g_state), _seed_layout_gconv(g_raw)
        loaded = copy_matching(self.G, g_raw or g_state)
        copy_matching(self.G_ema, g_state)
        copy_matching(self.D, start["discriminator"])
        if self.cfg.train.freeze_layout:   # the frozen layout is the one users got: the EMA's
            copy_matching(self.G, {k: v for k, v in self.G_ema.state_dict().items()
                                   if k.split(".")[0] in FROZEN_LAYOUT_MODULES})
        if not loaded:
            raise CheckpointError(f"train.init_from: no generator weight of {path} matches "
                                  f"this model's names and shapes")
        hit = set(loaded)
        new = [k for k in self.G.state_dict() if k not in hit]
        logger.info("initialised %d of %d generator tensors from %s; new: %s", len(loaded),
                    len(loaded) + len(new), path, ", ".join(new) or "none")
        return {"loaded": loaded, "new": new}

    def save(self) -> Path | None:
        """Write a checkpoint atomically (rank 0), keep the last K, refresh the export."""
        if not self.dist.is_main:
            return None
        path = _checkpoint_path(self.run_dir, self.step)
        save_checkpoint(path, self.state_dict())
        for old in list_checkpoints(self.run_dir)[: -self.cfg.train.keep_checkpoints]:
            old.unlink(missing_ok=True)
        export_inference(self.run_dir / "export.pt", self.cfg, self.vocab,
                         unwrap_state_dict(self.G_ema), step=self.step)
        logger.info("step %d: wrote %s", self.step, path)
        return path

    # ------------------------------------------------------------------ steps
    def sample_batch(self, dataset: Dataset | None = None, n: int = 8) -> GraphBatch:
        """The first ``n`` items of ``dataset`` (the training set by default) as one batch, on
        the CPU: the fixed batch of the sample grids, or a batch to time a step on."""
        dataset = self.dataset if dataset is None else dataset
        n = min(n, len(dataset))
        return collate_graphs([dataset[i] for i in range(n)])

    def forward(self, batch: GraphBatch, *, zero_noise: bool = False) -> GeneratorOutput:
        """The training generator's forward pass (DDP-wrapped, under autocast with
        ``train.mixed_precision``), with teacher forcing as ``train.teacher_forcing`` says and
        the true layout jittered as ``train.layout_jitter`` says (the same jitter for every
        forward of a step).

        Args:
            batch: a batch on the trainer's device.
            zero_noise: all noise zero (the reconstruction sample of
                ``loss.recon_noise="zero"``) instead of fresh random noise.
        """
        noise = {}
        if zero_noise:     # the anchored sample of loss.recon_noise="zero"
            m = self.cfg.model.renderer
            noise["z"] = torch.zeros(batch.num_images, m.noise_dim, device=self.device)
            if m.noise == "spatial":
                noise["obj_noise"] = torch.zeros(batch.num_objects, m.layout_noise_dim,
                                                 device=self.device)
        tc = self.cfg.train
        if tc.layout_jitter > 0 and tc.teacher_forcing:
            batch = jitter_layout(batch, tc.layout_jitter,
                                  jitter_rng(tc.seed, self.dist.rank, self.step))
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.use_amp):
            return self.G_train(batch, use_gt_layout=tc.teacher_forcing, **noise)

    def forward_own_layout(self, batch: GraphBatch) -> GeneratorOutput:
        """The training generator's images of ``batch``'s graphs from its own layout, with
        fresh noise (``loss.own_layout_weight``; ``own_layout_training.render_own_layout``)."""
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.use_amp):
            return render_own_layout(self.G_train, self.G, batch)

    def train_step(self, batch: GraphBatch) -> dict[str, float]:
        """One optimisation step on a batch on the trainer's device, as the loop takes it.

        The layout stage's ``layout_step``; otherwise one generator forward (and one from the
        model's own layout with ``loss.own_layout_weight``), then the D step and the G step on
        that output. The EMA copy and ``self.step`` are the loop's to update.

        Returns:
            The logged loss terms (``"D/gan"``, ``"G/total"``, ...); a side whose step was
            skipped for non-finite values has none.
        """
        if self.cfg.train.stage == "layout":
            return self.layout_step(batch)
        out = self.forward(batch)
        # Passed only when there is one: a d_step / g_step override may not take it.
        own = ({"own": self.forward_own_layout(batch)} if self.cfg.loss.own_layout_weight > 0
               else {})
        logs = self.d_step(batch, out, **own)
        logs.update(self.g_step(batch, out, **own))
        return logs

    def d_step(self, batch: GraphBatch, out: GeneratorOutput,
               own: GeneratorOutput | None = None) -> dict[str, float]:
        from .objectives import discriminator_loss_terms, weighted_total

        set_requires_grad(self.D, True)
        self.opt_d.zero_grad(set_to_none=True)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.use_amp):
            terms = discriminator_loss_terms(out, self.D_train, batch, self.cfg.loss, own=own)
            total = weighted_total(terms, self.cfg.loss)
        return self._apply(total, terms, self.D.parameters(), self.opt_d, "D")

    def g_step(self, batch: GraphBatch, out: GeneratorOutput,
               own: GeneratorOutput | None = None) -> dict[str, float]:
        from .objectives import generator_loss_terms, weighted_total

        # The G step goes through the unwrapped D: its gradients are not wanted or synced.
        set_requires_grad(self.D, False)
        self.opt_g.zero_grad(set_to_none=True)
        # loss.recon_noise="zero": the reconstruction terms score a noise-free sample.
        recon = (self.forward(batch, zero_noise=True)
                 if self.cfg.loss.recon_noise == "zero" else None)
        # The mode-seeking term compares with a second sample of the batch: the noise-free
        # one when there is one (no third forward), else one with other noise.
        second = None
        if self.cfg.loss.mode_seek_weight > 0:
            second = recon if recon is not None else self.forward(batch)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.use_amp):
            terms = generator_loss_terms(out, self.D, batch, self.cfg.loss, vgg=self.vgg,
                                         second=second, recon=recon, own=own)
            total = weighted_total(terms, self.cfg.loss)
        logs = self._apply(total, terms, self.G.parameters(), self.opt_g, "G")
        set_requires_grad(self.D, True)
        return logs

    def layout_step(self, batch: GraphBatch) -> dict[str, float]:
        """One step of ``train.stage="layout"``: the layout branch on boxes and masks.

        No image is rendered; the frozen renderer is untouched. When the stage trains the
        renderer's graph network (``train.layout_modules="branch"``), the object vectors are
        pulled towards those of the model the stage started from
        (``loss.layout_anchor_weight``), which the renderer was trained to read.
        """
        from .objectives import layout_loss_terms, weighted_total

        self.opt_g.zero_grad(set_to_none=True)
        anchor_vecs = None
        if self.anchor is not None:
            with torch.no_grad():
                anchor_vecs, _ = self.anchor.encode_graph(batch)
        terms = layout_loss_terms(self.G, batch, self.cfg.loss, anchor_vecs=anchor_vecs)
        total = weighted_total(terms, self.cfg.loss)
        params = [p for p in self.G.parameters() if p.requires_grad]
        return self._apply(total, terms, params, self.opt_g, "L", sync_grads=True)

    def set_layout_anchor(self, path: str | os.PathLike | None) -> None:
        """Freeze a copy of the generator as it starts the layout stage: ``path``'s weights
        (``train.init_from``; also on resume) or, without one, the current weights."""
        anchor = copy.deepcopy(self.G).eval()
        if path:
            ckpt = load_checkpoint(path, map_location="cpu")
            own = anchor.state_dict()
            state = generator_state(ckpt)
            anchor.load_state_dict({**own, **{k: v for k, v in state.items()
                                              if k in own and own[k].shape == v.shape}})
        set_requires_grad(anchor, False)
        self.anchor = anchor.to(self.device)

    def _apply(self, total: Tensor, terms: dict[str, Tensor], params, opt, name: str, *,
               sync_grads: bool = False) -> dict[str, float]:
        params = [p for p in params if p.requires_grad]
        # All ranks must take the same branch: agree on finiteness before backward.
        if not all_ranks_true(torch.isfinite(total.detach()), self.dist, self.device):
            self.nonfinite_skipped += 1
            logger.warning("step %d: non-finite %s loss, step skipped", self.step, name)
            return {}
        total.backward()
        if sync_grads:
            # The layout step runs the unwrapped G, so DDP does not average the gradients.
            average_gradients(params, self.dist)
        ok = clip_gradients(params, self.cfg.train.grad_clip)
        if not all_ranks_true(ok, self.dist, self.device):
            self.nonfinite_skipped += 1
            logger.warning("step %d: non-finite %s gradients, step skipped", self.step, name)
            opt.zero_grad(set_to_none=True)
            return {}
        opt.step()
        logs = {f"{name}/{k}": float(v.detach()) for k, v in terms.items()}
        logs[f"{name}/total"] = float(total.detach())
        return logs

    # ------------------------------------------------------------------ loop
    def _batches(self) -> Iterator[GraphBatch]:
        bpe = self.sampler.batches_per_epoch
        epoch, within = divmod(self.step, bpe)
        while True:
            self.sampler.set_epoch(epoch, within * self.cfg.train.batch_size)
            yield from self.loader
            epoch, within = epoch + 1, 0

    def _on_stop_signal(self, signum: int) -> None:
        self._stop_signal = signum
        logger.warning("signal %d received: finishing this step, then checkpointing", signum)

    def deterministic_kernels(self) -> contextlib.AbstractContextManager[None]:
        """Torch's deterministic kernels inside the block as the loop runs them: on with
        ``train.deterministic`` on the CPU (``sg2img.resumable.deterministic_kernels`` says
        why). On CUDA the setting is left alone: it would need ``CUBLAS_WORKSPACE_CONFIG`` and
        has no deterministic kernel for some ops.
        """
        return deterministic_kernels(self.cfg.train.deterministic and self.device.type == "cpu")

    def train(self, num_steps: int | None = None) -> dict[str, Any]:
        """Run until ``cfg.train.num_steps`` (or ``num_steps`` more steps, for tests).

        Returns:
            A summary dict: final step, whether it stopped on a signal, skipped steps.
        """
        tc = self.cfg.train
        end = tc.num_steps if num_steps is None else min(tc.num_steps, self.step + num_steps)
        if self.dist.is_main:
            (self.run_dir / "samples").mkdir(parents=True, exist_ok=True)
            (self.run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
            remove_stale_temp_files(self.run_dir / "checkpoints")
            remove_stale_temp_files(self.run_dir)
            with atomic_write(self.run_dir / "config.json", "config") as f:
                f.write(self.cfg.to_json().encode())
            if self.command:
                with open(self.run_dir / "command.txt", "a") as f:
                    f.write(self.command + "\n")
        window: dict[str, list[float]] = defaultdict(list)
        t_window, imgs_window = time.perf_counter(), 0
        pbar = None
        if self.dist.is_main and num_steps is None:
            from tqdm import tqdm

            pbar = tqdm(total=end, initial=self.step, desc="train", dynamic_ncols=True)
        self.G.train()
        self.D.train()
        batches = self._batches()
        with stop_signals(self._on_stop_signal), self.deterministic_kernels():
            saved_at = None
            try:
                while self.step < end and self._stop_signal is None:
                    batch = next(batches).to(self.device, non_blocking=True)
                    if self.channels_last and batch.images is not None:
                        batch.images = batch.images.contiguous(memory_format=torch.channels_last)
                    logs = self.train_step(batch)
                    if self.step >= tc.ema_start:
                        update_ema(self.G_ema, self.G, ema_decay_at(self.step, tc))
                    self.step += 1
                    for k, v in logs.items():
                        window[k].append(v)
                    imgs_window += batch.num_images * self.dist.world_size
                    if self.step % tc.log_every == 0 or self.step == end:
                        self._log(window, imgs_window / (time.perf_counter() - t_window), pbar)
                        window.clear()
                        t_window, imgs_window = time.perf_counter(), 0
                    if pbar is not None:
                        pbar.update(1)
                    if self.step % tc.sample_every == 0 or self.step == end:
                        self.save_samples()
                    if self.step % tc.checkpoint_every == 0 or self.step == end:
                        self.save()
                        saved_at = self.step
                if self._stop_signal is not None and saved_at != self.step:
                    self.save()
            finally:
                if pbar is not None:
                    pbar.close()
        return {"step": self.step, "stopped_by_signal": self._stop_signal,
                "nonfinite_skipped": self.nonfinite_skipped}

    def _log(self, window: dict[str, list[float]], imgs_per_s: float, pbar) -> None:
        means = {k: sum(v) / len(v) for k, v in window.items() if v}
        means = all_reduce_mean(means, self.dist)
        if not self.dist.is_main:
            return
        record = {"step": self.step, "images_per_s": round(imgs_per_s, 2),
                  "nonfinite_skipped": self.nonfinite_skipped, **means}
        with open(self.run_dir / "stats.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        if pbar is not None:
            # "D/gan" -> "D_gan", "G/total" -> "G": the bar shows the adversarial terms
            # and each side's total; stats.jsonl has every term.
            short = {k.replace("/total", "").replace("/", "_"): f"{v:.3g}"
                     for k, v in means.items() if k.endswith(("/total", "/gan"))}
            pbar.set_postfix(**short, ips=f"{imgs_per_s:.1f}")

    @torch.no_grad()
    def save_samples(self) -> None:
        """Grid rows: real | GT layout | generated (GT layout) | predicted layout | generated."""
        if not self.dist.is_main:
            return
        from torchvision.utils import save_image

        b = self._fixed_batch.to(self.device)
        z = self._fixed_z.to(self.device)
        self.G_ema.eval()
        gt = self.G_ema(b, use_gt_layout=True, z=z)
        pred = self.G_ema(b, use_gt_layout=False, z=z)
        from .vis import colorize_layout, plot_loss_curves

        rows = [b.images.float().cpu(), colorize_layout(gt.layout.float()),
                gt.images.float().cpu(), colorize_layout(pred.layout.float()),
                pred.images.float().cpu()]
        grid = torch.cat(rows)
        save_image(grid * 0.5 + 0.5, self.run_dir / "samples" / f"step_{self.step:08d}.png",
                   nrow=b.num_images, padding=1)
        plot_loss_curves(self.run_dir / "stats.jsonl", self.run_dir / "loss_curves.png")


def resolve_resume(run_dir: Path, resume: str | None) -> Path | None:
    """``None`` -> no resume; ``"auto"`` -> latest checkpoint in the run dir (if any); else path."""
    if not resume:
        return None
    if resume == "auto":
        ckpts = list_checkpoints(run_dir)
        return ckpts[-1] if ckpts else None
    path = Path(resume)
    if not path.exists():
        raise CheckpointError(f"--resume checkpoint not found: {path}")
    return path


def run_training(cfg: Config, run_dir: str | os.PathLike, *, resume: str | None = None,
                 device: str | None = None, dataset: Dataset | None = None,
                 num_steps: int | None = None, command: str | None = None) -> dict[str, Any]:
    """Build a ``Trainer``, resume if asked, train, and return its summary.

    Nothing is written to ``run_dir`` until the data, the model and any checkpoint to resume
    or start from have loaded: a run that fails on bad input leaves no folder behind.

    Args:
        command: the command line that started this invocation; appended to
            ``RUN/command.txt`` (provenance: every invocation that trained the run, in order).

    Returns:
        ``{"step", "stopped_by_signal", "nonfinite_skipped", "is_main"}``.
    """
    run_dir = Path(run_dir)
    trainer = Trainer(cfg, run_dir, device=device, dataset=dataset)
    path = resolve_resume(run_dir, resume)
    if path is not None:
        ckpt = load_checkpoint(path, map_location="cpu")
        trainer.load_state_dict(ckpt)
        logger.info("resumed from %s at step %d", path, trainer.step)
    elif cfg.train.init_from:
        trainer.init_from(cfg.train.init_from)
    if cfg.train.freeze_layout and not cfg.train.init_from:
        logger.warning("train.freeze_layout without train.init_from: the layout stays at its "
                       "random initialisation")
    if cfg.train.stage == "layout":
        if not cfg.train.init_from:
            logger.warning("train.stage=layout without train.init_from: the renderer stays at "
                           "its random initialisation")
        if cfg.train.layout_modules == "branch":   # with "heads" the vectors cannot move
            trainer.set_layout_anchor(cfg.train.init_from or None)
    trainer.command = command
    try:
        summary = trainer.train(num_steps=num_steps)
    finally:
        if trainer.dist.enabled and dist.is_initialized():
            dist.destroy_process_group()
    return {**summary, "is_main": trainer.dist.is_main}

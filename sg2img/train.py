"""One readable GAN training loop: CPU or GPU, single process or torchrun + DDP, exact resume.

A run directory holds ``config.json``, ``stats.jsonl``, ``samples/``, ``checkpoints/``,
``loss_curves.png`` and ``export.pt`` (the inference export of the EMA generator).

Resuming restores weights, the EMA copy, both optimizers, the step, every RNG state and the
position in the data order, so a run that is stopped and resumed ends with the same weights as
one that never stopped (same seed, same number of processes and threads; on the CPU this
relies on ``train.deterministic``, see ``Trainer._use_deterministic_kernels``).
"""

from __future__ import annotations

import copy
import json
import logging
import os
import random
import signal
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Sampler

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
from .files import atomic_write, remove_stale_temp_files
from .losses import build_vgg_loss
from .scene_graph import GraphBatch, collate_graphs
from .vocab import Vocab

logger = logging.getLogger(__name__)

CKPT_GLOB = "ckpt_*.pt"


# ----------------------------------------------------------------------------- distributed
@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group when launched by torchrun (``WORLD_SIZE`` > 1 in the environment).

    NCCL on CUDA, gloo on CPU.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def _all_reduce_mean(values: dict[str, float], info: DistInfo) -> dict[str, float]:
    if not info.enabled or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    return {k: float(v) / info.world_size for k, v in zip(keys, t.tolist(), strict=True)}


# ----------------------------------------------------------------------------- data order
class ResumableSampler(Sampler):
    """Per-epoch shuffled indices, split across ranks, that can start mid-epoch.

    The order depends only on (seed, epoch), so a resumed run sees the same batches. Yields
    ``(epoch, index)`` pairs so that the dataset wrapper can seed per-item randomness.
    """

    def __init__(self, size: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1):
        self.size, self.seed = size, seed
        self.rank, self.world_size = rank, world_size
        # Every rank gets the same whole number of batches (drop the remainder).
        self.batches_per_epoch = size // (batch_size * world_size)
        if self.batches_per_epoch == 0:
            raise ValueError(f"the dataset has {size} items, fewer than one batch of "
                             f"{batch_size} per process x {world_size} processes; lower "
                             f"train.batch_size")
        self.per_rank = self.batches_per_epoch * batch_size
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Start ``epoch`` at item ``start`` of this rank's share."""
        self.epoch, self.start = epoch, start

    def __iter__(self) -> Iterator[tuple[int, int]]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.size, generator=g)
        mine = order[self.rank::self.world_size][: self.per_rank]
        for idx in mine[self.start:].tolist():
            yield self.epoch, idx

    def __len__(self) -> int:
        return self.per_rank - self.start


class SeededItems(Dataset):
    """Seeds python/numpy/torch RNGs from (seed, epoch, index) before reading an item.

    Random choices made while loading (relationship sampling, flips) then depend only on
    which item of which epoch is read, not on worker scheduling: this is what makes resume exact.
    """

    def __init__(self, dataset: Dataset, seed: int):
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        epoch, idx = key
        s = (self.seed * 1_000_003 + epoch) * 10_000_019 + idx
        random.seed(s)
        np.random.seed(s % 2**32)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(s % 2**63)  # the same seed as before for all but huge seeds
            return self.dataset[idx]


# ----------------------------------------------------------------------------- rng state
def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": {"key": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["key"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ----------------------------------------------------------------------------- helpers
def _requires_grad(module: nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


@torch.no_grad()
def _update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    # One fused lerp over all parameters (the same arithmetic as a lerp_ per tensor, in one
    # call instead of several hundred; issue 18).
    pe, pm = list(ema.parameters()), [p.detach() for p in model.parameters()]
    if len(pe) != len(pm):
        raise ValueError(f"EMA copy has {len(pe)} parameters, the model {len(pm)}")
    torch._foreach_lerp_(pe, pm, 1.0 - decay)
    for be, bm in zip(ema.buffers(), model.buffers(), strict=True):
        be.copy_(bm)


def ema_decay_at(step: int, tc: Any) -> float:
    """EMA decay used after optimisation step ``step`` (``tc``: the train config section).

    The first update copies the generator. With ``tc.ema_rampup`` the decay then grows as
    ``(1 + k) / (10 + k)`` (``k`` updates so far, TensorFlow's ``num_updates`` rule) up to
    ``tc.ema_decay``: the average covers about the last tenth of training until it reaches
    its full window, so a short run's EMA is not dominated by its random initial weights.
    """
    k = step - tc.ema_start
    if k <= 0:
        return 0.0
    return min(tc.ema_decay, (1 + k) / (10 + k)) if tc.ema_rampup else tc.ema_decay


def _grad_norm_ok(params: list[Tensor], clip: float) -> bool:
    """Clip gradients; False when they are not finite (the step is then skipped)."""
    norm = torch.nn.utils.clip_grad_norm_(params, clip if clip > 0 else float("inf"))
    return bool(torch.isfinite(norm))


def list_checkpoints(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "checkpoints").glob(CKPT_GLOB))


def _checkpoint_path(run_dir: Path, step: int) -> Path:
    return run_dir / "checkpoints" / f"ckpt_{step:08d}.pt"


# ----------------------------------------------------------------------------- trainer
# ----------------------------------------------------------------------------- building
def _setup_device(device: str | None) -> tuple[torch.device, DistInfo]:
    """The device (CUDA when available unless given) and the torchrun process group."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    info = init_distributed(torch.device(device))
    if torch.device(device).type == "cuda":
        device = f"cuda:{info.local_rank}"
        torch.cuda.set_device(info.local_rank)
    return torch.device(device), info


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)


def build_datasets(cfg: Config, val_dataset: Dataset | None = None
                   ) -> tuple[Dataset, Dataset | None]:
    """The training split and (for sample grids) the val split, if the dataset has one."""
    from .data import build_dataset

    dataset = build_dataset(cfg.data, "train", cfg.model.image_size, cfg.model.mask_size)
    if val_dataset is None:
        try:
            val_dataset = build_dataset(cfg.data, "val", cfg.model.image_size,
                                        cfg.model.mask_size)
        except (FileNotFoundError, ValueError) as e:
            logger.warning("no val split for sample grids (%s); using train items", e)
    return dataset, val_dataset


def build_loader(dataset: Dataset, sampler: ResumableSampler, cfg: Config,
                 device: torch.device) -> DataLoader:
    return DataLoader(
        SeededItems(dataset, cfg.train.seed), batch_size=cfg.train.batch_size,
        sampler=sampler, collate_fn=collate_graphs, num_workers=cfg.data.num_workers,
        pin_memory=device.type == "cuda", drop_last=True,
        # Workers live across epochs: no re-spawn (and dataset re-pickling) every epoch.
        persistent_workers=cfg.data.num_workers > 0,
        # Its own generator: creating an iterator must not consume the global torch RNG,
        # or a resumed run (new iterator mid-epoch) would drift from an uninterrupted one.
        generator=torch.Generator().manual_seed(cfg.train.seed))


def build_models(cfg: Config, vocab: Vocab, device: torch.device, channels_last: bool
                 ) -> tuple[nn.Module, nn.Module, nn.Module]:
    """Generator, discriminator and the generator's frozen EMA copy, on ``device``."""
    from .model import GALSDiscriminator, GALSGenerator

    G = GALSGenerator(cfg.model, vocab.num_objects, vocab.num_preds, vocab.num_attributes,
                      pred_names=vocab.pred_names).to(device)
    D = GALSDiscriminator(cfg.model, vocab.num_objects, vocab.num_attributes).to(device)
    if channels_last:
        G.to(memory_format=torch.channels_last)
        D.to(memory_format=torch.channels_last)
    G_ema = copy.deepcopy(G).eval()
    _requires_grad(G_ema, False)
    return G, D, G_ema


def build_optimizers(cfg: Config, G: nn.Module, D: nn.Module
                     ) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """TTUR Adam: one optimizer per network with its own learning rate."""
    betas = (cfg.train.beta1, cfg.train.beta2)
    return (torch.optim.Adam(G.parameters(), lr=cfg.train.lr_g, betas=betas),
            torch.optim.Adam(D.parameters(), lr=cfg.train.lr_d, betas=betas))


LAYOUT_MODULES = ("obj_embeddings", "pred_embeddings", "attr_embeddings", "gconv", "box_head",
                  "mask_head")
"""The generator's scene-graph-to-layout branch: what ``train.stage="layout"`` trains."""
LAYOUT_HEADS = ("layout_gconv", "box_head", "mask_head")
"""What it trains with ``train.layout_modules="heads"``: the box and mask heads and, with
``model.layout_gconv``, their graph network; the vectors the renderer reads stay as they were."""


def _seed_layout_gconv(state: dict[str, Tensor] | None) -> dict[str, Tensor] | None:
    """``state`` plus ``layout_gconv.*`` copied from ``gconv.*`` when it has none."""
    if not state or any(k.startswith("layout_gconv.") for k in state):
        return state
    return {**state, **{"layout_" + k: v.clone() for k, v in state.items()
                        if k.startswith("gconv.")}}


def build_layout_optimizer(cfg: Config, G: nn.Module) -> torch.optim.Optimizer:
    """Adam over the layout branch only (``LAYOUT_MODULES``, or ``LAYOUT_HEADS`` with
    ``train.layout_modules="heads"``); the rest of G is frozen.

    The layout heads regress boxes and masks, so this uses Adam's usual betas (0.9, 0.999)
    rather than the GAN's.
    """
    for p in G.parameters():
        p.requires_grad_(False)
    modules = LAYOUT_HEADS if cfg.train.layout_modules == "heads" else LAYOUT_MODULES
    params = [p for name in modules if getattr(G, name, None) is not None
              for p in getattr(G, name).parameters()]
    for p in params:
        p.requires_grad_(True)
    return torch.optim.Adam(params, lr=cfg.train.layout_lr)


def _wrap_ddp(G: nn.Module, D: nn.Module, info: DistInfo, device: torch.device, *,
              find_unused: bool) -> tuple[nn.Module, nn.Module]:
    """DDP wrappers for the training forward passes (the modules themselves when single)."""
    if not info.enabled:
        return G, D
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [device.index] if device.type == "cuda" else None
    # Visual Genome has no masks: with teacher forcing the mask head gets no gradient in a
    # step, which DDP only tolerates when told to look for unused parameters.
    return (DDP(G, device_ids=ids, broadcast_buffers=False, find_unused_parameters=find_unused),
            DDP(D, device_ids=ids, broadcast_buffers=False))


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
        self.device, self.dist = _setup_device(device)
        self.use_amp = cfg.train.mixed_precision and self.device.type == "cuda"
        self.channels_last = cfg.train.channels_last and self.device.type == "cuda"
        _seed_everything(cfg.train.seed)

        if dataset is None:
            dataset, val_dataset = build_datasets(cfg, val_dataset)
        self.dataset = dataset
        self.vocab: Vocab = dataset.vocab
        self.sampler = ResumableSampler(len(dataset), cfg.train.batch_size, cfg.train.seed,
                                        self.dist.rank, self.dist.world_size)
        self.loader = build_loader(dataset, self.sampler, cfg, self.device)
        self.G, self.D, self.G_ema = build_models(cfg, self.vocab, self.device,
                                                  self.channels_last)
        self.opt_g, self.opt_d = build_optimizers(cfg, self.G, self.D)
        if cfg.train.stage == "layout":
            self.opt_g = build_layout_optimizer(cfg, self.G)
            if hasattr(dataset, "with_images") and val_dataset is not None:
                dataset.with_images = False   # the layout stage reads no training image
        self.anchor: nn.Module | None = None
        vgg = build_vgg_loss(cfg.loss.vgg_weight, cfg.train.vgg_weights or None)
        self.vgg = vgg.to(self.device) if vgg is not None else None
        self.G_train, self.D_train = _wrap_ddp(self.G, self.D, self.dist, self.device,
                                               find_unused=cfg.data.dataset == "vg")

        self.step = 0
        self.nonfinite_skipped = 0
        self.command: str | None = None
        self._stop_signal: int | None = None
        self._fixed_batch = self._sample_batch(val_dataset or dataset)
        self._fixed_z = torch.randn(self._fixed_batch.num_images, cfg.model.noise_dim,
                                    generator=torch.Generator().manual_seed(cfg.train.seed))
        # Re-seed: building modules and the fixed batch must not shift the training RNG streams.
        torch.manual_seed(cfg.train.seed + 1)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """The training checkpoint (``checkpoint.training_state``)."""
        return checkpoint.training_state(
            step=self.step, config=self.cfg, vocab=self.vocab, generator=self.G,
            generator_ema=self.G_ema, discriminator=self.D, optim_g=self.opt_g,
            optim_d=self.opt_d, rng=_rng_state(),
            batches_per_epoch=self.sampler.batches_per_epoch,
            world_size=self.dist.world_size, nonfinite_skipped=self.nonfinite_skipped)

    def load_state_dict(self, ckpt: dict[str, Any]) -> None:
        """Resume from a training checkpoint (``checkpoint.restore_training_state``).

        Raises:
            CheckpointError: not a training checkpoint of this run's vocabulary and config,
                or damaged.
        """
        progress = checkpoint.restore_training_state(
            ckpt, vocab=self.vocab, generator=self.G, generator_ema=self.G_ema,
            discriminator=self.D, optim_g=self.opt_g, optim_d=self.opt_d,
            set_rng_state=_set_rng_state, world_size=self.dist.world_size)
        self.step = progress.step
        self.nonfinite_skipped = progress.nonfinite_skipped

    def init_from(self, path: str | os.PathLike) -> dict[str, list[str]]:
        """Start a new run from another run's weights where names and shapes match.

        pix2pixHD's coarse-to-fine schedule: a model trained at ``H/2`` initialises an ``H``
        model with ``model.coarse_to_fine=true`` (every generator stage but the enhancer, the
        graph network, the local generator and the fully convolutional discriminators carry
        over). The step, optimizers and data order start afresh. Accepts a training checkpoint
        or an inference export (generator only).

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
            # model.layout_gconv from a model without one: the layout graph network starts as a
            # copy of the graph network (the renderer's), then the two part ways.
            g_state, g_raw = _seed_layout_gconv(g_state), _seed_layout_gconv(g_raw)
        loaded = copy_matching(self.G, g_raw or g_state)
        copy_matching(self.G_ema, g_state)
        copy_matching(self.D, start["discriminator"])
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
    def _sample_batch(self, dataset: Dataset, n: int = 8) -> GraphBatch:
        n = min(n, len(dataset))
        return collate_graphs([dataset[i] for i in range(n)])

    def _forward(self, batch: GraphBatch, *, zero_noise: bool = False):
        noise = {}
        if zero_noise:     # the anchored sample of loss.recon_noise="zero"
            m = self.cfg.model
            noise["z"] = torch.zeros(batch.num_images, m.noise_dim, device=self.device)
            if m.noise == "spatial":
                noise["obj_noise"] = torch.zeros(batch.num_objects, m.layout_noise_dim,
                                                 device=self.device)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.use_amp):
            return self.G_train(batch, use_gt_layout=self.cfg.train.teacher_forcing, **noise)

    def d_step(self, batch: GraphBatch, out) -> dict[str, float]:
        from .objectives import discriminator_loss_terms, weighted_total

        _requires_grad(self.D, True)
        self.opt_d.zero_grad(set_to_none=True)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.use_amp):
            terms = discriminator_loss_terms(out, self.D_train, batch, self.cfg.loss)
            total = weighted_total(terms, self.cfg.loss)
        return self._apply(total, terms, self.D.parameters(), self.opt_d, "D")

    def g_step(self, batch: GraphBatch, out) -> dict[str, float]:
        from .objectives import generator_loss_terms, weighted_total

        # The G step goes through the unwrapped D: its gradients are not wanted or synced.
        _requires_grad(self.D, False)
        self.opt_g.zero_grad(set_to_none=True)
        # loss.recon_noise="zero": the reconstruction terms score a noise-free sample.
        recon = (self._forward(batch, zero_noise=True)
                 if self.cfg.loss.recon_noise == "zero" else None)
        # The mode-seeking term compares with a second sample of the batch: the noise-free
        # one when there is one (no third forward), else one with other noise.
        second = None
        if self.cfg.loss.mode_seek_weight > 0:
            second = recon if recon is not None else self._forward(batch)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.use_amp):
            terms = generator_loss_terms(out, self.D, batch, self.cfg.loss, vgg=self.vgg,
                                         second=second, recon=recon)
            total = weighted_total(terms, self.cfg.loss)
        logs = self._apply(total, terms, self.G.parameters(), self.opt_g, "G")
        _requires_grad(self.D, True)
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
        _requires_grad(anchor, False)
        self.anchor = anchor.to(self.device)

    def _apply(self, total: Tensor, terms: dict[str, Tensor], params, opt, name: str, *,
               sync_grads: bool = False) -> dict[str, float]:
        params = [p for p in params if p.requires_grad]
        # All ranks must take the same branch: agree on finiteness before backward.
        finite = torch.isfinite(total.detach()).float()
        if self.dist.enabled:
            f = finite.to(self.device if dist.get_backend() == "nccl" else "cpu")
            dist.all_reduce(f, op=dist.ReduceOp.MIN)
            finite = f.cpu()
        if finite.item() < 1:
            self.nonfinite_skipped += 1
            logger.warning("step %d: non-finite %s loss, step skipped", self.step, name)
            return {}
        total.backward()
        if sync_grads and self.dist.enabled:
            # The layout step runs the unwrapped G, so DDP does not average the gradients.
            for p in params:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
                dist.all_reduce(p.grad)
                p.grad /= self.dist.world_size
        ok = _grad_norm_ok(params, self.cfg.train.grad_clip)
        if self.dist.enabled:
            f = torch.tensor(float(ok), device=self.device if dist.get_backend() == "nccl"
                             else "cpu")
            dist.all_reduce(f, op=dist.ReduceOp.MIN)
            ok = bool(f.item() > 0)
        if not ok:
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

    def _install_signal_handlers(self) -> dict:
        old = {}

        def handler(signum, frame):
            self._stop_signal = signum
            logger.warning("signal %d received: finishing this step, then checkpointing", signum)

        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                old[sig] = signal.signal(sig, handler)
            except ValueError:  # not the main thread
                pass
        return old

    def _use_deterministic_kernels(self):
        """Switch on torch's deterministic kernels for the loop (CPU, ``train.deterministic``).

        With 2 or more threads, two runs of the same config ended with different weights
        (scripts/check_determinism.py): torch's CPU backward of indexing (``x[idx]``, an
        accumulating ``index_put_``, as in the graph convolution) adds in a run-dependent
        order at larger sizes, and the switch removes every difference at no measurable cost.
        On CUDA the setting is left alone: it would need ``CUBLAS_WORKSPACE_CONFIG`` and has
        no deterministic kernel for some ops.

        Returns:
            A function that restores the previous global setting.
        """
        before = (torch.are_deterministic_algorithms_enabled(),
                  torch.is_deterministic_algorithms_warn_only_enabled())
        if self.cfg.train.deterministic and self.device.type == "cpu":
            torch.use_deterministic_algorithms(True)
        return lambda: torch.use_deterministic_algorithms(before[0], warn_only=before[1])

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
        old_handlers = self._install_signal_handlers()
        restore_determinism = self._use_deterministic_kernels()
        window: dict[str, list[float]] = defaultdict(list)
        t_window, imgs_window = time.perf_counter(), 0
        pbar = None
        if self.dist.is_main and num_steps is None:
            from tqdm import tqdm

            pbar = tqdm(total=end, initial=self.step, desc="train", dynamic_ncols=True)
        self.G.train()
        self.D.train()
        batches = self._batches()
        try:
            while self.step < end and self._stop_signal is None:
                batch = next(batches).to(self.device, non_blocking=True)
                if self.channels_last and batch.images is not None:
                    batch.images = batch.images.contiguous(memory_format=torch.channels_last)
                if tc.stage == "layout":
                    logs = self.layout_step(batch)
                else:
                    out = self._forward(batch)
                    logs = self.d_step(batch, out)
                    logs.update(self.g_step(batch, out))
                if self.step >= tc.ema_start:
                    _update_ema(self.G_ema, self.G, ema_decay_at(self.step, tc))
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
            if self._stop_signal is not None:
                self.save()
        finally:
            if pbar is not None:
                pbar.close()
            for sig, h in old_handlers.items():
                signal.signal(sig, h)
            restore_determinism()
        return {"step": self.step, "stopped_by_signal": self._stop_signal,
                "nonfinite_skipped": self.nonfinite_skipped}

    def _log(self, window: dict[str, list[float]], imgs_per_s: float, pbar) -> None:
        means = {k: sum(v) / len(v) for k, v in window.items() if v}
        means = _all_reduce_mean(means, self.dist)
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

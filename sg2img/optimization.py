"""What a training step updates: the optimizers, gradient clipping and the EMA generator."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from .config import Config

LAYOUT_MODULES = ("obj_embeddings", "pred_embeddings", "attr_embeddings", "gconv", "box_head",
                  "mask_head")
"""The generator's scene-graph-to-layout branch: what ``train.stage="layout"`` trains."""
LAYOUT_HEADS = ("layout_gconv", "box_head", "mask_head")
"""What it trains with ``train.layout_modules="heads"``: the box and mask heads and, with
``model.layout.use_own_gconv``, their graph network; the vectors the renderer reads stay as
they were."""
FROZEN_LAYOUT_MODULES = ("obj_embeddings", "pred_embeddings", "attr_embeddings", "layout_gconv",
                         "box_head", "mask_head")
"""What ``train.freeze_layout`` freezes in a renderer stage: everything a graph's boxes and masks
depend on (with ``model.layout.use_own_gconv``), so they stay the starting model's while the
renderer and the graph network it reads (``gconv``) train."""


def set_requires_grad(module: nn.Module, flag: bool) -> None:
    """Switch gradients of all ``module``'s parameters on or off."""
    for p in module.parameters():
        p.requires_grad_(flag)


def freeze_layout_branch(G: nn.Module) -> list[str]:
    """Switch off the gradients of ``FROZEN_LAYOUT_MODULES`` (``train.freeze_layout``).

    Returns:
        The names of the modules frozen (those the model has).
    """
    names = [name for name in FROZEN_LAYOUT_MODULES if getattr(G, name, None) is not None]
    for name in names:
        set_requires_grad(getattr(G, name), False)
    return names


def build_optimizers(cfg: Config, G: nn.Module, D: nn.Module
                     ) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """TTUR Adam: one optimizer per network with its own learning rate, over the parameters
    that train (``freeze_layout_branch`` leaves the layout branch out)."""
    betas = (cfg.train.beta1, cfg.train.beta2)
    return (torch.optim.Adam([p for p in G.parameters() if p.requires_grad], lr=cfg.train.lr_g,
                             betas=betas),
            torch.optim.Adam([p for p in D.parameters() if p.requires_grad], lr=cfg.train.lr_d,
                             betas=betas))


def apply_learning_rates(cfg: Config, opt_g: torch.optim.Optimizer,
                         opt_d: torch.optim.Optimizer) -> list[str]:
    """Set the optimizers' learning rates to ``cfg``'s, after a resume restored the saved ones.

    The config a run is resumed with is the one it trains on: ``--resume auto --set
    train.lr_g=...`` drops the rate while Adam's moments, the EMA and the data order go on
    (``train.init_from`` would restart them). ``opt_g`` takes ``train.layout_lr`` in the layout
    stage (``build_layout_optimizer``), ``train.lr_g`` otherwise (``build_optimizers``).

    Returns:
        ``"G: old -> new"`` / ``"D: ..."`` for each rate that changed.
    """
    lr_g = cfg.train.layout_lr if cfg.train.stage == "layout" else cfg.train.lr_g
    changed = []
    for name, opt, lr in (("G", opt_g, lr_g), ("D", opt_d, cfg.train.lr_d)):
        for group in opt.param_groups:
            if group["lr"] != lr:
                changed.append(f"{name}: {group['lr']:g} -> {lr:g}")
                group["lr"] = lr
    return sorted(set(changed))


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


def clip_gradients(params: list[Tensor], clip: float) -> bool:
    """Clip gradients to norm ``clip`` (no clipping when ``clip <= 0``).

    Returns:
        False when they are not finite (the step is then skipped).
    """
    norm = torch.nn.utils.clip_grad_norm_(params, clip if clip > 0 else float("inf"))
    return bool(torch.isfinite(norm))


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """``ema = decay * ema + (1 - decay) * model`` for every parameter; buffers are copied.

    Raises:
        ValueError: the two modules have different numbers of parameters.
    """
    # One fused lerp over all parameters: the same arithmetic as a lerp_ per tensor, in one
    # call instead of several hundred.
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

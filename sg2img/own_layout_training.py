"""Layouts a renderer stage trains on besides the true one: the model's own, or jittered true ones.

In the GAN stage the renderer is teacher-forced on ground-truth boxes and masks, so it never
sees the layouts its own heads make, and pictures drawn from a graph are far worse than those
drawn from a real layout. Two remedies, both options of ``sg2img train``:

* ``loss.own_layout_weight``: every step also renders the batch's graphs from the model's own
  predicted layout (:func:`render_own_layout`; the layout is a value, no gradient reaches the
  heads). Those images have no paired real image, so they are scored by the adversarial terms
  only, as fakes, in both steps (``sg2img.objectives``' ``own_*`` terms). With
  ``train.freeze_layout`` the layout stays the starting model's while the renderer adapts to it.
* ``train.layout_jitter``: the simpler augmentation: the true boxes are shifted and rescaled
  at random and the true masks blurred and re-thresholded (:func:`jitter_layout`), so the
  renderer learns to draw from layouts that are a little off, while the reconstruction terms
  still compare with the real image.
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .model import GALSGenerator, GeneratorOutput
from .noise import stream
from .own_layout import predicted_layout
from .scene_graph import GraphBatch
from .vocab import IMAGE_OBJECT_ID

__all__ = ["BORDER", "MASK_SHARPNESS", "degrade_masks", "jitter_layout", "jitter_rng",
           "layout_free", "render_own_layout"]

BORDER = 1e-3
"""A box side this close to the image's edge is on it, and :func:`jitter_layout` keeps it there."""
MASK_SHARPNESS = 10.0
"""Slope of the soft threshold of :func:`degrade_masks`: a hard 0/1 mask comes out near
0.007 / 0.993, the range of the mask head's sigmoid."""


def layout_free(batch: GraphBatch) -> GraphBatch:
    """``batch`` without its layout (boxes, pins and masks): the graphs alone, which the
    model lays out itself."""
    return replace(batch, boxes=None, box_given=None, masks=None)


def render_own_layout(train_model: nn.Module, model: GALSGenerator,
                      batch: GraphBatch) -> GeneratorOutput:
    """Images of ``batch``'s graphs rendered from the model's own layout, with fresh noise.

    The layout is drawn as ``generate`` draws it ("sample" for a sampling layout head, the mode
    otherwise) by :func:`sg2img.own_layout.predicted_layout`, without gradient and in float32
    (outside any autocast), then every object is overridden with it in the forward pass.

    Args:
        train_model: the generator to run (the trainer's, possibly DDP-wrapped).
        model: the same generator unwrapped (its layout heads run outside the wrapper).
        batch: the graphs; their true boxes, pins and masks are ignored.

    Returns:
        The forward's output: ``boxes`` and ``masks`` are the own layout the images were built
        from, ``layout`` its semantic layout.
    """
    free = layout_free(batch)
    mode = "sample" if model.samples_layout else "mode"
    with torch.autocast(free.objs.device.type, enabled=False):
        boxes, masks = predicted_layout(model, free, layout_mode=mode)
    every = torch.ones(free.num_objects, dtype=torch.bool, device=free.objs.device)
    return train_model(free, boxes_override=boxes, masks_override=masks, override=every,
                       layout_mode=mode)


def jitter_rng(seed: int, rank: int, step: int) -> torch.Generator:
    """The CPU generator of ``train.layout_jitter`` at one step of one process: a function of
    the run's seed, the rank and the step only, so a resumed run jitters as one that never
    stopped, and every forward of a step (the reconstruction sample, the mode-seeking one)
    sees the same layout."""
    return stream("layout_jitter", seed, rank, step)


def jitter_layout(batch: GraphBatch, std: float, rng: torch.Generator) -> GraphBatch:
    """``batch`` with its true layout jittered (``train.layout_jitter``).

    Each box's centre moves by ``std`` times its own width and height times a standard normal
    draw (independently in x and y) and stays in the image; its width and height are scaled by
    ``exp(std * normal)``; the box is then clamped to the image. A side within ``BORDER`` of the
    image's edge stays on it, so stuff spanning the canvas keeps spanning it. The masks go
    through :func:`degrade_masks`. Image nodes keep the whole image.

    Args:
        batch: with ``boxes`` (``masks`` optional, as in Visual Genome).
        std: the jitter's standard deviation; 0 returns ``batch`` itself.
        rng: the CPU generator every draw comes from (:func:`jitter_rng`).

    Returns:
        A copy of ``batch`` with new ``boxes`` and ``masks``; images and graphs are shared.

    Raises:
        ValueError: ``std`` is negative, or the batch has no boxes to jitter.
    """
    if std < 0:
        raise ValueError(f"the layout jitter's std must be >= 0, got {std}")
    if std == 0:
        return batch
    if batch.boxes is None:
        raise ValueError("train.layout_jitter needs ground-truth boxes in the batch; set "
                         "train.layout_jitter=0 for data without them")
    boxes = batch.boxes
    noise = torch.randn(len(boxes), 4, generator=rng).to(boxes.device, boxes.dtype)
    size = boxes[:, 2:] - boxes[:, :2]
    centre = ((boxes[:, :2] + boxes[:, 2:]) / 2 + std * size * noise[:, :2]).clamp(0.0, 1.0)
    size = size * torch.exp(std * noise[:, 2:])
    moved = torch.cat([centre - size / 2, centre + size / 2], dim=1).clamp(0.0, 1.0)
    # A side on the image's border stays there: stuff that spans the canvas keeps spanning it
    # (the layout heads' errors leave no uncovered strip along an edge of the image).
    moved = torch.where(boxes <= BORDER, boxes.new_zeros(()), moved)
    moved = torch.where(boxes >= 1 - BORDER, boxes.new_ones(()), moved)
    keep = batch.objs == IMAGE_OBJECT_ID
    masks = batch.masks
    if masks is not None:
        masks = torch.where(keep[:, None, None], masks, degrade_masks(masks, std, rng))
    return replace(batch, boxes=torch.where(keep[:, None], boxes, moved), masks=masks)


def degrade_masks(masks: Tensor, std: float, rng: torch.Generator) -> Tensor:
    """True masks made to look like the mask head's: blurred by a random amount, then
    re-thresholded softly at a random level (the shape grows or shrinks a little).

    Each mask is mixed with its 3x3-binomial blur by a uniform amount in [0, 1], then mapped
    through ``sigmoid(MASK_SHARPNESS * (m - t))`` with ``t = 0.5 + std * normal`` clamped to
    [0.2, 0.8].

    Args:
        masks: (O, M, M) in [0, 1].
        std: the spread of the threshold.
        rng: the CPU generator of the draws.

    Returns:
        (O, M, M) in (0, 1), the dtype and device of ``masks``.
    """
    O = masks.shape[0]
    mix = torch.rand(O, generator=rng).to(masks.device, masks.dtype)[:, None, None]
    level = (0.5 + std * torch.randn(O, generator=rng)).clamp(0.2, 0.8)
    level = level.to(masks.device, masks.dtype)[:, None, None]
    k = masks.new_tensor([1.0, 2.0, 1.0]) / 4
    x = F.pad(masks[:, None], (1, 1, 1, 1), mode="replicate")
    blurred = F.conv2d(F.conv2d(x, k.view(1, 1, 1, 3)), k.view(1, 1, 3, 1))[:, 0]
    soft = masks + mix * (blurred - masks)
    return torch.sigmoid(MASK_SHARPNESS * (soft - level))

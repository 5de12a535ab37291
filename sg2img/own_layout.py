"""The layout a model builds from a graph alone, as values to render from or to train on.

:func:`predicted_layout` returns the boxes and masks ``GALSGenerator.forward`` builds its
semantic layout from when it is not given the ground truth (pinned boxes kept, image nodes
spanning the image, stuff partitioned with ``model.layout.stuff_partition``), without
rendering. Passed back as ``boxes_override`` / ``masks_override`` with every object
overridden, they render the same picture as the plain forward with the same noise; other
layouts (a true box here, a true mask there) are built by changing them first.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .model import GALSGenerator
from .scene_graph import GraphBatch


@torch.no_grad()
def predicted_layout(model: GALSGenerator, batch: GraphBatch, *, layout_mode: str = "mode",
                     layout_noise: Tensor | None = None,
                     rng: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """The boxes and masks the model lays the batch's graphs out with (no gradient).

    Args:
        model: the generator.
        batch: the graphs; ``batch.box_given`` pins boxes as in ``forward``.
        layout_mode, layout_noise, rng: as in ``GALSGenerator.forward``.

    Returns:
        boxes (O, 4) in [0, 1], masks (O, M, M) in [0, 1].
    """
    boxes = model.layout_boxes(batch, layout_mode=layout_mode, layout_noise=layout_noise,
                               rng=rng)
    lay_obj, _ = model.layout_vectors(batch)
    masks = torch.sigmoid(model.mask_head(lay_obj))
    return model.choose_layout_inputs(batch, boxes, masks, use_gt_layout=False,
                                      boxes_override=None, masks_override=None, override=None)

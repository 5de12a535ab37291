"""How a semantic layout covers the canvas: stuff overlapping stuff, pixels nobody covers, and
pixels no class clearly owns.

In the data every pixel belongs to exactly one stuff region and things lie on top, so the
fractions are 0 for ground-truth layouts up to the masks' resolution at region edges. A pixel
counts as covered by a class where that class's channel of the semantic layout
(``sg2img.layout.semantic_layout``) is >= 0.5, and as uncovered where the unlabelled channel
(1 - the sum of the classes, clamped) is >= 0.5. It is *soft* where its strongest class
channel lies between 0.2 and 0.8: half a class, which the data never shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from ..layout import semantic_layout
from ..scene_graph import GraphBatch

COVER_THRESHOLD = 0.5
SOFT_RANGE = (0.2, 0.8)


def canvas_coverage(layout: Tensor, stuff_ids: Sequence[int]) -> Tensor:
    """Per image: the fractions of pixels covered by two or more stuff classes, covered by no
    class, and held by no class clearly (strongest class channel in :data:`SOFT_RANGE`).

    Args:
        layout: (N, C, H, W) semantic layout (channel 0 is the unlabelled slot, not a class).
        stuff_ids: the channels that are stuff classes.

    Returns:
        (N, 3) float: [stuff overlap, uncovered, soft].
    """
    covered = layout[:, 1:] >= COVER_THRESHOLD                                # (N, C-1, H, W)
    ids = torch.as_tensor(list(stuff_ids), dtype=torch.long, device=layout.device) - 1
    stuff = covered[:, ids[ids >= 0]].sum(dim=1)                              # (N, H, W)
    overlap = (stuff >= 2).float().mean(dim=(1, 2))
    uncovered = (layout[:, 0] >= COVER_THRESHOLD).float().mean(dim=(1, 2))
    strongest = layout[:, 1:].amax(dim=1)                                     # (N, H, W)
    soft = ((strongest > SOFT_RANGE[0]) & (strongest < SOFT_RANGE[1])).float().mean(dim=(1, 2))
    return torch.stack([overlap, uncovered, soft], dim=1)


class CanvasCoverage:
    """Accumulates :func:`canvas_coverage` of rendered and ground-truth layouts."""

    def __init__(self, stuff_ids: Sequence[int]) -> None:
        self.stuff_ids = tuple(stuff_ids)
        self.sums = {"rendered": torch.zeros(3, dtype=torch.float64),
                     "ground_truth": torch.zeros(3, dtype=torch.float64)}
        self.count = 0

    def add(self, batch: GraphBatch, rendered_layout: Tensor) -> None:
        N, C, H, W = rendered_layout.shape
        truth = semantic_layout(batch.objs, batch.boxes.float(), batch.masks.float(),
                                batch.obj_to_img, N, C, H, W)
        for name, layout in (("rendered", rendered_layout.float()), ("ground_truth", truth)):
            self.sums[name] += canvas_coverage(layout, self.stuff_ids).sum(0).double().cpu()
        self.count += N

    def compute(self) -> dict[str, Any]:
        n = max(self.count, 1)
        return {name: {"stuff_overlap": float(s[0] / n), "uncovered": float(s[1] / n),
                       "soft": float(s[2] / n)}
                for name, s in self.sums.items()}

"""The layout half of ``GALSGenerator``: boxes from the heads, and the boxes and masks a layout
is built from (predicted, pinned, overridden, true; stuff partitioned).

A mixin: ``GALSGenerator`` inherits these methods; they read the generator's box head, mask
size, predicate codes and stuff classes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .layout import box_masks, partition_stuff
from .layout_head import MixtureBoxHead, check_layout_mode, draw_layout_noise
from .scene_graph import GraphBatch
from .vocab import IMAGE_OBJECT_ID


class LayoutBranch:
    """Layout methods of ``GALSGenerator`` (see there for the attributes they read)."""

    @property
    def samples_layout(self) -> bool:
        """True when the layout head samples boxes (``model.layout.head="sample"``)."""
        return isinstance(self.box_head, MixtureBoxHead)

    def predict_boxes(self, batch: GraphBatch, obj_vecs: Tensor, pred_vecs: Tensor, *,
                      layout_mode: str = "mode", layout_noise: Tensor | None = None,
                      rng: torch.Generator | None = None,
                      known: Tensor | None = None, known_boxes: Tensor | None = None) -> Tensor:
        """Boxes from the layout head.

        Args:
            batch: the encoded graphs (triples, obj_to_img).
            obj_vecs, pred_vecs: (O, D), (T, D) from ``layout_vectors``.
            layout_mode: "mode" (the most likely layout) or "sample" (a draw); the
                "regress" head has one layout and ignores it.
            layout_noise: (O, 5) noise for "sample" (``layout_head.draw_layout_noise``);
                drawn with ``rng`` when None.
            known, known_boxes: (O,) bool, (O, 4): objects placed as given, on which a
                sequential head conditions the others.

        Returns:
            (O, 4) boxes in [0, 1].
        """
        check_layout_mode(layout_mode)
        if not self.samples_layout:
            return self.box_head(obj_vecs)
        noise = None
        if layout_mode == "sample":
            noise = layout_noise
            if noise is None:
                noise = draw_layout_noise(len(obj_vecs), rng, obj_vecs.device)
            noise = noise.to(device=obj_vecs.device, dtype=obj_vecs.dtype)
            scale = self.cfg.layout.sample_temperature      # on the normals, not the choice
            if scale != 1.0:
                noise = torch.cat([noise[:, :1], noise[:, 1:] * scale], dim=1)
        s, p, o = batch.triples.unbind(dim=1)
        codes = None if self.pred_codes is None else self.pred_codes[p]
        apart = None
        if self.cfg.layout.max_thing_iou < 1:      # things are placed apart, as in the data
            apart = ~self.stuff_classes[batch.objs] & (batch.objs != IMAGE_OBJECT_ID)
        return self.box_head(obj_vecs, pred_vecs, torch.stack([s, o], dim=1), batch.obj_to_img,
                             known=known, known_boxes=known_boxes, noise=noise, pred_codes=codes,
                             apart=apart, max_iou=self.cfg.layout.max_thing_iou)

    def layout_boxes(self, batch: GraphBatch, *, layout_mode: str = "mode",
                     layout_noise: Tensor | None = None,
                     rng: torch.Generator | None = None) -> Tensor:
        """Boxes from the scene graph alone, without rendering (evaluation, layout training).

        Pinned boxes (``batch.box_given``) are kept and, for a sequential "sample" head,
        condition the others, as in ``forward``.

        Returns:
            (O, 4) boxes in [0, 1] (image nodes span the image).
        """
        obj_vecs, pred_vecs = self.layout_vectors(batch)
        known, known_boxes = self._known_boxes(batch, use_gt_layout=False, boxes_override=None,
                                               override=None)
        boxes = self.predict_boxes(batch, obj_vecs, pred_vecs, layout_mode=layout_mode,
                                   layout_noise=layout_noise, rng=rng, known=known,
                                   known_boxes=known_boxes)
        return torch.where(known[:, None], known_boxes.to(boxes.dtype), boxes)

    def _known_boxes(self, batch: GraphBatch, *, use_gt_layout: bool,
                     boxes_override: Tensor | None,
                     override: Tensor | None) -> tuple[Tensor, Tensor]:
        """Objects whose box is fixed before the head runs: image nodes, pinned, overridden."""
        O = batch.num_objects
        known = batch.objs == IMAGE_OBJECT_ID
        known_boxes = torch.zeros(O, 4, device=batch.objs.device)
        known_boxes[known] = known_boxes.new_tensor([0.0, 0.0, 1.0, 1.0])
        if not use_gt_layout and batch.boxes is not None and batch.box_given is not None:
            known_boxes = torch.where(batch.box_given[:, None], batch.boxes.float(), known_boxes)
            known = known | batch.box_given
        if override is not None and boxes_override is not None:
            ov = override.bool()
            known_boxes = torch.where(ov[:, None], boxes_override.float(), known_boxes)
            known = known | ov
        return known, known_boxes

    def choose_layout_inputs(self, batch: GraphBatch, boxes_pred: Tensor, masks_pred: Tensor, *,
                             use_gt_layout: bool, boxes_override: Tensor | None,
                             masks_override: Tensor | None,
                             override: Tensor | None) -> tuple[Tensor, Tensor]:
        """Boxes and masks that build the layout (see ``forward``).

        Returns:
            boxes (O, 4), masks (O, M, M).
        """
        O, M = boxes_pred.shape[0], self.mask_size
        if use_gt_layout:
            if batch.boxes is None:
                raise ValueError("use_gt_layout=True needs ground-truth boxes in the batch "
                                 "(batch.boxes is None); use predicted layouts instead")
            boxes = batch.boxes.to(boxes_pred.dtype)
            # Datasets without masks (Visual Genome) fill the boxes completely.
            masks = (batch.masks.to(masks_pred.dtype) if batch.masks is not None
                     else box_masks(O, M, boxes.device, masks_pred.dtype))
            if masks.shape[-1] != M:
                masks = F.interpolate(masks[:, None], size=(M, M), mode="bilinear",
                                      align_corners=False)[:, 0]
        else:
            boxes, masks = boxes_pred, masks_pred
            if batch.boxes is not None and batch.box_given is not None:
                given = batch.box_given[:, None]
                boxes = torch.where(given, batch.boxes.to(boxes.dtype), boxes)
        if override is not None:
            if boxes_override is None or masks_override is None:
                raise ValueError("override needs boxes_override (O, 4) and masks_override "
                                 "(O, M, M)")
            ov = override.bool()
            boxes = torch.where(ov[:, None], boxes_override.to(boxes.dtype), boxes)
            masks = torch.where(ov[:, None, None], masks_override.to(masks.dtype), masks)
        # The image node always spans the image; its vector reaches every pixel of the
        # embedding layout (and it paints nothing in the semantic layout).
        is_image = batch.objs == IMAGE_OBJECT_ID
        full = boxes.new_tensor([0.0, 0.0, 1.0, 1.0])
        boxes = torch.where(is_image[:, None], full, boxes)
        masks = torch.where(is_image[:, None, None], torch.ones_like(masks), masks)
        if self.cfg.layout.stuff_partition and not use_gt_layout:
            stuff = self.stuff_classes[batch.objs]
            grid = self.cfg.layout.partition_size or self.image_size
            boxes, masks = partition_stuff(boxes, masks, batch.obj_to_img, batch.num_images,
                                           stuff, grid, ~stuff & ~is_image, batch.box_given)
        return boxes, masks

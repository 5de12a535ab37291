"""Encoded scene graphs as tensors: ``GraphSample`` (one graph, possibly with its image: a
dataset item) and ``GraphBatch`` (many graphs concatenated), and ``collate_graphs``.

``sg2img.scene_graph`` makes them from the user's JSON form and re-exports them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import torch
from torch import Tensor

__all__ = ["GraphBatch", "GraphSample", "collate_graphs"]


@dataclass
class GraphSample:
    """One encoded scene graph, possibly with its image (a dataset item).

    Shapes:
        objs (O,) long; triples (T, 3) long [s, p, o] indexing into objs;
        boxes (O, 4) float (x0, y0, x1, y1) in [0, 1]; box_given (O,) bool;
        masks (O, M, M) float in [0, 1]; image (3, H, W) float in [-1, 1];
        attributes (O, A) float multi-hot.
    """

    objs: Tensor
    triples: Tensor
    boxes: Tensor | None = None
    box_given: Tensor | None = None
    masks: Tensor | None = None
    image: Tensor | None = None
    attributes: Tensor | None = None
    image_id: Any = None

    def with_image_node(self) -> GraphSample:
        """A copy with ``__image__`` (id 0) appended and one ``__in_image__`` (id 0) triple
        from every object to it; its box is the whole image and its mask is all ones."""
        n = len(self.objs)
        objs = torch.cat([self.objs, self.objs.new_zeros(1)])
        in_image = torch.stack([torch.arange(n), torch.zeros(n, dtype=torch.long),
                                torch.full((n,), n, dtype=torch.long)], dim=1)
        triples = torch.cat([self.triples.reshape(-1, 3).long(), in_image])
        boxes = box_given = masks = attributes = None
        if self.boxes is not None:
            boxes = torch.cat([self.boxes, self.boxes.new_tensor([[0.0, 0.0, 1.0, 1.0]])])
            given = (self.box_given if self.box_given is not None
                     else torch.ones(n, dtype=torch.bool))
            box_given = torch.cat([given, given.new_ones(1)])
        if self.masks is not None:
            masks = torch.cat([self.masks, self.masks.new_ones(1, *self.masks.shape[1:])])
        if self.attributes is not None:
            attributes = torch.cat([self.attributes,
                                    self.attributes.new_zeros(1, self.attributes.shape[1])])
        return replace(self, objs=objs, triples=triples, boxes=boxes, box_given=box_given,
                       masks=masks, attributes=attributes)


@dataclass
class GraphBatch:
    """Many scene graphs as one set of tensors (objects and triples concatenated).

    The number of images is carried explicitly in ``num_images``: an image may have no
    objects in a slice, so it is never inferred from ``obj_to_img.max() + 1``.

    Shapes:
        objs (O,); triples (T, 3) with subject/object indexing the concatenated objs;
        obj_to_img (O,); triple_to_img (T,); boxes (O, 4); box_given (O,) bool;
        masks (O, M, M); images (N, 3, H, W) in [-1, 1]; attributes (O, A).
    """

    objs: Tensor
    triples: Tensor
    obj_to_img: Tensor
    triple_to_img: Tensor
    num_images: int
    boxes: Tensor | None = None
    box_given: Tensor | None = None
    masks: Tensor | None = None
    images: Tensor | None = None
    attributes: Tensor | None = None
    image_ids: list[Any] = field(default_factory=list)

    @property
    def num_objects(self) -> int:
        return int(self.objs.shape[0])

    def to(self, device: torch.device | str, non_blocking: bool = False) -> GraphBatch:
        """A copy with every tensor moved to ``device``."""
        moved = {}
        for f in fields(self):
            v = getattr(self, f.name)
            moved[f.name] = v.to(device, non_blocking=non_blocking) if isinstance(v, Tensor) else v
        return GraphBatch(**moved)


def collate_graphs(samples: Sequence[GraphSample]) -> GraphBatch:
    """Concatenate encoded graphs into one ``GraphBatch`` (usable as a DataLoader collate_fn).

    Samples without boxes get zero boxes with ``box_given`` False when others have boxes.
    Masks, images and attributes must be present in all samples or in none.

    Raises:
        ValueError: on an empty list or on samples that mix present and missing masks/images.
    """
    if len(samples) == 0:
        raise ValueError("collate_graphs needs at least one sample")
    objs, triples, obj_to_img, triple_to_img = [], [], [], []
    offset = 0
    for i, s in enumerate(samples):
        o, t = s.objs.reshape(-1), s.triples.reshape(-1, 3)
        objs.append(o)
        triples.append(t + torch.tensor([offset, 0, offset]))
        obj_to_img.append(torch.full((len(o),), i, dtype=torch.long))
        triple_to_img.append(torch.full((len(t),), i, dtype=torch.long))
        offset += len(o)

    def cat_all(name: str) -> Tensor | None:
        vals = [getattr(s, name) for s in samples]
        present = [v is not None for v in vals]
        if not any(present):
            return None
        if not all(present):
            raise ValueError(f"some samples have '{name}' and some do not; give it for all "
                             f"samples or none")
        return torch.cat(vals) if name != "image" else torch.stack(vals)

    boxes = box_given = None
    if any(s.boxes is not None for s in samples):
        boxes = torch.cat([s.boxes if s.boxes is not None else torch.zeros(len(s.objs), 4)
                           for s in samples])
        box_given = torch.cat([
            (s.box_given if s.box_given is not None else torch.ones(len(s.objs), dtype=torch.bool))
            if s.boxes is not None else torch.zeros(len(s.objs), dtype=torch.bool)
            for s in samples])
    return GraphBatch(
        objs=torch.cat(objs), triples=torch.cat(triples),
        obj_to_img=torch.cat(obj_to_img), triple_to_img=torch.cat(triple_to_img),
        num_images=len(samples), boxes=boxes, box_given=box_given,
        masks=cat_all("masks"), images=cat_all("image"), attributes=cat_all("attributes"),
        image_ids=[s.image_id for s in samples])

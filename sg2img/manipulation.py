"""Manipulate a generated image by editing its scene graph (``sg2img.edits``).

``manipulate`` generates an image, then applies edits one after another and regenerates
after each with the same noise, while the objects an edit does not touch keep their boxes and
masks from the step before (GALS-GAN's image manipulation). ``ManipulationResult`` holds every
step's image, graph, boxes and masks, the region each edit is about, and measures how much
the picture changed inside and outside it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from os import PathLike
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from . import vis
from .api import (
    GenerationError,
    SG2ImgModel,
    default_layout_mode,
    encode_each,
    no_object_noise_message,
    resize_images,
    resolve_model,
    run_generator,
)
from .edits import Edit, EditError, EditResult, apply_edits, load_edits
from .generate_args import check_sample_number
from .layout_head import draw_layout_noise
from .noise import carry_rows, check_seed, draw_sample_noise, graph_key, stream
from .scene_graph import GraphLike, SceneGraph, load_scene_graphs
from .vocab import Vocab

# Edits as manipulate takes them: a list of edits or their JSON dicts, one alone, or a file.
EditsLike = Sequence[Edit | Mapping[str, Any]] | Edit | Mapping[str, Any] | str | PathLike

__all__ = ["EditsLike", "ManipulationResult", "boxes_region", "check_edits_fit_model", "manipulate"]


@dataclass(eq=False)
class ManipulationResult:
    """Images of a graph before and after each edit (edits applied one after another).

    Index 0 is the original graph; index k (k >= 1) is the graph after edit k - 1.

    Attributes:
        images: K + 1 PIL images.
        tensors: (K + 1, 3, H, W) in [-1, 1].
        graphs: K + 1 graphs.
        boxes: K + 1 tensors (O_k, 4): the boxes that built each image.
        masks: K + 1 tensors (O_k, M, M).
        steps: K ``EditResult``s (index mappings, touched objects, descriptions).
        regions: K bool tensors (H, W): the pixels the edit is about, the union of the boxes
            of touched and removed objects before and after the edit.
        z: (1, noise_dim), the noise shared by all images.
        seed: the seed it was drawn with.
        vocab: the model's vocabulary.
        sample: the sample of the seed that image 0 is (``generate(graph, seed=seed,
            first_sample=sample)``).
    """

    images: list[Image.Image]
    tensors: Tensor
    graphs: list[SceneGraph]
    boxes: list[Tensor]
    masks: list[Tensor]
    steps: list[EditResult]
    regions: list[Tensor]
    z: Tensor
    seed: int
    vocab: Vocab
    sample: int = 0

    @property
    def descriptions(self) -> list[str]:
        return [s.description for s in self.steps]

    def change(self, k: int) -> tuple[float, float]:
        """Mean absolute pixel change of edit ``k`` inside and outside its region.

        Pixels are in [0, 1] (the images' [-1, 1] halved); a side with no pixels gives nan.

        Returns:
            (inside, outside).
        """
        diff = (self.tensors[k + 1] - self.tensors[k]).abs().mean(dim=0) / 2  # (H, W)
        region = self.regions[k]
        inside = diff[region].mean().item() if region.any() else float("nan")
        outside = diff[~region].mean().item() if (~region).any() else float("nan")
        return inside, outside

    def draw_layout(self, k: int, size: int = 256) -> Image.Image:
        g = self.graphs[k]
        return vis.draw_layout(self.boxes[k], self.masks[k], g.object_labels(), size,
                               class_ids=[self.vocab.object_idx(n) for n in g.objects])

    def sheet(self, cell_height: int = 256, with_layout: bool = True) -> Image.Image:
        """Side-by-side sheet, one row per edit: ``before | after`` (with the layouts before
        and after when ``with_layout``)."""
        rows, titles = [], []
        for k, step in enumerate(self.steps):
            row: list[Image.Image] = [self.images[k], self.images[k + 1]]
            if with_layout:
                row += [self.draw_layout(k, cell_height), self.draw_layout(k + 1, cell_height)]
            rows.append(row)
            titles.append(f"edit {k}: {step.description}")
        cols = ["before", "after"] + (["layout before", "layout after"] if with_layout else [])
        return vis.make_sheet(rows, cols, row_titles=titles, cell_height=cell_height)


def boxes_region(boxes: Sequence[Tensor], H: int, W: int) -> Tensor:
    """(H, W) bool: pixels whose centre lies in any of the boxes (each (4,) in [0, 1])."""
    ys = (torch.arange(H, dtype=torch.float32) + 0.5) / H
    xs = (torch.arange(W, dtype=torch.float32) + 0.5) / W
    out = torch.zeros(H, W, dtype=torch.bool)
    for b in boxes:
        x0, y0, x1, y1 = (float(v) for v in b)
        out |= ((ys >= y0) & (ys <= y1))[:, None] & ((xs >= x0) & (xs <= x1))[None, :]
    return out


def check_edits_fit_model(steps: Sequence[EditResult], model: SG2ImgModel) -> None:
    """Raise ``EditError`` for the first edit the model cannot make: one that redraws
    per-object noise (``"resample"``) on a model without it (not ``model.renderer.noise=spatial``).

    Raises:
        EditError: ``edit k (resample): ...``, naming the model's noise.
    """
    if model.object_noise_dim:
        return
    for k, step in enumerate(steps):
        if step.redraw_noise:
            detail = no_object_noise_message(model, "resample")
            raise EditError(f"edit {k} (resample): {detail}", field=f"edits[{k}]",
                            detail=detail, edit=k)


def _edit_inputs(step: EditResult, prev_boxes: Tensor, prev_masks: Tensor, sample: Any,
                 mask_size: int) -> tuple[Any, Tensor, Tensor, Tensor]:
    """The encoded new graph with pinned boxes, and the override tensors that freeze the
    untouched objects (over the new graph's objects, image node last)."""
    O = len(sample.objs)                                   # user objects + image node
    override = torch.zeros(O, dtype=torch.bool)
    boxes_ov = torch.zeros(O, 4)
    masks_ov = torch.zeros(O, mask_size, mask_size)
    for new, old in step.frozen.items():
        override[new], boxes_ov[new], masks_ov[new] = True, prev_boxes[old], prev_masks[old]
    for new, old in step.keep_layout.items():
        # Objects with new attributes: their old box and mask exactly.
        override[new], boxes_ov[new], masks_ov[new] = True, prev_boxes[old], prev_masks[old]
    for new, old in step.keep_mask.items():
        # Moved objects: the old shape in the box the edit pinned.
        box = step.graph.boxes[new]
        override[new], boxes_ov[new], masks_ov[new] = True, torch.tensor(box), prev_masks[old]
    if step.keep_box:
        # Replaced objects: the old box, pinned, and a mask predicted for the new class.
        boxes = sample.boxes.clone() if sample.boxes is not None else torch.zeros(O, 4)
        given = (sample.box_given.clone() if sample.box_given is not None
                 else torch.zeros(O, dtype=torch.bool))
        for new, old in step.keep_box.items():
            boxes[new], given[new] = prev_boxes[old], True
        boxes[-1], given[-1] = torch.tensor([0.0, 0.0, 1.0, 1.0]), True
        sample = replace(sample, boxes=boxes, box_given=given)
    override[-1] = True                                    # the image node
    boxes_ov[-1] = torch.tensor([0.0, 0.0, 1.0, 1.0])
    masks_ov[-1] = 1.0
    return sample, override, boxes_ov, masks_ov


def manipulate(graph: GraphLike, edits: EditsLike,
               model: SG2ImgModel | str | PathLike | None = None, *, seed: int | None = None,
               sample: int = 0, layout_mode: str | None = None, image_size: int | None = None,
               device: str | torch.device | None = None, freeze: bool = True
               ) -> ManipulationResult:
    """Generate an image, then apply edits one after another and regenerate consistently.

    The first image is exactly ``generate(graph, model, seed=seed, first_sample=sample,
    layout_mode=layout_mode)``'s: the chain starts from the picture the user was shown (a
    sampled layout, a picked sample, pinned boxes). Every image uses that sample's noise.
    After each edit, the objects it does not touch keep the boxes and masks they had in the
    previous image exactly; a replaced object keeps its box (new mask), a moved object keeps
    its mask (new box), an object with new attributes keeps both, an added object and the
    moved end of a changed relationship are laid out by the model (see ``sg2img.edits``)
    with the layout noise of the sample. Kept objects keep their per-object noise and layout
    noise (``model.renderer.noise=spatial``): a ``"resample"``d object keeps its box and mask
    and draws new noise (another look); added objects draw theirs, from the seed and sample.

    Args:
        graph: one scene graph (dict, ``SceneGraph`` or a JSON file holding one graph).
        edits: edits (``sg2img.edits`` objects or their JSON dicts), one edit alone, or a
            JSON file of them.
        model: as for ``generate``.
        seed: the seed of the starting picture; ``None`` draws one (stored in the result).
        sample: which sample of the seed the chain starts from (``generate``'s
            ``first_sample``; the editor's picked sample).
        layout_mode: as for ``generate`` ("sample" or "mode"; ``None``: the model's own).
        image_size: output size, as for ``generate``.
        device: as for ``generate``.
        freeze: keep the layout of untouched objects (the default). ``False`` only reuses the
            noise and lets the model lay out the edited graph afresh (a baseline to compare
            with).

    Returns:
        A ``ManipulationResult`` with the images before and after each edit.

    Raises:
        SceneGraphError: a malformed graph or unknown names.
        EditError: a malformed edit or one that does not fit the graph (named by position),
            or a ``"resample"`` edit for a model without per-object noise (before anything is
            generated).
        CheckpointError, GenerationError: as for ``generate``.
    """
    graphs = load_scene_graphs(graph)
    if len(graphs) != 1:
        raise GenerationError(f"manipulate takes one scene graph, got {len(graphs)}; pick one "
                              f"(e.g. --index in the command line)")
    check_sample_number(sample, 1, "sample")
    seed = check_seed(seed)
    edit_list = load_edits(edits)
    mdl = resolve_model(model, device)
    mode = default_layout_mode(mdl, layout_mode)
    if image_size is not None:
        resize_images(torch.zeros(1, 3, 8, 8), image_size, -1)
    cur = graphs[0]
    (encoded,) = encode_each([cur], mdl.vocab)
    # Every edit is checked on the graphs before anything is generated: a bad edit k fails
    # at once, not after k regenerations.
    step_list = apply_edits(cur, edit_list, mdl.vocab)
    check_edits_fit_model(step_list, mdl)
    key = graph_key(encoded.objs, encoded.triples)
    start = draw_sample_noise(seed, key, sample, len(encoded.objs), mdl.noise_dim,
                              mdl.object_noise_dim, layout=mode == "sample")
    z, obj, lay = start.z[None], start.objects, start.layout
    run = run_generator(mdl, [encoded], z, obj_noise=None if obj is None else [obj],
                        layout_mode=mode, layout_noise=lay)
    fresh = stream("edit", seed, key, sample)    # the noise of objects the edits add
    images, all_graphs = [run.images], [cur]
    boxes, masks = [run.boxes[0]], [run.masks[0]]
    steps, regions = [], []
    H = W = mdl.image_size
    for step in step_list:
        (new_sample,) = encode_each([step.graph], mdl.vocab)
        num = len(new_sample.objs)
        if obj is not None:  # objects the edit keeps keep their noise; new ones draw theirs
            dim = obj.shape[1]
            obj = carry_rows(obj, step.old_to_new, num,
                             lambda d=dim: torch.randn(d, generator=fresh), step.redraw_noise)
        if lay is not None:
            lay = carry_rows(lay, step.old_to_new, num, lambda: draw_layout_noise(1, fresh))
        ov: dict[str, Tensor] = {}
        if freeze:
            new_sample, ov["override"], ov["boxes_override"], ov["masks_override"] = \
                _edit_inputs(step, boxes[-1], masks[-1], new_sample, mdl.mask_size)
        run = run_generator(mdl, [new_sample], z, obj_noise=None if obj is None else [obj],
                            layout_mode=mode, layout_noise=lay, **ov)
        region_boxes = [run.boxes[0][j] for j in step.touched]
        region_boxes += [boxes[-1][o] for o in step.removed]
        region_boxes += [boxes[-1][o] for o, n in enumerate(step.old_to_new)
                         if n is not None and n in step.touched]
        regions.append(boxes_region(region_boxes, H, W))
        images.append(run.images)
        boxes.append(run.boxes[0])
        masks.append(run.masks[0])
        all_graphs.append(step.graph)
        steps.append(step)
    tensors = torch.cat(images)
    if image_size is not None and image_size != H:
        regions = [F.interpolate(r[None, None].float(), size=(image_size, image_size),
                                 mode="nearest")[0, 0].bool() for r in regions]
    tensors = resize_images(tensors, image_size, mdl.image_size)
    return ManipulationResult(vis.to_pil(tensors), tensors, all_graphs, boxes, masks, steps,
                              regions, z, seed, mdl.vocab, sample)

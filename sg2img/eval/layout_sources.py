"""Where pictures from the graph lose to pictures from real layouts: one renderer, many layouts.

:class:`LayoutSource` wraps a generator so that :func:`sg2img.eval.evaluate` renders the
validation graphs from a chosen mix of true and predicted layout parts (:data:`LAYOUT_SOURCES`),
with the noise ``generate()`` draws for each graph (the seed rule), so every source is scored on
the same graphs, seeds and noise. :func:`layout_gap` scores a checkpoint under each source and
seed, beside the floor: the real validation images against the real test images.
``scripts/layout_gap.py`` is its command line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from os import PathLike
from typing import Any

import torch
from torch import Tensor, nn

from ..api import resize_images
from ..layout import partition_stuff
from ..model import GALSGenerator
from ..own_layout import predicted_layout
from ..scene_graph import GraphBatch
from ..vocab import IMAGE_OBJECT_ID

LAYOUT_SOURCES: dict[str, str] = {
    "truth": "the ground-truth layout (boxes and masks)",
    "true_boxes": "ground-truth boxes, predicted masks",
    "true_thing_boxes": "things' boxes true, stuff's sampled around them; predicted masks",
    "true_stuff_boxes": "stuff's boxes true, things' sampled around them; predicted masks",
    "true_masks": "sampled boxes, each filled with its ground-truth mask",
    "sampled": "the model's sampled layout (what generate() draws)",
    "mode": "the model's most likely layout",
    "partition": "the sampled layout, its stuff made to partition the canvas under the things",
    "partition_mode": "the most likely layout, its stuff partitioning the canvas likewise",
    "hard_masks": "the sampled layout with every predicted mask thresholded at 0.5",
}


class LayoutSource(nn.Module):
    """A generator that renders from the layout ``source`` names (:data:`LAYOUT_SOURCES`).

    Called as ``evaluate`` calls a generator (with the seed rule's ``z``, ``layout_noise``
    and ``obj_noise``); the layout metric's own layouts are the wrapped model's. With
    ``upscale_to``, its pictures are resized to that side as ``generate(image_size=...)``
    resizes them (bicubic, antialiased): a 64 px model scored beside a 128 px one on 128 px
    data, upscaled the way a user would get it.
    """

    def __init__(self, model: GALSGenerator, source: str, stuff_ids: Sequence[int],
                 upscale_to: int | None = None) -> None:
        super().__init__()
        if source not in LAYOUT_SOURCES:
            raise ValueError(f"unknown layout source {source!r}; choose from "
                             f"{list(LAYOUT_SOURCES)}")
        self.seed_rule_model = model
        self.source = source
        self.upscale_to = upscale_to
        self.register_buffer("is_stuff", torch.zeros(model.num_objects, dtype=torch.bool)
                             .index_fill_(0, torch.tensor(list(stuff_ids), dtype=torch.long),
                                          True), persistent=False)

    @property
    def image_size(self) -> int:
        return self.upscale_to or self.seed_rule_model.image_size

    @property
    def samples_layout(self) -> bool:
        return self.seed_rule_model.samples_layout

    def layout_boxes(self, batch: GraphBatch, **kwargs: Any) -> Tensor:
        return self.seed_rule_model.layout_boxes(batch, **kwargs)

    def forward(self, batch: GraphBatch, *, use_gt_layout: bool = False,
                layout_mode: str = "mode", layout_noise: Tensor | None = None,
                **kwargs: Any):
        out = self._render(batch, layout_noise, **kwargs)
        if self.upscale_to is None:
            return out
        size = (self.upscale_to, self.upscale_to)     # the layout too: metrics read both
        layout = torch.nn.functional.interpolate(out.layout.float(), size=size,
                                                 mode="bilinear", align_corners=False)
        return replace(out, images=resize_images(out.images.float(), self.upscale_to, -1)
                       .to(out.images.dtype), layout=layout)

    def _render(self, batch: GraphBatch, layout_noise: Tensor | None, **kwargs: Any):
        model, source = self.seed_rule_model, self.source
        if source in ("truth", "sampled", "mode"):
            return model(batch, use_gt_layout=source == "truth",
                         layout_mode="mode" if source == "mode" else "sample",
                         layout_noise=layout_noise, **kwargs)
        if batch.boxes is None or batch.masks is None:
            raise ValueError(f"layout source {source!r} needs the true boxes and masks")
        stuff = self.is_stuff[batch.objs]
        thing = ~stuff & (batch.objs != IMAGE_OBJECT_ID)
        masks = predicted_layout(model, batch)[1]
        if source.startswith("true_") and source.endswith("boxes"):
            take = {"true_boxes": stuff | thing, "true_thing_boxes": thing,
                    "true_stuff_boxes": stuff}[source]
            pinned = replace(batch, box_given=take)
            boxes = predicted_layout(model, pinned, layout_mode="sample",
                                     layout_noise=layout_noise)[0]
        else:
            mode = "mode" if source == "partition_mode" else "sample"
            boxes, masks = predicted_layout(model, batch, layout_mode=mode,
                                            layout_noise=layout_noise)
            if source == "true_masks":
                masks = batch.masks.to(masks.dtype)
            elif source == "hard_masks":
                masks = (masks >= 0.5).to(masks.dtype)
            else:   # partition, partition_mode
                boxes, masks = partition_stuff(boxes, masks, batch.obj_to_img,
                                               batch.num_images, stuff, model.image_size, thing)
        every = torch.ones_like(batch.objs, dtype=torch.bool)
        return model(batch, boxes_override=boxes, masks_override=masks, override=every,
                     layout_mode="sample", layout_noise=layout_noise, **kwargs)


def real_fid(dataset_a, dataset_b, feature_net: Any = None, batch_size: int = 64) -> float:
    """FID between the real images of two datasets (e.g. val against test: the floor a
    generator's FID is read against), with the feature network ``evaluate`` would use."""
    from torch.utils.data import DataLoader
    from torchmetrics.image.fid import FrechetInceptionDistance

    from ..scene_graph import collate_graphs
    from .context import resolve_feature_extractor
    from .nets import images_to_uint8

    vocab = getattr(dataset_a, "vocab", None)
    names = None if vocab is None else tuple(vocab.object_names)
    extractor = resolve_feature_extractor(feature_net, None, names,
                                          getattr(dataset_a, "image_size", 64))
    fid = FrechetInceptionDistance(feature=extractor.fid_features)
    for dataset, real in ((dataset_a, True), (dataset_b, False)):
        for batch in DataLoader(dataset, batch_size=batch_size, collate_fn=collate_graphs):
            fid.update(images_to_uint8(batch.images), real=real)
    return float(fid.compute())


def layout_gap(checkpoint: str | PathLike, data_root: str | PathLike,
               sources: Sequence[str] = tuple(LAYOUT_SOURCES), seeds: Sequence[int] = (0, 1),
               metrics: Sequence[str] = ("fid", "obj_acc", "attr_acc", "streaks", "layout"),
               num_graphs: int | None = None, progress: bool = False,
               overrides: Sequence[str] = (), upscale_to: int | None = None) -> dict[str, Any]:
    """Score ``checkpoint`` (a file or a bundled model's name) on the validation graphs
    rendered from each layout source.

    ``overrides`` (``key=value``) change how the model lays out and renders without changing
    its weights (e.g. ``model.layout.sample_temperature=0.7``). ``upscale_to`` scores the
    model's pictures resized to that side, on ``data_root``'s images at that side, with the
    networks shipped for it (a 64 px model against a 128 px one).

    Returns:
        ``{"floor": {"fid_val_vs_test": ...}, "runs": {source: {seed: metrics}}}``, the
        metrics as ``evaluate`` reports them.
    """
    from torch.utils.data import Subset

    from ..bundled import checkpoint_path
    from ..checkpoint import build_generator
    from ..data import build_dataset
    from .run import EvalOptions, evaluate

    model, config, vocab = build_generator(checkpoint_path(checkpoint), overrides=overrides)
    data_cfg = replace(config.data, root=str(data_root))
    size, mask = upscale_to or config.model.renderer.image_size, config.model.layout.mask_size
    val = build_dataset(data_cfg, "val", size, mask)
    test = build_dataset(data_cfg, "test", size, mask)
    if num_graphs is not None:
        val = Subset(val, range(min(num_graphs, len(val))))
        test = Subset(test, range(min(num_graphs, len(test))))
        for subset in (val, test):
            subset.vocab, subset.image_size = vocab, size
    stuff = vocab.stuff_ids() or ()
    report: dict[str, Any] = {"checkpoint": str(checkpoint), "data": str(data_root),
                              "overrides": list(overrides), "upscale_to": upscale_to,
                              "num_graphs": len(val), "seeds": list(seeds),
                              "sources": {s: LAYOUT_SOURCES[s] for s in sources},
                              "floor": {"fid_val_vs_test": real_fid(val, test)}, "runs": {}}
    for source in sources:
        wrapped = LayoutSource(model, source, stuff, upscale_to)
        for seed in seeds:
            options = EvalOptions(metrics=list(metrics), seed=seed, layout_mode="sample",
                                  split="val", progress=progress)
            result = evaluate(wrapped, val, options)
            report["runs"].setdefault(source, {})[str(seed)] = result["metrics"]
    return report


def _spread(values: Sequence[float], digits: int) -> str:
    mean = sum(values) / len(values)
    if len(values) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {(max(values) - min(values)) / 2:.{digits}f}"


def layout_gap_table(report: dict[str, Any]) -> str:
    """:func:`layout_gap`'s report as a Markdown table: the mean over seeds ± half their range."""
    floor = report["floor"]["fid_val_vs_test"]
    lines = [f"FID floor (real val against real test, {report['num_graphs']} images each): "
             f"{floor:.2f}; seeds {report['seeds']}", "",
             "| layout | FID | objects named at own boxes | colour vs real crops | "
             "detail x / y vs real | stuff overlap | uncovered | soft | diversity |",
             "|---|---|---|---|---|---|---|---|---|"]
    for source, by_seed in report["runs"].items():
        runs = list(by_seed.values())

        def pick(*path: str, runs=runs) -> list[float]:
            out = []
            for run in runs:
                v: Any = run
                for key in path:
                    v = v.get(key, {}) if isinstance(v, dict) else {}
                if isinstance(v, (int, float)):
                    out.append(float(v))
            return out

        def cell(*path: str, digits: int = 3, pick=pick) -> str:
            values = pick(*path)
            return _spread(values, digits) if values else "-"

        canvas = ("layout", "canvas", "rendered")
        lines.append(
            f"| {source}: {report['sources'][source]} | {cell('fid', 'fid', digits=2)} | "
            f"{cell('obj_acc', 'own_boxes_accuracy')} | {cell('attr_acc', 'ratio')} | "
            f"{cell('streaks', 'ratio_x', digits=2)} / {cell('streaks', 'ratio_y', digits=2)} | "
            f"{cell(*canvas, 'stuff_overlap', digits=4)} | {cell(*canvas, 'uncovered', digits=4)}"
            f" | {cell(*canvas, 'soft', digits=4)} | "
            f"{cell('diversity', 'mean_pixel_distance', digits=3)} |")
    return "\n".join(lines) + "\n"

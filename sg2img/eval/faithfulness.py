"""``faithfulness``: does the picture say what the graph says, read from its pixels.

A detector finds the objects in each image; its detections are matched to the graph's objects
(one per object, same class, chosen by the graph's geometry: :mod:`sg2img.eval.faith_match`);
then four figures, each beside the same figure on the real images with their own graphs (the
ceiling):

    * object recall: graph objects found by a detection of their class;
    * hallucinations: detections of classes the graph does not name, per image;
    * colour accuracy: the colour classifier's reading of each found coloured object, at its
      detected box, against the graph's colour;
    * triple score: the graph's geometric triples that the matched detected boxes satisfy,
      under the rule of ``relation_satisfaction``; a triple with an endpoint not found fails.

Breakdowns per predicate, per endpoint kind (thing/stuff) and per class; seeded bootstrap
95 % intervals over graphs. Only pixels and the graph are read, never the model's layout, so
any system's images are scored the same way: :func:`score_faithfulness` (and ``sg2img
evaluate --images DIR --graphs GRAPHS.json``). The detector only scores; it is never a loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from typing import Any

import torch
from torch import Tensor

from ..scene_graph import GraphBatch, GraphLike, load_scene_graphs
from ..vocab import IMAGE_OBJECT
from .context import EvalContext, resolve_attribute_classifier
from .faith_score import (
    COCO_DETECTOR_ARCH,
    FaithJudge,
    detector_name,
    graphs_of_batch,
    resolve_colour_classifier,
    resolve_detector,
)
from .faith_sheet import SheetRow, add_sheet_rows, write_faithfulness_sheet
from .faith_tally import DEFAULT_BOOTSTRAP, FaithTally
from .registry import Metric

PROTOCOL = (
    "faithfulness, read from pixels: a detector (one score threshold, fixed with its weights) "
    "finds the objects in each image; each graph object is matched to at most one detection of "
    "its class, the assignment under which the most geometric triples hold (then the highest "
    "scores); the model's layout is never read. object_recall = graph objects found / graph "
    "objects of classes the detector knows; hallucinations_per_image = detections of classes "
    "the graph does not name; colour_accuracy = the AttributeClassifier's colour at each found "
    "object's detected box against the graph's colour; triple_score = geometric triples "
    "satisfied by the matched detected boxes under relation_satisfaction's rule (box centres), "
    "a triple with an endpoint not found failing, triples with an endpoint the detector does "
    "not know counted apart. generated: the generator's images; real: the real images with "
    "their own graphs (the ceiling). 95 % intervals: percentile bootstrap over graphs, seeded")


def _as_images(images: Any, what: str) -> Tensor:
    """(N, 3, H, W) float in [-1, 1] from a tensor, or a list of PIL images or (3, H, W)
    tensors of one size."""
    if isinstance(images, Tensor):
        x = images
    else:
        from ..vis import from_pil

        items = [im if isinstance(im, Tensor) else from_pil(im) for im in images]
        if not items:
            raise ValueError(f"no {what} given")
        shapes = sorted({tuple(im.shape) for im in items})
        if len(shapes) > 1:
            raise ValueError(f"{what} come in several shapes {shapes[:3]}; resize them to one "
                             f"square size")
        x = torch.stack(items)
    if x.dim() != 4 or x.shape[1] != 3 or x.shape[2] != x.shape[3]:
        raise ValueError(f"{what} must be square RGB images (N, 3, H, W), got shape "
                         f"{tuple(x.shape)}; resize or crop them to one square size")
    return x.float()


def score_faithfulness(images: Any, graphs: GraphLike | Sequence[GraphLike], detector: Any = None,
                       *, real_images: Any = None, graph_ids: Sequence[int] | None = None,
                       detector_weights: str | PathLike | None = None,
                       detector_arch: str = COCO_DETECTOR_ARCH, colour_classifier: Any = None,
                       colours: bool = True, threshold: float | None = None,
                       stuff_names: Sequence[str] | None = None, seed: int = 0,
                       bootstrap: int = DEFAULT_BOOTSTRAP, batch_size: int = 32,
                       sheet: str | PathLike | None = None, device: str | torch.device = "cpu"
                       ) -> dict[str, Any]:
    """Score any system's images against their scene graphs (the ``faithfulness`` protocol).

    Args:
        images: N images: a (N, 3, H, W) tensor in [-1, 1], or a list of PIL images or of
            (3, H, W) tensors in [-1, 1], all of one square size.
        graphs: N scene graphs (dicts in the sg2im JSON form, ``SceneGraph`` objects, or a
            JSON file), image i scored against graph i.
        detector: a detector object (``sg2img.eval.SceneDetector`` or anything with
            ``object_names``, ``threshold`` and ``detect``); None: from ``detector_weights``.
        real_images: optionally the real images of the same graphs (the ceiling), as
            ``images``.
        graph_ids: per image the index of its scene (images of one scene, e.g. K samples of a
            graph, are resampled together by the bootstrap); None: every image its own.
        detector_weights: with ``detector`` None: an sg2img detector file or a torchvision COCO
            state dict for ``detector_arch``; None: the shipped procedural detector.
        detector_arch: the torchvision builder of a COCO state dict.
        colour_classifier: an ``AttributeClassifier``; None: the shipped procedural one.
        colours: False leaves colours out.
        threshold: detection score threshold; None: the detector's own.
        stuff_names: the stuff classes, for the thing/stuff split of triples; None: the
            procedural scenes' when the detector knows them all, else none.
        seed: seeds the bootstrap.
        bootstrap: replicates per 95 % interval (0: none).
        batch_size: images per detector call.
        sheet: if given, a PNG debug sheet of the first graphs is written there.
        device: where the colour classifier runs.

    Returns:
        ``{"generated": figures, "real": figures (with real_images), "detector": name,
        "threshold": t, "colour_classifier": name or None, "protocol": text}``; the figures
        are :meth:`FaithTally.compute`'s.

    Raises:
        ValueError: the numbers of images and graphs differ, or images are not square.
        EvalWeightsError: a weights file is missing (the message names it).
    """
    graph_list = load_scene_graphs(graphs)
    x = _as_images(images, "images")
    if len(x) != len(graph_list):
        raise ValueError(f"{len(x)} images but {len(graph_list)} scene graphs; give one graph "
                         f"per image (repeat a graph for several samples of it)")
    real = None if real_images is None else _as_images(real_images, "real images")
    if real is not None and len(real) != len(graph_list):
        raise ValueError(f"{len(real)} real images but {len(graph_list)} scene graphs; give "
                         f"one real image per graph")
    ids = list(range(len(x))) if graph_ids is None else [int(i) for i in graph_ids]
    if len(ids) != len(x):
        raise ValueError(f"graph_ids has {len(ids)} entries for {len(x)} images")
    det = resolve_detector(detector, detector_weights, detector_arch, x.shape[-1])
    if stuff_names is None:
        from ..data.shapes import shapes_vocab

        procedural = shapes_vocab().stuff_names
        stuff_names = procedural if set(procedural) <= set(det.object_names) else ()
    has_colour = colours and any(g.attributes for g in graph_list)
    clf = resolve_colour_classifier(colour_classifier, x.shape[-1]) if has_colour else None
    judge = FaithJudge(det, clf, threshold=threshold, stuff_names=stuff_names, device=device)
    result: dict[str, Any] = {}
    rows: list[SheetRow] = []
    for side, imgs in (("generated", x), ("real", real)):
        if imgs is None:
            continue
        tally = FaithTally(bootstrap, seed)
        for start in range(0, len(imgs), batch_size):
            chunk = slice(start, start + batch_size)
            scored = judge.score(imgs[chunk], graph_list[chunk], ids[chunk])
            tally.add(scored)
            if sheet is not None:
                add_sheet_rows(rows, side, imgs[chunk], graph_list[chunk], scored, start)
        result[side] = tally.compute()
    result.update(detector=detector_name(det), threshold=judge.threshold,
                  colour_classifier=None if clf is None else type(clf).__name__,
                  protocol=PROTOCOL)
    if sheet is not None:
        result["sheet"] = str(write_faithfulness_sheet(rows, judge.names, sheet))
    return result


class Faithfulness(Metric):
    """The ``faithfulness`` metric of ``sg2img evaluate`` (see the module docstring)."""

    protocol = PROTOCOL
    default = False     # asked for by name: it needs the detector

    def __init__(self, ctx: EvalContext) -> None:
        super().__init__(ctx)
        if ctx.object_names is None or ctx.pred_names is None:
            raise ValueError("faithfulness needs the dataset's vocabulary (object and predicate "
                             "names) to read its graphs")
        given = ctx.detector
        if isinstance(given, (str, PathLike)):
            det = resolve_detector(None, given, ctx.detector_arch, ctx.image_size)
        else:
            det = resolve_detector(given, None, ctx.detector_arch, ctx.image_size)
        known = set(det.object_names) & (set(ctx.object_names) - {IMAGE_OBJECT})
        if not known:
            raise ValueError("the detector knows none of the dataset's object classes; pass "
                             "--detector-weights a detector for this vocabulary (COCO weights "
                             "for COCO-Stuff; Visual Genome is not supported, see "
                             "docs/evaluation.md)")
        clf = None
        if ctx.attribute_names is not None:
            clf = resolve_attribute_classifier(ctx.attribute_classifier, ctx.object_names,
                                               ctx.image_size)
        self.judge = FaithJudge(det, clf, stuff_names=ctx.stuff_names, device=ctx.device)
        self.tallies = {"generated": FaithTally(seed=ctx.seed), "real": FaithTally(seed=ctx.seed)}
        self.rows: list[SheetRow] = []
        self.offset = 0

    def update(self, batch: GraphBatch, outs: list[Any]) -> None:
        graphs = graphs_of_batch(batch, self.ctx.object_names, self.ctx.pred_names,
                                 self.ctx.attribute_names)
        ids = list(range(self.offset, self.offset + batch.num_images))
        self.offset += batch.num_images
        real = self.judge.score(batch.images, graphs, ids)
        self.tallies["real"].add(real)
        first = None
        for out in outs[:self.ctx.samples_per_graph]:
            scored = self.judge.score(out.images, graphs, ids)
            self.tallies["generated"].add(scored)
            first = scored if first is None else first
        if self.ctx.faithfulness_sheet is not None:
            start = ids[0]
            add_sheet_rows(self.rows, "generated", outs[0].images, graphs, first, start)
            add_sheet_rows(self.rows, "real", batch.images, graphs, real, start)

    def compute(self) -> dict[str, Any]:
        out: dict[str, Any] = {side: t.compute() for side, t in self.tallies.items()}
        out.update(detector=detector_name(self.judge.detector), threshold=self.judge.threshold,
                   colour_classifier=(None if self.judge.classifier is None
                                      else type(self.judge.classifier).__name__))
        if self.ctx.faithfulness_sheet is not None and self.rows:
            out["sheet"] = str(write_faithfulness_sheet(self.rows, self.judge.names,
                                                        self.ctx.faithfulness_sheet))
        return out

"""What one picture says about its graph, read from pixels: objects found, colours, triples.

:class:`FaithJudge` runs a detector (and the colour classifier) over images and matches the
detections to each graph's objects (:mod:`sg2img.eval.faith_match`); the result per image is a
:class:`FaithImage`, which :class:`sg2img.eval.FaithTally` adds up. Nothing here reads the
layout a model drew: only the pixels and the graph.

A detector is anything with ``object_names`` (class names, index = label), ``threshold`` and
``detect(images (N, 3, H, W) in [-1, 1], threshold) -> [Detections]`` (boxes (K, 4) in [0, 1],
labels (K,), scores (K,)): ``sg2img.eval.SceneDetector``, or a stand-in in tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..scene_graph import GraphBatch, SceneGraph
from .boxes import GEOMETRIC_PREDICATES, box_predicate
from .faith_match import MatchProblem, match_detections
from .nets import AttributeClassifier, EvalWeightsError, crop_boxes, load_shipped_net

COCO_DETECTOR_ARCH = "fasterrcnn_resnet50_fpn"
"""The torchvision architecture ``--detector-weights`` assumes for a COCO state dict."""

ENDPOINT_KINDS = ("thing-thing", "thing-stuff", "stuff-stuff")


@dataclass
class FaithImage:
    """One image scored against its graph.

    Attributes:
        graph: the graph's index (images of one graph are one unit of the bootstrap).
        objects: per graph object (class name, found); found is None when the detector does
            not know the class (not judged).
        hallucinated: class names of the detections whose class the graph does not name.
        surplus: detections of classes the graph names, beyond one per object.
        colours: per judged colourable object (class, the graph's colour, the colour read at
            its detection or None when the object was not found).
        triples: per geometric triple (predicate, endpoint kind, holds); holds is None when
            an endpoint's class is unknown to the detector (not judged).
        match: per graph object the index of its detection, or None.
        detections: the image's detections (boxes, labels, scores).
    """

    graph: int
    objects: list[tuple[str, bool | None]] = field(default_factory=list)
    hallucinated: list[str] = field(default_factory=list)
    surplus: int = 0
    colours: list[tuple[str, str, str | None]] = field(default_factory=list)
    triples: list[tuple[str, str, bool | None]] = field(default_factory=list)
    match: list[int | None] = field(default_factory=list)
    detections: Any = None


def graphs_of_batch(batch: GraphBatch, object_names: Sequence[str], pred_names: Sequence[str],
                    attribute_names: Sequence[str] | None = None) -> list[SceneGraph]:
    """The scene graphs of a dataset batch in the user's form (names, attributes kept), without
    the ``__image__`` node, its ``__in_image__`` triples or any box: what an image is scored
    against.

    Args:
        batch: a collated batch whose graphs each end with their ``__image__`` node.
        object_names, pred_names, attribute_names: the vocabulary's names by id.
    """
    objs, owner = batch.objs.cpu(), batch.obj_to_img.cpu()
    triples, t_owner = batch.triples.cpu(), batch.triple_to_img.cpu()
    attrs = batch.attributes.cpu() if batch.attributes is not None else None
    out = []
    for i in range(batch.num_images):
        idx = (owner == i).nonzero().flatten()
        lo, real = int(idx[0]), idx[:-1]
        names = tuple(object_names[int(c)] for c in objs[real])
        rels = tuple((int(s) - lo, pred_names[int(p)], int(o) - lo)
                     for s, p, o in triples[t_owner == i].tolist()
                     if p != 0 and o - lo < len(names) and s - lo < len(names))
        attributes = None
        if attrs is not None and attribute_names is not None:
            attributes = tuple(tuple(attribute_names[int(a)] for a in
                                     (attrs[j] > 0.5).nonzero().flatten())
                               for j in real.tolist())
        out.append(SceneGraph(names, rels, None, attributes))
    return out


def resolve_detector(detector: Any = None, weights: str | PathLike | None = None,
                     arch: str = COCO_DETECTOR_ARCH, image_size: int = 64) -> Any:
    """The detector to score with.

    Args:
        detector: a detector object (returned as it is), or None.
        weights: with ``detector`` None: a detector file written by ``save_detector``, or a
            torchvision COCO state dict for ``arch`` (real datasets: COCO's things only);
            None: the shipped procedural detector.
        arch: the torchvision builder a COCO state dict is for.
        image_size: the side of the images it will score (the shipped detector's threshold
            is the one chosen at that size, :func:`sg2img.eval.load_detector`).

    Raises:
        EvalWeightsError: the file is missing or unreadable; the message names it.
    """
    if detector is not None:
        if not callable(getattr(detector, "detect", None)):
            raise TypeError(f"detector must have detect(images, threshold), got "
                            f"{type(detector).__name__}")
        return detector
    path = None if weights is None else Path(weights)
    if path is not None and not path.is_file():
        raise EvalWeightsError(f"the detector weights file does not exist: {path}; pass "
                               f"--detector-weights the path of an sg2img detector file or of "
                               f"a torchvision {arch} COCO state dict")
    from ..files import load_torch_file
    from .detector import load_coco_detector, load_detector

    if path is None:
        return load_detector(image_size=image_size)

    state = load_torch_file(path, "detector weights", EvalWeightsError)
    if isinstance(state, dict) and state.get("kind") == "SceneDetector":
        del state
        return load_detector(path)
    del state
    return load_coco_detector(path, arch)


def detector_name(detector: Any) -> str:
    """A short name of the detector for the report."""
    meta = getattr(detector, "meta", None) or {}
    if "weights" in meta:
        return f"{meta.get('arch', 'detector')} from {meta['weights']}"
    arch = (getattr(detector, "arch", None) or {}).get("name")
    name = str(meta.get("name") or type(detector).__name__)
    return f"{name} ({arch})" if arch and arch != name else name


def resolve_colour_classifier(classifier: Any = None,
                              image_size: int = 64) -> AttributeClassifier | None:
    """The colour classifier: ``classifier`` itself, or the procedural one shipped for
    ``image_size`` px images, or None when it is not shipped (colours are then not judged)."""
    if classifier is not None:
        return classifier.eval()
    try:
        return load_shipped_net("AttributeClassifier", image_size=image_size).eval()
    except EvalWeightsError:
        return None


class FaithJudge:
    """Scores images against their graphs with one detector and one colour classifier.

    Args:
        detector: see the module docstring.
        colour_classifier: an ``AttributeClassifier`` (crops -> colour logits), or None to
            leave colours out.
        threshold: detection score threshold; None: the detector's own.
        stuff_names: the vocabulary's stuff classes (for the thing/stuff split of triples);
            classes not listed count as things.
        device: where the detector and the classifier run (the images are moved there).
    """

    def __init__(self, detector: Any, colour_classifier: AttributeClassifier | None = None, *,
                 threshold: float | None = None, stuff_names: Sequence[str] = (),
                 device: str | torch.device = "cpu") -> None:
        self.detector = detector
        self.names = tuple(detector.object_names)
        self.label_of = {n: i for i, n in enumerate(self.names)}
        self.threshold = float(detector.threshold if threshold is None else threshold)
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"the detection threshold must be a score in [0, 1], got "
                             f"{self.threshold}")
        self.stuff = frozenset(stuff_names)
        self.device = torch.device(device)
        if isinstance(detector, torch.nn.Module):
            detector.to(self.device)
        self.classifier = colour_classifier
        self.colours: dict[str, frozenset[str]] = {}
        if colour_classifier is not None:
            self.classifier = colour_classifier.to(self.device).eval()
            self.labels = list(colour_classifier.labels())
            self.colours = {k: frozenset(v)
                            for k, v in colour_classifier.class_attributes().items()}
            self.crop_size = int(getattr(colour_classifier, "crop_size", 32))

    def colour_of(self, name: str, attributes: Sequence[str]) -> str | None:
        """The colour an object is judged on: its one attribute among the classifier's labels
        when its class has colours, else None (not judged)."""
        if name not in self.colours:
            return None
        named = [a for a in attributes if a in self.labels]
        return named[0] if len(named) == 1 else None

    def kind(self, a: str, b: str) -> str:
        n = (a in self.stuff) + (b in self.stuff)
        return ENDPOINT_KINDS[n]

    @torch.no_grad()
    def score(self, images: Tensor, graphs: Sequence[SceneGraph],
              graph_ids: Sequence[int] | None = None) -> list[FaithImage]:
        """Detect in ``images`` and score image i against ``graphs[i]``.

        Args:
            images: (N, 3, H, W) in [-1, 1], square.
            graphs: N scene graphs (user form: names and attributes).
            graph_ids: per image its graph's index for the bootstrap; None: 0..N-1.

        Raises:
            ValueError: the numbers of images and graphs differ.
        """
        if len(images) != len(graphs):
            raise ValueError(f"{len(images)} images but {len(graphs)} graphs; give one graph "
                             f"per image")
        ids = range(len(graphs)) if graph_ids is None else graph_ids
        images = images.to(self.device)
        found = self.detector.detect(images, self.threshold)
        out, crops = [], []          # crops: (image index, detection, result index, colour)
        for n, (graph, dets, gid) in enumerate(zip(graphs, found, ids, strict=True)):
            res = self._match(graph, dets, int(gid))
            attrs = graph.attributes or ((),) * len(graph.objects)
            for i, name in enumerate(graph.objects):
                colour = self.colour_of(name, attrs[i])
                if colour is None:
                    continue
                d = res.match[i]
                res.colours.append((name, colour, None))
                if d is not None:
                    crops.append((n, d, len(out), len(res.colours) - 1))
            out.append(res)
        if crops and self.classifier is not None:
            boxes = torch.stack([found[n].boxes[d].float() for n, d, _, _ in crops])
            to_img = torch.tensor([n for n, _, _, _ in crops], dtype=torch.long)
            x = crop_boxes(images, boxes.to(self.device), to_img.to(self.device),
                           self.crop_size)
            read = self.classifier(x).argmax(dim=1).tolist()
            for (_, _, r, c), k in zip(crops, read, strict=True):
                name, colour, _ = out[r].colours[c]
                out[r].colours[c] = (name, colour, self.labels[k])
        return out

    def _match(self, graph: SceneGraph, dets: Any, gid: int) -> FaithImage:
        labels = [self.label_of.get(name) for name in graph.objects]
        boxes = dets.boxes.detach().double().cpu().tolist()
        det_labels = [int(x) for x in dets.labels.cpu().tolist()]
        scores = [float(x) for x in dets.scores.cpu().tolist()]
        geometric = [(int(s), p, int(o)) for s, p, o in graph.relationships
                     if p in GEOMETRIC_PREDICATES]
        match = match_detections(MatchProblem(labels, geometric, boxes, det_labels, scores))
        res = FaithImage(graph=gid, match=match, detections=dets)
        res.objects = [(name, None if lab is None else match[i] is not None)
                       for i, (name, lab) in enumerate(zip(graph.objects, labels, strict=True))]
        named = set(graph.objects)
        used = {d for d in match if d is not None}
        for d, lab in enumerate(det_labels):
            cls = self.names[lab] if 0 <= lab < len(self.names) else str(lab)
            if cls not in named:
                res.hallucinated.append(cls)
            elif d not in used:
                res.surplus += 1
        for s, p, o in geometric:
            kind = self.kind(graph.objects[s], graph.objects[o])
            if labels[s] is None or labels[o] is None:
                res.triples.append((p, kind, None))
                continue
            ds, do = match[s], match[o]
            holds = (ds is not None and do is not None
                     and box_predicate(boxes[ds], boxes[do]) == p)
            res.triples.append((p, kind, holds))
        return res

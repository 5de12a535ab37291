"""``relation_swap``: does the picture follow a flipped relation? A causal test, read from pixels.

For each graph with a ``left of`` / ``right of`` / ``above`` / ``below`` triple between two
things or a thing and stuff, the predicate is flipped (left of <-> right of, above <-> below;
every triple between the same two objects flips with it, so the graph stays consistent) and
the graph is generated again with the same noise as the original picture. The detector then
reads both pictures: the pair counts when both endpoints are found in both, and it *flips*
when the after picture's detected boxes satisfy the new predicate (the rule of
``relation_satisfaction``). Coverage is the share of eligible graphs whose pair counted.

To keep the test free of the matching's choice, only pairs whose two classes each occur once
in the graph (and that the detector knows) are eligible, and each endpoint is the
highest-scoring detection of its class.

Other systems: :func:`relation_swap_graphs` gives the flipped graphs; generate them as you
generated the originals and score both sets with :func:`score_relation_swap`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from os import PathLike
from typing import Any

import torch
from torch import Tensor

from ..scene_graph import GraphBatch, SceneGraph
from .boxes import box_predicate
from .context import EvalContext, unpinned
from .faith_score import ENDPOINT_KINDS, detector_name, graphs_of_batch, resolve_detector
from .faith_tally import DEFAULT_BOOTSTRAP, bootstrap_ratios
from .registry import Metric

FLIPS = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}
"""The predicates the swap test flips, and what each becomes."""

PROTOCOL = (
    "relation swap test: in each graph the first left of / right of / above / below triple "
    "between two things or a thing and stuff (classes once in the graph, known to the "
    "detector) is flipped, with every triple between the same pair, and the graph generated "
    "again with the original picture's noise; both pictures are read by the detector (each "
    "endpoint: the highest-scoring detection of its class). A pair counts when both endpoints "
    "are found in both pictures; flip_rate = counted pairs whose after boxes satisfy the new "
    "predicate (relation_satisfaction's rule); held_before = the before boxes satisfy the old "
    "one; coverage = counted / eligible graphs")


@dataclass(frozen=True)
class SwapCase:
    """One graph's flip.

    Attributes:
        subject, object: the two objects' indices in the graph.
        before, after: the predicate of (subject, object) before and after the flip.
        kind: ``"thing-thing"`` or ``"thing-stuff"``.
        graph: the flipped graph.
    """

    subject: int
    object: int
    before: str
    after: str
    kind: str
    graph: SceneGraph


def swap_case(graph: SceneGraph, known: Sequence[str], stuff_names: Sequence[str] = ()
              ) -> SwapCase | None:
    """The flip of ``graph`` the swap test makes, or None when it has no eligible pair.

    Args:
        graph: the original graph.
        known: the classes the detector knows.
        stuff_names: the stuff classes (a stuff-stuff pair is not eligible).
    """
    counts: dict[str, int] = {}
    for name in graph.objects:
        counts[name] = counts.get(name, 0) + 1
    known, stuff = frozenset(known), frozenset(stuff_names)
    for s, p, o in graph.relationships:
        if p not in FLIPS or s == o:
            continue
        a, b = graph.objects[s], graph.objects[o]
        if counts[a] != 1 or counts[b] != 1 or a not in known or b not in known:
            continue
        kind = ENDPOINT_KINDS[(a in stuff) + (b in stuff)]
        if kind == "stuff-stuff":
            continue
        pair = [(i, r) for i, r in enumerate(graph.relationships) if {r[0], r[2]} == {s, o}]
        if any(r[1] not in FLIPS for _, r in pair):
            continue           # an inside / surrounding triple between them would contradict
        rels = list(graph.relationships)
        for i, (rs, rp, ro) in pair:
            rels[i] = (rs, FLIPS[rp], ro)
        return SwapCase(s, o, p, FLIPS[p], kind, replace(graph, relationships=tuple(rels)))
    return None


def relation_swap_graphs(graphs: Sequence[SceneGraph], known: Sequence[str],
                         stuff_names: Sequence[str] = ()) -> list[SwapCase | None]:
    """:func:`swap_case` of every graph: the flipped graphs another system generates."""
    return [swap_case(g, known, stuff_names) for g in graphs]


def _top_box(dets: Any, label: int | None) -> list[float] | None:
    if label is None:
        return None
    hits = (dets.labels == label).nonzero().flatten()
    if len(hits) == 0:
        return None
    best = hits[int(dets.scores[hits].argmax())]
    return [float(v) for v in dets.boxes[best].tolist()]


class SwapTally:
    """Counts of the swap test: per case whether it counted, held before and flipped."""

    def __init__(self) -> None:
        self.units: list[dict[str, float]] = []

    def add(self, case: SwapCase, label_of: dict[str, int], graph: SceneGraph, before: Any,
            after: Any) -> None:
        a, b = graph.objects[case.subject], graph.objects[case.object]
        boxes = [_top_box(d, label_of.get(n)) for d in (before, after) for n in (a, b)]
        unit = {"eligible": 1.0, f"{case.before}:eligible": 1.0}
        if all(x is not None for x in boxes):
            held = box_predicate(boxes[0], boxes[1]) == case.before
            flipped = box_predicate(boxes[2], boxes[3]) == case.after
            unit.update({"counted": 1.0, "held": float(held), "flipped": float(flipped),
                         "held_and_flipped": float(held and flipped),
                         f"{case.before}:counted": 1.0, f"{case.before}:flipped": float(flipped),
                         f"{case.kind}:counted": 1.0, f"{case.kind}:flipped": float(flipped)})
        self.units.append(unit)

    def compute(self, num_graphs: int, bootstrap: int = DEFAULT_BOOTSTRAP, seed: int = 0
                ) -> dict[str, Any]:
        tot: dict[str, float] = {}
        for u in self.units:
            for k, v in u.items():
                tot[k] = tot.get(k, 0.0) + v

        def r(a: str, b: str) -> float:
            return tot.get(a, 0.0) / tot[b] if tot.get(b) else math.nan

        pairs = {"flip_rate": ("flipped", "counted"), "held_before": ("held", "counted"),
                 "flipped_given_held": ("held_and_flipped", "held"),
                 "coverage": ("counted", "eligible")}
        out: dict[str, Any] = {k: r(a, b) for k, (a, b) in pairs.items()}
        out.update(num_graphs=num_graphs, num_eligible=int(tot.get("eligible", 0)),
                   num_counted=int(tot.get("counted", 0)))
        out["by_predicate"] = {
            f"{p} -> {q}": {"flip_rate": r(f"{p}:flipped", f"{p}:counted"),
                            "num_counted": int(tot.get(f"{p}:counted", 0)),
                            "num_eligible": int(tot.get(f"{p}:eligible", 0))}
            for p, q in FLIPS.items()}
        out["by_endpoints"] = {k: {"flip_rate": r(f"{k}:flipped", f"{k}:counted"),
                                   "num_counted": int(tot.get(f"{k}:counted", 0))}
                               for k in ENDPOINT_KINDS[:2]}
        out["ci95"] = (bootstrap_ratios(self.units, pairs, bootstrap, seed)
                       if bootstrap and self.units else {k: None for k in pairs})
        return out


def score_relation_swap(before: Tensor, after: Tensor, graphs: Sequence[SceneGraph],
                        cases: Sequence[SwapCase | None], detector: Any = None, *,
                        detector_weights: str | PathLike | None = None,
                        threshold: float | None = None, seed: int = 0,
                        bootstrap: int = DEFAULT_BOOTSTRAP, batch_size: int = 32
                        ) -> dict[str, Any]:
    """Score another system's swap test: ``before[i]`` drawn from ``graphs[i]``, ``after[i]``
    from ``cases[i].graph`` (images of graphs without a case are not read).

    Args:
        before, after: (N, 3, H, W) in [-1, 1].
        graphs: the N original graphs.
        cases: :func:`relation_swap_graphs` of ``graphs``.
        detector, detector_weights: as :func:`sg2img.eval.score_faithfulness`.
        threshold: detection score threshold; None: the detector's own.

    Returns:
        flip_rate, held_before, flipped_given_held, coverage, counts, breakdowns and 95 %
        intervals (bootstrap over graphs).
    """
    if not len(before) == len(after) == len(graphs) == len(cases):
        raise ValueError(f"{len(before)} before images, {len(after)} after images, "
                         f"{len(graphs)} graphs and {len(cases)} cases; give one of each per "
                         f"graph (None for a graph without a case)")
    det = resolve_detector(detector, detector_weights, image_size=before.shape[-1])
    label_of = {n: i for i, n in enumerate(det.object_names)}
    tally = SwapTally()
    idx = [i for i, c in enumerate(cases) if c is not None]
    for start in range(0, len(idx), batch_size):
        chunk = idx[start:start + batch_size]
        found_b = det.detect(before[chunk], threshold)
        found_a = det.detect(after[chunk], threshold)
        for k, i in enumerate(chunk):
            tally.add(cases[i], label_of, graphs[i], found_b[k], found_a[k])
    return tally.compute(len(graphs), bootstrap, seed)


class RelationSwap(Metric):
    """The ``relation_swap`` metric of ``sg2img evaluate`` (see the module docstring)."""

    protocol = PROTOCOL
    default = False     # asked for by name: it needs the detector and generates again

    def __init__(self, ctx: EvalContext) -> None:
        super().__init__(ctx)
        if ctx.generator is None:
            raise ValueError("relation_swap generates again: it needs the generator "
                             "(evaluate() passes it)")
        if ctx.use_gt_layout:
            raise ValueError("relation_swap tests the layout predicted from the graph; leave "
                             "out --gt-layout (use_gt_layout) for it")
        if ctx.object_names is None or ctx.pred_names is None:
            raise ValueError("relation_swap needs the dataset's vocabulary to read its graphs")
        given = ctx.detector
        path = given if isinstance(given, (str, PathLike)) else None
        self.detector = resolve_detector(None if path else given, path, ctx.detector_arch,
                                         ctx.image_size)
        if isinstance(self.detector, torch.nn.Module):
            self.detector.to(ctx.device)
        self.label_of = {n: i for i, n in enumerate(self.detector.object_names)}
        self.tally = SwapTally()
        self.num_graphs = 0

    def update(self, batch: GraphBatch, outs: list[Any]) -> None:
        from .run import seed_rule_noise  # lazy: run imports this module

        ctx = self.ctx
        graphs = graphs_of_batch(batch, ctx.object_names, ctx.pred_names)
        self.num_graphs += len(graphs)
        cases = relation_swap_graphs(graphs, self.detector.object_names, ctx.stuff_names)
        if not any(cases):
            return
        gen_batch = unpinned(batch)
        pred_id = {n: i for i, n in enumerate(ctx.pred_names)}
        triples = gen_batch.triples.clone()
        starts = [int((batch.obj_to_img == i).nonzero()[0]) for i in range(batch.num_images)]
        for k, t in enumerate(batch.triples.tolist()):
            img = int(batch.triple_to_img[k])
            case = cases[img]
            if case is None:
                continue
            s, o = t[0] - starts[img], t[2] - starts[img]
            name = ctx.pred_names[t[1]]
            if {s, o} == {case.subject, case.object} and name in FLIPS:
                triples[k, 1] = pred_id[FLIPS[name]]
        noise = seed_rule_noise(ctx.model, gen_batch, ctx.seed, 0, ctx.layout_mode)
        rng = torch.Generator(device=ctx.device).manual_seed(ctx.seed)
        flipped = ctx.generator(replace(gen_batch, triples=triples), use_gt_layout=False,
                                rng=rng, **noise)
        chosen = [i for i, c in enumerate(cases) if c is not None]
        found_b = self.detector.detect(outs[0].images[chosen])
        found_a = self.detector.detect(flipped.images[chosen])
        for k, i in enumerate(chosen):
            self.tally.add(cases[i], self.label_of, graphs[i], found_b[k], found_a[k])

    def compute(self) -> dict[str, Any]:
        out = self.tally.compute(self.num_graphs, seed=self.ctx.seed)
        out["detector"] = detector_name(self.detector)
        return out


def markdown_rows(result: dict[str, Any]) -> list[str]:
    """Report table rows for a ``relation_swap`` result."""
    band = (result.get("ci95") or {}).get("flip_rate")
    rate = result["flip_rate"]
    text = "nan" if rate != rate else f"{rate:.4f}" + (
        f" [{band[0]:.3f}, {band[1]:.3f}]" if band else "")
    return [f"| relation swap: detected geometry follows the flip | {text} | "
            f"{result['num_counted']} of {result['num_eligible']} eligible graphs counted "
            f"(coverage {result['coverage']:.3f}); held before: {result['held_before']:.3f} |"]

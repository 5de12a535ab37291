"""The faithfulness figures: scored images added up, per predicate and class, with intervals.

:class:`FaithTally` takes :class:`sg2img.eval.FaithImage` records and computes every figure as
a ratio of sums over images, with a seeded bootstrap 95 % interval that resamples graphs (all
the samples of one graph together), so K samples of a graph do not count as K independent
scenes.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import torch

from .boxes import GEOMETRIC_PREDICATES
from .faith_score import ENDPOINT_KINDS, FaithImage

DEFAULT_BOOTSTRAP = 1000
"""Bootstrap replicates behind every 95 % interval."""

# Headline figures: name -> (numerator counter, denominator counter).
_FIGURES = {
    "object_recall": ("found", "objects"),
    "triple_score": ("held", "triples"),
    "colour_accuracy": ("colour_right", "colour_matched"),
    "colour_found": ("colour_right", "colour_objects"),
    "hallucinations_per_image": ("hallucinated", "images"),
    "images_with_hallucination": ("images_hallucinating", "images"),
    "surplus_per_image": ("surplus", "images"),
}


def _ratio(num: float, den: float) -> float:
    return num / den if den else math.nan


class FaithTally:
    """Adds up :class:`FaithImage` records and computes the faithfulness figures.

    Args:
        bootstrap: replicates per 95 % interval (0: no intervals).
        seed: seeds the bootstrap's resampling.
    """

    def __init__(self, bootstrap: int = DEFAULT_BOOTSTRAP, seed: int = 0) -> None:
        if bootstrap < 0:
            raise ValueError(f"bootstrap must be >= 0 replicates, got {bootstrap}")
        self.bootstrap, self.seed = int(bootstrap), int(seed)
        self.units: dict[int, defaultdict[str, float]] = {}
        self.classes: defaultdict[str, defaultdict[str, float]] = defaultdict(
            lambda: defaultdict(float))

    def add(self, images: Iterable[FaithImage]) -> None:
        """Count each image under its graph (the bootstrap's unit)."""
        for im in images:
            c = self.units.setdefault(im.graph, defaultdict(float))
            c["images"] += 1
            for name, found in im.objects:
                per = self.classes[name]
                if found is None:
                    c["objects_not_judged"] += 1
                    per["not_judged"] += 1
                    continue
                c["objects"] += 1
                c["found"] += found
                per["objects"] += 1
                per["found"] += found
            c["hallucinated"] += len(im.hallucinated)
            c["images_hallucinating"] += bool(im.hallucinated)
            c["surplus"] += im.surplus
            for name in im.hallucinated:
                self.classes[name]["hallucinated"] += 1
            for name, want, got in im.colours:
                per = self.classes[name]
                c["colour_objects"] += 1
                per["colour_objects"] += 1
                if got is not None:
                    c["colour_matched"] += 1
                    c["colour_right"] += got == want
                    per["colour_matched"] += 1
                    per["colour_right"] += got == want
            for pred, kind, holds in im.triples:
                if holds is None:
                    c[f"not_judged:{kind}"] += 1
                    c["triples_not_judged"] += 1
                    continue
                c["triples"] += 1
                c["held"] += holds
                for key in (f"pred:{pred}", f"kind:{kind}"):
                    c[f"{key}:n"] += 1
                    c[f"{key}:held"] += holds

    @property
    def num_images(self) -> int:
        return int(sum(c["images"] for c in self.units.values()))

    def compute(self) -> dict[str, Any]:
        """The figures (see ``docs/evaluation.md``); NaN where nothing was counted."""
        total: defaultdict[str, float] = defaultdict(float)
        for c in self.units.values():
            for k, v in c.items():
                total[k] += v
        out: dict[str, Any] = {name: _ratio(total[a], total[b])
                               for name, (a, b) in _FIGURES.items()}
        out.update({
            "num_images": int(total["images"]), "num_graphs": len(self.units),
            "num_objects": int(total["objects"]),
            "num_objects_not_judged": int(total["objects_not_judged"]),
            "num_triples": int(total["triples"]),
            "num_triples_not_judged": int(total["triples_not_judged"]),
            "num_colour_objects": int(total["colour_objects"]),
            "num_colour_matched": int(total["colour_matched"]),
        })
        pairs = dict(_FIGURES)
        out["by_predicate"] = {}
        for pred in GEOMETRIC_PREDICATES:
            n = total[f"pred:{pred}:n"]
            out["by_predicate"][pred] = {"score": _ratio(total[f"pred:{pred}:held"], n),
                                         "num_triples": int(n)}
            pairs[f"pred:{pred}"] = (f"pred:{pred}:held", f"pred:{pred}:n")
        out["by_endpoints"] = {
            kind: {"score": _ratio(total[f"kind:{kind}:held"], total[f"kind:{kind}:n"]),
                   "num_triples": int(total[f"kind:{kind}:n"]),
                   "num_not_judged": int(total[f"not_judged:{kind}"])}
            for kind in ENDPOINT_KINDS}
        out["by_class"] = {
            name: {"recall": _ratio(c["found"], c["objects"]), "num_objects": int(c["objects"]),
                   "num_not_judged": int(c["not_judged"]),
                   "colour_accuracy": _ratio(c["colour_right"], c["colour_matched"]),
                   "num_colour_objects": int(c["colour_objects"]),
                   "hallucinated": int(c["hallucinated"])}
            for name, c in sorted(self.classes.items())}
        intervals = self._intervals(pairs)
        out["ci95"] = {k: v for k, v in intervals.items() if not k.startswith("pred:")}
        for pred in GEOMETRIC_PREDICATES:
            out["by_predicate"][pred]["ci95"] = intervals.get(f"pred:{pred}")
        out["bootstrap"] = {"replicates": self.bootstrap, "seed": self.seed, "unit": "graph"}
        return out

    def _intervals(self, pairs: dict[str, tuple[str, str]]) -> dict[str, list[float] | None]:
        if not self.bootstrap or not self.units:
            return {k: None for k in pairs}
        return bootstrap_ratios(list(self.units.values()), pairs, self.bootstrap, self.seed)


def bootstrap_ratios(units: Sequence[dict[str, float]], pairs: dict[str, tuple[str, str]],
                     replicates: int = DEFAULT_BOOTSTRAP, seed: int = 0
                     ) -> dict[str, list[float] | None]:
    """Percentile bootstrap 95 % intervals of ratios of sums over resampled units.

    Args:
        units: per unit (a graph) its counters.
        pairs: figure name -> (numerator counter, denominator counter).
        replicates: bootstrap replicates.
        seed: seeds the resampling (the same seed gives the same intervals).

    Returns:
        figure name -> [low, high], or None when no replicate has a denominator.
    """
    keys = sorted({k for a, b in pairs.values() for k in (a, b)})
    values = torch.tensor([[u.get(k, 0.0) for k in keys] for u in units],
                          dtype=torch.float64)                                  # (C, F)
    n = len(units)
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, list[float] | None] = {}
    sums = []
    for start in range(0, replicates, 250):          # (250, C) counts at a time
        b = min(250, replicates - start)
        draws = torch.randint(n, (b, n), generator=gen)
        counts = torch.zeros(b, n, dtype=torch.float64).scatter_add_(
            1, draws, torch.ones(b, n, dtype=torch.float64))
        sums.append(counts @ values)
    total = torch.cat(sums)                                                      # (B, F)
    col = {k: i for i, k in enumerate(keys)}
    for name, (a, b) in pairs.items():
        num, den = total[:, col[a]], total[:, col[b]]
        ok = den > 0
        if not bool(ok.any()):
            out[name] = None
            continue
        r = num[ok] / den[ok]
        lo, hi = torch.quantile(r, torch.tensor([0.025, 0.975], dtype=torch.float64)).tolist()
        out[name] = [float(lo), float(hi)]
    return out


def markdown_rows(result: dict[str, Any]) -> list[str]:
    """Report table rows for a ``faithfulness`` result (generated and real images)."""
    rows = []
    detector = result.get("detector", "detector")
    for side in ("generated", "real"):
        r = result.get(side)
        if not r or not r.get("num_images"):
            continue
        ci = r.get("ci95", {})

        def fmt(name: str, r: dict[str, Any] = r, ci: dict[str, Any] = ci) -> str:
            v = r[name]
            if v != v:
                return "nan"
            band = ci.get(name)
            return f"{v:.4f}" + (f" [{band[0]:.3f}, {band[1]:.3f}]" if band else "")

        rows += [
            f"| faithfulness ({side}): object recall | {fmt('object_recall')} | "
            f"{r['num_objects']} objects, {r['num_images']} images; {detector} |",
            f"| faithfulness ({side}): triple score | {fmt('triple_score')} | "
            f"{r['num_triples']} geometric triples ({r['num_triples_not_judged']} with an "
            f"endpoint the detector does not know) |",
            f"| faithfulness ({side}): colour accuracy | {fmt('colour_accuracy')} | "
            f"{r['num_colour_matched']} found of {r['num_colour_objects']} coloured objects |",
            f"| faithfulness ({side}): hallucinations per image | "
            f"{fmt('hallucinations_per_image')} | classes the graph does not name |",
        ]
    return rows

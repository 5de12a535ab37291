"""How local edits and resampling are: mean pixel change inside versus outside the region they
are about, over random edits of dataset scene graphs.

An edit (``manipulate``) or another look of one object (``generate(..., resample_object=i)``)
should change the picture where the touched objects are and keep the rest. These functions
measure it as the mean absolute pixel change (pixels in [0, 1], the images' [-1, 1] halved)
inside and outside that region, beside two baselines: the same edit with the layout predicted
afresh (``freeze=False``), and two seeds of the unedited graphs (a change that keeps nothing).
``scripts/bench_manipulation.py`` and ``scripts/bench_resample.py`` print them.
"""

from __future__ import annotations

import logging
import math
import random
import statistics
import time
from collections.abc import Sequence
from typing import Any

import torch.nn.functional as F

from .api import GenerationResult, SG2ImgModel, generate
from .manipulation import boxes_region, manipulate
from .scene_graph import GraphSample, SceneGraph

logger = logging.getLogger(__name__)

EDIT_KINDS = ("add", "remove", "replace", "predicate", "move")


def random_box(rng: random.Random) -> tuple[float, float, float, float]:
    """A box (x0, y0, x1, y1) in [0, 1], 0.15 to 0.45 of the image wide and high."""
    w, h = rng.uniform(0.15, 0.45), rng.uniform(0.15, 0.45)
    x0, y0 = rng.uniform(0.0, 1.0 - w), rng.uniform(0.0, 1.0 - h)
    return (round(x0, 4), round(y0, 4), round(x0 + w, 4), round(y0 + h, 4))


def random_edit(kind: str, graph: SceneGraph, names: Sequence[str], preds: Sequence[str],
                rng: random.Random) -> dict[str, Any] | None:
    """A random edit of ``kind`` (one of ``EDIT_KINDS``) that fits ``graph``, in the JSON form
    ``manipulate`` takes, or None when none does (removing the only object, changing the
    predicate of a graph without relationships).

    Args:
        kind: the edit's ``op``.
        graph: the graph to edit.
        names, preds: the object and predicate names to draw new ones from.
        rng: draws everything.

    Raises:
        ValueError: for a kind not in ``EDIT_KINDS``.
    """
    n = len(graph.objects)
    if kind == "add":
        rel = ["new", rng.choice(preds), rng.randrange(n)]
        if rng.random() < 0.5:
            rel = [rel[2], rel[1], "new"]
        return {"op": "add", "object": rng.choice(names), "relationship": rel}
    if kind == "remove":
        return {"op": "remove", "index": rng.randrange(n)} if n > 1 else None
    if kind == "replace":
        i = rng.randrange(n)
        return {"op": "replace", "index": i,
                "object": rng.choice([c for c in names if c != graph.objects[i]])}
    if kind == "predicate":
        if not graph.relationships:
            return None
        k = rng.randrange(len(graph.relationships))
        old = graph.relationships[k][1]
        return {"op": "predicate", "relationship": k,
                "predicate": rng.choice([p for p in preds if p != old])}
    if kind == "move":
        return {"op": "move", "index": rng.randrange(n), "box": list(random_box(rng))}
    raise ValueError(f"unknown edit kind {kind!r}; expected one of {', '.join(EDIT_KINDS)}")


def nan_mean(xs: Sequence[float]) -> float:
    """Mean of the values that are not nan; nan if none is."""
    xs = [x for x in xs if not math.isnan(x)]
    return sum(xs) / len(xs) if xs else float("nan")


def two_seed_change(model: SG2ImgModel, graphs: Sequence[SceneGraph], seed: int) -> float:
    """Mean absolute pixel change in [0, 1] between the images of ``graphs`` drawn with
    ``seed`` and with ``seed + 1``: the scale of a change that keeps nothing."""
    a = generate(graphs, model, seed=seed).tensors
    b = generate(graphs, model, seed=seed + 1).tensors
    return ((a - b).abs().mean() / 2).item()


def edit_locality(model: SG2ImgModel, samples: Sequence[GraphSample], *, edits: int,
                  seed: int = 0) -> dict[str, Any]:
    """Pixel change inside and outside the edited region, for ``edits`` random edits of each
    kind in ``EDIT_KINDS``.

    The graphs are the samples in an order shuffled by ``seed`` (again from the start when
    they run out); each edit runs with the layout of the untouched objects frozen
    (``manipulate``'s default) and, as a baseline on the same region, with ``freeze=False``.

    Args:
        model: the model; the samples' ids index its vocabulary.
        samples: encoded graphs with the image node last (dataset items).
        edits: edits per kind.
        seed: draws the order, the edits and their noise.

    Returns:
        ``{"two_seed_change": float, "kinds": {kind: {"inside", "outside",
        "ratio_outside_inside", "inside_unfrozen", "outside_unfrozen", "region_fraction",
        "count"}}}``; the changes are means over the edits, in [0, 1].
    """
    vocab = model.vocab
    names = [c for c in vocab.user_object_names() if c != "other"]
    preds = vocab.user_pred_names()
    rng = random.Random(seed)
    indices = list(range(len(samples)))
    rng.shuffle(indices)

    t0 = time.perf_counter()
    rows: dict[str, dict[str, list[float]]] = {}
    for kind in EDIT_KINDS:
        acc: dict[str, list[float]] = {k: [] for k in ("inside", "outside", "inside_free",
                                                       "outside_free", "region")}
        j = 0
        while len(acc["inside"]) < edits:
            graph = SceneGraph.from_sample(samples[indices[j % len(indices)]], vocab)
            j += 1
            edit = random_edit(kind, graph, names, preds, rng)
            if edit is None:
                continue
            edit_seed = rng.randrange(2**31)
            frozen = manipulate(graph, [edit], model, seed=edit_seed)
            free = manipulate(graph, [edit], model, seed=edit_seed, freeze=False)
            inside, outside = frozen.change(0)
            # The baseline's region: the same edit's region in the frozen run.
            diff = (free.tensors[1] - free.tensors[0]).abs().mean(dim=0) / 2
            region = frozen.regions[0]
            inside_f = diff[region].mean().item() if region.any() else float("nan")
            outside_f = diff[~region].mean().item() if (~region).any() else float("nan")
            acc["inside"].append(inside)
            acc["outside"].append(outside)
            acc["inside_free"].append(inside_f)
            acc["outside_free"].append(outside_f)
            acc["region"].append(region.float().mean().item())
        rows[kind] = acc
        logger.info("%s: %d edits, %.1f s so far", kind, edits, time.perf_counter() - t0)

    graphs = [SceneGraph.from_sample(samples[indices[i % len(indices)]], vocab)
              for i in range(min(edits, len(indices)))]
    return {
        "two_seed_change": two_seed_change(model, graphs, seed),
        "kinds": {k: {"inside": nan_mean(v["inside"]), "outside": nan_mean(v["outside"]),
                      "ratio_outside_inside": nan_mean(v["outside"]) / nan_mean(v["inside"]),
                      "inside_unfrozen": nan_mean(v["inside_free"]),
                      "outside_unfrozen": nan_mean(v["outside_free"]),
                      "region_fraction": nan_mean(v["region"]),
                      "count": len(v["inside"])}
                  for k, v in rows.items()},
    }


def resample_locality(model: SG2ImgModel, graphs: Sequence[SceneGraph], objects: Sequence[int],
                      *, looks: int, seed: int = 0
                      ) -> tuple[dict[str, float], GenerationResult]:
    """Pixel change between a scene and ``looks`` other looks of one object per graph
    (``generate(..., resample_object=...)``), inside the object's box, outside it, and 3 px
    or more away from it.

    Args:
        model: a model with per-object noise (trained with ``model.renderer.noise=spatial``).
        graphs: the scene graphs.
        objects: per graph the index of the object to resample.
        looks: other looks per object.
        seed: the scenes' and the looks' noise; ``seed + 1`` gives the two-seed baseline.

    Returns:
        The figures ``{"seconds", "inside", "outside", "away", "box_share",
        "median_ratio_inside_away", "two_seed_change"}`` (changes in [0, 1], means over the
        looks; ``seconds`` is the time of the looks), and the generation: per graph
        ``looks + 1`` images, the scene (sample 0) first.

    Raises:
        GenerationError: if the model has no per-object noise.
    """
    t0 = time.perf_counter()
    res = generate(graphs, model, seed=seed, num_samples=looks + 1,
                   resample_object=[[o] for o in objects])
    H = res.tensors.shape[-1]
    rows: dict[str, list[float]] = {"inside": [], "outside": [], "away": [], "box_share": []}
    K = looks + 1
    for g, obj in enumerate(objects):
        scene = res.tensors[g * K]
        box = boxes_region([res.boxes[g * K][obj]], H, H)
        near = F.max_pool2d(box[None, None].float(), 7, 1, 3)[0, 0] > 0
        for s in range(1, K):
            diff = (res.tensors[g * K + s] - scene).abs().mean(dim=0) / 2          # (H, W)
            rows["inside"].append(diff[box].mean().item() if box.any() else float("nan"))
            rows["outside"].append(diff[~box].mean().item() if (~box).any() else float("nan"))
            rows["away"].append(diff[~near].mean().item() if (~near).any() else float("nan"))
            rows["box_share"].append(box.float().mean().item())
    seconds = time.perf_counter() - t0
    ratios = [i / w for i, w in zip(rows["inside"], rows["away"], strict=True)
              if i == i and w == w and w > 0]
    figures = {
        "seconds": round(seconds, 1),
        "inside": nan_mean(rows["inside"]), "outside": nan_mean(rows["outside"]),
        "away": nan_mean(rows["away"]), "box_share": nan_mean(rows["box_share"]),
        "median_ratio_inside_away": statistics.median(ratios) if ratios else float("nan"),
        "two_seed_change": two_seed_change(model, graphs, seed),
    }
    return figures, res

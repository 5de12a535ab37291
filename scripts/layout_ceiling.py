"""An upper bound on small-object layout recall (R@0.3) on the procedural scenes (issue 13).

How well can any layout predictor place small objects from the graph? This script scores an
*oracle* that knows much more than a model does, so its recall bounds what a model can reach:

* each small object's true width and height;
* the true boxes of every other object in the graph (a model has to predict them);
* for a sky thing (sun, cloud, bird, airplane, kite), that it lies inside the sky's true box,
  and the renderer's ceiling for suns and airplanes (``_place_thing``); for every other small
  object, its true vertical position.

Everything else about its place is what the renderer draws uniformly: the oracle's posterior
is uniform over the positions (on a 1/``--grid`` grid) where the object fits and satisfies every
geometric triple of the graph it takes part in, under the dataset's own rule
(``spatial_predicate``, box centres). It answers with the position that maximises the chance
of IoU > t with the truth (the IoU > t region of offsets convolved with the posterior). The
figure is the mean of that chance over the small objects (true area < 5 %), the oracle's
expected R@t. The graphs are the ones ``sg2img evaluate --seed S`` and
``scripts/eval_layout.py`` give a model (relationships drawn per item from torch's RNG
seeded with S).

Usage::

    python scripts/layout_ceiling.py --data data/shapes64 [--split val] [--grid 100]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

SKY_THINGS = {"sun", "cloud", "bird", "airplane", "kite"}
Y_CEILING = {"sun": 0.32, "airplane": 0.4}      # sg2img/data/shapes/templates.py::_place_thing
SMALL = 0.05


def hit_kernel(w: float, h: float, step: float, t: float):
    """(2a+1, 2b+1) bool: offsets (dx, dy) in grid cells at which two w x h boxes have IoU > t."""
    import numpy as np

    a, b = int(w / step), int(h / step)
    dx = np.abs(np.arange(-a, a + 1)) * step
    dy = np.abs(np.arange(-b, b + 1)) * step
    inter = np.clip(w - dx, 0, None)[None, :] * np.clip(h - dy, 0, None)[:, None]
    return inter / (2 * w * h - inter) > t


def oracle_hit(obj: int, boxes, names, triples, pred_names, grid: int, t: float) -> float:
    """Chance that the oracle's best box for object ``obj`` has IoU > t with its true box."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from sg2img.data.common import spatial_predicate

    x0, y0, x1, y1 = (float(v) for v in boxes[obj])
    w, h = x1 - x0, y1 - y0
    step = 1.0 / grid
    name = names[obj]
    if name in SKY_THINGS:
        sky = [i for i, n in enumerate(names) if n == "sky"]
        lo_x, lo_y, hi_x, hi_y = ((float(v) for v in boxes[sky[0]]) if sky
                                  else (0.0, 0.0, 1.0, 1.0))
        hi_y = min(hi_y, Y_CEILING.get(name, 1.0))
        ys = np.arange(lo_y, hi_y - h + 1e-9, step) if hi_y - h >= lo_y else np.array([y0])
    else:
        lo_x, hi_x = 0.0, 1.0
        ys = np.array([y0])
    xs = np.arange(lo_x, hi_x - w + 1e-9, step) if hi_x - w >= lo_x else np.array([x0])
    feasible = np.ones((len(ys), len(xs)), dtype=bool)
    rels = [(int(s), int(p), int(o)) for s, p, o in triples.tolist()
            if (int(s) == obj) != (int(o) == obj) and pred_names[int(p)] != "__in_image__"]
    for s, p, o in rels:
        other = o if s == obj else s
        ob = [float(v) for v in boxes[other]]
        oc = ((ob[0] + ob[2]) / 2, (ob[1] + ob[3]) / 2)
        for iy, yy in enumerate(ys):
            for ix, xx in enumerate(xs):
                if not feasible[iy, ix]:
                    continue
                cb = (xx, yy, xx + w, yy + h)
                cc = (xx + w / 2, yy + h / 2)
                got = (spatial_predicate(cb, ob, cc, oc) if s == obj
                       else spatial_predicate(ob, cb, oc, cc))
                feasible[iy, ix] = got == p
    if not feasible.any():          # the truth breaks a triple under box centres: no information
        feasible[:] = True
    kernel = hit_kernel(w, h, step, t).astype(float)
    if len(ys) == 1:
        kernel = kernel[kernel.shape[0] // 2:kernel.shape[0] // 2 + 1]
    kh, kw = kernel.shape
    mass = F.conv2d(torch.from_numpy(feasible).double()[None, None],
                    torch.from_numpy(kernel).double()[None, None], padding=(kh // 2, kw // 2))
    return float(min(1.0, float(mass.max()) / feasible.sum()))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--split", default="val")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--grid", type=int, default=100)
    p.add_argument("--threshold", type=float, default=0.3)
    args = p.parse_args(argv)

    import torch

    from sg2img.config import DataConfig
    from sg2img.data import build_dataset
    from sg2img.metrics import real_object_mask

    ds = build_dataset(DataConfig(dataset="coco", root=str(args.data)), args.split, 64, 16)
    ds.with_images = False
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(args.seed)
        items = [ds[i] for i in range(len(ds))]
    names_all = ds.vocab.object_names
    pred_names = ds.vocab.pred_names
    hits, per_class = [], {}
    for item in items:
        real = real_object_mask(item.objs)
        names = [names_all[int(c)] for c in item.objs]
        boxes = item.boxes.float()
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        for i in range(len(names)):
            if real[i] and area[i] < SMALL:
                hit = oracle_hit(i, boxes, names, item.triples, pred_names, args.grid,
                                 args.threshold)
                hits.append(hit)
                per_class.setdefault(names[i], []).append(hit)
    mean = sum(hits) / len(hits)
    print(f"oracle small-object R@{args.threshold} on {args.data} {args.split} (seed "
          f"{args.seed}, grid 1/{args.grid}): {mean:.3f} over {len(hits)} small objects")
    for name, v in sorted(per_class.items(), key=lambda kv: -len(kv[1])):
        print(f"  {name:10s} {len(v):4d} objects  {sum(v) / len(v):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

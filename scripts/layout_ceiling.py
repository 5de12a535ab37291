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

With ``--boxes-from CKPT`` it scores a second, narrower oracle: it only chooses the
*horizontal* place. Each small object keeps the size and vertical centre of the model's mode
box (``GALSGenerator.layout_boxes(..., layout_mode="mode")``), and the oracle knows every other
object's true box and the truth's size and height. Its posterior over the truth's horizontal
place is uniform over the grid positions where the truth fits (inside the sky's width for
sky things) and satisfies every geometric triple; it answers with the horizontal place of the
model's box that maximises the chance of IoU > t. Since the model's own horizontal place is one
of its choices, this bounds what any better horizontal placement could give that model's
boxes, with far more than the graph tells. The model's actual R@t is printed beside it.

Usage::

    python scripts/layout_ceiling.py --data data/shapes64 [--split val] [--grid 100]
    python scripts/layout_ceiling.py --data data/shapes64 \\
        --boxes-from sg2img/assets/default_model.pt
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


def sky_box(names, boxes) -> tuple[float, float, float, float]:
    """The sky's true box (x0, y0, x1, y1), or the whole image when the scene has no sky."""
    sky = [i for i, n in enumerate(names) if n == "sky"]
    return tuple(float(v) for v in boxes[sky[0]]) if sky else (0.0, 0.0, 1.0, 1.0)


def triple_check(obj: int, boxes, triples, pred_names):
    """``ok(x0, y0, w, h)``: whether ``obj`` placed at that box satisfies every geometric
    triple it takes part in, against the other objects' true boxes, under the dataset's rule
    (``spatial_predicate``, box centres)."""
    from sg2img.data.common import spatial_predicate

    rels = []
    for s, p, o in triples.tolist():
        s, p, o = int(s), int(p), int(o)
        if (s == obj) == (o == obj) or pred_names[p] == "__in_image__":
            continue
        ob = tuple(float(v) for v in boxes[o if s == obj else s])
        rels.append((s == obj, p, ob, ((ob[0] + ob[2]) / 2, (ob[1] + ob[3]) / 2)))

    def ok(x0: float, y0: float, w: float, h: float) -> bool:
        cb, cc = (x0, y0, x0 + w, y0 + h), (x0 + w / 2, y0 + h / 2)
        return all((spatial_predicate(cb, ob, cc, oc) if subject
                    else spatial_predicate(ob, cb, oc, cc)) == p
                   for subject, p, ob, oc in rels)

    return ok


def oracle_hit(obj: int, boxes, names, triples, pred_names, grid: int, t: float) -> float:
    """Chance that the oracle's best box for object ``obj`` has IoU > t with its true box."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    x0, y0, x1, y1 = (float(v) for v in boxes[obj])
    w, h = x1 - x0, y1 - y0
    step = 1.0 / grid
    name = names[obj]
    if name in SKY_THINGS:
        lo_x, lo_y, hi_x, hi_y = sky_box(names, boxes)
        hi_y = min(hi_y, Y_CEILING.get(name, 1.0))
        ys = np.arange(lo_y, hi_y - h + 1e-9, step) if hi_y - h >= lo_y else np.array([y0])
    else:
        lo_x, hi_x = 0.0, 1.0
        ys = np.array([y0])
    xs = np.arange(lo_x, hi_x - w + 1e-9, step) if hi_x - w >= lo_x else np.array([x0])
    ok = triple_check(obj, boxes, triples, pred_names)
    feasible = np.array([[ok(xx, yy, w, h) for xx in xs] for yy in ys], dtype=bool)
    if not feasible.any():          # the truth breaks a triple under box centres: no information
        feasible[:] = True
    kernel = hit_kernel(w, h, step, t).astype(float)
    if len(ys) == 1:
        kernel = kernel[kernel.shape[0] // 2:kernel.shape[0] // 2 + 1]
    kh, kw = kernel.shape
    mass = F.conv2d(torch.from_numpy(feasible).double()[None, None],
                    torch.from_numpy(kernel).double()[None, None], padding=(kh // 2, kw // 2))
    return float(min(1.0, float(mass.max()) / feasible.sum()))


def feasible_x(obj: int, w: float, y0: float, h: float, boxes, names, triples, pred_names,
               grid: int):
    """Grid x0 positions where a w x h box at height y0 fits (inside the sky's width for sky
    things) and satisfies every geometric triple of ``obj`` with the other true boxes.

    Returns:
        (xs, feasible): (P,) float positions and (P,) bool; all True when no position
        satisfies every triple (the truth itself breaks one under box centres).
    """
    import numpy as np

    lo_x, hi_x = 0.0, 1.0
    if names[obj] in SKY_THINGS:
        lo_x, _, hi_x, _ = sky_box(names, boxes)
    step = 1.0 / grid
    xs = np.arange(lo_x, hi_x - w + 1e-6, step)     # 1e-6: boxes come as float32
    if not len(xs):
        xs = np.array([float(boxes[obj][0])])
    ok = triple_check(obj, boxes, triples, pred_names)
    feasible = np.array([ok(x, y0, w, h) for x in xs], dtype=bool)
    if not feasible.any():
        feasible[:] = True
    return xs, feasible


def horizontal_oracle_hit(obj: int, pred_box, boxes, names, triples, pred_names, grid: int,
                          t: float) -> tuple[float, float]:
    """(the horizontal oracle's chance of IoU > t, the chance for the model's own place)
    for object ``obj`` whose predicted box is ``pred_box`` (see the module docstring)."""
    import torch
    from torchvision.ops import box_iou

    x0, y0, x1, y1 = (float(v) for v in boxes[obj])
    w, h = x1 - x0, y1 - y0
    xs, feasible = feasible_x(obj, w, y0, h, boxes, names, triples, pred_names, grid)
    truths = torch.tensor([[x, y0, x + w, y0 + h] for x in xs[feasible]], dtype=torch.float64)
    px0, py0, px1, py1 = (float(v) for v in pred_box)
    pw = px1 - px0
    step = 1.0 / grid
    cands = [px0] + [k * step for k in range(int((1.0 - pw) / step) + 1)]
    cand = torch.tensor([[c, py0, c + pw, py1] for c in cands], dtype=torch.float64)
    chance = (box_iou(cand, truths) > t).double().mean(dim=1)        # (candidates,)
    return float(chance.max()), float(chance[0])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--split", default="val")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--grid", type=int, default=100)
    p.add_argument("--threshold", type=float, default=0.3)
    p.add_argument("--boxes-from", type=Path, default=None, metavar="CKPT",
                   help="score the horizontal-only oracle on this model's mode boxes")
    args = p.parse_args(argv)
    if args.boxes_from is not None:
        return horizontal_main(args)

    import torch

    from sg2img.config import DataConfig
    from sg2img.data import build_dataset
    from sg2img.eval import real_object_mask

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


def horizontal_main(args) -> int:
    """``--boxes-from``: the horizontal-only oracle on a model's mode layout."""
    from dataclasses import replace

    import torch

    from sg2img.checkpoint import build_generator
    from sg2img.data import build_dataset
    from sg2img.eval import box_area_fraction, real_object_mask
    from sg2img.scene_graph import collate_graphs

    gen, cfg, vocab = build_generator(args.boxes_from)
    ds = build_dataset(replace(cfg.data, root=str(args.data)), args.split,
                       cfg.model.image_size, cfg.model.mask_size)
    ds.with_images = False
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(args.seed)   # the graphs scripts/eval_layout.py scores
        items = [ds[i] for i in range(len(ds))]
    batch = collate_graphs(items)
    batch = replace(batch, box_given=torch.zeros_like(batch.box_given))
    gen.eval()
    with torch.no_grad():
        pred = gen.layout_boxes(batch, layout_mode="mode")
    names_all, pred_names = vocab.object_names, vocab.pred_names
    best, own, per_class = [], [], {}
    start = 0
    for item in items:
        n = len(item.objs)
        real = real_object_mask(item.objs)
        small = box_area_fraction(item.boxes.float()) < SMALL
        names = [names_all[int(c)] for c in item.objs]
        for i in range(n):
            if real[i] and small[i]:
                b, o = horizontal_oracle_hit(i, pred[start + i], item.boxes.float(), names,
                                             item.triples, pred_names, args.grid,
                                             args.threshold)
                best.append(b)
                own.append(o)
                per_class.setdefault(names[i], []).append((b, o))
        start += n
    mean = sum(best) / len(best)
    print(f"horizontal-only oracle on {args.boxes_from}'s mode boxes, small-object "
          f"R@{args.threshold} on {args.data} {args.split} (seed {args.seed}, grid "
          f"1/{args.grid}): {mean:.3f} over {len(best)} small objects; the model's own "
          f"horizontal place under the same posterior: {sum(own) / len(own):.3f}")
    for name, v in sorted(per_class.items(), key=lambda kv: -len(kv[1])):
        print(f"  {name:10s} {len(v):4d} objects  oracle {sum(b for b, _ in v) / len(v):.3f}"
              f"  model {sum(o for _, o in v) / len(v):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

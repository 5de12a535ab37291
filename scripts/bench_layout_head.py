"""What the layout head costs: regress vs sample (mode / sample, with and without relation checks).

Times, on the same batch of real graphs and interleaved run by run, (a) the layout alone
(``GALSGenerator.layout_boxes``: graph network + box head) and (b) the whole generator forward
that ``generate()`` runs, and (c) one layout-stage training step (``layout_loss_terms`` +
backward + Adam). Prints medians over ``--repeats`` rounds and the ratios to the regress head.
Usage::

    python scripts/bench_layout_head.py --regress sg2img/assets/default_model.pt \
        --sample runs/layout/sample_k5_seq.pt --data data/shapes64 --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--regress", type=Path, required=True)
    p.add_argument("--sample", type=Path, required=True)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)

    import torch

    from sg2img.benchmark import set_threads
    from sg2img.checkpoint import build_generator
    from sg2img.data import build_dataset
    from sg2img.objectives import layout_loss_terms, weighted_total
    from sg2img.scene_graph import collate_graphs

    set_threads(args.threads)
    reg, cfg, _ = build_generator(args.regress)
    smp, scfg, _ = build_generator(args.sample)
    nochk, _, _ = build_generator(args.sample)
    nochk.pred_codes = None
    val = build_dataset(replace(cfg.data, root=str(args.data)), "val",
                        cfg.model.renderer.image_size,
                        cfg.model.layout.mask_size)
    val.with_images = False
    batch = collate_graphs([val[i] for i in range(args.batch_size)])
    batch = replace(batch, box_given=torch.zeros_like(batch.box_given))
    variants = {"regress": (reg, "mode"), "sample/mode": (smp, "mode"),
                "sample/sample": (smp, "sample"), "sample/mode, no checks": (nochk, "mode")}

    def layout(gen, mode):
        with torch.no_grad():
            gen.layout_boxes(batch, layout_mode=mode, rng=torch.Generator().manual_seed(0))

    def forward(gen, mode):
        with torch.no_grad():
            gen(batch, layout_mode=mode, rng=torch.Generator().manual_seed(0))

    opts = {}

    def train_step(gen, cfg_loss):
        gen.train()
        opt = opts.setdefault(id(gen), torch.optim.Adam(gen.parameters(), lr=0.0))
        loss = weighted_total(layout_loss_terms(gen, batch, cfg_loss), cfg_loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
        gen.eval()

    times: dict[str, list[float]] = {}
    for r in range(args.repeats + 1):                    # round 0 warms up
        for name, (gen, mode) in variants.items():
            for what, fn in (("layout", lambda g=gen, m=mode: layout(g, m)),
                             ("forward", lambda g=gen, m=mode: forward(g, m))):
                t = time.perf_counter()
                fn()
                if r:
                    times.setdefault(f"{what}: {name}", []).append(time.perf_counter() - t)
        for name, gen, c in (("regress", reg, cfg.loss), ("sample", smp, scfg.loss)):
            t = time.perf_counter()
            train_step(gen, c)
            if r:
                times.setdefault(f"layout-stage step: {name}", []).append(
                    time.perf_counter() - t)
    print(f"{args.batch_size} val graphs, {args.threads} thread(s), median of {args.repeats} "
          f"interleaved rounds")
    for key, v in times.items():
        what = key.split(":")[0]
        base = statistics.median(times[f"{what}: regress"])
        med = statistics.median(v)
        print(f"{key:40s} {med * 1000:8.1f} ms   x{med / base:.2f} of regress")
    return 0


if __name__ == "__main__":
    sys.exit(main())

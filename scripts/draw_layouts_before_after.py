"""Draw the demo graphs' layouts before and after the layout head change (issue 13).

One row per graph: the "before" model's layout, then the "after" model's mode layout and
``--samples`` sampled layouts (seeds 1, 2, ...), drawn with ``sg2img.vis.draw_layout``; the
generated images go in a second sheet row under each layout row.
Usage::

    python scripts/draw_layouts_before_after.py --before sg2img/assets/default_model.pt \
        --after runs/layout/sample_k5_seq.pt --graphs examples/scenes.json --index 0 1 \
        --out docs/reports/layout/layouts_before_after.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", type=Path, required=True)
    p.add_argument("--after", type=Path, required=True)
    p.add_argument("--before-label", default="before (bundled, regress)",
                   help="title of the first column (the --before model's mode layout)")
    p.add_argument("--graphs", type=Path, default=Path("examples/scenes.json"))
    p.add_argument("--index", type=int, nargs="+", default=[0, 1])
    p.add_argument("--samples", type=int, default=3)
    p.add_argument("--size", type=int, default=192)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)

    from sg2img import vis
    from sg2img.api import generate, load_model
    from sg2img.scene_graph import load_scene_graphs

    graphs = load_scene_graphs(args.graphs)
    before = load_model(args.before, device="cpu")
    after = load_model(args.after, device="cpu")
    rows, row_titles = [], []
    for i in args.index:
        g = graphs[i]
        runs = [("before", generate(g, before, seed=0, layout_mode="mode")),
                ("after: mode", generate(g, after, seed=0, layout_mode="mode"))]
        runs += [(f"after: sample, seed {s}", generate(g, after, seed=s, layout_mode="sample"))
                 for s in range(1, args.samples + 1)]
        rows.append([r.draw_layout(0, args.size) for _, r in runs])
        rows.append([r.images[0].resize((args.size, args.size)) for _, r in runs])
        names = ", ".join(g.objects)
        row_titles += [f"graph {i}: {names} -- layouts", f"graph {i}: images"]
    titles = [args.before_label, "after: mode", *[f"after: sample (seed {s})"
                                                             for s in range(1, args.samples + 1)]]
    sheet = vis.make_sheet(rows, titles, row_titles=row_titles, cell_height=args.size)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Before / after: two models draw the same graphs with the same seeds, side by side.

One row per graph: the first model's samples, then the second's, each drawn by ``generate()``
as a user gets them (sample k of every graph under ``--seed``). The same seed gives both models
the same noise draws (the seed rule), so what differs is the models.

Usage::

    python scripts/compare_models_sheet.py examples/sheep.json examples/scenes.json \
        --before second_edition.pt --after sg2img/assets/default_model.pt \
        --samples 4 --out docs/reports/bundled-model/before_after.png
    python scripts/compare_models_sheet.py examples/scenes.json --before default \
        --after default-128 --names "64 px, upscaled" "128 px" --image-size 128 --cell 256 \
        --samples 2 --out docs/reports/model-128/64_vs_128.png
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("graphs", nargs="+", type=Path, help="scene graph JSON files")
    p.add_argument("--before", required=True,
                   help="the first model (a checkpoint, or a bundled model's name)")
    p.add_argument("--after", required=True, help="the second model")
    p.add_argument("--names", nargs=2, default=("before", "after"), metavar=("A", "B"),
                   help="column titles (short: a title wider than its cell is cut)")
    p.add_argument("--samples", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cell", type=int, default=128, help="cell height in pixels")
    p.add_argument("--image-size", type=int, default=None, metavar="PX",
                   help="both models' pictures at this size, as generate(image_size=PX) "
                        "gives them (e.g. a 64 px model upscaled beside a 128 px one)")
    p.add_argument("--out", type=Path, required=True, help="the sheet (PNG)")
    a = p.parse_args(argv)

    from sg2img.api import generate, load_model, load_scene_graphs
    from sg2img.vis import make_sheet

    graphs = [g for path in a.graphs for g in load_scene_graphs(path)]
    drawn = [generate(graphs, load_model(ckpt), seed=a.seed, num_samples=a.samples,
                      image_size=a.image_size) for ckpt in (a.before, a.after)]
    rows = [[result.images[i * a.samples + k] for result in drawn for k in range(a.samples)]
            for i in range(len(graphs))]
    titles = [f"{name} {k}" for name in a.names for k in range(a.samples)]
    row_titles = [", ".join(g.object_labels()) for g in graphs]
    sheet = make_sheet(rows, titles, row_titles=row_titles, cell_height=a.cell)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(a.out)
    print(f"wrote {a.out}: {len(graphs)} graphs x {a.samples} samples, seed {a.seed}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

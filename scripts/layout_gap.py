"""Score a model's pictures from true, predicted and mixed layouts (where the gap is).

    python scripts/layout_gap.py --checkpoint sg2img/assets/default_model.pt \
        --data data/shapes64 --out docs/reports/layout-gap/gap

writes ``OUT.json`` (every metric, per layout source and seed) and ``OUT.md`` (the table).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sg2img.eval.layout_sources import LAYOUT_SOURCES, layout_gap, layout_gap_table


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", default="default",
                   help="a checkpoint file or a bundled model's name (default, default-128)")
    p.add_argument("--data", required=True, help="procedural dataset folder")
    p.add_argument("--out", required=True, help="path stem of the .json and .md written")
    p.add_argument("--sources", nargs="+", default=list(LAYOUT_SOURCES),
                   choices=list(LAYOUT_SOURCES))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    p.add_argument("--metrics", nargs="+",
                   default=["fid", "obj_acc", "attr_acc", "streaks", "layout"])
    p.add_argument("--num-graphs", type=int, default=None, help="first N val graphs (all)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="model settings changed without changing the weights, e.g. "
                        "model.layout.sample_temperature=0.7")
    p.add_argument("--upscale-to", type=int, default=None, metavar="SIZE",
                   help="score the pictures resized to SIZE, against --data at SIZE (a 64 px "
                        "model beside a 128 px one)")
    a = p.parse_args()
    report = layout_gap(a.checkpoint, a.data, a.sources, a.seeds, a.metrics,
                        num_graphs=a.num_graphs, progress=True, overrides=a.set,
                        upscale_to=a.upscale_to)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Appended, not with_suffix: a stem such as "t0.7" keeps its dot.
    Path(f"{out}.json").write_text(json.dumps(report, indent=1))
    table = layout_gap_table(report)
    Path(f"{out}.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()

"""One scene graph, one noise, one layout: each colourable object in each of its colours.

Generates a graph, then recolours one object step by step with the ``attributes`` edit
(``sg2img.manipulation.manipulate``: same noise, every box and mask frozen), for a street with
a car, a street with a bus and a beach with a person (boxes pinned); writes one sheet, a row
per object with the layout drawing (labelled with the attributes) and the images, and prints
the attribute classifier's reading of every recoloured object::

    python scripts/attribute_figure.py runs/attr/export.pt --seed 0 \
        --out docs/reports/attributes/attributes.png

With ``--data DIR`` the scenes are instead the first validation items of DIR that hold a car, a
bus and a person, each rendered from its ground-truth layout (boxes and masks, as ``sg2img
evaluate --gt-layout`` does) once per colour with the same noise; the hand-made scenes above
ask for unusually large objects and masks the model predicts::

    python scripts/attribute_figure.py runs/attr/export.pt --data data/shapes64 \
        --out docs/reports/attributes/attributes.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

# Boxes are pinned so that the picture shows colours, not a short run's layout guesses.
STREET = {"relationships": [[0, "above", 1], [1, "above", 2], [3, "inside", 2]]}
SCENES = [
    ({**STREET, "objects": ["sky", "wall", "road", "car"],
      "boxes": [[0, 0, 1, 0.35], [0, 0.2, 1, 0.62], [0, 0.6, 1, 1], [0.25, 0.62, 0.75, 0.88]]},
     3, ["red", "blue", "white", "green", "black"]),
    ({**STREET, "objects": ["sky", "wall", "road", "bus"],
      "boxes": [[0, 0, 1, 0.35], [0, 0.2, 1, 0.62], [0, 0.6, 1, 1], [0.1, 0.52, 0.9, 0.88]]},
     3, ["yellow", "red", "blue"]),
    ({**STREET, "objects": ["sky", "water", "sand", "person"],
      "boxes": [[0, 0, 1, 0.4], [0, 0.4, 1, 0.6], [0, 0.6, 1, 1], [0.42, 0.5, 0.58, 0.92]]},
     3, ["red", "blue", "green", "orange", "purple"]),
]


def val_rows(root: Path, model, clf, classes: list[str], seed: int):
    """For the first validation item holding each class: its ground-truth layout (boxes and
    masks, as ``sg2img evaluate --gt-layout`` renders) drawn once per colour of that class,
    same noise. Yields (layout drawing, images (K, 3, H, W), object index, box, colours)."""
    from dataclasses import replace

    from sg2img.data import build_dataset
    from sg2img.scene_graph import collate_graphs
    from sg2img.vis import draw_layout

    data_cfg = replace(model.config.data, root=str(root))
    val = build_dataset(data_cfg, "val", model.image_size, model.mask_size)
    vocab, table = val.vocab, clf.class_attributes()
    for name in classes:
        item = next(val[i] for i in range(len(val))
                    if name in [vocab.object_name(int(c)) for c in val[i].objs])
        index = [vocab.object_name(int(c)) for c in item.objs].index(name)
        colours = list(table[name])
        images = []
        for colour in colours:
            attrs = item.attributes.clone()
            attrs[index] = 0
            attrs[index, vocab.attribute_names.index(colour)] = 1
            batch = collate_graphs([replace(item, attributes=attrs)])
            with torch.no_grad():
                out = model.generator(batch, use_gt_layout=True,
                                      rng=torch.Generator().manual_seed(seed))
            images.append(out.images)
        labels = [vocab.object_name(int(c)) for c in item.objs[:-1]]
        labels[index] = f"{name} (recoloured)"
        drawing = draw_layout(item.boxes[:-1], item.masks[:-1], labels, 128,
                              class_ids=item.objs[:-1].tolist())
        yield drawing, torch.cat(images), index, item.boxes[index], colours


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="a model trained with attributes (export or checkpoint)")
    p.add_argument("--out", type=Path, default=Path("attributes.png"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", type=Path, default=None,
                   help="take the scenes from this dataset's validation split (boxes pinned)")
    p.add_argument("--classes", nargs="+", default=["car", "bus", "person"])
    args = p.parse_args(argv)

    from sg2img.api import load_model
    from sg2img.eval import crop_boxes, load_shipped_net
    from sg2img.manipulation import manipulate
    from sg2img.vis import make_sheet

    model = load_model(args.checkpoint, "cpu")
    clf = load_shipped_net("AttributeClassifier")
    labels = clf.labels()
    rows, titles, hits, total = [], [], 0, 0
    if args.data is not None:
        from sg2img.vis import to_pil

        for drawing, images, _index, box, colours in val_rows(args.data, model, clf,
                                                             args.classes, args.seed):
            with torch.no_grad():
                crops = crop_boxes(images, box[None].expand(len(colours), 4),
                                   torch.arange(len(colours)), clf.crop_size)
                read = [labels[i] for i in clf(crops).argmax(1).tolist()]
            hits += sum(c == r for c, r in zip(colours, read, strict=True))
            total += len(colours)
            rows.append([drawing, *to_pil(images)])
            titles.append(", ".join(f"{c} ({'ok' if c == r else 'read ' + r})"
                                    for c, r in zip(colours, read, strict=True)))
        make_sheet(rows, row_titles=titles, cell_height=128, pad=4).save(args.out)
        print(f"classifier agrees on {hits}/{total}; wrote {args.out}")
        return 0
    for graph, index, colours in SCENES:
        attrs = [[] for _ in graph["objects"]]
        attrs[index] = [colours[0]]
        edits = [{"op": "attributes", "index": index, "attributes": [c]} for c in colours[1:]]
        res = manipulate({**graph, "attributes": attrs}, edits, model, seed=args.seed)
        box = res.boxes[0][index][None]
        with torch.no_grad():
            crops = crop_boxes(res.tensors, box.expand(len(colours), 4),
                               torch.arange(len(colours)), clf.crop_size)
            read = [labels[i] for i in clf(crops).argmax(1).tolist()]
        name = graph["objects"][index]
        for c, r in zip(colours, read, strict=True):
            print(f"{c} {name}: classifier reads {r}")
            hits += c == r
            total += 1
        rows.append([res.draw_layout(0, 128), *res.images])
        titles.append(f"{name}: " + ", ".join(f"{c} ({'ok' if c == r else 'read ' + r})"
                                               for c, r in zip(colours, read, strict=True)))
    make_sheet(rows, row_titles=titles, cell_height=128, pad=4).save(args.out)
    print(f"classifier agrees on {hits}/{total}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Can an object's colour be read from the graph network's object vectors? A linear probe.

Encodes the first ``--graphs`` training graphs with a checkpoint's graph network, keeps the
objects the attribute classifier judges (colourable class, exactly one colour), fits a linear
classifier on 70 % of them (standardised vectors, Adam, 300 full-batch steps, seed 0) and
prints its colour accuracy on the other 30 %. ``--init`` probes a freshly initialised model of
the same config instead: what the graph network passes on before any training::

    python scripts/probe_attributes.py runs/attr/export.pt --data /work/ext/shapes64_attr
    python scripts/probe_attributes.py runs/attr/export.pt --data /work/ext/shapes64_attr --init
"""

from __future__ import annotations

import argparse
import sys

import torch
import torch.nn.functional as F


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("--data", required=True, help="procedural dataset with attributes")
    p.add_argument("--graphs", type=int, default=3000)
    p.add_argument("--init", action="store_true", help="probe a freshly initialised model")
    args = p.parse_args(argv)

    from sg2img.checkpoint import build_generator
    from sg2img.config import DataConfig
    from sg2img.data import build_dataset
    from sg2img.eval import load_shipped_net
    from sg2img.model import GALSGenerator
    from sg2img.scene_graph import collate_graphs

    gen, cfg, vocab = build_generator(args.checkpoint)
    torch.manual_seed(0)
    if args.init:
        gen = GALSGenerator(cfg.model, vocab.num_objects, vocab.num_preds,
                            vocab.num_attributes).eval()
    ds = build_dataset(DataConfig(root=args.data), "train", cfg.model.image_size,
                       cfg.model.mask_size)
    ds.with_images = False
    clf = load_shipped_net("AttributeClassifier")
    labels, table = clf.labels(), clf.class_attributes()
    cols = torch.tensor([vocab.attribute_idx(a) for a in labels])
    xs, ys = [], []
    with torch.no_grad():
        for lo in range(0, min(args.graphs, len(ds)), 100):
            b = collate_graphs([ds[i] for i in range(lo, min(lo + 100, args.graphs, len(ds)))])
            vecs, _ = gen.encode_graph(b)                                     # (O, D)
            hot = b.attributes[:, cols] > 0.5
            ok = torch.tensor([vocab.object_name(o) in table for o in b.objs.tolist()])
            ok &= hot.sum(dim=1) == 1
            xs.append(vecs[ok])
            ys.append(hot[ok].float().argmax(dim=1))
    x, y = torch.cat(xs), torch.cat(ys)
    n = int(0.7 * len(x))
    x = (x - x[:n].mean(0)) / (x[:n].std(0) + 1e-6)
    probe = torch.nn.Linear(x.shape[1], len(labels))
    opt = torch.optim.Adam(probe.parameters(), lr=1e-2)
    for _ in range(300):
        loss = F.cross_entropy(probe(x[:n]), y[:n])
        opt.zero_grad()
        loss.backward()
        opt.step()
    acc = float((probe(x[n:]).argmax(dim=1) == y[n:]).float().mean())
    what = "fresh init of its config" if args.init else "trained"
    print(f"{args.checkpoint} ({what}): linear-probe colour accuracy {acc:.3f} on "
          f"{len(x) - n} held-out objects ({n} to fit)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

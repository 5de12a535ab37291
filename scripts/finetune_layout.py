"""Fine-tune the scene-graph-to-layout branch of a trained model on boxes and masks alone.

Superseded by ``sg2img train --set train.stage=layout`` (the same losses through the training
loop, with its checkpoints, exact resume and exports). Kept because the figures in
docs/layout_head.md were measured with this loop (with its head-only warm-up for a new box
head, which the stage does not have yet); it goes once the stage's own figures replace them.

Why: in joint GAN training the graph network learns the layout slowly (one small box term at
the generator's learning rate), and on the procedural scenes the bundled model's boxes ended up
no better than putting each object at its class's mean box. Trained on layouts alone, the same
graph network clearly beats that baseline (see the README). This script is that second stage:

* trained: object/predicate embeddings, the graph convolution, the box and mask heads;
* frozen: everything that renders images;
* loss: ``sg2img.objectives.layout_loss_terms``: ``box_weight * L1(boxes)`` for a "regress"
  layout head or ``box_nll_weight * NLL(true box | mixture)`` for a "sample" head, plus
  ``mask_weight * BCE(masks)`` (the config's weights) and
  ``anchor * MSE(object vectors, the original model's)`` so that the object vectors, which the
  generator also reads (the embedding layout), stay close to what it was trained on;
* ``--layout-head sample`` swaps the box head for the mixture head (``sg2img.layout_head``),
  trained from scratch while the graph network starts from the checkpoint;
* no image is read, so a step is cheap (about 30 ms for 64 graphs on one CPU core).

Writes an inference export (EMA-free: the weights at the last step) that records the stage.
Usage (what made the bundled model)::

    python scripts/finetune_layout.py runs/small64/export.pt --data data/shapes64 \
        --steps 2500 --anchor 1.0 --out runs/small64/export_layout_a1.pt

The stochastic head on top of the bundled model (issue 13)::

    python scripts/finetune_layout.py sg2img/assets/default_model.pt --data data/shapes64 \
        --layout-head sample --components 5 --steps 4000 --out runs/layout/sample_k5_seq.pt
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

LAYOUT_MODULES = ("obj_embeddings", "pred_embeddings", "gconv", "box_head", "mask_head")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path, help="training checkpoint or inference export")
    p.add_argument("--data", type=Path, required=True, help="dataset (training split is used)")
    p.add_argument("--out", type=Path, required=True, help="inference export to write")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--anchor", type=float, default=1.0,
                   help="weight of the pull towards the original object vectors")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--anchor-checkpoint", type=Path, default=None,
                   help="model whose object vectors the anchor pulls towards (default: the "
                        "starting checkpoint; give the bundled model when continuing a run)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--layout-head", choices=("regress", "sample"), default=None,
                   help="box head to train (default: the checkpoint's)")
    p.add_argument("--components", type=int, default=None,
                   help="mixture components of a 'sample' head (default: the config's)")
    p.add_argument("--independent", action="store_true",
                   help="'sample' head: draw every object independently (no sequential pass)")
    p.add_argument("--save-every", type=int, default=0,
                   help="also write the export as <out stem>_step<k>.pt every k steps")
    p.add_argument("--head-warmup", type=int, default=300,
                   help="steps at the start that train only a new box head (the graph network "
                        "stays put until the fresh head's first large gradients have passed)")
    args = p.parse_args(argv)

    import torch

    from sg2img import metrics as M
    from sg2img.checkpoint import (
        build_generator,
        export_inference,
        load_checkpoint,
        unwrap_state_dict,
    )
    from sg2img.data import build_dataset
    from sg2img.model import GALSGenerator
    from sg2img.objectives import layout_loss_terms, weighted_total
    from sg2img.scene_graph import collate_graphs

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    source = load_checkpoint(args.checkpoint)
    original, cfg, vocab = build_generator(source)
    source_head = cfg.model.layout_head
    if args.anchor_checkpoint is not None:
        original, _, anchor_vocab = build_generator(args.anchor_checkpoint)
        if tuple(anchor_vocab.object_names) != tuple(vocab.object_names):
            raise SystemExit(f"{args.anchor_checkpoint} has another vocabulary")
    model_over: dict = {}
    if args.layout_head is not None:
        model_over["model.layout_head"] = args.layout_head
    if args.components is not None:
        model_over["model.layout_components"] = args.components
    if args.independent:
        model_over["model.layout_sequential"] = False
    cfg = cfg.with_overrides({**model_over, "loss.layout_anchor_weight": args.anchor})
    gen = GALSGenerator(cfg.model, vocab.num_objects, vocab.num_preds,
                        pred_names=vocab.pred_names)
    state = unwrap_state_dict(source.get("generator_ema") or source["generator"])
    fresh_head = cfg.model.layout_head != source_head or bool(model_over)
    if fresh_head:
        # A new kind of box head starts from scratch; everything else from the checkpoint.
        state = {k: v for k, v in state.items() if not k.startswith("box_head.")}
        missing, unexpected = gen.load_state_dict(state, strict=False)
        if unexpected or any(not k.startswith("box_head.") for k in missing):
            raise SystemExit(f"{args.checkpoint} does not fit: missing {missing}, "
                             f"unexpected {unexpected}")
    else:
        gen.load_state_dict(state)
    data_cfg = replace(cfg.data, root=str(args.data))
    train = build_dataset(data_cfg, "train", cfg.model.image_size, cfg.model.mask_size)
    val = build_dataset(data_cfg, "val", cfg.model.image_size, cfg.model.mask_size)
    train.with_images = val.with_images = False
    if tuple(train.vocab.object_names) != tuple(vocab.object_names):
        raise SystemExit(f"{args.data} has another vocabulary than {args.checkpoint}")
    val_batch = collate_graphs([val[i] for i in range(len(val))])

    for param in gen.parameters():
        param.requires_grad_(False)
    params = [q for name in LAYOUT_MODULES for q in getattr(gen, name).parameters()]
    for q in params:
        q.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=args.lr)

    val_batch.box_given = torch.zeros_like(val_batch.box_given)   # nothing pinned

    def recall() -> dict:
        gen.eval()
        with torch.no_grad():
            boxes = gen.layout_boxes(val_batch, layout_mode="mode")
        keep = M.real_object_mask(val_batch.objs)
        gen.train()
        return M.layout_recall(boxes[keep], val_batch.boxes[keep])

    start = recall()
    print(f"step 0: {start}", flush=True)
    g = torch.Generator().manual_seed(args.seed)
    t0 = time.time()
    gen.train()
    for step in range(1, args.steps + 1):
        idx = torch.randint(0, len(train), (args.batch_size,), generator=g).tolist()
        batch = collate_graphs([train[i] for i in idx])
        with torch.no_grad():
            anchor_vecs, _ = original.encode_graph(batch)
        terms = layout_loss_terms(gen, batch, cfg.loss, anchor_vecs=anchor_vecs, rng=g)
        loss = weighted_total(terms, cfg.loss)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if fresh_head and step <= args.head_warmup:
            for name in LAYOUT_MODULES:
                if name != "box_head":
                    for q in getattr(gen, name).parameters():
                        q.grad = None
        opt.step()
        if args.save_every and step % args.save_every == 0 and step < args.steps:
            snap = args.out.with_name(f"{args.out.stem}_step{step}{args.out.suffix}")
            export_inference(snap, cfg, vocab, gen, step=source.get("step"))
        if step % args.eval_every == 0 or step == args.steps:
            parts = " ".join(f"{k} {v.item():.4f}" for k, v in terms.items())
            print(f"step {step}: loss {loss.item():.4f} ({parts}) {recall()} "
                  f"({time.time() - t0:.0f} s)", flush=True)
    gen.eval()
    final = recall()
    export_inference(args.out, cfg, vocab, gen, step=source.get("step"))
    ckpt = load_checkpoint(args.out)
    ckpt["layout_finetune"] = {
        "source": str(args.checkpoint), "steps": args.steps, "batch_size": args.batch_size,
        "lr": args.lr, "anchor": args.anchor, "seed": args.seed,
        "layout_head": cfg.model.layout_head, "head_warmup": args.head_warmup,
        "anchor_checkpoint": str(args.anchor_checkpoint or args.checkpoint),
        "val_recall_before": start, "val_recall_after": final,
        "command": "python " + " ".join(["scripts/finetune_layout.py", *(argv or sys.argv[1:])]),
    }
    from sg2img.checkpoint import save_checkpoint

    save_checkpoint(args.out, ckpt)
    print(f"wrote {args.out}: val R@0.5 {start['R@0.5']:.4f} -> {final['R@0.5']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

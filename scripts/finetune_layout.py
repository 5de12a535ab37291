"""Fine-tune the scene-graph-to-layout branch of a trained model on boxes and masks alone.

Why: in joint GAN training the graph network learns the layout slowly (one small box term at
the generator's learning rate), and on the procedural scenes the bundled model's boxes ended up
no better than putting each object at its class's mean box. Trained on layouts alone, the same
graph network clearly beats that baseline (see the README). This script is that second stage:

* trained: object/predicate embeddings, the graph convolution, the box and mask heads;
* frozen: everything that renders images;
* loss: ``box_weight * L1(boxes) + mask_weight * BCE(masks)`` (the config's weights), plus
  ``anchor * MSE(object vectors, the original model's)`` so that the object vectors, which the
  generator also reads (the embedding layout), stay close to what it was trained on;
* no image is read, so a step is cheap (about 30 ms for 64 graphs on one CPU core).

Writes an inference export (EMA-free: the weights at the last step) that records the stage.
Usage (what made the bundled model)::

    python scripts/finetune_layout.py runs/small64/export.pt --data data/shapes64 \
        --steps 2500 --anchor 1.0 --out runs/small64/export_layout_a1.pt
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
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--eval-every", type=int, default=500)
    args = p.parse_args(argv)

    import torch
    import torch.nn.functional as F

    from sg2img import metrics as M
    from sg2img.checkpoint import build_generator, export_inference, load_checkpoint
    from sg2img.data import build_dataset
    from sg2img.losses import box_loss, mask_loss
    from sg2img.scene_graph import collate_graphs

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    source = load_checkpoint(args.checkpoint)
    gen, cfg, vocab = build_generator(source)
    original, _, _ = build_generator(source)
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

    def recall() -> dict:
        gen.eval()
        with torch.no_grad():
            vecs, _ = gen.encode_graph(val_batch)
            boxes = gen.box_head(vecs)
        keep = M.real_object_mask(val_batch.objs)
        return M.layout_recall(boxes[keep], val_batch.boxes[keep])

    start = recall()
    print(f"step 0: {start}", flush=True)
    g = torch.Generator().manual_seed(args.seed)
    t0 = time.time()
    gen.train()
    for step in range(1, args.steps + 1):
        idx = torch.randint(0, len(train), (args.batch_size,), generator=g).tolist()
        batch = collate_graphs([train[i] for i in idx])
        vecs, _ = gen.encode_graph(batch)
        with torch.no_grad():
            anchor_vecs, _ = original.encode_graph(batch)
        real = M.real_object_mask(batch.objs)
        loss = (cfg.loss.box_weight * box_loss(gen.box_head(vecs), batch.boxes, real)
                + cfg.loss.mask_weight * mask_loss(gen.mask_head(vecs), batch.masks, real)
                + args.anchor * F.mse_loss(vecs, anchor_vecs))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % args.eval_every == 0 or step == args.steps:
            print(f"step {step}: loss {loss.item():.4f} {recall()} "
                  f"({time.time() - t0:.0f} s)", flush=True)
    gen.eval()
    final = recall()
    export_inference(args.out, cfg, vocab, gen, step=source.get("step"))
    ckpt = load_checkpoint(args.out)
    ckpt["layout_finetune"] = {
        "source": str(args.checkpoint), "steps": args.steps, "batch_size": args.batch_size,
        "lr": args.lr, "anchor": args.anchor, "seed": args.seed,
        "val_recall_before": start, "val_recall_after": final,
        "command": "python " + " ".join(["scripts/finetune_layout.py", *(argv or sys.argv[1:])]),
    }
    from sg2img.checkpoint import save_checkpoint

    save_checkpoint(args.out, ckpt)
    print(f"wrote {args.out}: val R@0.5 {start['R@0.5']:.4f} -> {final['R@0.5']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Model benchmark on CPU: parameter counts, forward / forward+backward times per preset, the
time of a full training step (G step + D step), and the local generator's cost for the same
scenes under a 20-class and a 184-class vocabulary.

Usage:
    .venv/bin/python scripts/bench_model.py                       # all presets
    .venv/bin/python scripts/bench_model.py --presets tiny small --repeats 5
    .venv/bin/python scripts/bench_model.py --presets small --step-only
    .venv/bin/python scripts/bench_model.py --local-only --repeats 15
    .venv/bin/python scripts/bench_model.py --presets small --layout-stage --repeats 9

Scenes are random procedural-like graphs (3-8 objects with boxes, masks and images); the
vocabulary has 28 classes for ``tiny``/``small`` (as the procedural data), 184 for COCO
presets and 179 for VG presets. With ``--data ROOT`` the training-step timing uses real batches
of that COCO-format dataset (e.g. the procedural scenes in data/shapes64).

``--layout-stage`` times, per preset, the two layout heads against each other,
interleaved over ``--repeats`` rounds (the ratio is the median of the per-round ratios): a
step of ``train.stage=layout`` (graph network and layout heads on boxes and masks, anchored,
Adam; batch ``--layout-batch``, 64 as in ``scripts/launch/train_bundled.sh``) and the
generator forward that ``generate()`` runs (predicted layout, batch 8), for ``regress`` and
for ``sample`` (K=5, sequential, relation checks: the recipe's head).
"""

from __future__ import annotations

import argparse
import statistics

import torch

from sg2img.benchmark import interleaved_times, median_time, per_round_ratios, set_threads
from sg2img.config import Config
from sg2img.model import GALSDiscriminator, GALSGenerator, count_parameters
from sg2img.objectives import discriminator_loss_terms, generator_loss_terms, weighted_total
from sg2img.scene_graph import collate_graphs
from sg2img.testing import PRESET_VOCAB_SIZES, numbered_vocab, random_scene_batch
from sg2img.vocab import Vocab


def bench_preset(name: str, repeats: int, batch_sizes: list[int], step_only: bool,
                 data_root: str | None = None, overrides: list[str] | None = None) -> None:
    cfg = Config.from_preset(name, overrides or [])
    mc = cfg.model
    size, mask_size = mc.renderer.image_size, mc.layout.mask_size
    vocab = numbered_vocab(*PRESET_VOCAB_SIZES[name])
    step_batch = None
    if data_root:
        from sg2img.data import build_dataset

        cfg = cfg.with_overrides({"data.root": data_root, "data.dataset": "coco"})
        dataset = build_dataset(cfg.data, "train", size, mask_size)
        vocab = dataset.vocab
        step_batch = collate_graphs([dataset[i] for i in range(cfg.train.batch_size)])
    vg = cfg.data.dataset == "vg"
    torch.manual_seed(0)
    G = GALSGenerator(mc, vocab.num_objects, vocab.num_preds)
    D = GALSDiscriminator(mc, vocab.num_objects)
    label = " ".join([name, *(overrides or [])])
    print(f"\n== {label}: {size}x{size}, C={vocab.num_objects}, "
          f"G {count_parameters(G) / 1e6:.2f}M params "
          f"(global {_params(G.global_gen):.2f}M, local {_params(G.local_gen):.2f}M), "
          f"D {count_parameters(D) / 1e6:.2f}M params")
    if not step_only:
        recon = _recon_only(cfg)
        for bs in batch_sizes:
            batch = random_scene_batch(vocab, bs, size, mask_size, vg=vg)
            G.eval()

            def fwd(batch=batch):
                with torch.no_grad():
                    G(batch, use_gt_layout=True)

            def fwd_bwd(batch=batch):
                out = G(batch, use_gt_layout=True)
                terms = generator_loss_terms(out, None, batch, recon)
                weighted_total(terms, cfg.loss).backward()
                G.zero_grad(set_to_none=True)

            t_f = median_time(fwd, repeats)
            G.train()
            t_fb = median_time(fwd_bwd, repeats)
            print(f"  batch {bs:3d}: G forward {t_f * 1000:8.1f} ms   "
                  f"G forward+backward {t_fb * 1000:8.1f} ms")
    bs = cfg.train.batch_size
    batch = step_batch or random_scene_batch(vocab, bs, size, mask_size, seed=1, vg=vg)
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-4, betas=(0.0, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-4, betas=(0.0, 0.999))
    G.train()

    def step():
        out = G(batch, use_gt_layout=True)
        D.requires_grad_(True)
        opt_d.zero_grad(set_to_none=True)
        weighted_total(discriminator_loss_terms(out, D, batch, cfg.loss), cfg.loss).backward()
        opt_d.step()
        D.requires_grad_(False)
        opt_g.zero_grad(set_to_none=True)
        # The mode-seeking term needs a second sample, as in the trainer.
        second = G(batch, use_gt_layout=True) if cfg.loss.mode_seek_weight > 0 else None
        weighted_total(generator_loss_terms(out, D, batch, cfg.loss, second=second),
                       cfg.loss).backward()
        opt_g.step()

    t = median_time(step, repeats)
    print(f"  training step (G forward + D step + G step) at batch {bs}: {t * 1000:.0f} ms"
          f"  -> {cfg.train.num_steps} steps in {t * cfg.train.num_steps / 60:.0f} min")


def bench_layout_stage(name: str, repeats: int, layout_batch: int,
                       overrides: list[str] | None = None) -> None:
    """Layout-stage step and generate() forward: regress vs sample head, interleaved."""
    from sg2img.objectives import layout_loss_terms
    from sg2img.optimization import build_layout_optimizer

    vocab = numbered_vocab(*PRESET_VOCAB_SIZES[name])
    # Geometric predicate names, so that the sample head's relation checks run.
    vocab = Vocab.from_names(vocab.object_names[1:], ["left of", "right of", "above", "below",
                                                      "inside", "surrounding"])
    fns: dict[str, dict[str, object]] = {}
    for head in ("regress", "sample"):
        cfg = Config.from_preset(name, [*(overrides or []), f"model.layout.head={head}"])
        mc = cfg.model
        size, mask_size = mc.renderer.image_size, mc.layout.mask_size
        torch.manual_seed(0)
        G = GALSGenerator(mc, vocab.num_objects, vocab.num_preds,
                          pred_names=vocab.pred_names)
        anchor = GALSGenerator(mc, vocab.num_objects, vocab.num_preds).eval()
        anchor.load_state_dict(G.state_dict())
        opt = build_layout_optimizer(cfg, G)
        batch = random_scene_batch(vocab, layout_batch, size, mask_size, seed=3)
        gen_batch = random_scene_batch(vocab, 8, size, mask_size, seed=4)

        def step(G=G, anchor=anchor, opt=opt, batch=batch, cfg=cfg):
            G.train()
            opt.zero_grad(set_to_none=True)
            with torch.no_grad():
                anchor_vecs, _ = anchor.encode_graph(batch)
            terms = layout_loss_terms(G, batch, cfg.loss, anchor_vecs=anchor_vecs)
            weighted_total(terms, cfg.loss).backward()
            opt.step()

        def forward(G=G, batch=gen_batch):
            G.eval()
            with torch.no_grad():
                G(batch, layout_mode="sample", rng=torch.Generator().manual_seed(0),
                  training_outputs=False)

        step()
        forward()                                                      # warm-up
        fns[head] = {"layout-stage step": step, "generate() forward": forward}
    print(f"\n== {name}: layout heads, {repeats} interleaved rounds "
          f"(layout-stage batch {layout_batch}, generate batch 8)")
    for what in ("layout-stage step", "generate() forward"):
        times = interleaved_times({head: fns[head][what] for head in ("regress", "sample")},
                                  repeats)
        ratios = per_round_ratios(times["sample"], times["regress"])
        print(f"  {what:20s}: regress {statistics.median(times['regress']) * 1000:8.1f} ms, "
              f"sample {statistics.median(times['sample']) * 1000:8.1f} ms, sample / regress "
              f"{statistics.median(ratios):.2f} (range {min(ratios):.2f}-{max(ratios):.2f})")


def _params(module) -> float:
    return 0.0 if module is None else count_parameters(module) / 1e6


def _recon_only(cfg: Config):
    """Loss config without adversarial terms (a G forward+backward without D)."""
    return Config.from_dict({**cfg.to_dict(), "loss": {
        **cfg.to_dict()["loss"], "gan_weight": 0.0, "feat_match_weight": 0.0,
        "obj_gan_weight": 0.0, "obj_aux_weight": 0.0, "vgg_weight": 0.0,
        "mode_seek_weight": 0.0}}).loss


def bench_local_vocab(repeats: int, image_size: int = 64, batch_size: int = 8) -> None:
    """The local generator on the same scenes (classes < 20) with C = 20 and C = 184.

    The two are timed in alternation, ``repeats`` rounds, so that a change in the machine's
    load hits both alike; the ratio is the median of the per-round ratios.
    """
    print(f"\n== local generator, same scenes, {image_size}x{image_size}, batch {batch_size}")
    cfg = Config.from_preset("small", [f"model.renderer.image_size={image_size}"]).model
    fns = {}
    for c in (20, 184):
        vocab = numbered_vocab(c, 7)
        torch.manual_seed(0)
        G = GALSGenerator(cfg, vocab.num_objects, vocab.num_preds)
        batch = random_scene_batch(vocab, batch_size, image_size, cfg.layout.mask_size, seed=2,
                                   num_classes_used=20)
        with torch.no_grad():
            out = G(batch, use_gt_layout=True)
        cond = torch.randn(batch_size, cfg.renderer.cond_dim, image_size, image_size)
        layout = out.layout

        def fwd_bwd(G=G, cond=cond, layout=layout):
            local = G.local_gen(cond, layout)
            (local.images.mean() + local.class_logits.mean()).backward()
            G.zero_grad(set_to_none=True)

        fns[c] = fwd_bwd
        fwd_bwd()  # warm-up
        print(f"  C = {c:3d}: {out.class_ids.numel()} (image, class) pairs, "
              f"local params {_params(G.local_gen):.2f}M")
    times = interleaved_times({20: fns[20], 184: fns[184]}, repeats)
    ratios = per_round_ratios(times[184], times[20])
    for c in (20, 184):
        print(f"  C = {c:3d}: local forward+backward {statistics.median(times[c]) * 1000:.1f} ms")
    print(f"  ratio 184 / 20: {statistics.median(ratios):.2f} (median of {repeats} interleaved "
          f"rounds, range {min(ratios):.2f}-{max(ratios):.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", nargs="+", default=list(PRESET_VOCAB_SIZES))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--step-only", action="store_true",
                        help="only the training-step timing")
    parser.add_argument("--skip-local", action="store_true")
    parser.add_argument("--local-only", action="store_true",
                        help="only the local generator's 184- vs 20-class comparison")
    parser.add_argument("--data", help="COCO-format dataset root for the training-step batch")
    parser.add_argument("--layout-stage", action="store_true",
                        help="only the layout heads: layout-stage step and generate() forward, "
                             "regress vs sample")
    parser.add_argument("--layout-batch", type=int, default=64)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override for every preset, e.g. model.renderer.image_size=32")
    args = parser.parse_args()
    set_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    if args.layout_stage:
        for name in args.presets:
            bench_layout_stage(name, args.repeats, args.layout_batch, args.set)
        return
    for name in [] if args.local_only else args.presets:
        bench_preset(name, args.repeats, args.batch_sizes, args.step_only, args.data, args.set)
    if not args.skip_local:
        bench_local_vocab(args.repeats)


if __name__ == "__main__":
    main()

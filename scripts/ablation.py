"""The ablation table on the procedural scenes: which parts of GALS-GAN earn their keep.

Variants (the shape of GALS-GAN's Table 6 and LGGAN's ablation), each trained from scratch
with the same preset, seed, batch size and number of steps:

    global_only   global-affine generator alone        (GALS-GAN "w/o local"; LGGAN "global")
    local_only    local class-specific generator alone (GALS-GAN "w/o global")
    avg_no_cls    both, averaged, no classification loss      (LGGAN "+ local")
    avg_cls       both, averaged, with the classification loss (LGGAN "+ class loss")
    full          both, fused by the weight map, class loss    (GALS-GAN full; LGGAN "+ weight map")
    c2f           full, trained coarse-to-fine as in pix2pixHD: the first half of the steps at
                  H/2, then ``model.renderer.coarse_to_fine`` at H (an enhancer stage on the
                  H/2 generator) initialised from it with ``train.init_from``. Against
                  ``full``, which ends directly at H, this answers "coarse-to-fine or direct?".
    narrow_up     full with ``model.renderer.narrow_upsample=true``
    narrow_half   narrow_up with the global generator at half the preset's width
                  (``model.renderer.channels=8`` against the ``small`` preset's 16)

Renderer variants (not run by default, name them with ``--variants``), each the
full model with one option changed:

    cc            CC-FPSE's conditional-convolution global generator
    dp_gen        DP-GAN's dual-pyramid global generator
    fpse_d        CC-FPSE's feature-pyramid semantics-embedding discriminator
    dp_d          DP-GAN's scale-enhancement discriminator
    spatial       OASIS-style spatial noise
    spatial_ms    spatial noise + the mode-seeking term (loss.mode_seek_weight=1)
    spatial_ms01  the same at loss.mode_seek_weight=0.1 (at 1 the images collapse: FID 108)
    spatial_ms001 the same at loss.mode_seek_weight=0.01
    spatial_ms0001 the same at loss.mode_seek_weight=0.001
    spatial_no_l1 spatial noise without the image L1 terms (l1 and local_l1 pull every sample
                  towards the one real image, which works against diversity)
    edges         pix2pixHD instance boundary map
    texture       spatial noise + per-pixel texture noise made from it
                  (``model.renderer.texture_noise_dim=4``), without the image L1 terms:
                  the data's own variety at a fixed layout is mostly texture, which
                  per-object vectors constant over a region cannot draw
    recon0        spatial noise; l1, local_l1 and feature matching score a second, noise-free
                  sample (``loss.recon_noise=zero``, BicycleGAN's split), so the random
                  samples answer only to the discriminators
    recon0_ms001  the same + mode seeking at 0.01 against the noise-free sample
    recon0_texture recon0 + per-pixel texture noise (``model.renderer.texture_noise_dim=4``)

Every preset turns the attribute options on, so on data with attributes ``full`` and every
variant run with them (``attr_layout_d`` below is then ``full``). Attribute variants (need a
dataset with attributes):

    attr_layout   each object's multi-hot attributes also painted into the layout as
                  channels (``model.renderer.paint_attributes=true``)
    attr_layout_d attr_layout, and the object discriminator also names each crop's
                  attributes (``model.discriminator.classify_attributes=true``, ``loss.obj_attr``)

Renderer stages on a finished two-stage model (need ``--init-from CKPT``, e.g. the bundled
model ``sg2img/assets/default_model.pt``; every variant then starts from it, with its model
settings): the layout branch frozen as the start left it (``train.freeze_layout``), the renderer
and its graph network fine-tuned:

    render_gt     on ground-truth layouts only
    render_own    + images rendered from the model's own layouts, scored by the adversarial
                  terms (``loss.own_layout_weight=1``)
    render_own01  the same at a tenth of the weight (``loss.own_layout_weight=0.1``)
    render_jitter on ground-truth layouts jittered at random (``train.layout_jitter=0.1``)

The variants, the training, the scores and the files written are
:mod:`sg2img.ablation`'s (``run_ablation``); this is its command line. Usage::

    python scripts/ablation.py --data data/shapes64 --steps 1500 --out runs/ablation
    python scripts/ablation.py --data data/shapes64 --steps 1500 --out runs/ablation \
        --docs docs/reports/ablation  # also copy ablation.json, ablation_table.md, ablation.png
    python scripts/ablation.py --data data/shapes64 --steps 1500 --out runs/ablation \
        --variants full cc dp_gen fpse_d dp_d spatial spatial_ms spatial_no_l1 edges
    python scripts/ablation.py --data data/shapes64 --steps 500 --out runs/render_stage \
        --init-from sg2img/assets/default_model.pt --variants render_gt render_own render_jitter
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path

from sg2img.ablation import (
    DEFAULT_VARIANTS,
    VARIANTS,
    AblationSettings,
    check_variants,
    run_ablation,
    table,
)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="procedural dataset (64x64)")
    p.add_argument("--out", type=Path, default=Path("runs/ablation"))
    p.add_argument("--preset", default="small")
    p.add_argument("--steps", type=int, default=1500, help="training steps per variant")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=1,
                   help="variants trained at once (each with one thread when > 1)")
    p.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS, choices=list(VARIANTS))
    p.add_argument("--generator", choices=("ema", "raw"), default="ema",
                   help="score the EMA generator (the export) or the raw one of the last "
                        "checkpoint")
    p.add_argument("--bench-rounds", type=int, default=0,
                   help="also time each variant's training step, relative to full, over this "
                        "many interleaved rounds (0: no step-time column)")
    p.add_argument("--init-from", type=Path, default=None,
                   help="checkpoint or export every variant starts from, with its model "
                        "settings (train.init_from); the render_* variants need it")
    p.add_argument("--docs", type=Path, default=None,
                   help="also copy ablation.md/png/json into this folder")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    try:
        settings = AblationSettings(data=args.data, out=args.out, preset=args.preset,
                                    steps=args.steps, seed=args.seed, jobs=args.jobs,
                                    generator=args.generator, bench_rounds=args.bench_rounds,
                                    init_from=args.init_from)
        check_variants(settings, args.variants)
    except ValueError as e:
        p.error(str(e))
    command = "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    meta = run_ablation(settings, args.variants, command=command)
    print(table(meta["results"], settings))
    if args.docs is not None:
        tag = "" if args.generator == "ema" else "_raw"
        args.docs.mkdir(parents=True, exist_ok=True)
        # The report's README.md is the written-up page; the generated table sits beside it.
        for ext in ("json", "md", "png"):
            target = f"ablation{tag}_table.md" if ext == "md" else f"ablation{tag}.{ext}"
            shutil.copy(args.out / f"ablation{tag}.{ext}", args.docs / target)
        shutil.copy(args.out / f"ablation{tag}_samples.png", args.docs)
    return 0


if __name__ == "__main__":
    sys.exit(main())

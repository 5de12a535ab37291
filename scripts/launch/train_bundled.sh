#!/usr/bin/env bash
# The recipe of the bundled default model (sg2img/assets/default_model.pt), on 2 CPU cores.
#
# Stage 2 goes through `sg2img train --set train.stage=layout`. The asset shipped today
# predates that stage: its stage 2 was the separate loop scripts/finetune_layout.py
# (`git show bf932b4:scripts/finetune_layout.py`, run with --steps 2500 --anchor 1.0), which the
# stage replaces (same losses, Adam at 1e-3, batch 64, anchor 1.0; the stage exports its EMA
# weights and draws batches epoch by epoch). The next bundled model is trained with this file.
set -euo pipefail
python data_tools/make_shapes.py --out data/shapes64 --size 64          # 10000/500/500, seed 0
# Stage 1: GALS-GAN training, preset small (6000 steps of batch 16, ~75 min). The bundled
# model was trained before train.ema_rampup existed: pass it as false to reproduce it.
sg2img train --preset small --data data/shapes64 --set data.num_workers=1 \
    --set train.ema_rampup=false \
    --out runs/small64 --resume auto
# Stage 2: the graph -> layout branch on boxes and masks, renderer frozen.
sg2img train --preset small --data data/shapes64 --set data.num_workers=1 \
    --set train.stage=layout --set train.init_from=runs/small64/export.pt \
    --set train.num_steps=2500 --set train.batch_size=64 --set train.ema_decay=0.99 \
    --set loss.layout_anchor_weight=1.0 \
    --out runs/small64_layout --resume auto
# Ship it with its evaluation (writes sg2img/assets/default_model.{pt,json}, docs/default_model_eval.*).
python scripts/bundle_model.py runs/small64 --data data/shapes64 --export runs/small64_layout/export.pt
bash scripts/make_docs_figures.sh

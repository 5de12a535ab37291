#!/usr/bin/env bash
# How the bundled default model (sg2img/assets/default_model.pt) was made, on 2 CPU cores.
set -euo pipefail
python data_tools/make_shapes.py --out data/shapes64 --size 64          # 10000/500/500, seed 0
# Stage 1: GALS-GAN training, preset small (6000 steps of batch 16, ~75 min). The bundled
# model was trained before train.ema_rampup existed: pass it as false to reproduce it.
sg2img train --preset small --data data/shapes64 --set data.num_workers=1 \
    --set train.ema_rampup=false \
    --out runs/small64 --resume auto
# Stage 2: the graph -> layout branch on boxes and masks, renderer frozen (~8 min).
python scripts/finetune_layout.py runs/small64/export.pt --data data/shapes64 \
    --steps 2500 --anchor 1.0 --out runs/small64/export_layout_a1.pt
# Ship it with its evaluation (writes sg2img/assets/default_model.{pt,json}, docs/default_model_eval.*).
python scripts/bundle_model.py runs/small64 --data data/shapes64 --export runs/small64/export_layout_a1.pt
bash scripts/make_docs_figures.sh

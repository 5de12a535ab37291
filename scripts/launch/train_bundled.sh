#!/usr/bin/env bash
# The recipe of the bundled default model (sg2img/assets/default_model.pt), third edition,
# on 2 CPU cores. Run from the repository root; every stage resumes where it stopped
# (`--resume auto`), so the script can be re-run after an interruption.
#
#   DATA=data/shapes64 STEPS=8000 bash scripts/launch/train_bundled.sh
#
# PATH_ALIASES="--path-alias /scratch/shapes64=data/shapes64" makes the model card show the
# recipe's paths for data kept elsewhere (scripts/bundle_model.py --path-alias).
#
# What it trains, and why:
# - the procedural scenes with attributes (SHAPES_VERSION 2, what make_shapes.py writes);
# - stage 1, GALS-GAN with the `small` preset: every preset turns the attribute options on
#   (attributes painted into the layout, named by the object discriminator); the
#   renderer is the default one (no seed paper's generator, discriminator or noise
#   beat it at the ablation budget, see docs/reports/renderers/README.md); RENDERER_OPTS adds
#   options; 8,000 steps. Planned for 12,000, stopped at 8,000 for time; every checkpoint is
#   kept and the learning curve is scored in docs/reports/bundled-model/README.md. There is no learning-rate
#   schedule, so STEPS=12000 continues the same run (then delete RUN_layout to redo stage 2);
# - stage 2, the layout stage, renderer frozen, batch 64. The layout heads read a graph
#   network of their own (model.layout.use_own_gconv, a copy of stage 1's to start) and only they train
#   (train.layout_modules=heads): training stage 1's graph network instead moved the vectors the
#   renderer reads and took its ground-truth-layout FID from 0.36 to 4.84. In two steps:
#   2a, the regress head, 2,000 steps, so the graph network learns where things go; 2b, the
#   sampling head (K=5 mixture, objects placed in sequence, geometric relations checked) on top,
#   4,000 steps. The sampling head straight from stage 1's vectors levels off near 0.85 relation
#   satisfaction; after 2a it reaches 0.975 (docs/reports/layout/README.md).
# - the layout settings (third edition): the stuff partitions the canvas under the things,
#   boxes are sampled at temperature 0.7 and things are placed apart (IoU <= 0.1). They change
#   how a graph is laid out, not the weights, so they are set from stage 3 on.
# - stage 3, the renderer stage: the layout branch frozen as stage 2b left it, the renderer
#   fine-tuned for 1,500 more steps on true layouts with a fresh discriminator (the ablation's
#   render_gt, which shipped; RENDER_OPTS adds a variant's options, e.g. "--set
#   loss.own_layout_weight=0.1"; docs/reports/layout-gap/README.md compares them).
set -euo pipefail
DATA=${DATA:-data/shapes64}
STEPS=${STEPS:-8000}
LAYOUT_REGRESS_STEPS=${LAYOUT_REGRESS_STEPS:-2000}
LAYOUT_STEPS=${LAYOUT_STEPS:-4000}
RENDER_STEPS=${RENDER_STEPS:-1500}
RUN=${RUN:-runs/bundled64}
PY=${PYTHON:-python}
read -r -a RENDERER <<< "${RENDERER_OPTS:-}"

if [ ! -f "$DATA/info.json" ]; then
    "$PY" data_tools/make_shapes.py --out "$DATA" --size 64 --num-train 10000 --num-val 500 \
        --num-test 500 --seed 0 --workers 2
fi
# Stage 1: GAN training. Every checkpoint is kept (250 steps apart, 48 MB each), so that the
# learning curve can be scored afterwards (`sg2img evaluate --checkpoint CKPT --gt-layout`).
"$PY" -m sg2img train --preset small --data "$DATA" --out "$RUN" --resume auto \
    --set data.num_workers=1 --set train.num_steps="$STEPS" --set train.seed=0 \
    --set train.keep_checkpoints=1000 "${RENDERER[@]}"
# Stage 2a: the layout heads' own graph network with the regress head, renderer frozen.
LAYOUT=(--preset small --data "$DATA" --set data.num_workers=0 --set train.stage=layout
        --set model.layout.use_own_gconv=true --set train.layout_modules=heads --set train.batch_size=64
        --set train.ema_decay=0.99 --set train.keep_checkpoints=20)
"$PY" -m sg2img train "${LAYOUT[@]}" --set model.layout.head=regress \
    --set train.num_steps="$LAYOUT_REGRESS_STEPS" --set train.init_from="$RUN/export.pt" \
    --out "${RUN}_layout_regress" --resume auto "${RENDERER[@]}"
# Stage 2b: the sampling layout head on top of it.
"$PY" -m sg2img train "${LAYOUT[@]}" --set model.layout.head=sample \
    --set train.num_steps="$LAYOUT_STEPS" --set train.init_from="${RUN}_layout_regress/export.pt" \
    --out "${RUN}_layout" --resume auto "${RENDERER[@]}"
# Stage 3: the renderer stage, with the layout settings the model ships with.
read -r -a RENDER_VARIANT <<< "${RENDER_OPTS:-}"
"$PY" -m sg2img train --preset small --data "$DATA" --set data.num_workers=1 \
    --set train.num_steps="$RENDER_STEPS" --set train.seed=0 --set train.sample_every=750 \
    --set model.layout.head=sample --set model.layout.use_own_gconv=true \
    --set model.layout.sample_temperature=0.7 --set model.layout.max_thing_iou=0.1 \
    --set model.layout.stuff_partition=true --set train.init_from="${RUN}_layout/export.pt" \
    --set train.freeze_layout=true "${RENDER_VARIANT[@]}" "${RENDERER[@]}" \
    --out "${RUN}_render" --resume auto
# Ship it with both evaluations (writes sg2img/assets/default_model.{pt,json} and
# docs/reports/bundled-model/default_model_eval{,_gt}.{json,md}), then the README's pictures.
"$PY" scripts/bundle_model.py "$RUN" --data "$DATA" --export "${RUN}_render/export.pt" \
    ${PATH_ALIASES:-}
bash scripts/make_docs_figures.sh

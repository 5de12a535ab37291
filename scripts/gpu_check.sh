#!/usr/bin/env bash
# One-command GPU check: procedural data at 128 px, a few hundred training steps of
# coco128 and vg128 with bf16 autocast and channels-last (the trainer's defaults on CUDA),
# it/s, images/s, peak GPU memory, achieved TFLOP/s and MFU, whether the loader keeps up, then
# generation and evaluation of a few graphs. Sized to finish in under 8 minutes on one GPU.
#
#   scripts/gpu_check.sh OUTDIR [--steps N] [--peak-tflops X] [--workers W] [--cpu]
#
#   OUTDIR          report.md, report.json, per-stage logs, generated images
#   --steps N       training steps per preset in the timed loop (default 200)
#   --peak-tflops X the accelerator's bf16 dense peak for the MFU figure (default: looked up
#                   from the GPU's name: H100/H200 SXM 989, H100 PCIe 756, A100 312)
#   --workers W     loader workers (default 8)
#   --cpu           dry run on the CPU with the `tiny` preset and 32 px data (tests, CI)
#
# Python: $PYTHON (default python3) with torch, torchvision, torch-geometric, torchmetrics,
# pillow, numpy. pycocotools is needed to read the procedural data (COCO format); on a
# machine without it and without internet, put a wheel for that machine's Python into .whl/
# at the repository root, e.g. on a machine with internet:
#   pip download pycocotools==2.0.11 --only-binary=:all: --no-deps --python-version 3.12 \
#       --platform manylinux_2_17_x86_64 -d .whl
# This script then installs it into OUTDIR/pydeps (nothing outside OUTDIR is changed).
set -euo pipefail

usage() { sed -n 2,22p "$0" | sed 's/^# \{0,1\}//'; }
[[ $# -ge 1 && $1 != -* ]] || { usage; exit 2; }
OUT=$1; shift
STEPS=200; PEAK=""; WORKERS=8; CPU=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --steps) STEPS=$2; shift 2 ;;
    --peak-tflops) PEAK=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    --cpu) CPU=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument $1" >&2; usage; exit 2 ;;
  esac
done
[[ $STEPS =~ ^[0-9]+$ && $STEPS -ge 1 ]] || { echo "--steps must be a positive integer" >&2; exit 2; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
cd "$ROOT"
T0=$(date +%s)
log() { echo "[gpu_check $(( $(date +%s) - T0 )) s] $*" | tee -a "$OUT/progress.log"; }

# pycocotools: import it, else install a bundled wheel into OUTDIR/pydeps.
if ! "$PY" -c "import pycocotools.mask" 2>/dev/null; then
  if compgen -G "$ROOT/.whl/pycocotools-*.whl" >/dev/null; then
    log "pycocotools missing: installing from $ROOT/.whl into $OUT/pydeps"
    "$PY" -m pip install -q --no-index --no-deps --find-links "$ROOT/.whl" \
      --target "$OUT/pydeps" pycocotools >"$OUT/pydeps.log" 2>&1 ||
    # No pip: a wheel is a zip archive; unpack the one built for this Python.
    "$PY" - "$ROOT/.whl" "$OUT/pydeps" >>"$OUT/pydeps.log" 2>&1 <<'PYEOF' || {
import sys, zipfile
from pathlib import Path
v = sys.version_info
tags = [f"-cp{v.major}{v.minor}-cp{v.major}{v.minor}-"] + (["-abi3-"] if v >= (3, 12) else [])
wheels = [w for w in sorted(Path(sys.argv[1]).glob("pycocotools-*.whl"))
          if any(t in w.name for t in tags) and "x86_64" in w.name]
if not wheels:
    sys.exit(f"no pycocotools wheel for Python {v.major}.{v.minor} in {sys.argv[1]}")
zipfile.ZipFile(wheels[0]).extractall(sys.argv[2])
print("unpacked", wheels[0].name)
PYEOF
        echo "could not install pycocotools from $ROOT/.whl (see $OUT/pydeps.log): the wheel" \
             "must match this Python ($("$PY" -V 2>&1))" >&2; exit 1; }
    export PYTHONPATH="$OUT/pydeps:$PYTHONPATH"
  else
    echo "pycocotools is not installed and $ROOT/.whl/ holds no pycocotools wheel; put one" \
         "for $("$PY" -V 2>&1) there (see the header of $0)" >&2
    exit 1
  fi
fi

if [[ $CPU == 1 ]]; then
  DEVICE=cpu; SIZE=32; NTRAIN=48; NVAL=8; PRESETS=(tiny); REPEATS=1; LOADER=2
  EXTRA=(--set train.batch_size=4)
  WORKERS=0
else
  DEVICE=cuda; SIZE=128; NTRAIN=3000; NVAL=64; PRESETS=(coco128 vg128); REPEATS=5; LOADER=40
  EXTRA=()
  "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || {
    echo "no CUDA device visible to $PY; use --cpu for a dry run" >&2; exit 1; }
fi

DATA="$OUT/shapes$SIZE"
log "procedural data at $SIZE px: $NTRAIN train / $NVAL val images"
"$PY" data_tools/make_shapes.py --out "$DATA" --size "$SIZE" --num-train "$NTRAIN" \
  --num-val "$NVAL" --num-test "$NVAL" --seed 0 --workers "$(( $(nproc) > 16 ? 16 : $(nproc) ))" \
  >"$OUT/make_shapes.log" 2>&1

PEAK_ARGS=(); [[ -n $PEAK ]] && PEAK_ARGS=(--peak-tflops "$PEAK")
for preset in "${PRESETS[@]}"; do
  log "training $preset: $STEPS steps on $DEVICE (vg128 reads the procedural data as COCO)"
  "$PY" scripts/bench_train.py --preset "$preset" --data "$DATA" --device "$DEVICE" \
    --steps "$STEPS" --repeats "$REPEATS" --workers "$WORKERS" --loader-batches "$LOADER" \
    --run-dir "$OUT/run_$preset" --json "$OUT/train_$preset.json" "${PEAK_ARGS[@]}" \
    "${EXTRA[@]}" 2>&1 | tee "$OUT/train_$preset.log"
done

last=${PRESETS[0]}
ckpt=$(ls "$OUT/run_$last/checkpoints/"ckpt_*.pt | tail -n 1)
log "generate with $ckpt"
"$PY" -m sg2img generate examples/*.json --checkpoint "$ckpt" --device "$DEVICE" \
  --out "$OUT/generated" --seed 0 >"$OUT/generate.log" 2>&1
log "evaluate $ckpt on $NVAL validation graphs"
set +e
"$PY" -m sg2img evaluate --checkpoint "$ckpt" --data "$DATA" --split val --device "$DEVICE" \
  --metrics layout_recall fid --out "$OUT/evaluate" >"$OUT/evaluate.log" 2>&1
EVAL_RC=$?
set -e

"$PY" - "$OUT" "$EVAL_RC" "$(( $(date +%s) - T0 ))" "${PRESETS[@]}" <<'EOF'
import json, sys
from pathlib import Path
out, eval_rc, wall, presets = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
rows, runs = [], {}
for p in presets:
    r = json.loads((out / f"train_{p}.json").read_text())
    runs[p] = r
    mfu = f"{100 * r['mfu']:.1f} %" if r.get("mfu") is not None else "n/a"
    mem = f"{r['peak_gpu_mem_gib']:.2f}" if "peak_gpu_mem_gib" in r else "n/a"
    rows.append(f"| {p} | {r['batch_size']} | {r['trainer_batches_per_s']:.2f} | "
                f"{r['images_per_s']:.1f} | {r['step_s'] * 1000:.0f} | {mem} | "
                f"{r['flops_per_step'] / 1e12:.3f} | {r['achieved_tflops']:.1f} | {mfu} | "
                f"{r['loader_vs_trainer']:.1f}x {'yes' if r['loader_vs_trainer'] >= 1.2 else 'NO'} |")
gen = sorted(str(p.relative_to(out)) for p in (out / "generated").glob("**/*.png"))
ev = out / "evaluate.json"
metrics = json.loads(ev.read_text()).get("metrics") if ev.is_file() else None
r0 = runs[presets[0]]
lines = [
    "# GPU check", "",
    f"Device: {r0['device']} {r0.get('gpu', '')}; peak: {r0.get('peak_tflops')} TFLOP/s "
    f"({r0.get('peak_source')}); wall time of the whole check: {wall} s.", "",
    "| preset | batch | it/s (loop) | images/s | step alone ms | peak GPU GiB | TFLOP/step "
    "| TFLOP/s | MFU | loader feeds (x consumption), keeps up |",
    "|---|---|---|---|---|---|---|---|---|---|", *rows, "",
    f"Generated {len(gen)} images: {', '.join(gen[:6])}{' ...' if len(gen) > 6 else ''}",
    f"Evaluation (exit {eval_rc}): {json.dumps(metrics) if metrics else 'see evaluate.log'}",
    "", "Per-preset details: train_<preset>.log / .json.",
]
(out / "report.md").write_text("\n".join(lines) + "\n")
(out / "report.json").write_text(json.dumps({"runs": runs, "generated": gen,
                                             "evaluate_rc": eval_rc, "evaluate": metrics,
                                             "wall_s": wall}, indent=1))
print("\n".join(lines))
EOF
log "done: $OUT/report.md"

#!/usr/bin/env bash
# Regenerate the README's pictures with the bundled model (run from the repository root).
set -euo pipefail
out=outputs/docs
PY=${PYTHON:-python}
sg2img() { "$PY" -m sg2img "$@"; }
# The README's first picture is what `make demo` writes for examples/scenes.json (the same
# command as the Makefile's: every example in one call, so the seeds follow the files' order).
sg2img generate examples/*.json --out "$out/demo" --save-layout --draw-graph --sheet
cp "$out/demo/scenes_sheet.png" docs/reports/bundled-model/sample_sheet.png
sg2img manipulate examples/lake.json examples/edits/lake.json --out "$out" --seed 0
cp "$out/lake_manipulation.png" docs/reports/manipulation/manipulation.png
# Four samples of one graph: what a new seed changes (layout and look).
sg2img generate examples/sheep.json --out "$out/four" --seed 0 --samples 4 --sheet
cp "$out/four/sheep_sheet.png" docs/reports/bundled-model/sample_four.png
echo "wrote docs/reports/bundled-model/sample_sheet.png, docs/reports/manipulation/manipulation.png and docs/reports/bundled-model/sample_four.png"
# A red car made blue, then green (the procedural cars come in red, blue, white, green and
# black): only with a model that knows attributes.
if "$PY" -c "import sys; from sg2img import load_model; \
sys.exit(load_model().vocab.attribute_names is None)"; then
    sg2img manipulate examples/attributes/street.json examples/attributes/edits_car_colours.json \
        --out "$out/colours" --seed 0
    cp "$out/colours/street_manipulation.png" docs/reports/bundled-model/car_colours.png
    echo "wrote docs/reports/bundled-model/car_colours.png"
fi

#!/usr/bin/env bash
# Regenerate the README's pictures with the bundled model (run from the repository root).
set -euo pipefail
out=outputs/docs
sg2img generate examples/scenes.json --out "$out" --seed 0 --sheet
cp "$out/scenes_sheet.png" docs/sample_sheet.png
sg2img manipulate examples/lake.json examples/edits/lake.json --out "$out" --seed 0
cp "$out/lake_manipulation.png" docs/manipulation.png
echo "wrote docs/sample_sheet.png and docs/manipulation.png"

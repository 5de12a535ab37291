"""scripts/compare_models_sheet.py: two models, the same graphs and seeds, one row per graph."""

import json
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

from sg2img.data.shapes import shapes_vocab
from sg2img.testing import random_model_export

ROOT = Path(__file__).resolve().parents[1]


def test_the_sheet_has_a_row_per_graph_and_both_models_samples(tmp_path):
    vocab = shapes_vocab()
    before = random_model_export(tmp_path / "a.pt", vocab, seed=0)
    after = random_model_export(tmp_path / "b.pt", vocab, seed=1)
    graphs = tmp_path / "g.json"
    graphs.write_text(json.dumps([
        {"objects": ["sky", "grass", "sheep"], "relationships": [[2, "below", 0]]},
        {"objects": ["sky", "sand", "person"], "relationships": [[2, "below", 0]]}]))
    out = tmp_path / "sheet.png"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "compare_models_sheet.py"),
                           str(graphs), "--before", str(before), "--after", str(after),
                           "--samples", "2", "--cell", "32", "--image-size", "48",
                           "--out", str(out)],
                          env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "2 graphs x 2 samples" in proc.stdout
    with Image.open(out) as sheet:
        assert sheet.width > 4 * 32 and sheet.height > 2 * 32

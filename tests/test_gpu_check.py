"""scripts/gpu_check.sh: its CPU dry run (--cpu --steps 2) goes through every stage and writes
the report."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu_check.sh"


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_gpu_check_cpu_dry_run(tmp_path):
    env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS="1")
    out = tmp_path / "check"
    proc = subprocess.run(["bash", str(SCRIPT), str(out), "--cpu", "--steps", "2"], env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    run = report["runs"]["tiny"]
    assert run["loop_steps"] == 2 and run["device"] == "cpu"
    for key in ("loop_s_per_step", "step_s", "ema_s", "loader_batches_per_s", "flops_per_step",
                "images_per_s", "achieved_tflops"):
        assert run[key] > 0, key
    assert report["generated"] and report["evaluate_rc"] == 0
    assert "fid" in report["evaluate"] and "layout_recall" in report["evaluate"]
    md = (out / "report.md").read_text()
    assert "| tiny |" in md and "MFU" in md


def test_gpu_check_rejects_bad_arguments(tmp_path):
    bad = subprocess.run(["bash", str(SCRIPT), str(tmp_path), "--steps", "zero"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--steps" in bad.stderr
    bad = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2

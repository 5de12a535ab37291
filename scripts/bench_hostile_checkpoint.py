"""Peak memory of ``sg2img generate`` with a compression-bomb checkpoint, against a clean one.

Builds in a temp folder:

* the bomb: the bundled checkpoint with an extra zero tensor of ``--junk-gib`` GiB in its
  generator, every record re-zipped with DEFLATE (about 14 MB on disk at 3 GiB; built in
  about 3 GiB of memory and disk, both freed before anything is measured);
* a legitimate checkpoint of 200 MB or more: the bundled model's config with
  ``model.renderer.channels`` raised to ``--legit-channels`` (128: about 250 MB), random
  weights, written by ``export_inference``.

Then runs ``python -m sg2img generate examples/sheep.json --checkpoint X`` for the bundled
(clean) checkpoint, the bomb and the large one, each under its own wrapper process, so that
``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` is that one command's peak resident memory.
Prints one row per command (exit status, peak RSS, the last stderr line) and the bomb/clean
ratio; exits 1 unless the bomb gives exit 2 with one line at most 1.5x the clean peak and the
large checkpoint loads (exit 0).

    PYTHONPATH=$PWD python scripts/bench_hostile_checkpoint.py
    PYTHONPATH=$PWD python scripts/bench_hostile_checkpoint.py --junk-gib 0.5
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GRAPH = ROOT / "examples" / "sheep.json"
MAX_RATIO = 1.5


def measure(cmd: list[str]) -> None:
    """Run ``cmd`` and print its exit status, peak RSS and stderr as one JSON line."""
    proc = subprocess.run(cmd, capture_output=True, text=True)
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    print(json.dumps({"rc": proc.returncode, "peak_mb": peak_kb / 1024,
                      "stderr": proc.stderr.strip().splitlines()}))


def run_measured(checkpoint: Path, out: Path) -> dict:
    cmd = [sys.executable, "-m", "sg2img", "generate", str(GRAPH), "--checkpoint",
           str(checkpoint), "--out", str(out), "--seed", "0"]
    wrapper = subprocess.run([sys.executable, __file__, "--measure", "--", *cmd],
                             capture_output=True, text=True, check=True)
    return json.loads(wrapper.stdout.strip().splitlines()[-1])


def build_bomb(folder: Path, junk_gib: float) -> Path:
    import torch

    from sg2img.api import DEFAULT_MODEL_PATH
    from sg2img.torch_archive import rewrite_archive

    ckpt = torch.load(DEFAULT_MODEL_PATH, weights_only=True)
    ckpt["generator"]["junk"] = torch.zeros(int(junk_gib * 2**30) // 4)
    plain = folder / "plain.pt"
    torch.save(ckpt, plain)
    del ckpt
    bomb = rewrite_archive(plain, folder / "bomb.pt", compression=zipfile.ZIP_DEFLATED)
    plain.unlink()
    return bomb


def build_large(folder: Path, channels: int) -> Path:
    import dataclasses

    import torch

    from sg2img.api import DEFAULT_MODEL_PATH
    from sg2img.checkpoint import export_inference, load_checkpoint
    from sg2img.config import Config
    from sg2img.model import GALSGenerator
    from sg2img.vocab import Vocab

    ckpt = load_checkpoint(DEFAULT_MODEL_PATH)
    config = Config.from_dict(ckpt["config"])
    renderer = dataclasses.replace(config.model.renderer, channels=channels)
    config = dataclasses.replace(config, model=dataclasses.replace(config.model,
                                                                   renderer=renderer))
    vocab = Vocab.from_dict(ckpt["vocab"])
    torch.manual_seed(0)
    gen = GALSGenerator(config.model, vocab.num_objects, vocab.num_preds, vocab.num_attributes,
                        pred_names=vocab.pred_names)
    return export_inference(folder / "large.pt", config, vocab, gen)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--measure":
        measure(sys.argv[3:])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--junk-gib", type=float, default=3.0,
                    help="size of the bomb's zero tensor, uncompressed (the probe's: 3)")
    ap.add_argument("--legit-channels", type=int, default=128,
                    help="model.renderer.channels of the large legitimate checkpoint")
    args = ap.parse_args()
    from sg2img.api import DEFAULT_MODEL_PATH

    with tempfile.TemporaryDirectory(prefix="sg2img-bench-ckpt-") as tmp:
        folder = Path(tmp)
        bomb = build_bomb(folder, args.junk_gib)
        large = build_large(folder, args.legit_channels)
        rows = {}
        for name, path in (("clean", DEFAULT_MODEL_PATH), ("bomb", bomb), ("large", large)):
            result = run_measured(path, folder / f"out_{name}")
            result["file_mb"] = path.stat().st_size / 2**20
            with zipfile.ZipFile(path) as z:
                result["uncompressed_mb"] = sum(i.file_size for i in z.infolist()) / 2**20
            rows[name] = result
    print(f"{'checkpoint':<10} {'file MB':>9} {'records MB':>11} {'exit':>5} {'peak RSS MB':>12}"
          f"  last stderr line")
    for name, r in rows.items():
        last = r["stderr"][-1][:110] if r["stderr"] else ""
        print(f"{name:<10} {r['file_mb']:>9.1f} {r['uncompressed_mb']:>11.1f} {r['rc']:>5} "
              f"{r['peak_mb']:>12.0f}  {last}")
    ratio = rows["bomb"]["peak_mb"] / rows["clean"]["peak_mb"]
    print(f"bomb / clean peak RSS: {ratio:.2f}x (target <= {MAX_RATIO}x); bomb stderr lines: "
          f"{len(rows['bomb']['stderr'])}; large checkpoint ({rows['large']['file_mb']:.0f} MB) "
          f"exit {rows['large']['rc']}")
    ok = (rows["bomb"]["rc"] == 2 and len(rows["bomb"]["stderr"]) == 1 and ratio <= MAX_RATIO
          and rows["large"]["rc"] == 0 and rows["large"]["file_mb"] >= 200
          and rows["clean"]["rc"] == 0)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

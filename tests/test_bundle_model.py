"""scripts/bundle_model.py: a two-stage run (GAN, then the layout stage with the sampling head)
is shipped with its provenance and both evaluations (sampled layouts; ground-truth layout)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def _run(*args, cwd):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_bundle_a_layout_stage_run(tmp_path):
    data = tmp_path / "shapes"
    _run(ROOT / "data_tools" / "make_shapes.py", "--out", data, "--size", 64, "--num-train", 6,
         "--num-val", 4, "--num-test", 2, "--workers", 1, cwd=tmp_path)
    common = ["-m", "sg2img", "train", "--preset", "tiny", "--data", data, "--device", "cpu",
              "--set", "model.renderer.image_size=64", "--set", "train.sample_every=100"]
    _run(*common, "--out", tmp_path / "gan", "--set", "train.num_steps=2", cwd=ROOT)
    _run(*common, "--out", tmp_path / "layout", "--set", "train.num_steps=2",
         "--set", "train.stage=layout", "--set", f"train.init_from={tmp_path / 'gan/export.pt'}",
         "--set", "model.layout.head=sample", cwd=ROOT)
    assets, docs = tmp_path / "assets", tmp_path / "docs"
    out = _run(ROOT / "scripts" / "bundle_model.py", tmp_path / "gan", "--data", data,
               "--export", tmp_path / "layout" / "export.pt", "--assets", assets, "--docs", docs,
               "--path-alias", f"{data}=data/shapes64", "--path-alias", f"{tmp_path}=runs",
               cwd=ROOT)
    assert "wrote" in out
    meta = json.loads((assets / "default_model.json").read_text())
    commands = meta["training_commands"]
    assert len(commands) == 2 and "train.stage=layout" in commands[1]
    # Local paths are written as the recipe's (the longer alias first), and the card says so.
    assert meta["data_command"].endswith("--out data/shapes64 --size 64")
    assert commands[0].startswith("sg2img train --preset tiny --data data/shapes64 ")
    assert "--out runs/layout" in commands[1] and "init_from=runs/gan/export.pt" in commands[1]
    assert meta.pop("path_aliases") == {str(data): "data/shapes64", str(tmp_path): "runs"}
    assert str(tmp_path) not in json.dumps(meta)
    assert meta["dataset"]["version"] == 2 and meta["step"] == 2
    ev = meta["evaluation"]
    assert ev["layout_mode"] == "sample"
    for key in ("fid", "fid_gt_layout", "object_accuracy_gt_layout", "object_accuracy_own_boxes",
                "relation_satisfaction",
                "relation_satisfaction_ground_truth", "small_objects_R@0.3",
                "attribute_accuracy", "attribute_accuracy_gt_layout",
                "diversity_mean_pixel_distance"):
        assert isinstance(ev[key], float), key
    assert len(ev["abs_log_area_ratio_worst_class"]) == 2   # (class, value); none in 4 graphs
    report = json.loads((docs / "default_model_eval.json").read_text())
    gt = json.loads((docs / "default_model_eval_gt.json").read_text())
    assert report["layout_mode"] == "sample" and not report["use_gt_layout"]
    assert report["data"] == gt["data"] == "data/shapes64"
    assert gt["use_gt_layout"] and set(gt["metrics"]) == {"fid", "obj_acc", "attr_acc"}
    assert (docs / "default_model_eval_gt.md").exists()
    ckpt = torch.load(assets / "default_model.pt", weights_only=True)
    assert ckpt["config"]["model"]["layout"]["head"] == "sample"
    # sg2img train stores the class table counted from the training split, and stuff.
    table = ckpt["vocab"]["class_attributes"]
    assert set(table) == set(ckpt["vocab"]["object_name_to_idx"]) - {"__image__"}
    assert sum(map(len, table.values())) >= 5 and table["other"] == []
    assert "sky" in ckpt["vocab"]["stuff_names"] and "car" not in ckpt["vocab"]["stuff_names"]

    # --vocab-from-data gives a model written before tables its table; nothing else changes.
    old = {**ckpt, "vocab": {k: v for k, v in ckpt["vocab"].items()
                             if k not in ("class_attributes", "stuff_names")}}
    torch.save(old, assets / "default_model.pt")
    out = _run(ROOT / "scripts" / "bundle_model.py", "--vocab-from-data", "--data", data,
               "--assets", assets, cwd=ROOT)
    assert "the class table of 6 training images" in out
    new = torch.load(assets / "default_model.pt", weights_only=True)
    assert new["vocab"] == ckpt["vocab"]
    assert {k: v for k, v in new.items() if k not in ("vocab", "generator")} == \
        {k: v for k, v in old.items() if k not in ("vocab", "generator")}
    assert list(new["generator"]) == list(old["generator"])
    assert all(torch.equal(new["generator"][k], old["generator"][k]) for k in old["generator"])
    meta = json.loads((assets / "default_model.json").read_text())
    assert meta["size_bytes"] == (assets / "default_model.pt").stat().st_size
    assert "--vocab-from-data" in meta["vocabulary"]

    # A run that fine-tuned the shipped model: the start's card gives the commands before it.
    # Shipped as the other bundled model (default-128): its own files, the 64 px one kept.
    start = tmp_path / "start.json"
    start.write_text((assets / "default_model.json").read_text())
    # From a training checkpoint (shipped as its inference export), with a setting that changes
    # how the weights are used; one that changes the weights is refused first.
    ckpt_path = tmp_path / "layout" / "checkpoints" / "ckpt_00000002.pt"
    refused = subprocess.run(
        [sys.executable, ROOT / "scripts" / "bundle_model.py", tmp_path / "layout", "--data",
         data, "--assets", assets, "--name", "default-128", "--export", ckpt_path,
         "--set", "model.layout.mask_size=32"], cwd=ROOT, capture_output=True, text=True)
    assert refused.returncode != 0 and "--set model.layout.mask_size=32" in refused.stderr
    assert not (assets / "default_model_128.pt").exists()
    _run(ROOT / "scripts" / "bundle_model.py", tmp_path / "layout", "--data", data,
         "--assets", assets, "--docs", docs, "--continues", start, "--name", "default-128",
         "--export", ckpt_path, "--set", "model.layout.partition_size=32", cwd=ROOT)
    shipped = torch.load(assets / "default_model_128.pt", weights_only=True)
    assert shipped["kind"] == "inference" and shipped["step"] == 2
    assert not {"optim_g", "optim_d", "discriminator", "rng"} & set(shipped)
    assert shipped["config"]["model"]["layout"]["partition_size"] == 32
    training = torch.load(ckpt_path, weights_only=True)
    assert all(torch.equal(v, training["generator_ema"][k])
               for k, v in shipped["generator"].items())
    assert (assets / "default_model.json").read_text() == start.read_text()
    assert (assets / "default_model_128.pt").is_file()
    assert (docs / "default_model_128_eval.md").is_file()
    meta = json.loads((assets / "default_model_128.json").read_text())
    assert "load_model('default-128')" in meta["description"]
    assert meta["evaluation"]["command"].startswith("sg2img evaluate --checkpoint default-128 ")
    assert meta["evaluation"]["report"].endswith("/default_model_128_eval.md")
    assert meta["training_commands"][:2] == commands and len(meta["training_commands"]) == 3
    assert f"--out {tmp_path / 'layout'}" in meta["training_commands"][2]
    assert meta["continues"]["card"] == str(start) and meta["continues"]["step"] == 2
    assert meta["shipped_settings"] == ["model.layout.partition_size=32"]

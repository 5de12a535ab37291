"""Visual Genome: raw JSON -> preprocess_vg.py -> h5 + vocab.json -> loader."""

import importlib.util
import json
import logging
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from data_fixtures import VG_THRESHOLD_ARGS, write_tiny_vg_raw

from sg2img.config import DataConfig
from sg2img.data import DatasetNotFoundError, VGSceneGraphDataset, build_dataset
from sg2img.data.vg import select_objects
from sg2img.scene_graph import collate_graphs
from sg2img.vocab import Vocab

ROOT = Path(__file__).resolve().parents[1]


def load_preprocess():
    """data_tools/ is a folder of scripts, not a package: import the script by path."""
    name = "sg2img_test_preprocess_vg"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "data_tools/preprocess_vg.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod          # dataclasses look their module up while executing
        spec.loader.exec_module(mod)
    return sys.modules[name]


@pytest.fixture
def vg_root(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "vg"
    write_tiny_vg_raw(raw, tmp_path / "vg_images")
    rc = load_preprocess().main(["--raw-dir", str(raw), "--out-dir", str(out),
                                 "--image-dir", str(tmp_path / "vg_images"),
                                 *VG_THRESHOLD_ARGS])
    assert rc == 0
    return out


def test_preprocess_writes_sg2im_fields(vg_root):
    vocab = json.loads((vg_root / "vocab.json").read_text())
    assert vocab["object_idx_to_name"] == ["__image__", "man", "dog", "tree"]
    assert vocab["pred_idx_to_name"] == ["__in_image__", "near", "on"]
    assert vocab["attribute_idx_to_name"] == ["red", "tall"]
    with h5py.File(vg_root / "train.h5", "r") as f:
        for field in ("image_ids", "object_names", "object_boxes", "objects_per_image",
                      "relationship_subjects", "relationship_predicates",
                      "relationship_objects", "relationships_per_image", "object_attributes",
                      "attributes_per_object", "image_paths"):
            assert field in f, field
        assert f["image_ids"][()].tolist() == [1, 2]           # image 3 is too small
        assert f["object_names"].shape == (2, 4)                # padded to max objects
        assert f["object_names"][0].tolist() == [1, 2, 3, 1]    # 'Guy' -> man
        assert f["object_names"][1].tolist() == [1, 3, 2, -1]   # 2 px man dropped
        assert f["object_boxes"][0, 1].tolist() == [30, 40, 20, 20]
        assert f["objects_per_image"][()].tolist() == [4, 3]
        n = f["relationships_per_image"][()].tolist()
        assert n == [2, 2]                                      # 'under' dropped
        subj, pred, obj = (f[f"relationship_{k}"][()] for k in ("subjects", "predicates",
                                                                 "objects"))
        assert [subj[0, 0], pred[0, 0], obj[0, 0]] == [0, 2, 1]    # man ON dog -> on
        assert [subj[0, 1], pred[0, 1], obj[0, 1]] == [3, 1, 2]    # guy near tree
        assert [subj[1, 0], pred[1, 0], obj[1, 0]] == [0, 2, 1]    # 'on top of' -> on
        assert subj.shape == (2, 3) and subj[0, 2] == -1
        assert f["object_attributes"][0, 0].tolist() == [0, 1, -1]  # red, tall
        assert f["object_attributes"][0, 2].tolist() == [1, -1, -1]
        assert f["attributes_per_object"][0].tolist() == [2, 0, 1, 0]
        paths = f["image_paths"][()]
        assert isinstance(paths[0], bytes) and paths[0].decode() == "VG_100K/1.jpg"
    with h5py.File(vg_root / "val.h5", "r") as f:
        assert f["image_ids"][()].tolist() == [4]
        assert f["object_names"][0].tolist() == [1, 3, -1, -1]  # cat is not in the vocab
    with h5py.File(vg_root / "test.h5", "r") as f:
        assert len(f["image_ids"]) == 0                          # no usable relationship


def test_thresholds_are_flags(tmp_path):
    raw = tmp_path / "raw"
    write_tiny_vg_raw(raw, tmp_path / "img")
    args = list(VG_THRESHOLD_ARGS)
    args[args.index("--min-object-instances") + 1] = "3"        # only 'man' (4) survives
    assert load_preprocess().main(["--raw-dir", str(raw), "--out-dir", str(tmp_path / "o"),
                                   *args]) == 0
    vocab = Vocab.load(tmp_path / "o/vocab.json")
    assert vocab.object_names == ("__image__", "man")


def test_split_ids_missing_from_image_data_are_reported_not_counted(tmp_path, caplog):
    raw = tmp_path / "raw"
    write_tiny_vg_raw(raw, tmp_path / "img")
    splits = json.loads((raw / "vg_splits.json").read_text())
    splits["train"] += [98, 99]                           # not in image_data.json
    (raw / "vg_splits.json").write_text(json.dumps(splits))
    with caplog.at_level(logging.INFO, logger="preprocess_vg"):
        assert load_preprocess().main(["--raw-dir", str(raw), "--out-dir", str(tmp_path / "o"),
                                       *VG_THRESHOLD_ARGS]) == 0
    assert "split train: 2 of 5 image ids are not in image_data.json" in caplog.text
    # 2 of the 3 known train images are large enough (image 3 is 40 px wide)
    assert "split train: 2 of 3 images are at least 50 px" in caplog.text
    assert "split val: 1 of 1 images are at least 50 px" in caplog.text
    with h5py.File(tmp_path / "o/train.h5", "r") as f:
        assert f["image_ids"][()].tolist() == [1, 2]


def test_loader_items(vg_root):
    ds = VGSceneGraphDataset(vg_root / "train.h5", vg_root / "vocab.json", vg_root / "images",
                             image_size=32, max_objects=10, deterministic=True)
    assert len(ds) == 2
    s = ds[0]
    names = [ds.vocab.object_name(i) for i in s.objs]
    assert names == ["man", "dog", "tree", "man", "__image__"]
    assert s.masks is None and s.box_given.all()
    assert s.image.shape == (3, 32, 32) and s.image_id == 1
    # boxes are normalised by the real image size (100 x 80)
    np.testing.assert_allclose(s.boxes[1].numpy(), [0.3, 0.5, 0.5, 0.75])
    np.testing.assert_allclose(s.boxes[-1].numpy(), [0, 0, 1, 1])
    rels = [(names[a], ds.vocab.pred_name(p), names[b]) for a, p, b in s.triples.tolist()]
    assert rels[:2] == [("man", "on", "dog"), ("man", "near", "tree")]
    assert rels[2:] == [(n, "__in_image__", "__image__") for n in names[:-1]]
    assert s.attributes.shape == (5, 2)
    assert s.attributes[0].tolist() == [1, 1] and s.attributes[2].tolist() == [0, 1]
    assert collate_graphs([ds[0], ds[1]]).masks is None


def test_max_objects_prefers_objects_in_relationships(vg_root):
    ds = VGSceneGraphDataset(vg_root / "train.h5", vg_root / "vocab.json", vg_root / "images",
                             image_size=16, max_objects=2, deterministic=False)
    for _ in range(10):
        s = ds[1]                          # image 2: 3 objects, all in relationships
        assert len(s.objs) == 3 and (s.triples[:, [0, 2]] < 3).all()
    # image 1: all 4 objects are in relationships; 3 of them are kept, triples re-indexed
    ds3 = VGSceneGraphDataset(vg_root / "train.h5", vg_root / "vocab.json",
                              vg_root / "images", image_size=16, max_objects=3)
    s = ds3[0]
    assert len(s.objs) == 4 and (s.triples[:, [0, 2]] < 4).all()


def test_select_objects_hand_cases():
    rng = np.random.default_rng(0)
    subs, objs = np.array([4, 1]), np.array([1, 6])
    assert select_objects(8, subs, objs, 3, rng).tolist() == [1, 4, 6]
    filled = select_objects(8, subs, objs, 5, rng)
    assert set([1, 4, 6]) <= set(filled.tolist()) and len(filled) == 5
    assert select_objects(8, subs, objs, 5, rng, use_orphaned_objects=False).tolist() == \
        [1, 4, 6]
    two = select_objects(8, subs, objs, 2, rng)
    assert len(two) == 2 and set(two.tolist()) <= {1, 4, 6}
    a = select_objects(20, np.arange(10), np.arange(10, 20), 6, np.random.default_rng(1))
    b = select_objects(20, np.arange(10), np.arange(10, 20), 6, np.random.default_rng(1))
    assert a.tolist() == b.tolist()


def test_sg2im_flattened_attributes(vg_root, tmp_path):
    # sg2im's own script stores object_attributes as (sum of objects, A): regrouped per image.
    with h5py.File(vg_root / "train.h5", "r") as f:
        data = {k: f[k][()] for k in f}
    flat = np.concatenate([data["object_attributes"][i, :n]
                           for i, n in enumerate(data["objects_per_image"])])
    data["object_attributes"] = flat
    path = tmp_path / "sg2im.h5"
    with h5py.File(path, "w") as f:
        for k, v in data.items():
            f.create_dataset(k, data=v)
    a = VGSceneGraphDataset(path, vg_root / "vocab.json", vg_root / "images", image_size=16,
                            deterministic=True)
    b = VGSceneGraphDataset(vg_root / "train.h5", vg_root / "vocab.json", vg_root / "images",
                            image_size=16, deterministic=True)
    for i in range(2):
        assert torch.equal(a[i].attributes, b[i].attributes)


def test_build_dataset_vg(vg_root):
    cfg = DataConfig(dataset="vg", root=str(vg_root), min_objects=2, max_objects=10)
    val = build_dataset(cfg, "val", 32, 16)
    assert len(build_dataset(DataConfig(dataset="vg", root=str(vg_root)), "val", 32, 16)) == 0
    assert len(val) == 1 and val.deterministic
    assert len(build_dataset(cfg, "test", 32, 16)) == 0
    s = val[0]
    assert [val.vocab.object_name(i) for i in s.objs] == ["man", "tree", "__image__"]


def test_missing_files(vg_root, tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"h5 file not found: .*dev\.h5"):
        VGSceneGraphDataset(vg_root / "dev.h5", vg_root / "vocab.json", vg_root / "images")
    with pytest.raises(DatasetNotFoundError, match="vocab"):
        VGSceneGraphDataset(vg_root / "train.h5", tmp_path / "none.json", vg_root / "images")
    with pytest.raises(DatasetNotFoundError, match="image directory"):
        VGSceneGraphDataset(vg_root / "train.h5", vg_root / "vocab.json", tmp_path / "none")
    bad = tmp_path / "bad.h5"
    with h5py.File(bad, "w") as f:
        f.create_dataset("image_ids", data=np.arange(2))
    with pytest.raises(ValueError, match="lacks the fields"):
        VGSceneGraphDataset(bad, vg_root / "vocab.json", vg_root / "images")
    assert load_preprocess().main(["--raw-dir", str(tmp_path / "nothing"), "--out-dir",
                                   str(tmp_path / "o")]) == 1

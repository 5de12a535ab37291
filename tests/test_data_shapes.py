"""Procedural scenes: structure, determinism, the COCO-Stuff files and loading them back."""

import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools.coco import COCO

from sg2img.config import DataConfig
from sg2img.data import build_dataset
from sg2img.data.coco import crop_mask
from sg2img.data.shapes import (
    CATEGORY_ID,
    MAX_OBJECTS,
    MIN_BOX_AREA,
    MIN_OBJECTS,
    OTHER_NAME,
    STUFF_CLASSES,
    TEMPLATES,
    THING_CLASSES,
    categories,
    class_attributes,
    generate_scene,
    image_rng,
    plan_scene,
    render_scene,
    shapes_vocab,
    stuff_index_at,
    value_noise,
    write_dataset,
)
from sg2img.vocab import Vocab

ROOT = Path(__file__).resolve().parents[1]
THING = {c.name: c for c in THING_CLASSES}


def load_script(name: str):
    key = f"sg2img_test_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, ROOT / "data_tools" / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[key] = mod
        spec.loader.exec_module(mod)
    return sys.modules[key]


@pytest.fixture(scope="module")
def scenes():
    return [generate_scene(0, "train", i, 64) for i in range(40)]


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("shapes")
    write_dataset(out, size=32, num_images={"train": 10, "val": 4, "test": 4}, seed=3,
                  workers=1, vg=True)
    return out


def test_categories_and_vocab():
    cats = categories()
    k = len(THING_CLASSES)
    assert 16 <= k <= 20 and len(STUFF_CLASSES) == 8
    assert [c["id"] for c in cats] == list(range(1, len(cats) + 1))
    assert all(c["isthing"] == 1 for c in cats[:k]) and all(c["isthing"] == 0 for c in cats[k:])
    assert cats[-1]["name"] == "other" and all(c["supercategory"] for c in cats)
    vocab = shapes_vocab()
    assert vocab.num_objects == len(cats) + 1 and vocab.object_idx("boat") == CATEGORY_ID["boat"]


def test_same_seed_same_scene_and_different_images_differ():
    a, b = generate_scene(7, "val", 3, 64), generate_scene(7, "val", 3, 64)
    assert np.array_equal(a.image, b.image)
    assert [x.name for x in a.annotations] == [x.name for x in b.annotations]
    assert all(np.array_equal(x.mask, y.mask) for x, y in zip(a.annotations, b.annotations,
                                                              strict=True))
    assert not np.array_equal(a.image, generate_scene(7, "val", 4, 64).image)
    assert not np.array_equal(a.image, generate_scene(7, "test", 3, 64).image)
    assert not np.array_equal(a.image, generate_scene(8, "val", 3, 64).image)


def test_scenes_satisfy_the_loader_filters(scenes):
    for sc in scenes:
        assert sc.image.shape == (64, 64, 3) and sc.image.dtype == np.uint8
        assert MIN_OBJECTS <= len(sc.kept()) <= MAX_OBJECTS
        # every pixel belongs to exactly one annotation (stuff or thing), like COCO-Stuff
        cover = np.sum([a.mask for a in sc.annotations], axis=0)
        assert (cover == 1).all()
        for a in sc.annotations:
            if a.isthing:     # every drawn thing is annotated and passes the 2% filter
                assert a.box_fraction > MIN_BOX_AREA


def test_small_objects_and_class_coverage(scenes):
    fractions = [a.box_fraction for sc in scenes for a in sc.annotations if a.isthing]
    assert min(fractions) > MIN_BOX_AREA
    assert np.mean(np.array(fractions) < 0.05) > 0.2        # many things are 2-5% of the image
    names = {a.name for sc in scenes for a in sc.annotations}
    assert len(names) >= 20                                  # most classes appear in 40 scenes


def test_structural_priors_hold():
    """Sky things lie in the sky, ground things stand on their supports, stuff is stacked."""
    for i in range(60):
        plan = plan_scene(image_rng(1, "train", i))
        names = [r.name for r in plan.stuff]
        if "sky" in names:
            assert names[0] == "sky"                         # sky is the top region
        for later in ("water", "grass", "sand", "road", "snow"):
            if later in names and "mountain" in names:
                assert names.index("mountain") < names.index(later)
        for t in plan.things:
            cls = THING[t.name]
            assert t.name in TEMPLATES[plan.template]
            x0, y0, x1, y1 = t.box
            assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1
            xs = np.linspace(x0, x1, 5)[1:-1]
            if cls.placement == "ground":
                feet = stuff_index_at(plan.stuff, xs, np.full(3, y1 - 0.01))
                assert {plan.stuff[k].name for k in feet} <= set(cls.supports)
                assert y1 > plan.horizon                     # stands below the horizon
            else:
                grid = stuff_index_at(plan.stuff, xs[None, :], np.linspace(y0, y1, 5)[:, None])
                assert {plan.stuff[k].name for k in grid.ravel()} <= set(cls.supports)


def test_perspective_ground_things_grow_towards_the_bottom():
    bottoms, areas = [], []
    for i in range(300):
        plan = plan_scene(image_rng(2, "train", i))
        for t in plan.things:
            if t.name in ("person", "sheep", "tree", "car"):
                lo, hi = THING[t.name].area
                area = (t.box[2] - t.box[0]) * (t.box[3] - t.box[1])
                depth = (t.box[3] - plan.horizon) / (1 - plan.horizon)
                bottoms.append(depth)
                areas.append((area - lo) / (hi - lo))
    assert np.corrcoef(bottoms, areas)[0, 1] > 0.5


def test_resolution_independent_plans():
    plan = plan_scene(image_rng(0, "train", 5))
    small, large = render_scene(plan, 64), render_scene(plan, 128)
    assert large.image.shape == (128, 128, 3)
    assert [a.name for a in small.annotations] == [a.name for a in large.annotations]
    for a, b in zip(small.annotations, large.annotations, strict=True):
        np.testing.assert_allclose(np.array(a.bbox) * 2, b.bbox, atol=3)


def test_value_noise_range_and_determinism():
    xs = np.linspace(0, 1, 17)
    a = value_noise(np.random.default_rng(0), xs, xs[:9], (3, 5))
    b = value_noise(np.random.default_rng(0), xs, xs[:9], (3, 5))
    assert a.shape == (9, 17) and np.array_equal(a, b)
    assert 0 <= a.min() and a.max() <= 1
    # at lattice points the noise equals the lattice values
    lattice = np.random.default_rng(0).random((4, 6), dtype=np.float32)
    np.testing.assert_allclose(value_noise(np.random.default_rng(0), np.linspace(0, 1, 6),
                                           np.linspace(0, 1, 4), (3, 5)), lattice, atol=1e-6)


def test_written_files_are_coco_stuff(dataset_dir):
    info = json.loads((dataset_dir / "info.json").read_text())
    assert info["seed"] == 3 and info["image_size"] == 32 and (dataset_dir / "README").exists()
    for split, n in (("train", 10), ("val", 4), ("test", 4)):
        inst = COCO(str(dataset_dir / f"annotations/instances_{split}.json"))
        stuff = COCO(str(dataset_dir / f"annotations/stuff_{split}.json"))
        assert len(inst.getImgIds()) == n and len(list((dataset_dir / "images" / split)
                                                       .glob("*.png"))) == n
        assert {c["name"] for c in inst.loadCats(inst.getCatIds())} == \
            {c.name for c in THING_CLASSES}
        assert "other" in {c["name"] for c in stuff.loadCats(stuff.getCatIds())}
        image = inst.loadImgs(inst.getImgIds()[0])[0]
        assert (image["width"], image["height"]) == (32, 32)
        # masks of one image: things and stuff (without 'other') partition the pixels
        anns = inst.loadAnns(inst.getAnnIds(image["id"])) + [
            a for a in stuff.loadAnns(stuff.getAnnIds(image["id"]))
            if a["category_id"] != CATEGORY_ID["other"]]
        total = sum(inst.annToMask(a) if a["category_id"] < CATEGORY_ID["sky"]
                    else stuff.annToMask(a) for a in anns)
        assert (total == 1).all()


def test_loader_reads_the_procedural_data(dataset_dir):
    cfg = DataConfig(dataset="coco", root=str(dataset_dir))
    train = build_dataset(cfg, "train", 32, 8)
    val = build_dataset(cfg, "val", 64, 16)
    assert len(train) == 10 and len(val) == 4 and len(build_dataset(cfg, "test", 32, 8)) == 4
    assert train.vocab == shapes_vocab()
    for i in range(len(train)):
        assert MIN_OBJECTS <= train.num_objects(i) <= MAX_OBJECTS
    s = val[0]
    assert s.image.shape == (3, 64, 64) and s.masks.shape[1:] == (16, 16)
    assert torch.equal(val[0].triples, val[0].triples)            # deterministic split
    # the loader's boxes and masks agree with the rendered scene
    scene = generate_scene(3, "val", 0, 32)
    kept = scene.kept()
    ordered = [a for a in kept if a.isthing] + [a for a in kept if not a.isthing]  # files
    assert s.objs[:-1].tolist() == [a.category_id for a in ordered]
    for k, a in enumerate(ordered):
        x, y, w, h = a.bbox
        np.testing.assert_allclose(s.boxes[k].numpy(), [x / 32, y / 32, (x + w) / 32,
                                                       (y + h) / 32], atol=1e-6)
        mask = crop_mask(a.mask.astype(np.uint8), a.bbox, 16)
        assert np.array_equal(s.masks[k].numpy(), mask)
    img = np.asarray(Image.open(dataset_dir / "images/val/0000000.png"))
    assert np.array_equal(img, scene.image)


def test_the_loader_counts_the_class_table_of_its_split(dataset_dir):
    """The table a trained model stores is what the split's objects carry: every pair in it
    occurs in the files, and the renderer can write it."""

    train = build_dataset(DataConfig(dataset="coco", root=str(dataset_dir)), "train", 32, 8)
    table = train.vocab.class_attributes
    assert list(table) == train.vocab.user_object_names()
    names = {c: n for n, c in CATEGORY_ID.items()}
    seen: dict[str, set[str]] = {n: set() for n in table}
    for kind in ("instances", "stuff"):
        files = COCO(str(dataset_dir / f"annotations/{kind}_train.json"))
        for a in files.loadAnns(files.getAnnIds()):
            seen[names[a["category_id"]]].update(a["attributes"])
    renderer = class_attributes()
    for name, attrs in table.items():
        assert set(attrs) <= seen[name] and set(attrs) <= set(renderer[name]), name
        # A colour is an annotation's first attribute, a size its second: colours first.
        sizes = [a for a in attrs if a in ("small", "large")]
        assert list(attrs[len(attrs) - len(sizes):]) == sizes, attrs
    assert table[OTHER_NAME] == ()                 # dropped by the loader (include_other)
    assert sum(map(len, table.values())) >= 15    # 10 images: most classes seen at least once
    assert train.vocab.stuff_names == (*(c.name for c in STUFF_CLASSES), OTHER_NAME)
    # The renderer's table is the one shapes_vocab() (random test models) carries.
    assert shapes_vocab().class_attributes == renderer
    assert Vocab.from_dict(train.vocab.to_dict()).class_attributes == table


def test_same_output_for_any_worker_count(dataset_dir, tmp_path):
    write_dataset(tmp_path, size=32, num_images={"train": 10, "val": 4, "test": 4}, seed=3,
                  workers=2, vg=True, chunksize=3)

    def digest(root: Path) -> dict:
        files = sorted(p for p in root.rglob("*") if p.is_file() and "cache" not in p.parts
                       and p.name != "info.json")
        return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
                for p in files}
    assert digest(tmp_path) == digest(dataset_dir)


def test_vg_files_run_through_preprocess(dataset_dir, tmp_path):
    raw = dataset_dir / "vg_raw"
    for name in ("image_data", "objects", "relationships", "attributes", "vg_splits"):
        assert (raw / f"{name}.json").exists()
    out = tmp_path / "vg"
    rc = load_script("preprocess_vg").main([
        "--raw-dir", str(raw), "--out-dir", str(out), "--image-dir",
        str(dataset_dir / "images"), "--min-image-size", "0", "--min-object-size", "2",
        "--min-object-instances", "1", "--min-attribute-instances", "1",
        "--min-relationship-instances", "1", "--max-objects-per-image", "10"])
    assert rc == 0
    cfg = DataConfig(dataset="vg", root=str(out), max_objects=10)
    ds = build_dataset(cfg, "train", 32, 8)
    assert len(ds) == 10
    names = set(ds.vocab.object_names)
    assert "sky" in names and names <= {"__image__", *CATEGORY_ID}    # aliases merged
    preds = set(ds.vocab.pred_names)
    assert {"on", "above", "below"} & preds and "to the left of" not in preds
    s = ds[0]
    assert s.masks is None and s.image.shape == (3, 32, 32)


def test_make_shapes_cli(tmp_path):
    mod = load_script("make_shapes")
    assert mod.main(["--out", str(tmp_path / "d"), "--size", "32", "--num-train", "2",
                     "--num-val", "1", "--num-test", "1", "--workers", "1"]) == 0
    assert len(list((tmp_path / "d/images/train").glob("*.png"))) == 2
    grid = tmp_path / "grid.png"
    assert mod.main(["--grid", str(grid), "--grid-sizes", "32", "64"]) == 0
    with Image.open(grid) as im:
        # 8 columns, 2 rows per size; below, a row of 96-pixel crops per colourable class.
        assert im.size[0] >= 8 * 130 + 2 and im.size[1] >= 4 * 130 + 2 + 6 * 96
    with pytest.raises(SystemExit):
        mod.main([])

"""COCO-Stuff loading with sg2im's rules, on a tiny fixture in the real file format."""

import logging
import math

import numpy as np
import pytest
import torch
from data_fixtures import H, W, rle, triangle_mask, uncompressed_counts, write_tiny_coco

import sg2img.data as data_mod
from sg2img.config import DataConfig
from sg2img.data import CocoSceneGraphDataset, DatasetNotFoundError, build_dataset
from sg2img.data import coco as coco_mod
from sg2img.data.coco import (
    crop_mask,
    mask_centroids,
    segmentation_to_mask,
    synthesize_relationships,
)
from sg2img.data.common import spatial_predicate
from sg2img.scene_graph import collate_graphs
from sg2img.vocab import COCO_PREDICATES

P = {name: i for i, name in enumerate(COCO_PREDICATES)}


@pytest.fixture
def coco_root(tmp_path):
    expected = write_tiny_coco(tmp_path)
    return tmp_path, expected


def make(root, **kw):
    return CocoSceneGraphDataset(root / "images/train", root / "annotations/instances_train.json",
                                 root / "annotations/stuff_train.json", image_size=32,
                                 mask_size=8, **kw)


# ----------------------------------------------------------------------------- geometry
@pytest.mark.parametrize("s_box,o_box,s_c,o_c,pred", [
    ((0.1, 0.1, 0.9, 0.9), (0.3, 0.3, 0.6, 0.6), (0.5, 0.5), (0.45, 0.45), "surrounding"),
    ((0.3, 0.3, 0.6, 0.6), (0.1, 0.1, 0.9, 0.9), (0.45, 0.45), (0.5, 0.5), "inside"),
    ((0.0, 0.4, 0.2, 0.6), (0.6, 0.4, 0.8, 0.6), (0.1, 0.5), (0.7, 0.5), "left of"),
    ((0.6, 0.4, 0.8, 0.6), (0.0, 0.4, 0.2, 0.6), (0.7, 0.5), (0.1, 0.5), "right of"),
    ((0.4, 0.0, 0.6, 0.2), (0.4, 0.6, 0.6, 0.8), (0.5, 0.1), (0.5, 0.7), "above"),
    ((0.4, 0.6, 0.6, 0.8), (0.4, 0.0, 0.6, 0.2), (0.5, 0.7), (0.5, 0.1), "below"),
    # Diagonals: sg2im's sector edges; theta = +45 deg (down-right) is 'below'.
    ((0.5, 0.5, 0.7, 0.7), (0.0, 0.0, 0.2, 0.2), (0.6, 0.6), (0.1, 0.1), "below"),
    # theta = -45 deg (up-right) is 'right of'; theta = -135 deg (up-left) is 'left of'.
    ((0.5, 0.0, 0.7, 0.2), (0.0, 0.5, 0.2, 0.7), (0.6, 0.1), (0.1, 0.6), "right of"),
    ((0.0, 0.0, 0.2, 0.2), (0.5, 0.5, 0.7, 0.7), (0.1, 0.1), (0.6, 0.6), "left of"),
    # Shared edges are not strict containment: the angle decides.
    ((0.1, 0.1, 0.9, 0.9), (0.1, 0.3, 0.6, 0.6), (0.5, 0.2), (0.35, 0.45), "above"),
])
def test_spatial_predicate_hand_cases(s_box, o_box, s_c, o_c, pred):
    assert COCO_PREDICATES[spatial_predicate(s_box, o_box, s_c, o_c)] == pred


def test_mask_centroids_use_mask_pixels():
    boxes = np.array([[0.2, 0.4, 0.6, 0.8], [0.0, 0.0, 1.0, 1.0], [0.1, 0.1, 0.3, 0.5]])
    masks = np.zeros((3, 4, 4))
    masks[0, :, 0] = 1                      # left column: x = x0 + (0.5 / 4) * w
    masks[1, 3, 3] = 1                      # one pixel at the bottom right
    c = mask_centroids(boxes, masks)        # mask 2 is empty -> box centre
    np.testing.assert_allclose(c[0], [0.2 + 0.125 * 0.4, 0.6])
    np.testing.assert_allclose(c[1], [0.875, 0.875])
    np.testing.assert_allclose(c[2], [0.2, 0.3])
    np.testing.assert_allclose(mask_centroids(boxes, None)[0], [0.4, 0.6])


def test_relationships_follow_the_rule_and_are_deterministic():
    rng = np.random.default_rng(0)
    boxes = np.sort(rng.uniform(0, 1, (7, 2, 2)), axis=1).transpose(0, 2, 1).reshape(7, 4)
    boxes = boxes[:, [0, 2, 1, 3]]          # (x0, y0, x1, y1) with x0 < x1, y0 < y1
    masks = (rng.uniform(size=(7, 8, 8)) > 0.4).astype(np.float32)
    a = synthesize_relationships(boxes, masks, np.random.default_rng(123))
    b = synthesize_relationships(boxes, masks, np.random.default_rng(123))
    c = synthesize_relationships(boxes, masks, np.random.default_rng(124))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == (7, 3) and a.dtype == np.int64
    assert (a[:, 0] != a[:, 2]).all()
    # Each object takes part in its own triple (object t is subject or object of triple t).
    assert all(t in (s, o) for t, (s, _, o) in enumerate(a))
    centres = mask_centroids(boxes, masks)
    for s, p, o in a:
        assert p == spatial_predicate(boxes[s], boxes[o], centres[s], centres[o])
    assert 0 not in a[:, 1]                 # never __in_image__


def test_relationships_for_fewer_than_two_objects():
    rng = np.random.default_rng(0)
    assert synthesize_relationships(np.zeros((0, 4)), None, rng).shape == (0, 3)
    assert synthesize_relationships(np.array([[0, 0, 1, 1.0]]), None, rng).shape == (0, 3)


def test_two_objects_hand_made_scene():
    # A sky band above a ground band: whichever is the subject, the predicate is fixed.
    boxes = np.array([[0.0, 0.0, 1.0, 0.4], [0.0, 0.4, 1.0, 1.0]])
    for seed in range(5):
        for s, p, _ in synthesize_relationships(boxes, None, np.random.default_rng(seed)):
            assert COCO_PREDICATES[p] == ("above" if s == 0 else "below")


# ----------------------------------------------------------------------------- masks
def test_segmentation_formats_decode_to_the_same_mask():
    mask = np.zeros((H, W), np.uint8)
    mask[3:13, 2:12] = 1
    poly = [[2.0, 3.0, 12.0, 3.0, 12.0, 13.0, 2.0, 13.0]]
    for seg in (rle(mask), {"size": [H, W], "counts": uncompressed_counts(mask)}):
        np.testing.assert_array_equal(segmentation_to_mask(seg, H, W), mask)
    # pycocotools rasterises polygon edges; the interior must match.
    assert segmentation_to_mask(poly, H, W)[4:12, 3:11].all()


def test_crop_mask_keeps_the_shape_inside_the_box():
    m = triangle_mask(20, 10, 36, 26)
    crop = crop_mask(m, [20, 10, 16, 16], 8)
    assert crop.shape == (8, 8) and crop.dtype == np.uint8
    assert crop[7, 0] == 1 and crop[0, 7] == 0           # lower-left triangle
    np.testing.assert_array_equal(crop, np.tril(np.ones((8, 8), np.uint8)) | crop)
    assert crop_mask(m, [0, 0, 0.2, 0.2], 4).shape == (4, 4)   # sub-pixel box: 1 px crop


# ----------------------------------------------------------------------------- dataset
def test_filters_keep_the_expected_images_and_objects(coco_root, caplog):
    root, expected = coco_root
    with caplog.at_level(logging.INFO, logger="sg2img.data.coco"):
        ds = make(root)
    assert ds.image_ids == expected["kept_image_ids"]
    for i, image_id in enumerate(ds.image_ids):
        objs = ds[i].objs.tolist()
        assert objs[:-1] == expected["objects"][image_id] and objs[-1] == 0
    assert "2 of 5 images kept (4 with stuff" in caplog.text     # counts are logged
    assert "7 objects; dropped 1 small objects and 2 'other'" in caplog.text


def test_filter_options(coco_root):
    root, _ = coco_root
    with_other = make(root, include_other=True)           # image 1 gains 'other' (5 objects)
    assert 183 in with_other[0].objs.tolist()
    assert make(root, stuff_only=False, min_objects=3).image_ids == [1, 4, 5]
    assert make(root, max_objects=9).image_ids == [1, 3, 5]
    assert make(root, min_object_size=0.0).image_ids == [1, 5]   # 4 objects in image 1 + tiny
    assert len(make(root, min_object_size=0.0)[0].objs) == 6


def test_item_contract(coco_root):
    root, _ = coco_root
    ds = make(root, deterministic=True)
    assert ds.vocab.num_objects == 184 and ds.vocab.object_name(157) == "sky-other"
    assert ds.vocab.pred_names == COCO_PREDICATES
    s = ds[0]
    o = len(s.objs)
    assert o == 5 and s.objs.dtype == torch.long
    assert s.boxes.shape == (o, 4) and s.boxes.dtype == torch.float32
    assert s.box_given.dtype == torch.bool and s.box_given.all()
    assert s.masks.shape == (o, 8, 8) and s.masks.dtype == torch.float32
    assert set(s.masks.unique().tolist()) <= {0.0, 1.0}
    assert s.image.shape == (3, 32, 32) and -1 <= s.image.min() and s.image.max() <= 1
    assert s.image_id == 1
    # image node last with the whole-image box and mask, one __in_image__ triple per object
    assert s.objs[-1] == 0 and s.boxes[-1].tolist() == [0, 0, 1, 1] and s.masks[-1].all()
    in_image = s.triples[s.triples[:, 1] == 0]
    assert in_image[:, 0].tolist() == list(range(o - 1)) and (in_image[:, 2] == o - 1).all()
    assert (s.triples[:, [0, 2]] < o).all() and len(s.triples) == 2 * (o - 1)
    batch = collate_graphs([ds[0], ds[1]])
    assert batch.num_images == 2 and batch.images.shape == (2, 3, 32, 32)


def test_boxes_and_masks_hand_computed(coco_root):
    root, _ = coco_root
    s = make(root)[0]
    # person: polygon rectangle x 2..12, y 3..13 in a 40 x 30 image
    np.testing.assert_allclose(s.boxes[0], [2 / W, 3 / H, 12 / W, 13 / H], atol=1e-6)
    assert s.masks[0].all()
    # dog: a lower-left triangle filling its box x 20..36, y 10..26
    np.testing.assert_allclose(s.boxes[1], [20 / W, 10 / H, 36 / W, 26 / H], atol=1e-6)
    assert s.masks[1][7, 0] == 1 and s.masks[1][0, 7] == 0
    # sky: top band, grass: bottom band
    np.testing.assert_allclose(s.boxes[2], [0, 0, 1, 10 / H], atol=1e-6)
    np.testing.assert_allclose(s.boxes[3], [0, 20 / H, 1, 1], atol=1e-6)
    # sky is above grass whichever way round the triple goes
    for a, p, b in s.triples.tolist():
        if {a, b} == {2, 3}:
            assert COCO_PREDICATES[p] == ("above" if a == 2 else "below")


def test_deterministic_sampling(coco_root):
    root, _ = coco_root
    ds = make(root, deterministic=True, seed=5)
    assert torch.equal(ds[0].triples, ds[0].triples)
    expected = synthesize_relationships(ds._index.obj_boxes[:4], ds._index.obj_masks[:4],
                                        np.random.default_rng(5 + 0))
    assert ds[0].triples[:4].tolist() == expected.tolist()
    train = make(root, deterministic=False)
    torch.manual_seed(0)
    a = [train[0].triples for _ in range(6)]
    torch.manual_seed(0)
    b = [train[0].triples for _ in range(6)]
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))   # follows torch's seed
    assert any(not torch.equal(a[0], x) for x in a[1:])                  # resampled each time


def test_cache_round_trip(coco_root, monkeypatch):
    root, _ = coco_root
    cache = root / "cache"
    first = make(root, cache_dir=cache, deterministic=True)
    files = list(cache.glob("*.h5"))
    assert len(files) == 1

    def fail(*a, **k):
        raise AssertionError("the cache should have been used")
    monkeypatch.setattr(coco_mod, "_build_index", fail)
    second = make(root, cache_dir=cache, deterministic=True)
    for i in range(len(first)):
        x, y = first[i], second[i]
        assert torch.equal(x.objs, y.objs) and torch.equal(x.masks, y.masks)
        assert torch.equal(x.boxes, y.boxes) and torch.equal(x.triples, y.triples)
    assert second.vocab == first.vocab
    monkeypatch.undo()
    make(root, cache_dir=cache, min_objects=2)           # other parameters: another file
    assert len(list(cache.glob("*.h5"))) == 2


def test_build_dataset_own_split_names(coco_root):
    root, expected = coco_root
    ds = build_dataset(DataConfig(dataset="coco", root=str(root)), "train", 32, 8)
    assert len(ds) == 2 and ds.vocab.num_objects == 184
    assert ds.deterministic is False
    assert build_dataset(DataConfig(root=str(root)), "train", 32, 8,
                         deterministic=True).deterministic


def test_build_dataset_coco2017_val_test_split(tmp_path, monkeypatch):
    write_tiny_coco(tmp_path, ("instances_val2017.json", "stuff_val2017.json"),
                    "images/val2017")
    cfg = DataConfig(dataset="coco", root=str(tmp_path), min_objects=1, max_objects=9,
                     include_other=True)
    full = build_dataset(cfg, "val", 32, 8)
    assert full.image_ids == [1, 2, 3, 5]                # fewer than 1024: all of them
    monkeypatch.setattr(data_mod, "COCO_VAL_SIZE", 1)
    monkeypatch.setattr(data_mod, "COCO_TEST_SIZE", 2)
    val, test = build_dataset(cfg, "val", 32, 8), build_dataset(cfg, "test", 32, 8)
    assert val.image_ids == [1] and test.image_ids == [3, 5]   # first 1, last 2
    assert val.deterministic and test.deterministic
    with pytest.raises(DatasetNotFoundError, match="instances_train"):
        build_dataset(cfg, "train", 32, 8)                # no train2017 files here


def test_missing_paths_have_clear_errors(tmp_path, coco_root):
    with pytest.raises(DatasetNotFoundError, match="dataset directory not found"):
        build_dataset(DataConfig(root=str(tmp_path / "nope")), "train", 32, 8)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError, match=r"instances_val\.json.*instances_val2017"):
        build_dataset(DataConfig(root=str(tmp_path / "empty")), "val", 32, 8)
    root, _ = coco_root
    (root / "annotations/stuff_train.json").unlink()
    with pytest.raises(DatasetNotFoundError, match="stuff_train.json"):
        build_dataset(DataConfig(root=str(root)), "train", 32, 8)
    with pytest.raises(DatasetNotFoundError, match="image directory not found"):
        CocoSceneGraphDataset(root / "no_images", root / "annotations/instances_train.json")
    with pytest.raises(ValueError, match="unknown split"):
        build_dataset(DataConfig(root=str(root)), "dev", 32, 8)
    with pytest.raises(ValueError, match="data.root is empty"):
        build_dataset(DataConfig(root=""), "train", 32, 8)


def test_predicate_angles_cover_the_circle():
    # Walk around a unit circle: the four sectors come in order, each a quarter turn.
    names = []
    for k in range(16):
        a = 2 * math.pi * (k + 0.5) / 16
        c = (0.5 + 0.3 * math.cos(a), 0.5 + 0.3 * math.sin(a))
        names.append(COCO_PREDICATES[spatial_predicate((0, 0, 0.1, 0.1), (0.9, 0.9, 1, 1),
                                                       c, (0.5, 0.5))])
    assert names == ["right of"] * 2 + ["below"] * 4 + ["left of"] * 4 + ["above"] * 4 + \
        ["right of"] * 2


def test_annotations_without_images(coco_root):
    """object_boxes and with_images=False give the annotations without reading any image."""
    coco_root, _ = coco_root
    ds = make(coco_root, deterministic=True)
    full = [ds[i] for i in range(len(ds))]
    for i, s in enumerate(full):
        objs, boxes = ds.object_boxes(i)
        assert torch.equal(objs, s.objs[:-1]) and torch.equal(boxes, s.boxes[:-1])
    for p in (coco_root / "images" / "train").iterdir():
        p.unlink()                                    # reading an image would now fail
    ds.with_images = False
    for i, s in enumerate(full):
        t = ds[i]
        assert t.image is None
        assert torch.equal(t.objs, s.objs) and torch.equal(t.triples, s.triples)
        assert torch.equal(t.masks, s.masks)
    assert collate_graphs([ds[0], ds[1]]).images is None

"""The scene detector: build / save / load, detect, the COCO-weights wrapper, training, shipped."""

from __future__ import annotations

import json

import pytest
import torch

import sg2img.eval.nets as nets_module
from sg2img.config import DataConfig
from sg2img.data import build_dataset
from sg2img.data.shapes import write_dataset
from sg2img.eval import (
    DETECTOR_FILE,
    Detections,
    DetectorTraining,
    EvalWeightsError,
    SceneDetector,
    build_detector,
    coco_category_names,
    detector_arch,
    load_coco_detector,
    load_detector,
    save_detector,
    train_detector,
)
from sg2img.eval.detector_training import (
    choose_threshold,
    collect_boxes,
    fit_detector,
    greedy_matches,
)

NAMES = ("__image__", "sun", "car", "sky")
SMALL = detector_arch(input_size=64, fpn_channels=32, head_convs=1)


@pytest.fixture(scope="module")
def tiny_detector() -> SceneDetector:
    torch.manual_seed(0)
    return build_detector(NAMES, threshold=0.3, arch=SMALL)


@pytest.fixture(scope="module")
def shapes_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("shapes_det")
    write_dataset(out, size=64, num_images={"train": 8, "val": 8}, seed=11, workers=1)
    return out


def test_detect_shapes_ranges_and_threshold(tiny_detector):
    images = torch.rand(2, 3, 64, 64) * 2 - 1
    tiny_detector.train()
    found = tiny_detector.detect(images, threshold=0.0)
    assert tiny_detector.training                      # its mode is given back
    assert len(found) == 2 and all(isinstance(d, Detections) for d in found)
    for d in found:
        assert d.boxes.shape == (len(d), 4) and d.labels.dtype == torch.long
        assert len(d) > 0                              # random weights still score >= 0.05
        assert d.boxes.min() >= 0 and d.boxes.max() <= 1
        assert (d.boxes[:, 2:] >= d.boxes[:, :2]).all()
        assert d.labels.max() < len(NAMES)
        assert (d.scores[:-1] >= d.scores[1:]).all()   # highest first
        assert set(d.names(NAMES)) <= set(NAMES)
    cut = float(found[0].scores.median())
    above = tiny_detector.detect(images, threshold=cut)
    assert len(above[0]) == int((found[0].scores >= cut).sum()) and (above[0].scores >= cut).all()
    tiny_detector.threshold = cut                      # the default threshold is the stored one
    assert len(tiny_detector.detect(images)[0]) == len(above[0])
    # any square size: boxes stay fractions of the image
    big = tiny_detector.detect(torch.nn.functional.interpolate(images, size=96), threshold=0.0)
    assert all(d.boxes.max() <= 1 for d in big)
    assert tiny_detector.detect(images[:0]) == []
    with pytest.raises(ValueError, match="square images"):
        tiny_detector.detect(torch.zeros(1, 3, 64, 32))


def test_save_load_round_trip(tiny_detector, tmp_path):
    path = save_detector(tiny_detector, tmp_path / "det.pt", map_50=0.5)
    raw = torch.load(path, weights_only=True)
    assert raw["object_names"] == list(NAMES) and raw["arch"] == SMALL
    assert raw["meta"]["map_50"] == 0.5
    loaded = load_detector(path)
    assert loaded.object_names == NAMES and loaded.threshold == tiny_detector.threshold
    assert loaded.input_size == 64 and not loaded.training
    for k, v in tiny_detector.model.state_dict().items():
        w = loaded.model.state_dict()[k]
        assert w.dtype == v.dtype
        expect = v.half().float() if v.is_floating_point() else v   # stored as float16
        torch.testing.assert_close(w, expect)
    images = torch.rand(1, 3, 64, 64) * 2 - 1
    a, b = loaded.detect(images, 0.0)[0], load_detector(path).detect(images, 0.0)[0]
    torch.testing.assert_close(a.boxes, b.boxes)


class _Boom:
    def __reduce__(self):
        return (print, ("a pickle that runs code",))


def test_missing_and_hostile_files_are_refused(tiny_detector, tmp_path, monkeypatch):
    with pytest.raises(EvalWeightsError, match="--detector-weights") as e:
        load_detector(tmp_path / "absent.pt")
    assert "absent.pt" in str(e.value)
    monkeypatch.setattr(nets_module, "ASSET_DIR", tmp_path / "assets")
    with pytest.raises(EvalWeightsError, match="shipped detector weights are missing") as e:
        load_detector()
    assert DETECTOR_FILE in str(e.value) and "--nets detector" in str(e.value)
    evil = tmp_path / "evil.pt"
    torch.save({"kind": "SceneDetector", "x": _Boom()}, evil)
    with pytest.raises(EvalWeightsError, match="evil.pt"):
        load_detector(evil)
    other = tmp_path / "other.pt"
    torch.save({"kind": "CropClassifier", "state_dict": {}}, other)
    with pytest.raises(ValueError, match="not an sg2img detector file"):
        load_detector(other)
    good = torch.load(save_detector(tiny_detector, tmp_path / "d.pt"), weights_only=True)
    for key, value, message in [("threshold", 3.0, "threshold"),
                                ("arch", {**SMALL, "fpn_channels": 10 ** 6}, "fpn_channels"),
                                ("object_names", ["x"] * 5000, "object_names")]:
        torch.save({**good, key: value}, tmp_path / "bad.pt")
        with pytest.raises(ValueError, match=message):
            load_detector(tmp_path / "bad.pt")
    torch.save({**good, "state_dict": {"nope": torch.zeros(1)}}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="does not fit"):
        load_detector(tmp_path / "bad.pt")


def test_coco_detector_from_a_state_dict(tmp_path):
    import torchvision.models.detection as tvd

    names = coco_category_names("ssdlite320_mobilenet_v3_large")
    things = [n for n in names if n not in ("__background__", "N/A")]
    assert len(names) == 91 and len(things) == 80 and {"person", "car", "dog"} <= set(things)
    torch.manual_seed(0)
    model = tvd.ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None,
                                              num_classes=91)
    path = tmp_path / "coco_ssdlite.pth"
    torch.save(model.state_dict(), path)
    det = load_coco_detector(path, arch="ssdlite320_mobilenet_v3_large", threshold=0.0)
    assert det.object_names == names and not det.training
    found = det.detect(torch.rand(1, 3, 64, 64) * 2 - 1)
    assert found[0].boxes.shape[1] == 4 and found[0].boxes.max() <= 1
    assert set(found[0].names(det.object_names)) <= set(names)
    with pytest.raises(EvalWeightsError, match="missing.pth"):
        load_coco_detector(tmp_path / "missing.pth", arch="ssdlite320_mobilenet_v3_large")
    with pytest.raises(ValueError, match="coco_ssdlite.pth is not a torchvision "
                                         "fasterrcnn_mobilenet_v3_large_320_fpn"):
        load_coco_detector(path, arch="fasterrcnn_mobilenet_v3_large_320_fpn")
    with pytest.raises(ValueError, match="unknown COCO detector architecture"):
        load_coco_detector(path, arch="yolo")


def test_greedy_matching_and_threshold():
    gt_boxes = [torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]])]
    gt_labels = [torch.tensor([1, 2])]
    preds = [{"boxes": torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.5, 0.5],
                                     [0.5, 0.5, 1.0, 1.0], [0.5, 0.5, 1.0, 1.0]]),
              "scores": torch.tensor([0.9, 0.8, 0.3, 0.7]), "labels": torch.tensor([1, 1, 2, 1])}]
    scores, hits, gt_scores = greedy_matches(preds, gt_boxes, gt_labels)
    # the duplicate (0.8) and the wrong class (0.7) miss; each box is matched once
    assert hits.tolist() == [True, False, False, True]
    assert gt_scores.tolist() == pytest.approx([0.9, 0.3])
    t, precision = choose_threshold(scores, hits, 0.95)
    assert t == pytest.approx(0.81) and precision == 1.0
    assert choose_threshold(scores, hits, 0.5) == (pytest.approx(0.05), 0.5)


def test_tiny_training_resumes_where_it_stopped(shapes_dir, tmp_path):
    train_set = build_dataset(DataConfig(dataset="coco", root=str(shapes_dir)), "train", 64, 16)
    data = collect_boxes(train_set)
    assert len(data["images"]) == 8 and all(len(b) == len(lab) > 0 for b, lab in
                                            zip(data["boxes"], data["labels"], strict=True))
    options = DetectorTraining(steps=4, batch_size=3, warmup=1, arch=SMALL,
                               checkpoint_every_s=0.0)
    names = train_set.vocab.object_names
    torch.manual_seed(0)
    straight = build_detector(names, arch=SMALL)
    _, steps = fit_detector(straight, data, options)
    assert steps == 4

    class Stop(RuntimeError):
        pass

    calls = []

    def interrupt(module, args):
        calls.append(1)
        if len(calls) == 3:
            raise Stop

    torch.manual_seed(0)
    broken = build_detector(names, arch=SMALL)
    hook = broken.register_forward_pre_hook(interrupt)
    ckpt = tmp_path / "ckpt.pt"
    with pytest.raises(Stop):
        fit_detector(broken, data, options, ckpt)
    hook.remove()
    assert torch.load(ckpt, weights_only=True)["step"] == 2
    torch.manual_seed(1)                               # other initial weights: all come from ckpt
    resumed = build_detector(names, arch=SMALL)
    _, steps = fit_detector(resumed, data, options, ckpt, resume=True)
    assert steps == 4
    for k, v in straight.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[k], v)
    with pytest.raises(ValueError, match="another detector training"):
        fit_detector(resumed, data, DetectorTraining(steps=5, arch=SMALL), ckpt, resume=True)


def test_train_detector_writes_weights_and_card(shapes_dir, tmp_path):
    cfg = DataConfig(dataset="coco", root=str(shapes_dir))
    train_set, val_set = (build_dataset(cfg, s, 64, 16) for s in ("train", "val"))
    torch.manual_seed(0)
    out = tmp_path / "eval"
    written = train_detector(train_set, val_set, out,
                             DetectorTraining(steps=2, batch_size=4, warmup=1, arch=SMALL),
                             provenance={"command": "test"})
    assert [p.name for p in written] == ["detector.pt", "meta.json"]
    det = load_detector(written[0])
    val = det.meta["val"]
    assert det.threshold == val["threshold"] and 0.05 <= det.threshold <= 0.99
    assert 0.0 <= val["map_50"] <= 1.0 and det.meta["command"] == "test"
    assert val["num_objects"] > 0 and det.meta["steps_done"] == 2


def test_shipped_detector_finds_the_objects_of_new_scenes(shapes_dir):
    """Procedural scenes of another seed than the training data, at 64 px."""
    det = load_detector()
    assert det.input_size == 128 and 0.05 <= det.threshold < 1
    val_set = build_dataset(DataConfig(dataset="coco", root=str(shapes_dir)), "val", 64, 16)
    assert det.object_names == tuple(val_set.vocab.object_names)
    data = collect_boxes(val_set)
    found = det.detect(data["images"].float() / 127.5 - 1.0)
    preds = [{"boxes": d.boxes, "scores": d.scores, "labels": d.labels} for d in found]
    _, hits, gt_scores = greedy_matches(preds, data["boxes"], data["labels"])
    assert len(gt_scores) >= 30
    assert float((gt_scores >= 0).float().mean()) >= 0.9
    assert float(hits.float().mean()) >= 0.8


def test_a_size_folder_shares_another_sizes_weights_at_its_own_threshold(tiny_detector, tmp_path,
                                                                         monkeypatch):
    """eval128/meta.json may point at the 64 px detector and give the threshold chosen on
    128 px real images; 64 px keeps the file's own threshold."""
    monkeypatch.setattr(nets_module, "ASSET_DIR", tmp_path / "eval")
    save_detector(tiny_detector, tmp_path / "eval" / DETECTOR_FILE)
    (tmp_path / "eval128").mkdir()
    meta = tmp_path / "eval128" / "meta.json"
    meta.write_text(json.dumps({"detector": {"weights_of": 64, "threshold": 0.33}}))
    at64, at128 = load_detector(), load_detector(image_size=128)
    assert at64.threshold == tiny_detector.threshold != 0.33
    assert at128.threshold == 0.33 and at128.meta["threshold_chosen_at"] == 128
    for k, v in at64.state_dict().items():
        assert torch.equal(v, at128.state_dict()[k])
    meta.write_text(json.dumps({"detector": {"weights_of": 64, "threshold": 7.0}}))
    with pytest.raises(ValueError, match="not a score"):
        load_detector(image_size=128)
    # A size without a folder of its own reads the 64 px one, at the file's threshold.
    assert load_detector(image_size=256).threshold == tiny_detector.threshold


def test_share_detector_scores_the_64px_detector_on_128px_scenes(tmp_path, monkeypatch):
    """train_eval_nets.py --detector-from 64: the 64 px weights, a threshold chosen on
    128 px val images, recorded where load_detector(image_size=128) reads it."""
    import shutil

    from sg2img.eval import share_detector

    shipped = nets_module.ASSET_DIR / DETECTOR_FILE
    write_dataset(tmp_path / "s128", size=128, num_images={"train": 2, "val": 8}, seed=12,
                  workers=1)
    val_set = build_dataset(DataConfig(dataset="coco", root=str(tmp_path / "s128")), "val",
                            128, 16)
    (tmp_path / "eval").mkdir()
    shutil.copy(shipped, tmp_path / "eval" / DETECTOR_FILE)
    monkeypatch.setattr(nets_module, "ASSET_DIR", tmp_path / "eval")
    share_detector(val_set, tmp_path / "eval128", 64, provenance={"command": "CMD"})
    entry = json.loads((tmp_path / "eval128" / "meta.json").read_text())["detector"]
    assert entry["weights_of"] == 64 and entry["command"] == "CMD"
    assert entry["val"]["map_50"] >= 0.9 and entry["val"]["num_objects"] >= 30
    assert load_detector(image_size=128).threshold == entry["threshold"]
    assert not (tmp_path / "eval128" / DETECTOR_FILE).exists()      # no weights copied

"""Pure metrics: layout recall (strictly above), box files, accuracy, pixel-distance diversity."""

import json
import math
from types import SimpleNamespace

import pytest
import torch

from sg2img import eval as M

GT = torch.tensor([[0.0, 0.0, 1.0, 1.0],
                   [0.0, 0.0, 1.0, 1.0],
                   [0.0, 0.0, 0.25, 1.0],
                   [0.0, 0.0, 1.0, 1.0]])
PRED = torch.tensor([[0.0, 0.0, 1.0, 1.0],      # IoU 1
                     [0.0, 0.0, 0.5, 1.0],      # IoU exactly 0.5
                     [0.5, 0.0, 1.0, 1.0],      # IoU 0
                     [0.0, 0.0, 0.75, 1.0]])    # IoU 0.75


def test_paired_iou_hand_computed_and_matches_pairwise_diagonal():
    iou = M.paired_box_iou(PRED, GT)
    assert iou.tolist() == [1.0, 0.5, 0.0, 0.75]
    assert torch.equal(iou, M.box_iou(PRED, GT).diagonal())
    # Quarter overlap: two half-offset unit-area boxes -> 0.25 / 1.75.
    a, b = torch.tensor([[0.0, 0.0, 0.5, 0.5]]), torch.tensor([[0.25, 0.25, 0.75, 0.75]])
    assert M.paired_box_iou(a, b).item() == pytest.approx(0.0625 / 0.4375)


def test_layout_recall_counts_strictly_above_threshold():
    r = M.layout_recall(PRED, GT)
    assert r["R@0.3"] == 0.75          # 1, 0.5, 0.75 are above 0.3
    assert r["R@0.5"] == 0.5           # exactly 0.5 does NOT count
    assert r["mean_iou"] == pytest.approx((1 + 0.5 + 0 + 0.75) / 4)
    assert r["num_objects"] == 4
    # A threshold equal to an IoU excludes it too.
    assert M.layout_recall(PRED, GT, thresholds=(0.75,))["R@0.75"] == 0.25


def test_layout_recall_pairs_by_index_not_best_match():
    a = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]])
    assert M.layout_recall(a, a)["R@0.5"] == 1.0
    assert M.layout_recall(a.flip(0), a)["R@0.5"] == 0.0    # swapped boxes do not match


def test_layout_recall_edge_cases():
    assert math.isnan(M.layout_recall(torch.zeros(0, 4), torch.zeros(0, 4))["R@0.5"])
    degenerate = torch.tensor([[0.5, 0.5, 0.5, 0.5]])
    assert M.paired_box_iou(degenerate, degenerate).item() == 0.0   # no NaN from 0 / 0
    with pytest.raises(ValueError, match="same shape"):
        M.paired_box_iou(PRED[:2], GT)


def test_real_object_mask_and_area_fraction():
    objs = torch.tensor([3, 1, 0, 2, 0])
    assert M.real_object_mask(objs).tolist() == [True, True, False, True, False]
    areas = M.box_area_fraction(torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.1, 0.1, 0.1, 0.9]]))
    assert areas.tolist() == [0.25, 0.0]


def test_layout_recall_by_size_bins():
    gt = torch.tensor([[0.0, 0.0, 0.125, 0.125], [0.0, 0.0, 1.0, 1.0]])   # area 1/64, 1
    pred = torch.tensor([[0.5, 0.5, 0.625, 0.625], [0.0, 0.0, 1.0, 1.0]])  # small one missed
    by = M.layout_recall_by_size(pred, gt, edges=(0.0, 0.05, 1.0))
    assert by["area[0,0.05)"]["R@0.5"] == 0.0 and by["area[0,0.05)"]["num_objects"] == 1
    assert by["area[0.05,1]"]["R@0.5"] == 1.0 and by["area[0.05,1]"]["num_objects"] == 1


def _samples():
    """GraphSample-like items: image node (id 0, whole image) last."""
    whole = [0.0, 0.0, 1.0, 1.0]
    return [SimpleNamespace(objs=torch.tensor([2, 1, 0]), image_id=7,
                            boxes=torch.tensor([GT[0].tolist(), GT[1].tolist(), whole])),
            SimpleNamespace(objs=torch.tensor([3, 3, 0]), image_id="b",
                            boxes=torch.tensor([GT[2].tolist(), GT[3].tolist(), whole]))]


def test_box_file_round_trip_scores_like_layout_recall(tmp_path):
    path = tmp_path / "boxes.json"
    M.write_box_file(path, {7: PRED[:2], "b": PRED[2:]})
    assert json.loads(path.read_text())["format"] == M.BOX_FILE_FORMAT
    loaded = M.load_box_file(path)
    assert set(loaded) == {"7", "b"} and torch.equal(loaded["b"], PRED[2:])
    scored = M.score_box_file(path, _samples())
    expected = M.layout_recall(PRED, GT)
    assert {k: scored[k] for k in expected} == expected
    assert scored["num_images"] == 2 and "by_size" in scored


def test_box_file_bare_mapping_and_list_form(tmp_path):
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps({"7": PRED[:2].tolist(), "b": PRED[2:].tolist()}))
    listed = tmp_path / "list.json"
    listed.write_text(json.dumps([PRED[:2].tolist(), PRED[2:].tolist()]))
    for path in (bare, listed):
        assert M.score_box_file(path, _samples())["R@0.5"] == 0.5
    # In list form order matters: the reversed list pairs boxes with the wrong image.
    listed.write_text(json.dumps([PRED[2:].tolist(), PRED[:2].tolist()]))
    assert M.score_box_file(listed, _samples())["R@0.5"] != 0.5


@pytest.mark.parametrize("content, message", [
    ({"7": PRED[:2].tolist()}, "no boxes for image 'b'"),
    ({"7": PRED[:2].tolist(), "b": PRED[2:3].tolist()}, "has 1 boxes but 2 ground-truth"),
    ({"7": PRED[:2].tolist(), "b": PRED[2:].tolist(), "x": []}, "not in the dataset split"),
    ({"7": [[0, 0, 32, 32], [0, 0, 64, 64]], "b": PRED[2:].tolist()}, "pixel coordinates"),
    ({"7": [[0, 0, 1]], "b": []}, r"\[x0, y0, x1, y1\]"),
    ([PRED.tolist()], "dataset has 2"),
    ("boxes", "JSON object"),
])
def test_box_file_errors_name_the_problem(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(content))
    with pytest.raises(M.BoxFileError, match=message):
        M.score_box_file(path, _samples())


def test_box_file_missing_or_not_json(tmp_path):
    with pytest.raises(M.BoxFileError, match="not found"):
        M.load_box_file(tmp_path / "nope.json")
    (tmp_path / "x.json").write_text("{oops")
    with pytest.raises(M.BoxFileError, match="not valid JSON"):
        M.load_box_file(tmp_path / "x.json")


def test_classification_accuracy_overall_and_per_class():
    target = torch.tensor([1, 1, 1, 2, 3])
    pred = torch.tensor([1, 1, 2, 2, 1])
    per = M.per_class_accuracy(pred, target, num_classes=5)
    assert math.isnan(per[0]) and math.isnan(per[4])
    assert per[1:4].tolist() == pytest.approx([2 / 3, 1.0, 0.0])
    acc = M.classification_accuracy(pred, target, num_classes=5)
    assert acc["accuracy"] == pytest.approx(3 / 5)
    assert acc["mean_class_accuracy"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert acc["num_classes_present"] == 3
    logits = torch.nn.functional.one_hot(pred, 5).float()
    assert M.classification_accuracy(logits, target, 5) == acc


def test_mean_pixel_distance_hand_values():
    black, white = -torch.ones(2, 3, 4, 4), torch.ones(2, 3, 4, 4)
    assert M.mean_pixel_distance(black, white).tolist() == [1.0, 1.0]
    assert M.mean_pixel_distance(white, white).tolist() == [0.0, 0.0]
    half = torch.zeros(1, 3, 4, 4)
    half[..., :2] = 1.0           # half of the pixels differ by 1 ([-1, 1] units) -> 0.25
    assert M.mean_pixel_distance(half, torch.zeros(1, 3, 4, 4)).item() == pytest.approx(0.25)
    with pytest.raises(ValueError, match="same shape"):
        M.mean_pixel_distance(black, white[:1])


def test_size_bins_split_areas_half_open_with_a_closed_last_bin():
    area = torch.tensor([0.0, 0.049, 0.05, 0.2, 1.0])
    bins = dict(M.size_bins(area, (0.0, 0.05, 1.0)))
    assert list(bins) == ["area[0,0.05)", "area[0.05,1]"]
    assert bins["area[0,0.05)"].tolist() == [True, True, False, False, False]
    assert bins["area[0.05,1]"].tolist() == [False, False, True, True, True]

"""Layout plausibility metrics on hand-computed cases."""

import math

import numpy as np
import pytest
import torch

from sg2img.data.coco import synthesize_relationships
from sg2img.eval import (
    box_size_fidelity,
    layout_diversity,
    relation_satisfaction,
    swap_diagnosis,
)
from sg2img.vocab import COCO_PREDICATES

PREDS = ("__in_image__", "left of", "right of", "above", "below", "inside", "surrounding", "on")


def _p(name):
    return PREDS.index(name)


def test_relation_satisfaction_hand_case():
    boxes = torch.tensor([[0.0, 0.0, 0.2, 0.2],     # A, centre (.1, .1)
                          [0.5, 0.0, 0.7, 0.2],     # B, centre (.6, .1)
                          [0.0, 0.0, 1.0, 1.0],     # C, the whole image
                          [0.4, 0.4, 0.6, 0.6]])    # D, centre (.5, .5), strictly inside C
    triples = torch.tensor([[0, _p("left of"), 1],      # yes
                            [0, _p("right of"), 1],     # no
                            [3, _p("inside"), 2],       # yes
                            [2, _p("surrounding"), 3],  # yes
                            [1, _p("above"), 3],        # yes: B is up and a little right of D
                            [0, _p("on"), 1],           # not geometric: not counted
                            [0, _p("__in_image__"), 2]])
    out = relation_satisfaction(boxes, triples, PREDS)
    assert out["num_triples"] == 5
    assert out["relation_satisfaction"] == pytest.approx(4 / 5)
    assert out["by_predicate"]["right of"] == {"satisfied": 0.0, "num_triples": 1}
    assert out["by_predicate"]["inside"]["satisfied"] == 1.0
    assert math.isnan(out["by_predicate"]["below"]["satisfied"])


def test_relation_satisfaction_touching_edge_is_not_inside():
    # The dataset's rule needs strict containment: sharing an edge is not "inside".
    boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 0.4, 0.2, 0.6]])
    triples = torch.tensor([[1, _p("inside"), 0]])
    assert relation_satisfaction(boxes, triples, PREDS)["relation_satisfaction"] == 0.0


def test_relation_satisfaction_of_the_boxes_that_made_the_triples_is_one():
    # synthesize_relationships with masks=None uses box centres: the same rule, so every
    # triple it makes is satisfied by its own boxes.
    rng = np.random.default_rng(0)
    for _ in range(20):
        xy = rng.random((6, 2)) * 0.7
        boxes = np.concatenate([xy, xy + 0.05 + rng.random((6, 2)) * 0.25], axis=1)
        triples = torch.from_numpy(synthesize_relationships(boxes, None, rng))
        out = relation_satisfaction(torch.from_numpy(boxes), triples, COCO_PREDICATES)
        assert out["relation_satisfaction"] == 1.0 and out["num_triples"] == 6
        # Swapping subject and object breaks every directional triple.
        flipped = triples[:, [2, 1, 0]]
        assert relation_satisfaction(torch.from_numpy(boxes), flipped,
                                     COCO_PREDICATES)["relation_satisfaction"] == 0.0


def test_relation_satisfaction_rejects_unknown_predicate_ids():
    with pytest.raises(ValueError, match="predicate id"):
        relation_satisfaction(torch.rand(2, 4), torch.tensor([[0, 9, 1]]), PREDS)


def test_box_size_fidelity_hand_case():
    gt = torch.tensor([[0.0, 0.0, 0.2, 0.2],      # class 1, area 0.04
                       [0.0, 0.0, 0.4, 0.4],      # class 1, area 0.16
                       [0.0, 0.0, 0.5, 0.5]])     # class 2, area 0.25
    pred = torch.tensor([[0.1, 0.1, 0.5, 0.5],    # area 0.16: 4x too large
                         [0.5, 0.5, 0.7, 0.7],    # area 0.04: 4x too small
                         [0.5, 0.5, 1.0, 1.0]])   # right size, wrong place
    classes = torch.tensor([1, 1, 2])
    out = box_size_fidelity(pred, gt, classes, ["__image__", "sun", "sky"], min_count=2)
    log4 = math.log(4)
    assert out["mean_abs_log_area_ratio"] == pytest.approx(2 * log4 / 3)
    assert out["worst_class"] == "sun"
    assert out["worst_class_mean_abs_log_area_ratio"] == pytest.approx(log4)
    # Too large and too small cancel in the geometric mean ratio, not in the abs mean.
    assert out["by_class"]["sun"]["area_ratio"] == pytest.approx(1.0)
    assert out["by_class"]["sky"] == {"mean_abs_log_area_ratio": pytest.approx(0.0),
                                      "area_ratio": pytest.approx(1.0), "num_objects": 1}
    # Classes under min_count cannot be the worst class.
    few = box_size_fidelity(pred, gt, classes, min_count=3)
    assert few["worst_class"] is None and math.isnan(few["worst_class_mean_abs_log_area_ratio"])
    assert box_size_fidelity(pred[:1], gt[:1], classes[:1])["by_class"]["1"]["area_ratio"] \
        == pytest.approx(4.0)


def test_layout_diversity_hand_case():
    a = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.1, 0.1, 0.3, 0.3]])
    b = torch.tensor([[0.25, 0.0, 0.75, 0.5], [0.1, 0.1, 0.3, 0.3]])
    out = layout_diversity(a, b)
    # Pair 1: intersection 0.125, union 0.375 -> 1/3; pair 2 identical -> 1.
    assert out["mean_iou_between_samples"] == pytest.approx((1 / 3 + 1) / 2)
    assert out["num_objects"] == 2
    assert math.isnan(layout_diversity(torch.zeros(0, 4), torch.zeros(0, 4))
                      ["mean_iou_between_samples"])


def test_swap_diagnosis_finds_the_wrong_part():
    """The layout metric's diagnostics (and scripts/eval_layout.py --diagnose): boxes of the
    right size and height but shifted sideways recover fully when their horizontal centre is
    the truth's, and not otherwise."""
    gt = torch.tensor([[0.1, 0.2, 0.2, 0.3], [0.5, 0.5, 0.7, 0.6]])
    pred = gt + torch.tensor([0.3, 0.0, 0.3, 0.0])
    out = swap_diagnosis(pred, gt)
    assert out == {"as predicted": 0.0, "true size": 0.0, "true horizontal centre": 1.0,
                   "true vertical centre": 0.0}

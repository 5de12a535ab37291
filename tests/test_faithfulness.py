"""The faithfulness metric and the relation swap test, scored from pixels.

Two stand-in detectors implement the detector interface (``object_names``, ``threshold``,
``detect``):

* ``Oracle`` hands back given detections (the ground truth, with planted misses and extras);
* ``PaintedDetector`` reads pictures painted with one colour per (class, instance): the
  procedural scenes' own label maps, so erasing, mirroring and moving objects are real pixel
  edits that it sees as a perfect detector would.

The colour tests use the real shipped colour classifier on real procedural pictures.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, replace

import numpy as np
import pytest
import torch

from sg2img.data.shapes import generate_scene, shapes_vocab
from sg2img.data.shapes.render import render_scene
from sg2img.eval import (
    FaithJudge,
    FaithTally,
    MatchProblem,
    bootstrap_ratios,
    box_predicate,
    load_detector,
    load_shipped_net,
    match_detections,
    relation_satisfaction,
    relation_swap_graphs,
    score_faithfulness,
    score_relation_swap,
    swap_case,
)
from sg2img.scene_graph import SceneGraph

VOCAB = shapes_vocab()
NAMES = tuple(VOCAB.object_names)


@dataclass
class Dets:
    """What the detector interface returns per image."""

    boxes: torch.Tensor
    labels: torch.Tensor
    scores: torch.Tensor


def dets(items: list[tuple[str, list[float], float]]) -> Dets:
    return Dets(torch.tensor([b for _, b, _ in items], dtype=torch.float32).reshape(-1, 4),
                torch.tensor([NAMES.index(n) for n, _, _ in items], dtype=torch.long),
                torch.tensor([s for _, _, s in items], dtype=torch.float32))


class Oracle:
    """Returns the detections it was given, image after image, whatever the pixels."""

    def __init__(self, per_image: list[list[tuple[str, list[float], float]]],
                 threshold: float = 0.5) -> None:
        self.object_names, self.threshold = NAMES, threshold
        self.queue = [dets(d) for d in per_image]

    def detect(self, images, threshold=None):
        out, self.queue = self.queue[:len(images)], self.queue[len(images):]
        assert len(out) == len(images), "the oracle ran out of planted detections"
        t = self.threshold if threshold is None else threshold
        return [Dets(d.boxes[d.scores >= t], d.labels[d.scores >= t], d.scores[d.scores >= t])
                for d in out]


# ----------------------------------------------------------------------------- painted scenes
def _code(v: torch.Tensor) -> torch.Tensor:
    return ((v + 1) * 127.5).round().long()


def paint(scene) -> torch.Tensor:
    """(3, S, S) in [-1, 1]: each pixel coloured by its owner's class (red) and instance
    (green); blue 128 marks a painted pixel."""
    plan, label = scene.plan, torch.from_numpy(scene.label.astype(np.int64))
    owners = [r.name for r in plan.stuff] + [t.name for t in plan.things]
    cls = torch.tensor([NAMES.index(n) for n in owners])[label]
    rgb = torch.stack([4 * cls + 4, 4 * label + 4, torch.full_like(label, 128)]).float()
    return rgb / 127.5 - 1


class PaintedDetector:
    """A perfect detector of painted pictures: one detection per painted (class, instance)
    region, its box the region's pixel extent, score 1."""

    def __init__(self, threshold: float = 0.5) -> None:
        self.object_names, self.threshold = NAMES, threshold

    def detect(self, images, threshold=None):
        out = []
        for im in images:
            r, g, b = _code(im)
            S = im.shape[-1]
            items = []
            painted = (b == 128) & (r % 4 == 0) & (g % 4 == 0) & (r >= 4) & (r <= 4 * len(NAMES))
            for key in torch.unique((r * 1000 + g)[painted]).tolist():
                ys, xs = torch.nonzero(painted & (r * 1000 + g == key), as_tuple=True)
                box = [xs.min() / S, ys.min() / S, (xs.max() + 1) / S, (ys.max() + 1) / S]
                items.append((NAMES[key // 1000 // 4 - 1], [float(v) for v in box], 1.0))
            out.append(dets(items))
        return out


def scene_graph(scene, rels_from: SceneGraph | None = None) -> SceneGraph:
    """The graph of a scene's kept annotations, with the dataset's rule for its triples: the
    geometric predicate of every ordered pair by mask centroids (as the data was made)."""
    from sg2img.data.common import spatial_predicate
    from sg2img.vocab import COCO_PREDICATES

    kept = scene.kept()
    boxes, centres = [], []
    for a in kept:
        x, y, w, h = a.bbox
        S = a.mask.shape[0]
        boxes.append([x / S, y / S, (x + w) / S, (y + h) / S])
        ys, xs = np.nonzero(a.mask)
        centres.append([(xs.mean() + 0.5) / S, (ys.mean() + 0.5) / S])
    rels = []
    for s in range(len(kept)):
        for o in range(len(kept)):
            if s != o:
                p = spatial_predicate(boxes[s], boxes[o], centres[s], centres[o])
                rels.append((s, COCO_PREDICATES[p], o))
    attrs = tuple(tuple(a.attributes) for a in kept)
    return SceneGraph(tuple(a.name for a in kept), tuple(rels), None, attrs), boxes


SCENES = range(24)


@pytest.fixture(scope="module")
def scenes():
    return [generate_scene(0, "val", i, 64) for i in SCENES]


def score(images, graphs, detector, **kw):
    kw.setdefault("bootstrap", 0)
    return score_faithfulness(images, graphs, detector, **kw)["generated"]


# ----------------------------------------------------------------------------- matching
def _problem(objects, triples, detections):
    labels = [NAMES.index(n) for n in objects]
    return MatchProblem(labels, triples, [b for _, b, _ in detections],
                        [NAMES.index(n) for n, _, _ in detections], [s for _, _, s in detections])


LEFT, RIGHT = [0.05, 0.5, 0.25, 0.7], [0.7, 0.5, 0.9, 0.7]
MIDDLE = [0.4, 0.45, 0.6, 0.75]


def test_repeated_classes_are_matched_by_the_graphs_geometry_not_by_order_or_score():
    # Graph: sheep 0 left of the tree, sheep 1 right of it. The detector lists the right
    # sheep first and more confidently: matching by order or score would break both triples.
    objects = ["sheep", "sheep", "tree"]
    triples = [(0, "left of", 2), (1, "right of", 2)]
    found = [("sheep", RIGHT, 0.99), ("tree", MIDDLE, 0.9), ("sheep", LEFT, 0.6)]
    match = match_detections(_problem(objects, triples, found))
    assert match == [2, 0, 1]
    # The mirrored graph takes the mirrored assignment from the same detections.
    flipped = [(0, "right of", 2), (1, "left of", 2)]
    assert match_detections(_problem(objects, flipped, found)) == [0, 2, 1]


def test_matching_never_trades_recall_for_triples_and_breaks_ties_by_score():
    # Two sheep in the graph, one detected: it is matched (recall 1/2) to the sheep whose
    # triple it satisfies.
    objects = ["sheep", "sheep", "tree"]
    triples = [(0, "left of", 2), (1, "right of", 2)]
    match = match_detections(_problem(objects, triples, [("tree", MIDDLE, 0.9),
                                                         ("sheep", RIGHT, 0.8)]))
    assert match == [None, 1, 0]
    # One sheep in the graph, two sheep detections: the one that satisfies the triple wins
    # over a more confident one; without triples the more confident one wins.
    found = [("sheep", RIGHT, 0.95), ("sheep", LEFT, 0.6), ("tree", MIDDLE, 0.9)]
    assert match_detections(_problem(["sheep", "tree"], [(0, "left of", 1)], found)) == [1, 2]
    assert match_detections(_problem(["sheep", "tree"], [], found)) == [0, 2]
    # A class the detector does not know is never matched.
    p = MatchProblem([None, NAMES.index("tree")], [], [MIDDLE], [NAMES.index("tree")], [0.9])
    assert match_detections(p) == [None, 0]


def test_large_problems_use_coordinate_ascent_and_still_satisfy_the_geometry():
    # 9 birds in a row, each left of the next: 9! joint assignments, far beyond exhaustive.
    n = 9
    objects = ["bird"] * n + ["sun"]
    triples = [(i, "left of", i + 1) for i in range(n - 1)]
    triples += [(i, "below", n) for i in range(n)]
    boxes = [[0.1 * i, 0.6, 0.1 * i + 0.05, 0.65] for i in range(n)]
    order = [4, 7, 0, 8, 2, 6, 1, 3, 5]           # listed out of order, scores descending
    found = [("bird", boxes[k], 0.99 - 0.01 * j) for j, k in enumerate(order)]
    found.append(("sun", [0.4, 0.05, 0.5, 0.15], 0.9))
    match = match_detections(_problem(objects, triples, found))
    assert None not in match
    held = sum(box_predicate(found[match[s]][1], found[match[o]][1]) == p
               for s, p, o in triples)
    assert held == len(triples)


def _brute_force_best(problem):
    """(triples held, total score) of the best maximal assignment, by trying them all."""
    import itertools

    classes = {}
    for i, lab in enumerate(problem.labels):
        classes.setdefault(lab, ([], []))[0].append(i)
    for d, lab in enumerate(problem.det_labels):
        if lab in classes:
            classes[lab][1].append(d)
    per_class = []
    for objects, dets in classes.values():
        k = min(len(objects), len(dets))
        per_class.append([list(zip(objs, ds, strict=True))
                          for objs in itertools.permutations(objects, k)
                          for ds in itertools.combinations(dets, k)])
    best = None
    for combo in itertools.product(*per_class):
        assign = [None] * len(problem.labels)
        for pairs in combo:
            for i, d in pairs:
                assign[i] = d
        best = max(best or (-1, 0.0), _key(problem, assign))
    return best


def _key(problem, assign):
    held = sum(assign[s] is not None and assign[o] is not None and s != o
               and box_predicate(problem.boxes[assign[s]], problem.boxes[assign[o]]) == p
               for s, p, o in problem.triples)
    return held, round(sum(problem.scores[d] for d in assign if d is not None), 9)


def test_matching_is_optimal_on_random_scenes():
    g = torch.Generator().manual_seed(0)
    preds = ["left of", "right of", "above", "below", "inside", "surrounding"]
    for _ in range(150):
        n = int(torch.randint(2, 7, (1,), generator=g))
        labels = torch.randint(0, 3, (n,), generator=g).tolist()
        m = int(torch.randint(1, 7, (1,), generator=g))
        det_labels = torch.randint(0, 3, (m,), generator=g).tolist()
        xy = torch.rand(m, 2, generator=g) * 0.7
        wh = torch.rand(m, 2, generator=g) * 0.3 + 0.02
        boxes = torch.cat([xy, xy + wh], 1).tolist()
        scores = torch.rand(m, generator=g).tolist()
        t = int(torch.randint(0, 2 * n, (1,), generator=g))
        triples = [(int(torch.randint(n, (1,), generator=g)),
                    preds[int(torch.randint(6, (1,), generator=g))],
                    int(torch.randint(n, (1,), generator=g))) for _ in range(t)]
        problem = MatchProblem(labels, triples, boxes, det_labels, scores)
        match = match_detections(problem)
        used = [d for d in match if d is not None]
        assert len(used) == len(set(used))
        assert all(d is None or det_labels[d] == labels[i] for i, d in enumerate(match))
        assert _key(problem, match) == _brute_force_best(problem)


# ----------------------------------------------------------------------------- arithmetic
def test_recall_hallucination_colour_and_triple_arithmetic():
    clf = load_shipped_net("AttributeClassifier")
    g = SceneGraph(("sheep", "tree", "car", "sky"),
                   ((0, "left of", 1), (2, "right of", 1), (3, "above", 0), (0, "below", 3)),
                   None, ((), (), ("red",), ()))
    planted = [("sheep", LEFT, 0.9), ("tree", MIDDLE, 0.8),      # the car is missed
               ("sky", [0.0, 0.0, 1.0, 0.3], 0.95),
               ("bus", [0.3, 0.1, 0.5, 0.2], 0.7),                # not in the graph
               ("sun", [0.8, 0.0, 0.9, 0.1], 0.6),                # not in the graph
               ("tree", [0.0, 0.0, 0.1, 0.1], 0.55),              # surplus
               ("sheep", RIGHT, 0.3)]                             # under the threshold
    r = score(torch.zeros(1, 3, 64, 64), [g], Oracle([planted]), colour_classifier=clf)
    assert r["object_recall"] == pytest.approx(3 / 4) and r["num_objects"] == 4
    assert r["hallucinations_per_image"] == 2 and r["images_with_hallucination"] == 1
    assert r["surplus_per_image"] == 1
    # sheep left of tree holds, car right of tree fails (car not found), sky above sheep and
    # sheep below sky hold.
    assert r["triple_score"] == pytest.approx(3 / 4) and r["num_triples"] == 4
    assert r["by_predicate"]["right of"] == {"score": 0.0, "num_triples": 1, "ci95": None}
    assert r["by_predicate"]["left of"]["score"] == 1.0
    assert r["by_endpoints"]["thing-stuff"]["num_triples"] == 2
    assert r["by_class"]["car"]["recall"] == 0 and r["by_class"]["bus"]["hallucinated"] == 1
    # The red car was not found: it counts against colour_found, not colour_accuracy.
    assert r["num_colour_objects"] == 1 and r["num_colour_matched"] == 0
    assert r["colour_found"] == 0 and r["colour_accuracy"] != r["colour_accuracy"]   # NaN


def test_classes_the_detector_does_not_know_are_counted_apart():
    class ThingsOnly(Oracle):
        pass

    det = ThingsOnly([[("sheep", LEFT, 0.9), ("tree", MIDDLE, 0.9)]])
    det.object_names = tuple(n if n not in ("sky", "grass") else "N/A" for n in NAMES)
    g = SceneGraph(("sheep", "tree", "sky"), ((0, "left of", 1), (2, "above", 0)))
    r = score(torch.zeros(1, 3, 64, 64), [g], det, stuff_names=("sky", "grass"))
    assert r["object_recall"] == 1 and r["num_objects"] == 2
    assert r["num_objects_not_judged"] == 1
    assert r["triple_score"] == 1 and r["num_triples"] == 1
    assert r["num_triples_not_judged"] == 1
    assert r["by_endpoints"]["thing-stuff"]["num_not_judged"] == 1


def test_bootstrap_intervals_are_seeded_and_bracket_the_figure():
    g = SceneGraph(("sheep", "tree"), ((0, "left of", 1),))
    planted = [[("sheep", LEFT, 0.9), ("tree", MIDDLE, 0.9)] if i % 3 else [("tree", MIDDLE, 0.9)]
               for i in range(30)]
    images = torch.zeros(30, 3, 32, 32)
    a = score(images, [g] * 30, Oracle(planted), bootstrap=500, seed=1)
    b = score(images, [g] * 30, Oracle(planted), bootstrap=500, seed=1)
    assert a["ci95"] == b["ci95"]
    lo, hi = a["ci95"]["object_recall"]
    assert a["object_recall"] == pytest.approx(50 / 60) and lo < a["object_recall"] < hi
    assert 0.6 < lo and hi < 1
    # Uneven units: the seed changes the replicates, and more units narrow the interval.
    units = [{"num": i % 4, "den": 1 + i % 5} for i in range(40)]
    one = bootstrap_ratios(units, {"r": ("num", "den")}, 500, seed=1)["r"]
    assert one != bootstrap_ratios(units, {"r": ("num", "den")}, 500, seed=2)["r"]
    wide = bootstrap_ratios(units[:10], {"r": ("num", "den")}, 500, seed=1)["r"]
    assert wide[1] - wide[0] > one[1] - one[0]
    assert bootstrap_ratios([{"num": 1, "den": 0}], {"r": ("num", "den")}, 10)["r"] is None


# ----------------------------------------------------------------------------- planted failures
def real_picture(scene) -> torch.Tensor:
    return torch.from_numpy(scene.image).permute(2, 0, 1).float() / 127.5 - 1


@dataclass
class Reader:
    """A detector and how it sees a procedural scene (painted, or the real picture)."""

    detector: object
    draw: object
    exact: bool          # reads the ground truth exactly


@functools.cache
def shipped_detector():
    """The shipped procedural detector (sg2img/assets/eval/detector.pt), loaded once."""
    return load_detector()


READERS = {"painted": lambda: Reader(PaintedDetector(), paint, True),
           "shipped": lambda: Reader(shipped_detector(), real_picture, False)}


@pytest.fixture(scope="module", params=sorted(READERS))
def reader(request):
    return READERS[request.param]()


def test_unmodified_scenes_score_as_their_ground_truth(scenes, reader):
    graphs, images, gt_held, gt_n = [], [], 0.0, 0
    for sc in scenes:
        g, boxes = scene_graph(sc)
        graphs.append(g)
        images.append(reader.draw(sc))
        gt = relation_satisfaction(torch.tensor(boxes), torch.tensor(
            [[s, VOCAB.pred_idx(p), o] for s, p, o in g.relationships]), VOCAB.pred_names)
        gt_held += gt["relation_satisfaction"] * gt["num_triples"]
        gt_n += gt["num_triples"]
        if reader.exact:
            one = score(images[-1][None], [g], reader.detector)
            assert one["object_recall"] == 1
            # The matching may only do better than the ground-truth instances.
            assert one["triple_score"] >= gt["relation_satisfaction"] - 1e-9
            if len(set(g.objects)) == len(g.objects):
                assert one["triple_score"] == pytest.approx(gt["relation_satisfaction"])
    r = score(torch.stack(images), graphs, reader.detector)
    assert r["object_recall"] >= 0.95 and r["hallucinations_per_image"] <= 0.2
    assert r["triple_score"] >= gt_held / gt_n - 0.05


def _recall(scored) -> float:
    judged = [f for _, f in scored.objects if f is not None]
    return sum(judged) / len(judged)


def test_erasing_one_of_n_objects_lowers_that_images_recall(scenes, reader):
    graphs, whole, erased = [], [], []
    for sc in scenes:
        g, _ = scene_graph(sc)
        j = next((j for j, t in enumerate(sc.plan.things) if g.objects.count(t.name) == 1), None)
        if j is None:
            continue
        graphs.append(g)
        whole.append(reader.draw(sc))
        erased.append(reader.draw(render_scene(replace(
            sc.plan, things=sc.plan.things[:j] + sc.plan.things[j + 1:]), 64)))
    assert len(graphs) >= 20
    judge = FaithJudge(reader.detector)
    before = judge.score(torch.stack(whole), graphs)
    after = judge.score(torch.stack(erased), graphs)
    for g, b, a in zip(graphs, before, after, strict=True):
        n = len(g.objects)
        assert _recall(a) <= _recall(b) - 0.8 / n, (g.objects, b.objects, a.objects)


def test_mirroring_flips_left_right_triples_and_keeps_above_below(scenes, reader):
    graphs = [scene_graph(sc)[0] for sc in scenes]
    images = torch.stack([reader.draw(sc) for sc in scenes])
    before = score(images, graphs, reader.detector)["by_predicate"]
    after = score(images.flip(-1), graphs, reader.detector)["by_predicate"]
    for p in ("left of", "right of"):
        assert before[p]["num_triples"] >= 20
        assert before[p]["score"] > 0.85 and after[p]["score"] < 0.2, (p, after[p])
    for p in ("above", "below"):
        assert after[p]["score"] == pytest.approx(before[p]["score"], abs=0.05)


def _coloured(scenes, clf):
    """(scene, graph, ground-truth boxes, index of a coloured thing, its colour, another of
    its class's colours), for the things whose class the classifier gives colours."""
    table = clf.class_attributes()
    for sc in scenes:
        g, boxes = scene_graph(sc)
        for i, name in enumerate(g.objects):
            if name in table and g.attributes[i][0] in table[name]:
                other = next(c for c in table[name] if c != g.attributes[i][0])
                yield sc, g, boxes, i, g.attributes[i][0], other


RECOLOUR_READERS = {"ground truth boxes": lambda g, boxes: Oracle(
    [[(n, b, 1.0) for n, b in zip(g.objects, boxes, strict=True)]] * 2),
                    "detected boxes": lambda g, boxes: shipped_detector()}


@pytest.mark.parametrize("boxes_from", sorted(RECOLOUR_READERS))
def test_recolouring_an_object_changes_its_colour_result(scenes, boxes_from):
    clf = load_shipped_net("AttributeClassifier")
    changed = 0
    for sc, g, boxes, i, colour, other in _coloured(scenes, clf):
        det = RECOLOUR_READERS[boxes_from](g, boxes)
        only = replace(g, attributes=tuple(a if k == i else () for k, a in
                                           enumerate(g.attributes)))    # judge this one
        before = score(real_picture(sc)[None], [only], det, colour_classifier=clf)
        if before["colour_accuracy"] != 1:
            continue                      # only objects found and read right
        j = next(k for k, t in enumerate(sc.plan.things) if t.attributes == g.attributes[i]
                 and t.name == g.objects[i])
        things = list(sc.plan.things)
        things[j] = replace(things[j], attributes=(other, *things[j].attributes[1:]))
        recoloured = render_scene(replace(sc.plan, things=tuple(things)), 64)
        after = score(real_picture(recoloured)[None], [only], det, colour_classifier=clf)
        assert after["colour_accuracy"] == 0, (g.objects[i], colour, other)
        assert after["object_recall"] == before["object_recall"]
        changed += 1
        if changed == 3:
            break
    assert changed == 3


# ----------------------------------------------------------------------------- relation swap
def test_swap_case_flips_every_triple_between_the_pair_and_skips_ineligible_graphs():
    g = SceneGraph(("sheep", "tree", "sky", "grass"),
                   ((0, "left of", 1), (1, "right of", 0), (2, "above", 3), (0, "below", 2)))
    case = swap_case(g, NAMES, VOCAB.stuff_names)
    assert (case.subject, case.object, case.before, case.after, case.kind) == \
        (0, 1, "left of", "right of", "thing-thing")
    assert case.graph.relationships == ((0, "right of", 1), (1, "left of", 0), (2, "above", 3),
                                        (0, "below", 2))
    # stuff-stuff pairs, repeated classes and pairs with an inside triple are not eligible.
    assert swap_case(SceneGraph(("sky", "grass"), ((0, "above", 1),)), NAMES,
                     VOCAB.stuff_names) is None
    assert swap_case(SceneGraph(("sheep", "sheep"), ((0, "left of", 1),)), NAMES) is None
    assert swap_case(SceneGraph(("sheep", "tree"), ((0, "left of", 1), (0, "inside", 1))),
                     NAMES) is None
    stuff = swap_case(SceneGraph(("sky", "sheep"), ((0, "above", 1),)), NAMES, ("sky",))
    assert stuff.kind == "thing-stuff" and stuff.after == "below"


def test_relation_swap_scores_a_picture_that_follows_and_one_that_does_not(scenes):
    graphs = [scene_graph(sc)[0] for sc in scenes]
    cases = relation_swap_graphs(graphs, NAMES, VOCAB.stuff_names)
    assert sum(c is not None for c in cases) >= 12
    images = torch.stack([paint(sc) for sc in scenes])
    # A system that ignores the flip draws the same picture: nothing flips.
    same = score_relation_swap(images, images, graphs, cases, PaintedDetector(), bootstrap=200)
    assert same["coverage"] == 1 and same["held_before"] > 0.9 and same["flip_rate"] < 0.1
    # Mirroring flips left/right but not above/below.
    mirrored = score_relation_swap(images, images.flip(-1), graphs, cases, PaintedDetector(),
                                   bootstrap=0)
    by = mirrored["by_predicate"]
    lr = [by[k] for k in ("left of -> right of", "right of -> left of") if by[k]["num_counted"]]
    assert lr and all(v["flip_rate"] > 0.8 for v in lr)
    ab = [by[k] for k in ("above -> below", "below -> above") if by[k]["num_counted"]]
    assert all(v["flip_rate"] < 0.2 for v in ab)
    # Erasing everything loses the coverage, not the flip rate.
    blank = score_relation_swap(images, torch.full_like(images, -1.0), graphs, cases,
                                PaintedDetector(), bootstrap=0)
    assert blank["coverage"] == 0 and blank["num_counted"] == 0


# ----------------------------------------------------------------------------- bad input
def test_bad_inputs_name_the_fix():
    g = SceneGraph(("sheep",))
    with pytest.raises(ValueError, match="2 images but 1 scene graphs; give one graph per image"):
        score_faithfulness(torch.zeros(2, 3, 8, 8), [g], Oracle([[], []]))
    with pytest.raises(ValueError, match="square.*resize or crop"):
        score_faithfulness(torch.zeros(1, 3, 8, 6), [g], Oracle([[]]))
    with pytest.raises(ValueError, match="threshold must be a score in"):
        FaithJudge(Oracle([]), threshold=1.5)


def test_tally_counts_samples_of_one_graph_as_one_unit():
    t = FaithTally(bootstrap=0)
    judge = FaithJudge(Oracle([[("sheep", LEFT, 0.9)], []]))
    g = SceneGraph(("sheep",))
    t.add(judge.score(torch.zeros(2, 3, 8, 8), [g, g], [7, 7]))
    r = t.compute()
    assert r["num_images"] == 2 and r["num_graphs"] == 1 and r["object_recall"] == 0.5


def test_debug_sheet_is_written(scenes, tmp_path):
    graphs = [scene_graph(sc)[0] for sc in scenes[:3]]
    images = torch.stack([paint(sc) for sc in scenes[:3]])
    out = score_faithfulness(images.flip(-1), graphs, PaintedDetector(), real_images=images,
                             bootstrap=0, sheet=tmp_path / "sheet.png")
    from PIL import Image

    with Image.open(out["sheet"]) as im:
        assert im.width > 3 * 192 and im.height > 3 * 192
    assert json.loads(json.dumps(out["real"]["object_recall"])) == 1


# ----------------------------------------------------------------------------- command line
NUM_VAL = 16


def _dataset(root, painted: bool):
    from sg2img.data.shapes import write_dataset
    from sg2img.vis import to_pil

    write_dataset(root, size=64, num_images={"train": 1, "val": NUM_VAL}, seed=0, workers=1)
    files = sorted((root / "images" / "val").glob("*.png"))
    assert len(files) == NUM_VAL
    if painted:
        for i, p in enumerate(files):
            to_pil(paint(generate_scene(0, "val", i, 64))).save(p)
    return root


@pytest.fixture(scope="module")
def painted_data(tmp_path_factory):
    """A small procedural dataset whose real pictures are painted, so that the painted
    detector reads the real images (the ceiling) as well as the 'generated' ones."""
    return _dataset(tmp_path_factory.mktemp("painted") / "shapes", painted=True)


@pytest.fixture(scope="module")
def real_data(tmp_path_factory):
    """A small procedural dataset with its real pictures, for the shipped detector."""
    return _dataset(tmp_path_factory.mktemp("real") / "shapes", painted=False)


def _write_images(folder, stem, n, mirror_second=True, draw=paint):
    from sg2img.vis import to_pil

    folder.mkdir()
    for i in range(n):
        im = draw(generate_scene(0, "val", i, 64))
        to_pil(im).save(folder / f"{stem}_{i:03d}_s0.png")
        if mirror_second:
            to_pil(im.flip(-1)).save(folder / f"{stem}_{i:03d}_s1.png")


@pytest.mark.parametrize("kind", ["painted", "shipped"])
def test_cli_writes_the_graphs_and_scores_an_image_folder(kind, request, tmp_path, monkeypatch,
                                                          capsys):
    import sg2img.eval.faith_files as files
    from sg2img.cli import main
    from sg2img.config import DataConfig
    from sg2img.data import build_dataset

    root = request.getfixturevalue("painted_data" if kind == "painted" else "real_data")
    graphs = tmp_path / "val_graphs.json"
    assert main(["evaluate", "--data", str(root), "--write-graphs", str(graphs)]) == 0
    listed = [SceneGraph.from_dict(g) for g in json.loads(graphs.read_text())]
    assert len(listed) == NUM_VAL and all(g.attributes for g in listed)
    _write_images(tmp_path / "imgs", "val_graphs", NUM_VAL,
                  draw=paint if kind == "painted" else real_picture)
    if kind == "painted":
        monkeypatch.setattr(files, "resolve_detector", lambda *a, **k: PaintedDetector())
    report = tmp_path / "report.json"
    assert main(["evaluate", "--images", str(tmp_path / "imgs"), "--graphs", str(graphs),
                 "--data", str(root), "--out", str(report),
                 "--faithfulness-sheet", str(tmp_path / "sheet.png")]) == 0
    f = json.loads(report.read_text())["metrics"]["faithfulness"]
    gen, real = f["generated"], f["real"]
    assert gen["num_images"] == 2 * NUM_VAL and gen["num_graphs"] == NUM_VAL
    assert real["num_images"] == NUM_VAL
    # The real pictures' triples score about what their ground-truth boxes do; painted ones
    # at least that (the matching may only improve on the ground truth's instances).
    data = build_dataset(DataConfig(root=str(root)), "val", 64, 16)
    held = n = 0
    for i in range(len(data)):
        item = data[i]
        r = relation_satisfaction(item.boxes, item.triples, data.vocab.pred_names)
        held += r["relation_satisfaction"] * r["num_triples"] if r["num_triples"] else 0
        n += r["num_triples"]
    assert real["num_triples"] == n
    if kind == "painted":
        assert gen["object_recall"] == real["object_recall"] == 1
        assert real["triple_score"] >= held / n - 1e-9
    else:
        assert gen["object_recall"] >= 0.95 and real["object_recall"] >= 0.95
        assert real["triple_score"] >= held / n - 0.05
        assert f["detector"].startswith("SceneDetector")
    # Half the 'generated' pictures are mirrored: their left/right triples fail.
    lr = [p for p in ("left of", "right of") if real["by_predicate"][p]["num_triples"]]
    assert lr
    for p in lr:
        assert gen["by_predicate"][p]["score"] < 0.7 * real["by_predicate"][p]["score"]
    out = capsys.readouterr().out
    assert "faithfulness (generated): object recall" in out and "wrote" in out
    assert (tmp_path / "sheet.png").is_file() and f["sheet"] == str(tmp_path / "sheet.png")


def test_cli_bad_image_folders_name_the_fix(painted_data, tmp_path, monkeypatch, capsys):
    import sg2img.eval.faith_files as files
    from sg2img.cli import main

    monkeypatch.setattr(files, "resolve_detector", lambda *a, **k: PaintedDetector())
    graphs = tmp_path / "g.json"
    assert main(["evaluate", "--data", str(painted_data), "--write-graphs", str(graphs)]) == 0
    _write_images(tmp_path / "imgs", "g", NUM_VAL, mirror_second=False)
    capsys.readouterr()

    def error(*argv):
        assert main(["evaluate", *argv]) == 2
        return capsys.readouterr().err

    (tmp_path / "imgs" / "g_003_s0.png").unlink()
    err = error("--images", str(tmp_path / "imgs"), "--graphs", str(graphs))
    assert "no image of graph 3" in err and "g_003_s0.png" in err and "generate every graph" in err
    fewer = tmp_path / "fewer.json"
    fewer.write_text(json.dumps(json.loads(graphs.read_text())[:2]))
    _write_images(tmp_path / "more", "fewer", 4, mirror_second=False)
    err = error("--images", str(tmp_path / "more"), "--graphs", str(fewer))
    assert "graph 3" in err and "has 2 graphs" in err and "graphs file these images" in err
    err = error("--images", str(tmp_path / "imgs"))
    assert "--images DIR and --graphs GRAPHS.json go together" in err
    err = error("--images", str(tmp_path / "imgs"), "--graphs", str(graphs), "--metrics", "fid")
    assert "faithfulness metric only" in err
    err = error("--write-graphs", str(tmp_path / "x.json"))
    assert "--write-graphs needs --data" in err
    # A graphs file that is not the dataset's (here: another order) is refused with --data.
    shuffled = tmp_path / "shuffled.json"
    shuffled.write_text(json.dumps(json.loads(graphs.read_text())[::-1]))
    _write_images(tmp_path / "sh", "shuffled", NUM_VAL, mirror_second=False)
    err = error("--images", str(tmp_path / "sh"), "--graphs", str(shuffled), "--data",
                str(painted_data))
    assert "not the list of graphs of the dataset" in err and "--write-graphs" in err
    # Own file names: listed under "images"; a missing one is named.
    named = tmp_path / "named.json"
    named.write_text(json.dumps({"graphs": json.loads(graphs.read_text())[:2],
                                 "images": [["g_000_s0.png"], ["nope.png"]]}))
    err = error("--images", str(tmp_path / "imgs"), "--graphs", str(named))
    assert "nope.png" in err and "fix the names under 'images'" in err
    named.write_text(json.dumps({"graphs": json.loads(graphs.read_text())[:2],
                                 "images": [["g_000_s0.png"], ["../g_001_s0.png"]]}))
    assert "without '..'" in error("--images", str(tmp_path / "imgs"), "--graphs", str(named))
    missing = error("--images", str(tmp_path / "imgs"), "--graphs", str(graphs),
                    "--detector-weights", str(tmp_path / "none.pt"))
    assert "no image of graph 3" in missing      # the folder is checked before any weights


def test_a_missing_detector_weights_file_is_named(tmp_path):
    from sg2img.eval import EvalWeightsError, resolve_detector

    with pytest.raises(EvalWeightsError, match=r"does not exist: .*none\.pt; pass "
                                               r"--detector-weights"):
        resolve_detector(None, tmp_path / "none.pt")


# ----------------------------------------------------------------------------- through evaluate()
class PaintedGenerator(torch.nn.Module):
    """Follows the generator contract by drawing each graph's painted scene (looked up by its
    image id); a graph whose triples differ from the dataset's is drawn mirrored, as a model
    that follows left/right flips (and nothing else) would. Its boxes are random: the metrics
    must not read them."""

    def __init__(self, data) -> None:
        super().__init__()
        self.data = data
        self.index = {data[i].image_id: i for i in range(len(data))}
        self.calls = []

    def forward(self, batch, *, use_gt_layout=False, rng=None, **noise):
        self.calls.append(batch)
        images = []
        for i, iid in enumerate(batch.image_ids):
            item = self.data[self.index[iid]]
            lo = int((batch.obj_to_img == i).nonzero()[0])
            mine = batch.triples[batch.triple_to_img == i] - torch.tensor([lo, 0, lo])
            images.append(item.image if torch.equal(mine, item.triples) else item.image.flip(-1))
        boxes = torch.rand(len(batch.objs), 4)
        return type("Out", (), {"images": torch.stack(images), "boxes_pred": boxes,
                                "boxes": boxes})()


@pytest.mark.parametrize("kind", ["painted", "shipped"])
def test_evaluate_scores_pixels_beside_the_real_images_and_runs_the_swap_test(kind, request):
    from sg2img.config import DataConfig
    from sg2img.data import build_dataset
    from sg2img.eval import EvalOptions, evaluate, report_to_markdown

    root = request.getfixturevalue("painted_data" if kind == "painted" else "real_data")
    detector = PaintedDetector() if kind == "painted" else shipped_detector()
    data = build_dataset(DataConfig(root=str(root)), "val", 64, 16)
    gen = PaintedGenerator(data)
    report = evaluate(gen, data, EvalOptions(metrics=["faithfulness", "relation_swap"],
                                             detector=detector, batch_size=4,
                                             progress=False))
    f, swap = report["metrics"]["faithfulness"], report["metrics"]["relation_swap"]
    # The 'generated' pictures are the real ones, their boxes random: the figures agree.
    assert f["generated"] == f["real"] and f["real"]["object_recall"] >= 0.95
    assert swap["num_graphs"] == NUM_VAL and swap["num_eligible"] >= 5
    assert swap["coverage"] >= 0.8
    # Mirroring follows left/right flips, never above/below ones. (A real detector's boxes
    # can make a touching pair read 'surrounding' under the rule, before or after.)
    by = swap["by_predicate"]
    counts = {}
    for key, v in by.items():
        kind_of = "horizontal" if key.startswith(("left", "right")) else "vertical"
        c = counts.setdefault(kind_of, [0.0, 0])
        c[0] += v["flip_rate"] * v["num_counted"] if v["num_counted"] else 0.0
        c[1] += v["num_counted"]
    assert counts["horizontal"][1] >= 3 and counts["vertical"][1] >= 3, counts
    rate = {k: held / n for k, (held, n) in counts.items()}
    assert rate["vertical"] == 0
    assert rate["horizontal"] == 1 if kind == "painted" else rate["horizontal"] >= 0.6, rate
    # The flipped call changed exactly one pair of objects' predicates per eligible graph.
    flipped = [b for b in gen.calls if any(
        not torch.equal(b.triples[b.triple_to_img == i] - int((b.obj_to_img == i).nonzero()[0])
                        * torch.tensor([1, 0, 1]), data[data_i].triples)
        for i, data_i in enumerate(gen.index[j] for j in b.image_ids))]
    assert len(flipped) == NUM_VAL // 4            # one swap call per batch of 4
    md = report_to_markdown(report)
    assert "faithfulness (real): object recall" in md and "relation swap" in md
    assert "## By class" in md and "| class | objects | found |" in md


def test_the_swap_test_draws_the_flipped_graph_with_the_original_noise(painted_data):
    from sg2img.config import Config, DataConfig
    from sg2img.data import build_dataset
    from sg2img.eval import EvalOptions, evaluate
    from sg2img.model import GALSGenerator

    cfg = Config.from_preset("tiny")
    torch.manual_seed(0)
    model = GALSGenerator(cfg.model, VOCAB.num_objects, VOCAB.num_preds)
    data = build_dataset(DataConfig(root=str(painted_data)), "val",
                         cfg.model.renderer.image_size, cfg.model.layout.mask_size)
    calls = []
    forward = model.forward

    def recording(batch, **kw):
        calls.append((batch.triples.clone(), {k: v.clone() for k, v in kw.items()
                                              if isinstance(v, torch.Tensor)}))
        return forward(batch, **kw)

    model.forward = recording
    evaluate(model, data, EvalOptions(metrics=["relation_swap"], detector=PaintedDetector(),
                                      batch_size=NUM_VAL, progress=False))
    (t0, n0), (t1, n1) = calls
    assert not torch.equal(t0, t1) and torch.equal(t0[:, [0, 2]], t1[:, [0, 2]])
    assert n0 and n0.keys() == n1.keys()
    assert all(torch.equal(n0[k], n1[k]) for k in n0)
    with pytest.raises(ValueError, match="leave out --gt-layout"):
        evaluate(model, data, EvalOptions(metrics=["relation_swap"], use_gt_layout=True,
                                          detector=PaintedDetector(), progress=False))


def test_a_detector_that_knows_none_of_the_classes_is_refused(painted_data):
    from sg2img.config import DataConfig
    from sg2img.data import build_dataset
    from sg2img.eval import EvalOptions, evaluate

    det = PaintedDetector()
    det.object_names = ("__background__", "bicycle", "toaster")     # none of the scenes
    data = build_dataset(DataConfig(root=str(painted_data)), "val", 64, 16)
    with pytest.raises(ValueError, match="knows none of the dataset's object classes.*"
                                         "--detector-weights"):
        evaluate(PaintedGenerator(data), data, EvalOptions(metrics=["faithfulness"],
                                                            detector=det, progress=False))


def test_detector_weights_take_coco_state_dicts_and_sg2img_detector_files(real_data, tmp_path,
                                                                         capsys):
    """--detector-weights: torchvision COCO weights score COCO's things only (stuff counted
    apart); an sg2img detector file loads as one."""
    import torchvision.models.detection as tvd

    from sg2img.cli import main
    from sg2img.eval import build_detector, detector_arch, resolve_detector, save_detector

    torch.manual_seed(0)
    coco = tvd.ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=91)
    weights = tmp_path / "coco_ssdlite.pth"
    torch.save(coco.state_dict(), weights)
    graphs = tmp_path / "val_graphs.json"
    assert main(["evaluate", "--data", str(real_data), "--write-graphs", str(graphs)]) == 0
    _write_images(tmp_path / "imgs", "val_graphs", NUM_VAL, mirror_second=False,
                  draw=real_picture)
    report = tmp_path / "coco.json"
    assert main(["evaluate", "--images", str(tmp_path / "imgs"), "--graphs", str(graphs),
                 "--data", str(real_data), "--detector-weights", str(weights),
                 "--detector-arch", "ssdlite320_mobilenet_v3_large", "--out", str(report)]) == 0
    f = json.loads(report.read_text())["metrics"]["faithfulness"]
    listed = [SceneGraph.from_dict(g) for g in json.loads(graphs.read_text())]
    coco_names = {"person", "car", "bus", "boat", "airplane", "bird", "sheep", "cow", "kite",
                  "umbrella"}
    objects = [n for g in listed for n in g.objects]
    things = sum(n in coco_names for n in objects)
    assert things and f["generated"]["num_objects"] == things
    assert f["generated"]["num_objects_not_judged"] == len(objects) - things
    ends = f["generated"]["by_endpoints"]
    assert ends["thing-stuff"]["num_not_judged"] > 0 and ends["stuff-stuff"]["num_triples"] == 0
    assert f["detector"] == f"ssdlite320_mobilenet_v3_large from {weights}"
    # An sg2img detector file is read as one, whatever its architecture settings.
    own = build_detector(NAMES, 0.4, detector_arch(input_size=64, fpn_channels=32,
                                                   head_convs=1))
    save_detector(own, tmp_path / "own.pt")
    loaded = resolve_detector(None, tmp_path / "own.pt")
    assert loaded.object_names == NAMES and loaded.threshold == pytest.approx(0.4)

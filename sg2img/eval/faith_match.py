"""Which detection is which graph object: one detection per object, matched by the graph's geometry.

A graph object can only be found by a detection of its own class, and a detection finds at most
one object. Within a class the choice is the one under which the most of the graph's geometric
triples hold for the detected boxes (the rule of :func:`sg2img.eval.box_predicate`), then the
one with the highest total detection score. With two sheep, the left one in the picture is the
graph's "sheep left of tree" whichever the detector listed first; the layout the model drew is
never read.

Every class is matched to as many of its objects as it has detections (the most objects that
can be found are found), so the choice never trades recall for triples.

The search is exact: branch and bound over every class's maximal assignments jointly (triples
between two objects of one class make this a quadratic assignment problem, which no linear
assignment solves). Scenes of eight objects finish in a few thousand branches; should one
need more than :data:`MAX_SEARCH_NODES`, the result is the better of the best assignment found
so far and coordinate ascent from the highest-scoring detections: each class in turn is
re-matched by an optimal linear assignment (``scipy``'s ``linear_sum_assignment``, the
Hungarian method) with the other classes held, then pairs of objects of one class swap
detections, as long as the number of triples that hold grows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .boxes import GEOMETRIC_PREDICATES, box_predicate

MAX_SEARCH_NODES = 200_000
"""Branches the exact search may visit; beyond them the matching falls back to coordinate ascent."""
_MAX_ROUNDS = 20


@dataclass(frozen=True)
class MatchProblem:
    """One image's matching problem, in plain lists.

    Attributes:
        labels: per graph object, the detector label of its class, or None when the detector
            does not know the class (the object cannot be found).
        triples: the graph's geometric triples as (subject, predicate name, object); other
            predicates are ignored.
        boxes: per detection its box (x0, y0, x1, y1) in [0, 1].
        det_labels: per detection its label.
        scores: per detection its score.
    """

    labels: Sequence[int | None]
    triples: Sequence[tuple[int, str, int]]
    boxes: Sequence[Sequence[float]]
    det_labels: Sequence[int]
    scores: Sequence[float]


class _Geometry:
    """Which triples hold for which detections, each pair of boxes judged once."""

    def __init__(self, problem: MatchProblem) -> None:
        self.problem = problem
        self.cache: dict[tuple[int, int], str] = {}
        self.triples = [t for t in problem.triples if t[1] in GEOMETRIC_PREDICATES
                        and t[0] != t[2]]

    def holds(self, pred: str, ds: int, do: int) -> bool:
        key = (ds, do)
        got = self.cache.get(key)
        if got is None:
            got = self.cache[key] = box_predicate(self.problem.boxes[ds], self.problem.boxes[do])
        return got == pred

    def count(self, assign: Sequence[int | None]) -> int:
        """Number of triples that hold when object i is at detection ``assign[i]``."""
        n = 0
        for s, p, o in self.triples:
            ds, do = assign[s], assign[o]
            if ds is not None and do is not None and self.holds(p, ds, do):
                n += 1
        return n

    def score(self, assign: Sequence[int | None]) -> tuple[int, float]:
        """(triples that hold, total detection score): larger is better, in that order."""
        total = sum(self.problem.scores[d] for d in assign if d is not None)
        return self.count(assign), total


def match_detections(problem: MatchProblem) -> list[int | None]:
    """One detection (or None) per graph object: see the module docstring.

    Args:
        problem: the graph's objects and triples, and the detections.

    Returns:
        Per graph object, the index of its detection, or None when it was not found.
    """
    n = len(problem.labels)
    assign: list[int | None] = [None] * n
    by_score = sorted(range(len(problem.det_labels)), key=lambda d: -problem.scores[d])
    classes: dict[int, tuple[list[int], list[int]]] = {}
    for i, lab in enumerate(problem.labels):
        if lab is not None:
            classes.setdefault(lab, ([], []))[0].append(i)
    for d in by_score:
        lab = int(problem.det_labels[d])
        if lab in classes:
            classes[lab][1].append(d)
    free = []
    for objects, dets in classes.values():
        if not dets:
            continue
        if len(objects) == 1 and len(dets) == 1:
            assign[objects[0]] = dets[0]
        else:
            free.append((objects, dets))
    if not free:
        return assign
    geo = _Geometry(problem)
    search = _Search(assign, free, geo)
    if search.run():
        return search.best
    ascent = _coordinate_ascent(assign, free, geo)
    if search.best is None or geo.score(ascent) > geo.score(search.best):
        return ascent
    return search.best


class _Search:
    """Exact branch and bound over the free objects' detections.

    Objects are decided one at a time (the most connected first), each trying its class's
    unused detections (those completing the most triples first, then by score), or None while
    its class has more objects than detections. A branch is cut when even all its undecided
    triples holding, and its objects taking their class's best scores, could not beat the best
    assignment found.
    """

    def __init__(self, assign: list[int | None], free: list[tuple[list[int], list[int]]],
                 geo: _Geometry) -> None:
        self.geo, self.scores = geo, geo.problem.scores
        self.current = list(assign)
        self.best: list[int | None] | None = None
        self.best_key: tuple[int, float] = (-1, -math.inf)
        self.nodes = 0
        self.cls: dict[int, int] = {}
        self.dets: list[list[int]] = []
        self.nones: list[int] = []
        for c, (objects, dets) in enumerate(free):
            self.dets.append(dets)
            self.nones.append(max(0, len(objects) - len(dets)))
            for i in objects:
                self.cls[i] = c
        self.incident: dict[int, list[tuple[int, str, int]]] = {i: [] for i in self.cls}
        for t in geo.triples:
            for end in {t[0], t[2]}:
                if end in self.incident:
                    self.incident[end].append(t)
        self.order = sorted(self.cls, key=lambda i: -len(self.incident[i]))
        self.decided = set(range(len(assign))) - set(self.cls)
        self.used: set[int] = set()
        self.held = geo.count(assign)           # triples among objects decided from the start
        self.undecided = sum(1 for s, _, o in geo.triples
                             if s not in self.decided or o not in self.decided)
        top = [self.scores[d[0]] for d in self.dets]          # dets are in score order
        self.rest = [0.0] * (len(self.order) + 1)
        for k in range(len(self.order) - 1, -1, -1):
            self.rest[k] = self.rest[k + 1] + top[self.cls[self.order[k]]]

    def run(self) -> bool:
        """Search; True when it finished within :data:`MAX_SEARCH_NODES` (``best`` is then
        optimal), False when it stopped early (``best`` is the best found so far, if any)."""
        fixed = sum(self.scores[d] for d in self.current if d is not None)
        return self._visit(0, fixed)

    def _gain(self, i: int, d: int | None) -> int:
        """Triples of object ``i`` that putting it at ``d`` decides and that hold."""
        if d is None:
            return 0
        n = 0
        for s, p, o in self.incident[i]:
            if (o if s == i else s) not in self.decided:
                continue
            ds, do = (d, self.current[o]) if s == i else (self.current[s], d)
            if ds is not None and do is not None and self.geo.holds(p, ds, do):
                n += 1
        return n

    def _visit(self, k: int, score: float) -> bool:
        self.nodes += 1
        if self.nodes > MAX_SEARCH_NODES:
            return False
        if k == len(self.order):
            if (self.held, score) > self.best_key:
                self.best, self.best_key = list(self.current), (self.held, score)
            return True
        if (self.held + self.undecided, score + self.rest[k]) <= self.best_key:
            return True
        i = self.order[k]
        c = self.cls[i]
        options: list[int | None] = [d for d in self.dets[c] if d not in self.used]
        if self.nones[c] > 0:
            options.append(None)
        closing = sum(1 for s, _, o in self.incident[i] if (o if s == i else s) in self.decided)
        gains = {d: self._gain(i, d) for d in options}
        options.sort(key=lambda d: -gains[d])                # stable: score order on ties
        for d in options:
            self.current[i] = d
            self.decided.add(i)
            self.held += gains[d]
            self.undecided -= closing
            if d is None:
                self.nones[c] -= 1
            else:
                self.used.add(d)
            done = self._visit(k + 1, score + (0.0 if d is None else self.scores[d]))
            if d is None:
                self.nones[c] += 1
            else:
                self.used.discard(d)
            self.undecided += closing
            self.held -= gains[d]
            self.decided.discard(i)
            self.current[i] = None
            if not done:
                return False
        return True


def _coordinate_ascent(assign: list[int | None], free: list[tuple[list[int], list[int]]],
                       geo: _Geometry) -> list[int | None]:
    from scipy.optimize import linear_sum_assignment

    current = list(assign)
    for objects, dets in free:          # start: each class's highest-scoring detections
        for i, d in zip(objects, dets, strict=False):
            current[i] = d
    best_key = geo.score(current)
    scores = geo.problem.scores
    for _ in range(_MAX_ROUNDS):
        improved = False
        for objects, dets in free:
            mine = set(objects)
            gain = [[0.0] * len(dets) for _ in objects]
            for r, i in enumerate(objects):
                for c, d in enumerate(dets):
                    held = 0
                    for s, p, o in geo.triples:
                        if s == i and o not in mine and current[o] is not None:
                            held += geo.holds(p, d, current[o])
                        elif o == i and s not in mine and current[s] is not None:
                            held += geo.holds(p, current[s], d)
                    # Triples first; the score (in [0, 1]) only breaks ties.
                    gain[r][c] = held + 1e-3 * scores[d]
            rows, cols = linear_sum_assignment(gain, maximize=True)
            trial = list(current)
            for i in objects:
                trial[i] = None
            for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
                trial[objects[r]] = dets[c]
            key = geo.score(trial)
            if key > best_key:
                current, best_key, improved = trial, key, True
        current, key = _local_search(current, best_key, free, geo)
        improved |= key > best_key
        best_key = key
        if not improved:
            break
    return current


def _local_search(current: list[int | None], best_key: tuple[int, float],
                  free: list[tuple[list[int], list[int]]], geo: _Geometry
                  ) -> tuple[list[int | None], tuple[int, float]]:
    """Swap two objects' detections, or move an object to an unused detection of its class,
    while that makes more triples hold: the triples between objects of one class, which the
    per-class assignment above cannot weigh."""
    for _ in range(_MAX_ROUNDS):
        improved = False
        for objects, dets in free:
            for a, i in enumerate(objects):
                for j in objects[a + 1:]:
                    trial = list(current)
                    trial[i], trial[j] = current[j], current[i]
                    key = geo.score(trial)
                    if key > best_key:
                        current, best_key, improved = trial, key, True
                unused = [d for d in dets if d not in set(current)]
                for d in unused:
                    if current[i] is None:
                        continue
                    trial = list(current)
                    trial[i] = d
                    key = geo.score(trial)
                    if key > best_key:
                        current, best_key, improved = trial, key, True
        if not improved:
            break
    return current, best_key

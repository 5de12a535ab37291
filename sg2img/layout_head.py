"""Stochastic layout head: boxes drawn from a mixture density over box parameters.

Why a distribution: a regression head trained with an L1 loss on ``(x0, y0, x1, y1)`` predicts,
for an object whose place the graph leaves open (a sun somewhere in the sky), the median of
each corner over the places it could be, i.e. one box spanning all of them. Modelling the
box as ``(cx, cy, log w, log h)`` under a mixture of K diagonal Gaussians separates the size
(well determined by the class and the graph) from the place (often open): the most likely box
keeps the object's size, and a sample draws one plausible place instead of their average.

Objects of one graph see each other twice: through the graph convolution (every object
vector already carries its relations), and, with ``sequential=True``, through the boxes of the
objects placed before it. Objects are then placed one after another (largest expected area
first); each one's mixture is conditioned on a "light pass" over its triples whose other end
is already placed: a message MLP reads ``[predicate vector, partner box, role]`` and the
messages are averaged per object. Training uses teacher forcing with a random order per graph,
so any order (including the one chosen at inference, and pinned boxes placed first) is one the
head has seen.

With ``pred_codes`` (the geometric meaning of each triple's predicate: left of, above, inside,
...), objects are placed one by one by either kind of head, and placement checks the graph's
geometric triples against the boxes already placed, under the rule the datasets make those
triples with (``sg2img.data.coco.spatial_predicate``, box centres): among the K components,
only those whose candidate box (its mean for the mode, its draw for a sample) satisfies the
most such triples stay in the running; the mode takes the heaviest of them, a sample draws
among them in proportion to their weights.

Shapes (``MixtureBoxHead``):
    obj_vecs (O, D), pred_vecs (T, D), edges (T, 2) long [subject, object], obj_to_img (O,),
    known (O,) bool, known_boxes (O, 4) -> boxes (O, 4) in [0, 1]
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .graph import build_mlp
from .layout import paired_iou

with warnings.catch_warnings():
    # torch-geometric's import calls torch.jit.script, which warns that it is deprecated;
    # users of sg2img cannot act on that, so the warning stays here.
    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=FutureWarning)
    from torch_geometric.utils import scatter
from .vocab import COCO_PREDICATES

LAYOUT_MODES = ("sample", "mode")
NOISE_DIM = 5                 # per object: one uniform (component) + four normals (box params)
_LOG_STD_MIN, _LOG_STD_MAX = -6.0, 1.0
# Offsets that put the untrained mixture's means at a mid-sized box in the image centre.
_PARAM_OFFSET = (0.5, 0.5, math.log(0.3), math.log(0.3))


@dataclass
class BoxMixture:
    """A mixture of K diagonal Gaussians over ``(cx, cy, log w, log h)`` per object.

    Shapes:
        logits (O, K) unnormalised component weights; means (O, K, 4); log_stds (O, K, 4).
    """

    logits: Tensor
    means: Tensor
    log_stds: Tensor

    def __getitem__(self, index: Tensor) -> BoxMixture:
        return BoxMixture(self.logits[index], self.means[index], self.log_stds[index])


_CODE = {name: i for i, name in enumerate(COCO_PREDICATES)}
GEOMETRIC_CODES = tuple(_CODE[n] for n in ("left of", "right of", "above", "below", "inside",
                                            "surrounding"))


def geometric_codes(pred_names: Sequence[str]) -> Tensor:
    """Per predicate id, its index in ``COCO_PREDICATES`` if geometric, else -1.

    Returns:
        (P,) long.
    """
    return torch.tensor([_CODE[n] if n in _CODE and _CODE[n] in GEOMETRIC_CODES else -1
                         for n in pred_names], dtype=torch.long)


def spatial_predicates(boxes_s: Tensor, boxes_o: Tensor) -> Tensor:
    """``sg2img.data.coco.spatial_predicate`` on many box pairs, with box centres.

    Args:
        boxes_s, boxes_o: (..., 4) subject and object boxes.

    Returns:
        (...) long, indices into ``COCO_PREDICATES``.
    """
    sx0, sy0, sx1, sy1 = boxes_s.unbind(dim=-1)
    ox0, oy0, ox1, oy1 = boxes_o.unbind(dim=-1)
    theta = torch.atan2((sy0 + sy1) / 2 - (oy0 + oy1) / 2, (sx0 + sx1) / 2 - (ox0 + ox1) / 2)
    pi = math.pi
    code = torch.full_like(theta, _CODE["below"], dtype=torch.long)
    code = torch.where(theta < pi / 4, _CODE["right of"], code)
    code = torch.where(theta < -pi / 4, _CODE["above"], code)
    code = torch.where((theta >= 3 * pi / 4) | (theta <= -3 * pi / 4), _CODE["left of"], code)
    inside = (sx0 > ox0) & (sx1 < ox1) & (sy0 > oy0) & (sy1 < oy1)
    code = torch.where(inside, _CODE["inside"], code)
    surrounding = (sx0 < ox0) & (sx1 > ox1) & (sy0 < oy0) & (sy1 > oy1)
    return torch.where(surrounding, _CODE["surrounding"], code)


def boxes_to_params(boxes: Tensor, min_size: float = 0.01) -> Tensor:
    """``(x0, y0, x1, y1)`` -> ``(cx, cy, log w, log h)``; sizes below ``min_size`` are raised.

    Args:
        boxes: (O, 4) in [0, 1].

    Returns:
        (O, 4).
    """
    x0, y0, x1, y1 = boxes.unbind(dim=-1)
    w = (x1 - x0).clamp(min=min_size)
    h = (y1 - y0).clamp(min=min_size)
    return torch.stack([(x0 + x1) / 2, (y0 + y1) / 2, w.log(), h.log()], dim=-1)


def params_to_boxes(params: Tensor, min_size: float = 0.01) -> Tensor:
    """``(cx, cy, log w, log h)`` -> a box inside the image.

    The size is clamped to ``[min_size, 1]``, then the centre is moved the least needed to put
    the whole box inside the image (so a sampled box never leaves it or turns inside out).

    Args:
        params: (O, 4).

    Returns:
        (O, 4) ``(x0, y0, x1, y1)`` in [0, 1] with ``x1 - x0 >= min_size``.
    """
    cx, cy, lw, lh = params.unbind(dim=-1)
    w = lw.exp().clamp(min_size, 1.0)
    h = lh.exp().clamp(min_size, 1.0)
    cx = torch.minimum(torch.maximum(cx, w / 2), 1 - w / 2)
    cy = torch.minimum(torch.maximum(cy, h / 2), 1 - h / 2)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1).clamp(0.0, 1.0)


def draw_layout_noise(num_objects: int, rng: torch.Generator | None = None,
                      device: torch.device | None = None) -> Tensor:
    """Per-object noise for ``MixtureBoxHead``: column 0 uniform [0, 1), columns 1-4 normal.

    Returns:
        (O, NOISE_DIM).
    """
    u = torch.rand(num_objects, 1, generator=rng, device=device)
    eps = torch.randn(num_objects, NOISE_DIM - 1, generator=rng, device=device)
    return torch.cat([u, eps], dim=1)


def component_candidates(mix: BoxMixture, noise: Tensor | None) -> Tensor:
    """Each component's candidate: its mean (mode) or its draw with the object's normals.

    Returns:
        (O, K, 4) ``(cx, cy, log w, log h)``.
    """
    if noise is None:
        return mix.means
    return mix.means + mix.log_stds.exp() * noise[:, None, 1:].to(mix.means.dtype)


def mixture_pick(mix: BoxMixture, noise: Tensor | None, allowed: Tensor | None = None) -> Tensor:
    """Box parameters from a mixture: a sample driven by ``noise``, or the mode (``None``).

    The mode is the mean of the heaviest component (the mixture's exact mode has no closed
    form; with well-separated components this is it).

    Args:
        mix: (O, K) mixture.
        noise: (O, NOISE_DIM) from ``draw_layout_noise``, or None for the mode.
        allowed: (O, K) bool, components that may be picked (at least one per object);
            the weights are renormalised over them.

    Returns:
        (O, 4) ``(cx, cy, log w, log h)``.
    """
    probs = mix.logits.softmax(dim=1)                                          # (O, K)
    if allowed is not None:
        probs = probs * allowed.to(probs.dtype)
    if noise is None:
        k = probs.argmax(dim=1)
    else:
        # Inverse CDF on the uniform column: the same noise picks the same component.
        cdf = probs.cumsum(dim=1)
        u = noise[:, :1].to(cdf.dtype) * cdf[:, -1:]
        k = (cdf <= u).sum(dim=1).clamp(max=probs.shape[1] - 1)
    idx = k[:, None, None].expand(-1, 1, 4)
    return component_candidates(mix, noise).gather(1, idx)[:, 0]               # (O, 4)


class MixtureBoxHead(nn.Module):
    """Object vector (+ boxes of already placed neighbours) -> mixture over its box.

    Args:
        dim: width of the object and predicate vectors (``gconv_dim``).
        hidden_dim: hidden width of the MLPs.
        num_components: K.
        sequential: condition each object on the boxes of the objects placed before it.
        min_size: smallest box side.
    """

    def __init__(self, dim: int, hidden_dim: int, num_components: int = 5,
                 sequential: bool = True, min_size: float = 0.01):
        super().__init__()
        if num_components < 1:
            raise ValueError(f"num_components must be >= 1, got {num_components}")
        self.dim = dim
        self.num_components = num_components
        self.sequential = sequential
        self.min_size = min_size
        self.context_dim = hidden_dim // 2 if sequential else 0
        if sequential:
            # [predicate vector, partner's (cx, cy, log w, log h), 1 if I am the subject]
            self.message = build_mlp([dim + 5, hidden_dim, self.context_dim],
                                     final_activation=True)
        self.mlp = build_mlp([dim + self.context_dim, hidden_dim, hidden_dim,
                              num_components * 9])
        self.register_buffer("param_offset", torch.tensor(_PARAM_OFFSET), persistent=False)

    # ------------------------------------------------------------------ pieces
    def context(self, pred_vecs: Tensor, edges: Tensor, params: Tensor, placed_s: Tensor,
                placed_o: Tensor, num_objects: int) -> Tensor:
        """Mean message from the placed partners of each object.

        Args:
            pred_vecs: (T, D).
            edges: (T, 2) [subject, object].
            params: (O, 4) box parameters of the objects (only placed ones are read).
            placed_s: (T,) bool, the triple's object is placed and its subject listens.
            placed_o: (T,) bool, the triple's subject is placed and its object listens.
            num_objects: O.

        Returns:
            (O, context_dim); zeros for objects with no placed partner.
        """
        subj, obj = edges.unbind(dim=1)
        ones = pred_vecs.new_ones(len(subj), 1)
        to_s = torch.cat([pred_vecs, params[obj], ones], dim=1)                # (T, D + 5)
        to_o = torch.cat([pred_vecs, params[subj], 0 * ones], dim=1)           # (T, D + 5)
        msgs = self.message(torch.cat([to_s[placed_s], to_o[placed_o]]))       # (T', ctx)
        dest = torch.cat([subj[placed_s], obj[placed_o]])
        return scatter(msgs, dest, dim=0, dim_size=num_objects, reduce="mean")  # (O, ctx)

    def mixture(self, obj_vecs: Tensor, context: Tensor | None = None) -> BoxMixture:
        """The mixture of each object given its vector and (sequential heads) its context."""
        x = obj_vecs if context is None else torch.cat([obj_vecs, context], dim=1)
        out = self.mlp(x).view(-1, self.num_components, 9)                     # (O, K, 9)
        logits = out[:, :, 0]
        means = out[:, :, 1:5] + self.param_offset.to(out.dtype)
        # Soft bounds keep the density finite without cutting the gradient at a hard clamp.
        log_stds = _LOG_STD_MIN + (_LOG_STD_MAX - _LOG_STD_MIN) * torch.sigmoid(out[:, :, 5:])
        return BoxMixture(logits, means, log_stds)

    def teacher_forced(self, obj_vecs: Tensor, pred_vecs: Tensor, edges: Tensor, boxes: Tensor,
                       order: Tensor | None = None,
                       rng: torch.Generator | None = None) -> BoxMixture:
        """Each object's mixture given the true boxes of the objects before it in ``order``.

        Args:
            boxes: (O, 4) true boxes.
            order: (O,) float keys; an object's placed partners are those with smaller keys.
                Drawn uniformly (a random order per graph) when None.

        Returns:
            the (O, K) mixture for the training loss.
        """
        if not self.sequential:
            return self.mixture(obj_vecs)
        if order is None:
            order = torch.rand(len(obj_vecs), generator=rng,
                               device=obj_vecs.device)
        params = boxes_to_params(boxes.to(obj_vecs.dtype), self.min_size)
        subj, obj = edges.unbind(dim=1)
        ctx = self.context(pred_vecs, edges, params, order[obj] < order[subj],
                           order[subj] < order[obj], len(obj_vecs))
        return self.mixture(obj_vecs, ctx)

    # ----------------------------------------------------------------- forward
    def forward(self, obj_vecs: Tensor, pred_vecs: Tensor, edges: Tensor, obj_to_img: Tensor,
                *, known: Tensor | None = None, known_boxes: Tensor | None = None,
                noise: Tensor | None = None, pred_codes: Tensor | None = None,
                apart: Tensor | None = None, max_iou: float = 1.0) -> Tensor:
        """Lay out all objects: sample (``noise`` given) or take the mode (``noise`` None).

        Args:
            obj_vecs: (O, D) after the graph convolution.
            pred_vecs: (T, D) after the graph convolution.
            edges: (T, 2) [subject, object] indexing ``obj_vecs``.
            obj_to_img: (O,) image of each object (one object per image is placed per round).
            known: (O,) bool, objects whose box is fixed (pinned, frozen, the image node);
                they are placed first and the others are conditioned on them.
            known_boxes: (O, 4) their boxes (read where ``known``).
            noise: (O, NOISE_DIM) from ``draw_layout_noise``; None gives the mode.
            pred_codes: (T,) long, each triple's geometric predicate as an index into
                ``COCO_PREDICATES`` (-1: not geometric); when given, objects are placed one
                by one (also by an independent head, whose mixtures then do not change) and
                only the components that satisfy the most geometric triples with the boxes
                already placed stay in the running (see the module docstring).
            apart: (O,) bool, objects that keep apart (things): while one is placed, among
                the components left, those whose box overlaps an ``apart`` object already
                placed in its image by more than ``max_iou`` (IoU) drop out, unless all do;
                then the least overlapping stay. Needs ``pred_codes`` (objects placed one
                by one).

        Returns:
            (O, 4) boxes in [0, 1]; known objects get ``known_boxes``.
        """
        O = len(obj_vecs)
        if noise is not None and noise.shape != (O, NOISE_DIM):
            raise ValueError(f"layout noise must have shape ({O}, {NOISE_DIM}), got "
                             f"{tuple(noise.shape)}")
        if known is None:
            known = torch.zeros(O, dtype=torch.bool, device=obj_vecs.device)
        if known.any() and known_boxes is None:
            raise ValueError("known objects need known_boxes (O, 4)")
        if not self.sequential and pred_codes is None:
            boxes = params_to_boxes(mixture_pick(self.mixture(obj_vecs), noise), self.min_size)
            return boxes if not known.any() else torch.where(
                known[:, None], known_boxes.to(boxes.dtype), boxes)
        params = obj_vecs.new_zeros(O, 4)
        if known.any():
            params = torch.where(known[:, None],
                                 boxes_to_params(known_boxes.to(params.dtype), self.min_size),
                                 params)
        placed = known.clone()
        # Order of placement: largest expected area first, from the mixtures given only the
        # known boxes (a painter's order: the sky before the sun inside it).
        first = self.mixture(obj_vecs, self._context_or_none(pred_vecs, edges, params, placed))
        w = first.logits.softmax(dim=1)
        exp_log_area = (w * (first.means[:, :, 2] + first.means[:, :, 3])).sum(dim=1)
        out = params.clone()
        remaining = ~placed
        mix = first
        while remaining.any():
            # One object per graph per round: each graph's largest remaining object.
            score = torch.where(remaining, exp_log_area, exp_log_area.new_tensor(-math.inf))
            chosen = _argmax_per_group(score, remaining, obj_to_img)
            if not chosen.any():      # non-finite scores (a broken model): place the rest
                chosen = remaining
            allowed = None
            if pred_codes is not None:
                allowed = self._satisfying(mix, noise, edges, pred_codes, out, placed, chosen)
                if apart is not None and max_iou < 1:
                    allowed = self._apart(mix, noise, out, placed, chosen, allowed, apart,
                                          obj_to_img, max_iou)
            picked = mixture_pick(mix, noise, allowed)
            out = torch.where(chosen[:, None], picked, out)
            placed = placed | chosen
            remaining = remaining & ~chosen
            if remaining.any() and self.sequential:
                mix = self.mixture(obj_vecs,
                                   self._context_or_none(pred_vecs, edges, out, placed))
        boxes = params_to_boxes(out, self.min_size)
        if known.any():
            boxes = torch.where(known[:, None], known_boxes.to(boxes.dtype), boxes)
        return boxes

    def _context_or_none(self, pred_vecs: Tensor, edges: Tensor, params: Tensor,
                         placed: Tensor) -> Tensor | None:
        if not self.sequential:
            return None
        subj, obj = edges.unbind(dim=1)
        return self.context(pred_vecs, edges, params, placed[obj], placed[subj], len(params))

    def _satisfying(self, mix: BoxMixture, noise: Tensor | None, edges: Tensor,
                    pred_codes: Tensor, params: Tensor, placed: Tensor,
                    chosen: Tensor) -> Tensor:
        """(O, K) bool: the components whose candidate satisfies the most geometric triples
        linking the object to already placed objects (all True for objects with none)."""
        O, K = mix.logits.shape
        cand = params_to_boxes(component_candidates(mix, noise), self.min_size)  # (O, K, 4)
        placed_boxes = params_to_boxes(params, self.min_size)                    # (O, 4)
        subj, obj = edges.unbind(dim=1)
        geo = pred_codes >= 0
        score = mix.logits.new_zeros(O, K)
        for me, other, i_am_subject in ((subj, obj, True), (obj, subj, False)):
            t = geo & chosen[me] & placed[other]                                 # (T,)
            if not t.any():
                continue
            mine = cand[me[t]]                                                   # (T', K, 4)
            theirs = placed_boxes[other[t]][:, None].expand_as(mine)
            got = (spatial_predicates(mine, theirs) if i_am_subject
                   else spatial_predicates(theirs, mine))                        # (T', K)
            ok = (got == pred_codes[t][:, None]).to(score.dtype)
            score = score.index_add(0, me[t], ok)
        return score >= score.max(dim=1, keepdim=True).values


    def _apart(self, mix: BoxMixture, noise: Tensor | None, params: Tensor, placed: Tensor,
               chosen: Tensor, allowed: Tensor, apart: Tensor, obj_to_img: Tensor,
               max_iou: float) -> Tensor:
        """(O, K) bool: ``allowed``, less the components of chosen ``apart`` objects whose box
        overlaps a placed ``apart`` object of the image by more than ``max_iou`` (the least
        overlapping stay when every allowed one does)."""
        mine = (chosen & apart).nonzero()[:, 0]                                  # (C,)
        theirs = (placed & apart).nonzero()[:, 0]                                # (P,)
        if mine.numel() == 0 or theirs.numel() == 0:
            return allowed
        same = obj_to_img[mine][:, None] == obj_to_img[theirs][None, :]           # (C, P)
        c, p = same.nonzero().unbind(dim=1)
        if c.numel() == 0:
            return allowed
        cand = params_to_boxes(component_candidates(mix[mine], noise if noise is None
                                                    else noise[mine]), self.min_size)  # (C, K, 4)
        other = params_to_boxes(params[theirs], self.min_size)[p]                # (pairs, 4)
        iou = paired_iou(cand[c], other[:, None].expand_as(cand[c]))             # (pairs, K)
        worst = iou.new_zeros(len(mine), iou.shape[1]).scatter_reduce(
            0, c[:, None].expand_as(iou), iou, reduce="amax")                    # (C, K)
        ok = allowed[mine]
        free = ok & (worst <= max_iou)
        least = ok & (worst <= torch.where(ok, worst, worst.new_tensor(math.inf))
                      .min(dim=1, keepdim=True).values)
        keep = torch.where(free.any(dim=1, keepdim=True), free, least)
        allowed = allowed.clone()
        allowed[mine] = keep
        return allowed


def _argmax_per_group(score: Tensor, valid: Tensor, group: Tensor) -> Tensor:
    """(O,) bool: for every group with a valid member, its valid member of highest score."""
    O = len(score)
    G = int(group.max()) + 1 if O else 0
    best = torch.full((G,), -math.inf, dtype=score.dtype, device=score.device)
    score = torch.where(valid, score, score.new_tensor(-math.inf))
    best = best.scatter_reduce(0, group, score, reduce="amax")
    cand = valid & (score >= best[group])
    # Ties: keep the first index.
    idx = torch.arange(O, device=score.device)
    first = torch.full((G,), O, dtype=torch.long, device=score.device)
    first = first.scatter_reduce(0, group[cand], idx[cand], reduce="amin")
    return cand & (idx == first[group])


def check_layout_mode(layout_mode: str) -> str:
    """Return ``layout_mode`` if it is one of ``LAYOUT_MODES``, else raise ``ValueError``."""
    if layout_mode not in LAYOUT_MODES:
        raise ValueError(f"layout_mode must be one of {LAYOUT_MODES}, got {layout_mode!r}")
    return layout_mode


__all__ = ["LAYOUT_MODES", "NOISE_DIM", "BoxMixture", "MixtureBoxHead", "boxes_to_params",
           "check_layout_mode", "draw_layout_noise", "geometric_codes", "mixture_pick",
           "params_to_boxes", "spatial_predicates"]

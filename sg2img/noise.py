"""Seeded noise for generation: one rule for every image sg2img draws.

**The seed rule.** Sample ``k`` of a graph under seed ``s`` depends only on the model, the
graph's content, ``s`` and ``k``: never on the other graphs in the call, on their order, on
how many samples were asked or on the batch size (which may change float rounding, never the
noise). The same graph twice in one call gives the same pictures; ask for other samples or
seeds to get others. ``generate``, ``manipulate``, ``evaluate``, the command line and the
editor all draw through ``draw_sample_noise``.

A graph's content, for the noise, is its object classes and its relationships
(``graph_key``): pinned boxes and attributes are conditions, not part of the draw, so pinning
a box or recolouring an object keeps the rest of the picture's noise.

Every stream (``z``, the per-object noise, the layout noise, a redrawn object) has its own
``torch.Generator`` on the CPU, seeded from a hash of (stream, seed, graph key, sample), so a
seed means the same images on every device. Per-object rows are drawn one object at a time:
object ``r``'s row is the same whatever the number of objects after it.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .files import short
from .generate_args import GenerationError
from .layout_head import NOISE_DIM as LAYOUT_NOISE_DIM
from .layout_head import draw_layout_noise

__all__ = ["MAX_SEED", "SampleNoise", "batch_noise", "carry_rows", "check_seed",
           "draw_sample_noise", "graph_key", "graph_keys", "redraw_rows", "stream"]

MAX_SEED = 2**64 - 1


def check_seed(seed: int | None) -> int:
    """``seed``, or a fresh one when None.

    Raises:
        GenerationError: not an integer in 0..2**64 - 1.
    """
    if seed is None:
        return random.SystemRandom().randrange(2**31)
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
        raise GenerationError(f"seed must be an integer in 0..2**64 - 1, got {short(seed)}")
    return seed


def graph_key(objs: Tensor, triples: Tensor) -> int:
    """A 64-bit digest of an encoded graph's content for the noise: its object class ids
    (the image node, last, left out) and its relationships (the ``__in_image__`` triples,
    predicate id 0, left out).

    Args:
        objs: (O,) object ids with the image node last.
        triples: (T, 3) [s, p, o] indexing into ``objs``.
    """
    user = objs[:-1].tolist()
    rels = sorted(tuple(t) for t in triples.reshape(-1, 3).tolist() if t[1] != 0)
    text = f"{user}|{rels}"
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def graph_keys(objs: Tensor, triples: Tensor, obj_to_img: Tensor, num_graphs: int) -> list[int]:
    """``graph_key`` of every graph of a collated batch (objects of graph i where
    ``obj_to_img == i``, triples indexing the batch's objects)."""
    objs, triples, owner = objs.cpu(), triples.reshape(-1, 3).cpu(), obj_to_img.cpu()
    keys = []
    for i in range(num_graphs):
        idx = (owner == i).nonzero().flatten()
        if len(idx) == 0:
            raise ValueError(f"graph {i} of the batch has no objects (not even the image node)")
        lo = int(idx[0])
        mine = triples[owner[triples[:, 0]] == i]
        keys.append(graph_key(objs[idx], mine - torch.tensor([lo, 0, lo])))
    return keys


def stream(name: str, seed: int, key: int, sample: int, *extra: int) -> torch.Generator:
    """The CPU generator of one noise stream of sample ``sample`` of the graph ``key``."""
    text = "/".join(str(v) for v in (name, seed, key, sample, *extra))
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest, "little") >> 1)


def _rows(gen: torch.Generator, num: int, dim: int) -> Tensor:
    """(num, dim) standard normal, one row at a time (row r is the same for any ``num``;
    one (num, dim) draw would not be: torch's CPU sampler changes method with the size)."""
    if num == 0:
        return torch.zeros(0, dim)
    return torch.stack([torch.randn(dim, generator=gen) for _ in range(num)])


@dataclass(frozen=True)
class SampleNoise:
    """The noise of one image.

    Attributes:
        z: (noise_dim,) the image's noise.
        objects: (O, object_noise_dim) per-object noise (image node last), or None for
            models without it.
        layout: (O, 5) the layout head's noise for ``layout_mode="sample"``, or None.
    """

    z: Tensor
    objects: Tensor | None
    layout: Tensor | None


def draw_sample_noise(seed: int, key: int, sample: int, num_objects: int, noise_dim: int,
                      object_noise_dim: int = 0, layout: bool = False) -> SampleNoise:
    """The noise of sample ``sample`` of the graph ``key`` (``graph_key``) under ``seed``.

    Args:
        num_objects: O, the graph's objects with the image node.
        noise_dim: the model's ``z`` size.
        object_noise_dim: per-object noise channels; 0 for none.
        layout: also draw the layout head's noise (for ``layout_mode="sample"``).
    """
    z = torch.randn(noise_dim, generator=stream("z", seed, key, sample))
    objects = (_rows(stream("objects", seed, key, sample), num_objects, object_noise_dim)
               if object_noise_dim else None)
    lay = None
    if layout:
        gen = stream("layout", seed, key, sample)
        lay = (torch.cat([draw_layout_noise(1, gen) for _ in range(num_objects)])
               if num_objects else torch.zeros(0, LAYOUT_NOISE_DIM))
    return SampleNoise(z, objects, lay)


def redraw_rows(noise: Tensor, rows: Iterable[int], seed: int, key: int, sample: int) -> Tensor:
    """A copy of per-object ``noise`` (O, D) with ``rows`` redrawn. Row r of sample
    ``sample`` of the graph ``key`` comes from its own generator: the same look of an object
    whatever else is redrawn, in whichever call."""
    out = noise.clone()
    for r in rows:
        out[r] = torch.randn(noise.shape[1], generator=stream("redraw", seed, key, sample, r))
    return out


def carry_rows(old: Tensor, old_to_new: Sequence[int | None], num_new: int,
               draw_row: Callable[[], Tensor], redraw: Iterable[int] = ()) -> Tensor:
    """(num_new, D) per-object rows after a graph edit: rows of kept objects move with them,
    the image node's row (last) stays, rows of new objects and of the kept objects in
    ``redraw`` (new indices) come from ``draw_row()``, in index order."""
    redraw = set(redraw)
    kept = {n: o for o, n in enumerate(old_to_new) if n is not None and n not in redraw}
    kept[num_new - 1] = len(old) - 1
    return torch.stack([old[kept[n]] if n in kept else draw_row().reshape(old.shape[1])
                        for n in range(num_new)])


def batch_noise(objs: Tensor, triples: Tensor, obj_to_img: Tensor, num_images: int, *,
                seed: int, sample: int, noise_dim: int, object_noise_dim: int = 0,
                layout: bool = False) -> dict[str, Tensor]:
    """The seed rule's noise for every graph of a collated batch, as keyword arguments of
    ``GALSGenerator.forward``: ``z`` (N, noise_dim), and ``obj_noise`` (O, D) and
    ``layout_noise`` (O, 5) over the batch's objects when asked for. Graph i's noise is
    sample ``sample`` of its own content, whatever else is in the batch."""
    keys = graph_keys(objs, triples, obj_to_img, num_images)
    counts = torch.bincount(obj_to_img.cpu(), minlength=num_images).tolist()
    draws = [draw_sample_noise(seed, key, sample, n, noise_dim, object_noise_dim, layout)
             for key, n in zip(keys, counts, strict=True)]
    out = {"z": torch.stack([d.z for d in draws])}
    if object_noise_dim:
        out["obj_noise"] = torch.cat([d.objects for d in draws])
    if layout:
        out["layout_noise"] = torch.cat([d.layout for d in draws])
    return out

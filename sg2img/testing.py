"""Random scene graphs with boxes, masks and images, for tests and benchmarks.

One builder instead of a copy per test file and benchmark script. The scenes mean nothing;
they have the shapes and ranges real dataset items have (``GraphSample`` with the image node
appended), and are deterministic for a seed.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .scene_graph import GraphBatch, GraphSample, collate_graphs
from .vocab import Vocab

# (objects, predicates) of each preset's dataset vocabulary, image node and in-image
# predicate included: the procedural data for tiny/small, COCO-Stuff and Visual Genome.
PRESET_VOCAB_SIZES = {"tiny": (28, 7), "small": (28, 7), "coco64": (184, 7),
                      "coco128": (184, 7), "vg64": (179, 46), "vg128": (179, 46)}


def random_graph(rng: torch.Generator, num_objects: int, num_preds: int, *, k: int,
                 image_size: int, mask_size: int, num_triples: int | None = None,
                 with_masks: bool = True, max_class: int | None = None,
                 num_attributes: int = 0) -> GraphSample:
    """One random scene of ``k`` objects (image node appended).

    Args:
        rng: draws everything.
        num_objects, num_preds: vocabulary sizes (ids 1.. are drawn; 0 is the image node).
        k: number of objects.
        image_size, mask_size: H (= W) of the image and M of the masks.
        num_triples: random (subject, predicate, object) triples; None gives one triple
            ``[0, 1, k - 1]`` (none when ``k == 1``).
        with_masks: masks (O, M, M) in {0, 1}, or None as in Visual Genome.
        max_class: draw object ids below this instead of ``num_objects``.
        num_attributes: A > 0 gives random multi-hot attributes (O, A), else None.

    Returns:
        A ``GraphSample`` with boxes (x0, y0, x1, y1) in [0, 1] and an image in [-1, 1].
    """
    objs = torch.randint(1, max_class or num_objects, (k,), generator=rng)
    if num_triples is None:
        triples = (torch.tensor([[0, 1, k - 1]]) if k > 1
                   else torch.zeros(0, 3, dtype=torch.long))
    else:
        s = torch.randint(0, k, (num_triples,), generator=rng)
        o = torch.randint(0, k, (num_triples,), generator=rng)
        p = torch.randint(1, num_preds, (num_triples,), generator=rng)
        triples = torch.stack([s, p, o], dim=1)
    xy = torch.rand(k, 2, generator=rng) * 0.5
    boxes = torch.cat([xy, xy + 0.1 + 0.4 * torch.rand(k, 2, generator=rng)], dim=1)
    masks = ((torch.rand(k, mask_size, mask_size, generator=rng) > 0.3).float()
             if with_masks else None)
    image = torch.rand(3, image_size, image_size, generator=rng) * 2 - 1
    attributes = ((torch.rand(k, num_attributes, generator=rng) > 0.7).float()
                  if num_attributes > 0 else None)
    return GraphSample(objs, triples, boxes=boxes, masks=masks, image=image,
                       attributes=attributes).with_image_node()


def random_graph_batch(num_objects: int, num_preds: int, sizes: Sequence[int], *,
                       image_size: int, mask_size: int, seed: int = 0, **kwargs
                       ) -> GraphBatch:
    """A batch of :func:`random_graph` scenes with ``sizes[i]`` objects in scene ``i``."""
    rng = torch.Generator().manual_seed(seed)
    return collate_graphs([random_graph(rng, num_objects, num_preds, k=k, image_size=image_size,
                                        mask_size=mask_size, **kwargs) for k in sizes])


def numbered_vocab(num_objects: int, num_preds: int) -> Vocab:
    """A vocabulary of ``num_objects`` objects and ``num_preds`` predicates (image node and
    in-image predicate included) named ``obj1``.. and ``pred1``..: the sizes of a dataset's
    vocabulary for models with random weights."""
    return Vocab.from_names([f"obj{i}" for i in range(1, num_objects)],
                            [f"pred{i}" for i in range(1, num_preds)])


def random_scene_batch(vocab: Vocab, n: int, image_size: int, mask_size: int, seed: int = 0,
                       num_classes_used: int | None = None, vg: bool = False) -> GraphBatch:
    """``n`` random scenes of 3-8 objects with 0..k random triples; objects use class ids below
    ``num_classes_used`` if given; no masks for Visual Genome (``vg``)."""
    rng = torch.Generator().manual_seed(seed)
    samples = []
    for _ in range(n):
        k = int(torch.randint(3, 9, (1,), generator=rng))
        samples.append(random_graph(rng, vocab.num_objects, vocab.num_preds, k=k,
                                    image_size=image_size, mask_size=mask_size,
                                    num_triples=int(torch.randint(0, k + 1, (1,), generator=rng)),
                                    with_masks=not vg, max_class=num_classes_used))
    return collate_graphs(samples)


def random_model_export(path, vocab: Vocab, overrides: Sequence[str] = (), *,
                        preset: str = "tiny", seed: int = 0):
    """An inference export of an untrained generator (``preset`` with ``overrides``, weights
    drawn after ``torch.manual_seed(seed)``) for ``vocab``, written to ``path``; returns the
    path. What tests load as a model when the pixels need not mean anything."""
    from .checkpoint import export_inference
    from .config import Config
    from .model import GALSGenerator

    cfg = Config.from_preset(preset, overrides)
    torch.manual_seed(seed)
    gen = GALSGenerator(cfg.model, vocab.num_objects, vocab.num_preds)
    return export_inference(path, cfg, vocab, gen)

"""``GenerationResult``: what ``generate`` returns, the images with what made them and
drawings of their graphs and layouts."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from PIL import Image
from torch import Tensor

from . import vis
from .scene_graph import SceneGraph
from .vocab import Vocab

__all__ = ["GenerationResult"]


@dataclass(eq=False)
class GenerationResult(Sequence):
    """Generated images; a list of PIL images that also carries what made them.

    Image ``k`` is sample ``sample_index[k]`` of graph ``graph_index[k]``; images are ordered
    graph by graph, samples of one graph together.

    Attributes:
        images: N RGB PIL images.
        tensors: (N, 3, H, W) in [-1, 1] on the CPU (H = ``image_size``).
        boxes: N tensors (O_k, 4), (x0, y0, x1, y1) in [0, 1]: the boxes that built each layout
            (predicted, or pinned by the graph's ``boxes``), one per graph object.
        masks: N tensors (O_k, M, M) in [0, 1].
        layout: (N, C, H', W') semantic layouts at the model's size when ``return_layout``;
            channel c is object class c (``vocab.object_names[c]``).
        graphs: the graph of each image.
        graph_index, sample_index: where each image comes from.
        z: (N, noise_dim) the noise of each image.
        seed: the seed the noise was drawn with.
        vocab: the model's vocabulary.
    """

    images: list[Image.Image]
    tensors: Tensor
    boxes: list[Tensor]
    masks: list[Tensor]
    layout: Tensor | None
    graphs: list[SceneGraph]
    graph_index: list[int]
    sample_index: list[int]
    z: Tensor
    seed: int
    vocab: Vocab

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, k):  # type: ignore[override]
        return self.images[k]

    def __iter__(self) -> Iterator[Image.Image]:
        return iter(self.images)

    def draw_layout(self, k: int, size: int = 256) -> Image.Image:
        """Drawing of image ``k``'s layout: coloured masks in their boxes, labelled with each
        object's attributes and name ("red car")."""
        g = self.graphs[k]
        ids = [self.vocab.object_idx(n) for n in g.objects]
        return vis.draw_layout(self.boxes[k], self.masks[k], g.object_labels(), size,
                               class_ids=ids)

    def draw_graph(self, k: int, rankdir: str = "LR") -> Image.Image:
        """Drawing of image ``k``'s scene graph (``rankdir`` "LR" or "TB")."""
        return vis.draw_scene_graph(self.graphs[k], self.vocab, rankdir=rankdir)

    def sheet(self, cell_height: int = 256) -> Image.Image:
        """A sheet with one row per image: ``graph | layout | image``.

        Graphs are drawn top to bottom there: about square, so that the graph column is not
        several times as wide as the pictures.
        """
        rows = [[self.draw_graph(k, "TB"), self.draw_layout(k, cell_height), im]
                for k, im in enumerate(self.images)]
        titles = [f"graph {g}, sample {s}" for g, s in zip(self.graph_index, self.sample_index,
                                                            strict=True)]
        return vis.make_sheet(rows, ["graph", "layout", "image"], row_titles=titles,
                              cell_height=cell_height)

"""Scene graphs: the user's JSON form, validation, encoding to tensors and batching.

The JSON form is sg2im's::

    {"objects": ["sky", "grass", "sheep"],
     "relationships": [[0, "above", 1], [2, "standing on", 1]],
     "boxes": [null, [0.0, 0.6, 1.0, 1.0], null],        # optional, [x0, y0, x1, y1] in [0, 1]
     "attributes": [[], ["green"], ["white"]]}           # optional

A file holds one graph or a list of graphs. Duplicate triples and self-loops are allowed
(sg2im's example files contain both). The image node ``__image__`` and the ``__in_image__``
triples are added only when encoding; the caller's data is never modified.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from os import PathLike
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .files import read_json
from .vocab import UnknownNameError, Vocab

DEFAULT_MAX_OBJECTS = 64
_KEYS = {"objects", "relationships", "boxes", "attributes"}


class SceneGraphError(ValueError):
    """A scene graph is malformed; the message names the bad value and how to fix it."""


Box = tuple[float, float, float, float]


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def validate_box(box: Any, where: str) -> Box:
    """Check that ``box`` is ``[x0, y0, x1, y1]`` with finite values in [0, 1], x0 < x1, y0 < y1.

    Raises:
        SceneGraphError: naming ``where`` and the bad value.
    """
    if not isinstance(box, (list, tuple)) or len(box) != 4:
        raise SceneGraphError(f"{where}: a box must be a list of 4 numbers [x0, y0, x1, y1], "
                              f"got {box!r}")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box):
        raise SceneGraphError(f"{where}: box values must be numbers, got {box!r}")
    if not all(math.isfinite(v) for v in box):
        raise SceneGraphError(f"{where}: box values must be finite, got {box!r}")
    x0, y0, x1, y1 = (float(v) for v in box)
    if not all(0.0 <= v <= 1.0 for v in (x0, y0, x1, y1)):
        raise SceneGraphError(f"{where}: box values must lie in [0, 1] (fractions of the image), "
                              f"got {box!r}")
    if not (x0 < x1 and y0 < y1):
        raise SceneGraphError(f"{where}: a box needs x0 < x1 and y0 < y1, got {box!r}")
    return (x0, y0, x1, y1)


@dataclass(frozen=True)
class SceneGraph:
    """One scene graph in the user's form (names, not ids). Immutable.

    Args:
        objects: object names, e.g. ``("sky", "grass", "sheep")``.
        relationships: ``(subject_index, predicate_name, object_index)`` triples.
        boxes: per object ``(x0, y0, x1, y1)`` in [0, 1] or ``None``; pins that object's box.
        attributes: per object a tuple of attribute names.
    """

    objects: tuple[str, ...]
    relationships: tuple[tuple[int, str, int], ...] = ()
    boxes: tuple[Box | None, ...] | None = None
    attributes: tuple[tuple[str, ...], ...] | None = None

    def __post_init__(self) -> None:
        # Normalise lists to tuples so graphs are hashable and cannot be mutated in place.
        object.__setattr__(self, "objects", tuple(self.objects))
        object.__setattr__(self, "relationships",
                           tuple(tuple(r) for r in self.relationships))
        if self.boxes is not None:
            object.__setattr__(self, "boxes",
                               tuple(None if b is None else tuple(b) for b in self.boxes))
        if self.attributes is not None:
            object.__setattr__(self, "attributes", tuple(tuple(a) for a in self.attributes))
        self._check_structure()

    # ------------------------------------------------------------ validation
    def _check_structure(self) -> None:
        objs = self.objects
        if len(objs) == 0:
            raise SceneGraphError("a scene graph needs at least one object; 'objects' is empty")
        for i, name in enumerate(objs):
            if not isinstance(name, str) or not name:
                raise SceneGraphError(f"objects[{i}] must be a non-empty string, got {name!r}")
        for k, rel in enumerate(self.relationships):
            if len(rel) != 3:
                raise SceneGraphError(f"relationships[{k}] must be [subject, predicate, object], "
                                      f"got {list(rel)!r}")
            s, p, o = rel
            for role, idx in (("subject", s), ("object", o)):
                if not _is_int(idx):
                    raise SceneGraphError(f"relationships[{k}]: the {role} must be an integer "
                                          f"index into 'objects', got {idx!r}")
                if not 0 <= idx < len(objs):
                    raise SceneGraphError(f"relationships[{k}]: {role} index {idx} is out of "
                                          f"range; the graph has {len(objs)} objects "
                                          f"(0..{len(objs) - 1})")
            if not isinstance(p, str) or not p:
                raise SceneGraphError(f"relationships[{k}]: the predicate must be a non-empty "
                                      f"string, got {p!r}")
        if self.boxes is not None:
            if len(self.boxes) != len(objs):
                raise SceneGraphError(f"'boxes' has {len(self.boxes)} entries but there are "
                                      f"{len(objs)} objects; give one box or null per object")
            for i, b in enumerate(self.boxes):
                if b is not None:
                    validate_box(b, f"boxes[{i}]")
        if self.attributes is not None:
            if len(self.attributes) != len(objs):
                raise SceneGraphError(f"'attributes' has {len(self.attributes)} entries but there "
                                      f"are {len(objs)} objects; give one list per object")
            for i, attrs in enumerate(self.attributes):
                if not all(isinstance(a, str) and a for a in attrs):
                    raise SceneGraphError(f"attributes[{i}] must be a list of names, "
                                          f"got {list(attrs)!r}")

    def check_vocab(self, vocab: Vocab) -> None:
        """Raise ``SceneGraphError`` if a name is not in ``vocab`` (lists the closest names)."""
        for i, name in enumerate(self.objects):
            try:
                vocab.object_idx(name)
            except UnknownNameError as e:
                raise SceneGraphError(f"objects[{i}]: {e}") from None
        for k, (_, p, _) in enumerate(self.relationships):
            try:
                vocab.pred_idx(p)
            except UnknownNameError as e:
                raise SceneGraphError(f"relationships[{k}]: {e}") from None
        for i, attrs in enumerate(self.attributes or ()):
            for a in attrs:
                try:
                    vocab.attribute_idx(a)
                except ValueError as e:
                    raise SceneGraphError(f"attributes[{i}]: {e}") from None

    # ------------------------------------------------------------- json form
    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *,
                  max_objects: int = DEFAULT_MAX_OBJECTS) -> SceneGraph:
        """Build from the sg2im JSON form, validating types and indices.

        Raises:
            SceneGraphError: on any malformed field (the message names it).
        """
        if isinstance(data, SceneGraph):
            data.check_max_objects(max_objects)
            return data
        if not isinstance(data, Mapping):
            raise SceneGraphError(f"a scene graph must be a JSON object with 'objects' and "
                                  f"'relationships', got {type(data).__name__}")
        unknown = set(data) - _KEYS
        if unknown:
            raise SceneGraphError(f"unknown scene graph keys {sorted(unknown)}; "
                                  f"allowed keys are {sorted(_KEYS)}")
        if "objects" not in data:
            raise SceneGraphError("a scene graph needs an 'objects' list")
        objs, rels = data["objects"], data.get("relationships", [])
        boxes, attrs = data.get("boxes"), data.get("attributes")
        if not isinstance(objs, (list, tuple)):
            raise SceneGraphError(f"'objects' must be a list of names, got {type(objs).__name__}")
        if not isinstance(rels, (list, tuple)):
            raise SceneGraphError(f"'relationships' must be a list of [subject, predicate, "
                                  f"object], got {type(rels).__name__}")
        for k, r in enumerate(rels):
            if not isinstance(r, (list, tuple)):
                raise SceneGraphError(f"relationships[{k}] must be [subject, predicate, object], "
                                      f"got {r!r}")
        if boxes is not None and not isinstance(boxes, (list, tuple)):
            raise SceneGraphError(f"'boxes' must be a list with one box or null per object, "
                                  f"got {type(boxes).__name__}")
        if attrs is not None:
            if not isinstance(attrs, (list, tuple)) or not all(
                    isinstance(a, (list, tuple)) for a in attrs):
                raise SceneGraphError("'attributes' must be a list with one list of names "
                                      "per object")
        graph = cls(tuple(objs), tuple(tuple(r) for r in rels),
                   None if boxes is None else tuple(boxes),
                   None if attrs is None else tuple(tuple(a) for a in attrs))
        graph.check_max_objects(max_objects)
        return graph

    def check_max_objects(self, max_objects: int) -> None:
        if len(self.objects) > max_objects:
            raise SceneGraphError(f"the scene graph has {len(self.objects)} objects, more than "
                                  f"the maximum of {max_objects}; remove objects or raise "
                                  f"max_objects")

    def to_dict(self) -> dict[str, Any]:
        """The sg2im JSON form (a new dict; lists, not tuples)."""
        d: dict[str, Any] = {"objects": list(self.objects),
                             "relationships": [list(r) for r in self.relationships]}
        if self.boxes is not None:
            d["boxes"] = [None if b is None else list(b) for b in self.boxes]
        if self.attributes is not None:
            d["attributes"] = [list(a) for a in self.attributes]
        return d

    def object_labels(self) -> list[str]:
        """Per object its name preceded by its attributes, e.g. ``"red small car"``."""
        attrs = self.attributes or ((),) * len(self.objects)
        return [" ".join([*a, name]) for a, name in zip(attrs, self.objects, strict=True)]

    # -------------------------------------------------------------- encoding
    def encode(self, vocab: Vocab) -> GraphSample:
        """Ids for objects and triples, with the image node and ``__in_image__`` triples added.

        Returns:
            A ``GraphSample`` with O = len(objects) + 1 objects (``__image__`` last) and
            T = len(relationships) + len(objects) triples; ``attributes`` (O, A) multi-hot
            when the vocabulary has attributes, else None.
        """
        self.check_vocab(vocab)
        objs = torch.tensor([vocab.object_idx(n) for n in self.objects], dtype=torch.long)
        triples = torch.tensor([[s, vocab.pred_idx(p), o] for s, p, o in self.relationships],
                               dtype=torch.long).reshape(-1, 3)
        boxes = box_given = None
        if self.boxes is not None:
            boxes = torch.tensor([b if b is not None else (0.0, 0.0, 1.0, 1.0)
                                  for b in self.boxes], dtype=torch.float32)
            box_given = torch.tensor([b is not None for b in self.boxes], dtype=torch.bool)
        # With an attribute vocabulary every graph gets an (O, A) tensor (all zeros without
        # attributes), so graphs with and without attributes batch together.
        attributes = None
        if vocab.attribute_names is not None:
            attributes = torch.zeros(len(self.objects), vocab.num_attributes)
            for i, names in enumerate(self.attributes or ()):
                for a in names:
                    attributes[i, vocab.attribute_idx(a)] = 1.0
        return GraphSample(objs, triples, boxes=boxes, box_given=box_given,
                           attributes=attributes).with_image_node()


GraphLike = SceneGraph | Mapping[str, Any] | str | PathLike


def load_scene_graphs(source: GraphLike | Sequence[GraphLike], *,
                      max_objects: int = DEFAULT_MAX_OBJECTS) -> list[SceneGraph]:
    """Scene graphs from a dict, a ``SceneGraph``, a JSON file path, or a list of these.

    A JSON file may hold one graph or a list of graphs.

    Raises:
        SceneGraphError: the file is missing or not JSON, or a graph is malformed; the
            message names the file and the graph's position.
    """
    if isinstance(source, (str, PathLike)):
        path = Path(source)
        data = read_json(path, "scene graph file", SceneGraphError)
        items = data if isinstance(data, list) else [data]
        if not items:
            raise SceneGraphError(f"{path} holds an empty list of scene graphs")
        out = []
        for i, item in enumerate(items):
            try:
                out.append(SceneGraph.from_dict(item, max_objects=max_objects))
            except SceneGraphError as e:
                where = f"{path}" if not isinstance(data, list) else f"{path} graph {i}"
                raise SceneGraphError(f"{where}: {e}") from None
        return out
    if isinstance(source, (SceneGraph, Mapping)):
        return [SceneGraph.from_dict(source, max_objects=max_objects)]
    if isinstance(source, Sequence):
        if len(source) == 0:
            raise SceneGraphError("no scene graphs given (empty list)")
        out = []
        for i, item in enumerate(source):
            if isinstance(item, (str, PathLike)):
                out.extend(load_scene_graphs(item, max_objects=max_objects))
                continue
            try:
                out.append(SceneGraph.from_dict(item, max_objects=max_objects))
            except SceneGraphError as e:
                raise SceneGraphError(f"graph {i}: {e}") from None
        return out
    raise SceneGraphError(f"expected a scene graph (dict, SceneGraph, JSON path, or list of "
                          f"these), got {type(source).__name__}")


# --------------------------------------------------------------------------- tensors
@dataclass
class GraphSample:
    """One encoded scene graph, possibly with its image (a dataset item).

    Shapes:
        objs (O,) long; triples (T, 3) long [s, p, o] indexing into objs;
        boxes (O, 4) float (x0, y0, x1, y1) in [0, 1]; box_given (O,) bool;
        masks (O, M, M) float in [0, 1]; image (3, H, W) float in [-1, 1];
        attributes (O, A) float multi-hot.
    """

    objs: Tensor
    triples: Tensor
    boxes: Tensor | None = None
    box_given: Tensor | None = None
    masks: Tensor | None = None
    image: Tensor | None = None
    attributes: Tensor | None = None
    image_id: Any = None

    def with_image_node(self) -> GraphSample:
        """A copy with ``__image__`` (id 0) appended and one ``__in_image__`` (id 0) triple
        from every object to it; its box is the whole image and its mask is all ones."""
        n = len(self.objs)
        objs = torch.cat([self.objs, self.objs.new_zeros(1)])
        in_image = torch.stack([torch.arange(n), torch.zeros(n, dtype=torch.long),
                                torch.full((n,), n, dtype=torch.long)], dim=1)
        triples = torch.cat([self.triples.reshape(-1, 3).long(), in_image])
        boxes = box_given = masks = attributes = None
        if self.boxes is not None:
            boxes = torch.cat([self.boxes, self.boxes.new_tensor([[0.0, 0.0, 1.0, 1.0]])])
            given = (self.box_given if self.box_given is not None
                     else torch.ones(n, dtype=torch.bool))
            box_given = torch.cat([given, given.new_ones(1)])
        if self.masks is not None:
            masks = torch.cat([self.masks, self.masks.new_ones(1, *self.masks.shape[1:])])
        if self.attributes is not None:
            attributes = torch.cat([self.attributes,
                                    self.attributes.new_zeros(1, self.attributes.shape[1])])
        return replace(self, objs=objs, triples=triples, boxes=boxes, box_given=box_given,
                       masks=masks, attributes=attributes)


@dataclass
class GraphBatch:
    """Many scene graphs as one set of tensors (objects and triples concatenated).

    The number of images is carried explicitly in ``num_images``: an image may have no
    objects in a slice, so it is never inferred from ``obj_to_img.max() + 1``.

    Shapes:
        objs (O,); triples (T, 3) with subject/object indexing the concatenated objs;
        obj_to_img (O,); triple_to_img (T,); boxes (O, 4); box_given (O,) bool;
        masks (O, M, M); images (N, 3, H, W) in [-1, 1]; attributes (O, A).
    """

    objs: Tensor
    triples: Tensor
    obj_to_img: Tensor
    triple_to_img: Tensor
    num_images: int
    boxes: Tensor | None = None
    box_given: Tensor | None = None
    masks: Tensor | None = None
    images: Tensor | None = None
    attributes: Tensor | None = None
    image_ids: list[Any] = field(default_factory=list)

    @property
    def num_objects(self) -> int:
        return int(self.objs.shape[0])

    def to(self, device: torch.device | str, non_blocking: bool = False) -> GraphBatch:
        """A copy with every tensor moved to ``device``."""
        moved = {}
        for f in fields(self):
            v = getattr(self, f.name)
            moved[f.name] = v.to(device, non_blocking=non_blocking) if isinstance(v, Tensor) else v
        return GraphBatch(**moved)


def collate_graphs(samples: Sequence[GraphSample]) -> GraphBatch:
    """Concatenate encoded graphs into one ``GraphBatch`` (usable as a DataLoader collate_fn).

    Samples without boxes get zero boxes with ``box_given`` False when others have boxes.
    Masks, images and attributes must be present in all samples or in none.

    Raises:
        ValueError: on an empty list or on samples that mix present and missing masks/images.
    """
    if len(samples) == 0:
        raise ValueError("collate_graphs needs at least one sample")
    objs, triples, obj_to_img, triple_to_img = [], [], [], []
    offset = 0
    for i, s in enumerate(samples):
        o, t = s.objs.reshape(-1), s.triples.reshape(-1, 3)
        objs.append(o)
        triples.append(t + torch.tensor([offset, 0, offset]))
        obj_to_img.append(torch.full((len(o),), i, dtype=torch.long))
        triple_to_img.append(torch.full((len(t),), i, dtype=torch.long))
        offset += len(o)

    def cat_all(name: str) -> Tensor | None:
        vals = [getattr(s, name) for s in samples]
        present = [v is not None for v in vals]
        if not any(present):
            return None
        if not all(present):
            raise ValueError(f"some samples have '{name}' and some do not; give it for all "
                             f"samples or none")
        return torch.cat(vals) if name != "image" else torch.stack(vals)

    boxes = box_given = None
    if any(s.boxes is not None for s in samples):
        boxes = torch.cat([s.boxes if s.boxes is not None else torch.zeros(len(s.objs), 4)
                           for s in samples])
        box_given = torch.cat([
            (s.box_given if s.box_given is not None else torch.ones(len(s.objs), dtype=torch.bool))
            if s.boxes is not None else torch.zeros(len(s.objs), dtype=torch.bool)
            for s in samples])
    return GraphBatch(
        objs=torch.cat(objs), triples=torch.cat(triples),
        obj_to_img=torch.cat(obj_to_img), triple_to_img=torch.cat(triple_to_img),
        num_images=len(samples), boxes=boxes, box_given=box_given,
        masks=cat_all("masks"), images=cat_all("image"), attributes=cat_all("attributes"),
        image_ids=[s.image_id for s in samples])


def encode_graphs(graphs: GraphLike | Sequence[GraphLike], vocab: Vocab, *,
                  max_objects: int = DEFAULT_MAX_OBJECTS) -> GraphBatch:
    """Load, validate and encode scene graphs into one ``GraphBatch``."""
    return collate_graphs([g.encode(vocab) for g in
                           load_scene_graphs(graphs, max_objects=max_objects)])

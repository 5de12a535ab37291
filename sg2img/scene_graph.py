"""Scene graphs: the user's JSON form, validation and encoding to tensors (batching lives in
``sg2img.graph_batch`` and is re-exported here).

The JSON form is sg2im's::

    {"objects": ["sky", "grass", "sheep"],
     "relationships": [[0, "above", 1], [2, "standing on", 1]],
     "boxes": [null, [0.0, 0.6, 1.0, 1.0], null],        # optional, [x0, y0, x1, y1] in [0, 1]
     "attributes": [[], ["green"], ["white"]]}           # optional

A file holds one graph or a list of graphs. Duplicate triples and self-loops are allowed
(sg2im's example files contain both). The image node ``__image__`` and the ``__in_image__``
triples are added only when encoding; the caller's data is never modified. An object given no
attributes is encoded with its class's defaults when the vocabulary has them (the set the
class most often has in the model's data: ``"white"`` for a sheep), as the model never saw an
object without attributes.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import torch

from .files import read_json, short
from .graph_batch import GraphBatch, GraphSample, collate_graphs
from .hints import index_range, looks_like_path, not_a_graph
from .vocab import (
    MAX_NAME_LENGTH,
    UNCHECKED_ATTRIBUTES,
    ClassAttributeError,
    UnknownNameError,
    Vocab,
)

DEFAULT_MAX_OBJECTS = 64
# Relationships per graph: 8 per object at the object limit. A graph never needs more, and a
# limit keeps a hostile file (a million relationships) from exhausting memory.
DEFAULT_MAX_RELATIONSHIPS = 512
_KEYS = {"objects", "relationships", "boxes", "attributes"}


class SceneGraphError(ValueError):
    """A scene graph is malformed; the message names the bad value and how to fix it.

    The message is for people; the attributes say the same for code (the command line and
    the server place the error with them instead of reading the message).

    Args:
        message: the whole message, location included (``"objects[2]: unknown object ..."``).
        field: where in the graph the problem is, as a path into its JSON form
            (``"objects[2]"``, ``"relationships[1].predicate"``, ``"boxes"``), or None when
            it is the graph (or the file) as a whole.
        suggestions: for an unknown name, the closest names in the vocabulary.
        detail: the message without its location prefix (``"unknown object name ..."``);
            the message itself when it has none.
        graph: the graph's position when the error is about one graph of a list given in
            code; the message then starts with ``graph {graph}: ``.
    """

    def __init__(self, message: str, *, field: str | None = None,
                 suggestions: Sequence[str] = (), detail: str | None = None,
                 graph: int | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.suggestions = tuple(suggestions)
        self.detail = message if detail is None else detail
        self.graph = graph

    def located(self, where: str, parent: str | None = None) -> SceneGraphError:
        """The same error (same class) with ``where: `` before its message and ``parent`` (a
        field such as ``"edits[2]"``) before its field; the detail and suggestions stay, and
        ``graph`` is None (the message no longer starts with the graph's position)."""
        err = copy.copy(self)
        err.args = (f"{where}: {self}",)
        err.field = join_field(parent, self.field)
        err.graph = None
        return err

    def in_graph(self, index: int) -> SceneGraphError:
        """The same error about graph ``index`` of a list: ``graph {index}: `` before its
        message and ``graph`` set."""
        err = self.located(f"graph {index}")
        err.graph = index
        return err


def join_field(parent: str | None, field: str | None) -> str | None:
    """``"edits[2]"`` and ``"box"`` -> ``"edits[2].box"``; either may be None."""
    if parent and field:
        return f"{parent}.{field}"
    return parent or field


Box = tuple[float, float, float, float]


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _at(where: str | None, detail: str, field: str | None,
        suggestions: Sequence[str] = ()) -> SceneGraphError:
    """A ``SceneGraphError`` reading ``where: detail`` (``detail`` alone without ``where``)."""
    return SceneGraphError(f"{where}: {detail}" if where else detail, field=field,
                           suggestions=suggestions, detail=detail)


def validate_box(box: Any, where: str, field: str | None = None) -> Box:
    """Check that ``box`` is ``[x0, y0, x1, y1]`` with finite values in [0, 1], x0 < x1, y0 < y1.

    Args:
        box: the value to check.
        where: how the message names it, e.g. ``"boxes[2]"``.
        field: the error's ``field``; ``where`` when None.

    Raises:
        SceneGraphError: naming ``where`` and the bad value.
    """
    field = where if field is None else field
    if not isinstance(box, (list, tuple)) or len(box) != 4:
        raise _at(where, f"a box must be a list of 4 numbers [x0, y0, x1, y1], got {short(box)}",
                  field)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box):
        raise _at(where, f"box values must be numbers, got {short(box)}", field)
    try:
        x0, y0, x1, y1 = (float(v) for v in box)
    except OverflowError:  # an integer too large for a float
        raise _at(where, f"box values must lie in [0, 1], got {short(box)}", field) from None
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        raise _at(where, f"box values must be finite, got {short(box)}", field)
    if not all(0.0 <= v <= 1.0 for v in (x0, y0, x1, y1)):
        raise _at(where, f"box values must lie in [0, 1] (fractions of the image), "
                         f"got {short(box)}", field)
    if not (x0 < x1 and y0 < y1):
        raise _at(where, f"a box needs x0 < x1 and y0 < y1, got {short(box)}", field)
    return (x0, y0, x1, y1)


def _as_tuple(value: Any, key: str) -> tuple:
    if not isinstance(value, (list, tuple)):
        raise SceneGraphError(f"'{key}' must be a list, got {type(value).__name__} "
                              f"{short(value)}", field=key)
    return tuple(value)


def _maybe_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _check_name(name: Any, what: str, field: str, where: str | None = None) -> None:
    """A non-empty string of at most ``MAX_NAME_LENGTH`` characters (no vocabulary has
    longer names, and a 50 MB name must not reach the closest-name search or a message).
    The message reads ``where: what must be ...`` (``what must be ...`` without ``where``)."""
    if not isinstance(name, str) or not name:
        raise _at(where, f"{what} must be a non-empty string, got {short(name)}", field)
    if len(name) > MAX_NAME_LENGTH:
        raise _at(where, f"{what} is {len(name)} characters long, more than the "
                         f"{MAX_NAME_LENGTH} any vocabulary name has: {short(name)}", field)


def _check_counts(num_objects: int, num_relationships: int, max_objects: int,
                  max_relationships: int) -> None:
    if num_objects > max_objects:
        raise SceneGraphError(f"the scene graph has {num_objects} objects, more than the "
                              f"maximum of {max_objects}; remove objects or raise max_objects",
                              field="objects")
    if num_relationships > max_relationships:
        raise SceneGraphError(f"the scene graph has {num_relationships} relationships, more than "
                              f"the maximum of {max_relationships}; remove relationships or "
                              f"raise max_relationships", field="relationships")


@dataclass(frozen=True)
class SceneGraph:
    """One scene graph in the user's form (names, not ids). Immutable.

    Args:
        objects: object names, e.g. ``("sky", "grass", "sheep")``.
        relationships: ``(subject_index, predicate_name, object_index)`` triples.
        boxes: per object ``(x0, y0, x1, y1)`` in [0, 1] or ``None``; pins that object's box.
        attributes: per object a tuple of attribute names. An object with none (an empty
            tuple, or every object when this is None) is drawn with its class's defaults
            when the vocabulary has them (``drawn_attributes``).
    """

    objects: tuple[str, ...]
    relationships: tuple[tuple[int, str, int], ...] = ()
    boxes: tuple[Box | None, ...] | None = None
    attributes: tuple[tuple[str, ...], ...] | None = None

    def __post_init__(self) -> None:
        # Normalise lists to tuples so graphs are hashable and cannot be mutated in place.
        # Only lists and tuples are converted: anything else stays as it is and is reported
        # by _check_structure (a bare tuple() of a number would raise a TypeError).
        object.__setattr__(self, "objects", _as_tuple(self.objects, "objects"))
        object.__setattr__(self, "relationships",
                           tuple(_maybe_tuple(r) for r in _as_tuple(self.relationships,
                                                                     "relationships")))
        if self.boxes is not None:
            object.__setattr__(self, "boxes", tuple(
                _maybe_tuple(b) for b in _as_tuple(self.boxes, "boxes")))
        if self.attributes is not None:
            object.__setattr__(self, "attributes", tuple(
                _maybe_tuple(a) for a in _as_tuple(self.attributes, "attributes")))
        self._check_structure()

    # ------------------------------------------------------------ validation
    def _check_structure(self) -> None:
        objs = self.objects
        if len(objs) == 0:
            raise SceneGraphError("a scene graph needs at least one object; 'objects' is empty",
                                  field="objects")
        for i, name in enumerate(objs):
            _check_name(name, f"objects[{i}]", f"objects[{i}]")
        for k, rel in enumerate(self.relationships):
            if not isinstance(rel, tuple) or len(rel) != 3:
                raise SceneGraphError(f"relationships[{k}] must be [subject, predicate, object], "
                                      f"got {short(rel)}", field=f"relationships[{k}]")
            s, p, o = rel
            for role, idx in (("subject", s), ("object", o)):
                if not _is_int(idx):
                    raise _at(f"relationships[{k}]", f"the {role} must be an integer index "
                              f"into 'objects', got {short(idx)}", f"relationships[{k}].{role}")
                if not 0 <= idx < len(objs):
                    raise _at(f"relationships[{k}]", f"{role} index {short(idx)} is out of "
                              f"range; the graph has {len(objs)} objects"
                              f"{index_range(idx, objs)}", f"relationships[{k}].{role}")
            _check_name(p, "the predicate", f"relationships[{k}].predicate",
                        where=f"relationships[{k}]")
        if self.boxes is not None:
            if len(self.boxes) != len(objs):
                raise SceneGraphError(f"'boxes' has {len(self.boxes)} entries but there are "
                                      f"{len(objs)} objects; give one box or null per object",
                                      field="boxes")
            for i, b in enumerate(self.boxes):
                if b is not None:
                    validate_box(b, f"boxes[{i}]")
        if self.attributes is not None:
            if len(self.attributes) != len(objs):
                raise SceneGraphError(f"'attributes' has {len(self.attributes)} entries but there "
                                      f"are {len(objs)} objects; give one list per object",
                                      field="attributes")
            for i, attrs in enumerate(self.attributes):
                if not isinstance(attrs, tuple):
                    raise SceneGraphError(f"attributes[{i}] must be a list of names, "
                                          f"got {short(attrs)}", field=f"attributes[{i}]")
                for a in attrs:
                    _check_name(a, f"attributes[{i}]", f"attributes[{i}]")

    def check_vocab(self, vocab: Vocab) -> None:
        """Raise ``SceneGraphError`` if a name is not in ``vocab`` (lists the closest names)
        or an object has an attribute its class never takes in the model's data (lists those
        it takes). A vocabulary without a class table cannot check that: attributes then
        give one ``UserWarning``."""
        for i, name in enumerate(self.objects):
            try:
                vocab.object_idx(name)
            except UnknownNameError as e:
                raise _at(f"objects[{i}]", str(e), f"objects[{i}]", e.suggestions) from None
        for k, (_, p, _) in enumerate(self.relationships):
            try:
                vocab.pred_idx(p)
            except UnknownNameError as e:
                raise _at(f"relationships[{k}]", str(e), f"relationships[{k}].predicate",
                          e.suggestions) from None
        for i, attrs in enumerate(self.attributes or ()):
            for a in attrs:
                try:
                    vocab.attribute_idx(a)
                except ValueError as e:
                    raise _at(f"attributes[{i}]", str(e), f"attributes[{i}]",
                              getattr(e, "suggestions", ())) from None
            try:
                vocab.check_class_attributes(self.objects[i], attrs,
                                             f"object {i} ({self.objects[i]})")
            except ClassAttributeError as e:
                raise _at(f"attributes[{i}]", str(e), f"attributes[{i}]",
                          e.suggestions) from None
        if vocab.class_attributes is None and any(self.attributes or ()):
            warnings.warn(UNCHECKED_ATTRIBUTES, UserWarning, stacklevel=2)

    # ------------------------------------------------------------- json form
    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, max_objects: int = DEFAULT_MAX_OBJECTS,
                  max_relationships: int = DEFAULT_MAX_RELATIONSHIPS) -> SceneGraph:
        """Build from the sg2im JSON form, validating types, indices and sizes.

        Raises:
            SceneGraphError: on any malformed field (the message names it), or more than
                ``max_objects`` objects or ``max_relationships`` relationships.
        """
        if isinstance(data, SceneGraph):
            data.check_size(max_objects, max_relationships)
            return data
        if not isinstance(data, Mapping):
            raise SceneGraphError(f"a scene graph must be a JSON object with 'objects' and "
                                  f"'relationships', got {type(data).__name__}")
        unknown = set(data) - _KEYS
        if unknown:
            raise SceneGraphError(f"unknown scene graph keys {short(sorted(map(str, unknown)))}; "
                                  f"allowed keys are {sorted(_KEYS)}")
        if "objects" not in data:
            raise SceneGraphError("a scene graph needs an 'objects' list", field="objects")
        objs, rels = data["objects"], data.get("relationships", [])
        boxes, attrs = data.get("boxes"), data.get("attributes")
        if not isinstance(objs, (list, tuple)):
            raise SceneGraphError(f"'objects' must be a list of names, got {type(objs).__name__}",
                                  field="objects")
        if not isinstance(rels, (list, tuple)):
            raise SceneGraphError(f"'relationships' must be a list of [subject, predicate, "
                                  f"object], got {type(rels).__name__}", field="relationships")
        # Sizes first: a hostile file's million relationships are refused before any work.
        _check_counts(len(objs), len(rels), max_objects, max_relationships)
        for k, r in enumerate(rels):
            if not isinstance(r, (list, tuple)):
                raise SceneGraphError(f"relationships[{k}] must be [subject, predicate, object], "
                                      f"got {short(r)}", field=f"relationships[{k}]")
        if boxes is not None and not isinstance(boxes, (list, tuple)):
            raise SceneGraphError(f"'boxes' must be a list with one box or null per object, "
                                  f"got {type(boxes).__name__}", field="boxes")
        if attrs is not None:
            if not isinstance(attrs, (list, tuple)) or not all(
                    isinstance(a, (list, tuple)) for a in attrs):
                raise SceneGraphError("'attributes' must be a list with one list of names "
                                      "per object", field="attributes")
        graph = cls(tuple(objs), tuple(tuple(r) for r in rels),
                   None if boxes is None else tuple(boxes),
                   None if attrs is None else tuple(tuple(a) for a in attrs))
        return graph

    def check_size(self, max_objects: int = DEFAULT_MAX_OBJECTS,
                   max_relationships: int = DEFAULT_MAX_RELATIONSHIPS) -> None:
        """Raise ``SceneGraphError`` when the graph has too many objects or relationships."""
        _check_counts(len(self.objects), len(self.relationships), max_objects,
                      max_relationships)

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
    def drawn_attributes(self, vocab: Vocab) -> tuple[tuple[str, ...], ...]:
        """Per object the attributes it is encoded with: the ones given, or for an object
        given none (an empty list, or every object of a graph without ``attributes``) its
        class's defaults (``Vocab.default_attribute_names``; none without a default table).
        Given attributes are never changed or added to.

        Args:
            vocab: the model's vocabulary (its object names are not checked here).
        """
        given = self.attributes or ((),) * len(self.objects)
        return tuple(attrs or vocab.default_attribute_names(name) or ()
                     for attrs, name in zip(given, self.objects, strict=True))

    def encode(self, vocab: Vocab) -> GraphSample:
        """Ids for objects and triples, with the image node and ``__in_image__`` triples added.

        Returns:
            A ``GraphSample`` with O = len(objects) + 1 objects (``__image__`` last) and
            T = len(relationships) + len(objects) triples; ``attributes`` (O, A) multi-hot
            when the vocabulary has attributes (``drawn_attributes``: an object given none
            takes its class's defaults when the vocabulary has them), else None.

        Raises:
            SceneGraphError: a name not in ``vocab``, or an attribute the object's class
                never takes (``check_vocab``).
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
        # With an attribute vocabulary every graph gets an (O, A) tensor (a row of zeros for an
        # object without attributes or defaults), so graphs with and without attributes batch
        # together.
        attributes = None
        if vocab.attribute_names is not None:
            attributes = torch.zeros(len(self.objects), vocab.num_attributes)
            for i, names in enumerate(self.drawn_attributes(vocab)):
                for a in names:
                    attributes[i, vocab.attribute_idx(a)] = 1.0
        return GraphSample(objs, triples, boxes=boxes, box_given=box_given,
                           attributes=attributes).with_image_node()

    @classmethod
    def from_sample(cls, sample: GraphSample, vocab: Vocab, *, boxes: bool = False
                    ) -> SceneGraph:
        """The user form of an encoded graph with its image node last (a dataset item, or
        ``encode``'s output): names from ``vocab``, the ``__in_image__`` triples dropped.

        Each object keeps the attributes the sample gives it (named from ``vocab``), so
        encoding the graph again gives the sample's attribute rows back; a sample without
        attributes, or with none set, gives a graph without attributes.

        Args:
            sample: objs (O,) with ``__image__`` last, triples (T, 3).
            vocab: the vocabulary the ids index.
            boxes: also pin every object's box from ``sample.boxes`` (O, 4) in [0, 1]
                (the ground-truth layout); by default the graph has no boxes.

        Raises:
            SceneGraphError: if ``boxes`` is asked for and the sample has none.
        """
        objects = tuple(vocab.object_name(int(i)) for i in sample.objs[:-1])
        relationships = tuple((int(s), vocab.pred_name(int(p)), int(o))
                              for s, p, o in sample.triples.tolist()
                              if p != vocab.in_image_idx)
        pinned = None
        if boxes:
            if sample.boxes is None:
                raise SceneGraphError("the sample has no boxes to pin; pass boxes=False")
            pinned = tuple(tuple(float(v) for v in b) for b in sample.boxes[:-1].tolist())
        attributes = None
        if sample.attributes is not None and vocab.attribute_names is not None \
                and bool(sample.attributes[:-1].any()):
            attributes = tuple(tuple(vocab.attribute_names[int(j)] for j in row.nonzero())
                               for row in sample.attributes[:-1])
        return cls(objects, relationships, pinned, attributes)


GraphLike = SceneGraph | Mapping[str, Any] | str | PathLike


def load_scene_graphs(source: GraphLike | Sequence[GraphLike], *,
                      max_objects: int = DEFAULT_MAX_OBJECTS,
                      max_relationships: int = DEFAULT_MAX_RELATIONSHIPS) -> list[SceneGraph]:
    """Scene graphs from a dict, a ``SceneGraph``, a JSON file path, or a list of these.

    A JSON file may hold one graph or a list of graphs. A string counts as a path when it
    ends in ``.json``, holds a ``/`` or exists; other strings are taken for object names given
    instead of a graph (``["sky", "grass"]``) and refused with the graph they probably meant.

    Raises:
        SceneGraphError: the file is missing or not JSON, a string is neither a path nor a
            graph, or a graph is malformed; the message names the file and the graph's
            position.
    """
    limits = {"max_objects": max_objects, "max_relationships": max_relationships}
    if isinstance(source, str) and not looks_like_path(source):
        raise SceneGraphError(not_a_graph([source]))
    if isinstance(source, (str, PathLike)):
        path = Path(source)
        data = read_json(path, "scene graph file", SceneGraphError)
        items = data if isinstance(data, list) else [data]
        if not items:
            raise SceneGraphError(f"{path} holds an empty list of scene graphs")
        out = []
        for i, item in enumerate(items):
            try:
                out.append(SceneGraph.from_dict(item, **limits))
            except SceneGraphError as e:
                where = f"{path}" if not isinstance(data, list) else f"{path} graph {i}"
                raise e.located(where) from None
        return out
    if isinstance(source, (SceneGraph, Mapping)):
        return [SceneGraph.from_dict(source, **limits)]
    if isinstance(source, Sequence):
        if len(source) == 0:
            raise SceneGraphError("no scene graphs given (empty list)")
        if all(isinstance(item, str) and not looks_like_path(item) for item in source):
            raise SceneGraphError(not_a_graph(list(source)))   # object names, not graphs
        out = []
        for i, item in enumerate(source):
            if isinstance(item, str) and not looks_like_path(item):
                raise SceneGraphError(not_a_graph([item])).in_graph(i)
            if isinstance(item, (str, PathLike)):
                out.extend(load_scene_graphs(item, **limits))
                continue
            try:
                out.append(SceneGraph.from_dict(item, **limits))
            except SceneGraphError as e:
                raise e.in_graph(i) from None
        return out
    raise SceneGraphError(f"expected a scene graph (dict, SceneGraph, JSON path, or list of "
                          f"these), got {type(source).__name__}")


# --------------------------------------------------------------------------- tensors
def encode_graphs(graphs: GraphLike | Sequence[GraphLike], vocab: Vocab, *,
                  max_objects: int = DEFAULT_MAX_OBJECTS) -> GraphBatch:
    """Load, validate and encode scene graphs into one ``GraphBatch``."""
    return collate_graphs([g.encode(vocab) for g in
                           load_scene_graphs(graphs, max_objects=max_objects)])

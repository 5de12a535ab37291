"""Graph edits for image manipulation: pure functions from one ``SceneGraph`` to another.

An edit never modifies its input graph. Applying one returns an ``EditResult`` with the new
graph, the mapping from old to new object indices, and how each new object's layout should be
built when the image is generated again (``sg2img.manipulation.manipulate`` reads this to reuse the
noise and freeze the boxes and masks of the objects the edit does not touch):

================  =======================================================================
edit              layout of the new graph's objects
================  =======================================================================
``AddObject``     the new object is predicted (or takes the given box); the rest is frozen
``RemoveObject``  the removed object disappears; the rest is frozen
``ReplaceObject`` the replaced object keeps its box and gets a new mask for its new class
``ChangePredicate`` the relationship's subject (or object, or both) is predicted again
``MoveObject``    the object keeps its mask, warped into the new box
``SetAttributes`` the object keeps its box and mask (only its look changes); the rest is
                  frozen
``ResampleObject`` the object keeps its box and mask and draws new per-object noise
                  (another look); the rest is frozen, noise included
================  =======================================================================

Edit JSON (``load_edits``): a list of objects, each with an ``"op"`` and its fields; indices
refer to the graph as it is when that edit is applied (edits apply one after another)::

    [
      {"op": "add", "object": "boat", "relationships": [["new", "above", 2]],
       "box": [0.4, 0.6, 0.6, 0.8]},                  # "box" optional; "relationship": [...]
                                                      # (one triple) also accepted
      {"op": "remove", "index": 3},
      {"op": "replace", "index": 0, "object": "cow"},
      {"op": "predicate", "relationship": 1, "predicate": "left of", "move": "subject"},
      {"op": "move", "index": 2, "box": [0.1, 0.5, 0.3, 0.7]},
      {"op": "attributes", "index": 2, "attributes": ["red"]},
      {"op": "resample", "index": 2}
    ]

``"new"`` in an added object's relationships stands for the added object. ``"move"`` in a
predicate edit says which end is laid out again: ``"subject"`` (default), ``"object"`` or
``"both"``. ``"attributes"`` replaces the object's attribute list ("make the car red": its
old colour goes); it needs a model whose vocabulary has attributes, ones the object's class
takes (``sg2img vocab`` lists them). ``"resample"`` redraws the
object's per-object noise ("same scene, another sheep"); it needs a model trained with
``model.renderer.noise=spatial``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, ClassVar

from .edit_checks import (
    LINK_RULE,
    EditError,
    check_box,
    check_edit_size,
    check_index,
    check_known,
    edit_err,
    edit_located,
)
from .files import read_json, short
from .hints import index_range
from .scene_graph import (
    DEFAULT_MAX_OBJECTS,
    DEFAULT_MAX_RELATIONSHIPS,
    Box,
    SceneGraph,
    SceneGraphError,
)
from .vocab import ClassAttributeError, UnknownNameError, Vocab, VocabError

NEW = "new"
# Edits per file or call: each edit regenerates the image and adds a row to the sheet.
MAX_EDITS = 100


@dataclass(frozen=True)
class EditResult:
    """A graph after one edit and how to lay out its objects when regenerating.

    Attributes:
        graph: the new graph.
        old_to_new: for each object of the old graph, its index in the new graph, or ``None``
            when it was removed.
        touched: new indices whose layout is not frozen from the previous generation.
        keep_box: new index -> old index for touched objects that keep the old object's box
            (their mask is predicted again), e.g. a replaced object.
        keep_mask: new index -> old index for touched objects that keep the old object's mask
            (their box is the one pinned in ``graph.boxes``), e.g. a moved object.
        keep_layout: new index -> old index for touched objects that keep the old object's box
            and mask (only their look changes), e.g. an object with new attributes.
        redraw_noise: new indices whose per-object noise is drawn afresh rather than carried
            over (models with ``model.renderer.noise=spatial``), e.g. a resampled object.
        removed: old indices that were removed.
        description: a short human-readable summary, e.g. ``"replace 0 sheep -> cow"``.
    """

    graph: SceneGraph
    old_to_new: tuple[int | None, ...]
    touched: frozenset[int]
    keep_box: Mapping[int, int] = field(default_factory=dict)
    keep_mask: Mapping[int, int] = field(default_factory=dict)
    keep_layout: Mapping[int, int] = field(default_factory=dict)
    redraw_noise: frozenset[int] = frozenset()
    removed: frozenset[int] = frozenset()
    description: str = ""

    @property
    def frozen(self) -> dict[int, int]:
        """New index -> old index for every object whose box and mask are frozen."""
        return {n: o for o, n in enumerate(self.old_to_new)
                if n is not None and n not in self.touched}


def _with(graph: SceneGraph, objects: Sequence[str], relationships: Sequence[tuple],
          boxes: Sequence[Box | None] | None, attributes: Sequence[tuple] | None) -> SceneGraph:
    # Drop an all-None boxes list so graphs without pinned boxes stay without.
    if boxes is not None and all(b is None for b in boxes):
        boxes = None
    return SceneGraph(tuple(objects), tuple(tuple(r) for r in relationships),
                      None if boxes is None else tuple(boxes),
                      None if attributes is None else tuple(attributes))


# --------------------------------------------------------------------------- edits
@dataclass(frozen=True)
class AddObject:
    """Add an object, related to the graph by at least one relationship.

    Args:
        name: the new object's class name.
        relationships: triples ``(subject, predicate, object)`` where one end (or both) is
            ``"new"``, the added object, and the other an index into the current graph; at
            least one links the new object to the graph (a self-loop alone does not).
        box: ``(x0, y0, x1, y1)`` in [0, 1] to pin the new object's box, or ``None`` to let
            the model place it.
    """

    name: str
    relationships: tuple[tuple[int | str, str, int | str], ...] = ()
    box: Box | None = None
    op: ClassVar[str] = "add"

    def __post_init__(self) -> None:
        # JSON gives lists; tuples keep edits hashable and comparable.
        if isinstance(self.relationships, (list, tuple)):
            object.__setattr__(self, "relationships", tuple(
                tuple(r) if isinstance(r, (list, tuple)) else r for r in self.relationships))
        if isinstance(self.box, list):
            object.__setattr__(self, "box", tuple(self.box))

    def apply(self, graph: SceneGraph, vocab: Vocab | None = None) -> EditResult:
        name = check_known(self.name, vocab, "object", "add", "'object'", "object")
        new = len(graph.objects)
        if not isinstance(self.relationships, tuple):
            raise edit_err("add", f"'relationships' must be a list of [subject, predicate, "
                                  f"object] triples, got {short(self.relationships)}",
                           "relationships")
        # Before reading the triples: a graph grown by edits obeys a loaded graph's limits
        # (apply_edit checks a caller's lower ones on the graph made).
        check_edit_size("add", new + 1, len(graph.relationships) + len(self.relationships))
        rels = []
        for k, rel in enumerate(self.relationships):
            where = f"relationships[{k}]"
            if not isinstance(rel, (list, tuple)) or len(rel) != 3:
                raise edit_err("add", f"{where} must be [subject, predicate, object], "
                                      f"got {short(rel)}", where)
            s, p, o = rel
            if NEW not in (s, o):
                raise edit_err("add", f"{where} must have \"new\" (the added object) as its "
                                      f"subject or object, got {short(list(rel))}", where)
            s = new if s == NEW else check_index(s, graph, "add", f"{where} subject",
                                                 f"{where}.subject")
            o = new if o == NEW else check_index(o, graph, "add", f"{where} object",
                                                 f"{where}.object")
            rels.append((s, check_known(p, vocab, "predicate", "add", f"{where} predicate",
                                       f"{where}.predicate"), o))
        if all(s == o for s, _, o in rels):     # none, or only self-loops ["new", p, "new"]
            raise edit_err("add", LINK_RULE + ("; a self-loop [\"new\", p, \"new\"] alone does "
                                               "not" if rels else ""), "relationships")
        box = None if self.box is None else check_box(self.box, "add")
        boxes = None
        if graph.boxes is not None or box is not None:
            boxes = list(graph.boxes or (None,) * new) + [box]
        attributes = None if graph.attributes is None else [*graph.attributes, ()]
        out = _with(graph, [*graph.objects, name], [*graph.relationships, *rels], boxes,
                    attributes)
        names = [*graph.objects, name]
        desc = f"add {name}" + "".join(f", {names[s]} {p} {names[o]}" for s, p, o in rels)
        return EditResult(out, tuple(range(new)), frozenset({new}), description=desc)


@dataclass(frozen=True)
class RemoveObject:
    """Remove an object and every relationship that involves it.

    Args:
        index: the object's index in the current graph.
    """

    index: int
    op: ClassVar[str] = "remove"

    def apply(self, graph: SceneGraph, vocab: Vocab | None = None) -> EditResult:
        i = check_index(self.index, graph, "remove", "'index'", "index")
        if len(graph.objects) == 1:
            raise edit_err("remove", "cannot remove the only object of the graph", None)
        old_to_new = tuple(None if j == i else j - (j > i) for j in range(len(graph.objects)))
        rels = [(old_to_new[s], p, old_to_new[o]) for s, p, o in graph.relationships
                if s != i and o != i]
        keep = [j for j in range(len(graph.objects)) if j != i]
        out = _with(graph, [graph.objects[j] for j in keep], rels,
                    None if graph.boxes is None else [graph.boxes[j] for j in keep],
                    None if graph.attributes is None else [graph.attributes[j] for j in keep])
        return EditResult(out, old_to_new, frozenset(), removed=frozenset({i}),
                          description=f"remove {i} {graph.objects[i]}")


@dataclass(frozen=True)
class ReplaceObject:
    """Change an object's class; it keeps its box and gets a mask for the new class. With a
    vocabulary that has a class table it keeps only the attributes the new class takes.

    Args:
        index: the object's index in the current graph.
        name: the new class name.
    """

    index: int
    name: str
    op: ClassVar[str] = "replace"

    def apply(self, graph: SceneGraph, vocab: Vocab | None = None) -> EditResult:
        i = check_index(self.index, graph, "replace", "'index'", "index")
        name = check_known(self.name, vocab, "object", "replace", "'object'",
                           "object")
        objects = list(graph.objects)
        objects[i] = name
        # The object keeps the attributes its new class takes (all without a class table).
        attributes, dropped = graph.attributes, ()
        takes = None if vocab is None else vocab.class_attribute_names(name)
        if attributes is not None and takes is not None:
            dropped = tuple(a for a in attributes[i] if a not in takes)
            attributes = [*attributes[:i], tuple(a for a in attributes[i] if a in takes),
                          *attributes[i + 1:]]
        out = _with(graph, objects, graph.relationships, graph.boxes, attributes)
        note = f" (drops {', '.join(dropped)}, which {name} does not take)" if dropped else ""
        return EditResult(out, tuple(range(len(objects))), frozenset({i}), keep_box={i: i},
                          description=f"replace {i} {graph.objects[i]} -> {name}{note}")


_MOVE_ENDS = ("subject", "object", "both")


@dataclass(frozen=True)
class ChangePredicate:
    """Change a relationship's predicate; one end of it is laid out again.

    Args:
        rel_index: index into the graph's relationships.
        predicate: the new predicate name.
        move: which end gets a new box and mask: ``"subject"``, ``"object"`` or ``"both"``.
    """

    rel_index: int
    predicate: str
    move: str = "subject"
    op: ClassVar[str] = "predicate"

    def apply(self, graph: SceneGraph, vocab: Vocab | None = None) -> EditResult:
        k, n = self.rel_index, len(graph.relationships)
        if not isinstance(k, int) or isinstance(k, bool):
            raise edit_err("predicate", f"'relationship' must be an integer index into the "
                                        f"relationships, got {short(k)}", "relationship")
        if not 0 <= k < n:
            names = graph.objects
            rels = [f"{names[s]} {p} {names[o]}" for s, p, o in graph.relationships]
            valid = index_range(k, rels, "relationships", label="{i}: {name}")
            raise edit_err("predicate", f"relationship {short(k)} is out of range; the graph has "
                                        f"{n} relationships{valid}", "relationship")
        pred = check_known(self.predicate, vocab, "predicate", "predicate", "'predicate'",
                           "predicate")
        if self.move not in _MOVE_ENDS:
            raise edit_err("predicate", f"'move' must be one of {list(_MOVE_ENDS)}, "
                                        f"got {short(self.move)}", "move")
        s, old_p, o = graph.relationships[k]
        rels = list(graph.relationships)
        rels[k] = (s, pred, o)
        touched = {"subject": {s}, "object": {o}, "both": {s, o}}[self.move]
        out = _with(graph, graph.objects, rels, graph.boxes, graph.attributes)
        names = graph.objects
        return EditResult(out, tuple(range(len(graph.objects))), frozenset(touched),
                          description=f"relationship {k}: {names[s]} {old_p} {names[o]} -> "
                                      f"{names[s]} {pred} {names[o]}")


@dataclass(frozen=True)
class MoveObject:
    """Move or resize an object by giving its box; it keeps its mask (shape).

    Args:
        index: the object's index in the current graph.
        box: the new ``(x0, y0, x1, y1)`` in [0, 1]; it is pinned in the new graph's boxes.
    """

    index: int
    box: Box
    op: ClassVar[str] = "move"

    def __post_init__(self) -> None:
        if isinstance(self.box, list):
            object.__setattr__(self, "box", tuple(self.box))

    def apply(self, graph: SceneGraph, vocab: Vocab | None = None) -> EditResult:
        i = check_index(self.index, graph, "move", "'index'", "index")
        box = check_box(self.box, "move")
        boxes = list(graph.boxes or (None,) * len(graph.objects))
        boxes[i] = box
        out = _with(graph, graph.objects, graph.relationships, boxes, graph.attributes)
        return EditResult(out, tuple(range(len(graph.objects))), frozenset({i}),
                          keep_mask={i: i},
                          description=f"move {i} {graph.objects[i]} to "
                                      f"[{', '.join(f'{v:.2f}' for v in box)}]")


@dataclass(frozen=True)
class SetAttributes:
    """Give an object new attributes ("make the car red"); its box and mask stay.

    Args:
        index: the object's index in the current graph.
        attributes: the object's new attribute names; they replace its old ones.
    """

    index: int
    attributes: tuple[str, ...]
    op: ClassVar[str] = "attributes"

    def __post_init__(self) -> None:
        if isinstance(self.attributes, list):
            object.__setattr__(self, "attributes", tuple(self.attributes))

    def apply(self, graph: SceneGraph, vocab: Vocab | None = None) -> EditResult:
        i = check_index(self.index, graph, "attributes", "'index'", "index")
        attrs = self.attributes
        if not isinstance(attrs, tuple) or not all(isinstance(a, str) and a for a in attrs):
            raise edit_err("attributes", f"'attributes' must be a list of attribute names, "
                                         f"got {short(attrs)}", "attributes")
        if vocab is not None:
            for j, a in enumerate(attrs):
                try:
                    vocab.attribute_idx(a)
                except VocabError as e:     # an unknown name: its place; no attributes: all
                    where = f"attributes[{j}]" if isinstance(e, UnknownNameError) else None
                    raise edit_err("attributes", str(e), where or "attributes",
                                   getattr(e, "suggestions", ())) from None
            try:
                vocab.check_class_attributes(graph.objects[i], attrs,
                                             f"object {i} ({graph.objects[i]})")
            except ClassAttributeError as e:
                raise edit_err("attributes", str(e), f"attributes[{attrs.index(e.attribute)}]",
                               e.suggestions) from None
        n = len(graph.objects)
        attributes = list(graph.attributes or ((),) * n)
        old, attributes[i] = attributes[i], attrs
        out = _with(graph, graph.objects, graph.relationships, graph.boxes, attributes)
        name = graph.objects[i]
        return EditResult(out, tuple(range(n)), frozenset({i}), keep_layout={i: i},
                          description=f"attributes {i} {' '.join(old)} {name} -> "
                                      f"{' '.join(attrs)} {name}".replace("  ", " "))


@dataclass(frozen=True)
class ResampleObject:
    """Give an object another look: new per-object noise, same box, mask and graph.

    Only for models trained with ``model.renderer.noise=spatial`` (``manipulate`` checks it before
    generating anything); every other object keeps its layout and its noise.

    Args:
        index: the object's index in the current graph.
    """

    index: int
    op: ClassVar[str] = "resample"

    def apply(self, graph: SceneGraph, vocab: Vocab | None = None) -> EditResult:
        i = check_index(self.index, graph, "resample", "'index'", "index")
        n = len(graph.objects)
        return EditResult(graph, tuple(range(n)), frozenset({i}), keep_layout={i: i},
                          redraw_noise=frozenset({i}),
                          description=f"resample {i} {graph.objects[i]} (another look)")


Edit = (AddObject | RemoveObject | ReplaceObject | ChangePredicate | MoveObject | SetAttributes
        | ResampleObject)
EDIT_TYPES: dict[str, type] = {e.op: e for e in (AddObject, RemoveObject, ReplaceObject,
                                                  ChangePredicate, MoveObject, SetAttributes,
                                                  ResampleObject)}


def apply_edit(graph: SceneGraph | Mapping[str, Any], edit: Edit | Mapping[str, Any],
               vocab: Vocab | None = None, *, max_objects: int = DEFAULT_MAX_OBJECTS,
               max_relationships: int = DEFAULT_MAX_RELATIONSHIPS) -> EditResult:
    """Apply one edit (an edit object or its JSON dict) to a graph without modifying it.

    Args:
        graph: a ``SceneGraph`` or its JSON dict.
        edit: an edit, e.g. ``RemoveObject(2)`` or ``{"op": "remove", "index": 2}``.
        vocab: when given, new object and predicate names are checked against it.
        max_objects, max_relationships: limits of the graph the edit makes; a loaded
            graph's by default (a caller such as the server may set lower ones).

    Raises:
        EditError: the edit is malformed, does not fit the graph or makes a graph past a
            limit (``limit`` set).
    """
    graph = graph if isinstance(graph, SceneGraph) else SceneGraph.from_dict(graph)
    if isinstance(edit, Mapping):
        edit = edit_from_dict(edit)
    if not isinstance(edit, tuple(EDIT_TYPES.values())):
        raise EditError(f"expected an edit ({', '.join(t.__name__ for t in EDIT_TYPES.values())}"
                        f") or its JSON dict, got {type(edit).__name__}")
    res = edit.apply(graph, vocab)
    n_obj, n_rel = len(res.graph.objects), len(res.graph.relationships)
    if n_obj > len(graph.objects) or n_rel > len(graph.relationships):  # grown (an "add")
        check_edit_size(edit.op, n_obj, n_rel, max_objects, max_relationships)
    return res


def apply_edits(graph: SceneGraph | Mapping[str, Any],
                edits: Sequence[Edit | Mapping[str, Any]] | Edit | Mapping[str, Any],
                vocab: Vocab | None = None, *, max_objects: int = DEFAULT_MAX_OBJECTS,
                max_relationships: int = DEFAULT_MAX_RELATIONSHIPS) -> list[EditResult]:
    """Apply edits one after another; edit k sees the graph left by edit k - 1. One edit
    (not in a list) is applied alone, as ``load_edits`` reads it.

    Every graph an edit makes obeys ``max_objects`` and ``max_relationships`` (as in
    ``apply_edit``).

    Returns:
        One ``EditResult`` per edit.

    Raises:
        EditError: naming the edit's position (``edit 2 (remove): ...``).
    """
    graph = graph if isinstance(graph, SceneGraph) else SceneGraph.from_dict(graph)
    if isinstance(edits, (Mapping, *EDIT_TYPES.values())):
        edits = [edits]
    out = []
    for k, edit in enumerate(edits):
        try:
            res = apply_edit(graph, edit, vocab, max_objects=max_objects,
                             max_relationships=max_relationships)
        except SceneGraphError as e:
            op = edit.get("op") if isinstance(edit, Mapping) else getattr(edit, "op", "?")
            raise edit_located(e, k, f"edit {k} ({op})") from None
        out.append(res)
        graph = res.graph
    return out


# --------------------------------------------------------------------------- JSON form
_FIELDS = {
    "add": ({"object"}, {"relationships", "relationship", "box"}),
    "remove": ({"index"}, set()),
    "replace": ({"index", "object"}, set()),
    "predicate": ({"relationship", "predicate"}, {"move"}),
    "move": ({"index", "box"}, set()),
    "attributes": ({"index", "attributes"}, set()),
    "resample": ({"index"}, set()),
}


def edit_from_dict(d: Mapping[str, Any]) -> Edit:
    """An edit from its JSON dict (see the module docstring for the format).

    Raises:
        EditError: unknown op, missing or unknown keys, or values of the wrong type.
    """
    if not isinstance(d, Mapping):
        raise EditError(f"an edit must be a JSON object with an \"op\", got {short(d)}")
    op = d.get("op")
    if not isinstance(op, str) or op not in _FIELDS:
        raise EditError(f"unknown edit op {short(op)}; choose one of {list(_FIELDS)}",
                        field="op")
    required, optional = _FIELDS[op]
    keys = set(d) - {"op"}
    takes = f"it takes {sorted(required)}" + (f" and optionally {sorted(optional)}"
                                              if optional else "")
    if missing := required - keys:
        raise edit_err(op, f"missing {sorted(map(str, missing))}; {takes}", min(missing))
    if unknown := keys - required - optional:
        names = sorted(map(str, unknown))
        raise edit_err(op, f"unknown keys {short(names)}; {takes}", names[0])
    if op == "add":
        if "relationship" in d and "relationships" in d:
            raise edit_err("add", "give 'relationship' (one triple) or 'relationships' (a list), "
                                  "not both", "relationship")
        rels = [d["relationship"]] if "relationship" in d else d.get("relationships", [])
        if not isinstance(rels, list) or not all(isinstance(r, list) for r in rels):
            raise edit_err("add", f"'relationships' must be a list of [subject, predicate, "
                                  f"object] triples, got {short(rels)}", "relationships")
        if not rels:
            raise edit_err("add", LINK_RULE, "relationships")
        return AddObject(d["object"], tuple(tuple(r) for r in rels), d.get("box"))
    if op == "remove":
        return RemoveObject(d["index"])
    if op == "resample":
        return ResampleObject(d["index"])
    if op == "replace":
        return ReplaceObject(d["index"], d["object"])
    if op == "predicate":
        return ChangePredicate(d["relationship"], d["predicate"], d.get("move", "subject"))
    if op == "attributes":
        attrs = d["attributes"]
        if not isinstance(attrs, list):
            raise edit_err("attributes", f"'attributes' must be a list of attribute names, "
                                         f"got {short(attrs)}", "attributes")
        return SetAttributes(d["index"], tuple(attrs))
    return MoveObject(d["index"], d["box"])


def edit_to_dict(edit: Edit) -> dict[str, Any]:
    """The JSON dict of an edit (inverse of ``edit_from_dict``)."""
    if isinstance(edit, AddObject):
        d: dict[str, Any] = {"op": "add", "object": edit.name,
                             "relationships": [list(r) for r in edit.relationships]}
        if edit.box is not None:
            d["box"] = list(edit.box)
        return d
    if isinstance(edit, RemoveObject):
        return {"op": "remove", "index": edit.index}
    if isinstance(edit, ReplaceObject):
        return {"op": "replace", "index": edit.index, "object": edit.name}
    if isinstance(edit, ChangePredicate):
        return {"op": "predicate", "relationship": edit.rel_index, "predicate": edit.predicate,
                "move": edit.move}
    if isinstance(edit, MoveObject):
        return {"op": "move", "index": edit.index, "box": list(edit.box)}
    if isinstance(edit, SetAttributes):
        return {"op": "attributes", "index": edit.index, "attributes": list(edit.attributes)}
    if isinstance(edit, ResampleObject):
        return {"op": "resample", "index": edit.index}
    raise EditError(f"not an edit: {short(edit)}")


def load_edits(source: str | PathLike | Sequence[Mapping[str, Any] | Edit] | Mapping[str, Any]
               | Edit) -> list[Edit]:
    """Edits from a JSON file path, a list of edit dicts or edits, or one edit.

    One edit (a dict such as ``{"op": "remove", "index": 2}``, or an edit object) is the list
    of that edit, as a file holding one edit object is: a single edit cannot be mistaken for
    anything else.

    Raises:
        EditError: the file is missing or not JSON, ``source`` is not edits, or an edit is
            malformed (named by position).
    """
    if isinstance(source, (Mapping, *EDIT_TYPES.values())):
        source = [source]
    if isinstance(source, (str, PathLike)):
        path = Path(source)
        data = read_json(path, "edits file", EditError)
        items = [data] if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise EditError(f"{path} must hold a list of edits, got {type(data).__name__}")
        prefix = f"{path}: "
    elif isinstance(source, Iterable) and not isinstance(source, (str, bytes)):
        items, prefix = list(source), ""
    else:
        raise EditError(f"expected a list of edits (dicts such as {{\"op\": \"remove\", "
                        f"\"index\": 2}}), one edit or an edits file path, got "
                        f"{type(source).__name__} {short(source)}")
    if not items:
        raise EditError(f"{prefix}no edits given (empty list)")
    if len(items) > MAX_EDITS:
        raise EditError(f"{prefix}{len(items)} edits, more than the maximum of {MAX_EDITS} "
                        f"(each edit regenerates the image); split them into several files")
    out = []
    for k, item in enumerate(items):
        if isinstance(item, tuple(EDIT_TYPES.values())):
            out.append(item)
            continue
        try:
            out.append(edit_from_dict(item))
        except EditError as e:
            raise edit_located(e, k, f"{prefix}edit {k}") from None
    return out

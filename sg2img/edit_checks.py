"""``EditError`` and the checks edits pass: their indices, names and boxes, the rule that an
added object links to the graph, and the size limits of the graph each edit produces.

``sg2img.edits`` defines the edits and applies them; this module holds what they check, so
that a graph grown by edits obeys the limits a loaded graph does (or a caller's lower ones,
such as the server's).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .files import short
from .hints import index_range
from .scene_graph import (
    DEFAULT_MAX_OBJECTS,
    DEFAULT_MAX_RELATIONSHIPS,
    Box,
    SceneGraph,
    SceneGraphError,
    join_field,
    validate_box,
)
from .vocab import UnknownNameError, Vocab

# What an added object's relationships must do (the self-loop ["new", p, "new"] does not).
LINK_RULE = ("give at least one relationship that links the new object to the graph, e.g. "
             "\"relationship\": [\"new\", \"above\", 0]")


class EditError(SceneGraphError):
    """An edit is malformed or does not fit the graph; the message names the edit and value.

    ``edit`` is the edit's position in the list once the error names it; ``field`` is then a
    path into the list (``"edits[2].box"``), before that a key of the edit (``"box"``).
    ``limit`` is the size limit the edit would pass (objects or relationships), else None.
    """

    def __init__(self, message: str, *, edit: int | None = None, limit: int | None = None,
                 **attrs: Any) -> None:
        super().__init__(message, **attrs)
        self.edit = edit
        self.limit = limit


def edit_err(op: str, detail: str, field: str | None, suggestions: Sequence[str] = (),
             limit: int | None = None) -> EditError:
    """An ``EditError`` reading ``op: detail``."""
    return EditError(f"{op}: {detail}", field=field, suggestions=suggestions, detail=detail,
                     limit=limit)


def edit_located(error: SceneGraphError, k: int, where: str) -> EditError:
    """``error`` (any ``SceneGraphError``) as an error of edit ``k``: ``where: `` before its
    message, ``edits[k]`` before its field, ``edit`` set to ``k``."""
    return EditError(f"{where}: {error}", field=join_field(f"edits[{k}]", error.field),
                     suggestions=error.suggestions, detail=error.detail, edit=k,
                     limit=getattr(error, "limit", None))


def check_index(index: Any, graph: SceneGraph, op: str, what: str, field: str) -> int:
    """``index`` as an object index of ``graph``; errors read ``op: what ...``."""
    if not isinstance(index, int) or isinstance(index, bool):
        raise edit_err(op, f"{what} must be an integer object index, got {short(index)}", field)
    n = len(graph.objects)
    if not 0 <= index < n:
        raise edit_err(op, f"{what} {short(index)} is out of range; the graph has {n} objects"
                           f"{index_range(index, graph.objects)}", field)
    return index


def check_known(name: Any, vocab: Vocab | None, kind: str, op: str, what: str,
                field: str) -> str:
    """An ``"object"`` or ``"predicate"`` name (``kind``), in ``vocab`` when one is given;
    errors read ``op: what ...``."""
    if not isinstance(name, str) or not name:
        raise edit_err(op, f"{what} must be a non-empty {kind} name, got {short(name)}", field)
    if vocab is not None:
        try:
            vocab.object_idx(name) if kind == "object" else vocab.pred_idx(name)
        except UnknownNameError as e:
            raise EditError(f"{op}: {what}: {e}", field=field, suggestions=e.suggestions,
                            detail=str(e)) from None
    return name


def check_box(box: Any, op: str) -> Box:
    """``box`` as a valid box of edit ``op`` (its ``"box"`` field)."""
    try:
        return validate_box(box, f"{op}: 'box'", field="box")
    except SceneGraphError as e:
        raise EditError(str(e), field=e.field, detail=e.detail) from None


def check_edit_size(op: str, num_objects: int, num_relationships: int,
                    max_objects: int = DEFAULT_MAX_OBJECTS,
                    max_relationships: int = DEFAULT_MAX_RELATIONSHIPS) -> None:
    """Refuse the graph an edit that grows a graph would make (or made) when it has more
    objects or relationships than the limits (a loaded graph's by default).

    Raises:
        EditError: naming the count and the limit, with ``limit`` set and no field (the edit
            as a whole is at fault).
    """
    if num_objects > max_objects:       # only "add" grows a graph, by one object
        raise edit_err(op, f"the graph already has {num_objects - 1} objects, the maximum a "
                           f"scene graph may have ({max_objects}); remove an object first",
                       None, limit=max_objects)
    if num_relationships > max_relationships:
        raise edit_err(op, f"the graph would have {num_relationships} relationships, more "
                           f"than the maximum a scene graph may have ({max_relationships}); "
                           f"give fewer relationships or remove some first", None,
                       limit=max_relationships)

"""Hints for a newcomer's likely mistakes, added to the errors that catch them.

Each function returns the text of one hint (or of one whole message), one line and bounded
in length whatever the input: object names given where a scene graph was expected, JSON text
given where a dict or a path was, and an index one past the end (counting from 1).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from .files import short

# The form of a scene graph, as the messages spell it.
GRAPH_FORM = '{"objects": [...], "relationships": [[s, "predicate", o], ...]}'
_EXAMPLE_NAMES = 6      # names an example graph shows before "..."
_EXAMPLE_NAME_CHARS = 30
_LABELS = 4             # "sky=0, grass=1, ..." entries a 0-based hint shows


def looks_like_path(text: str) -> bool:
    """Whether ``text`` is meant as a file: it ends in ``.json``, holds a path separator, or
    exists."""
    if text.lower().endswith(".json") or "/" in text or os.sep in text:
        return True
    try:
        return Path(text).exists()
    except (OSError, ValueError):   # a name too long for the file system, a NUL character
        return False


def example_graph(names: Sequence[str]) -> str:
    """The scene graph of ``names`` with no relationships, as JSON text (the first few names,
    each cut short, then ``...``)."""
    shown = [n[:_EXAMPLE_NAME_CHARS] for n in names[:_EXAMPLE_NAMES]]
    objects = json.dumps(shown)
    if len(names) > _EXAMPLE_NAMES:
        objects = objects[:-1] + ", ...]"
    return f'{{"objects": {objects}, "relationships": []}}'


def not_a_graph(names: Sequence[str]) -> str:
    """The message for strings that are neither scene graph files nor scene graphs: what a
    graph is and the graph the caller probably meant (JSON text gets its own advice).

    Args:
        names: the strings given (one, or all the strings of a list); none of them is a path.
    """
    if len(names) == 1 and names[0].lstrip().startswith(("{", "[")):
        return (f"{short(names[0])} is JSON text, not a scene graph or a file path; pass "
                f"json.loads(text) (a dict) or the path of a .json file")
    if len(names) == 1:
        return (f"{short(names[0])} is neither a scene graph file (no such file) nor a scene "
                f"graph: a scene graph is a dict {GRAPH_FORM}; did you mean "
                f"{example_graph(names)}? (on the command line, put that graph in a .json file)")
    return (f"{short(list(names))} look like object names, not scene graphs (no such files): a "
            f"scene graph is a dict {GRAPH_FORM}; did you mean {example_graph(names)}?")


def index_range(index: object, names: Sequence[str], what: str = "objects",
                label: str = "{name}={i}") -> str:
    """The valid range of an index that is out of range, to follow ``the graph has N {what}``:
    `` (0..N-1)``, or, when ``index`` is one past the end (the mistake of counting from 1),
    ``; indices are 0-based: objects 0..N-1 (sky=0, grass=1, ...)``; ``""`` for no names.

    Args:
        index: the index given.
        names: what the indices count, as labels.
        what: what they are called (``"objects"``, ``"relationships"``).
        label: how one of ``names`` is shown with its index ``i``.
    """
    n = len(names)
    if not n:
        return ""
    if not isinstance(index, int) or isinstance(index, bool) or index != n:
        return f" (0..{n - 1})"
    labels = ", ".join(label.format(name=name[:_EXAMPLE_NAME_CHARS], i=i)
                       for i, name in enumerate(names[:_LABELS]))
    more = ", ..." if n > _LABELS else ""
    return f"; indices are 0-based: {what} 0..{n - 1} ({labels}{more})"

"""Object, predicate and attribute vocabularies, compatible with sg2im's vocab JSON.

Besides the names, a vocabulary may say which object names are stuff (regions such as sky or
grass; the others are things), which attributes each class takes in the model's data (its
class table) and which ones an object of the class given none gets (its defaults: the set the
class most often has in the data). ``Vocab.describe()`` is what ``sg2img vocab`` and
``GET /api/vocab`` show.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

from .files import read_json, short

IMAGE_OBJECT = "__image__"
IN_IMAGE_PREDICATE = "__in_image__"
IMAGE_OBJECT_ID = 0          # the id of ``__image__`` in every vocabulary
IN_IMAGE_PREDICATE_ID = 0    # the id of ``__in_image__``
MAX_VOCAB_SIZE = 100_000     # names per vocabulary section (VG has 179 objects, COCO 184)
MAX_NAME_LENGTH = 256
# Placeholder in sg2im's COCO vocabulary for unused raw category ids; never a valid name.
NONE_NAME = "NONE"

UNCHECKED_ATTRIBUTES = (
    "this model's vocabulary does not say which attributes each object class takes (no "
    "class table, as for Visual Genome or COCO-Stuff models), so the attributes cannot be "
    "checked against the classes; one a class never had in the training data is used as given")

COCO_PREDICATES = (
    IN_IMAGE_PREDICATE,
    "left of",
    "right of",
    "above",
    "below",
    "inside",
    "surrounding",
)


class VocabError(ValueError):
    """A name or a vocabulary file is not valid."""


class ClassAttributeError(VocabError):
    """An attribute that an object class never takes in the model's data.

    Attributes:
        attribute: the attribute refused.
        suggestions: the attributes the class takes (may be empty).
    """

    def __init__(self, message: str, attribute: str, suggestions: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.attribute = attribute
        self.suggestions = tuple(suggestions)


class UnknownNameError(VocabError):
    """A name is not in the vocabulary; the message lists the closest names.

    Attributes:
        suggestions: the closest names (also in the message), best first; may be empty.
    """

    def __init__(self, message: str, suggestions: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.suggestions = tuple(suggestions)


def _closest(name: Any, choices: Iterable[str], n: int = 5) -> list[str]:
    # No name is longer than MAX_NAME_LENGTH; difflib on a 50 MB string would take minutes.
    if not isinstance(name, str) or len(name) > MAX_NAME_LENGTH:
        return []
    return difflib.get_close_matches(name, list(choices), n=n, cutoff=0.4)


# A vocabulary with at most this many names, together at most _LISTED_CHARS long, is listed
# in full when a name has no close match (the procedural scenes' 27 objects and 6 predicates);
# a larger one (Visual Genome, COCO-Stuff) points to ``sg2img vocab`` instead.
LISTED_NAMES = 30
_LISTED_CHARS = 600


def _unknown_message(name: Any, names: Sequence[str], what: str, plural: str,
                         close: Sequence[str]) -> str:
    """``unknown {what} 'x'; closest {plural}: [...]``; when nothing is close, every name of a
    small vocabulary (``{what}s: a, b, c``, sorted) or, for a large one, how to list them.

    Args:
        name: the unknown name.
        names: the names a user may use.
        what: what a name is (``"object name"``, ``"predicate"``, ``"attribute"``).
        plural: how the closest names are introduced (``"names"``, ``"predicates"``).
        close: the closest names (``_closest``), best first.
    """
    head = f"unknown {what} {short(name)}"
    if close:
        return f"{head}; closest {plural}: {list(close)}"
    if not names:
        return f"{head}; the vocabulary has no {what}s"
    listed = ", ".join(sorted(names))
    if len(names) <= LISTED_NAMES and len(listed) <= _LISTED_CHARS:
        return f"{head}; {what}s: {listed}"
    return (f"{head}; none of the {len(names)} {what}s is close; run `sg2img vocab` (with "
            f"--checkpoint for a trained model) to list them")


def _lookup(index: Mapping[str, int], name: Any, internal: int | None,
            user_names: Callable[[], Sequence[str]], what: str, plural: str) -> int:
    """``index[name]`` for a name a user may use (not the ``internal`` id); else an
    ``UnknownNameError`` listing the closest of ``user_names()`` (all of them, or how to list
    them, when none is close)."""
    idx = index.get(name) if isinstance(name, str) else None
    if idx is None or idx == internal:
        names = user_names()
        close = _closest(name, names)
        raise UnknownNameError(_unknown_message(name, names, what, plural, close), close)
    return idx


def _index(names: Sequence[str]) -> dict[str, int]:
    return {name: i for i, name in enumerate(names) if name != NONE_NAME}


def _class_table(table: Any, objects: Sequence[str], attributes: Sequence[str] | None,
                 key: str = "class_attributes") -> dict[str, tuple[str, ...]]:
    """``table`` checked as untrusted input and completed: every object name of ``objects``
    (in their order) -> a tuple of attribute names; a class the table omits gets ``()``.

    Args:
        table: the value read from the vocabulary.
        objects: the object names a user may use.
        attributes: the attribute names, or None when the vocabulary has none.
        key: the vocabulary key the table comes from, named in the messages
            (``"class_attributes"``, ``"class_default_attributes"``).

    Raises:
        VocabError: not a mapping of object names to lists of distinct attribute names of
            the vocabulary, or a table without an attribute vocabulary.
    """
    if attributes is None:
        raise VocabError(f"vocab {key!r} needs an attribute vocabulary; give "
                         f"'attribute_idx_to_name' or remove {key!r}")
    if not isinstance(table, Mapping):
        raise VocabError(f"vocab {key!r} must map object names to lists of attribute names, "
                         f"got {type(table).__name__}")
    if len(table) > len(objects):
        raise VocabError(f"vocab {key!r} has {len(table)} entries but the vocabulary has "
                         f"{len(objects)} object names; give at most one per object name")
    known_objects, known_attrs = set(objects), set(attributes)
    for name, attrs in table.items():
        if not isinstance(name, str) or name not in known_objects:
            raise VocabError(f"vocab {key!r} names {short(name)}, which is not an object name "
                             f"of the vocabulary; list only its object names")
        if not isinstance(attrs, (list, tuple)) or len(attrs) > len(known_attrs):
            raise VocabError(f"vocab {key!r} of {short(name)} must be a list of at most "
                             f"{len(known_attrs)} attribute names, got {short(attrs)}")
        bad = [a for a in attrs if not isinstance(a, str) or a not in known_attrs]
        if bad:
            raise VocabError(f"vocab {key!r} of {short(name)}: {short(bad[0])} is not an "
                             f"attribute name of the vocabulary; use names from "
                             f"'attribute_idx_to_name'")
        if len(set(attrs)) != len(attrs):
            raise VocabError(f"vocab {key!r} of {short(name)} lists an attribute twice: "
                             f"{short(list(attrs))}; list each once")
    return {n: tuple(table.get(n, ())) for n in objects}


def _defaults_within(defaults: Mapping[str, tuple[str, ...]],
                     takes: Mapping[str, tuple[str, ...]] | None) -> None:
    """Raise unless every class's defaults are among the attributes it takes (when the
    vocabulary has a class table)."""
    for name, attrs in defaults.items():
        bad = [a for a in attrs if takes is not None and a not in takes[name]]
        if bad:
            raise VocabError(f"vocab 'class_default_attributes' of {short(name)}: "
                             f"{short(bad[0])} is not among the attributes {name} takes "
                             f"('class_attributes': {', '.join(takes[name]) or 'none'}); "
                             f"give {name} defaults from those")


def _stuff_names(names: Any, objects: Sequence[str]) -> tuple[str, ...]:
    """``names`` checked as untrusted input: distinct object names, returned in vocabulary
    order.

    Raises:
        VocabError: not a list of distinct object names of the vocabulary.
    """
    if not isinstance(names, (list, tuple, set, frozenset)) or len(names) > len(objects):
        raise VocabError(f"vocab 'stuff_names' must be a list of at most {len(objects)} "
                         f"object names, got {short(names)}")
    known = set(objects)
    bad = [n for n in names if not isinstance(n, str) or n not in known]
    if bad:
        raise VocabError(f"vocab 'stuff_names' names {short(bad[0])}, which is not an object "
                         f"name of the vocabulary; list only its object names")
    if len(set(names)) != len(names):
        raise VocabError("vocab 'stuff_names' lists an object name twice; list each once")
    chosen = set(names)
    return tuple(n for n in objects if n in chosen)


@dataclass(frozen=True)
class Vocab:
    """Names <-> ids for objects, predicates and (optionally) attributes.

    Index 0 of ``object_names`` is ``__image__`` and index 0 of ``pred_names`` is
    ``__in_image__``, as in sg2im. Slots named ``NONE`` (gaps in COCO's raw category ids)
    hold an index but are not valid names.

    Two vocabularies are equal when they have the same names at the same ids (what a model's
    weights index); the class table and the stuff names describe the data and are not
    compared.

    Args:
        object_names: index -> object name.
        pred_names: index -> predicate name.
        attribute_names: index -> attribute name, or ``None`` when the vocabulary has none.
        class_attributes: object name -> the attribute names that class takes in the model's
            data (a class left out takes none), or ``None`` when unknown (Visual Genome,
            COCO-Stuff). Needs ``attribute_names``. Stored for every object name, in
            vocabulary order.
        stuff_names: the object names that are stuff (regions such as sky or grass); the
            others are things. ``None`` when unknown.
        class_default_attributes: object name -> the attributes an object of that class
            given none gets (the set the class most often has in the model's data; a class
            left out gets none), or ``None`` when unknown. Needs ``attribute_names``; each
            class's defaults must be among its ``class_attributes`` when both are given.
            Stored for every object name, in vocabulary order.

    Raises:
        VocabError: a bad name list, class table, default table or stuff list (the message
            says which).
    """

    object_names: tuple[str, ...]
    pred_names: tuple[str, ...]
    attribute_names: tuple[str, ...] | None = None
    class_attributes: Mapping[str, tuple[str, ...]] | None = field(
        default=None, compare=False, repr=False)
    stuff_names: tuple[str, ...] | None = field(default=None, compare=False, repr=False)
    class_default_attributes: Mapping[str, tuple[str, ...]] | None = field(
        default=None, compare=False, repr=False)
    _obj_idx: dict[str, int] = field(init=False, repr=False, compare=False)
    _pred_idx: dict[str, int] = field(init=False, repr=False, compare=False)
    _attr_idx: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "object_names", tuple(self.object_names))
        object.__setattr__(self, "pred_names", tuple(self.pred_names))
        if self.attribute_names is not None:
            object.__setattr__(self, "attribute_names", tuple(self.attribute_names))
        if not self.object_names or self.object_names[0] != IMAGE_OBJECT:
            raise VocabError(f"object index 0 must be {IMAGE_OBJECT!r}, got "
                             f"{self.object_names[:1]!r}")
        if not self.pred_names or self.pred_names[0] != IN_IMAGE_PREDICATE:
            raise VocabError(f"predicate index 0 must be {IN_IMAGE_PREDICATE!r}, got "
                             f"{self.pred_names[:1]!r}")
        for kind, names in (("object", self.object_names), ("predicate", self.pred_names),
                            ("attribute", self.attribute_names or ())):
            real = [n for n in names if n != NONE_NAME]
            if len(set(real)) != len(real):
                dup = sorted({n for n in real if real.count(n) > 1})
                raise VocabError(f"duplicate {kind} names in vocabulary: {dup}")
            if not all(isinstance(n, str) and n for n in names):
                raise VocabError(f"{kind} names must be non-empty strings")
        object.__setattr__(self, "_obj_idx", _index(self.object_names))
        object.__setattr__(self, "_pred_idx", _index(self.pred_names))
        object.__setattr__(self, "_attr_idx", _index(self.attribute_names or ()))
        users = self.user_object_names()
        attrs = None if self.attribute_names is None else self.user_attribute_names()
        if self.class_attributes is not None:
            object.__setattr__(self, "class_attributes", _class_table(
                self.class_attributes, users, attrs))
        if self.class_default_attributes is not None:
            defaults = _class_table(self.class_default_attributes, users, attrs,
                                    "class_default_attributes")
            _defaults_within(defaults, self.class_attributes)
            object.__setattr__(self, "class_default_attributes", defaults)
        if self.stuff_names is not None:
            object.__setattr__(self, "stuff_names", _stuff_names(self.stuff_names, users))

    # ------------------------------------------------------------------ sizes
    @property
    def num_objects(self) -> int:
        """Number of object slots C (including ``__image__`` and ``NONE`` gaps)."""
        return len(self.object_names)

    @property
    def num_preds(self) -> int:
        """Number of predicate slots P (including ``__in_image__``)."""
        return len(self.pred_names)

    @property
    def num_attributes(self) -> int:
        return len(self.attribute_names or ())

    @property
    def image_idx(self) -> int:
        return 0

    @property
    def in_image_idx(self) -> int:
        return 0

    def user_object_names(self) -> list[str]:
        """Object names a user may put in a scene graph (no ``__image__``, no gaps)."""
        return [n for n in self.object_names[1:] if n != NONE_NAME]

    def user_pred_names(self) -> list[str]:
        return [n for n in self.pred_names[1:] if n != NONE_NAME]

    # ---------------------------------------------------------------- lookups
    def object_idx(self, name: str) -> int:
        """Id of an object name that a user may use.

        Raises:
            UnknownNameError: the name is unknown; the message lists the closest names.
        """
        return _lookup(self._obj_idx, name, self.image_idx, self.user_object_names,
                       "object name", "names")

    def pred_idx(self, name: str) -> int:
        """Id of a predicate name that a user may use (``__in_image__`` is internal)."""
        return _lookup(self._pred_idx, name, self.in_image_idx, self.user_pred_names,
                       "predicate", "predicates")

    def user_attribute_names(self) -> list[str]:
        return [n for n in self.attribute_names or () if n != NONE_NAME]

    def attribute_idx(self, name: str) -> int:
        """Id of an attribute name.

        Raises:
            VocabError: the vocabulary has no attributes.
            UnknownNameError: the name is unknown; the message lists the closest names.
        """
        if self.attribute_names is None:
            raise VocabError("this vocabulary has no attributes; remove 'attributes' from "
                             "the scene graph or use a model trained with attributes")
        return _lookup(self._attr_idx, name, None, self.user_attribute_names, "attribute",
                       "attributes")

    def object_name(self, idx: int) -> str:
        return self.object_names[int(idx)]

    def pred_name(self, idx: int) -> str:
        return self.pred_names[int(idx)]

    # ---------------------------------------------------------------- classes
    def thing_names(self) -> list[str] | None:
        """Object names that are things (not stuff), in vocabulary order; None when the
        vocabulary does not say which names are stuff."""
        if self.stuff_names is None:
            return None
        stuff = set(self.stuff_names)
        return [n for n in self.user_object_names() if n not in stuff]

    def stuff_ids(self) -> tuple[int, ...] | None:
        """Object ids of the stuff names; None when the vocabulary does not say which they are."""
        if self.stuff_names is None:
            return None
        return tuple(self.object_names.index(n) for n in self.stuff_names)

    def class_attribute_names(self, name: str) -> tuple[str, ...] | None:
        """The attributes object class ``name`` takes in the model's data; None without a
        class table or for a name that is not an object name."""
        if self.class_attributes is None:
            return None
        return self.class_attributes.get(name)

    def default_attribute_names(self, name: str) -> tuple[str, ...] | None:
        """The attributes an object of class ``name`` given none gets (the set the class most
        often has in the model's data); None without a default table or for a name that is
        not an object name."""
        if self.class_default_attributes is None:
            return None
        return self.class_default_attributes.get(name)

    def check_class_attributes(self, name: str, attributes: Sequence[str],
                               subject: str | None = None) -> None:
        """Raise unless object class ``name`` takes every one of ``attributes`` in the model's
        data. Without a class table (Visual Genome, COCO-Stuff) nothing is checked.

        Args:
            name: an object name.
            attributes: attribute names of the vocabulary.
            subject: how the message names the object (``"object 3 (car)"``); ``name`` when
                None.

        Raises:
            ClassAttributeError: the first attribute the class never takes; the message lists
                the ones it takes (also in ``suggestions``).
        """
        takes = self.class_attribute_names(name)
        if takes is None:
            return
        subject = subject or name
        for a in attributes:
            if a in takes:
                continue
            if not takes:
                raise ClassAttributeError(f"{subject} takes no attributes in this model's "
                                          f"data; give it none ([])", a)
            raise ClassAttributeError(f"{subject} does not take {short(a)} in this model's "
                                      f"data; {name} takes: {', '.join(takes)}", a, takes)

    def describe(self) -> dict[str, Any]:
        """What the vocabulary holds, as plain JSON types (``sg2img vocab --json`` and
        ``GET /api/vocab`` show this).

        Returns:
            ``objects`` (every name a scene graph may use), ``things`` and ``stuff`` (the
            objects split; None when the vocabulary does not say), ``predicates``,
            ``attributes`` (None without attributes), ``class_attributes`` (object name ->
            the attributes it takes; None without a class table) and ``default_attributes``
            (object name -> the attributes an object given none gets; None without a
            default table).
        """
        return {
            "objects": self.user_object_names(),
            "things": self.thing_names(),
            "stuff": None if self.stuff_names is None else list(self.stuff_names),
            "predicates": self.user_pred_names(),
            "attributes": (None if self.attribute_names is None
                           else self.user_attribute_names()),
            "class_attributes": (None if self.class_attributes is None else
                                 {n: list(a) for n, a in self.class_attributes.items()}),
            "default_attributes": (None if self.class_default_attributes is None else
                                   {n: list(a) for n, a in
                                    self.class_default_attributes.items()}),
        }

    # ------------------------------------------------------------- json form
    def to_dict(self) -> dict[str, Any]:
        """The sg2im vocab JSON form (``*_name_to_idx`` and ``*_idx_to_name``), with
        ``class_attributes``, ``class_default_attributes`` and ``stuff_names`` when the
        vocabulary has them."""
        d: dict[str, Any] = {
            "object_idx_to_name": list(self.object_names),
            "object_name_to_idx": dict(self._obj_idx),
            "pred_idx_to_name": list(self.pred_names),
            "pred_name_to_idx": dict(self._pred_idx),
        }
        if self.attribute_names is not None:
            d["attribute_idx_to_name"] = list(self.attribute_names)
            d["attribute_name_to_idx"] = dict(self._attr_idx)
        if self.class_attributes is not None:
            d["class_attributes"] = {n: list(a) for n, a in self.class_attributes.items()}
        if self.class_default_attributes is not None:
            d["class_default_attributes"] = {n: list(a) for n, a in
                                             self.class_default_attributes.items()}
        if self.stuff_names is not None:
            d["stuff_names"] = list(self.stuff_names)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Vocab:
        """Build from sg2im's vocab JSON; ``*_idx_to_name`` wins, else ``*_name_to_idx``.
        The optional ``class_attributes``, ``class_default_attributes`` and ``stuff_names``
        are checked as untrusted input.

        Raises:
            VocabError: required keys are missing, the two forms disagree, or a class or
                default table or the stuff list names what the vocabulary does not have.
        """
        if not isinstance(d, Mapping):
            raise VocabError(f"a vocab must be a JSON object, got {type(d).__name__}")

        def names(prefix: str, required: bool) -> list[str] | None:
            i2n, n2i = d.get(f"{prefix}_idx_to_name"), d.get(f"{prefix}_name_to_idx")
            if i2n is None and n2i is None:
                if required:
                    raise VocabError(f"vocab is missing '{prefix}_idx_to_name' and "
                                     f"'{prefix}_name_to_idx'")
                return None
            if n2i is not None:
                if not isinstance(n2i, Mapping) or not all(
                        isinstance(i, int) and not isinstance(i, bool) for i in n2i.values()):
                    raise VocabError(f"vocab '{prefix}_name_to_idx' must map names to integers")
                if n2i and not 0 <= min(n2i.values()) <= max(n2i.values()) < MAX_VOCAB_SIZE:
                    raise VocabError(f"vocab '{prefix}_name_to_idx' has an index outside "
                                     f"0..{MAX_VOCAB_SIZE - 1}")
            if i2n is None:
                i2n = [NONE_NAME] * (max(n2i.values(), default=-1) + 1)
                for name, i in n2i.items():
                    i2n[i] = name
            if not isinstance(i2n, (list, tuple)) or len(i2n) > MAX_VOCAB_SIZE:
                raise VocabError(f"vocab '{prefix}_idx_to_name' must be a list of at most "
                                 f"{MAX_VOCAB_SIZE} names")
            if not all(isinstance(n, str) and len(n) <= MAX_NAME_LENGTH for n in i2n):
                raise VocabError(f"vocab '{prefix}_idx_to_name' must hold names (strings of at "
                                 f"most {MAX_NAME_LENGTH} characters)")
            i2n = list(i2n)
            if n2i is not None:
                for name, i in n2i.items():
                    if not (0 <= i < len(i2n)) or i2n[i] != name:
                        raise VocabError(f"vocab '{prefix}' forms disagree on {short(name)}")
            return i2n

        return cls(tuple(names("object", True)), tuple(names("pred", True)),
                   None if (a := names("attribute", False)) is None else tuple(a),
                   class_attributes=d.get("class_attributes"), stuff_names=d.get("stuff_names"),
                   class_default_attributes=d.get("class_default_attributes"))

    @classmethod
    def load(cls, path: str | PathLike) -> Vocab:
        """Read sg2im's vocab JSON (bounded in size, duplicate keys refused)."""
        return cls.from_dict(read_json(path, "vocab file", VocabError))

    def save(self, path: str | PathLike) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))

    # ----------------------------------------------------------- constructors
    @classmethod
    def from_names(cls, object_names: Iterable[str], pred_names: Iterable[str],
                   attribute_names: Iterable[str] | None = None, *,
                   class_attributes: Mapping[str, Sequence[str]] | None = None,
                   stuff_names: Iterable[str] | None = None,
                   class_default_attributes: Mapping[str, Sequence[str]] | None = None
                   ) -> Vocab:
        """Vocabulary with ``__image__`` / ``__in_image__`` prepended to the given names
        (``class_attributes``, ``stuff_names`` and ``class_default_attributes`` as in the
        class)."""
        return cls((IMAGE_OBJECT, *object_names), (IN_IMAGE_PREDICATE, *pred_names),
                   None if attribute_names is None else tuple(attribute_names),
                   class_attributes=class_attributes,
                   stuff_names=None if stuff_names is None else tuple(stuff_names),
                   class_default_attributes=class_default_attributes)

    @classmethod
    def from_coco_categories(cls, categories: Iterable[Mapping[str, Any]],
                             predicates: Sequence[str] = COCO_PREDICATES,
                             attribute_names: Iterable[str] | None = None, *,
                             class_attributes: Mapping[str, Sequence[str]] | None = None,
                             class_default_attributes: Mapping[str, Sequence[str]] | None = None
                             ) -> Vocab:
        """sg2im's COCO-Stuff vocabulary: raw category ids are object ids.

        ``__image__`` takes id 0 and ids with no category are ``NONE``; with COCO-Stuff's
        things (1-90) and stuff (92-183) that gives 184 slots. ``attribute_names`` (the
        annotation files' ``"attributes"`` list, ours only) become the attribute section,
        ``class_attributes`` its class table and ``class_default_attributes`` its defaults.
        When every category says ``"isthing"`` (0 or 1, as the procedural files and the COCO
        loader write it), those with 0 are the stuff names.
        """
        categories = list(categories)
        cats = {}
        for c in categories:
            cid = c.get("id") if isinstance(c, Mapping) else None
            name = c.get("name") if isinstance(c, Mapping) else None
            if cid == 0 and not isinstance(cid, bool):
                raise VocabError("COCO category id 0 is reserved for __image__")
            if not isinstance(cid, int) or isinstance(cid, bool) or not 0 < cid < MAX_VOCAB_SIZE:
                raise VocabError(f"a COCO category needs an integer 'id' in 1.."
                                 f"{MAX_VOCAB_SIZE - 1}, got {short(c)}")
            if not isinstance(name, str) or not name or len(name) > MAX_NAME_LENGTH:
                raise VocabError(f"COCO category {cid} needs a 'name' (a string of at most "
                                 f"{MAX_NAME_LENGTH} characters), got {short(name)}")
            if cid in cats:
                raise VocabError(f"COCO category id {cid} is given twice ({short(cats[cid])} "
                                 f"and {short(name)})")
            cats[cid] = name
        if not cats:
            raise VocabError("the annotations define no categories")
        names = [NONE_NAME] * (max(cats) + 1)
        names[0] = IMAGE_OBJECT
        for i, n in cats.items():
            names[i] = n
        flags = [c.get("isthing") if isinstance(c, Mapping) else None for c in categories]
        stuff = None
        if flags and all(f in (0, 1) and not isinstance(f, bool) for f in flags):
            stuff = tuple(c["name"] for c in categories if c["isthing"] == 0)
        return cls(tuple(names), tuple(predicates),
                   None if attribute_names is None else tuple(attribute_names),
                   class_attributes=class_attributes, stuff_names=stuff,
                   class_default_attributes=class_default_attributes)

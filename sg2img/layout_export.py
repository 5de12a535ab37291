"""Layouts for other renderers: a generated layout as GLIGEN inputs, a segmentation map or COCO.

sg2img predicts a layout (boxes in [0, 1] and one soft mask per object) for every scene graph;
``generate(..., return_layout=True)`` returns it with the images. This module writes it in
three formats that other image generators and tools read, so that a scene graph can drive them
without hand-made boxes:

* ``gligen``: the grounding inputs of diffusers' ``StableDiffusionGLIGENPipeline``: a
  ``prompt`` made from the graph, one ``gligen_phrases`` entry per object ("red car") and its
  box in ``gligen_boxes``. ``pipe(**json.load(f))`` takes the file as it is.
* ``seg``: a class-index segmentation PNG (mode "P", palette ``vis.class_palette``): pixel
  value = the object class the renderer sees there, :data:`NO_OBJECT` (0) where it sees none;
  a JSON beside it lists the classes and the palette.
* ``coco``: COCO annotations (``images``, ``annotations`` with pixel ``bbox``, ``area`` and RLE
  ``segmentation``, ``categories`` from the vocabulary), one image per graph, which
  ``sg2img.data.coco`` reads back to the same boxes.

Functions come in two layers: on a scene graph with its boxes and masks (``gligen_inputs``,
``class_map``, ``coco_annotations``), and on a ``GenerationResult`` (``to_gligen``,
``to_segmentation``, ``to_coco``); ``layout_files`` makes the files of one format and
``write_layout`` writes them into a folder all or nothing.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from .files import StagedOutput, short
from .layout import warp_masks
from .scene_graph import SceneGraph
from .vis import class_palette
from .vocab import IMAGE_OBJECT_ID, NONE_NAME, Vocab

if TYPE_CHECKING:
    from .result import GenerationResult

__all__ = ["EXPORT_FORMATS", "GLIGEN_MAX_BOXES", "MAX_SEG_CLASSES", "NO_OBJECT",
           "LayoutExportError", "LayoutFile", "class_map", "coco_annotations", "gligen_inputs",
           "graph_caption", "layout_files", "object_phrase", "to_coco", "to_gligen",
           "to_segmentation", "write_layout"]

EXPORT_FORMATS = ("gligen", "seg", "coco")
GLIGEN_MAX_BOXES = 30
"""Boxes ``StableDiffusionGLIGENPipeline`` uses (its ``max_objs``); it drops later ones with a
warning."""
NO_OBJECT = IMAGE_OBJECT_ID
"""Value of segmentation pixels that no object covers: class 0, the ``__image__`` slot, whose
semantic layout channel is the unlabelled region."""
MAX_SEG_CLASSES = 256
"""Most classes a mode "P" PNG holds (one palette entry per class id)."""
MASK_THRESHOLD = 0.5
"""A COCO mask is an object's soft mask above this value, placed in its box."""
BOX_DECIMALS = 4

# Names read as mass nouns in a caption: "sky above the road", not "a sky above ...".
_MASS_NOUNS = frozenset({"sky", "grass", "water", "sand", "snow", "sea", "dirt", "mud",
                         "gravel", "fog", "ice", "hay", "straw", "moss", "foliage", "pavement",
                         "smoke", "wood", "rain"})
# COCO-Stuff's name suffixes that mean nothing in a sentence ("sky-other" is the sky).
_NAME_SUFFIXES = ("-other", "-merged", "-stuff")


class LayoutExportError(ValueError):
    """A layout that cannot be written in the asked format (the message says what instead)."""


@dataclass(frozen=True)
class LayoutFile:
    """One file of an export, ready to write or send.

    Attributes:
        name: a plain file name (``sheep_000_seg.png``).
        media_type: ``"application/json"`` or ``"image/png"``.
        data: the file's bytes (JSON as UTF-8 text).
    """

    name: str
    media_type: str
    data: bytes


# --------------------------------------------------------------------------- text
def _words(name: str) -> str:
    """A vocabulary name as words: ``"sky-other"`` -> ``"sky"``, ``"traffic_light"`` ->
    ``"traffic light"``."""
    for suffix in _NAME_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
    return " ".join(name.replace("_", " ").replace("-", " ").split())


def object_phrase(graph: SceneGraph, i: int) -> str:
    """Object ``i`` of ``graph`` as a phrase: its attributes, then its name (``"red car"``)."""
    attrs = graph.attributes[i] if graph.attributes else ()
    return " ".join([*(_words(a) for a in attrs), _words(graph.objects[i])])


def _article(phrase: str) -> str:
    if phrase.split()[-1] in _MASS_NOUNS:
        return phrase
    return ("an " if phrase[0].lower() in "aeiou" else "a ") + phrase


def graph_caption(graph: SceneGraph) -> str:
    """A short caption of ``graph``: its relationships as clauses, then the objects in none.

    An object's first mention takes "a"/"an" (none for mass nouns such as sky or grass), later
    ones "the": ``{"objects": ["car", "road", "sky"], "relationships": [[0, "on", 1],
    [2, "above", 1]], "attributes": [["red"], [], []]}`` gives ``"a red car on a road, sky
    above the road"``.
    """
    said: set[int] = set()

    def mention(i: int) -> str:
        phrase = object_phrase(graph, i)
        if i in said:
            return "the " + phrase
        said.add(i)
        return _article(phrase)

    parts = []
    for s, p, o in graph.relationships:
        subject = mention(s)
        parts.append(f"{subject} {_words(p)} {mention(o)}")
    parts += [mention(i) for i in range(len(graph.objects)) if i not in said]
    return ", ".join(parts)


# --------------------------------------------------------------------------- boxes, masks
def _boxes(boxes: Any, n: int) -> np.ndarray:
    arr = np.asarray(boxes.detach().cpu() if isinstance(boxes, Tensor) else boxes,
                     dtype=np.float64)
    if arr.shape != (n, 4) or not np.isfinite(arr).all():
        raise LayoutExportError(f"boxes must be {n} finite [x0, y0, x1, y1] rows, one per "
                                f"object, got an array of shape {arr.shape}")
    return np.clip(arr, 0.0, 1.0)


def _masks(masks: Any, n: int) -> Tensor:
    m = torch.as_tensor(masks).detach().float().cpu()
    if m.dim() != 3 or len(m) != n or m.shape[1] != m.shape[2]:
        raise LayoutExportError(f"masks must be {n} square (M, M) masks, one per object, got "
                                f"shape {tuple(m.shape)}")
    return m.nan_to_num(0.0).clamp(0.0, 1.0)


def _check_size(size: Any) -> int:
    if not isinstance(size, int) or isinstance(size, bool) or not 8 <= size <= 4096:
        raise LayoutExportError(f"size must be an integer number of pixels (8..4096), got "
                                f"{short(size)}")
    return size


def _placed(box: np.ndarray, mask: Tensor, size: int) -> Tensor:
    """One object's mask placed into its box on a ``size x size`` canvas, as the renderer
    does (``layout.warp_masks``)."""
    return warp_masks(torch.as_tensor(box, dtype=torch.float32)[None], mask[None],
                      size, size)[0]


# --------------------------------------------------------------------------- gligen
def gligen_inputs(graph: SceneGraph, boxes: Any) -> dict[str, Any]:
    """The grounding inputs of diffusers' ``StableDiffusionGLIGENPipeline`` for one layout.

    ``pipe(**gligen_inputs(graph, boxes))`` generates the scene: ``prompt`` is
    :func:`graph_caption`, ``gligen_phrases[i]`` is object ``i``'s :func:`object_phrase` and
    ``gligen_boxes[i]`` its box ``[x0, y0, x1, y1]`` in [0, 1] (clipped to the image, rounded
    to 4 decimals). What GLIGEN does not take is lost: the masks (it grounds boxes only) and
    the relationships (only as words of the prompt). The pipeline uses the first
    :data:`GLIGEN_MAX_BOXES` (30) phrases and boxes and warns about the rest, and its CLIP text
    encoder reads the first 77 tokens of the prompt.

    Args:
        graph: the scene graph.
        boxes: ``(O, 4)`` boxes in [0, 1], one per object of ``graph``.

    Returns:
        ``{"prompt": str, "gligen_phrases": [str], "gligen_boxes": [[float] * 4]}``.

    Raises:
        LayoutExportError: ``boxes`` is not one finite box per object.
    """
    b = _boxes(boxes, len(graph.objects))
    return {"prompt": graph_caption(graph),
            "gligen_phrases": [object_phrase(graph, i) for i in range(len(graph.objects))],
            "gligen_boxes": [[round(float(v), BOX_DECIMALS) for v in row] for row in b]}


def as_drawn(graph: SceneGraph, vocab: Vocab) -> SceneGraph:
    """``graph`` with the attributes its picture was drawn with: an object given none takes
    its class's defaults (``SceneGraph.drawn_attributes``), so exports describe the picture."""
    if vocab.attribute_names is None:
        return graph
    return dataclasses.replace(graph, attributes=graph.drawn_attributes(vocab))


def to_gligen(result: GenerationResult, k: int = 0) -> dict[str, Any]:
    """:func:`gligen_inputs` of image ``k`` of a ``generate`` result (attributes as drawn)."""
    return gligen_inputs(as_drawn(result.graphs[k], result.vocab), result.boxes[k])


# --------------------------------------------------------------------------- seg
def class_map(graph: SceneGraph, boxes: Any, masks: Any, vocab: Vocab, size: int) -> np.ndarray:
    """The class the renderer sees at each pixel: the argmax of the semantic layout.

    The layout is ``layout.semantic_layout`` at ``size x size``: per class the sum of its
    objects' masks placed in their boxes (at most 1), and channel 0 the part no object covers.
    Ties go to the lower class id (as ``argmax``), so a pixel half covered is
    :data:`NO_OBJECT`. Computed class by class, so memory stays a few ``size x size`` maps.

    Args:
        graph: the scene graph (its object names give the class ids).
        boxes: ``(O, 4)`` in [0, 1]; masks: ``(O, M, M)`` in [0, 1].
        vocab: the model's vocabulary.
        size: the map's width and height in pixels (8..4096).

    Returns:
        ``(size, size)`` int64 class ids, :data:`NO_OBJECT` where no object is.

    Raises:
        LayoutExportError: boxes or masks not one per object, or a bad size.
    """
    size = _check_size(size)
    n = len(graph.objects)
    b, m = _boxes(boxes, n), _masks(masks, n)
    ids = [vocab.object_idx(name) for name in graph.objects]
    covered = torch.zeros(size, size)
    best = torch.full((size, size), -1.0)
    best_id = torch.full((size, size), NO_OBJECT, dtype=torch.long)
    for cid in sorted(set(ids)):
        channel = torch.zeros(size, size)
        for o in (o for o in range(n) if ids[o] == cid):
            channel += _placed(b[o], m[o], size)
        channel.clamp_(0.0, 1.0)
        covered += channel
        better = channel > best            # strictly: the lower id keeps a tie
        best = torch.where(better, channel, best)
        best_id[better] = cid
    unlabelled = 1.0 - covered.clamp(max=1.0)
    best_id[unlabelled >= best] = NO_OBJECT
    return best_id.numpy()


def _seg_png(ids: np.ndarray, num_classes: int) -> Image.Image:
    palette = np.zeros((MAX_SEG_CLASSES, 3), dtype=np.uint8)
    palette[:num_classes] = class_palette(num_classes)
    h, w = ids.shape
    im = Image.frombytes("P", (w, h), np.ascontiguousarray(ids, dtype=np.uint8).tobytes())
    im.putpalette(palette.reshape(-1).tolist())
    return im


def _seg_classes(vocab: Vocab) -> list[dict[str, Any]]:
    return [{"id": i, "name": "no object" if i == NO_OBJECT else name}
            for i, name in enumerate(vocab.object_names) if name != NONE_NAME]


def to_segmentation(result: GenerationResult, k: int = 0, size: int | None = None
                    ) -> tuple[Image.Image, dict[str, Any]]:
    """Image ``k``'s layout as a class-index segmentation PNG, and its class list.

    At the size of ``result.layout`` (the model's) the map is the per-pixel argmax of that
    layout, exactly what the renderer saw; at another ``size`` it is :func:`class_map` of the
    same boxes and masks at that size.

    Args:
        result: from ``generate``; ``return_layout=True`` keeps its layouts.
        k: which image.
        size: width and height in pixels; ``None``: the size of the result's images.

    Returns:
        A mode "P" PIL image (pixel value = class id, :data:`NO_OBJECT` = no object; palette
        entry ``c`` = ``vis.class_color(c)``) and a dict: ``size`` [W, H], ``no_object``,
        ``classes`` (``{"id", "name"}`` for every class id of the vocabulary, id 0 named "no
        object"), ``palette`` (``[r, g, b]`` per class id) and ``objects`` (the graph's
        objects: ``index``, ``name``, ``label``, ``class_id``, ``box``).

    Raises:
        LayoutExportError: the vocabulary has more than :data:`MAX_SEG_CLASSES` classes (a
            palette PNG holds 256), or a bad size.
    """
    vocab = result.vocab
    graph = as_drawn(result.graphs[k], vocab)
    c = vocab.num_objects
    if c > MAX_SEG_CLASSES:
        raise LayoutExportError(f"the model has {c} object classes, more than the "
                                f"{MAX_SEG_CLASSES} a palette PNG holds; export this layout "
                                f"with format 'coco' instead")
    size = int(result.tensors.shape[-1]) if size is None else _check_size(size)
    layout = result.layout
    if layout is not None and layout.shape[-1] == size and layout.shape[-2] == size:
        ids = np.argmax(layout[k].float().cpu().numpy(), axis=0)   # first maximum, as torch's
    else:
        ids = class_map(graph, result.boxes[k], result.masks[k], vocab, size)
    boxes = _boxes(result.boxes[k], len(graph.objects))
    info = {"size": [size, size], "no_object": NO_OBJECT, "classes": _seg_classes(vocab),
            "palette": class_palette(c).tolist(),
            "objects": [{"index": i, "name": name, "label": object_phrase(graph, i),
                         "class_id": vocab.object_idx(name),
                         "box": [round(float(v), BOX_DECIMALS) for v in boxes[i]]}
                        for i, name in enumerate(graph.objects)]}
    return _seg_png(ids, c), info


# --------------------------------------------------------------------------- coco
def _rle(mask: np.ndarray) -> dict[str, Any]:
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def coco_annotations(graphs: Sequence[SceneGraph], boxes: Sequence[Any], masks: Sequence[Any],
                     vocab: Vocab, size: int, *, file_names: Sequence[str] | None = None,
                     info: dict[str, Any] | None = None) -> dict[str, Any]:
    """COCO annotations of layouts: image ``j`` (id ``j + 1``) holds graph ``j``'s objects.

    Each object becomes an annotation with ``bbox`` ``[x, y, w, h]`` in pixels of a ``size x
    size`` image (2 decimals), ``segmentation`` its mask above :data:`MASK_THRESHOLD` placed in
    its box, as compressed RLE (``pycocotools.mask.encode``; ``iscrowd`` is 0: these are single
    objects), ``area`` that mask's pixel count, and ``attributes`` (names) when the vocabulary
    has attributes. ``categories`` are the vocabulary's object classes with their ids (the COCO
    category id is the class id, as in sg2im's COCO vocabulary), so ``sg2img.data.coco`` reads
    the file back to the same classes, boxes and attributes. Masks overlap where objects do.

    Args:
        graphs, boxes, masks: per image the graph, its ``(O, 4)`` boxes in [0, 1] and ``(O, M,
            M)`` masks.
        vocab: the model's vocabulary.
        size: image width and height in pixels (8..4096).
        file_names: per image its file name; ``"{j:03d}.png"`` when None.
        info: the COCO ``info`` object.

    Returns:
        A JSON-ready dict with ``info``, ``images``, ``annotations``, ``categories`` (and
        ``attributes``, the attribute names, when the vocabulary has them).

    Raises:
        LayoutExportError: boxes or masks not one per object, or a bad size.
    """
    size = _check_size(size)
    names = list(file_names) if file_names is not None else [f"{j:03d}.png"
                                                             for j in range(len(graphs))]
    if not len(graphs) == len(boxes) == len(masks) == len(names):
        raise LayoutExportError(f"coco_annotations needs one entry per image in graphs, boxes, "
                                f"masks and file_names, got {len(graphs)}, {len(boxes)}, "
                                f"{len(masks)} and {len(names)}")
    images, anns = [], []
    for j, (g, bx, mk, name) in enumerate(zip(graphs, boxes, masks, names, strict=True)):
        images.append({"id": j + 1, "file_name": name, "width": size, "height": size})
        b, m = _boxes(bx, len(g.objects)), _masks(mk, len(g.objects))
        for i, obj in enumerate(g.objects):
            placed = (_placed(b[i], m[i], size) > MASK_THRESHOLD).numpy()
            x0, y0, x1, y1 = (float(v) * size for v in b[i])
            ann = {"id": len(anns) + 1, "image_id": j + 1,
                   "category_id": vocab.object_idx(obj),
                   "bbox": [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)],
                   "area": int(placed.sum()), "iscrowd": 0, "segmentation": _rle(placed)}
            if vocab.attribute_names is not None:
                ann["attributes"] = list(g.attributes[i]) if g.attributes else []
            anns.append(ann)
    out: dict[str, Any] = {"info": dict(info or {}), "images": images, "annotations": anns,
                           "categories": [{"id": i, "name": n, "supercategory": "object"}
                                          for i, n in enumerate(vocab.object_names)
                                          if i != IMAGE_OBJECT_ID and n != NONE_NAME]}
    if vocab.attribute_names is not None:
        out["attributes"] = list(vocab.attribute_names)
    return out


def to_coco(result: GenerationResult, images: Sequence[int] | None = None, *,
            file_names: Sequence[str] | None = None, size: int | None = None) -> dict[str, Any]:
    """:func:`coco_annotations` of images ``images`` (default all) of a ``generate`` result,
    at ``size`` (default the size of its images); ``info`` records the seed."""
    ks = list(range(len(result))) if images is None else list(images)
    size = int(result.tensors.shape[-1]) if size is None else size
    return coco_annotations([as_drawn(result.graphs[k], result.vocab) for k in ks],
                            [result.boxes[k] for k in ks],
                            [result.masks[k] for k in ks], result.vocab, size,
                            file_names=file_names,
                            info={"description": "scene graph layouts predicted by sg2img",
                                  "seed": result.seed})


# --------------------------------------------------------------------------- files
def _json_file(name: str, data: Any) -> LayoutFile:
    return LayoutFile(name, "application/json", (json.dumps(data, indent=1) + "\n").encode())


def layout_files(result: GenerationResult, fmt: str, *, images: Sequence[int] | None = None,
                 names: Sequence[str] | None = None, coco_name: str = "layout_coco.json",
                 size: int | None = None) -> list[LayoutFile]:
    """The files of format ``fmt`` for images ``images`` of a ``generate`` result.

    Per image ``k`` with base name ``names[j]`` (``BASE``): ``gligen`` gives
    ``BASE_gligen.json`` (:func:`to_gligen`); ``seg`` gives ``BASE_seg.png`` and
    ``BASE_seg.json`` (:func:`to_segmentation`, the JSON naming the PNG in ``"image"``);
    ``coco`` gives one ``coco_name`` for all of them (:func:`to_coco`) whose images are named
    ``BASE_s{K}.png`` (K the image's sample number), the names ``sg2img generate`` gives the
    pictures.

    Args:
        result: from ``generate(..., return_layout=True)``.
        fmt: one of :data:`EXPORT_FORMATS`.
        images: which images (default all).
        names: one base name per image; ``"layout_{k:03d}"`` when None.
        coco_name: the COCO file's name.
        size: pixels of the segmentation and COCO images; default the size of the images.

    Raises:
        LayoutExportError: an unknown format, names not one per image, or what the format's
            function raises.
    """
    if fmt not in EXPORT_FORMATS:
        raise LayoutExportError(f"unknown layout format {short(fmt)}; choose one of "
                                f"{', '.join(EXPORT_FORMATS)}")
    ks = list(range(len(result))) if images is None else list(images)
    bases = [f"layout_{k:03d}" for k in ks] if names is None else list(names)
    if len(bases) != len(ks):
        raise LayoutExportError(f"give one name per image: {len(bases)} names for "
                                f"{len(ks)} images")
    if fmt == "coco":
        return [_json_file(coco_name, to_coco(result, ks, size=size,
                                              file_names=[f"{b}_s{result.sample_index[k]}.png"
                                                          for b, k in zip(bases, ks,
                                                                          strict=True)]))]
    files = []
    for k, base in zip(ks, bases, strict=True):
        if fmt == "gligen":
            files.append(_json_file(f"{base}_gligen.json", to_gligen(result, k)))
            continue
        im, info = to_segmentation(result, k, size)
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        files.append(LayoutFile(f"{base}_seg.png", "image/png", buf.getvalue()))
        files.append(_json_file(f"{base}_seg.json", {"image": f"{base}_seg.png", **info}))
    return files


def write_layout(files: Iterable[LayoutFile], out: str | os.PathLike) -> list[Path]:
    """Write ``files`` (from :func:`layout_files`) into the folder ``out``, all or nothing
    (``files.StagedOutput``: on any error, or SIGINT/SIGTERM, ``out`` keeps what it held).

    Returns:
        The paths written, in order.

    Raises:
        OutputError: ``out`` cannot be a folder, or two files have one name.
        DiskFullError: the disk filled up (nothing was written).
    """
    with StagedOutput(out) as stage:
        for f in files:
            stage.path(f.name).write_bytes(f.data)
    return list(stage.paths)

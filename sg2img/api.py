"""The Python API: load a model and generate images from scene graphs.

Quick start::

    from sg2img import generate
    images = generate({"objects": ["sky", "grass", "sheep"],
                       "relationships": [[0, "above", 1], [2, "above", 1]]}, seed=0)
    images[0].save("sheep.png")

``generate`` returns a ``GenerationResult``: a list of PIL images that also carries the
tensors, the boxes and masks that built each image and, when asked, the semantic layouts.
Manipulation by graph edits lives beside the edits, in ``sg2img.manipulation``.

Image size: the model generates at the size it was trained for (``model.image_size``). An
``image_size`` other than that resizes the output images (bicubic, antialiased) and adds no
detail; boxes stay in [0, 1] and layouts stay at the model's size.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from os import PathLike
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from . import vis
from .checkpoint import CheckpointError, build_generator, generator_state, load_checkpoint
from .config import Config
from .files import short
from .layout_head import LAYOUT_MODES, draw_layout_noise
from .model import PRECISIONS
from .scene_graph import (
    DEFAULT_MAX_OBJECTS,
    GraphBatch,
    GraphLike,
    SceneGraph,
    SceneGraphError,
    collate_graphs,
    load_scene_graphs,
)
from .vocab import Vocab

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_MODEL_PATH", "GenerationError", "GenerationResult", "SG2ImgModel",
           "generate", "load_model"]

DEFAULT_MODEL_PATH = Path(__file__).parent / "assets" / "default_model.pt"
DEFAULT_BATCH_SIZE = 32


class GenerationError(ValueError):
    """A bad argument to ``generate`` / ``manipulate`` (device, sizes, boxes, model)."""


# --------------------------------------------------------------------------- model
@dataclass(eq=False)
class SG2ImgModel:
    """A generator ready for inference, with the config and vocabulary it was trained with.

    Attributes:
        generator: the ``GALSGenerator`` in eval mode.
        config: the training config (``config.model`` describes the generator).
        vocab: the object and predicate names the generator knows.
        source: the checkpoint file it was loaded from, if any.
    """

    generator: torch.nn.Module
    config: Config
    vocab: Vocab
    source: str | None = None

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    @property
    def image_size(self) -> int:
        """H = W of the images the generator makes."""
        return int(self.config.model.image_size)

    @property
    def mask_size(self) -> int:
        return int(self.config.model.mask_size)

    @property
    def noise_dim(self) -> int:
        return int(self.config.model.noise_dim)

    @property
    def object_noise_dim(self) -> int:
        """Per-object noise channels (``model.noise="spatial"``); 0 when the model has none."""
        return (int(self.config.model.layout_noise_dim)
                if getattr(self.config.model, "noise", "vector") == "spatial" else 0)

    def to(self, device: str | torch.device) -> SG2ImgModel:
        """Move the generator to ``device`` (in place) and return ``self``."""
        self.generator.to(_check_device(device))
        return self


def _check_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise GenerationError(f"unknown device {device!r}; use 'cpu', 'cuda' or 'cuda:N'") \
            from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise GenerationError(f"device {str(device)!r} requested but CUDA is not available "
                              f"here; use device 'cpu'")
    if dev.type not in ("cpu", "cuda"):
        raise GenerationError(f"device {str(device)!r} is not supported; use 'cpu' or 'cuda'")
    return dev


def load_model(checkpoint: str | PathLike | None = None,
               device: str | torch.device | None = None) -> SG2ImgModel:
    """Load a generator for inference from an sg2img checkpoint or inference export.

    Args:
        checkpoint: a training checkpoint (``ckpt_<step>.pt``; its EMA generator is used) or
            an inference export (``export.pt``); ``None`` for the bundled default model
            ``sg2img/assets/default_model.pt``.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"``; ``None`` picks CUDA when available.

    Returns:
        An ``SG2ImgModel`` in eval mode on ``device``.

    Raises:
        CheckpointError: the file is missing, not an sg2img checkpoint, or its weights do not
            fit its config and vocabulary.
        GenerationError: a bad device.
    """
    dev = _check_device(device)
    if checkpoint is None:
        if not DEFAULT_MODEL_PATH.is_file():
            raise CheckpointError(
                f"the bundled default model is not installed ({DEFAULT_MODEL_PATH} is "
                f"missing); give a checkpoint (--checkpoint RUN/export.pt), e.g. one trained "
                f"with 'sg2img train'")
        checkpoint = DEFAULT_MODEL_PATH
    path = Path(checkpoint)
    ckpt = load_checkpoint(path, map_location="cpu")
    if ckpt.get("kind") not in (None, "training", "inference"):
        raise CheckpointError(f"{path} has unknown checkpoint kind {ckpt.get('kind')!r}")
    _check_vocab_fits(ckpt, path)
    try:
        generator, config, vocab = build_generator(ckpt, map_location="cpu")
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None
    generator.to(dev).eval()
    for p in generator.parameters():
        p.requires_grad_(False)
    logger.info("loaded %s (%s, %dx%d, %d object classes) on %s", path, ckpt.get("kind"),
                config.model.image_size, config.model.image_size, vocab.num_objects, dev)
    return SG2ImgModel(generator, config, vocab, str(path))


def _check_vocab_fits(ckpt: Mapping[str, Any], path: Path) -> None:
    """A clear error when the checkpoint's vocabulary and its embedding tables disagree."""
    vocab_d = ckpt.get("vocab")
    try:
        state = generator_state(ckpt)
    except CheckpointError:
        return  # build_generator reports it
    if not isinstance(vocab_d, Mapping):
        return
    try:
        vocab = Vocab.from_dict(vocab_d)
    except ValueError as e:
        raise CheckpointError(f"{path}: the checkpoint's vocabulary is invalid: {e}") from None
    for key, n, what in (("obj_embeddings.weight", vocab.num_objects, "object"),
                         ("pred_embeddings.weight", vocab.num_preds, "predicate")):
        for k, v in state.items():
            if k.endswith(key) and isinstance(v, Tensor) and v.shape[0] != n:
                raise CheckpointError(
                    f"{path}: vocabulary mismatch: the vocabulary has {n} {what} names but the "
                    f"generator was trained with {v.shape[0]}; the checkpoint's vocab and "
                    f"weights come from different datasets")


_MODEL_CACHE: dict[tuple[str, int, str], SG2ImgModel] = {}


def _resolve_model(model: SG2ImgModel | str | PathLike | None,
                   device: str | torch.device | None) -> SG2ImgModel:
    """A loaded model from a model, a checkpoint path or ``None`` (cached by file and device)."""
    if isinstance(model, SG2ImgModel):
        if device is not None and torch.device(_check_device(device)) != model.device:
            model.to(device)
        return model
    if model is not None and not isinstance(model, (str, PathLike)):
        raise GenerationError(f"model must be a loaded model (sg2img.load_model), a checkpoint "
                              f"path or None, got {type(model).__name__}")
    path = DEFAULT_MODEL_PATH if model is None else Path(model)
    dev = _check_device(device)
    try:
        key = (str(path.resolve()), path.stat().st_mtime_ns, str(dev))
    except OSError:
        return load_model(model, dev)  # raises the CheckpointError for a missing file
    if key not in _MODEL_CACHE:
        _MODEL_CACHE.clear()
        _MODEL_CACHE[key] = load_model(model, dev)
    return _MODEL_CACHE[key]


# --------------------------------------------------------------------------- running
@dataclass
class _Run:
    """Output of one pass, on the CPU, split per image (user objects only, no image node)."""

    images: Tensor                    # (N, 3, H, W) in [-1, 1]
    boxes: list[Tensor]               # N x (O_i, 4)
    masks: list[Tensor]               # N x (O_i, M, M)
    layout: Tensor | None             # (N, C, H, W)


def _encode(graphs: Sequence[SceneGraph], vocab: Vocab) -> list[Any]:
    samples = []
    for i, g in enumerate(graphs):
        try:
            samples.append(g.encode(vocab))
        except SceneGraphError as e:
            raise SceneGraphError(f"graph {i}: {e}" if len(graphs) > 1 else str(e)) from None
    return samples


def _run(model: SG2ImgModel, samples: Sequence[Any], z: Tensor, *,
         override: Tensor | None = None, boxes_override: Tensor | None = None,
         masks_override: Tensor | None = None, keep_layout: bool = False,
         batch_size: int = DEFAULT_BATCH_SIZE, obj_noise: Sequence[Tensor] | None = None,
         layout_mode: str = "mode", layout_noise: Tensor | None = None,
         precision: str = "fp32") -> _Run:
    """Generate images for encoded graphs in chunks of ``batch_size`` images.

    Args:
        samples: N encoded ``GraphSample``s (image node last in each).
        z: (N, noise_dim) noise, on any device.
        override, boxes_override, masks_override: over the concatenated objects of all N
            samples (image nodes included), as ``GALSGenerator.forward`` takes them.
        obj_noise: for models with per-object noise, N tensors (O_i, object_noise_dim), one
            row per object of sample i (image node included); required for them, so that a
            seed fixes every image.
        layout_mode, layout_noise: as ``GALSGenerator.forward`` takes them; the noise is over
            the concatenated objects of all N samples.
        precision: "fp32", or "bf16" to render under bfloat16 autocast (``PRECISIONS``).
    """
    if model.object_noise_dim and obj_noise is None:
        raise GenerationError("internal: a model with per-object noise needs obj_noise")
    dev = model.device
    images, boxes, masks, layouts = [], [], [], []
    counts = [len(s.objs) for s in samples]
    starts = [sum(counts[:i]) for i in range(len(counts) + 1)]
    with torch.inference_mode():
        for lo in range(0, len(samples), batch_size):
            hi = min(lo + batch_size, len(samples))
            batch: GraphBatch = collate_graphs(samples[lo:hi]).to(dev)
            ov = {}
            if override is not None:
                sl = slice(starts[lo], starts[hi])
                ov = {"override": override[sl].to(dev),
                      "boxes_override": boxes_override[sl].to(dev),
                      "masks_override": masks_override[sl].to(dev)}
            if model.object_noise_dim:
                ov["obj_noise"] = torch.cat(list(obj_noise[lo:hi])).to(dev)
            if layout_noise is not None:
                ov["layout_noise"] = layout_noise[starts[lo]:starts[hi]].to(dev)
            out = model.generator(batch, z=z[lo:hi].to(dev), layout_mode=layout_mode,
                                  training_outputs=False, render_dtype=PRECISIONS[precision],
                                  **ov)
            if not bool(torch.isfinite(out.images).all()):
                # Checked before any PNG is written: NaN pixels would save as black images.
                raise GenerationError(f"the model made NaN or infinite pixels (model "
                                      f"{model.source or 'in memory'}); its weights or "
                                      f"inputs are broken, nothing was written")
            images.append(out.images.float().cpu())
            b, m = out.boxes.float().cpu(), out.masks.float().cpu()
            for i in range(hi - lo):
                a, e = starts[lo + i] - starts[lo], starts[lo + i + 1] - starts[lo] - 1
                boxes.append(b[a:e].clone())      # drop the image node (last)
                masks.append(m[a:e].clone())
            if keep_layout:
                layouts.append(out.layout.float().cpu())
    return _Run(torch.cat(images), boxes, masks, torch.cat(layouts) if keep_layout else None)


def _merge_runs(runs: Sequence[_Run], order: Sequence[int]) -> _Run:
    """One ``_Run`` from runs over the images ``order`` lists (run after run), in image
    order."""
    where = sorted(range(len(order)), key=order.__getitem__)   # position of image k
    images = torch.cat([r.images for r in runs])[where]
    boxes = [b for r in runs for b in r.boxes]
    masks = [m for r in runs for m in r.masks]
    layout = (None if runs[0].layout is None
              else torch.cat([r.layout for r in runs])[where])
    return _Run(images, [boxes[j] for j in where], [masks[j] for j in where], layout)


def _draw_noise(num: int, noise_dim: int, seed: int | None) -> tuple[Tensor, int]:
    """(num, noise_dim) standard normal noise drawn on the CPU, so a seed means the same
    noise on every device; a fresh seed is drawn when ``seed`` is None.

    Returns:
        z (num, noise_dim) and the seed used.
    """
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**64:
        raise GenerationError(f"seed must be an integer in 0..2**64 - 1, got {short(seed)}")
    gen = torch.Generator().manual_seed(seed)
    # One draw per image: row k is then the same whatever the number of images (one
    # (num, D) draw would not be, torch's CPU sampler changes method with the size).
    z = torch.stack([torch.randn(noise_dim, generator=gen) for _ in range(num)])
    return z, seed


def _draw_object_noise(samples: Sequence[Any], dim: int, seed: int) -> list[Tensor] | None:
    """Per-object noise for each sample, (O_i, dim), drawn on the CPU from ``seed`` (one
    stream apart from ``z``'s); None when ``dim`` is 0 (the model has no per-object noise)."""
    if not dim:
        return None
    gen = torch.Generator().manual_seed(seed ^ _OBJECT_NOISE_STREAM)
    return [torch.randn(len(s.objs), dim, generator=gen) for s in samples]


_OBJECT_NOISE_STREAM = 0x0B1EC7  # keeps the per-object stream apart from z's for one seed


def _no_object_noise(model: SG2ImgModel, what: str) -> str:
    noise = getattr(model.config.model, "noise", "vector")
    return (f"{what} needs a model trained with model.noise=spatial (per-object noise); this "
            f"model ({model.source or 'in memory'}) uses {noise!r} noise")


def _is_index(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _resample_rows(value: Any, graphs: list[SceneGraph]) -> list[tuple[int, ...]] | None:
    """Per graph, the sorted object indices whose noise ``resample_object`` redraws (None
    when it is None); see ``generate`` for the accepted forms."""
    if value is None:
        return None
    if hasattr(value, "tolist"):
        value = value.tolist()
    form = ("resample_object must be an object index, a list of object indices, or one "
            "entry (an index, a list of indices or None) per graph")
    if _is_index(value):
        per_graph: list | tuple = [[value]] * len(graphs)
    elif isinstance(value, (list, tuple)):
        if not value:
            raise GenerationError("resample_object is an empty list; give at least one object "
                                  "index, or None to resample nothing")
        if all(_is_index(v) for v in value):
            per_graph = [value] * len(graphs)             # the same objects in every graph
        else:
            per_graph = _per_graph(value, graphs, lambda v: False, "resample_object",
                                   "object indices (or null)")
    else:
        raise GenerationError(f"{form}, got {short(value)}")
    out = []
    for i, (g, entry) in enumerate(zip(graphs, per_graph, strict=True)):
        if entry is None:
            out.append(())
            continue
        items = [entry] if _is_index(entry) else entry
        if not isinstance(items, (list, tuple)) or not all(_is_index(v) for v in items):
            raise GenerationError(f"graph {i}: resample_object entry must be an object index, "
                                  f"a list of object indices or None, got {short(entry)}")
        n = len(g.objects)
        for v in items:
            if not 0 <= v < n:
                raise GenerationError(f"graph {i}: resample_object {v} is out of range; the "
                                      f"graph has {n} objects (0..{n - 1})")
        out.append(tuple(sorted(set(items))))
    return out


def _redraw_rows(noise: Tensor, rows: Sequence[int], seed: int, graph: int,
                 sample: int) -> Tensor:
    """A copy of per-object ``noise`` (O, D) with ``rows`` redrawn. Row r of sample
    ``sample`` of graph ``graph`` comes from its own generator, seeded from those four
    numbers: the same look of an object whatever else is resampled or how many samples."""
    out = noise.clone()
    for r in rows:
        key = hashlib.blake2b(f"{seed}/{graph}/{sample}/{r}".encode(), digest_size=8).digest()
        gen = torch.Generator().manual_seed(int.from_bytes(key, "little") >> 1)
        out[r] = torch.randn(noise.shape[1], generator=gen)
    return out


def _resize(images: Tensor, size: int | None, model_size: int) -> Tensor:
    if size is None or size == model_size:
        return images
    if not isinstance(size, int) or isinstance(size, bool) or not 8 <= size <= 4096:
        raise GenerationError(f"image_size must be an integer number of pixels (8..4096), "
                              f"got {size!r}")
    out = F.interpolate(images, size=(size, size), mode="bicubic", align_corners=False,
                        antialias=True)
    return out.clamp(-1.0, 1.0)


def _is_box_entry(x: Any) -> bool:
    return x is None or (isinstance(x, (list, tuple)) and len(x) == 4 and
                         all(isinstance(v, (int, float)) for v in x))


def _apply_boxes(graphs: list[SceneGraph], boxes: Any) -> list[SceneGraph]:
    """Graphs with ``boxes`` pinned (one list of box-or-None per graph, or one list for one
    graph)."""
    if boxes is None:
        return graphs
    if hasattr(boxes, "tolist"):
        boxes = boxes.tolist()
    if not isinstance(boxes, (list, tuple)):
        raise GenerationError(f"boxes must be a list of [x0, y0, x1, y1] (or null) per object, "
                              f"got {type(boxes).__name__}")
    per_graph = _per_graph(boxes, graphs, _is_box_entry, "boxes", "boxes")
    out = []
    for i, (g, bx) in enumerate(zip(graphs, per_graph, strict=True)):
        if bx is None:
            out.append(g)
            continue
        if hasattr(bx, "tolist"):
            bx = bx.tolist()
        try:
            out.append(SceneGraph(g.objects, g.relationships, tuple(bx), g.attributes))
        except SceneGraphError as e:
            raise SceneGraphError(f"boxes for graph {i}: {e}") from None
    return out


def _per_graph(values: list | tuple, graphs: list[SceneGraph], is_entry: Callable[[Any], bool],
               name: str, what: str) -> list | tuple:
    """One entry per graph: ``values`` itself when it is the per-object list of a single graph
    (every item passes ``is_entry``), else ``values`` checked to have one entry per graph."""
    if len(graphs) == 1 and values and all(is_entry(v) for v in values):
        return [values]
    if len(values) != len(graphs):
        raise GenerationError(f"{name} has {len(values)} entries for {len(graphs)} graphs; "
                              f"give one list of {what} per graph")
    return values


def _is_attribute_list(x: Any) -> bool:
    return isinstance(x, (list, tuple)) and all(isinstance(a, str) for a in x)


def _apply_attributes(graphs: list[SceneGraph], attributes: Any) -> list[SceneGraph]:
    """Graphs with new ``attributes`` (per graph one list of names per object, or for one
    graph that list alone)."""
    if attributes is None:
        return graphs
    if not isinstance(attributes, (list, tuple)):
        raise GenerationError(f"attributes must be a list with one list of attribute names per "
                              f"object, got {type(attributes).__name__}")
    per_graph = _per_graph(attributes, graphs, _is_attribute_list, "attributes",
                           "attribute lists")
    out = []
    for i, (g, at) in enumerate(zip(graphs, per_graph, strict=True)):
        if at is None:
            out.append(g)
            continue
        if not isinstance(at, (list, tuple)) or not all(_is_attribute_list(a) for a in at):
            raise GenerationError(f"attributes for graph {i} must be one list of attribute "
                                  f"names per object, got {at!r}")
        try:
            out.append(SceneGraph(g.objects, g.relationships, g.boxes,
                                  tuple(tuple(a) for a in at)))
        except SceneGraphError as e:
            raise SceneGraphError(f"attributes for graph {i}: {e}") from None
    return out


# --------------------------------------------------------------------------- results
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


def generate(graphs: GraphLike | Sequence[GraphLike],
             model: SG2ImgModel | str | PathLike | None = None, *, seed: int | None = None,
             num_samples: int = 1, image_size: int | None = None,
             device: str | torch.device | None = None, boxes: Any = None,
             attributes: Any = None, return_layout: bool = False,
             batch_size: int = DEFAULT_BATCH_SIZE, max_objects: int = DEFAULT_MAX_OBJECTS,
             layout_mode: str | None = None, compile: bool = False,
             resample_object: Any = None, precision: str = "fp32") -> GenerationResult:
    """Generate images from scene graphs.

    All graphs (of any sizes) go through the generator together, ``batch_size`` images per
    forward pass. The noise is drawn on the CPU from ``seed``, so a seed gives the same
    images on the same device; image k uses row k of the noise.

    Args:
        graphs: one graph (a dict in sg2im's JSON form, a ``SceneGraph``, or a path to a JSON
            file with one graph or a list of graphs) or a list of these. Not modified.
        model: a loaded model (``load_model``), a checkpoint path, or ``None`` for the
            bundled default model.
        seed: seed for the noise; ``None`` draws a fresh one (stored in the result).
        num_samples: images per graph (each with its own noise).
        image_size: output size in pixels; the model's size when ``None``. Other sizes resize
            the model's output (bicubic, antialiased).
        device: ``"cpu"`` / ``"cuda"``; ``None`` keeps a loaded model where it is, else picks
            CUDA when available. A loaded model is moved to ``device``.
        boxes: pins boxes: per graph a list with ``[x0, y0, x1, y1]`` in [0, 1] or ``None``
            per object (for one graph, that list alone). Replaces the graphs' own ``boxes``.
        attributes: per graph a list with one list of attribute names per object, e.g.
            ``[[], [], ["red"]]`` (for one graph, that list alone; ``None`` for a graph keeps
            its own). Replaces the graphs' own ``attributes``; needs a model trained with
            attributes.
        return_layout: keep the semantic layouts in ``result.layout``.
        batch_size: images per forward pass.
        max_objects: most objects a graph may have.
        layout_mode: "sample" draws each image's layout from the model's layout distribution
            (from ``seed``: a new seed gives a new arrangement where the graph allows one);
            "mode" takes the most likely layout. ``None``: "sample" when the model's layout
            head samples (``model.layout_head="sample"``), else "mode" (the only layout of a
            "regress" head).
        compile: run the generator through ``torch.compile`` (compiled once per loaded model
            and kept with it). The first call pays the compilation (minutes on a CPU, with a
            C++ compiler); see docs/reports/performance/README.md for when it pays off.
        resample_object: "same scene, another sheep", for models trained with
            ``model.noise=spatial`` (per-object noise). An object index into a graph's
            ``objects`` or a list of indices, for every graph; or, for several graphs, one
            entry per graph (an index, a list of indices, or ``None`` for none). A flat list of
            integers always means those objects in every graph; give one index per graph as
            ``[[2], [0]]``. With it, sample 0 of each graph is exactly the image
            ``generate(graphs, seed=seed)`` (one sample) gives for that graph, and samples
            1..num_samples-1 keep that image's ``z``, layout (and layout noise) and every other
            object's noise, redrawing only the chosen objects' noise (from the seed, the
            graph's position and the sample number): ``generate(g, seed=3, num_samples=4,
            resample_object=2)`` is the scene and three looks of object 2. A graph whose entry
            is ``None`` gets copies of its sample 0.
        precision: "fp32" (exact; the default) or "bf16": render the image under bfloat16
            autocast (the graph network and the layout stay float32, so the layout is the
            same). 1.8-1.9x faster forward on a CPU with AVX512-BF16, with the same FID
            (docs/reports/performance/README.md); slower on CPUs without bf16 instructions.

    Returns:
        A ``GenerationResult`` (a list of PIL images with extras).

    Raises:
        SceneGraphError: a malformed graph, an unknown object or predicate name (the message
            lists the closest names in the model's vocabulary; unknown attributes too), or a
            bad index.
        CheckpointError: the checkpoint cannot be used.
        GenerationError: bad ``num_samples``, ``image_size``, ``boxes``, ``attributes``,
            ``seed``, ``layout_mode``, ``resample_object`` (or a model without per-object
            noise for it), ``precision`` or device.
    """
    if precision not in PRECISIONS:
        raise GenerationError(f"precision must be one of {tuple(PRECISIONS)}, got "
                              f"{precision!r}")
    if layout_mode is not None and layout_mode not in LAYOUT_MODES:
        raise GenerationError(f"layout_mode must be one of {LAYOUT_MODES} or None, got "
                              f"{layout_mode!r}")
    if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples < 1:
        raise GenerationError(f"num_samples must be a positive integer, got {num_samples!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise GenerationError(f"batch_size must be a positive integer, got {batch_size!r}")
    graph_list = _apply_boxes(load_scene_graphs(graphs, max_objects=max_objects), boxes)
    graph_list = _apply_attributes(graph_list, attributes)
    resample = _resample_rows(resample_object, graph_list)
    mdl = _resolve_model(model, device)
    if resample is not None and not mdl.object_noise_dim:
        raise GenerationError(_no_object_noise(mdl, "resample_object"))
    if compile:
        mdl = _compiled(mdl)
    samples = _encode(graph_list, mdl.vocab)
    if image_size is not None:
        _resize(torch.zeros(1, 3, 8, 8), image_size, -1)  # validate before the slow part
    graph_index = [i for i in range(len(graph_list)) for _ in range(num_samples)]
    sample_index = [s for _ in graph_list for s in range(num_samples)]
    # The noise is drawn for ``drawn`` images (graph ids) and image k takes draw pick[k]:
    # one draw per image, or with resample_object one per graph (a num_samples=1 call's
    # draws), shared by that graph's samples.
    drawn, pick = graph_index, list(range(len(graph_index)))
    if resample is not None:
        drawn, pick = list(range(len(graph_list))), graph_index
    z, seed = _draw_noise(len(drawn), mdl.noise_dim, seed)
    z = z[pick]
    mode = layout_mode or ("sample" if getattr(mdl.generator, "samples_layout", False)
                           else "mode")
    layout_noise = None
    if mode == "sample":
        # Its own stream (seed + 2**32), one draw per image: image k's layout depends only
        # on the seed and the graphs before it, not on batch_size.
        g = torch.Generator().manual_seed((seed + 2**32) % 2**64)
        drawn_layout = [draw_layout_noise(len(samples[i].objs), g) for i in drawn]
        layout_noise = [drawn_layout[p] for p in pick]
    all_samples = [samples[i] for i in graph_index]
    obj_noise = _draw_object_noise([samples[i] for i in drawn], mdl.object_noise_dim, seed)
    if obj_noise is not None:
        obj_noise = [obj_noise[p] for p in pick]
        if resample is not None:
            obj_noise = [_redraw_rows(n, resample[i], seed, i, s) if s else n
                         for n, i, s in zip(obj_noise, graph_index, sample_index, strict=True)]

    def run_images(ks: list[int], layout_of: _Run | None = None) -> _Run:
        ov: dict[str, Tensor] = {}
        if layout_of is not None:  # image ks[j] takes the boxes and masks of layout_of's j
            M = mdl.mask_size
            ov = {"boxes_override": torch.cat([torch.cat([b, b.new_tensor([[0, 0, 1, 1]])])
                                               for b in layout_of.boxes]),
                  "masks_override": torch.cat([torch.cat([m, m.new_ones(1, M, M)])
                                               for m in layout_of.masks])}
            ov["override"] = torch.ones(len(ov["boxes_override"]), dtype=torch.bool)
        return _run(mdl, [all_samples[k] for k in ks], z[ks],
                    obj_noise=None if obj_noise is None else [obj_noise[k] for k in ks],
                    keep_layout=return_layout, batch_size=batch_size, layout_mode=mode,
                    layout_noise=None if layout_noise is None
                    else torch.cat([layout_noise[k] for k in ks]), precision=precision, **ov)

    everything = list(range(len(graph_index)))
    if resample is None:
        run = run_images(everything)
    else:
        # Samples 0 go through the generator in the very batches a num_samples=1 call makes,
        # so they are that call's images bit for bit. The other samples take their sample
        # 0's boxes and masks exactly (another batch could round them differently).
        first = [k for k in everything if sample_index[k] == 0]
        rest = [k for k in everything if sample_index[k] > 0]
        run = run_images(first)
        if rest:
            at = {graph_index[k]: j for j, k in enumerate(first)}
            src = [at[graph_index[k]] for k in rest]
            layout_of = _Run(run.images, [run.boxes[j] for j in src],
                             [run.masks[j] for j in src], None)
            run = _merge_runs([run, run_images(rest, layout_of)], first + rest)
    tensors = _resize(run.images, image_size, mdl.image_size)
    pil = vis.to_pil(tensors)
    return GenerationResult(pil, tensors, run.boxes, run.masks, run.layout,
                            [graph_list[i] for i in graph_index], graph_index, sample_index,
                            z, seed, mdl.vocab)


def _compiled(model: SG2ImgModel) -> SG2ImgModel:
    """``model`` with its generator wrapped by ``torch.compile``, cached on ``model`` (the
    wrapper shares the generator's parameters)."""
    cached = model.__dict__.get("_compiled")
    if cached is None:
        cached = replace(model, generator=torch.compile(model.generator, dynamic=True))
        model.__dict__["_compiled"] = cached
    return cached


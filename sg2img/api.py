"""The Python API: load a model and generate images from scene graphs.

Quick start::

    from sg2img import generate
    images = generate({"objects": ["sky", "grass", "sheep"],
                       "relationships": [[0, "above", 1], [2, "above", 1]]}, seed=0)
    images[0].save("sheep.png")

``generate`` returns a ``GenerationResult``: a list of PIL images that also carries the
tensors, the boxes and masks that built each image and, when asked, the semantic layouts.
Manipulation by graph edits lives beside the edits, in ``sg2img.manipulation``. The seeded
noise is drawn in ``sg2img.noise``, the per-graph arguments are checked in
``sg2img.generate_args`` and the result is ``sg2img.result.GenerationResult``; ``load_model``,
``generate`` and the generator runs that ``manipulate`` shares stay here.

Image size: the model generates at the size it was trained for (``model.renderer.image_size``). An
``image_size`` other than that resizes the output images (bicubic, antialiased) and adds no
detail; boxes stay in [0, 1] and layouts stay at the model's size.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from os import PathLike
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from . import vis
from .bundled import BUNDLED_MODELS, DEFAULT_NAME, checkpoint_path
from .checkpoint import CheckpointError, build_generator, generator_state, load_checkpoint
from .config import Config
from .generate_args import (
    GenerationError,
    apply_attributes,
    apply_boxes,
    check_image_count,
    check_sample_number,
    resample_rows,
)
from .layout_head import LAYOUT_MODES
from .model import PRECISIONS
from .noise import SampleNoise, check_seed, draw_sample_noise, graph_key, redraw_rows
from .result import GenerationResult
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

DEFAULT_MODEL_PATH = BUNDLED_MODELS[DEFAULT_NAME].path
DEFAULT_BATCH_SIZE = 32


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
        return int(self.config.model.renderer.image_size)

    @property
    def mask_size(self) -> int:
        return int(self.config.model.layout.mask_size)

    @property
    def noise_dim(self) -> int:
        return int(self.config.model.renderer.noise_dim)

    @property
    def object_noise_dim(self) -> int:
        """Per-object noise channels (``model.renderer.noise="spatial"``); 0 without them."""
        return (int(self.config.model.renderer.layout_noise_dim)
                if self.config.model.renderer.noise == "spatial" else 0)

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
            an inference export (``export.pt``); or a bundled model's name, ``"default"``
            (64 px, what ``None`` means) or ``"default-128"`` (128 px), see
            :mod:`sg2img.bundled`.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"``; ``None`` picks CUDA when available.

    Returns:
        An ``SG2ImgModel`` in eval mode on ``device``.

    Raises:
        CheckpointError: the file is missing, not an sg2img checkpoint, or its weights do not
            fit its config and vocabulary; a bundled model that is not installed.
        GenerationError: a bad device.
    """
    dev = _check_device(device)
    path = checkpoint_path(checkpoint)
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
                config.model.renderer.image_size, config.model.renderer.image_size,
                vocab.num_objects, dev)
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


def resolve_model(model: SG2ImgModel | str | PathLike | None,
                   device: str | torch.device | None) -> SG2ImgModel:
    """A loaded model from a model, a checkpoint path or ``None`` (cached by file and device)."""
    if isinstance(model, SG2ImgModel):
        if device is not None and torch.device(_check_device(device)) != model.device:
            model.to(device)
        return model
    if model is not None and not isinstance(model, (str, PathLike)):
        raise GenerationError(f"model must be a loaded model (sg2img.load_model), a checkpoint "
                              f"path or None, got {type(model).__name__}")
    path = checkpoint_path(model)
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


def encode_each(graphs: Sequence[SceneGraph], vocab: Vocab) -> list[Any]:
    """One ``GraphSample`` per graph; an error in graph i of several names it (``graph i``).

    Raises:
        SceneGraphError: a name not in ``vocab``.
    """
    samples = []
    for i, g in enumerate(graphs):
        try:
            samples.append(g.encode(vocab))
        except SceneGraphError as e:
            raise e.in_graph(i) if len(graphs) > 1 else e from None
    return samples


def run_generator(model: SG2ImgModel, samples: Sequence[Any], z: Tensor, *,
                  override: Tensor | None = None, boxes_override: Tensor | None = None,
                  masks_override: Tensor | None = None, keep_layout: bool = False,
                  batch_size: int = DEFAULT_BATCH_SIZE,
                  obj_noise: Sequence[Tensor] | None = None, layout_mode: str = "mode",
                  layout_noise: Tensor | None = None, precision: str = "fp32") -> _Run:
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


def default_layout_mode(model: SG2ImgModel, layout_mode: str | None) -> str:
    """``layout_mode``, or for None the model's own: "sample" when its layout head samples
    (``model.layout.head="sample"``), else "mode"."""
    if layout_mode is not None:
        if layout_mode not in LAYOUT_MODES:
            raise GenerationError(f"layout_mode must be one of {LAYOUT_MODES} or None, got "
                                  f"{layout_mode!r}")
        return layout_mode
    return "sample" if getattr(model.generator, "samples_layout", False) else "mode"


def no_object_noise_message(model: SG2ImgModel, what: str) -> str:
    """Why ``what`` (``"resample_object"``, ``"resample"``) cannot run on ``model``."""
    noise = model.config.model.renderer.noise
    return (f"{what} needs a model trained with model.renderer.noise=spatial (per-object "
            f"noise); this model ({model.source or 'in memory'}) uses {noise!r} noise")



def resize_images(images: Tensor, size: int | None, model_size: int) -> Tensor:
    """``images`` (N, 3, H, W) in [-1, 1] resized to ``size`` (bicubic, antialiased); as they
    are when ``size`` is None or ``model_size``.

    Raises:
        GenerationError: ``size`` is not an integer in 8..4096.
    """
    if size is None or size == model_size:
        return images
    if not isinstance(size, int) or isinstance(size, bool) or not 8 <= size <= 4096:
        raise GenerationError(f"image_size must be an integer number of pixels (8..4096), "
                              f"got {size!r}")
    out = F.interpolate(images, size=(size, size), mode="bicubic", align_corners=False,
                        antialias=True)
    return out.clamp(-1.0, 1.0)




def generate(graphs: GraphLike | Sequence[GraphLike],
             model: SG2ImgModel | str | PathLike | None = None, *, seed: int | None = None,
             num_samples: int = 1, first_sample: int = 0, image_size: int | None = None,
             device: str | torch.device | None = None, boxes: Any = None,
             attributes: Any = None, return_layout: bool = False,
             batch_size: int = DEFAULT_BATCH_SIZE, max_objects: int = DEFAULT_MAX_OBJECTS,
             layout_mode: str | None = None, compile: bool = False,
             resample_object: Any = None, precision: str = "fp32") -> GenerationResult:
    """Generate images from scene graphs.

    All graphs (of any sizes) go through the generator together, ``batch_size`` images per
    forward pass. The seed rule (``sg2img.noise``): sample k of a graph under seed s depends
    only on the model, the graph's objects and relationships, s and k; never on the other
    graphs in the call, on ``num_samples`` or on ``batch_size`` (which may change float
    rounding, not the noise). The noise is drawn on the CPU, so a seed gives the same images
    on the same device.

    Args:
        graphs: one graph (a dict in sg2im's JSON form, a ``SceneGraph``, or a path to a JSON
            file with one graph or a list of graphs) or a list of these. Not modified.
        model: a loaded model (``load_model``), a checkpoint path, a bundled model's name
            (``"default-128"``: 128 px), or ``None`` for the bundled 64 px default model.
        seed: seed for the noise; ``None`` draws a fresh one (stored in the result).
        num_samples: images per graph (each with its own noise); graphs x ``num_samples`` is
            at most ``$SG2IMG_MAX_IMAGES`` (2048), since every image is held until the end.
        first_sample: the number of the first sample: the images of each graph are samples
            ``first_sample .. first_sample + num_samples - 1`` (``first_sample=3`` alone
            redraws sample 3 of a ``num_samples=4`` call).
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
            (from the seed and sample: another sample or seed gives another arrangement where
            the graph allows one);
            "mode" takes the most likely layout. ``None``: "sample" when the model's layout
            head samples (``model.layout.head="sample"``), else "mode" (the only layout of a
            "regress" head).
        compile: run the generator through ``torch.compile`` (compiled once per loaded model
            and kept with it). The first call pays the compilation (minutes on a CPU, with a
            C++ compiler); see docs/reports/performance/README.md for when it pays off.
        resample_object: "same scene, another sheep", for models trained with
            ``model.renderer.noise=spatial`` (per-object noise). An object index into a graph's
            ``objects`` or a list of indices, for every graph; or, for several graphs, one
            entry per graph (an index, a list of indices, or ``None`` for none). A flat list of
            integers always means those objects in every graph; give one index per graph as
            ``[[2], [0]]``. With it, sample 0 of each graph is exactly the image
            ``generate(graphs, seed=seed)`` (one sample) gives for that graph, and samples
            1..num_samples-1 keep that image's ``z``, layout (and layout noise) and every other
            object's noise, redrawing only the chosen objects' noise (from the seed, the
            graph's content and the sample number): ``generate(g, seed=3, num_samples=4,
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
    check_sample_number(first_sample, num_samples)
    seed = check_seed(seed)
    graph_list = load_scene_graphs(graphs, max_objects=max_objects)
    check_image_count(len(graph_list), num_samples)
    graph_list = apply_boxes(graph_list, boxes)
    graph_list = apply_attributes(graph_list, attributes)
    resample = resample_rows(resample_object, graph_list)
    mdl = resolve_model(model, device)
    if resample is not None and not mdl.object_noise_dim:
        raise GenerationError(no_object_noise_message(mdl, "resample_object"))
    if compile:
        mdl = _compiled(mdl)
    samples = encode_each(graph_list, mdl.vocab)
    if image_size is not None:
        resize_images(torch.zeros(1, 3, 8, 8), image_size, -1)  # validate before the slow part
    mode = default_layout_mode(mdl, layout_mode)
    keys = [graph_key(s.objs, s.triples) for s in samples]
    graph_index = [i for i in range(len(graph_list)) for _ in range(num_samples)]
    sample_index = [first_sample + j for _ in graph_list for j in range(num_samples)]
    drawn: dict[tuple[int, int], SampleNoise] = {}

    def noise_of(i: int, k: int) -> SampleNoise:
        """Sample k of graph i's noise (the seed rule). With resample_object every sample
        is sample 0's noise with the chosen objects' rows redrawn for sample k."""
        base = 0 if resample is not None else k
        if (i, base) not in drawn:
            drawn[i, base] = draw_sample_noise(seed, keys[i], base, len(samples[i].objs),
                                               mdl.noise_dim, mdl.object_noise_dim,
                                               layout=mode == "sample")
        n = drawn[i, base]
        if resample is not None and k and n.objects is not None:
            n = replace(n, objects=redraw_rows(n.objects, resample[i], seed, keys[i], k))
        return n

    noise = [noise_of(i, k) for i, k in zip(graph_index, sample_index, strict=True)]
    z = torch.stack([n.z for n in noise])
    run = run_generator(
        mdl, [samples[i] for i in graph_index], z,
        obj_noise=[n.objects for n in noise] if mdl.object_noise_dim else None,
        keep_layout=return_layout, batch_size=batch_size, layout_mode=mode,
        layout_noise=torch.cat([n.layout for n in noise]) if mode == "sample" else None,
        precision=precision)
    tensors = resize_images(run.images, image_size, mdl.image_size)
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


"""The evaluation loop: :func:`evaluate` a generator on a dataset with the registered metrics.

:func:`evaluate` runs the generator over a dataset once per sample and feeds the outputs to the
metrics :class:`EvalOptions` names; :func:`evaluate_checkpoint` (what ``sg2img evaluate`` runs)
builds the generator and the dataset from a checkpoint, :func:`evaluate_box_file` scores other
systems' layouts.

The generator contract (``sg2img.model.GALSGenerator``)::

    out = generator(batch, use_gt_layout=False, rng=torch_generator)
    out.images      # (N, 3, H, W) in [-1, 1]
    out.boxes_pred  # (O, 4) in [0, 1], predicted from the scene graph

Results are deterministic for a seed: the noise comes from one ``torch.Generator`` seeded with
``seed``, the dataset is read in order, and datasets that sample per item (relationships,
object subsets) draw from a global torch RNG seeded with ``seed`` inside a fork, so the
caller's RNG state is left untouched.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from os import PathLike
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..layout_head import check_layout_mode
from ..model import PRECISIONS, GALSGenerator
from ..noise import batch_noise
from ..scene_graph import GraphBatch, collate_graphs
from .attributes import AttributeAccuracy, AttributeSwap
from .box_file import match_box_file, score_box_pairs, write_box_file
from .boxes import (
    DEFAULT_RECALL_THRESHOLDS,
    mean_class_box_recall,
    mean_class_boxes,
    real_object_mask,
)
from .context import EvalContext, unpinned
from .diversity import Diversity
from .faith_score import COCO_DETECTOR_ARCH
from .faithfulness import Faithfulness
from .image_quality import FID, InceptionScore
from .layout_metrics import LayoutQuality, LayoutRecall, LayoutScores
from .nets import FeatureExtractor, SceneFeatureNet
from .object_accuracy import ObjectAccuracy
from .registry import METRICS, register_metric
from .relation_swap import RelationSwap
from .report import write_report
from .streaks import Streaks

# The built-in metrics, registered here in report order: the order of a report's metrics,
# protocols and Markdown rows. Other metrics plug in with the @register_metric decorator.
for _name, _metric in (("layout_recall", LayoutRecall), ("fid", FID), ("is", InceptionScore),
                       ("obj_acc", ObjectAccuracy), ("diversity", Diversity),
                       ("layout", LayoutQuality), ("attr_acc", AttributeAccuracy),
                       ("attr_swap", AttributeSwap), ("faithfulness", Faithfulness),
                       ("relation_swap", RelationSwap), ("streaks", Streaks)):
    register_metric(_name)(_metric)
del _name, _metric

DEFAULT_METRICS = tuple(n for n, m in METRICS.items() if not m.needs_attributes and m.default)
ATTRIBUTE_METRICS = tuple(n for n, m in METRICS.items() if m.needs_attributes and m.default)


def default_metrics(dataset_vocab: Any, generator: nn.Module | None = None) -> tuple[str, ...]:
    """:data:`DEFAULT_METRICS`, plus the attribute metrics when the dataset has attributes and
    the generator uses them (it has an attribute embedding)."""
    has = getattr(dataset_vocab, "attribute_names", None) is not None
    uses = generator is None or getattr(generator, "attr_embeddings", None) is not None
    return DEFAULT_METRICS + (ATTRIBUTE_METRICS if has and uses else ())


PROTOCOLS = {name: cls.protocol for name, cls in METRICS.items()}
PROTOCOLS["layout_recall_baseline"] = (
    "the layout_recall protocol applied to a baseline that puts every object at its "
    "class's mean ground-truth box over the training split")


@dataclass
class EvalOptions:
    """How :func:`evaluate` scores a generator; every field has the recommended default.

    Attributes:
        metrics: names from :data:`METRICS`; None: :func:`default_metrics` of the dataset's
            vocabulary and the generator.
        samples_per_graph: K images generated per graph for FID, IS and obj_acc (diversity
            always uses two samples, drawing a second one when K is 1).
        batch_size: graphs per generator call.
        seed: seeds the generator's noise and the IS split shuffle.
        device: where the generator and the evaluation networks run.
        use_gt_layout: generate from the ground-truth layout instead of the predicted one
            (layout recall always scores the predicted boxes).
        feature_net: FID/IS network: a ``FeatureExtractor``, a ``SceneFeatureNet`` or the
            path of one saved by ``save_eval_net``; None picks our shipped SceneFeatureNet
            when the dataset's vocabulary is the procedural one, else InceptionV3 from
            ``inception_weights`` or the torch hub cache.
        classifier: object classifier (``CropClassifier``-like: (K, 3, S, S) in [-1, 1] ->
            (K, C) logits) or the path of a saved ``CropClassifier``; None loads the shipped
            procedural one.
        attribute_classifier: for ``attr_acc`` / ``attr_swap``: an ``AttributeClassifier``
            or its file; None loads the shipped procedural one.
        lpips_net: a torchmetrics LPIPS metric (``update(a, b)``, ``compute()``); None builds
            one from ``lpips_weights`` or the torch hub cache, or skips LPIPS with a note.
        inception_weights: ``weights-inception-2015-12-05-6726825d.pth`` for FID/IS.
        lpips_weights: torchvision's ``alexnet-owt-7be5be79.pth`` for LPIPS.
        split: recorded in the report.
        is_splits: IS splits (capped at the number of generated images).
        recall_thresholds: layout recall IoU thresholds (strictly above).
        boxes_out: if given, the predicted boxes are written there as a box file
            (:func:`sg2img.eval.write_box_file`); needs ``layout_recall``.
        num_workers: DataLoader workers.
        progress: show a tqdm progress bar.
        precision: "fp32", or "bf16" to render the images under bfloat16 autocast as
            ``generate(precision="bf16")`` does (the generator must take ``render_dtype``).
        layout_mode: "mode" renders every image from the most likely layout; "sample" from
            a layout sampled per image (the generator must take ``layout_mode``); None (the
            default) as ``generate()`` draws: "sample" for a generator whose layout head
            samples, else "mode", so FID and diversity see the layouts users get. Layout
            metrics score the mode either way (``layout`` also scores
            samples of its own).
        layout_diagnostics: the ``layout`` metric also says where the mode's small-object
            misses come from (``small_swap``: :func:`swap_diagnosis` and the recall with every
            other object pinned to its true box); needs a generator with ``layout_boxes``.
        detector: for ``faithfulness`` / ``relation_swap``: a detector
            (``sg2img.eval.SceneDetector``), or a weights file: an sg2img detector file or a
            torchvision COCO state dict (real datasets; things only); None: the shipped
            procedural detector.
        detector_arch: the torchvision builder a COCO state dict is for.
        faithfulness_sheet: if given, ``faithfulness`` writes its debug sheet (detections over
            the first images, beside their graphs) to this PNG.
    """

    metrics: Sequence[str] | None = None
    samples_per_graph: int = 1
    batch_size: int = 32
    seed: int = 0
    device: str | torch.device = "cpu"
    use_gt_layout: bool = False
    feature_net: FeatureExtractor | SceneFeatureNet | str | PathLike | None = None
    classifier: nn.Module | str | PathLike | None = None
    attribute_classifier: nn.Module | str | PathLike | None = None
    lpips_net: Any | None = None
    inception_weights: str | PathLike | None = None
    lpips_weights: str | PathLike | None = None
    split: str | None = None
    is_splits: int = 10
    recall_thresholds: Sequence[float] = DEFAULT_RECALL_THRESHOLDS
    boxes_out: str | PathLike | None = None
    num_workers: int = 0
    progress: bool = True
    precision: str = "fp32"
    layout_mode: str | None = None
    layout_diagnostics: bool = False
    detector: Any = None
    detector_arch: str = COCO_DETECTOR_ARCH
    faithfulness_sheet: str | PathLike | None = None


def seed_rule_noise(generator: nn.Module, batch: GraphBatch, seed: int, sample: int,
                    layout_mode: str) -> dict[str, torch.Tensor]:
    """Draw ``sample`` of every graph of ``batch`` as ``generate`` draws it (the seed rule
    of ``sg2img.noise``), as ``forward`` keyword arguments on the batch's device; empty for
    other generators (they draw from the ``rng`` they are given)."""
    # A wrapper that renders through a model (e.g. ``LayoutSource``) names it.
    generator = getattr(generator, "seed_rule_model", generator)
    if not isinstance(generator, GALSGenerator):
        return {}
    ren = generator.cfg.renderer
    noise = batch_noise(batch.objs, batch.triples, batch.obj_to_img, batch.num_images,
                        seed=seed, sample=sample, noise_dim=generator.noise_dim,
                        object_noise_dim=ren.layout_noise_dim if ren.noise == "spatial" else 0,
                        layout=layout_mode == "sample")
    return {k: v.to(batch.objs.device) for k, v in noise.items()}


def evaluate(generator: nn.Module, dataset: Dataset, options: EvalOptions | None = None
             ) -> dict[str, Any]:
    """Score a generator on a dataset split with the registered metrics (:data:`METRICS`).

    Args:
        generator: follows the contract of the package docstring; put in eval mode for the run
            (its mode is restored afterwards).
        dataset: items are ``GraphSample`` with ``image (3, H, W)`` in [-1, 1], ``objs``,
            ``boxes`` (and the ``__image__`` node last); its ``.vocab`` (if any) is checked
            against the evaluation networks.
        options: how to evaluate (:class:`EvalOptions`); None takes every default.

    Returns:
        The report: run information (split, seed, image size, numbers of real and generated
        images, samples per graph, feature network) and ``"metrics"`` keyed by metric name,
        with ``"protocols"`` naming how each was computed.

    Raises:
        ValueError: unknown metric names, bad arguments, or a generator whose images do not
            match the dataset's size.
        EvalWeightsError: a network a requested metric needs is missing (the message says how
            to provide it or which metric to leave out).
    """
    o = EvalOptions() if options is None else options
    vocab = getattr(dataset, "vocab", None)
    metrics = tuple(default_metrics(vocab, generator) if o.metrics is None else o.metrics)
    samples_per_graph, seed, precision, layout_mode = (o.samples_per_graph, o.seed, o.precision,
                                                       o.layout_mode)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        raise ValueError(f"unknown metrics {unknown}; choose from {list(METRICS)}")
    if samples_per_graph < 1:
        raise ValueError(f"samples_per_graph must be >= 1, got {samples_per_graph}")
    if len(dataset) < 2 and ("fid" in metrics or "is" in metrics):
        raise ValueError(f"FID and IS need at least 2 images, the dataset has {len(dataset)}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {tuple(PRECISIONS)}, got {precision!r}")
    if layout_mode is None:     # as generate() draws (sg2img.api.default_layout_mode)
        layout_mode = "sample" if getattr(generator, "samples_layout", False) else "mode"
    check_layout_mode(layout_mode)
    device = torch.device(o.device)
    render_kwargs: dict[str, Any] = {}
    if PRECISIONS[precision] is not None:
        render_kwargs["render_dtype"] = PRECISIONS[precision]
    if layout_mode != "mode":
        render_kwargs["layout_mode"] = layout_mode
    render = functools.partial(generator, **render_kwargs) if render_kwargs else generator
    ctx = EvalContext(device=device, seed=seed, samples_per_graph=samples_per_graph,
                      object_names=tuple(vocab.object_names) if vocab is not None else None,
                      feature_net=o.feature_net, classifier=o.classifier, lpips_net=o.lpips_net,
                      inception_weights=o.inception_weights, lpips_weights=o.lpips_weights,
                      is_splits=o.is_splits, recall_thresholds=o.recall_thresholds,
                      pred_names=tuple(vocab.pred_names) if vocab is not None else None,
                      attribute_names=(None if vocab is None or vocab.attribute_names is None
                                       else tuple(vocab.attribute_names)),
                      attribute_classifier=o.attribute_classifier, generator=render,
                      model=generator, layout_mode=layout_mode,
                      layout_diagnostics=o.layout_diagnostics, use_gt_layout=o.use_gt_layout,
                      stuff_names=tuple(getattr(vocab, "stuff_names", None) or ()),
                      detector=o.detector, detector_arch=o.detector_arch,
                      faithfulness_sheet=o.faithfulness_sheet,
                      image_size=_image_size(generator, dataset))
    # Build every metric (and its networks) before generating anything: a missing file
    # fails fast.
    active = {name: METRICS[name](ctx) for name in metrics}
    num_draws = max([samples_per_graph] + [m.num_draws for m in active.values()])

    # Datasets that sample per item (relationships, object subsets) draw from torch's global
    # RNG or, in workers, from seeds DataLoader derives from `generator`: seed both.
    loader = DataLoader(dataset, batch_size=o.batch_size, shuffle=False,
                        num_workers=o.num_workers,
                        collate_fn=collate_graphs, generator=torch.Generator().manual_seed(seed))
    noise = torch.Generator(device=device).manual_seed(seed)
    image_size = None
    was_training = generator.training
    generator.eval()
    try:
        from tqdm.auto import tqdm

        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for batch in tqdm(loader, desc="evaluate", disable=not o.progress):
                batch = batch.to(device)
                if batch.images is None:
                    raise ValueError("evaluation needs the real images; the dataset items have "
                                     "no 'image'")
                # Boxes "predicted from the scene graph alone": no box is pinned.
                gen_batch = unpinned(batch)
                outs = [render(gen_batch, use_gt_layout=o.use_gt_layout, rng=noise,
                               **seed_rule_noise(generator, gen_batch, seed, k, layout_mode))
                        for k in range(num_draws)]
                image_size = _check_sizes(batch, outs, image_size)
                for metric in active.values():
                    metric.update(batch, outs)
    finally:
        generator.train(was_training)

    results = {name: metric.compute() for name, metric in active.items()}
    if o.boxes_out is not None:
        if "layout_recall" not in active:
            raise ValueError("boxes_out needs the layout_recall metric")
        write_box_file(o.boxes_out, active["layout_recall"].by_image)
    num_graphs = len(dataset)
    return {
        "split": o.split,
        "seed": seed,
        "image_size": image_size,
        "num_graphs": num_graphs,
        "num_real_images": num_graphs,
        "num_generated_images": num_graphs * samples_per_graph,
        "samples_per_graph": samples_per_graph,
        "use_gt_layout": o.use_gt_layout,
        "precision": precision,
        "layout_mode": layout_mode,
        "feature_network": ctx.feature_network_name(),
        "metrics": results,
        "protocols": {name: metric.protocol for name, metric in active.items()},
    }


def _image_size(generator: Any, dataset: Any) -> int:
    """The side of the images scored, before any is drawn (it picks the shipped nets)."""
    for source in (generator, dataset):
        size = getattr(source, "image_size", None)
        if isinstance(size, int):
            return size
    return 64


def _check_sizes(batch: GraphBatch, outs: list[Any], image_size: int | None) -> int:
    real = tuple(batch.images.shape[-2:])
    for out in outs:
        if tuple(out.images.shape) != tuple(batch.images.shape):
            raise ValueError(f"the generator made images of shape {tuple(out.images.shape)} "
                             f"but the real batch is {tuple(batch.images.shape)}; build the "
                             f"dataset at the generator's image size")
    if real[0] != real[1]:
        raise ValueError(f"expected square images, got {real}")
    if image_size is not None and image_size != real[0]:
        raise ValueError(f"image size changed within the dataset: {image_size} then {real[0]}")
    return real[0]



def evaluate_checkpoint(checkpoint: str | PathLike, data_root: str | PathLike | None = None,
                        split: str = "val", *, options: EvalOptions | None = None,
                        out: str | PathLike | None = None,
                        device: str | torch.device | None = None,
                        layout_baseline: bool = False, **overrides: Any) -> dict[str, Any]:
    """``sg2img evaluate``: load a checkpoint, build its dataset split, evaluate, write.

    The dataset is built with the checkpoint's data config (``data_root`` replaces its root)
    at the checkpoint's image and mask size, and must have the checkpoint's vocabulary.

    Args:
        checkpoint: a training checkpoint or an inference export, or a bundled model's name
            (``"default"``, ``"default-128"``, :mod:`sg2img.bundled`).
        data_root: dataset directory; None uses the one in the checkpoint's config.
        split: ``"val"`` or ``"test"`` (any split the dataset has).
        out: if given, the report is written there (:func:`write_report`).
        device: where to run (None: CUDA when available, else the CPU).
        layout_baseline: also score the mean-class-box baseline (each class's mean box over
            the training split) under ``metrics["layout_recall_baseline"]``.
        options: how to evaluate (:class:`EvalOptions`; its ``split`` and ``device`` are
            replaced by the arguments here).
        **overrides: :class:`EvalOptions` fields replaced in ``options`` (metrics,
            samples_per_graph, seed, ...); ``metrics`` None (or left out) means
            :func:`default_metrics`.

    Returns:
        The report, with ``checkpoint`` and ``data`` added.

    Raises:
        sg2img.checkpoint.CheckpointError: the checkpoint cannot be read.
        ValueError: the dataset's vocabulary is not the checkpoint's.
    """
    from ..bundled import checkpoint_path
    from ..checkpoint import build_generator
    from ..data import build_dataset

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    generator, config, vocab = build_generator(checkpoint_path(checkpoint), map_location=device)
    data_cfg = config.data if data_root is None else replace(config.data, root=str(data_root))
    dataset = build_dataset(data_cfg, split, config.model.renderer.image_size,
                            config.model.layout.mask_size)
    data_vocab = getattr(dataset, "vocab", None)
    if data_vocab is not None and tuple(data_vocab.object_names) != tuple(vocab.object_names):
        raise ValueError(f"the dataset at {data_cfg.root} has another object vocabulary "
                         f"({data_vocab.num_objects} slots) than the checkpoint "
                         f"({vocab.num_objects}); evaluate on the dataset it was trained on")
    if (data_vocab is not None and data_vocab.attribute_names is not None
            and getattr(generator, "attr_embeddings", None) is not None
            and tuple(data_vocab.attribute_names) != tuple(vocab.attribute_names or ())):
        raise ValueError(f"the dataset at {data_cfg.root} has other attribute names than the "
                         f"checkpoint ({data_vocab.num_attributes} vs {vocab.num_attributes}); "
                         f"evaluate on the dataset it was trained on")
    options = replace(options or EvalOptions(), split=split, device=device, **overrides)
    report = evaluate(generator.to(device), dataset, options)
    report = {"checkpoint": str(checkpoint), "data": str(data_cfg.root), **report}
    if layout_baseline:
        train = build_dataset(data_cfg, "train", config.model.renderer.image_size,
                              config.model.layout.mask_size)
        class_boxes = mean_class_boxes(train, vocab.num_objects)
        report["metrics"]["layout_recall_baseline"] = mean_class_box_recall(
            class_boxes, dataset, options.recall_thresholds)
        report["protocols"]["layout_recall_baseline"] = PROTOCOLS["layout_recall_baseline"]
    if out is not None:
        write_report(report, out)
    return report


def evaluate_box_file(box_file: str | PathLike, dataset: Dataset, *, split: str | None = None,
                      thresholds: Sequence[float] = DEFAULT_RECALL_THRESHOLDS,
                      seed: int = 0, out: str | PathLike | None = None) -> dict[str, Any]:
    """Layout metrics of another system's boxes (a box file, see :mod:`sg2img.eval.box_file`).

    Scores the boxes as the layout a model would have predicted: ``layout_recall`` and the
    ``layout`` metric's relation satisfaction, box-size fidelity and R@t of all and of small
    objects, with the ground truth's scores as the ceiling. Datasets that draw each item's
    relationships at random (the COCO format) draw them here as ``sg2img evaluate --seed``
    does, so a box file written by ``evaluate --boxes-out`` with the same seed is scored
    against the graphs it was predicted from.

    Returns:
        A report in :func:`evaluate`'s form with the ``layout_recall`` and ``layout`` metrics.
    """
    with_images = getattr(dataset, "with_images", None)
    if with_images is not None:
        dataset.with_images = False        # boxes and graphs are all this reads
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)    # as evaluate(): items that draw relations use this RNG
            items = [dataset[i] for i in range(len(dataset))]
    finally:
        if with_images is not None:
            dataset.with_images = with_images
    pairs = match_box_file(box_file, items)
    scored = score_box_pairs(pairs, thresholds)
    num_images = scored.pop("num_images")
    vocab = getattr(dataset, "vocab", None)
    names = tuple(vocab.pred_names) if vocab is not None else None
    objects = tuple(vocab.object_names) if vocab is not None else None
    layouts = {"box_file": LayoutScores(), "ground_truth": LayoutScores()}
    for start in range(0, len(items), 64):
        chunk = items[start:start + 64]
        batch = collate_graphs(chunk)
        real = real_object_mask(batch.objs)
        boxes = batch.boxes.float().clone()
        boxes[real] = torch.cat([p for _, p, _ in pairs[start:start + 64]])
        layouts["box_file"].add(boxes, batch, names)
        layouts["ground_truth"].add(batch.boxes, batch, names)
    layout = {name: acc.compute(objects, thresholds) for name, acc in layouts.items()}
    report = {"box_file": str(box_file), "split": split, "seed": seed, "num_graphs": num_images,
              "metrics": {"layout_recall": scored, "layout": layout},
              "protocols": {
                  "layout_recall": PROTOCOLS["layout_recall"].replace(
                      "boxes predicted from the scene graph alone (no box given)",
                      "boxes read from the box file"),
                  "layout": LayoutQuality.protocol.replace(
                      "boxes predicted from the scene graph alone (no box given), for the most "
                      "likely layout (mode) and, for a sampling layout head, one sampled layout",
                      "boxes read from the box file, against the graphs the dataset gives with "
                      f"seed {seed}").split("; layout diversity")[0]}}
    if out is not None:
        write_report(report, out)
    return report

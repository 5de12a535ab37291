"""The run context a metric builds itself from: device, seed, vocabulary, evaluation networks.

Networks are given by the caller (a module or a file) or resolved here on first use: our
shipped procedural nets when the dataset's vocabulary is theirs, else InceptionV3 from a
weights file (:mod:`sg2img.eval.nets`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from os import PathLike
from typing import Any

import torch
from torch import Tensor, nn

from ..scene_graph import GraphBatch
from .boxes import DEFAULT_RECALL_THRESHOLDS
from .nets import (
    AttributeClassifier,
    EvalWeightsError,
    FeatureExtractor,
    SceneFeatureNet,
    check_net_vocab,
    inception_feature_extractor,
    load_eval_net,
    load_shipped_net,
    scene_feature_extractor,
)


def unpinned(batch: GraphBatch) -> GraphBatch:
    """``batch`` with no box given: the layout is predicted from the scene graph alone."""
    return batch if batch.box_given is None else replace(
        batch, box_given=torch.zeros_like(batch.box_given))


@dataclass
class EvalContext:
    """What a metric may need to build itself: where it runs and the evaluation networks.

    Networks are resolved on first use and shared (FID and IS use one feature extractor).
    """

    device: torch.device
    seed: int
    samples_per_graph: int
    object_names: tuple[str, ...] | None
    feature_net: Any = None
    classifier: Any = None
    lpips_net: Any = None
    inception_weights: str | PathLike | None = None
    lpips_weights: str | PathLike | None = None
    attribute_names: tuple[str, ...] | None = None
    attribute_classifier: Any = None
    generator: Any = None        # metrics that generate again (attr_swap) call it
    model: Any = None            # the generator module (metrics that lay out without rendering)
    layout_mode: str = "mode"    # the layout the images are rendered from
    is_splits: int = 10
    recall_thresholds: Sequence[float] = DEFAULT_RECALL_THRESHOLDS
    pred_names: tuple[str, ...] | None = None
    layout_diagnostics: bool = False   # the layout metric also says where small misses come from
    use_gt_layout: bool = False  # the images are rendered from the ground-truth layout
    stuff_names: tuple[str, ...] = ()  # the vocabulary's stuff classes
    detector: Any = None         # faithfulness / relation_swap: a detector or its weights file
    detector_arch: str = "fasterrcnn_resnet50_fpn"   # the torchvision builder of COCO weights
    faithfulness_sheet: str | PathLike | None = None   # the debug sheet's PNG, when asked
    image_size: int = 64         # of the images scored: picks the shipped nets (eval, eval128)
    _extractor: FeatureExtractor | None = None

    def mode_boxes(self, batch: GraphBatch, outs: list[Any]) -> Tensor:
        """The boxes of the most likely layout (no box pinned): the rendered ones, or with
        ``layout_mode="sample"`` the mode the model lays out for the same graph."""
        if self.layout_mode == "mode" or not getattr(self.model, "samples_layout", False):
            return outs[0].boxes_pred
        return self.model.layout_boxes(unpinned(batch), layout_mode="mode")

    def feature_extractor(self) -> FeatureExtractor:
        """The FID/IS feature network, resolved on first use and shared by the metrics."""
        if self._extractor is None:
            self._extractor = resolve_feature_extractor(self.feature_net, self.inception_weights,
                                                        self.object_names, self.image_size)
        return self._extractor

    def feature_network_name(self) -> str | None:
        """The name of the FID/IS network, or None when no metric has resolved one."""
        return self._extractor.name if self._extractor is not None else None


def resolve_feature_extractor(feature_net: FeatureExtractor | SceneFeatureNet | str | PathLike
                              | None, inception_weights: str | PathLike | None,
                              object_names: tuple[str, ...] | None,
                              image_size: int = 64) -> FeatureExtractor:
    """The FID/IS feature network for ``feature_net`` (see ``EvalOptions.feature_net``); with
    none given, the one shipped for ``image_size`` px images when the vocabulary is ours.

    Raises:
        EvalWeightsError: no network given and none found (shipped or Inception weights).
        ValueError: the network was trained on another vocabulary than ``object_names``.
    """
    if isinstance(feature_net, FeatureExtractor):
        return feature_net
    if isinstance(feature_net, (str, PathLike)):
        path = feature_net
        feature_net = load_eval_net(path, "SceneFeatureNet")
        if object_names is not None:
            check_net_vocab(feature_net, object_names, "feature network")
        return scene_feature_extractor(feature_net, f"SceneFeatureNet from {path}")
    if isinstance(feature_net, SceneFeatureNet):
        if object_names is not None:
            check_net_vocab(feature_net, object_names, "feature network")
        return scene_feature_extractor(feature_net)
    if feature_net is not None:
        raise TypeError(f"feature_net must be a FeatureExtractor or a SceneFeatureNet, got "
                        f"{type(feature_net).__name__}")
    if inception_weights is not None:
        return inception_feature_extractor(inception_weights)
    try:
        net = load_shipped_net("SceneFeatureNet", image_size=image_size)
    except EvalWeightsError:
        net = None
    trained = getattr(net, "meta", {}).get("object_names") if net is not None else None
    if net is not None and object_names is not None and list(trained or []) == list(object_names):
        return scene_feature_extractor(net)
    try:  # a real dataset: InceptionV3 from the torch hub cache, if the user put it there
        return inception_feature_extractor(None)
    except EvalWeightsError as e:
        raise EvalWeightsError(
            f"{e}. (Our shipped SceneFeatureNet only covers the procedural scenes, whose "
            f"vocabulary this dataset does not have.)") from None


def resolve_classifier(classifier: nn.Module | str | PathLike | None,
                       object_names: tuple[str, ...] | None, image_size: int = 64) -> nn.Module:
    """The object classifier for ``classifier`` (a module, its file, or None: the one shipped
    for ``image_size`` px images), checked against the dataset's vocabulary, in eval mode."""
    if classifier is None:
        classifier = load_shipped_net("CropClassifier", image_size=image_size)
    elif isinstance(classifier, (str, PathLike)):
        classifier = load_eval_net(classifier, "CropClassifier")
    if object_names is not None:
        check_net_vocab(classifier, object_names, "object classifier")
    return classifier.eval()


def resolve_attribute_classifier(classifier: nn.Module | str | PathLike | None,
                                 object_names: tuple[str, ...],
                                 image_size: int = 64) -> AttributeClassifier:
    """The attribute classifier for ``classifier`` (a module, its file, or None: the one
    shipped for ``image_size`` px images), checked against the dataset's vocabulary and put
    in eval mode."""
    if classifier is None:
        classifier = load_shipped_net("AttributeClassifier", image_size=image_size)
    elif isinstance(classifier, (str, PathLike)):
        classifier = load_eval_net(classifier, "AttributeClassifier")
    if not isinstance(classifier, AttributeClassifier):
        raise TypeError(f"attribute_classifier must be an AttributeClassifier or its file, got "
                        f"{type(classifier).__name__}")
    trained = getattr(classifier, "meta", {}).get("object_names")
    if trained is not None and list(trained) != list(object_names):
        raise ValueError("the attribute classifier was trained on another object vocabulary "
                         "than the dataset's; train one with scripts/train_eval_nets.py "
                         "--nets attributes")
    return classifier.eval()


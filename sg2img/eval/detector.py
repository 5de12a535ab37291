"""An object detector that reads generated pictures: which objects are where, on pixels only.

:class:`SceneDetector` wraps a torchvision detection network behind one small interface:
``detect(images)`` takes images in [-1, 1] and returns, per image, the boxes (in [0, 1] of the
image), class labels and scores at or above ONE score threshold that is stored with the weights
(it is chosen once, on real val images, never tuned per generator).

Two kinds of detector fit this interface:
    * the procedural-scenes detector (:func:`build_detector`): torchvision's FCOS on a ResNet-18
      trunk (layers 1-3) with a narrow FPN, trained from scratch by
      ``scripts/train_eval_nets.py --nets detector`` (:func:`sg2img.eval.train_detector`) on every
      class, stuff included (a stuff box is the box around its region, as the dataset gives it),
      and shipped as ``sg2img/assets/eval/detector.pt`` (:func:`load_detector`);
    * a torchvision COCO detector from a user-given weights file (:func:`load_coco_detector`),
      which names COCO's 80 thing categories (no stuff).

Losses, box coding and NMS are torchvision's; this module only builds, wraps, saves and loads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..files import atomic_torch_save, check_state_dict, load_into, load_torch_file, read_json
from .nets import EvalWeightsError, shipped_asset_dir

DETECTOR_FILE = "detector.pt"
DETECTOR_FORMAT_VERSION = 1
DETECTOR_ARCH = "fcos_resnet18_fpn"
DETECTOR_TRAIN_COMMAND = ("python scripts/train_eval_nets.py --data DATA_ROOT "
                          "--out sg2img/assets/eval --nets detector")
MAX_DETECTOR_CLASSES = 1000
MAX_INPUT_SIZE = 2048

# torchvision COCO detectors :func:`load_coco_detector` can wrap: builder name -> weights enum.
COCO_ARCHS = {
    "fasterrcnn_resnet50_fpn": "FasterRCNN_ResNet50_FPN_Weights",
    "fasterrcnn_resnet50_fpn_v2": "FasterRCNN_ResNet50_FPN_V2_Weights",
    "fasterrcnn_mobilenet_v3_large_fpn": "FasterRCNN_MobileNet_V3_Large_FPN_Weights",
    "fasterrcnn_mobilenet_v3_large_320_fpn": "FasterRCNN_MobileNet_V3_Large_320_FPN_Weights",
    "retinanet_resnet50_fpn": "RetinaNet_ResNet50_FPN_Weights",
    "retinanet_resnet50_fpn_v2": "RetinaNet_ResNet50_FPN_V2_Weights",
    "fcos_resnet50_fpn": "FCOS_ResNet50_FPN_Weights",
    "ssdlite320_mobilenet_v3_large": "SSDLite320_MobileNet_V3_Large_Weights",
}


@dataclass
class Detections:
    """What a detector found in one image.

    Attributes:
        boxes: (K, 4) float, (x0, y0, x1, y1) in [0, 1] of the image.
        labels: (K,) long, indices into the detector's ``object_names``.
        scores: (K,) float, the detector's confidence, highest first.
    """

    boxes: Tensor
    labels: Tensor
    scores: Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def names(self, object_names: tuple[str, ...] | list[str]) -> list[str]:
        """The class name of each detection, in order."""
        return [object_names[int(i)] for i in self.labels]


def detector_arch(input_size: int = 128, fpn_channels: int = 64, head_convs: int = 2,
                  trunk_layers: int = 3) -> dict[str, Any]:
    """The architecture settings saved with the weights (:func:`build_detector`'s ``arch``).

    Args:
        input_size: side the images are resized to (64 px images are upsampled 2x).
        fpn_channels: channels of the FPN and of the FCOS head (a multiple of 32, the head's
            GroupNorm groups).
        head_convs: 3x3 convs in each FCOS head branch (torchvision's default is 4).
        trunk_layers: ResNet-18 stages kept (3: ``layer1``-``layer3``, strides 4, 8, 16, then
            an extra max-pooled level at stride 32).
    """
    return {"name": DETECTOR_ARCH, "input_size": int(input_size),
            "fpn_channels": int(fpn_channels), "head_convs": int(head_convs),
            "trunk_layers": int(trunk_layers)}


def _check_arch(arch: Any, where: str) -> dict[str, Any]:
    if not isinstance(arch, dict) or arch.get("name") != DETECTOR_ARCH:
        raise ValueError(f"{where}: unknown detector architecture {str(arch)[:80]}; this "
                         f"version builds {DETECTOR_ARCH!r} (retrain with "
                         f"`{DETECTOR_TRAIN_COMMAND}`)")
    limits = {"input_size": (32, MAX_INPUT_SIZE), "fpn_channels": (32, 512),
              "head_convs": (1, 8), "trunk_layers": (2, 4)}
    out = {"name": DETECTOR_ARCH}
    for key, (lo, hi) in limits.items():
        value = arch.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
            raise ValueError(f"{where}: detector setting {key}={str(value)[:40]} is not an "
                             f"integer in [{lo}, {hi}]; retrain with `{DETECTOR_TRAIN_COMMAND}`")
        out[key] = value
    if out["fpn_channels"] % 32:
        raise ValueError(f"{where}: fpn_channels={out['fpn_channels']} must be a multiple of 32 "
                         f"(the FCOS head's GroupNorm has 32 groups)")
    return out


def _fcos_resnet18(num_classes: int, arch: dict[str, Any]) -> nn.Module:
    """torchvision FCOS on a ResNet-18 trunk (trainable BatchNorm, from scratch) with an FPN.

    FPN levels at strides 4, 8, 16 (and 32, max-pooled) of the ``input_size`` input; FCOS
    sends an object to the level whose stride s gives 4s <= its largest centre-to-side
    distance < 8s, so with anchor sizes equal to the strides, 8-32 px objects at 128 px go to
    the stride 4 and 8 levels and the stuff regions to the coarse ones.
    """
    from torchvision.models import resnet18
    from torchvision.models.detection import FCOS
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.models.detection.fcos import FCOSHead
    from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

    layers = arch["trunk_layers"]
    trunk = resnet18(weights=None)
    return_layers = {f"layer{i}": str(i - 1) for i in range(1, layers + 1)}
    in_channels = [64 * 2 ** (i - 1) for i in range(1, layers + 1)]
    backbone = BackboneWithFPN(trunk, return_layers, in_channels, arch["fpn_channels"],
                               extra_blocks=LastLevelMaxPool())
    strides = [4 * 2 ** i for i in range(layers + 1)]
    anchors = AnchorGenerator(tuple((s,) for s in strides), ((1.0,),) * len(strides))
    head = FCOSHead(arch["fpn_channels"], 1, num_classes, num_convs=arch["head_convs"])
    size = arch["input_size"]
    return FCOS(backbone, num_classes, min_size=size, max_size=size,
                image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5],
                anchor_generator=anchors, head=head, score_thresh=0.05,
                detections_per_img=100)


class SceneDetector(nn.Module):
    """A torchvision detector behind the interface the faithfulness metric uses.

    Args:
        model: a torchvision detection model (FCOS, RetinaNet, Faster R-CNN, SSD) taking a
            list of (3, H, W) images in [0, 1].
        object_names: the class names, index = label (what ``model`` predicts).
        threshold: the one score threshold ``detect`` applies by default.
        input_size: the side the model resizes its input to.
        arch: the architecture settings (saved with the weights; {} for wrapped COCO models).

    Shapes:
        ``detect``: images (N, 3, H, W) in [-1, 1] -> N :class:`Detections`.
        ``forward(images, targets)`` (training): images (N, 3, H, W) in [-1, 1], targets as
        torchvision's (``boxes`` in pixels, ``labels``) -> torchvision's loss dict.
    """

    def __init__(self, model: nn.Module, object_names: tuple[str, ...] | list[str],
                 threshold: float = 0.5, input_size: int = 128,
                 arch: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.model = model
        self.object_names: tuple[str, ...] = tuple(object_names)
        self.threshold = float(threshold)
        self.input_size = int(input_size)
        self.arch = dict(arch or {})
        self.meta: dict[str, Any] = {}

    @property
    def num_classes(self) -> int:
        return len(self.object_names)

    def forward(self, images: Tensor, targets: list[dict[str, Tensor]] | None = None) -> Any:
        x = ((images.float() + 1.0) / 2.0).clamp(0, 1)
        return self.model(list(x), targets)

    @torch.no_grad()
    def detect(self, images: Tensor, threshold: float | None = None) -> list[Detections]:
        """The objects found in each image, scoring at least ``threshold``.

        Runs in eval mode without gradients (the module's own mode is restored after).

        Args:
            images: (N, 3, H, W) float in [-1, 1], square.
            threshold: score threshold; None: ``self.threshold``. The network keeps no
                detection under its own floor (0.05 for the procedural detector, torchvision's
                ``score_thresh`` for a COCO model), so lower thresholds give the same as it.

        Returns:
            One :class:`Detections` per image, boxes in [0, 1] of the image, highest score
            first.

        Raises:
            ValueError: ``images`` is not (N, 3, H, W) with H = W.
        """
        if images.dim() != 4 or images.shape[1] != 3 or images.shape[2] != images.shape[3]:
            raise ValueError(f"detect expects square images (N, 3, H, W) in [-1, 1], got shape "
                             f"{tuple(images.shape)}; resize or crop them to H = W first")
        t = self.threshold if threshold is None else float(threshold)
        was_training = self.training
        self.eval()
        try:
            outputs = self(images) if len(images) else []
        finally:
            self.train(was_training)
        side = float(images.shape[-1])
        found = []
        for out in outputs:
            keep = out["scores"] >= t
            order = torch.argsort(out["scores"][keep], descending=True)
            found.append(Detections(
                boxes=(out["boxes"][keep][order] / side).clamp(0, 1).float(),
                labels=out["labels"][keep][order].long(),
                scores=out["scores"][keep][order].float()))
        return found


def build_detector(object_names: tuple[str, ...] | list[str], threshold: float = 0.5,
                   arch: dict[str, Any] | None = None) -> SceneDetector:
    """The procedural-scenes detector with random weights (train it with ``train_detector``).

    Args:
        object_names: the class names, index = label (e.g. ``vocab.object_names``).
        threshold: the default score threshold of ``detect``.
        arch: :func:`detector_arch` settings; None: the defaults.
    """
    if not 1 <= len(object_names) <= MAX_DETECTOR_CLASSES:
        raise ValueError(f"a detector needs 1 to {MAX_DETECTOR_CLASSES} class names, got "
                         f"{len(object_names)}")
    a = _check_arch(detector_arch() if arch is None else arch, "build_detector")
    return SceneDetector(_fcos_resnet18(len(object_names), a), object_names, threshold,
                         a["input_size"], a)


def save_detector(detector: SceneDetector, path: str | PathLike, **card: Any) -> Path:
    """Write ``detector`` as a plain dict that loads with ``weights_only=True``, atomically.

    Float weights are stored in float16 (half the file; the detections do not change
    noticeably) and come back as float32.

    Args:
        detector: a :class:`SceneDetector` built by :func:`build_detector`.
        path: the ``.pt`` file.
        **card: JSON-serialisable facts stored as its ``meta`` (AP, training command, ...);
            merged over ``detector.meta``.

    Returns:
        ``path``.

    Raises:
        ValueError: ``detector`` is a wrapped COCO model (load those from their own file).
        TypeError: ``card`` holds something JSON cannot represent.
    """
    if detector.arch.get("name") != DETECTOR_ARCH:
        raise ValueError("save_detector writes detectors built by build_detector; a wrapped "
                         "COCO model loads from its torchvision weights file instead")
    weights = {k: (v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu())
               for k, v in detector.model.state_dict().items()}
    meta = json.loads(json.dumps({**detector.meta, **card}))
    state = {"format_version": DETECTOR_FORMAT_VERSION, "kind": "SceneDetector",
             "arch": dict(detector.arch), "object_names": list(detector.object_names),
             "threshold": float(detector.threshold), "state_dict": weights, "meta": meta}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_torch_save(state, path, "detector")


def shipped_detector(image_size: int = 64) -> tuple[Path, float | None]:
    """The shipped detector file for ``image_size`` px images and the threshold to use there.

    A size folder (``sg2img/assets/eval128/``) may hold no ``detector.pt`` of its own and name,
    in its ``meta.json``, the size whose weights it shares and the threshold chosen on its own
    real val images: ``"detector": {"weights_of": 64, "threshold": 0.33, ...}``.

    Returns:
        (path, threshold): threshold None means the file's own.
    """
    folder = shipped_asset_dir(image_size)
    path = folder / DETECTOR_FILE
    meta = folder / "meta.json"
    if path.is_file() or not meta.is_file():
        return path, None
    entry = read_json(meta, "evaluation nets' meta.json", ValueError)
    entry = entry.get("detector") if isinstance(entry, dict) else None
    if not isinstance(entry, dict) or not isinstance(entry.get("weights_of"), int):
        return path, None
    threshold = entry.get("threshold")
    if not isinstance(threshold, float) or not 0.0 <= threshold <= 1.0:
        raise ValueError(f"{meta}: the detector threshold {str(threshold)[:40]} is not a score "
                         f"in [0, 1]")
    return shipped_asset_dir(entry["weights_of"]) / DETECTOR_FILE, threshold


def load_detector(path: str | PathLike | None = None,
                  map_location: str | torch.device = "cpu",
                  image_size: int = 64) -> SceneDetector:
    """A detector written by :func:`save_detector`, in eval mode (``weights_only=True``).

    Args:
        path: the ``.pt`` file; None: the one shipped for ``image_size`` px images
            (:func:`shipped_detector`: ``sg2img/assets/eval/detector.pt``; 128 px images use
            the same weights at the threshold chosen on 128 px real images).
        map_location: device for the weights.
        image_size: with ``path`` None, the side of the images it will score.

    Raises:
        EvalWeightsError: the file is missing or unreadable; the message names it, the
            ``--detector-weights`` option and the training command.
        ValueError: the file is not a detector file, or its settings are out of range.
    """
    p, own_threshold = shipped_detector(image_size) if path is None else (Path(path), None)
    if not p.is_file():
        what = "the shipped detector weights are missing" if path is None else \
            "the detector weights file does not exist"
        raise EvalWeightsError(f"{what}: {p}. Pass a detector file with --detector-weights "
                               f"PATH, or train one with `{DETECTOR_TRAIN_COMMAND}`")
    state = load_torch_file(p, "detector weights", EvalWeightsError, map_location)
    if not isinstance(state, dict) or state.get("kind") != "SceneDetector":
        raise ValueError(f"{p} is not an sg2img detector file (expected a dict with kind "
                         f"'SceneDetector', as save_detector writes); pass the file "
                         f"train_detector wrote")
    names = state.get("object_names")
    if (not isinstance(names, list) or not 1 <= len(names) <= MAX_DETECTOR_CLASSES
            or not all(isinstance(n, str) and len(n) <= 200 for n in names)):
        raise ValueError(f"{p}: object_names must be a list of 1 to {MAX_DETECTOR_CLASSES} "
                         f"class names; the file is damaged, retrain with "
                         f"`{DETECTOR_TRAIN_COMMAND}`")
    threshold = state.get("threshold")
    if not isinstance(threshold, float) or not 0.0 <= threshold <= 1.0:
        raise ValueError(f"{p}: threshold {str(threshold)[:40]} is not a score in [0, 1]; the "
                         f"file is damaged, retrain with `{DETECTOR_TRAIN_COMMAND}`")
    arch = _check_arch(state.get("arch"), str(p))
    weights = check_state_dict(state.get("state_dict"), f"detector weights {p}", ValueError)
    weights = {k: v.float() if v.is_floating_point() else v for k, v in weights.items()}
    detector = build_detector(names, threshold, arch)
    load_into(detector.model, weights, f"{p} does not fit the {DETECTOR_ARCH} detector it "
              f"names", ValueError)
    meta = state.get("meta", {})
    detector.meta = dict(meta) if isinstance(meta, dict) else {}
    if own_threshold is not None:
        detector.threshold = own_threshold
        detector.meta["threshold_chosen_at"] = int(image_size)
    return detector.eval()


def coco_category_names(arch: str = "fasterrcnn_resnet50_fpn") -> tuple[str, ...]:
    """torchvision's COCO category list for ``arch`` (index = label; read offline).

    It has 91 entries: ``"__background__"``, the 80 thing classes and ``"N/A"`` for the ids
    COCO left unused, so that the model's labels index it directly.
    """
    import torchvision.models.detection as tvd

    if arch not in COCO_ARCHS:
        raise ValueError(f"unknown COCO detector architecture {arch!r}; choose from "
                         f"{sorted(COCO_ARCHS)}")
    weights_enum = getattr(tvd, COCO_ARCHS[arch])
    return tuple(next(iter(weights_enum)).meta["categories"])


def load_coco_detector(path: str | PathLike, arch: str = "fasterrcnn_resnet50_fpn",
                       threshold: float = 0.5) -> SceneDetector:
    """A torchvision COCO detector from a user-given state dict, as a :class:`SceneDetector`.

    For real datasets: it names COCO's 80 thing categories (no stuff). Nothing is downloaded;
    the file is loaded with ``weights_only=True`` and checked before the model sees it.

    Args:
        path: the weights file, a ``state_dict`` of torchvision's ``arch`` with COCO's 91
            outputs (e.g. ``fasterrcnn_resnet50_fpn_coco-258fb6c6.pth``); a
            ``{"model": state_dict}`` or ``{"state_dict": ...}`` wrapper is accepted.
        arch: the torchvision builder the weights are for (:data:`COCO_ARCHS`).
        threshold: the default score threshold of ``detect``.

    Raises:
        EvalWeightsError: the file is missing or unreadable; the message names it.
        ValueError: ``arch`` is unknown, or the file's keys or shapes do not fit it.
    """
    import torchvision.models.detection as tvd

    names = coco_category_names(arch)
    p = Path(path)
    if not p.is_file():
        raise EvalWeightsError(f"the COCO detector weights file does not exist: {p}. Pass the "
                               f"path of a torchvision {arch} COCO state dict")
    state = load_torch_file(p, f"COCO {arch} weights", EvalWeightsError)
    for key in ("model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    weights = check_state_dict(state, f"COCO {arch} weights {p}", ValueError)
    model = getattr(tvd, arch)(weights=None, weights_backbone=None, num_classes=len(names))
    load_into(model, weights, f"{p} is not a torchvision {arch} state dict with COCO's "
              f"{len(names)} outputs; pass arch= the builder the weights were saved from",
              ValueError)
    transform = getattr(model, "transform", None)
    input_size = int(getattr(transform, "min_size", (800,))[0]) if transform else 800
    wrapped = SceneDetector(model, names, threshold, input_size, {"name": arch, "coco": True})
    wrapped.meta = {"weights": str(p), "arch": arch}
    return wrapped.eval()

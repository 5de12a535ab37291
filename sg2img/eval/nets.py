"""Networks that score generated images: our procedural-scene nets, InceptionV3, LPIPS.

What each metric needs, offline
    * FID / IS on the procedural scenes: :class:`SceneFeatureNet`, a small CNN trained by
      ``scripts/train_eval_nets.py`` on real procedural images and shipped in
      ``sg2img/assets/eval/scene_feature_net.pt``. FID uses its penultimate features, IS the
      softmax of its class logits.
    * FID / IS on real datasets (COCO-Stuff, VG): the standard FID InceptionV3 of torch-fidelity
      (the TensorFlow FID graph ported to PyTorch), which needs the ``torch-fidelity`` package and
      the weights file ``weights-inception-2015-12-05-6726825d.pth`` (:data:`INCEPTION_FID_URL`).
      Give its path (``inception_weights=`` / ``--inception-weights``) or put it in
      ``<torch hub dir>/checkpoints/`` (``$TORCH_HOME/hub/checkpoints``, by default
      ``~/.cache/torch/hub/checkpoints``).
    * Object classification accuracy: :class:`CropClassifier`, trained on real object crops
      (shipped for the procedural scenes as ``crop_classifier.pt``; for COCO / VG train one with
      ``scripts/train_eval_nets.py --data ROOT``).
    * Attribute accuracy and the attribute swap test: :class:`AttributeClassifier`, the same
      network trained on real crops to name an object's colour (shipped for the procedural
      scenes as ``attribute_classifier.pt``).
    * LPIPS diversity: torchmetrics' ``LearnedPerceptualImagePatchSimilarity``. Its linear
      layers ship with torchmetrics; the backbone needs torchvision's ImageNet weights, e.g.
      ``alexnet-owt-7be5be79.pth`` for ``net_type="alex"`` (:func:`lpips_backbone_file`).

All image inputs to the torchmetrics adapters are uint8 (N, 3, H, W) in [0, 255], the
convention of torchmetrics' and torch-fidelity's InceptionV3, so that the same images go to
either extractor.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import layout
from ..files import atomic_torch_save, check_state_dict, load_state_dict_file, load_torch_file
from .boxes import real_object_mask

logger = logging.getLogger(__name__)

ASSET_DIR = Path(__file__).resolve().parents[1] / "assets" / "eval"
FEATURE_NET_FILE = "scene_feature_net.pt"
CLASSIFIER_FILE = "crop_classifier.pt"
ATTRIBUTE_CLASSIFIER_FILE = "attribute_classifier.pt"
EVAL_NET_FORMAT_VERSION = 1
TRAIN_COMMAND = "python scripts/train_eval_nets.py --data DATA_ROOT --out sg2img/assets/eval"

INCEPTION_FID_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_FID_URL = ("https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
                     + INCEPTION_FID_FILE)
SCENE_FEATURE_NET_NAME = "procedural SceneFeatureNet (ours)"
INCEPTION_NAME = "InceptionV3 from user weights (torch-fidelity FID weights)"


class EvalWeightsError(FileNotFoundError):
    """Weights an evaluation network needs are missing; the message says how to provide them."""


# --------------------------------------------------------------------------- networks
def _conv_block(in_ch: int, out_ch: int) -> nn.Sequential:
    """3x3 conv + BN + ReLU, then a stride-2 3x3 conv + BN + ReLU (halves H and W)."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(True),
        nn.Conv2d(out_ch, out_ch, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(out_ch),
        nn.ReLU(True))


def _resize(images: Tensor, size: int) -> Tensor:
    if images.shape[-2:] == (size, size):
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False,
                         antialias=True)


def down_and_up(images: Tensor, size: int) -> Tensor:
    """uint8 (N, 3, H, W) images resized to ``size`` and back to H x W (antialiased
    bilinear, as the nets resize): the detail a ``size`` px picture lacks."""
    x = images.float() / 127.5 - 1.0
    back = _resize(_resize(x, size), images.shape[-1])
    return images_to_uint8(back.clamp(-1, 1))


class CropClassifier(nn.Module):
    """Small CNN classifying object crops (Grid2Im's object classification protocol).

    Args:
        num_classes: C, the vocabulary's object slots (``vocab.num_objects``).
        crop_size: S, the side of the crops it is trained on; other sizes are resized.
        width: channels of the first block (doubled in the next two).

    Shapes:
        crops (K, 3, S', S') float in [-1, 1] -> logits (K, C)
    """

    def __init__(self, num_classes: int, crop_size: int = 32, width: int = 32) -> None:
        super().__init__()
        self.num_classes, self.crop_size, self.width = num_classes, crop_size, width
        self.body = nn.Sequential(_conv_block(3, width), _conv_block(width, 2 * width),
                                  _conv_block(2 * width, 4 * width))
        self.head = nn.Linear(4 * width, num_classes)
        self.meta: dict[str, Any] = {}

    def config(self) -> dict[str, int]:
        """Constructor arguments, so that weights travel with their shape."""
        return {"num_classes": self.num_classes, "crop_size": self.crop_size, "width": self.width}

    def forward(self, crops: Tensor) -> Tensor:
        x = self.body(_resize(crops.float(), self.crop_size))    # (K, 4w, S/8, S/8)
        return self.head(x.mean(dim=(2, 3)))                     # (K, C)


class SceneFeatureNet(nn.Module):
    """Small CNN on whole images: features for FID and class logits for IS.

    Trained on real procedural images to predict which object classes are present
    (multi-label, ``presence_logits``); ``forward`` gives the softmax-ready logits used by IS,
    which are the same presence logits (a class distribution over the objects in view).

    Args:
        num_classes: C (``vocab.num_objects``).
        image_size: side the images are resized to (antialiased bilinear).
        width: channels of the first block.
        feature_dim: D, size of the penultimate features used for FID.

    Shapes:
        images (N, 3, H, W) float in [-1, 1] -> features (N, D), logits (N, C)
    """

    def __init__(self, num_classes: int, image_size: int = 64, width: int = 32,
                 feature_dim: int = 128) -> None:
        super().__init__()
        self.num_classes, self.image_size = num_classes, image_size
        self.width, self.feature_dim = width, feature_dim
        self.body = nn.Sequential(_conv_block(3, width), _conv_block(width, 2 * width),
                                  _conv_block(2 * width, 4 * width),
                                  _conv_block(4 * width, 4 * width))
        self.embed = nn.Sequential(nn.Linear(4 * width, feature_dim), nn.ReLU(True))
        self.head = nn.Linear(feature_dim, num_classes)
        self.meta: dict[str, Any] = {}

    @property
    def num_features(self) -> int:
        return self.feature_dim

    def config(self) -> dict[str, int]:
        """Constructor arguments, so that weights travel with their shape."""
        return {"num_classes": self.num_classes, "image_size": self.image_size,
                "width": self.width, "feature_dim": self.feature_dim}

    def features(self, images: Tensor) -> Tensor:
        """(N, 3, H, W) in [-1, 1] -> (N, D) non-negative penultimate features."""
        x = self.body(_resize(images.float(), self.image_size))  # (N, 4w, s, s)
        return self.embed(x.mean(dim=(2, 3)))                    # (N, D)

    def forward(self, images: Tensor) -> Tensor:
        """(N, 3, H, W) in [-1, 1] -> (N, C) class-presence logits."""
        return self.head(self.features(images))


class AttributeClassifier(CropClassifier):
    """A :class:`CropClassifier` whose classes are attribute names (the colour of an object).

    Trained by ``scripts/train_eval_nets.py`` on real crops of the objects whose class comes
    in several colours; ``meta`` names what it predicts and for which objects:
    ``attribute_names`` (index -> label, e.g. ``["black", "blue", ...]``), ``object_names``
    (the dataset's object vocabulary) and ``class_attributes`` (object class name -> the
    labels it was seen with, e.g. ``{"car": ["black", "blue", "green", "red", "white"]}``).

    Shapes:
        crops (K, 3, S', S') float in [-1, 1] -> logits (K, len(attribute_names))
    """

    def labels(self) -> list[str]:
        """Index -> attribute name (``meta["attribute_names"]``)."""
        names = self.meta.get("attribute_names")
        if not isinstance(names, list) or len(names) != self.num_classes:
            raise ValueError(f"the attribute classifier's meta must list its "
                             f"{self.num_classes} attribute names ('attribute_names')")
        return list(names)

    def class_attributes(self) -> dict[str, list[str]]:
        """Object class name -> the labels it takes (``meta["class_attributes"]``)."""
        table = self.meta.get("class_attributes")
        if not isinstance(table, dict) or not table:
            raise ValueError("the attribute classifier's meta must map object classes to "
                             "their attribute labels ('class_attributes')")
        labels = set(self.labels())
        for name, attrs in table.items():
            if not isinstance(attrs, list) or not set(attrs) <= labels:
                raise ValueError(f"class_attributes[{name!r}] must be a list of the "
                                 f"classifier's attribute names")
        return {str(k): list(v) for k, v in table.items()}


EVAL_NETS: dict[str, type[nn.Module]] = {"CropClassifier": CropClassifier,
                                         "SceneFeatureNet": SceneFeatureNet,
                                         "AttributeClassifier": AttributeClassifier}


# --------------------------------------------------------------------------- save / load
def save_eval_net(net: CropClassifier | SceneFeatureNet | AttributeClassifier, path: str | PathLike,
                  meta: dict[str, Any] | None = None) -> None:
    """Save as a plain dict (kind, constructor args, state dict, meta), written atomically.

    Args:
        net: the network.
        path: output ``.pt`` file.
        meta: JSON-serialisable information (``object_names``, training command, accuracy,
            ...); defaults to ``net.meta``.

    Raises:
        TypeError: ``meta`` holds something JSON cannot represent (it would not load with
            ``weights_only=True``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"format_version": EVAL_NET_FORMAT_VERSION, "kind": type(net).__name__,
             "args": net.config(),
             "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
             # A JSON round trip keeps meta to plain types that weights_only loading accepts.
             "meta": json.loads(json.dumps(net.meta if meta is None else meta))}
    atomic_torch_save(state, path, "evaluation network")


def load_eval_net(path: str | PathLike, kind: str | None = None,
                  map_location: str | torch.device = "cpu") -> nn.Module:
    """Load a network written by :func:`save_eval_net` (``weights_only=True``), in eval mode.

    Args:
        path: the ``.pt`` file.
        kind: expected class name (``"CropClassifier"``, ``"SceneFeatureNet"`` or
            ``"AttributeClassifier"``), or None.
        map_location: device for the weights.

    Returns:
        The network, with ``.meta`` holding the saved meta dict.

    Raises:
        EvalWeightsError: the file does not exist.
        ValueError: the file is not an eval-net file or holds another kind of network.
    """
    path = Path(path)
    state = load_torch_file(path, "evaluation network weights", EvalWeightsError, map_location)
    if not isinstance(state, dict) or state.get("kind") not in EVAL_NETS:
        raise ValueError(f"{path} is not an sg2img evaluation network file (expected a dict with "
                         f"'kind' in {sorted(EVAL_NETS)})")
    if kind is not None and state["kind"] != kind:
        raise ValueError(f"{path} holds a {state['kind']}, expected a {kind}")
    weights = check_state_dict(state.get("state_dict"), f"evaluation network weights {path}",
                               ValueError)
    net = EVAL_NETS[state["kind"]](**state["args"])
    net.load_state_dict(weights)
    net.meta = dict(state.get("meta", {}))
    return net.eval()


def shipped_asset_dir(image_size: int = 64) -> Path:
    """The folder of the procedural-scene nets for ``image_size`` px images:
    ``sg2img/assets/eval{image_size}/`` where one ships (``eval128``), else the 64 px nets'
    ``sg2img/assets/eval/`` (the nets resize their input to their own size)."""
    own = ASSET_DIR.with_name(f"eval{int(image_size)}")
    return own if image_size != 64 and own.is_dir() else ASSET_DIR


def train_command(image_size: int = 64) -> str:
    """The command that trains the procedural-scene nets for ``image_size`` px images."""
    if shipped_asset_dir(image_size) == ASSET_DIR:
        return TRAIN_COMMAND
    return (f"python scripts/train_eval_nets.py --data DATA_ROOT --image-size {int(image_size)} "
            f"--out sg2img/assets/eval{int(image_size)}")


def load_shipped_net(kind: str, asset_dir: str | PathLike | None = None,
                     image_size: int = 64) -> nn.Module:
    """The procedural-scenes network shipped for ``image_size`` px images
    (:func:`shipped_asset_dir`: ``sg2img/assets/eval/`` for 64 px, ``eval128/`` for 128 px).

    Args:
        kind: ``"SceneFeatureNet"``, ``"CropClassifier"`` or ``"AttributeClassifier"``.
        asset_dir: folder to look in instead of the package's assets (tests).
        image_size: the side of the images the network will score.

    Raises:
        EvalWeightsError: the file is missing; the message names it and the training command.
    """
    files = {"SceneFeatureNet": FEATURE_NET_FILE, "CropClassifier": CLASSIFIER_FILE,
             "AttributeClassifier": ATTRIBUTE_CLASSIFIER_FILE}
    if kind not in files:
        raise ValueError(f"unknown evaluation network {kind!r}; choose from {sorted(files)}")
    path = Path(asset_dir or shipped_asset_dir(image_size)) / files[kind]
    if not path.is_file():
        raise EvalWeightsError(
            f"the shipped {kind} weights for {image_size} px images are missing: {path}. Train "
            f"them on the procedural scenes with `{train_command(image_size)}`, or pass your "
            f"own network")
    return load_eval_net(path, kind)


def check_net_vocab(net: nn.Module, object_names: tuple[str, ...] | list[str], what: str) -> None:
    """Raise ``ValueError`` if ``net`` was trained on another vocabulary than ``object_names``.

    Nets without ``meta["object_names"]`` are only checked for their number of classes.
    """
    trained = getattr(net, "meta", {}).get("object_names")
    num_classes = getattr(net, "num_classes", None)
    if trained is not None and list(trained) != list(object_names):
        raise ValueError(
            f"the {what} was trained on another vocabulary ({len(trained)} object slots, e.g. "
            f"{list(trained[1:4])}) than the dataset's ({len(object_names)}, e.g. "
            f"{list(object_names[1:4])}); train one for this dataset with `{TRAIN_COMMAND}`")
    if num_classes is not None and num_classes != len(object_names):
        raise ValueError(f"the {what} predicts {num_classes} classes but the dataset's "
                         f"vocabulary has {len(object_names)} object slots")


# --------------------------------------------------------------------------- crops
def crop_boxes(images: Tensor, boxes: Tensor, box_to_img: Tensor, size: int = 32) -> Tensor:
    """(K, 3, S, S) float crops of the boxes (:func:`sg2img.layout.crop_boxes` in float32)."""
    return layout.crop_boxes(images.float(), boxes.float(), box_to_img, size)


def crop_objects(images: Tensor, objs: Tensor, boxes: Tensor, obj_to_img: Tensor,
                 size: int = 32) -> tuple[Tensor, Tensor]:
    """Crops of the real objects (``__image__`` nodes left out) and their class ids.

    Args:
        images: (N, 3, H, W) in [-1, 1].
        objs: (O,) object class ids (0 is ``__image__``).
        boxes: (O, 4) in [0, 1].
        obj_to_img: (O,) image index per object.
        size: S, side of the crops.

    Returns:
        crops (K, 3, S, S) in [-1, 1] and labels (K,), K = number of real objects.
    """
    keep = real_object_mask(objs)
    return crop_boxes(images, boxes[keep], obj_to_img[keep], size), objs[keep]


# --------------------------------------------------------------------------- torchmetrics adapters
def images_to_uint8(images: Tensor) -> Tensor:
    """(N, 3, H, W) float in [-1, 1] -> uint8 in [0, 255] (rounded, clamped)."""
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


class _SharedExtractor(nn.Module):
    """Runs a network once per input tensor and hands each head its output.

    FID and IS are updated with the same uint8 tensor one after the other; caching the last
    input (by identity) halves the feature-network work.
    """

    def __init__(self, net: nn.Module, fn: Any) -> None:
        super().__init__()
        self.net = net.eval().requires_grad_(False)
        self._fn = fn
        self._last: tuple[Tensor, tuple[Tensor, Tensor]] | None = None

    def train(self, mode: bool = True) -> _SharedExtractor:
        return super().train(False)        # an evaluation network never leaves eval mode

    def outputs(self, images: Tensor) -> tuple[Tensor, Tensor]:
        if self._last is None or self._last[0] is not images:
            with torch.no_grad():
                self._last = (images, self._fn(self.net, images))
        return self._last[1]


class _Head(nn.Module):
    """A torchmetrics ``feature=`` module: uint8 images -> one output of a shared extractor."""

    def __init__(self, shared: _SharedExtractor, index: int, num_features: int) -> None:
        super().__init__()
        self.shared = shared
        self.index = index
        self.num_features = num_features

    def train(self, mode: bool = True) -> _Head:
        return super().train(False)

    def forward(self, images: Tensor) -> Tensor:
        if images.dtype != torch.uint8:
            raise TypeError(f"expected uint8 images in [0, 255], got {images.dtype}; convert "
                            f"with sg2img.eval.images_to_uint8")
        return self.shared.outputs(images)[self.index]


@dataclass
class FeatureExtractor:
    """The modules handed to torchmetrics' FID and IS, and the name recorded in reports.

    Attributes:
        fid_features: uint8 (N, 3, H, W) in [0, 255] -> (N, D) features; has ``num_features``.
        is_logits: uint8 (N, 3, H, W) in [0, 255] -> (N, C) logits (softmax -> p(y|x)).
        name: what the report calls the network.
    """

    fid_features: nn.Module
    is_logits: nn.Module
    name: str


def _scene_outputs(net: SceneFeatureNet, images: Tensor) -> tuple[Tensor, Tensor]:
    x = images.float() / 127.5 - 1.0
    features = net.features(x)
    return features, net.head(features)


def scene_feature_extractor(net: SceneFeatureNet,
                            name: str = SCENE_FEATURE_NET_NAME) -> FeatureExtractor:
    """Wrap a :class:`SceneFeatureNet` for torchmetrics (uint8 in, features / logits out).

    Args:
        net: the network (put in eval mode, gradients off).
        name: what reports call it; give another one for a net trained on other data.
    """
    shared = _SharedExtractor(net, _scene_outputs)
    return FeatureExtractor(_Head(shared, 0, net.feature_dim), _Head(shared, 1, net.num_classes),
                            name)


def find_inception_weights(path: str | PathLike | None = None) -> Path:
    """The FID InceptionV3 weights file: ``path`` if given, else the torch hub cache.

    Raises:
        EvalWeightsError: the file is not there; the message names the file, where to get it
            and where to put it.
    """
    hub_file = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FID_FILE
    if path is not None:
        if Path(path).is_file():
            return Path(path)
        where = f"the given file {path} does not exist"
    elif hub_file.is_file():
        return hub_file
    else:
        where = f"none was given and {hub_file} does not exist"
    raise EvalWeightsError(
        f"FID/IS on this dataset need the InceptionV3 FID weights, which cannot be downloaded "
        f"here: {where}. Fetch {INCEPTION_FID_URL} on a machine with internet, then pass its "
        f"path (--inception-weights PATH) or copy it to {hub_file}; or leave fid and is out of "
        f"--metrics")


def _inception_outputs(net: nn.Module, images: Tensor) -> tuple[Tensor, Tensor]:
    features, logits = net(images)
    return features.reshape(len(images), -1), logits.reshape(len(images), -1)


def inception_feature_extractor(weights_path: str | PathLike | None = None) -> FeatureExtractor:
    """torch-fidelity's FID InceptionV3 (2048 pool features, 1008 unbiased logits).

    Images of any size are resized inside to 299x299 the way TensorFlow's FID code does.

    Args:
        weights_path: ``weights-inception-2015-12-05-6726825d.pth``; None looks in the torch
            hub cache (:func:`find_inception_weights`).

    Raises:
        EvalWeightsError: torch-fidelity is not installed or the weights file is missing.
    """
    if importlib.util.find_spec("torch_fidelity") is None:
        raise EvalWeightsError("FID/IS with InceptionV3 need the torch-fidelity package: "
                               "pip install torch-fidelity")
    path = find_inception_weights(weights_path)
    state = load_state_dict_file(path, "InceptionV3 FID weights", EvalWeightsError)
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    # torch-fidelity's constructor can only read a path, and reads it with weights_only=False.
    # Hand it a file that holds nothing but the tensors sg2img itself loaded above
    # (weights_only=True), written to a private temp folder, never the user's file.
    with tempfile.TemporaryDirectory() as tmp:
        clean = Path(tmp) / INCEPTION_FID_FILE
        torch.save(state, clean)
        try:
            net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                              feature_extractor_weights_path=str(clean))
        except RuntimeError as e:
            detail = " ".join(str(e).split())
            raise EvalWeightsError(f"{path} is not the InceptionV3 FID weights file "
                                   f"{INCEPTION_FID_FILE} ({detail[:200]})") from None
    shared = _SharedExtractor(net, _inception_outputs)
    return FeatureExtractor(_Head(shared, 0, 2048), _Head(shared, 1, 1008), INCEPTION_NAME)


# --------------------------------------------------------------------------- LPIPS
_LPIPS_BACKBONES = {"alex": "AlexNet_Weights", "vgg": "VGG16_Weights",
                    "squeeze": "SqueezeNet1_1_Weights"}


def lpips_backbone_file(net_type: str = "alex") -> tuple[str, str]:
    """(file name, URL) of the torchvision ImageNet weights LPIPS's ``net_type`` needs."""
    if net_type not in _LPIPS_BACKBONES:
        raise ValueError(f"unknown LPIPS net_type {net_type!r}; choose from "
                         f"{sorted(_LPIPS_BACKBONES)}")
    import torchvision.models

    url = getattr(torchvision.models, _LPIPS_BACKBONES[net_type]).IMAGENET1K_V1.url
    return url.rsplit("/", 1)[-1], url


def lpips_cache_file(net_type: str = "alex") -> Path:
    """Where the torch hub cache keeps LPIPS's ``net_type`` backbone weights."""
    return Path(torch.hub.get_dir()) / "checkpoints" / lpips_backbone_file(net_type)[0]


@contextlib.contextmanager
def _hub_dir_with(file_name: str, state: dict[str, Tensor]) -> Iterator[None]:
    """Point the torch hub cache at a private temporary folder holding ``state`` as
    ``file_name``: torchvision's hub loader unpickles with ``weights_only=False``, so it only
    ever sees a file sg2img wrote from tensors it loaded itself with ``weights_only=True``."""
    # torch.hub keeps an explicit set_dir() in a module global; restoring that global (rather
    # than calling set_dir(previous)) keeps $TORCH_HOME in charge when nobody had set one.
    unset = object()
    previous = getattr(torch.hub, "_hub_dir", unset)
    previous_dir = torch.hub.get_dir()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "checkpoints").mkdir()
        torch.save(state, Path(tmp) / "checkpoints" / file_name)
        torch.hub.set_dir(tmp)
        try:
            yield
        finally:
            if previous is unset:
                torch.hub.set_dir(previous_dir)
            else:
                torch.hub._hub_dir = previous


def build_lpips(net_type: str = "alex", weights_path: str | PathLike | None = None) -> nn.Module:
    """torchmetrics' LPIPS metric (inputs float in [-1, 1]), built without a download.

    Args:
        net_type: ``"alex"`` (the usual choice), ``"vgg"`` or ``"squeeze"``.
        weights_path: the torchvision ImageNet weights of that backbone (any file name);
            None looks for them in the torch hub cache under their usual name.

    Returns:
        A ``LearnedPerceptualImagePatchSimilarity`` (mean reduction).

    Raises:
        EvalWeightsError: the backbone weights are missing; the message names the file.
    """
    from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

    file_name, url = lpips_backbone_file(net_type)
    hub_file = lpips_cache_file(net_type)
    if weights_path is None and not hub_file.is_file():
        raise EvalWeightsError(
            f"LPIPS ({net_type}) needs torchvision's ImageNet weights {file_name}, which cannot "
            f"be downloaded here: fetch {url} elsewhere and pass its path (--lpips-weights PATH) "
            f"or copy it to {hub_file}. The weight-free diversity score mean_pixel_distance is "
            f"reported either way")
    path = Path(weights_path) if weights_path is not None else hub_file
    state = load_state_dict_file(path, f"LPIPS backbone weights (torchvision's {file_name})",
                                 EvalWeightsError)
    with _hub_dir_with(file_name, state):
        try:
            return LearnedPerceptualImagePatchSimilarity(net_type=net_type)
        except RuntimeError as e:
            detail = " ".join(str(e).split())
            raise EvalWeightsError(f"{path} is not torchvision's {file_name} ({detail[:200]})"
                                   ) from None

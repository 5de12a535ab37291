"""GALS-GAN generator: scene graph -> object vectors -> boxes/masks -> layout -> images.

The composition root of the model: it reads ``ModelConfig`` and passes plain arguments to the
modules below it (graph convolution, box and mask heads, layouts, the global-affine and local
class-specific generators and the weight-map fusion).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import ModelConfig
from .discriminators import DiscriminatorOutput, GALSDiscriminator
from .generators import GlobalAffineGenerator, LocalClassGenerator, WeightMapPredictor, fuse_images
from .graph import BoxHead, GraphTripleConvNet, MaskHead
from .layout import box_masks, embedding_layout, semantic_layout
from .scene_graph import GraphBatch
from .vocab import IMAGE_OBJECT_ID

logger = logging.getLogger(__name__)

__all__ = ["DiscriminatorOutput", "GALSDiscriminator", "GALSGenerator", "GeneratorOutput",
           "count_parameters"]


@dataclass
class GeneratorOutput:
    """Everything the generator produced for one batch.

    Shapes:
        images (N, 3, H, W) in [-1, 1], the fused image (or the single branch's image);
        global_images, local_images (N, 3, H, W) in [-1, 1] or None when the branch is off;
        weight_map (N, 2, H, W), channels (global, local) summing to 1, or None when there is
        nothing to predict (one branch, or ``fusion="average"``);
        boxes_pred (O, 4) in [0, 1]; masks_pred (O, M, M) in [0, 1]; mask_logits (O, M, M);
        boxes (O, 4), masks (O, M, M): what actually built the layout;
        layout (N, C, H, W) semantic layout in [0, 1] (channel 0 = unlabelled region);
        z (N, noise_dim);
        class_images (K, 3, H, W), class_masks (K, 1, H, W), class_ids (K,), class_to_img (K,),
        class_logits (K, C): the local branch's per-(image, class) tensors (None without it;
        class_logits None without the classification module).
    """

    images: Tensor
    global_images: Tensor | None
    local_images: Tensor | None
    weight_map: Tensor | None
    boxes_pred: Tensor
    masks_pred: Tensor
    mask_logits: Tensor
    boxes: Tensor
    masks: Tensor
    layout: Tensor
    z: Tensor
    class_images: Tensor | None = None
    class_masks: Tensor | None = None
    class_ids: Tensor | None = None
    class_to_img: Tensor | None = None
    class_logits: Tensor | None = None


class GALSGenerator(nn.Module):
    """The full generator of GALS-GAN.

    Args:
        cfg: the model section of the config.
        num_objects: C, object vocabulary size (``vocab.num_objects``).
        num_preds: P, predicate vocabulary size (``vocab.num_preds``).
        num_attributes: A, attribute vocabulary size (``vocab.num_attributes``); with A > 0
            and ``cfg.use_attributes`` each object's multi-hot attributes (O, A) are embedded
            and added to its object embedding before the graph convolution. A = 0 (a
            vocabulary without attributes, every checkpoint from before them) builds no
            attribute embedding.

    The conditioning map shared by both branches (LGGAN's shared encoder ``E``) is a 1x1 conv
    over ``[semantic layout (C), embedding layout (gconv_dim), noise (layout_noise_dim)]``
    that reduces the up to 184 + 128 + 32 channels to ``cfg.cond_dim``; the noise channels are
    a linear map of ``z`` broadcast over the image, so ``z`` also varies the local branch.
    """

    def __init__(self, cfg: ModelConfig, num_objects: int, num_preds: int,
                 num_attributes: int = 0):
        super().__init__()
        self.cfg = cfg
        self.num_objects = num_objects
        self.num_preds = num_preds
        self.num_attributes = num_attributes if cfg.use_attributes else 0
        self.image_size = cfg.image_size
        self.mask_size = cfg.mask_size
        self.noise_dim = cfg.noise_dim

        self.obj_embeddings = nn.Embedding(num_objects, cfg.embedding_dim)
        self.pred_embeddings = nn.Embedding(num_preds, cfg.embedding_dim)
        # Multi-hot (O, A) @ (A, E): the sum of the object's attribute embeddings, each
        # initialised like an nn.Embedding row.
        self.attr_embeddings = None
        if self.num_attributes > 0:
            self.attr_embeddings = nn.Linear(self.num_attributes, cfg.embedding_dim, bias=False)
            nn.init.normal_(self.attr_embeddings.weight)
        self.gconv = GraphTripleConvNet(cfg.embedding_dim, cfg.gconv_dim, cfg.gconv_hidden_dim,
                                        cfg.gconv_num_layers)
        self.box_head = BoxHead(cfg.gconv_dim, cfg.gconv_hidden_dim)
        self.mask_head = MaskHead(cfg.gconv_dim, cfg.mask_size)

        self.noise_proj = (nn.Linear(cfg.noise_dim, cfg.layout_noise_dim)
                           if cfg.layout_noise_dim > 0 else None)
        in_ch = num_objects + cfg.gconv_dim + cfg.layout_noise_dim
        self.cond_encoder = nn.Sequential(nn.Conv2d(in_ch, cfg.cond_dim, 1), nn.LeakyReLU(0.2))

        self.global_gen = (GlobalAffineGenerator(cfg.image_size, cfg.noise_dim, cfg.cond_dim,
                                                 cfg.gen_channels, cfg.coarse_to_fine)
                           if cfg.use_global else None)
        self.local_gen = (LocalClassGenerator(num_objects, cfg.cond_dim, cfg.local_channels,
                                              combine=cfg.local_combine,
                                              use_class_loss=cfg.use_class_loss)
                          if cfg.use_local else None)
        self.weight_map = None
        if cfg.use_global and cfg.use_local and cfg.fusion == "weight_map":
            self.weight_map = WeightMapPredictor(
                self.global_gen.out_channels + self.local_gen.out_channels,
                hidden=max(8, cfg.local_channels))

    # ------------------------------------------------------------------ pieces
    def encode_graph(self, batch: GraphBatch) -> tuple[Tensor, Tensor]:
        """Object and predicate vectors after the graph convolution.

        Returns:
            obj_vecs (O, gconv_dim), pred_vecs (T, gconv_dim).
        """
        s, p, o = batch.triples.unbind(dim=1)                                 # (T,) each
        obj_vecs = self.obj_embeddings(batch.objs)                            # (O, E)
        if self.attr_embeddings is not None and batch.attributes is not None:
            if batch.attributes.shape != (len(batch.objs), self.num_attributes):
                raise ValueError(f"batch.attributes must have shape ({len(batch.objs)}, "
                                 f"{self.num_attributes}) (objects, attribute vocabulary), got "
                                 f"{tuple(batch.attributes.shape)}")
            obj_vecs = obj_vecs + self.attr_embeddings(batch.attributes.to(obj_vecs.dtype))
        pred_vecs = self.pred_embeddings(p)                                   # (T, E)
        return self.gconv(obj_vecs, pred_vecs, torch.stack([s, o], dim=1))

    def choose_layout_inputs(self, batch: GraphBatch, boxes_pred: Tensor, masks_pred: Tensor, *,
                             use_gt_layout: bool, boxes_override: Tensor | None,
                             masks_override: Tensor | None,
                             override: Tensor | None) -> tuple[Tensor, Tensor]:
        """Boxes and masks that build the layout (see ``forward``).

        Returns:
            boxes (O, 4), masks (O, M, M).
        """
        O, M = boxes_pred.shape[0], self.mask_size
        if use_gt_layout:
            if batch.boxes is None:
                raise ValueError("use_gt_layout=True needs ground-truth boxes in the batch "
                                 "(batch.boxes is None); use predicted layouts instead")
            boxes = batch.boxes.to(boxes_pred.dtype)
            # Datasets without masks (Visual Genome) fill the boxes completely.
            masks = (batch.masks.to(masks_pred.dtype) if batch.masks is not None
                     else box_masks(O, M, boxes.device, masks_pred.dtype))
            if masks.shape[-1] != M:
                masks = F.interpolate(masks[:, None], size=(M, M), mode="bilinear",
                                      align_corners=False)[:, 0]
        else:
            boxes, masks = boxes_pred, masks_pred
            if batch.boxes is not None and batch.box_given is not None:
                given = batch.box_given[:, None]
                boxes = torch.where(given, batch.boxes.to(boxes.dtype), boxes)
        if override is not None:
            if boxes_override is None or masks_override is None:
                raise ValueError("override needs boxes_override (O, 4) and masks_override "
                                 "(O, M, M)")
            ov = override.bool()
            boxes = torch.where(ov[:, None], boxes_override.to(boxes.dtype), boxes)
            masks = torch.where(ov[:, None, None], masks_override.to(masks.dtype), masks)
        # The image node always spans the image; its vector reaches every pixel of the
        # embedding layout (and it paints nothing in the semantic layout).
        is_image = batch.objs == IMAGE_OBJECT_ID
        full = boxes.new_tensor([0.0, 0.0, 1.0, 1.0])
        boxes = torch.where(is_image[:, None], full, boxes)
        masks = torch.where(is_image[:, None, None], torch.ones_like(masks), masks)
        return boxes, masks

    def make_noise(self, num_images: int, device: torch.device,
                   rng: torch.Generator | None = None) -> Tensor:
        """Standard normal ``z`` of shape (N, noise_dim), drawn from ``rng``."""
        return torch.randn(num_images, self.noise_dim, device=device, generator=rng)

    # ----------------------------------------------------------------- forward
    def forward(self, batch: GraphBatch, *, use_gt_layout: bool = False, z: Tensor | None = None,
                rng: torch.Generator | None = None, boxes_override: Tensor | None = None,
                masks_override: Tensor | None = None,
                override: Tensor | None = None) -> GeneratorOutput:
        """Generate one image per scene graph in ``batch``.

        Args:
            batch: encoded scene graphs (``batch.num_images`` = N).
            use_gt_layout: teacher forcing; build the layout from ``batch.boxes`` and
                ``batch.masks`` (box-filled masks when the batch has none).
            z: (N, noise_dim) noise; drawn from ``rng`` if None.
            rng: the ``torch.Generator`` that draws ``z``.
            boxes_override, masks_override: (O, 4), (O, M, M) used for objects where
                ``override`` (O,) is True (graph manipulation keeps untouched objects fixed).
            override: (O,) bool.

        Otherwise objects use their predicted boxes and masks, except objects with
        ``batch.box_given`` True, which take ``batch.boxes`` (user-pinned boxes).

        Returns:
            ``GeneratorOutput``.
        """
        N, H = batch.num_images, self.image_size
        device = batch.objs.device
        obj_vecs, _ = self.encode_graph(batch)
        boxes_pred = self.box_head(obj_vecs)                                  # (O, 4)
        mask_logits = self.mask_head(obj_vecs)                                # (O, M, M)
        masks_pred = torch.sigmoid(mask_logits)
        boxes, masks = self.choose_layout_inputs(
            batch, boxes_pred, masks_pred, use_gt_layout=use_gt_layout,
            boxes_override=boxes_override, masks_override=masks_override, override=override)

        if z is None:
            z = self.make_noise(N, device, rng)
        if z.shape != (N, self.noise_dim):
            raise ValueError(f"z must have shape ({N}, {self.noise_dim}), got {tuple(z.shape)}")
        z = z.to(device=device, dtype=self.obj_embeddings.weight.dtype)

        layout = semantic_layout(batch.objs, boxes, masks, batch.obj_to_img, N,
                                 self.num_objects, H, H)                      # (N, C, H, W)
        emb = embedding_layout(obj_vecs, boxes, masks, batch.obj_to_img, N, H, H)
        parts = [layout.to(emb.dtype), emb]
        if self.noise_proj is not None:
            noise = self.noise_proj(z)[:, :, None, None].expand(-1, -1, H, H)  # (N, Ln, H, W)
            parts.append(noise)
        cond = self.cond_encoder(torch.cat(parts, dim=1))                     # (N, cond, H, W)

        global_images = global_feats = local = None
        if self.global_gen is not None:
            global_images, global_feats = self.global_gen(z, cond)
        if self.local_gen is not None:
            local = self.local_gen(cond, layout)

        weight_map = None
        if global_images is not None and local is not None:
            if self.weight_map is not None:
                weight_map = self.weight_map(torch.cat([global_feats, local.features], dim=1))
            images = fuse_images(global_images, local.images, weight_map)
        else:
            images = global_images if global_images is not None else local.images

        return GeneratorOutput(
            images=images, global_images=global_images,
            local_images=None if local is None else local.images, weight_map=weight_map,
            boxes_pred=boxes_pred, masks_pred=masks_pred, mask_logits=mask_logits,
            boxes=boxes, masks=masks, layout=layout, z=z,
            class_images=None if local is None else local.class_images,
            class_masks=None if local is None else local.class_masks,
            class_ids=None if local is None else local.class_ids,
            class_to_img=None if local is None else local.class_to_img,
            class_logits=None if local is None else local.class_logits)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)

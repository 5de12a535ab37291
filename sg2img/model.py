"""GALS-GAN generator: scene graph -> object vectors -> boxes/masks -> layout -> images.

The composition root of the model: it reads ``ModelConfig`` and passes plain arguments to the
modules below it (graph convolution, box and mask heads, layouts, the global-affine and local
class-specific generators and the weight-map fusion).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .config import ModelConfig
from .discriminators import DiscriminatorOutput, GALSDiscriminator
from .generators import GlobalAffineGenerator, LocalClassGenerator, WeightMapPredictor, fuse_images
from .generators.cc_fpse import CCGenerator
from .generators.dp_gan import DualPyramidGenerator
from .graph import BoxHead, GraphTripleConvNet, MaskHead
from .layout import (
    embedding_layout,
    instance_edges,
    object_noise_layout,
    semantic_layout,
    texture_noise_layout,
)
from .layout_head import (
    BoxMixture,
    MixtureBoxHead,
    geometric_codes,
)
from .model_layout import LayoutBranch
from .scene_graph import GraphBatch

logger = logging.getLogger(__name__)

__all__ = ["GLOBAL_GENERATORS", "DiscriminatorOutput", "GALSDiscriminator", "GALSGenerator",
           "GeneratorOutput", "count_parameters"]

# ``model.renderer.global_generator`` -> the global branch; every one takes
# (image_size, noise_dim, cond_ch, base_channels, coarse_to_fine) and returns (images, features).
GLOBAL_GENERATORS: dict[str, type[nn.Module]] = {
    "spade": GlobalAffineGenerator,      # SPADE residual blocks (GALS-GAN's global-affine)
    "cc": CCGenerator,                   # CC-FPSE conditional convolutions
    "dp": DualPyramidGenerator,          # DP-GAN dual pyramid
}


# forward(render_dtype=...) by name, for generate(precision=...) and evaluate(precision=...).
PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16}


@dataclass
class GeneratorOutput:
    """Everything the generator produced for one batch.

    Shapes:
        images (N, 3, H, W) in [-1, 1], the fused image (or the single branch's image);
        global_images, local_images (N, 3, H, W) in [-1, 1] or None when the branch is off;
        weight_map (N, 2, H, W), channels (global, local) summing to 1, or None when there is
        nothing to predict (one branch, or ``fusion="average"``);
        boxes_pred (O, 4) in [0, 1], the layout head's boxes (a "sample" head's are drawn or
        the mode, with pinned / overridden objects placed as given); masks_pred (O, M, M) in
        [0, 1]; mask_logits (O, M, M);
        boxes (O, 4), masks (O, M, M): what actually built the layout;
        layout (N, C, H, W) semantic layout in [0, 1] (channel 0 = unlabelled region);
        z (N, noise_dim);
        class_images (K, 3, H, W), class_masks (K, 1, H, W), class_ids (K,), class_to_img (K,),
        class_logits (K, C): the local branch's per-(image, class) tensors (None without it;
        class_logits None without the classification module);
        obj_noise (O, layout_noise_dim): the per-object noise of ``model.renderer.noise="spatial"``
        (None with vector noise); edges (N, 1, H, W) in {0, 1}: the instance boundary map
        (None without ``model.renderer.use_instance_edges``).
        box_mixture: a "sample" head's (O, K) mixture given the true boxes of a random
        subset of the other objects (teacher forcing; for the box NLL term), computed in
        training mode when the batch has boxes, else None.
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
    obj_noise: Tensor | None = None
    edges: Tensor | None = None
    box_mixture: BoxMixture | None = None


def _build_box_head(cfg: ModelConfig) -> nn.Module:
    builders = {
        "regress": lambda: BoxHead(cfg.layout.gconv_dim, cfg.layout.gconv_hidden_dim),
        "sample": lambda: MixtureBoxHead(cfg.layout.gconv_dim, cfg.layout.gconv_hidden_dim,
                                         cfg.layout.num_components, cfg.layout.sequential),
    }
    return builders[cfg.layout.head]()


class GALSGenerator(LayoutBranch, nn.Module):
    """The full generator of GALS-GAN.

    Args:
        cfg: the model section of the config.
        num_objects: C, object vocabulary size (``vocab.num_objects``).
        num_preds: P, predicate vocabulary size (``vocab.num_preds``).
        num_attributes: A, attribute vocabulary size (``vocab.num_attributes``); with A > 0
            and ``cfg.layout.use_attributes`` each object's multi-hot attributes (O, A) are embedded
            and added to its object embedding before the graph convolution. A = 0 (a
            vocabulary without attributes, every checkpoint from before them) builds no
            attribute embedding.
        pred_names: the P predicate names (``vocab.pred_names``); with them a "sample"
            layout head checks the geometric triples (left of, inside, ...) while it
            places objects (``model.layout.respect_relations``). Not stored in the weights.

    The conditioning map shared by both branches (LGGAN's shared encoder ``E``) is a 1x1 conv
    over ``[semantic layout (C), embedding layout (gconv_dim), noise (layout_noise_dim)]``
    that reduces the up to 184 + 128 + 32 channels to ``cfg.renderer.cond_dim``; the noise
    channels are a linear map of ``z`` broadcast over the image, so ``z`` also varies the local
    branch.

    With ``model.renderer.noise="spatial"`` (OASIS's 3-D noise) the noise is instead a
    per-pixel map of ``layout_noise_dim`` channels, one standard-normal vector per object region
    (see ``sg2img.layout.object_noise_layout``), concatenated to the conditioning map after the
    encoder, so it reaches every conditioned layer of both branches unmixed; redrawing one
    object's vector (``resample_object_noise``) changes that object's region.
    ``model.renderer.texture_noise_dim`` adds that many channels of per-pixel white noise made
    from the same vectors (``sg2img.layout.texture_noise_layout``), for texture that varies
    pixel by pixel. With ``model.renderer.use_instance_edges`` the instance boundary map is one
    more encoder input channel.
    """

    def __init__(self, cfg: ModelConfig, num_objects: int, num_preds: int,
                 num_attributes: int = 0, pred_names: Sequence[str] | None = None,
                 stuff_ids: Sequence[int] | None = None):
        super().__init__()
        self.cfg = cfg
        lay, ren = cfg.layout, cfg.renderer
        self.num_objects = num_objects
        self.num_preds = num_preds
        self.num_attributes = num_attributes if lay.use_attributes else 0
        self.image_size = ren.image_size
        self.mask_size = lay.mask_size
        self.noise_dim = ren.noise_dim

        self.obj_embeddings = nn.Embedding(num_objects, lay.embedding_dim)
        self.pred_embeddings = nn.Embedding(num_preds, lay.embedding_dim)
        # Multi-hot (O, A) @ (A, E): the sum of the object's attribute embeddings, each
        # initialised like an nn.Embedding row.
        self.attr_embeddings = None
        if self.num_attributes > 0:
            self.attr_embeddings = nn.Linear(self.num_attributes, lay.embedding_dim, bias=False)
            nn.init.normal_(self.attr_embeddings.weight)
        # model.renderer.paint_attributes: A more layout channels, the multi-hot attributes painted
        # through each object's mask, and their columns of the conditioning encoder's 1x1
        # conv. Applied as in ``encode_conditioning``: projected per object, then painted.
        self.attr_cond = None
        if self.num_attributes > 0 and ren.paint_attributes:
            self.attr_cond = nn.Linear(self.num_attributes, ren.cond_dim, bias=False)
        self.gconv = GraphTripleConvNet(lay.embedding_dim, lay.gconv_dim, lay.gconv_hidden_dim,
                                        lay.num_gconv_layers)
        # model.layout.use_own_gconv: the box and mask heads read a graph network of their own
        # (over the same embeddings), so the layout can be trained further without moving the
        # vectors the renderer was trained on.
        self.layout_gconv = (GraphTripleConvNet(lay.embedding_dim, lay.gconv_dim,
                                                lay.gconv_hidden_dim, lay.num_gconv_layers)
                             if lay.use_own_gconv else None)
        self.box_head = _build_box_head(cfg)
        self.pred_codes: Tensor | None
        if pred_names is not None and len(pred_names) != num_preds:
            raise ValueError(f"pred_names has {len(pred_names)} names for {num_preds} predicates")
        self.register_buffer("pred_codes", geometric_codes(pred_names)
                             if pred_names is not None and lay.respect_relations
                             else None, persistent=False)
        self.mask_head = MaskHead(lay.gconv_dim, lay.mask_size)
        if (lay.stuff_partition or lay.max_thing_iou < 1) and stuff_ids is None:
            raise ValueError("model.layout.stuff_partition and max_thing_iou need the stuff "
                             "classes: pass stuff_ids (a vocabulary with stuff_names), or turn "
                             "them off")
        self.register_buffer("stuff_classes", None if stuff_ids is None else torch.zeros(
            num_objects, dtype=torch.bool).index_fill_(0, torch.tensor(stuff_ids, dtype=torch.long),
                                                       True), persistent=False)

        spatial = ren.noise == "spatial"
        self.noise_proj = (nn.Linear(ren.noise_dim, ren.layout_noise_dim)
                           if ren.layout_noise_dim > 0 and not spatial else None)
        in_ch = (num_objects + lay.gconv_dim + (0 if spatial else ren.layout_noise_dim)
                 + int(ren.use_instance_edges))
        self.cond_encoder = nn.Sequential(nn.Conv2d(in_ch, ren.cond_dim, 1), nn.LeakyReLU(0.2))
        cond_ch = ren.cond_dim + (ren.layout_noise_dim + ren.texture_noise_dim if spatial else 0)

        global_kwargs = ({"narrow_upsample": ren.narrow_upsample}
                         if ren.global_generator == "spade" else {})
        self.global_gen = (GLOBAL_GENERATORS[ren.global_generator](
            ren.image_size, ren.noise_dim, cond_ch, ren.channels, ren.coarse_to_fine,
            **global_kwargs) if ren.use_global else None)
        self.local_gen = (LocalClassGenerator(num_objects, cond_ch, ren.local_channels,
                                              combine=ren.local_combine,
                                              use_class_loss=ren.use_class_loss)
                          if ren.use_local else None)
        self.weight_map = None
        if ren.use_global and ren.use_local and ren.fusion == "weight_map":
            self.weight_map = WeightMapPredictor(
                self.global_gen.out_channels + self.local_gen.out_channels,
                hidden=max(8, ren.local_channels))

    # ------------------------------------------------------------------ pieces
    def encode_graph(self, batch: GraphBatch,
                     embedded: tuple[Tensor, Tensor, Tensor] | None = None
                     ) -> tuple[Tensor, Tensor]:
        """Object and predicate vectors after the graph convolution (what the renderer reads).

        Args:
            embedded: ``_embed(batch)`` when the caller already has it.

        Returns:
            obj_vecs (O, gconv_dim), pred_vecs (T, gconv_dim).
        """
        return self.gconv(*(self._embed(batch) if embedded is None else embedded))

    def layout_vectors(self, batch: GraphBatch, *,
                       embedded: tuple[Tensor, Tensor, Tensor] | None = None,
                       render_vecs: tuple[Tensor, Tensor] | None = None
                       ) -> tuple[Tensor, Tensor]:
        """The vectors the box and mask heads read: with ``model.layout.use_own_gconv`` those of the
        layout graph network, otherwise ``encode_graph``'s (``render_vecs`` when the caller
        already has them). ``embedded``: ``_embed(batch)`` when the caller already has it."""
        if self.layout_gconv is not None:
            return self.layout_gconv(*(self._embed(batch) if embedded is None else embedded))
        return self.encode_graph(batch, embedded) if render_vecs is None else render_vecs

    def _embed(self, batch: GraphBatch) -> tuple[Tensor, Tensor, Tensor]:
        """Object embeddings (O, E) (plus attributes), predicate embeddings (T, E), edges (T, 2)."""
        s, p, o = batch.triples.unbind(dim=1)                                 # (T,) each
        obj_vecs = self.obj_embeddings(batch.objs)                            # (O, E)
        if self.attr_embeddings is not None and batch.attributes is not None:
            if batch.attributes.shape != (len(batch.objs), self.num_attributes):
                raise ValueError(f"batch.attributes must have shape ({len(batch.objs)}, "
                                 f"{self.num_attributes}) (objects, attribute vocabulary), got "
                                 f"{tuple(batch.attributes.shape)}")
            obj_vecs = obj_vecs + self.attr_embeddings(batch.attributes.to(obj_vecs.dtype))
        pred_vecs = self.pred_embeddings(p)                                   # (T, E)
        return obj_vecs, pred_vecs, torch.stack([s, o], dim=1)

    def encode_conditioning(self, layout: Tensor, obj_vecs: Tensor, boxes: Tensor,
                            masks: Tensor, obj_to_img: Tensor, z: Tensor,
                            edges: Tensor | None = None,
                            attributes: Tensor | None = None) -> Tensor:
        """The shared conditioning map: ``cond_encoder`` (a 1x1 conv + LeakyReLU) over
        ``[semantic layout, embedding layout, projected noise broadcast over the image]``.

        Computed without building that up-to-344-channel input (for speed); the same
        arithmetic up to float rounding, term by term, because a 1x1 conv is linear:

        * semantic layout: only the class channels that are nonzero somewhere in the batch
          (a handful of the up to 184) go through their columns of the weight; the others are
          exactly zero and contribute nothing, to the output or to any gradient;
        * embedding layout: painting the object vectors through the masks and then applying
          the weight equals painting the already projected vectors (``masks_to_layout`` is
          linear in the vectors);
        * noise: constant over the image, so it is a per-image bias;
        * attribute layout (``model.renderer.paint_attributes``): the object's multi-hot attributes
          painted through its mask, by the same argument as the embedding layout.

        Shapes:
            layout (N, C, H, W); obj_vecs (O, gconv_dim); boxes (O, 4); masks (O, M, M);
            obj_to_img (O,); z (N, noise_dim); edges (N, 1, H, W) or None;
            attributes (O, A) or None -> (N, cond_dim, H, W)
        """
        conv = self.cond_encoder[0]
        C, D = self.num_objects, obj_vecs.shape[1]
        N, _, H, W = layout.shape
        weight = conv.weight[:, :, 0, 0]                                      # (cond, in)
        Ln = self.noise_proj.out_features if self.noise_proj is not None else 0
        E = 0 if edges is None else edges.shape[1]
        w_sem, w_emb, w_noise, w_edge = weight.split([C, D, Ln, E], dim=1)
        bias = conv.bias.expand(N, -1)                                        # (N, cond)
        if self.noise_proj is not None:
            bias = bias + self.noise_proj(z).to(weight.dtype) @ w_noise.t()
        active = (layout.detach().flatten(2).amax(dim=(0, 2)) != 0).nonzero()[:, 0]  # (Ka,)
        sem = layout.to(weight.dtype)[:, active]                              # (N, Ka, H, W)
        pre = torch.einsum("nkhw,ck->nchw", sem, w_sem[:, active])            # (N, cond, H, W)
        per_object = obj_vecs @ w_emb.t()                                     # (O, cond)
        if self.attr_cond is not None and attributes is not None:
            per_object = per_object + self.attr_cond(attributes.to(per_object.dtype))
        pre = pre + embedding_layout(per_object, boxes, masks, obj_to_img, N, H, W)
        if edges is not None:  # the instance boundary map (pix2pixHD), its own columns
            pre = pre + torch.einsum("nehw,ce->nchw", edges.to(weight.dtype), w_edge)
        return self.cond_encoder[1](pre + bias[:, :, None, None])

    def make_noise(self, num_images: int, device: torch.device,
                   rng: torch.Generator | None = None) -> Tensor:
        """Standard normal ``z`` of shape (N, noise_dim), drawn from ``rng``."""
        return torch.randn(num_images, self.noise_dim, device=device, generator=rng)

    def resample_object_noise(self, obj_noise: Tensor, index: int | Tensor,
                              rng: torch.Generator | None = None) -> Tensor:
        """A copy of ``obj_noise`` with the rows of the objects in ``index`` redrawn.

        "Same scene, another sheep": pass the result as ``forward(obj_noise=...)`` with the
        same ``z`` and graph, and only that object's region changes
        (``model.renderer.noise="spatial"``).

        Args:
            obj_noise: (O, layout_noise_dim), e.g. ``GeneratorOutput.obj_noise``.
            index: an object index in [0, O), or an (O,) bool mask of objects to redraw.
            rng: random generator for the new rows.

        Raises:
            ValueError: vector noise, or an index out of range.
        """
        if self.cfg.renderer.noise != "spatial":
            raise ValueError("per-object noise needs model.renderer.noise=spatial (this model uses "
                             f"{self.cfg.renderer.noise!r} noise)")
        O = obj_noise.shape[0]
        if isinstance(index, Tensor) and index.dtype == torch.bool:
            if index.shape != (O,):
                raise ValueError(f"index mask must have shape ({O},), got {tuple(index.shape)}")
            which = index.to(obj_noise.device)
        else:
            i = int(index)
            if not 0 <= i < O:
                raise ValueError(f"object index {i} out of range: the batch has {O} objects")
            which = torch.zeros(O, dtype=torch.bool, device=obj_noise.device)
            which[i] = True
        fresh = torch.randn(obj_noise.shape, generator=rng,
                            device=rng.device if rng is not None else None)
        return torch.where(which[:, None], fresh.to(obj_noise), obj_noise)

    # ----------------------------------------------------------------- forward
    def forward(self, batch: GraphBatch, *, use_gt_layout: bool = False, z: Tensor | None = None,
                rng: torch.Generator | None = None, boxes_override: Tensor | None = None,
                masks_override: Tensor | None = None, override: Tensor | None = None,
                obj_noise: Tensor | None = None, layout_mode: str = "mode",
                layout_noise: Tensor | None = None, training_outputs: bool = True,
                render_dtype: torch.dtype | None = None) -> GeneratorOutput:
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
            obj_noise: (O, layout_noise_dim) per-object noise for
                ``model.renderer.noise="spatial"``; drawn with ``rng`` (after ``z``) if None.
                Must be None with vector noise.
            layout_mode: "mode" (the most likely layout; deterministic) or "sample" (a layout
                drawn from the head's distribution with ``layout_noise``, or with
                ``rng`` when that is None). Only a ``model.layout.head="sample"`` model
                distinguishes them.
            layout_noise: (O, 5) per-object noise for "sample".
            training_outputs: False skips what only the training losses use (the local
                branch's class logits, returned as None); the images are the same.
            render_dtype: e.g. ``torch.bfloat16``: render the image under autocast to that
                dtype (inference speed; the graph network and the layout stay in the
                parameters' dtype, so the layout is the same). Images come back as float32.

        Otherwise objects use their predicted boxes and masks, except objects with
        ``batch.box_given`` True, which take ``batch.boxes`` (user-pinned boxes).

        Returns:
            ``GeneratorOutput``.
        """
        N, H = batch.num_images, self.image_size
        device = batch.objs.device
        embedded = self._embed(batch)
        obj_vecs, pred_vecs = self.encode_graph(batch, embedded)
        lay_obj, lay_pred = self.layout_vectors(batch, embedded=embedded,
                                                render_vecs=(obj_vecs, pred_vecs))
        known = known_boxes = box_mixture = None
        if self.samples_layout:
            known, known_boxes = self._known_boxes(batch, use_gt_layout=use_gt_layout,
                                                   boxes_override=boxes_override,
                                                   override=override)
            if self.training and batch.boxes is not None:
                s, _, o = batch.triples.unbind(dim=1)
                box_mixture = self.box_head.teacher_forced(
                    lay_obj, lay_pred, torch.stack([s, o], dim=1), batch.boxes)
        boxes_pred = self.predict_boxes(batch, lay_obj, lay_pred, layout_mode=layout_mode,
                                        layout_noise=layout_noise, rng=rng,
                                        known=known, known_boxes=known_boxes)  # (O, 4)
        mask_logits = self.mask_head(lay_obj)                                 # (O, M, M)
        masks_pred = torch.sigmoid(mask_logits)
        boxes, masks = self.choose_layout_inputs(
            batch, boxes_pred, masks_pred, use_gt_layout=use_gt_layout,
            boxes_override=boxes_override, masks_override=masks_override, override=override)

        if z is None:
            z = self.make_noise(N, device, rng)
        if z.shape != (N, self.noise_dim):
            raise ValueError(f"z must have shape ({N}, {self.noise_dim}), got {tuple(z.shape)}")
        z = z.to(device=device, dtype=self.obj_embeddings.weight.dtype)

        # Without render_dtype the caller's autocast (the trainer's bf16) stays in force.
        with (torch.autocast(device.type, dtype=render_dtype) if render_dtype is not None
              else contextlib.nullcontext()):
            layout = semantic_layout(batch.objs, boxes, masks, batch.obj_to_img, N,
                                     self.num_objects, H, H)                  # (N, C, H, W)
            edges = None
            if self.cfg.renderer.use_instance_edges:
                edges = instance_edges(batch.objs, boxes, masks, batch.obj_to_img, N, H, H)
            cond = self.encode_conditioning(layout, obj_vecs, boxes, masks, batch.obj_to_img,
                                            z, edges, batch.attributes)       # (N, cond, H, W)
            obj_noise = self._spatial_noise(obj_noise, batch, rng, z.dtype)
            if obj_noise is not None:
                noise_map = object_noise_layout(obj_noise, batch.objs, boxes, masks,
                                                batch.obj_to_img, N, H, H)    # (N, Ln, H, W)
                if self.cfg.renderer.texture_noise_dim > 0:
                    texture = texture_noise_layout(noise_map, self.cfg.renderer.texture_noise_dim)
                    noise_map = torch.cat([noise_map, texture], dim=1)  # (N, Ln + P, H, W)
                cond = torch.cat([cond, noise_map.to(cond.dtype)], dim=1)

            global_images = global_feats = local = None
            if self.global_gen is not None:
                global_images, global_feats = self.global_gen(z, cond)
            if self.local_gen is not None:
                local = self.local_gen(cond, layout, with_logits=training_outputs)

            weight_map = None
            if global_images is not None and local is not None:
                if self.weight_map is not None:
                    weight_map = self.weight_map(torch.cat([global_feats, local.features], dim=1))
                images = fuse_images(global_images, local.images, weight_map)
            else:
                images = global_images if global_images is not None else local.images
        if render_dtype is not None:
            images, layout = images.float(), layout.float()
            weight_map = None if weight_map is None else weight_map.float()

        return GeneratorOutput(
            images=images, global_images=global_images,
            local_images=None if local is None else local.images, weight_map=weight_map,
            boxes_pred=boxes_pred, masks_pred=masks_pred, mask_logits=mask_logits,
            boxes=boxes, masks=masks, layout=layout, z=z,
            class_images=None if local is None else local.class_images,
            class_masks=None if local is None else local.class_masks,
            class_ids=None if local is None else local.class_ids,
            class_to_img=None if local is None else local.class_to_img,
            class_logits=None if local is None else local.class_logits,
            obj_noise=obj_noise, edges=edges, box_mixture=box_mixture)

    def _spatial_noise(self, obj_noise: Tensor | None, batch: GraphBatch,
                       rng: torch.Generator | None, dtype: torch.dtype) -> Tensor | None:
        """The (O, layout_noise_dim) per-object noise of spatial mode (None in vector mode)."""
        if self.cfg.renderer.noise != "spatial":
            if obj_noise is not None:
                raise ValueError("obj_noise is for model.renderer.noise=spatial; this model uses "
                                 f"{self.cfg.renderer.noise!r} noise (pass z instead)")
            return None
        shape = (batch.num_objects, self.cfg.renderer.layout_noise_dim)
        if obj_noise is None:
            obj_noise = torch.randn(shape, generator=rng, device=batch.objs.device)
        if tuple(obj_noise.shape) != shape:
            raise ValueError(f"obj_noise must have shape {shape}, got {tuple(obj_noise.shape)}")
        return obj_noise.to(device=batch.objs.device, dtype=dtype)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)

"""Training objectives: the unweighted loss terms of a generator step and a discriminator step.

Terms are keyed by their ``LossConfig`` weight name without ``_weight`` (``gan``,
``feat_match``, ``l1``, ``vgg``, ``box`` (L1, "regress" layout head), ``box_nll`` (mixture NLL,
"sample" layout head), ``mask``, ``local_l1``, ``class``, ``obj_gan``, ``obj_aux``,
``obj_attr`` (crops' attributes, ``model.discriminator.classify_attributes``), ``layout_anchor``); a
term whose weight is 0, or whose inputs are missing (no masks in Visual Genome, no local
branch), is not computed. ``weighted_total`` applies the weights in one place.

The discriminator runs once per step on the real and fake images concatenated, so a DDP
wrapper sees a single forward and spectral norm does one power iteration per step. In the
generator step the discriminator's own parameters receive gradients too; freeze them
(``disc.requires_grad_(False)``) around the generator step to skip that work.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .config import LossConfig
from .discriminators import DiscriminatorOutput, GALSDiscriminator
from .layout_head import BoxMixture, boxes_to_params
from .losses import (
    aux_attribute_loss,
    aux_class_loss,
    box_loss,
    box_mixture_nll,
    class_loss,
    feature_l2_matching_loss,
    feature_matching_loss,
    gan_d_loss,
    gan_g_loss,
    image_l1_loss,
    local_l1_loss,
    mask_loss,
    mode_seeking_loss,
    multiscale_gan_d_loss,
    multiscale_gan_g_loss,
    segmentation_d_loss,
    segmentation_g_loss,
)
from .model import GALSGenerator, GeneratorOutput
from .scene_graph import GraphBatch
from .vocab import IMAGE_OBJECT_ID

TERM_NAMES = ("gan", "feat_match", "l1", "vgg", "box", "box_nll", "mask", "local_l1", "class",
              "obj_gan", "obj_aux", "obj_attr", "seg", "mode_seek", "layout_anchor")


def _on(loss_cfg: LossConfig, name: str) -> bool:
    return getattr(loss_cfg, f"{name}_weight") > 0


def _wants_seg(disc: torch.nn.Module | None, loss_cfg: LossConfig) -> bool:
    """The pixel-level term applies to DP-GAN's discriminator only (possibly DDP-wrapped)."""
    inner = getattr(disc, "module", disc)
    return _on(loss_cfg, "seg") and getattr(inner, "kind", None) == "dp"


def _noise_of(out: GeneratorOutput) -> Tensor:
    """All the noise behind an output, flattened: ``z`` and the per-object noise."""
    parts = [out.z.flatten()]
    if out.obj_noise is not None:
        parts.append(out.obj_noise.flatten())
    return torch.cat(parts)


def _run_disc(disc: GALSDiscriminator, gen_out: GeneratorOutput, batch: GraphBatch,
              fake: Tensor, layout: Tensor, with_objects: bool) -> DiscriminatorOutput:
    """One discriminator forward on ``cat(real, fake)``; fake objects come after the real ones."""
    if batch.images is None:
        raise ValueError("the loss terms need real images (batch.images is None)")
    N = batch.num_images
    images = torch.cat([batch.images.to(fake.dtype), fake])
    layouts = torch.cat([layout, layout])
    edges = None
    if gen_out.edges is not None:
        edges = torch.cat([gen_out.edges, gen_out.edges]).detach()
    boxes = objs = obj_to_img = None
    if with_objects and batch.boxes is not None:
        boxes = torch.cat([batch.boxes.to(gen_out.boxes.dtype), gen_out.boxes.detach()])
        objs = torch.cat([batch.objs, batch.objs])
        obj_to_img = torch.cat([batch.obj_to_img, batch.obj_to_img + N])
    return disc(images, layouts, boxes, objs, obj_to_img, edges=edges)


def _obj_attr(d_out: DiscriminatorOutput, batch: GraphBatch, loss_cfg: LossConfig) -> bool:
    """Whether the object-attribute term applies: the object discriminator has an attribute
    head (``model.discriminator.classify_attributes``), the batch carries attributes, the weight
    is on."""
    return (d_out.obj_attr_logits is not None and batch.attributes is not None
            and _on(loss_cfg, "obj_attr"))


def _split_patch(patch: list[list[Tensor]], n: int) -> tuple[list[list[Tensor]],
                                                              list[list[Tensor]]]:
    real = [[f[:n] for f in feats] for feats in patch]
    fake = [[f[n:] for f in feats] for feats in patch]
    return real, fake


def generator_loss_terms(gen_out: GeneratorOutput, disc: GALSDiscriminator | None,
                         batch: GraphBatch, loss_cfg: LossConfig,
                         vgg: torch.nn.Module | None = None,
                         second: GeneratorOutput | None = None,
                         recon: GeneratorOutput | None = None) -> dict[str, Tensor]:
    """Unweighted loss terms of a generator step.

    Args:
        gen_out: the generator's output for ``batch``.
        disc: the discriminator (may be None when every adversarial weight is 0).
        batch: with real ``images``; ``boxes`` / ``masks`` enable the box / mask terms.
        loss_cfg: weights (zero-weight terms are skipped) and the GAN mode.
        vgg: a ``VGGPerceptualLoss``; required when ``loss_cfg.vgg_weight > 0``.
        second: another output for the same batch with other noise; required when
            ``loss_cfg.mode_seek_weight > 0`` (the mode-seeking term compares the two).
        recon: the output for the same batch with all noise zero; required with
            ``loss_cfg.recon_noise="zero"``, where the reconstruction terms (``l1``,
            ``local_l1``, ``feat_match``, ``vgg``) score it instead of ``gen_out``.

    With DP-GAN's discriminator, ``feat_match`` is its decoder-feature L2 matching and
    ``seg`` its pixel-level term; with the others, pix2pixHD's feature matching.

    Returns:
        dict of scalar tensors keyed by term name.

    Raises:
        ValueError: ``vgg_weight > 0`` without a VGG module, ``mode_seek_weight > 0``
            without ``second``, ``recon_noise="zero"`` without ``recon``, or no real images
            in the batch.
    """
    terms: dict[str, Tensor] = {}
    fake, N = gen_out.images, batch.num_images
    if batch.images is None:
        raise ValueError("the loss terms need real images (batch.images is None)")
    real = batch.images.to(fake.dtype)
    if loss_cfg.recon_noise == "zero":
        if recon is None:
            raise ValueError("loss.recon_noise='zero' needs the output for the same batch with "
                             "all noise zero (generator_loss_terms(recon=))")
    else:
        recon = gen_out
    split = recon is not gen_out     # reconstruction terms score another sample
    adversarial = [k for k in ("gan", "feat_match", "obj_gan", "obj_aux") if _on(loss_cfg, k)]
    if adversarial or _wants_seg(disc, loss_cfg):
        if disc is None:
            raise ValueError(f"loss terms {adversarial} need a discriminator")
        with_obj = _on(loss_cfg, "obj_gan") or _on(loss_cfg, "obj_aux")
        d_out = _run_disc(disc, gen_out, batch, fake, gen_out.layout, with_obj)
        real_feats, fake_feats = _split_patch(d_out.patch, N)
        if _on(loss_cfg, "gan"):
            terms["gan"] = multiscale_gan_g_loss(fake_feats, loss_cfg.gan_mode)
        if _on(loss_cfg, "feat_match"):
            m_out, m_real, m_fake = d_out, real_feats, fake_feats
            if split:
                m_out = _run_disc(disc, recon, batch, recon.images, recon.layout, False)
                m_real, m_fake = _split_patch(m_out.patch, N)
            if m_out.match is not None:
                terms["feat_match"] = feature_l2_matching_loss(
                    [f[:N] for f in m_out.match], [f[N:] for f in m_out.match])
            else:
                terms["feat_match"] = feature_matching_loss(m_real, m_fake)
        if d_out.seg_logits is not None and _on(loss_cfg, "seg"):
            terms["seg"] = segmentation_g_loss(d_out.seg_logits[N:], gen_out.layout)
        if d_out.obj_logits is not None:
            is_fake = d_out.obj_index >= batch.num_objects                    # (K,)
            if _on(loss_cfg, "obj_gan"):
                terms["obj_gan"] = gan_g_loss(d_out.obj_logits[is_fake], loss_cfg.gan_mode)
            if _on(loss_cfg, "obj_aux"):
                objs = torch.cat([batch.objs, batch.objs])[d_out.obj_index[is_fake]]
                terms["obj_aux"] = aux_class_loss(d_out.obj_class_logits[is_fake], objs)
            if _obj_attr(d_out, batch, loss_cfg):
                attrs = torch.cat([batch.attributes, batch.attributes])
                terms["obj_attr"] = aux_attribute_loss(
                    d_out.obj_attr_logits[is_fake], attrs[d_out.obj_index[is_fake]])
    if _on(loss_cfg, "mode_seek"):
        if second is None:
            raise ValueError("loss.mode_seek_weight > 0 needs a second generator output for "
                             "the same batch with other noise (generator_loss_terms(second=))")
        terms["mode_seek"] = mode_seeking_loss(fake, second.images, _noise_of(gen_out),
                                               _noise_of(second))
    if _on(loss_cfg, "l1"):
        terms["l1"] = image_l1_loss(recon.images, real)
    if _on(loss_cfg, "vgg"):
        if vgg is None:
            raise ValueError("loss.vgg_weight > 0 needs the VGG loss module: build it with "
                             "sg2img.losses.build_vgg_loss(loss.vgg_weight, train.vgg_weights)")
        terms["vgg"] = vgg(recon.images, real)
    not_image = batch.objs != IMAGE_OBJECT_ID
    if batch.boxes is not None:
        valid = not_image if batch.box_given is None else not_image & batch.box_given
        if gen_out.box_mixture is not None:
            if _on(loss_cfg, "box_nll"):
                terms["box_nll"] = box_nll_term(gen_out.box_mixture, batch.boxes, valid)
        elif _on(loss_cfg, "box"):
            terms["box"] = box_loss(gen_out.boxes_pred, batch.boxes, valid)
    if _on(loss_cfg, "mask") and batch.masks is not None:
        terms["mask"] = mask_loss(gen_out.mask_logits, batch.masks, not_image)
    if gen_out.class_images is not None:
        if _on(loss_cfg, "local_l1") and recon.class_images is not None:
            terms["local_l1"] = local_l1_loss(recon.class_images, recon.class_masks,
                                              recon.class_to_img, real)
        if _on(loss_cfg, "class") and gen_out.class_logits is not None:
            terms["class"] = class_loss(gen_out.class_logits, gen_out.class_ids)
    return terms


def box_nll_term(mixture: BoxMixture, boxes: Tensor, valid: Tensor | None) -> Tensor:
    """NLL of the true boxes (O, 4) under a "sample" head's mixture, over ``valid`` objects."""
    target = boxes_to_params(boxes.to(mixture.means.dtype))
    return box_mixture_nll(mixture.logits, mixture.means, mixture.log_stds, target, valid)


def layout_loss_terms(gen: GALSGenerator, batch: GraphBatch, loss_cfg: LossConfig, *,
                      anchor_vecs: Tensor | None = None,
                      rng: torch.Generator | None = None) -> dict[str, Tensor]:
    """Unweighted loss terms of a layout-only step (graph network and layout heads).

    No image is rendered: the graph is encoded once, and the layout heads are scored against
    the batch's boxes and masks. A "regress" head gives ``box`` (L1), a "sample" head
    ``box_nll`` (NLL of the true box under its mixture, teacher-forced on the true boxes of
    the objects before it in a random order); ``mask`` is the mask BCE; with ``anchor_vecs``,
    ``layout_anchor`` is the MSE between the object vectors and those (the vectors of the model
    the stage started from, which the frozen renderer was trained to read).

    Args:
        gen: the generator (only its embeddings, graph convolution and heads run).
        batch: graphs with ``boxes`` (and ``masks`` for the mask term).
        loss_cfg: weights; zero-weight terms are skipped.
        anchor_vecs: (O, gconv_dim) object vectors to stay close to, or None.
        rng: random generator for the teacher-forcing order.

    Returns:
        dict of scalar tensors keyed by term name.

    Raises:
        ValueError: the batch has no boxes.
    """
    if batch.boxes is None:
        raise ValueError("layout training needs ground-truth boxes (batch.boxes is None)")
    terms: dict[str, Tensor] = {}
    anchored = anchor_vecs is not None and _on(loss_cfg, "layout_anchor")
    # The renderer's vectors: needed for the anchor, or as the heads' input without a layout
    # graph network of their own (layout_vectors computes them then).
    render = gen.encode_graph(batch) if anchored else None
    lay_obj, lay_pred = gen.layout_vectors(batch, render_vecs=render)
    not_image = batch.objs != IMAGE_OBJECT_ID
    valid = not_image if batch.box_given is None else not_image & batch.box_given
    if gen.samples_layout:
        if _on(loss_cfg, "box_nll"):
            s, _, o = batch.triples.unbind(dim=1)
            mix = gen.box_head.teacher_forced(lay_obj, lay_pred, torch.stack([s, o], dim=1),
                                              batch.boxes, rng=rng)
            terms["box_nll"] = box_nll_term(mix, batch.boxes, valid)
    elif _on(loss_cfg, "box"):
        terms["box"] = box_loss(gen.box_head(lay_obj), batch.boxes, valid)
    if _on(loss_cfg, "mask") and batch.masks is not None:
        terms["mask"] = mask_loss(gen.mask_head(lay_obj), batch.masks, not_image)
    if anchored:
        obj_vecs = render[0]
        terms["layout_anchor"] = F.mse_loss(obj_vecs, anchor_vecs.to(obj_vecs.dtype))
    return terms


def discriminator_loss_terms(gen_out: GeneratorOutput, disc: GALSDiscriminator,
                             batch: GraphBatch, loss_cfg: LossConfig) -> dict[str, Tensor]:
    """Unweighted loss terms of a discriminator step (``gan``, ``obj_gan``, ``obj_aux``, and
    ``seg`` with DP-GAN's discriminator).

    The generated images and layout are detached. The auxiliary classifier learns from real
    crops only (classifying fakes as their class would reward the discriminator for accepting
    poor fakes).

    Returns:
        dict of scalar tensors keyed by term name.
    """
    terms: dict[str, Tensor] = {}
    with_obj = _on(loss_cfg, "obj_gan") or _on(loss_cfg, "obj_aux")
    if not (_on(loss_cfg, "gan") or with_obj or _wants_seg(disc, loss_cfg)):
        return terms
    N = batch.num_images
    d_out = _run_disc(disc, gen_out, batch, gen_out.images.detach(), gen_out.layout.detach(),
                      with_obj)
    if _on(loss_cfg, "gan"):
        real_feats, fake_feats = _split_patch(d_out.patch, N)
        terms["gan"] = multiscale_gan_d_loss(real_feats, fake_feats, loss_cfg.gan_mode)
    if d_out.seg_logits is not None and _on(loss_cfg, "seg"):
        terms["seg"] = segmentation_d_loss(d_out.seg_logits[:N], d_out.seg_logits[N:],
                                           gen_out.layout.detach())
    if d_out.obj_logits is not None:
        is_fake = d_out.obj_index >= batch.num_objects
        if _on(loss_cfg, "obj_gan"):
            terms["obj_gan"] = gan_d_loss(d_out.obj_logits[~is_fake], d_out.obj_logits[is_fake],
                                          loss_cfg.gan_mode)
        if _on(loss_cfg, "obj_aux"):
            objs = batch.objs[d_out.obj_index[~is_fake]]
            terms["obj_aux"] = aux_class_loss(d_out.obj_class_logits[~is_fake], objs)
        if _obj_attr(d_out, batch, loss_cfg):
            terms["obj_attr"] = aux_attribute_loss(
                d_out.obj_attr_logits[~is_fake], batch.attributes[d_out.obj_index[~is_fake]])
    return terms


def weighted_total(terms: dict[str, Tensor], loss_cfg: LossConfig) -> Tensor:
    """``sum(loss_cfg.<name>_weight * terms[name])``; the only place weights are applied.

    Raises:
        KeyError: a term with no ``<name>_weight`` field in ``LossConfig``.
    """
    if not terms:
        raise ValueError("no loss terms to add up (every weight is 0?)")
    total = None
    for name, value in terms.items():
        weight_name = f"{name}_weight"
        if not hasattr(loss_cfg, weight_name):
            raise KeyError(f"loss term {name!r} has no weight loss.{weight_name}")
        part = getattr(loss_cfg, weight_name) * value
        total = part if total is None else total + part
    return total

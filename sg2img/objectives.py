"""Training objectives: the unweighted loss terms of a generator step and a discriminator step.

Terms are keyed by their ``LossConfig`` weight name without ``_weight`` (``gan``,
``feat_match``, ``l1``, ``vgg``, ``box`` (L1, "regress" layout head), ``box_nll`` (mixture NLL,
"sample" layout head), ``mask``, ``local_l1``, ``class``, ``obj_gan``, ``obj_aux``,
``obj_attr`` (crops' attributes, ``model.discriminator.classify_attributes``), ``layout_anchor``); a
term whose weight is 0, or whose inputs are missing (no masks in Visual Genome, no local
branch), is not computed. ``weighted_total`` applies the weights in one place.

With ``own`` (images the generator rendered from its own predicted layout,
``loss.own_layout_weight``), the adversarial terms that apply to fakes are computed for those
images too, keyed ``own_<name>`` (``own_gan``, ``own_obj_gan``, ...) and weighted by
``loss.own_layout_weight`` times ``<name>``'s weight. They have no paired real image, so no
reconstruction, feature-matching or mode-seeking term.

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
    gan_d_fake_loss,
    gan_d_loss,
    gan_g_loss,
    image_l1_loss,
    local_l1_loss,
    mask_loss,
    mode_seeking_loss,
    multiscale_gan_d_fake_loss,
    multiscale_gan_d_loss,
    multiscale_gan_g_loss,
    segmentation_d_fake_loss,
    segmentation_d_loss,
    segmentation_g_loss,
)
from .model import GALSGenerator, GeneratorOutput
from .scene_graph import GraphBatch
from .vocab import IMAGE_OBJECT_ID

TERM_NAMES = ("gan", "feat_match", "l1", "vgg", "box", "box_nll", "mask", "local_l1", "class",
              "obj_gan", "obj_aux", "obj_attr", "seg", "mode_seek", "layout_anchor")
OWN_PREFIX = "own_"
"""Terms of the images rendered from the model's own layout: ``own_gan``, ``own_obj_gan``..."""
OWN_TERM_NAMES = tuple(OWN_PREFIX + n for n in ("gan", "seg", "obj_gan", "obj_aux", "obj_attr"))


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
              fake: Tensor, layout: Tensor, with_objects: bool,
              own: tuple[GeneratorOutput, Tensor] | None = None) -> DiscriminatorOutput:
    """One discriminator forward on ``cat(real, fake)``; fake objects come after the real ones.

    ``own``: (the output rendered from the model's own layout, its images): appended as a
    third part, conditioned on its own layout, its objects at the boxes that built them.
    """
    if batch.images is None:
        raise ValueError("the loss terms need real images (batch.images is None)")
    N = batch.num_images
    extra = [] if own is None else [own[0]]
    images = torch.cat([batch.images.to(fake.dtype), fake]
                       + [own[1].to(fake.dtype) for _ in extra])
    layouts = torch.cat([layout, layout] + [o.layout.detach().to(layout.dtype) for o in extra])
    edges = None
    if gen_out.edges is not None:
        edges = torch.cat([gen_out.edges, gen_out.edges] + [o.edges for o in extra]).detach()
    boxes = objs = obj_to_img = None
    if with_objects and batch.boxes is not None:
        dtype = gen_out.boxes.dtype
        boxes = torch.cat([batch.boxes.to(dtype), gen_out.boxes.detach()]
                          + [o.boxes.detach().to(dtype) for o in extra])
        objs = torch.cat([batch.objs] * (2 + len(extra)))
        obj_to_img = torch.cat([batch.obj_to_img, batch.obj_to_img + N]
                               + [batch.obj_to_img + 2 * N for _ in extra])
    return disc(images, layouts, boxes, objs, obj_to_img, edges=edges)


def _obj_attr(d_out: DiscriminatorOutput, batch: GraphBatch, loss_cfg: LossConfig) -> bool:
    """Whether the object-attribute term applies: the object discriminator has an attribute
    head (``model.discriminator.classify_attributes``), the batch carries attributes, the weight
    is on."""
    return (d_out.obj_attr_logits is not None and batch.attributes is not None
            and _on(loss_cfg, "obj_attr"))


def _split_patch(patch: list[list[Tensor]], n: int) -> tuple[list[list[Tensor]],
                                                              list[list[Tensor]]]:
    """(real, fake) of a ``_run_disc`` forward: images ``[0, n)`` and ``[n, 2n)``."""
    return _patch_part(patch, 0, n), _patch_part(patch, 1, n)


def _patch_part(patch: list[list[Tensor]], part: int, n: int) -> list[list[Tensor]]:
    """Part ``part`` (0 real, 1 fake, 2 own) of a ``_run_disc`` forward's patch features."""
    return [[f[part * n:(part + 1) * n] for f in feats] for feats in patch]


def _part_objects(d_out: DiscriminatorOutput, part: int, num_objects: int) -> Tensor:
    """(K,) bool: the judged crops of part ``part`` (0 real, 1 fake, 2 own)."""
    lo = part * num_objects
    return (d_out.obj_index >= lo) & (d_out.obj_index < lo + num_objects)


def _fake_g_terms(d_out: DiscriminatorOutput, part: int, layout: Tensor, batch: GraphBatch,
                  loss_cfg: LossConfig) -> dict[str, Tensor]:
    """The generator's adversarial terms on the fakes of part ``part`` of ``d_out`` (1: the
    batch's fakes, 2: those of the model's own layout, made from ``layout``): ``gan``, ``seg``,
    ``obj_gan``, ``obj_aux``, ``obj_attr``, as their weights and inputs allow."""
    terms: dict[str, Tensor] = {}
    N, O = batch.num_images, batch.num_objects
    if _on(loss_cfg, "gan"):
        terms["gan"] = multiscale_gan_g_loss(_patch_part(d_out.patch, part, N),
                                             loss_cfg.gan_mode)
    if d_out.seg_logits is not None and _on(loss_cfg, "seg"):
        terms["seg"] = segmentation_g_loss(d_out.seg_logits[part * N:(part + 1) * N], layout)
    if d_out.obj_logits is not None:
        mine = _part_objects(d_out, part, O)                                  # (K,)
        index = d_out.obj_index[mine] - part * O           # into the batch's objects
        if _on(loss_cfg, "obj_gan"):
            terms["obj_gan"] = gan_g_loss(d_out.obj_logits[mine], loss_cfg.gan_mode)
        if _on(loss_cfg, "obj_aux"):
            terms["obj_aux"] = aux_class_loss(d_out.obj_class_logits[mine], batch.objs[index])
        if _obj_attr(d_out, batch, loss_cfg):
            terms["obj_attr"] = aux_attribute_loss(d_out.obj_attr_logits[mine],
                                                   batch.attributes[index])
    return terms


def generator_loss_terms(gen_out: GeneratorOutput, disc: GALSDiscriminator | None,
                         batch: GraphBatch, loss_cfg: LossConfig,
                         vgg: torch.nn.Module | None = None,
                         second: GeneratorOutput | None = None,
                         recon: GeneratorOutput | None = None,
                         own: GeneratorOutput | None = None) -> dict[str, Tensor]:
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
        own: the output for the same graphs rendered from the model's own layout
            (``sg2img.own_layout_training.render_own_layout``); adds the ``own_*``
            adversarial terms, judged in the same discriminator forward.

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
        d_out = _run_disc(disc, gen_out, batch, fake, gen_out.layout, with_obj,
                          own=None if own is None else (own, own.images))
        fake_terms = _fake_g_terms(d_out, 1, gen_out.layout, batch, loss_cfg)
        if "gan" in fake_terms:
            terms["gan"] = fake_terms.pop("gan")
        if _on(loss_cfg, "feat_match"):
            m_out = d_out
            if split:
                m_out = _run_disc(disc, recon, batch, recon.images, recon.layout, False)
            if m_out.match is not None:
                terms["feat_match"] = feature_l2_matching_loss(
                    [f[:N] for f in m_out.match], [f[N:2 * N] for f in m_out.match])
            else:
                m_real, m_fake = _split_patch(m_out.patch, N)
                terms["feat_match"] = feature_matching_loss(m_real, m_fake)
        terms.update(fake_terms)
        if own is not None:
            own_terms = _fake_g_terms(d_out, 2, own.layout, batch, loss_cfg)
            terms.update({OWN_PREFIX + k: v for k, v in own_terms.items()})
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
                             batch: GraphBatch, loss_cfg: LossConfig,
                             own: GeneratorOutput | None = None) -> dict[str, Tensor]:
    """Unweighted loss terms of a discriminator step (``gan``, ``obj_gan``, ``obj_aux``, and
    ``seg`` with DP-GAN's discriminator).

    The generated images and layout are detached. The auxiliary classifier learns from real
    crops only (classifying fakes as their class would reward the discriminator for accepting
    poor fakes).

    Args:
        own: the output for the same graphs rendered from the model's own layout: extra
            fakes in the same forward (the real half stays the batch's real images with
            their layout), scored by the fake halves of the losses as ``own_gan``,
            ``own_obj_gan`` and ``own_seg``.

    Returns:
        dict of scalar tensors keyed by term name.
    """
    terms: dict[str, Tensor] = {}
    with_obj = _on(loss_cfg, "obj_gan") or _on(loss_cfg, "obj_aux")
    if not (_on(loss_cfg, "gan") or with_obj or _wants_seg(disc, loss_cfg)):
        return terms
    N = batch.num_images
    d_out = _run_disc(disc, gen_out, batch, gen_out.images.detach(), gen_out.layout.detach(),
                      with_obj, own=None if own is None else (own, own.images.detach()))
    if _on(loss_cfg, "gan"):
        real_feats, fake_feats = _split_patch(d_out.patch, N)
        terms["gan"] = multiscale_gan_d_loss(real_feats, fake_feats, loss_cfg.gan_mode)
    if d_out.seg_logits is not None and _on(loss_cfg, "seg"):
        terms["seg"] = segmentation_d_loss(d_out.seg_logits[:N], d_out.seg_logits[N:2 * N],
                                           gen_out.layout.detach())
    if d_out.obj_logits is not None:
        is_real = _part_objects(d_out, 0, batch.num_objects)
        is_fake = _part_objects(d_out, 1, batch.num_objects)
        if _on(loss_cfg, "obj_gan"):
            terms["obj_gan"] = gan_d_loss(d_out.obj_logits[is_real], d_out.obj_logits[is_fake],
                                          loss_cfg.gan_mode)
        if _on(loss_cfg, "obj_aux"):
            objs = batch.objs[d_out.obj_index[is_real]]
            terms["obj_aux"] = aux_class_loss(d_out.obj_class_logits[is_real], objs)
        if _obj_attr(d_out, batch, loss_cfg):
            terms["obj_attr"] = aux_attribute_loss(
                d_out.obj_attr_logits[is_real], batch.attributes[d_out.obj_index[is_real]])
    if own is not None:
        terms.update(_own_d_terms(d_out, batch, loss_cfg))
    return terms


def _own_d_terms(d_out: DiscriminatorOutput, batch: GraphBatch,
                 loss_cfg: LossConfig) -> dict[str, Tensor]:
    """The discriminator's terms on the fakes of the model's own layout (part 2 of ``d_out``):
    the fake halves of ``gan``, ``obj_gan`` and ``seg``."""
    terms: dict[str, Tensor] = {}
    N = batch.num_images
    if _on(loss_cfg, "gan"):
        terms[OWN_PREFIX + "gan"] = multiscale_gan_d_fake_loss(_patch_part(d_out.patch, 2, N),
                                                               loss_cfg.gan_mode)
    if d_out.seg_logits is not None and _on(loss_cfg, "seg"):
        terms[OWN_PREFIX + "seg"] = segmentation_d_fake_loss(d_out.seg_logits[2 * N:])
    if d_out.obj_logits is not None and _on(loss_cfg, "obj_gan"):
        mine = _part_objects(d_out, 2, batch.num_objects)
        terms[OWN_PREFIX + "obj_gan"] = gan_d_fake_loss(d_out.obj_logits[mine],
                                                        loss_cfg.gan_mode)
    return terms


def weighted_total(terms: dict[str, Tensor], loss_cfg: LossConfig) -> Tensor:
    """``sum(loss_cfg.<name>_weight * terms[name])``; the only place weights are applied.

    An ``own_<name>`` term weighs ``loss_cfg.own_layout_weight * loss_cfg.<name>_weight``.

    Raises:
        KeyError: a term with no ``<name>_weight`` field in ``LossConfig``.
    """
    if not terms:
        raise ValueError("no loss terms to add up (every weight is 0?)")
    total = None
    for name, value in terms.items():
        own = name.startswith(OWN_PREFIX)
        weight_name = f"{name.removeprefix(OWN_PREFIX) if own else name}_weight"
        if not hasattr(loss_cfg, weight_name):
            raise KeyError(f"loss term {name!r} has no weight loss.{weight_name}")
        weight = getattr(loss_cfg, weight_name)
        part = (loss_cfg.own_layout_weight * weight if own else weight) * value
        total = part if total is None else total + part
    return total

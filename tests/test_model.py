"""GALSGenerator end to end on the tiny preset: shapes, ranges, layout choice, ablations,
gradients, determinism and one full G + D step through the objectives."""

import pytest
import torch

from sg2img.config import Config
from sg2img.model import GALSDiscriminator, GALSGenerator
from sg2img.objectives import (
    TERM_NAMES,
    discriminator_loss_terms,
    generator_loss_terms,
    weighted_total,
)
from sg2img.scene_graph import GraphSample, collate_graphs, encode_graphs
from sg2img.testing import random_graph_batch


def make_batch(vocab, cfg, num_objs=(3, 2), with_masks=True, seed=0):
    """A batch of random graphs with boxes, masks and images (image node appended)."""
    return random_graph_batch(vocab.num_objects, vocab.num_preds, num_objs,
                              image_size=cfg.model.renderer.image_size,
                              mask_size=cfg.model.layout.mask_size,
                              seed=seed, with_masks=with_masks)


@pytest.fixture
def cfg():
    return Config.from_preset("tiny")


@pytest.fixture
def gen(cfg, vocab):
    torch.manual_seed(0)
    return GALSGenerator(cfg.model, vocab.num_objects, vocab.num_preds)


def test_output_shapes_and_ranges(cfg, vocab, gen):
    batch = make_batch(vocab, cfg)
    out = gen(batch, use_gt_layout=True)
    N, H, M, C = 2, cfg.model.renderer.image_size, cfg.model.layout.mask_size, vocab.num_objects
    O = batch.num_objects
    for name in ("images", "global_images", "local_images"):
        t = getattr(out, name)
        assert t.shape == (N, 3, H, H)
        assert t.min() >= -1 and t.max() <= 1
    assert out.weight_map.shape == (N, 2, H, H)
    torch.testing.assert_close(out.weight_map.sum(dim=1), torch.ones(N, H, H))
    assert out.boxes_pred.shape == (O, 4) and out.masks_pred.shape == (O, M, M)
    assert out.mask_logits.shape == (O, M, M)
    assert out.masks_pred.min() >= 0 and out.masks_pred.max() <= 1
    b = out.boxes_pred
    assert (b >= 0).all() and (b <= 1).all() and (b[:, 2] > b[:, 0]).all()
    assert (b[:, 3] > b[:, 1]).all()
    assert out.layout.shape == (N, C, H, H)
    assert out.layout.min() >= 0 and out.layout.max() <= 1
    assert out.z.shape == (N, cfg.model.renderer.noise_dim)
    K = out.class_ids.shape[0]
    assert out.class_images.shape == (K, 3, H, H) and out.class_masks.shape == (K, 1, H, H)
    assert out.class_logits.shape == (K, C) and out.class_to_img.shape == (K,)
    # Every object class of every image is among the local generator's classes.
    pairs = set(zip(out.class_to_img.tolist(), out.class_ids.tolist(), strict=True))
    for o, i in zip(batch.objs.tolist(), batch.obj_to_img.tolist(), strict=True):
        if o != 0:
            assert (i, o) in pairs


def test_teacher_forcing_uses_ground_truth_layout(cfg, vocab, gen):
    batch = make_batch(vocab, cfg)
    out = gen(batch, use_gt_layout=True)
    torch.testing.assert_close(out.boxes, batch.boxes)
    torch.testing.assert_close(out.masks, batch.masks)
    pred = gen(batch, use_gt_layout=False)
    # Predicted boxes everywhere except box_given objects (all given here) and image nodes.
    torch.testing.assert_close(pred.boxes, batch.boxes)
    torch.testing.assert_close(pred.masks, pred.masks_pred * (batch.objs != 0)[:, None, None]
                               + (batch.objs == 0)[:, None, None].float())


def test_user_boxes_and_override(cfg, vocab, gen):
    batch = make_batch(vocab, cfg)
    batch.box_given = torch.zeros_like(batch.box_given)
    batch.box_given[0] = True
    out = gen(batch)
    torch.testing.assert_close(out.boxes[0], batch.boxes[0])
    real = (batch.objs != 0) & ~batch.box_given
    torch.testing.assert_close(out.boxes[real], out.boxes_pred[real])
    image_nodes = batch.objs == 0
    assert (out.boxes[image_nodes] == torch.tensor([0.0, 0.0, 1.0, 1.0])).all()

    ov = torch.zeros(batch.num_objects, dtype=torch.bool)
    ov[1] = True
    new_boxes = torch.tensor([[0.1, 0.2, 0.3, 0.4]]).expand(batch.num_objects, 4)
    new_masks = torch.full((batch.num_objects, 8, 8), 0.5)
    out = gen(batch, boxes_override=new_boxes, masks_override=new_masks, override=ov)
    torch.testing.assert_close(out.boxes[1], new_boxes[1])
    torch.testing.assert_close(out.masks[1], new_masks[1])
    torch.testing.assert_close(out.boxes[0], batch.boxes[0])


def test_graphs_without_relationships_or_boxes(cfg, vocab, gen):
    graphs = [{"objects": ["sky", "grass"]}, {"objects": ["sheep"], "relationships": []},
              {"objects": ["sky", "sheep"], "relationships": [[1, "below", 0]]}]
    batch = encode_graphs(graphs, vocab)
    gen.eval()
    out = gen(batch)
    assert out.images.shape == (3, 3, 32, 32)
    assert torch.isfinite(out.images).all()
    with pytest.raises(ValueError, match="ground-truth boxes"):
        gen(batch, use_gt_layout=True)


def test_deterministic_given_z(cfg, vocab, gen):
    batch = make_batch(vocab, cfg)
    gen.eval()
    z = torch.randn(2, cfg.model.renderer.noise_dim)
    with torch.no_grad():
        a = gen(batch, z=z).images
        b = gen(batch, z=z).images
        c = gen(batch, z=torch.randn(2, cfg.model.renderer.noise_dim)).images
        d = gen(batch, rng=torch.Generator().manual_seed(3)).images
        e = gen(batch, rng=torch.Generator().manual_seed(3)).images
    assert torch.equal(a, b) and torch.equal(d, e)
    assert not torch.allclose(a, c)
    with pytest.raises(ValueError, match="z must have shape"):
        gen(batch, z=torch.randn(3, cfg.model.renderer.noise_dim))


def test_an_image_does_not_depend_on_its_batch(cfg, vocab, gen):
    gen.eval()
    batch = make_batch(vocab, cfg, num_objs=(3, 2))
    single = make_batch(vocab, cfg, num_objs=(3, 2))
    z = torch.randn(2, cfg.model.renderer.noise_dim)
    with torch.no_grad():
        both = gen(batch, z=z, use_gt_layout=True).images
        first = collate_graphs([_sample_of(single, 0)])
        alone = gen(first, z=z[:1], use_gt_layout=True).images
    torch.testing.assert_close(both[:1], alone, atol=1e-5, rtol=1e-4)


def _sample_of(batch, i):
    keep = batch.obj_to_img == i
    idx = keep.nonzero().squeeze(1)
    remap = torch.full((batch.num_objects,), -1, dtype=torch.long)
    remap[idx] = torch.arange(len(idx))
    tr = batch.triples[batch.triple_to_img == i].clone()
    tr[:, 0], tr[:, 2] = remap[tr[:, 0]], remap[tr[:, 2]]
    return GraphSample(batch.objs[keep], tr, boxes=batch.boxes[keep],
                       box_given=batch.box_given[keep], masks=batch.masks[keep],
                       image=batch.images[i])


@pytest.mark.parametrize("overrides, present, absent", [
    (["model.renderer.use_global=false"], ["local_images"], ["global_images", "weight_map"]),
    (["model.renderer.use_local=false"], ["global_images"],
     ["local_images", "weight_map", "class_ids"]),
    (["model.renderer.fusion=average"], ["global_images", "local_images"], ["weight_map"]),
    (["model.renderer.use_class_loss=false"], ["weight_map", "class_ids"], ["class_logits"]),
    (["model.renderer.local_combine=sum"], ["weight_map", "class_logits"], []),
])
def test_ablation_switches(vocab, overrides, present, absent):
    cfg = Config.from_preset("tiny", overrides)
    gen = GALSGenerator(cfg.model, vocab.num_objects, vocab.num_preds)
    batch = make_batch(vocab, cfg)
    out = gen(batch, use_gt_layout=True)
    assert out.images.shape == (2, 3, 32, 32)
    assert out.images.min() >= -1 and out.images.max() <= 1
    for name in present:
        assert getattr(out, name) is not None, name
    for name in absent:
        assert getattr(out, name) is None, name
    if cfg.model.renderer.fusion == "average":
        torch.testing.assert_close(out.images, (out.global_images + out.local_images) / 2)
    if not cfg.model.renderer.use_local:
        torch.testing.assert_close(out.images, out.global_images)
    terms = generator_loss_terms(out, GALSDiscriminator(cfg.model, vocab.num_objects), batch,
                                 cfg.loss)
    renderer = cfg.model.renderer
    assert ("class" in terms) == (renderer.use_local and renderer.use_class_loss)
    assert ("local_l1" in terms) == cfg.model.renderer.use_local


def test_full_step_reaches_every_parameter(cfg, vocab, gen):
    torch.manual_seed(0)
    disc = GALSDiscriminator(cfg.model, vocab.num_objects)
    batch = make_batch(vocab, cfg)
    out = gen(batch, use_gt_layout=True)

    disc.requires_grad_(False)
    terms = generator_loss_terms(out, disc, batch, cfg.loss)
    # box_nll needs layout_head="sample"; layout_anchor belongs to the layout-only step;
    # seg and mode_seek to the dp discriminator and the mode-seeking option; obj_attr to
    # model.discriminator.classify_attributes (tests/test_attributes.py).
    assert set(terms) == set(TERM_NAMES) - {"vgg", "box_nll", "layout_anchor", "seg",
                                            "mode_seek", "obj_attr"}
    assert all(t.dim() == 0 and torch.isfinite(t) for t in terms.values())
    weighted_total(terms, cfg.loss).backward()
    for name, p in gen.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    # Class-indexed banks learn only the rows of classes present in the batch.
    present = set(out.class_ids.tolist())
    rows = gen.local_gen.weight_1.grad.view(vocab.num_objects, -1).abs().sum(dim=1)
    for c in range(vocab.num_objects):
        assert (rows[c] > 0) == (c in present), c

    disc.requires_grad_(True)
    d_terms = discriminator_loss_terms(out, disc, batch, cfg.loss)
    assert set(d_terms) == {"gan", "obj_gan", "obj_aux"}
    gen.zero_grad()
    weighted_total(d_terms, cfg.loss).backward()
    for name, p in disc.named_parameters():
        assert p.grad is not None, name
        # (The hinge loss's gradient on a logit bias cancels: as many real as fake patches.)
        assert p.dim() == 1 or p.grad.abs().sum() > 0, name
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in gen.parameters())


def test_predicted_layout_gets_image_gradients(cfg, vocab, gen):
    """Without teacher forcing the image losses reach the box and mask heads through the
    differentiable layout."""
    batch = make_batch(vocab, cfg)
    batch.box_given = torch.zeros_like(batch.box_given)
    out = gen(batch, use_gt_layout=False)
    (out.images - batch.images).abs().mean().backward()
    assert gen.box_head.mlp[0].weight.grad.abs().sum() > 0
    assert gen.mask_head.fc.weight.grad.abs().sum() > 0


def test_visual_genome_batches_without_masks(cfg, vocab, gen):
    batch = make_batch(vocab, cfg, with_masks=False)
    assert batch.masks is None
    out = gen(batch, use_gt_layout=True)
    assert (out.masks == 1).all()
    terms = generator_loss_terms(out, GALSDiscriminator(cfg.model, vocab.num_objects), batch,
                                 cfg.loss)
    assert "mask" not in terms and "box" in terms


def test_zero_weights_skip_terms_and_vgg_needs_module(vocab):
    cfg = Config.from_preset("tiny", ["loss.gan_weight=0", "loss.feat_match_weight=0",
                                      "loss.obj_gan_weight=0", "loss.obj_aux_weight=0",
                                      "loss.box_weight=0"])
    gen = GALSGenerator(cfg.model, vocab.num_objects, vocab.num_preds)
    batch = make_batch(vocab, cfg)
    out = gen(batch, use_gt_layout=True)
    terms = generator_loss_terms(out, None, batch, cfg.loss)
    assert set(terms) == {"l1", "mask", "local_l1", "class"}
    expected = sum(getattr(cfg.loss, f"{k}_weight") * v for k, v in terms.items())
    torch.testing.assert_close(weighted_total(terms, cfg.loss), expected)
    vgg_cfg = Config.from_preset("tiny", ["loss.vgg_weight=1"])
    with pytest.raises(ValueError, match="vgg"):
        generator_loss_terms(out, GALSDiscriminator(cfg.model, vocab.num_objects), batch,
                             vgg_cfg.loss)


def test_image_sizes_64_and_128(vocab):
    for size, mask in ((64, 16), (128, 32)):
        cfg = Config.from_preset("tiny", [f"model.renderer.image_size={size}",
                                          f"model.layout.mask_size={mask}"])
        gen = GALSGenerator(cfg.model, vocab.num_objects, vocab.num_preds)
        batch = make_batch(vocab, cfg, num_objs=(2,))
        with torch.no_grad():
            out = gen(batch, use_gt_layout=True)
        assert out.images.shape == (1, 3, size, size)
        assert out.masks_pred.shape[-1] == mask


def test_channels_last_models_run(cfg, vocab, gen):
    """The trainer converts G and D to channels_last on CUDA; every parameter must allow it."""
    disc = GALSDiscriminator(cfg.model, vocab.num_objects)
    gen.to(memory_format=torch.channels_last)
    disc.to(memory_format=torch.channels_last)
    batch = make_batch(vocab, cfg)
    batch.images = batch.images.contiguous(memory_format=torch.channels_last)
    out = gen(batch, use_gt_layout=True)
    terms = generator_loss_terms(out, disc, batch, cfg.loss)
    assert torch.isfinite(weighted_total(terms, cfg.loss))

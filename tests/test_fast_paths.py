"""Issue 18: the faster paths compute what the plain ones did, and the cheaper generator options
stay off for existing checkpoints."""

from pathlib import Path

import pytest
import torch

from sg2img import api
from sg2img.config import Config, ConfigError
from sg2img.generators import GlobalAffineGenerator
from sg2img.layout import embedding_layout, instance_edges, semantic_layout
from sg2img.model import GALSGenerator
from sg2img.scene_graph import GraphSample, collate_graphs


def _batch(num_objects, num_preds, mask_size, image_size, n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    samples = []
    for _ in range(n):
        k = int(torch.randint(2, 6, (1,), generator=g))
        objs = torch.randint(1, num_objects, (k,), generator=g)
        triples = torch.stack([torch.randint(0, k, (k,), generator=g),
                               torch.randint(1, num_preds, (k,), generator=g),
                               torch.randint(0, k, (k,), generator=g)], dim=1)
        xy = torch.rand(k, 2, generator=g) * 0.6
        boxes = torch.cat([xy, xy + 0.1 + 0.3 * torch.rand(k, 2, generator=g)], dim=1)
        masks = torch.rand(k, mask_size, mask_size, generator=g)   # soft masks
        image = torch.zeros(3, image_size, image_size)
        samples.append(GraphSample(objs, triples, boxes=boxes, masks=masks,
                                   image=image).with_image_node())
    return collate_graphs(samples)


def _dense_conditioning(G, layout, obj_vecs, boxes, masks, obj_to_img, z, edges=None,
                        attributes=None):
    """The conditioning as it was computed before the fused path: one 1x1 conv over the concatenated
    semantic layout, embedding layout, broadcast noise (and instance edges); with
    ``model.renderer.paint_attributes`` also the multi-hot attributes painted as (N, A, H, W)
    channels through their own 1x1 conv columns."""
    N, _, H, W = layout.shape
    parts = [layout, embedding_layout(obj_vecs, boxes, masks, obj_to_img, N, H, W)]
    if G.noise_proj is not None:
        parts.append(G.noise_proj(z)[:, :, None, None].expand(-1, -1, H, W))
    if edges is not None:
        parts.append(edges.to(layout.dtype))
    pre = G.cond_encoder[0](torch.cat(parts, dim=1))
    if G.attr_cond is not None and attributes is not None:
        painted = embedding_layout(attributes.to(pre.dtype), boxes, masks, obj_to_img, N, H, W)
        pre = pre + torch.einsum("nahw,ca->nchw", painted, G.attr_cond.weight)
    return G.cond_encoder[1](pre)


@pytest.mark.parametrize("noise,edges,attrs", [(4, False, 0), (0, False, 0), (4, True, 0),
                                               (4, False, 6)])
def test_conditioning_equals_the_dense_one_forward_and_backward(noise, edges, attrs):
    cfg = Config.from_preset("tiny", [f"model.renderer.layout_noise_dim={noise}",
                                      f"model.renderer.use_instance_edges={edges}"]).model
    torch.manual_seed(0)
    # float64: the two are the same sums in another order, so they agree to rounding.
    G = GALSGenerator(cfg, 30, 5, num_attributes=attrs).double()
    assert (G.attr_cond is not None) == (attrs > 0)
    batch = _batch(30, 5, cfg.layout.mask_size, cfg.renderer.image_size)
    boxes = batch.boxes.double()
    N, H = batch.num_images, cfg.renderer.image_size
    obj_vecs = torch.randn(len(batch.objs), cfg.layout.gconv_dim, dtype=torch.float64,
                           requires_grad=True)
    masks = batch.masks.double().requires_grad_(True)
    z = torch.randn(N, cfg.renderer.noise_dim, dtype=torch.float64)
    attributes = (torch.rand(len(batch.objs), attrs) < 0.3).double() if attrs else None
    grads = []
    for fn in (_dense_conditioning, GALSGenerator.encode_conditioning):
        layout = semantic_layout(batch.objs, boxes, masks, batch.obj_to_img, N, 30, H, H)
        edge_map = (instance_edges(batch.objs, boxes, masks, batch.obj_to_img, N, H, H)
                    if edges else None)
        out = fn(G, layout, obj_vecs, boxes, masks, batch.obj_to_img, z, edge_map, attributes)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        grads.append([out.detach(), obj_vecs.grad.clone(), masks.grad.clone(),
                      *(p.grad.clone() for p in G.parameters() if p.grad is not None)])
        obj_vecs.grad = masks.grad = None
        G.zero_grad(set_to_none=True)
    assert len(grads[0]) == len(grads[1]) > 3
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


def test_bundled_model_images_unchanged_by_the_fast_conditioning(monkeypatch):
    """The bundled checkpoint (the `small` preset: 3x3 SPADE, no narrow upsampling) builds
    that architecture and gives the same images as with the old dense conditioning."""
    model = api.load_model(device="cpu")
    assert not model.config.model.renderer.narrow_upsample
    assert model.generator.global_gen.blocks[-1].norm_0.gamma_beta.kernel_size == (3, 3)
    files = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.json"))[:2]
    fast = api.generate(files, model, seed=5).tensors
    monkeypatch.setattr(GALSGenerator, "encode_conditioning", _dense_conditioning)
    dense = api.generate(files, model, seed=5).tensors
    torch.testing.assert_close(fast, dense, rtol=0, atol=1e-4)


@pytest.mark.parametrize("in_ch,out_ch", [(6, 4), (5, 5)])
def test_fused_spade_block_equals_the_plain_one_forward_and_backward(in_ch, out_ch):
    from sg2img.generators import SPADEResBlock
    from sg2img.generators.global_affine import spade_block_reference

    torch.manual_seed(0)
    block = SPADEResBlock(in_ch, out_ch, cond_ch=3, hidden=7).double()
    with torch.no_grad():                     # nonzero biases, so the folded "1 +" matters
        for p in block.parameters():
            p.add_(0.3 * torch.randn_like(p))
    grads = {}
    for name, fn in (("fused", block), ("plain", lambda x, c: spade_block_reference(block, x, c))):
        x = torch.randn(2, in_ch, 8, 8, dtype=torch.float64,
                        generator=torch.Generator().manual_seed(1), requires_grad=True)
        cond = torch.randn(2, 3, 8, 8, dtype=torch.float64,
                           generator=torch.Generator().manual_seed(2), requires_grad=True)
        block.zero_grad()
        out = fn(x, cond)
        (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
        grads[name] = [out.detach(), x.grad, cond.grad] + [p.grad.clone()
                                                          for p in block.parameters()]
    for a, b in zip(grads["fused"], grads["plain"], strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)
    # The offset buffer is not saved: checkpoints keep their keys.
    assert not any("scale_offset" in k for k in block.state_dict())


def test_cheap_generator_options_shapes_and_cost():
    from torch.utils.flop_counter import FlopCounterMode

    z, cond = torch.randn(2, 8), torch.randn(2, 6, 64, 64)
    flops = {}
    for narrow in (False, True):
        torch.manual_seed(0)
        gen = GlobalAffineGenerator(64, noise_dim=8, cond_ch=6, base_channels=4,
                                    narrow_upsample=narrow)
        with FlopCounterMode(display=False) as fc:
            img, feats = gen(z, cond)
        assert img.shape == (2, 3, 64, 64) and feats.shape == (2, 4, 64, 64)
        assert img.abs().max() <= 1
        assert gen.blocks[0].norm_0.gamma_beta.kernel_size == (3, 3)
        # Narrow: every block keeps its width (no shortcut conv); reduce convs between stages.
        shortcuts = [b.conv_s is not None for b in gen.blocks]
        assert not any(shortcuts) if narrow else any(shortcuts)
        assert (gen.reduce is not None) == narrow
        flops[narrow] = fc.get_total_flops()
    assert flops[True] < flops[False]


def test_paper_scale_presets_narrow_the_upsampling_and_small_does_not():
    for name in ("coco64", "coco128", "vg64", "vg128"):
        model = Config.from_preset(name).model
        assert model.renderer.narrow_upsample, name
    for name in ("tiny", "small"):
        assert not Config.from_preset(name).model.renderer.narrow_upsample, name


def test_old_configs_keep_the_old_generator_and_bad_values_are_errors():
    d = Config.from_preset("small").to_dict()
    d["model"]["renderer"].pop("narrow_upsample")
    old = Config.from_dict(d).model            # a config written before the option
    assert old.renderer.narrow_upsample is False
    with pytest.raises(ConfigError, match="spade_kernel"):     # removed: an unknown key
        Config.from_preset("tiny", ["model.spade_kernel=5"])


@pytest.mark.parametrize("size", [128, 48])
def test_load_image_in_numpy_matches_the_torch_formulation(tmp_path, size):
    import numpy as np
    from PIL import Image

    from sg2img.data.coco import load_image

    rng = np.random.default_rng(0)
    path = tmp_path / "im.png"
    Image.fromarray(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)).save(path)
    img = load_image(path, size)
    with Image.open(path) as im:
        im = im.convert("RGB")
        if im.size != (size, size):
            im = im.resize((size, size), Image.BILINEAR)
        arr = np.asarray(im, dtype=np.float32)
    ref = torch.from_numpy(arr).permute(2, 0, 1).contiguous() / 127.5 - 1.0
    assert img.dtype == torch.float32 and img.is_contiguous() and img.shape == (3, size, size)
    assert torch.equal(img, ref)

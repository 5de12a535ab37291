"""The stochastic layout head (model.layout.head="sample") and its wiring (issue 13)."""

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from sg2img.checkpoint import build_generator, export_inference, load_checkpoint
from sg2img.config import Config, ConfigError
from sg2img.graph import BoxHead
from sg2img.layout_head import (
    NOISE_DIM,
    BoxMixture,
    MixtureBoxHead,
    _argmax_per_group,
    boxes_to_params,
    draw_layout_noise,
    mixture_pick,
    params_to_boxes,
)
from sg2img.losses import box_mixture_nll
from sg2img.model import GALSGenerator
from sg2img.objectives import generator_loss_terms, layout_loss_terms, weighted_total
from sg2img.scene_graph import GraphSample, collate_graphs


def make_batch(vocab, cfg, num_objs=(3, 2, 4), seed=0):
    """Random graphs with boxes, masks and images, a chain of 'left of' triples each."""
    g = torch.Generator().manual_seed(seed)
    H, M = cfg.model.renderer.image_size, cfg.model.layout.mask_size
    samples = []
    for n in num_objs:
        objs = torch.randint(1, vocab.num_objects, (n,), generator=g)
        triples = torch.tensor([[i, 1, i + 1] for i in range(n - 1)]).reshape(-1, 3)
        xy = torch.rand(n, 2, generator=g) * 0.5
        boxes = torch.cat([xy, xy + 0.1 + 0.3 * torch.rand(n, 2, generator=g)], dim=1)
        masks = (torch.rand(n, M, M, generator=g) > 0.3).float()
        image = torch.rand(3, H, H, generator=g) * 2 - 1
        samples.append(GraphSample(objs, triples, boxes=boxes, masks=masks,
                                   image=image).with_image_node())
    return collate_graphs(samples)


def unpinned(batch):
    return replace(batch, box_given=torch.zeros_like(batch.box_given))


def sample_cfg(sequential=True, k=3):
    return Config.from_preset("tiny", {"model.layout.head": "sample",
                                       "model.layout.num_components": k,
                                       "model.layout.sequential": sequential})


def make_gen(cfg, vocab):
    torch.manual_seed(0)
    return GALSGenerator(cfg.model, vocab.num_objects, vocab.num_preds).eval()


@pytest.fixture(params=[True, False], ids=["sequential", "independent"])
def sequential(request):
    return request.param


def test_config_checks_the_head_name():
    with pytest.raises(ConfigError, match=r"model\.layout\.head"):
        Config.from_preset("tiny", {"model.layout.head": "diffusion"})
    with pytest.raises(ConfigError, match=r"model\.layout\.num_components"):
        Config.from_preset("tiny", {"model.layout.num_components": 0})
    assert Config().model.layout.head == "regress"


def test_shapes_and_boxes_inside_the_image(vocab, sequential):
    cfg = sample_cfg(sequential)
    gen = make_gen(cfg, vocab)
    batch = unpinned(make_batch(vocab, cfg))
    with torch.no_grad():
        for mode in ("mode", "sample"):
            out = gen(batch, layout_mode=mode, rng=torch.Generator().manual_seed(3))
            b = out.boxes_pred
            assert b.shape == (batch.num_objects, 4) and out.images.shape[0] == 3
            assert b.min() >= 0 and b.max() <= 1
            assert (b[:, 2] > b[:, 0]).all() and (b[:, 3] > b[:, 1]).all()
            img = batch.objs == 0
            torch.testing.assert_close(out.boxes[img], torch.tensor([[0.0, 0, 1, 1]]).expand(3, 4))


def test_seed_fixes_the_sample_and_a_new_seed_changes_it(vocab, sequential):
    gen = make_gen(sample_cfg(sequential), vocab)
    batch = unpinned(make_batch(vocab, sample_cfg()))
    real = batch.objs != 0

    def draw(seed):
        with torch.no_grad():
            return gen.layout_boxes(batch, layout_mode="sample",
                                    rng=torch.Generator().manual_seed(seed))
    a, b, c = draw(1), draw(1), draw(2)
    assert torch.equal(a, b)
    assert (a[real] - c[real]).abs().max() > 1e-3
    # The noise can also be given explicitly: the same noise, the same layout.
    noise = draw_layout_noise(batch.num_objects, torch.Generator().manual_seed(5))
    with torch.no_grad():
        n1 = gen(batch, layout_mode="sample", layout_noise=noise).boxes_pred
        n2 = gen(batch, layout_mode="sample", layout_noise=noise).boxes_pred
    assert torch.equal(n1, n2)


def test_mode_is_deterministic_and_ignores_the_generator(vocab, sequential):
    gen = make_gen(sample_cfg(sequential), vocab)
    batch = unpinned(make_batch(vocab, sample_cfg()))
    with torch.no_grad():
        a = gen(batch, layout_mode="mode", rng=torch.Generator().manual_seed(1))
        b = gen(batch, layout_mode="mode", rng=torch.Generator().manual_seed(2))
    assert torch.equal(a.boxes_pred, b.boxes_pred)
    with pytest.raises(ValueError, match="layout_mode"):
        gen(batch, layout_mode="best")


def test_pinned_and_overridden_boxes_are_kept_and_condition_the_others(vocab):
    cfg = sample_cfg(sequential=True)
    gen = make_gen(cfg, vocab)
    batch = make_batch(vocab, cfg)
    given = torch.zeros(batch.num_objects, dtype=torch.bool)
    given[0] = True                                    # pin the first object of image 0
    pinned = replace(batch, box_given=given)
    with torch.no_grad():
        for mode in ("mode", "sample"):
            out = gen(pinned, layout_mode=mode, rng=torch.Generator().manual_seed(0))
            torch.testing.assert_close(out.boxes[0], batch.boxes[0])
            torch.testing.assert_close(out.boxes_pred[0], batch.boxes[0])
        # Move the pin: the pinned object's neighbours (same image) are laid out again.
        moved = replace(pinned, boxes=batch.boxes.clone())
        moved.boxes[0] = torch.tensor([0.7, 0.7, 0.95, 0.95])
        a = gen(pinned).boxes_pred
        b = gen(moved).boxes_pred
        assert (a[1:3] - b[1:3]).abs().max() > 1e-5
        torch.testing.assert_close(a[3:], b[3:])     # other images do not see it
        # Manipulation's override: fixed boxes for the overridden objects.
        ov = torch.zeros(batch.num_objects, dtype=torch.bool)
        ov[4] = True
        boxes_ov = torch.zeros(batch.num_objects, 4)
        boxes_ov[4] = torch.tensor([0.1, 0.2, 0.3, 0.4])
        masks_ov = torch.ones(batch.num_objects, cfg.model.layout.mask_size,
                              cfg.model.layout.mask_size)
        out = gen(unpinned(batch), override=ov, boxes_override=boxes_ov, masks_override=masks_ov,
                  layout_mode="sample", rng=torch.Generator().manual_seed(0))
        torch.testing.assert_close(out.boxes[4], boxes_ov[4])


def test_old_checkpoints_load_as_regress(tmp_path, vocab):
    cfg = Config.from_preset("tiny")
    torch.manual_seed(0)
    gen = GALSGenerator(cfg.model, vocab.num_objects, vocab.num_preds)
    d = cfg.to_dict()
    for key in ("head", "num_components", "sequential"):
        del d["model"]["layout"][key]                    # a config from before the options
    export_inference(tmp_path / "old.pt", d, vocab, gen)
    loaded, loaded_cfg, _ = build_generator(load_checkpoint(tmp_path / "old.pt"))
    assert loaded_cfg.model.layout.head == "regress"
    assert isinstance(loaded.box_head, BoxHead) and not loaded.samples_layout
    batch = unpinned(make_batch(vocab, cfg))
    with torch.no_grad():
        a = loaded(batch, layout_mode="sample").boxes_pred   # one layout: sample == mode
        b = loaded(batch, layout_mode="mode").boxes_pred
    torch.testing.assert_close(a, b)


def test_sample_model_round_trips_through_an_export(tmp_path, vocab):
    cfg = sample_cfg()
    gen = make_gen(cfg, vocab)
    export_inference(tmp_path / "s.pt", cfg, vocab, gen)
    loaded, _, _ = build_generator(tmp_path / "s.pt")
    assert isinstance(loaded.box_head, MixtureBoxHead)
    batch = unpinned(make_batch(vocab, cfg))
    with torch.no_grad():
        torch.testing.assert_close(loaded.layout_boxes(batch), gen.layout_boxes(batch))


def test_gradients_reach_the_head(vocab, sequential):
    cfg = sample_cfg(sequential)
    gen = make_gen(cfg, vocab).train()
    batch = make_batch(vocab, cfg)
    terms = layout_loss_terms(gen, batch, cfg.loss)
    assert set(terms) == {"box_nll", "mask"}
    weighted_total(terms, cfg.loss).backward()
    for name, p in gen.box_head.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert gen.gconv.layers[0].propose[0].weight.grad.abs().sum() > 0
    # The GAN step's objectives score the mixture with the box_nll term too.
    gen.zero_grad()
    out = gen(batch, use_gt_layout=True)
    assert out.box_mixture is not None
    cfg_g = cfg.loss.__class__(gan_weight=0, feat_match_weight=0, obj_gan_weight=0,
                               obj_aux_weight=0)
    g_terms = generator_loss_terms(out, None, batch, cfg_g)
    assert "box_nll" in g_terms and "box" not in g_terms
    g_terms["box_nll"].backward()
    assert gen.box_head.mlp[-1].weight.grad.abs().sum() > 0


def test_a_few_training_steps_lower_the_box_nll(vocab):
    cfg = sample_cfg(sequential=True, k=2)
    gen = make_gen(cfg, vocab).train()
    batch = make_batch(vocab, cfg)
    opt = torch.optim.Adam(gen.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(25):
        terms = layout_loss_terms(gen, batch, cfg.loss, rng=g)
        loss = weighted_total(terms, cfg.loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(terms["box_nll"].item())
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0] - 5.0


def test_anchor_term_pulls_towards_given_vectors(vocab):
    cfg = sample_cfg()
    gen = make_gen(cfg, vocab)
    batch = make_batch(vocab, cfg)
    vecs, _ = gen.encode_graph(batch)
    terms = layout_loss_terms(gen, batch, cfg.loss, anchor_vecs=vecs.detach())
    assert terms["layout_anchor"].item() == pytest.approx(0.0, abs=1e-12)
    terms = layout_loss_terms(gen, batch, cfg.loss, anchor_vecs=vecs.detach() + 1.0)
    assert terms["layout_anchor"].item() == pytest.approx(1.0, rel=1e-5)


def test_mixture_nll_hand_cases():
    # One standard normal per dimension, target at the mean: D/2 * log(2 pi).
    logits = torch.zeros(1, 1)
    means = torch.zeros(1, 1, 4)
    log_stds = torch.zeros(1, 1, 4)
    target = torch.zeros(1, 4)
    assert box_mixture_nll(logits, means, log_stds, target).item() == pytest.approx(
        2 * math.log(2 * math.pi))
    # Against torch.distributions on a random mixture.
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 3, generator=g)
    means = torch.randn(5, 3, 4, generator=g)
    log_stds = torch.randn(5, 3, 4, generator=g) * 0.3
    target = torch.randn(5, 4, generator=g)
    D = torch.distributions
    mix = D.MixtureSameFamily(D.Categorical(logits=logits),
                              D.Independent(D.Normal(means, log_stds.exp()), 1))
    want = -mix.log_prob(target).mean()
    torch.testing.assert_close(box_mixture_nll(logits, means, log_stds, target), want)
    valid = torch.tensor([True, False, True, False, False])
    torch.testing.assert_close(box_mixture_nll(logits, means, log_stds, target, valid),
                               -mix.log_prob(target)[valid].mean())
    assert box_mixture_nll(logits, means, log_stds, target, torch.zeros(5, dtype=bool)) == 0


def test_mixture_pick_inverse_cdf_and_mode():
    mix = BoxMixture(logits=torch.log(torch.tensor([[0.25, 0.75], [0.25, 0.75]])),
                     means=torch.tensor([[[0.1] * 4, [0.9] * 4]] * 2),
                     log_stds=torch.full((2, 2, 4), math.log(0.5)))
    noise = torch.tensor([[0.1, 0, 0, 0, 2.0], [0.5, 0, 0, 0, 0]])
    out = mixture_pick(mix, noise)
    torch.testing.assert_close(out[0], torch.tensor([0.1, 0.1, 0.1, 1.1]))  # 0.1 + 0.5 * 2
    torch.testing.assert_close(out[1], torch.full((4,), 0.9))
    torch.testing.assert_close(mixture_pick(mix, None), torch.full((2, 4), 0.9))


def test_box_parameters_round_trip_and_stay_inside():
    boxes = torch.tensor([[0.1, 0.2, 0.4, 0.9], [0.0, 0.0, 1.0, 1.0]])
    torch.testing.assert_close(params_to_boxes(boxes_to_params(boxes)), boxes)
    wild = torch.tensor([[-3.0, 4.0, 5.0, -20.0], [0.5, 0.5, 0.0, 0.0]])
    b = params_to_boxes(wild)
    assert b.min() >= 0 and b.max() <= 1
    assert (b[:, 2] - b[:, 0] >= 0.01 - 1e-6).all() and (b[:, 3] - b[:, 1] >= 0.01 - 1e-6).all()
    torch.testing.assert_close(b[1], torch.tensor([0.0, 0.0, 1.0, 1.0]))


def test_argmax_per_group():
    score = torch.tensor([1.0, 3.0, 3.0, 0.5, 2.0, -1.0])
    valid = torch.tensor([True, True, True, True, False, True])
    group = torch.tensor([0, 0, 0, 2, 2, 3])
    out = _argmax_per_group(score, valid, group)
    assert out.tolist() == [False, True, False, True, False, True]   # ties: first index


def test_noise_shape_is_checked(vocab):
    gen = make_gen(sample_cfg(), vocab)
    batch = unpinned(make_batch(vocab, sample_cfg()))
    with pytest.raises(ValueError, match="layout noise"):
        gen(batch, layout_mode="sample", layout_noise=torch.zeros(2, NOISE_DIM))


def test_generate_samples_layouts_by_seed(tmp_path, vocab, sheep_graph):
    from sg2img.api import GenerationError, generate, load_model

    cfg = sample_cfg()
    export_inference(tmp_path / "s.pt", cfg, vocab, make_gen(cfg, vocab))
    model = load_model(tmp_path / "s.pt", device="cpu")
    a = generate(sheep_graph, model, seed=1)
    b = generate(sheep_graph, model, seed=1)
    c = generate(sheep_graph, model, seed=2)
    assert torch.equal(a.boxes[0], b.boxes[0])
    assert (a.boxes[0] - c.boxes[0]).abs().max() > 1e-3
    m1 = generate(sheep_graph, model, seed=1, layout_mode="mode")
    m2 = generate(sheep_graph, model, seed=2, layout_mode="mode")
    assert torch.equal(m1.boxes[0], m2.boxes[0])
    # A layout does not depend on the batching: the same graph twice is the same layout
    # (the seed rule); another sample is another layout.
    two = generate([sheep_graph, sheep_graph], model, seed=4, batch_size=1)
    together = generate([sheep_graph, sheep_graph], model, seed=4, batch_size=2)
    torch.testing.assert_close(two.boxes[1], together.boxes[1])
    assert torch.equal(two.boxes[0], two.boxes[1])
    samples = generate(sheep_graph, model, seed=4, num_samples=2)
    assert torch.equal(samples.boxes[0], two.boxes[0])
    assert (samples.boxes[1] - samples.boxes[0]).abs().max() > 1e-3
    with pytest.raises(GenerationError, match="layout_mode"):
        generate(sheep_graph, model, seed=1, layout_mode="median")


def test_spatial_predicates_match_the_dataset_rule():
    from sg2img.data.common import spatial_predicate
    from sg2img.layout_head import spatial_predicates

    g = torch.Generator().manual_seed(0)
    xy = torch.rand(400, 2, 2, generator=g, dtype=torch.float64) * 0.6
    boxes = torch.cat([xy, xy + 0.02 + torch.rand(400, 2, 2, generator=g,
                                                   dtype=torch.float64) * 0.4], dim=2)
    boxes[:50, 1] = boxes[:50, 0] + torch.tensor([0.01, 0.01, -0.01, -0.01],
                                                 dtype=torch.float64)      # inside
    got = spatial_predicates(boxes[:, 0], boxes[:, 1])
    centre = (boxes[..., :2] + boxes[..., 2:]) / 2
    want = [spatial_predicate(b[0].tolist(), b[1].tolist(), c[0].tolist(), c[1].tolist())
            for b, c in zip(boxes, centre, strict=True)]
    assert got.tolist() == want
    assert len(set(want)) == 6


def test_relation_check_keeps_the_components_that_satisfy_the_triples():
    from sg2img.layout_head import geometric_codes

    head = MixtureBoxHead(dim=4, hidden_dim=8, num_components=2, sequential=True)
    # Object 0 is placed at the right; object 1 is "left of" it. Its heavier component sits
    # right of object 0, the lighter one left of it.
    params = boxes_to_params(torch.tensor([[0.6, 0.4, 0.9, 0.6], [0.0, 0.0, 0.1, 0.1]]))
    log_wh = math.log(0.2)
    mix = BoxMixture(logits=torch.log(torch.tensor([[0.5, 0.5], [0.8, 0.2]])),
                     means=torch.tensor([[[0.5, 0.5, log_wh, log_wh]] * 2,
                                         [[0.95, 0.5, log_wh, log_wh],
                                          [0.2, 0.5, log_wh, log_wh]]]),
                     log_stds=torch.full((2, 2, 4), math.log(0.01)))
    codes = geometric_codes(["__in_image__", "left of", "on"])
    assert codes.tolist() == [-1, 1, -1]
    edges = torch.tensor([[1, 0], [1, 0]])
    placed = torch.tensor([True, False])
    chosen = torch.tensor([False, True])
    allowed = head._satisfying(mix, None, edges, codes[torch.tensor([1, 2])], params, placed,
                               chosen)
    assert allowed[1].tolist() == [False, True]
    assert allowed[0].tolist() == [True, True]          # nothing to check for object 0
    picked = mixture_pick(mix, None, allowed)
    assert picked[1, 0].item() == pytest.approx(0.2)     # the lighter, satisfying component
    assert mixture_pick(mix, None)[1, 0].item() == pytest.approx(0.95)
    # A sample is drawn among the satisfying components only, whatever its uniform.
    for u in (0.0, 0.3, 0.99):
        noise = torch.tensor([[u, 0, 0, 0, 0]] * 2)
        allowed = head._satisfying(mix, noise, edges, codes[torch.tensor([1, 2])], params,
                                   placed, chosen)
        assert mixture_pick(mix, noise, allowed)[1, 0].item() == pytest.approx(0.2)


def test_models_built_from_checkpoints_check_relations(tmp_path, vocab):
    cfg = sample_cfg()
    export_inference(tmp_path / "s.pt", cfg, vocab, make_gen(cfg, vocab))
    loaded, _, _ = build_generator(tmp_path / "s.pt")
    assert loaded.pred_codes is not None and len(loaded.pred_codes) == vocab.num_preds
    off = cfg.with_overrides({"model.layout.respect_relations": False})
    export_inference(tmp_path / "off.pt", off, vocab, make_gen(off, vocab))
    assert build_generator(tmp_path / "off.pt")[0].pred_codes is None


def test_cli_generate_layout_mode(tmp_path, vocab, sheep_graph):
    """``sg2img generate --layout-mode``: 'mode' gives every seed the same layout, the default
    (sample, for a sampling head) a new one per seed."""
    import json

    from PIL import Image

    from sg2img.cli import main

    cfg = sample_cfg()
    export_inference(tmp_path / "s.pt", cfg, vocab, make_gen(cfg, vocab))
    graph = tmp_path / "g.json"
    graph.write_text(json.dumps(sheep_graph))

    def layout(seed, *mode):
        out = tmp_path / f"out_{seed}_{'_'.join(mode) or 'default'}"
        assert main(["generate", str(graph), "--checkpoint", str(tmp_path / "s.pt"), "--seed",
                     str(seed), "--save-layout", "--device", "cpu", "--out", str(out),
                     *mode]) == 0
        return np.asarray(Image.open(out / "g_000_layout.png"))

    assert np.array_equal(layout(1, "--layout-mode", "mode"), layout(2, "--layout-mode", "mode"))
    assert not np.array_equal(layout(1), layout(2))
    assert np.array_equal(layout(1), layout(1, "--layout-mode", "sample"))

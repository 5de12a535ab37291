"""Stuff that partitions the canvas (``partition_stuff``, ``model.layout.stuff_partition``) and
the canvas measures that check it (``sg2img.eval.canvas``)."""

import dataclasses

import pytest
import torch

from sg2img.eval.canvas import canvas_coverage
from sg2img.layout import partition_stuff, warp_masks
from sg2img.model import GALSGenerator
from sg2img.own_layout import predicted_layout


def _two_bands():
    """Image 0: sky and grass boxes overlapping in y in [0.4, 0.6], grass stopping short of
    the right edge; a thing on top. Image 1: one stuff object covering half the canvas."""
    boxes = torch.tensor([[0.0, 0.0, 1.0, 0.6], [0.0, 0.4, 0.9, 1.0], [0.3, 0.3, 0.5, 0.5],
                          [0.0, 0.0, 1.0, 0.5]])
    masks = torch.ones(4, 16, 16)
    masks[1, :, :] = 0.9
    obj_to_img = torch.tensor([0, 0, 0, 1])
    is_stuff = torch.tensor([True, True, False, True])
    return boxes, masks, obj_to_img, is_stuff


def test_every_pixel_belongs_to_exactly_one_stuff_object():
    boxes, masks, o2i, stuff = _two_bands()
    new_boxes, new_masks = partition_stuff(boxes, masks, o2i, 2, stuff, 64)
    warped = warp_masks(new_boxes, new_masks, 64, 64) >= 0.5                  # (O, 64, 64)
    owners = warped[0].int() + warped[1].int()
    assert (owners == 1).float().mean() > 0.98          # edges: the masks' resolution
    assert (owners == 0).float().mean() < 0.01
    # The overlap went to the stronger mask (sky, 1.0 against 0.9): the grass starts at
    # 0.6. The strip right of the grass box, below the sky box, went to the nearest box
    # instead of nobody: its top corner to the sky, the rest to the grass.
    assert new_boxes[1].tolist() == pytest.approx([0.0, 0.6, 1.0, 1.0], abs=1 / 64)
    assert new_boxes[0][:3].tolist() == pytest.approx([0.0, 0.0, 1.0])
    assert 0.6 < new_boxes[0][3] < 0.7
    # The thing is untouched; the lone stuff object of image 1 takes its whole canvas.
    assert torch.equal(new_boxes[2], boxes[2]) and torch.equal(new_masks[2], masks[2])
    assert new_boxes[3].tolist() == pytest.approx([0.0, 0.0, 1.0, 1.0])


def test_things_lie_on_top_and_the_stuff_gives_up_their_pixels():
    boxes, masks, o2i, stuff = _two_bands()
    thing = torch.tensor([False, False, True, False])
    new_boxes, new_masks = partition_stuff(boxes, masks, o2i, 2, stuff, 64, thing)
    warped = warp_masks(new_boxes, new_masks, 64, 64) >= 0.5
    under = warp_masks(boxes[2:3], masks[2:3], 64, 64)[0] >= 0.5             # the thing
    inner = torch.zeros_like(under)
    inner[21:31, 21:31] = True                      # its pixels away from the mask's edge
    assert not (warped[0] | warped[1])[inner].any()  # only the thing there
    owners = warped[0].int() + warped[1].int() + under.int()
    assert (owners == 1).float().mean() > 0.97


def test_a_stuff_object_that_wins_nothing_keeps_its_box_with_an_empty_mask():
    boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.2, 0.2, 0.4, 0.4]])
    masks = torch.ones(2, 8, 8)
    masks[1] = 0.5                                      # weaker everywhere it could win
    new_boxes, new_masks = partition_stuff(boxes, masks, torch.tensor([0, 0]), 1,
                                           torch.tensor([True, True]), 32)
    assert torch.equal(new_boxes[1], boxes[1])
    assert new_masks[1].abs().max() == 0


def test_a_pinned_stuff_box_is_never_outgrown():
    boxes, masks, o2i, stuff = _two_bands()
    pinned = torch.tensor([False, True, False, False])      # the grass, short of the right edge
    new_boxes, _ = partition_stuff(boxes, masks, o2i, 2, stuff, 64, pinned=pinned)
    assert new_boxes[1][2] <= 0.9 + 1 / 64                   # unpinned it grew to 1.0
    assert new_boxes[0].tolist() == pytest.approx([0.0, 0.0, 1.0, 1.0])  # the sky fills in
    only = torch.tensor([True, True, False, True])           # every stuff object pinned
    new_boxes, new_masks = partition_stuff(boxes, masks, o2i, 2, stuff, 64, pinned=only)
    warped = warp_masks(new_boxes, new_masks, 64, 64) >= 0.5
    assert not warped[0, 45:, 60:].any() and not warped[1, 45:, 60:].any()  # a gap, as set


def test_without_stuff_nothing_changes():
    boxes, masks, o2i, _ = _two_bands()
    none = torch.zeros(4, dtype=torch.bool)
    b, m = partition_stuff(boxes, masks, o2i, 2, none, 64)
    assert b is boxes and m is masks


def test_canvas_coverage_hand_case():
    layout = torch.zeros(1, 4, 10, 10)          # channel 0 unlabelled; 1, 2 stuff; 3 thing
    layout[0, 1, :6] = 1.0                      # rows 0-5: stuff 1
    layout[0, 2, 4:9] = 1.0                     # rows 4-8: stuff 2 (rows 4-5 overlap)
    layout[0, 3, 9, :5] = 0.5                   # row 9: half a thing on half the row
    layout[0, 0] = 1 - layout[0, 1:].sum(0).clamp(max=1)
    overlap, uncovered, soft = canvas_coverage(layout, [1, 2])[0].tolist()
    assert overlap == pytest.approx(0.2)
    assert uncovered == pytest.approx(0.1)      # row 9: nothing (5 px) or half a thing (5 px)
    assert soft == pytest.approx(0.05)


def _stuff_model(vocab, partition: bool, *options: str):
    from sg2img.config import Config

    cfg = Config.from_preset("tiny", [
        "model.layout.head=sample", f"model.layout.stuff_partition={str(partition).lower()}",
        *options])
    torch.manual_seed(0)
    stuff = [vocab.object_names.index(n) for n in ("sky", "grass")]
    return GALSGenerator(cfg.model, vocab.num_objects, vocab.num_preds,
                         pred_names=vocab.pred_names, stuff_ids=stuff).eval()


def test_the_model_renders_from_a_partition_and_reports_it(vocab, sheep_graph):
    from sg2img.scene_graph import SceneGraph, collate_graphs

    batch = collate_graphs([SceneGraph.from_dict(sheep_graph).encode(vocab)] * 3)
    plain, parted = _stuff_model(vocab, False), _stuff_model(vocab, True)
    parted.load_state_dict(plain.state_dict())
    rng = lambda: torch.Generator().manual_seed(3)     # noqa: E731
    with torch.no_grad():
        a = plain(batch, layout_mode="sample", rng=rng())
        b = parted(batch, layout_mode="sample", rng=rng())
    stuff = [vocab.object_names.index(n) for n in ("sky", "grass")]
    before, after = canvas_coverage(a.layout, stuff), canvas_coverage(b.layout, stuff)
    assert (after[:, 0] <= 0.02).all() and (after[:, 1] <= 0.02).all()
    assert (before[:, :2].sum(1) > after[:, :2].sum(1)).all()  # the untrained model's stuff
    # predicted_layout gives the boxes and masks the picture was rendered from.
    boxes, masks = predicted_layout(parted, batch, layout_mode="sample", rng=rng())
    assert torch.allclose(boxes, b.boxes) and torch.allclose(masks, b.masks)


def test_partition_size_lays_a_graph_out_as_a_model_of_that_size(vocab, sheep_graph):
    """A 64 px model partitioning at 32 gives the boxes and masks of the 32 px model with the
    same weights (as the 128 px bundled model lays graphs out as the 64 px one)."""
    from sg2img.scene_graph import SceneGraph, collate_graphs

    batch = collate_graphs([SceneGraph.from_dict(sheep_graph).encode(vocab)] * 3)
    small = _stuff_model(vocab, True, "model.renderer.image_size=32")
    big = _stuff_model(vocab, True, "model.renderer.image_size=64")
    at_small = _stuff_model(vocab, True, "model.renderer.image_size=64",
                            "model.layout.partition_size=32")
    for m in (big, at_small):   # the layout branch is size-free; the renderer's stem is not
        own = m.state_dict()
        m.load_state_dict({**own, **{k: v for k, v in small.state_dict().items()
                                     if own[k].shape == v.shape}})
    rng = lambda: torch.Generator().manual_seed(3)     # noqa: E731
    (b32, m32), (b64, m64), (b, m) = (predicted_layout(x, batch, layout_mode="sample", rng=rng())
                                      for x in (small, big, at_small))
    assert torch.equal(b, b32) and torch.equal(m, m32)
    assert not (torch.equal(b64, b32) and torch.equal(m64, m32))   # the grid matters


def test_partition_size_is_bounded():
    from sg2img.config import Config, ConfigError

    with pytest.raises(ConfigError, match="partition_size"):
        Config.from_preset("tiny", ["model.layout.partition_size=-1"])


def test_a_partition_needs_the_stuff_classes(vocab):
    from sg2img.config import Config

    cfg = Config.from_preset("tiny", ["model.layout.stuff_partition=true"])
    with pytest.raises(ValueError, match="stuff_ids"):
        GALSGenerator(cfg.model, vocab.num_objects, vocab.num_preds)
    assert dataclasses.asdict(cfg.model.layout)["stuff_partition"] is True


def test_sample_temperature_pulls_sampled_boxes_towards_the_mode(vocab, sheep_graph):
    from sg2img.config import Config
    from sg2img.scene_graph import SceneGraph, collate_graphs

    batch = collate_graphs([SceneGraph.from_dict(sheep_graph).encode(vocab)] * 8)
    torch.manual_seed(0)
    cfg = Config.from_preset("tiny", ["model.layout.head=sample"])
    model = GALSGenerator(cfg.model, vocab.num_objects, vocab.num_preds,
                          pred_names=vocab.pred_names).eval()
    noise = torch.cat([torch.rand(batch.num_objects, 1), torch.randn(batch.num_objects, 4)], 1)

    def spread(temperature):
        model.cfg = cfg.with_overrides([f"model.layout.sample_temperature={temperature}"]).model
        sampled = model.layout_boxes(batch, layout_mode="sample", layout_noise=noise)
        mode = model.layout_boxes(batch, layout_mode="mode")
        return (sampled - mode).abs().mean()

    assert spread(0.0) < spread(0.5) < spread(1.0)
    # With temperature 0 a sample is its component's mean: the same boxes for any normals.
    model.cfg = cfg.with_overrides(["model.layout.sample_temperature=0"]).model
    other = torch.cat([noise[:, :1], torch.randn(batch.num_objects, 4)], 1)
    assert torch.equal(model.layout_boxes(batch, layout_mode="sample", layout_noise=noise),
                       model.layout_boxes(batch, layout_mode="sample", layout_noise=other))


def test_things_are_placed_apart_when_asked(vocab):
    """Two sheep the head would stack on one spot: with max_thing_iou the second one takes a
    component elsewhere; the sky (stuff) may still overlap them."""
    from sg2img.layout import paired_iou
    from sg2img.layout_head import MixtureBoxHead, geometric_codes

    head = MixtureBoxHead(8, 16, num_components=2, sequential=False)
    # Every object: component 0 (likelier) at the centre, component 1 in the top left corner.
    mix_means = torch.tensor([[0.5, 0.5, -1.6, -1.6], [0.2, 0.2, -1.6, -1.6]])

    def fake_mixture(obj_vecs, context=None):
        from sg2img.layout_head import BoxMixture
        O = len(obj_vecs)
        return BoxMixture(torch.tensor([[2.0, 0.0]]).expand(O, 2).clone(),
                          mix_means.expand(O, 2, 4).clone(), torch.full((O, 2, 4), -4.0))

    head.mixture = fake_mixture
    vecs, preds = torch.zeros(3, 8), torch.zeros(0, 8)
    edges, to_img = torch.zeros(0, 2, dtype=torch.long), torch.zeros(3, dtype=torch.long)
    codes = geometric_codes(vocab.pred_names)[:0]
    apart = torch.tensor([True, True, False])              # sheep, sheep, sky
    stacked = head(vecs, preds, edges, to_img, pred_codes=codes)
    spread = head(vecs, preds, edges, to_img, pred_codes=codes, apart=apart, max_iou=0.1)
    assert paired_iou(stacked[0], stacked[1]) > 0.9
    assert paired_iou(spread[0], spread[1]) <= 0.1
    assert torch.equal(spread[2], stacked[2])             # the stuff is not held apart

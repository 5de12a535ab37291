"""The layout-gap diagnosis: one renderer, true / predicted / mixed layouts; the streaks metric."""

import pytest
import torch

from sg2img.eval.streaks import axis_energy


def test_axis_energy_sees_vertical_stripes_along_x_only():
    stripes = torch.zeros(2, 3, 8, 8)
    stripes[..., ::2] = 1.0                     # columns alternate: vertical streaks
    x, y = (axis_energy(stripes) / 2).tolist()
    assert x == pytest.approx(0.25)             # grey 0.5 vs 1.0 between neighbours
    assert y == 0.0
    assert axis_energy(stripes.transpose(2, 3)).flip(0).tolist() == axis_energy(stripes).tolist()


@pytest.fixture(scope="module")
def shapes_small(tmp_path_factory):
    from sg2img.data.shapes import write_dataset

    out = tmp_path_factory.mktemp("shapes_gap")
    write_dataset(out, size=64, num_images={"train": 4, "val": 12, "test": 12}, seed=5,
                  workers=1)
    return out


def test_layout_gap_scores_every_source_on_the_same_graphs(shapes_small):
    from sg2img.eval.layout_sources import layout_gap, layout_gap_table

    report = layout_gap("default", shapes_small,
                        sources=("truth", "sampled", "partition", "true_boxes"), seeds=(0,),
                        metrics=("fid", "streaks", "layout"),
                        overrides=["model.layout.stuff_partition=false"])   # shipped: on
    assert report["floor"]["fid_val_vs_test"] > 0
    runs = {s: r["0"] for s, r in report["runs"].items()}
    canvas = {s: r["layout"]["canvas"] for s, r in runs.items()}
    # From the truth, the rendered layout is the ground truth's; the sampled layout's stuff
    # overlaps where the partition's does not.
    assert canvas["truth"]["rendered"] == canvas["truth"]["ground_truth"]
    assert canvas["partition"]["rendered"]["stuff_overlap"] < 0.01
    assert (canvas["sampled"]["rendered"]["stuff_overlap"]
            > canvas["partition"]["rendered"]["stuff_overlap"])
    assert canvas["sampled"]["rendered"]["soft"] > canvas["truth"]["rendered"]["soft"]
    # The bundled renderer from the truth is close to the real images (12 graphs: loosely).
    assert runs["truth"]["streaks"]["ratio_x"] == pytest.approx(1.0, abs=0.2)
    assert runs["truth"]["fid"]["fid"] < runs["sampled"]["fid"]["fid"]
    table = layout_gap_table(report)
    assert table.count("\n| ") == 1 + 4 and "FID floor" in table


def test_a_64px_model_is_scored_upscaled_on_128px_data(tmp_path):
    from sg2img.data.shapes import write_dataset
    from sg2img.eval.layout_sources import layout_gap

    write_dataset(tmp_path, size=128, num_images={"train": 2, "val": 6, "test": 6}, seed=5,
                  workers=1)
    report = layout_gap("sg2img/assets/default_model.pt", tmp_path, sources=("truth",),
                        seeds=(0,), metrics=("fid", "obj_acc", "streaks", "layout"),
                        upscale_to=128)
    run = report["runs"]["truth"]["0"]
    assert report["upscale_to"] == 128 and run["fid"]["fid"] > 0
    assert run["obj_acc"]["accuracy"] > 0.5 and run["streaks"]["ratio_x"] < 1.0  # softer


def test_layout_sources_render_what_they_name(shapes_small):
    from dataclasses import replace

    from sg2img.api import resize_images
    from sg2img.checkpoint import build_generator
    from sg2img.data import build_dataset
    from sg2img.eval.context import unpinned
    from sg2img.eval.layout_sources import LayoutSource
    from sg2img.eval.run import seed_rule_noise
    from sg2img.scene_graph import collate_graphs

    # The bundled model partitions its stuff; the sources are read here without it, so that a
    # true box stays the true box (with it, the stuff's boxes become their regions' bounds).
    model, config, vocab = build_generator("sg2img/assets/default_model.pt",
                                           overrides=["model.layout.stuff_partition=false"])
    assert not config.model.layout.stuff_partition
    data = build_dataset(replace(config.data, root=str(shapes_small)), "val", 64, 16)
    batch = unpinned(collate_graphs([data[i] for i in range(4)]))
    real = batch.objs != 0
    noise = seed_rule_noise(model, batch, 0, 0, "sample")
    with torch.no_grad():
        plain = model(batch, layout_mode="sample", **noise)
        out = {s: LayoutSource(model, s, vocab.stuff_ids())(batch, layout_mode="sample",
                                                              **noise)
               for s in ("sampled", "true_boxes", "true_masks", "hard_masks")}
    assert torch.equal(out["sampled"].images, plain.images)   # generate()'s picture
    assert torch.allclose(out["true_boxes"].boxes[real], batch.boxes[real].float())
    assert torch.allclose(out["true_masks"].masks[real], batch.masks[real].float())
    assert torch.allclose(out["true_masks"].boxes, plain.boxes)
    assert set(out["hard_masks"].masks.unique().tolist()) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="unknown layout source"):
        LayoutSource(model, "best", ())
    # upscale_to: the same picture at 128 px (a 64 px model scored beside a 128 px one).
    big = LayoutSource(model, "sampled", vocab.stuff_ids(), upscale_to=128)
    with torch.no_grad():
        up = big(batch, layout_mode="sample", **noise)
    assert big.image_size == 128 and up.images.shape[-2:] == (128, 128)
    assert torch.equal(up.boxes, plain.boxes) and up.layout.shape[-2:] == (128, 128)
    assert torch.allclose(up.images, resize_images(plain.images, 128, 64))   # generate()'s
    assert (torch.nn.functional.avg_pool2d(up.images, 2) - plain.images).abs().mean() < 0.05


def test_region_energy_counts_detail_inside_each_class_only():
    from sg2img.eval.streaks import region_energy

    images = torch.zeros(1, 3, 4, 6)
    images[..., ::2] = 1.0                      # stripes everywhere
    layout = torch.zeros(1, 3, 4, 6)
    layout[0, 1, :, :3] = 1.0                   # class 1: the left half
    layout[0, 2, :2, :] = 0.4                   # class 2: never >= 0.5
    sums = region_energy(images, layout)
    assert sums[1].tolist() == [8 * 0.25, 8, 0.0, 9]  # grey 1 vs 0.5; 8 x-pairs, 9 y-pairs
    assert sums[2].tolist() == [0.0, 0.0, 0.0, 0.0]

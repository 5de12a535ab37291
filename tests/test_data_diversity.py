"""The procedural data's own diversity at a fixed layout (sg2img.eval.data_diversity)."""

import numpy as np
import pytest

from sg2img.data.shapes import generate_scene
from sg2img.eval.data_diversity import LOOK_LEVELS, look_diversity, redraw_looks


def test_look_diversity_reports_every_level_and_is_seeded():
    result = look_diversity(2, 32)
    assert (result["num_scenes"], result["size"], result["seed"], result["look_seed"]) == (
        2, 32, 0, 1)
    levels = result["levels"]
    assert list(levels) == list(LOOK_LEVELS)
    assert all(0 < v["mean_pixel_distance"] < 1 for v in levels.values())
    assert levels["texture"]["relabelled"] < 0.01            # the layout is (nearly) held
    assert look_diversity(2, 32) == result                    # seeded
    with pytest.raises(ValueError, match="at least 1"):
        look_diversity(0, 32)


def test_redraw_looks_keeps_the_boxes():
    plan = generate_scene(0, "val", 0, 32).plan
    new = redraw_looks(plan, np.random.default_rng(0), "facing")
    assert [(t.name, t.box) for t in new.things] == [(t.name, t.box) for t in plan.things]
    assert [t.seed for t in new.things] != [t.seed for t in plan.things]

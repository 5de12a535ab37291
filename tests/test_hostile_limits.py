"""Limits that edits and config values used to bypass: every case fails cleanly and early.

Edits: the graph each edit makes obeys the caller's limits (the server's 256 relationships,
not only the library's 512), and an added object must link to the graph (a self-loop does
not). Config: sizes and rates that would fail late (an overflowing learning rate, a
discriminator deeper than the image, a graph network of 10**8 layers) are refused when the
config is built, so ``train`` exits 2 with one line and makes no run folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from data_fixtures import write_tiny_coco

from sg2img.api import load_model
from sg2img.checkpoint import CheckpointError, export_inference
from sg2img.cli import main
from sg2img.config import Config, ConfigError
from sg2img.config_bounds import BOUNDS, BOUNDS_ENV
from sg2img.edits import EditError, apply_edits, load_edits
from sg2img.model import GALSGenerator
from sg2img.scene_graph import DEFAULT_MAX_RELATIONSHIPS
from sg2img.vocab import Vocab

NAMES = ["sky", "grass", "sheep", "cloud", "boat"]
PREDS = ["left of", "right of", "above", "below", "inside"]
ATTRS = ["red", "white"]
SHEEP = {"objects": ["sky", "grass", "sheep"],
         "relationships": [[0, "above", 1], [2, "inside", 1]]}
SELF_LOOP = {"op": "add", "object": "cloud", "relationship": ["new", "above", "new"]}
MAX_LINE = 1200


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    """A random tiny model whose vocabulary has attributes."""
    vocab = Vocab.from_names(NAMES, PREDS, ATTRS)
    cfg = Config.from_preset("tiny")
    torch.manual_seed(0)
    gen = GALSGenerator(cfg.model, vocab.num_objects, vocab.num_preds, vocab.num_attributes)
    return export_inference(tmp_path_factory.mktemp("model") / "tiny.pt", cfg, vocab, gen)


def _fails_cleanly(argv: list[str], capsys, *contains: str) -> str:
    """Run the CLI; assert exit 2 and one bounded stderr line containing ``contains``."""
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, (rc, err[:2000])
    assert err.startswith("sg2img") and err.count("\n") == 1, err[:2000]
    assert "Traceback" not in err and len(err) < MAX_LINE, err
    for c in contains:
        assert c in err, (c, err)
    return err


# ------------------------------------------------------------------------ edits: library
def test_an_add_edit_obeys_the_callers_relationship_limit():
    graph = {"objects": ["sky", "grass"], "relationships": [[0, "above", 1]] * 256}
    add = {"op": "add", "object": "cloud", "relationships": [["new", "inside", 0]] * 255}
    assert len(apply_edits(graph, [add])[0].graph.relationships) == 511   # library: 512
    with pytest.raises(EditError, match="511 relationships.*may have \\(256\\)") as info:
        apply_edits(graph, [add], max_relationships=256)
    assert (info.value.field, info.value.limit, info.value.edit) == ("edits[0]", 256, 0)
    small = {"op": "add", "object": "cloud", "relationships": [["new", "inside", 0]] * 300}
    with pytest.raises(EditError, match="302 relationships") as info:
        apply_edits(SHEEP, [small], max_relationships=256)
    assert info.value.limit == 256
    # The library's own limit still holds without one, and edits that do not grow pass.
    with pytest.raises(EditError, match=f"\\({DEFAULT_MAX_RELATIONSHIPS}\\)") as info:
        apply_edits(graph, [add, add])
    assert info.value.limit == DEFAULT_MAX_RELATIONSHIPS and info.value.edit == 1
    assert apply_edits(graph, [{"op": "remove", "index": 0}], max_relationships=1)


def test_an_add_edit_obeys_the_callers_object_limit():
    add = {"op": "add", "object": "cloud", "relationship": ["new", "above", 0]}
    assert len(apply_edits(SHEEP, [add], max_objects=4)[-1].graph.objects) == 4
    with pytest.raises(EditError, match="already has 4 objects.*may have \\(4\\)") as info:
        apply_edits(SHEEP, [add, add], max_objects=4)
    assert (info.value.field, info.value.limit, info.value.edit) == ("edits[1]", 4, 1)


@pytest.mark.parametrize("edit", [
    SELF_LOOP,
    {"op": "add", "object": "cloud", "relationships": [["new", "above", "new"],
                                                       ["new", "below", "new"]]},
], ids=["one_self_loop", "two_self_loops"])
def test_an_add_linked_only_to_itself_is_refused(edit):
    with pytest.raises(EditError, match="links the new object to the graph.*self-loop") as info:
        apply_edits(SHEEP, [edit])
    assert info.value.field == "edits[0].relationships"
    # One link to the graph besides the self-loop is enough.
    linked = {**edit, "relationships": [["new", "above", "new"], ["new", "above", 0]]}
    linked.pop("relationship", None)
    assert apply_edits(SHEEP, [linked])[0].graph.relationships[-1] == (3, "above", 0)


# ------------------------------------------------------------------------ edits: CLI
def test_cli_manipulate_refuses_a_self_loop_add(ckpt, tmp_path, capsys):
    g, e, out = tmp_path / "g.json", tmp_path / "e.json", tmp_path / "out"
    g.write_text(json.dumps(SHEEP))
    e.write_text(json.dumps([SELF_LOOP]))
    _fails_cleanly(["manipulate", str(g), str(e), "--checkpoint", str(ckpt), "--out",
                    str(out)], capsys, "links the new object to the graph")
    assert not out.exists() or not any(out.iterdir())


# ------------------------------------------------------------------------ edits: server
@pytest.fixture(scope="module")
def client(ckpt):
    pytest.importorskip("starlette", reason="the serve extra is not installed")
    pytest.importorskip("httpx2", reason="the test client needs httpx2 (the dev extra)")
    from starlette.testclient import TestClient

    from sg2img.serve import ModelRegistry, ServedModel, create_app

    registry = ModelRegistry([ServedModel("tiny", "tiny.pt", load_model(ckpt, "cpu"))])
    with TestClient(create_app(registry)) as c:
        yield c


def _error(client, graph, edits) -> dict:
    resp = client.post("/api/manipulate", json={"graph": graph, "edits": edits, "seed": 0})
    assert resp.status_code == 400, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    return resp.json()["error"]


@pytest.mark.parametrize("rels, extra", [(256, 255), (3, 300)], ids=["256+255", "3+300"])
def test_server_add_edit_cannot_pass_its_relationship_limit(client, rels, extra):
    graph = {"objects": ["sky", "grass"], "relationships": [[0, "above", 1]] * rels}
    add = {"op": "add", "object": "cloud", "relationships": [["new", "inside", 0]] * extra}
    err = _error(client, graph, [add])
    assert err["field"] == "edits[0]" and err["limit"] == 256
    assert f"{rels + extra} relationships" in err["message"] and "(256)" in err["message"]


def test_server_refuses_a_self_loop_add(client):
    err = _error(client, SHEEP, [SELF_LOOP])
    assert err["field"] == "edits[0].relationships"
    assert "links the new object to the graph" in err["message"]


@pytest.mark.parametrize("edit, field", [
    ({"op": "remove", "index": 0, "evil": 1}, "edits[0].evil"),
    ({"op": "attributes", "index": 0, "attributes": ["red", "rde"]}, "edits[0].attributes[1]"),
    ({"op": "predicate", "relationship": 99, "predicate": "above"}, "edits[0].relationship"),
], ids=["unknown_key", "unknown_attribute", "relationship_index"])
def test_server_edit_errors_name_the_exact_field(client, edit, field):
    err = _error(client, SHEEP, [edit])
    assert err["field"] == field, err


def test_edit_file_errors_name_the_exact_field(tmp_path):
    path = tmp_path / "e.json"
    path.write_text(json.dumps([{"op": "remove", "index": 0, "evil": 1}]))
    with pytest.raises(EditError) as info:
        load_edits(path)
    assert info.value.field == "edits[0].evil"


# ------------------------------------------------------------------------ config bounds
# The probe's cases, with the grouped names (the old names print a deprecation warning).
LATE_FAILURES = {
    "lr_g_1e300": ("train.lr_g=1e300", "at most 1.0"),
    "disc_num_scales_100": ("model.discriminator.num_scales=100", "in 1..4"),
    "disc_num_layers_50": ("model.discriminator.num_layers=50", "in 1..6"),
    "image_size_2**30": (f"model.renderer.image_size={2**30}", "in 32..512"),
    "gconv_num_layers_1e8": ("model.layout.num_gconv_layers=100000000", "in 0..20"),
    "gconv_dim_1e9": ("model.layout.gconv_dim=1000000000", "in 1..512"),
    "gen_channels_100000": ("model.renderer.channels=100000", "in 1..256"),
    "disc_deeper_than_image": ("model.discriminator.num_layers=5",
                               "needs model.renderer.image_size >= 64"),
}


@pytest.fixture(scope="module")
def coco(tmp_path_factory) -> Path:
    """The tiny COCO fixture: real training data, so only the config can stop a run."""
    root = tmp_path_factory.mktemp("coco")
    write_tiny_coco(root, ("instances_train.json", "stuff_train.json"), "images/train")
    return root


@pytest.mark.parametrize("name", sorted(LATE_FAILURES))
def test_cli_train_refuses_an_unbounded_value_before_the_run_folder(name, coco, tmp_path,
                                                                    capsys):
    setting, bound = LATE_FAILURES[name]
    out = tmp_path / "run"
    key = setting.partition("=")[0]
    err = _fails_cleanly(["train", "--preset", "tiny", "--data", str(coco), "--out", str(out),
                          "--device", "cpu", "--set", "train.num_steps=1", "--set", setting],
                         capsys, key, bound)
    if "needs" not in bound:
        assert BOUNDS_ENV in err        # the message says how to lift an upper bound
    assert not out.exists()


def test_every_preset_and_the_paper_scale_model_fit_the_bounds():
    from sg2img.config import PRESETS

    for name in PRESETS:
        Config.from_preset(name)
    # Paper scale (128 px, graph network 128 / 512 x 5, widths 64) fits with 4x to spare.
    paper = {"model.renderer.image_size": 128, "model.layout.gconv_dim": 128,
             "model.layout.gconv_hidden_dim": 512, "model.layout.num_gconv_layers": 5,
             "model.renderer.channels": 64, "model.discriminator.channels": 64}
    Config.from_preset("coco128", {k: 4 * v for k, v in paper.items()})
    assert all(BOUNDS[k][1] == 4 * v for k, v in paper.items())


def test_the_environment_variable_lifts_the_upper_bounds_only(monkeypatch):
    with pytest.raises(ConfigError, match=BOUNDS_ENV):
        Config.from_preset("tiny", ["model.layout.gconv_dim=1024"])
    monkeypatch.setenv(BOUNDS_ENV, "off")
    assert Config.from_preset("tiny", ["model.layout.gconv_dim=1024"]).model.layout.gconv_dim \
        == 1024
    with pytest.raises(ConfigError, match="gconv_dim must be positive"):
        Config.from_preset("tiny", ["model.layout.gconv_dim=0"])
    with pytest.raises(ConfigError, match="needs model.renderer.image_size"):
        Config.from_preset("tiny", ["model.discriminator.num_layers=6"])


@pytest.mark.parametrize("kind, layers, size, ok", [
    ("multiscale", 5, 32, False), ("multiscale", 4, 32, True),
    ("fpse", 5, 48, False), ("fpse", 4, 48, True),
    ("dp", 4, 48, True), ("dp", 5, 48, False),
])
def test_the_discriminator_must_fit_the_image(kind, layers, size, ok):
    overrides = [f"model.discriminator.kind={kind}", f"model.discriminator.num_layers={layers}",
                 f"model.renderer.image_size={size}"]
    if ok:
        Config.from_preset("tiny", overrides)
    else:
        with pytest.raises(ConfigError, match="needs model.renderer.image_size"):
            Config.from_preset("tiny", overrides)


def test_a_checkpoint_with_an_unbounded_config_is_refused(ckpt, tmp_path):
    state = torch.load(ckpt, weights_only=True)
    state["config"]["model"]["layout"]["num_gconv_layers"] = 10**8
    bad = tmp_path / "bad.pt"
    torch.save(state, bad)
    with pytest.raises(CheckpointError, match="num_gconv_layers must be in 0..20"):
        load_model(bad, "cpu")

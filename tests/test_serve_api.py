"""The editor server's JSON API on a tiny random model, through Starlette's test client."""

import asyncio
import base64
import io
import json
import re
import threading

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("starlette", reason="the serve extra is not installed: pip install "
                                        "'sg2img[serve]'")
httpx = pytest.importorskip("httpx2", reason="the test client needs httpx2 (the dev extra)")

from starlette.testclient import TestClient  # noqa: E402

from sg2img import cli, generate, load_model, manipulate  # noqa: E402
from sg2img.edits import EditError, apply_edits  # noqa: E402
from sg2img.scene_graph import SceneGraph, SceneGraphError  # noqa: E402
from sg2img.serve import Limits, ModelRegistry, ServedModel, create_app, is_loopback  # noqa: E402
from sg2img.serve import app as app_module  # noqa: E402
from sg2img.serve.errors import edit_error, scene_graph_error  # noqa: E402
from sg2img.serve.queue import InferenceQueue, QueueFull  # noqa: E402
from sg2img.testing import random_model_export  # noqa: E402
from sg2img.vocab import Vocab  # noqa: E402

NAMES = ["sky", "grass", "sheep", "tree", "water", "boat"]
PREDS = ["left of", "right of", "above", "below", "standing on", "inside", "surrounding"]
SHEEP = {"objects": ["sky", "grass", "sheep"],
         "relationships": [[0, "above", 1], [2, "standing on", 1]]}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    vocab = Vocab.from_names(NAMES, PREDS)
    path = random_model_export(tmp_path_factory.mktemp("model") / "tiny.pt", vocab)
    return load_model(path, "cpu")


@pytest.fixture(scope="module")
def other_model(tmp_path_factory):
    vocab = Vocab.from_names(["cow", "grass", "sky"], ["above", "below"])
    path = random_model_export(tmp_path_factory.mktemp("model2") / "other.pt", vocab, seed=1)
    return load_model(path, "cpu")


@pytest.fixture(scope="module")
def registry(tiny_model, other_model):
    return ModelRegistry([ServedModel("tiny", "tiny.pt", tiny_model),
                          ServedModel("other", "other.pt", other_model)])


@pytest.fixture(scope="module")
def client(registry):
    with TestClient(create_app(registry)) as c:
        yield c


def decode(data_url: str) -> np.ndarray:
    assert data_url.startswith("data:image/png;base64,")
    raw = base64.b64decode(data_url.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"))


def error_of(resp, status):
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    err = resp.json()["error"]
    assert isinstance(err["message"], str) and err["message"]
    assert "Traceback" not in err["message"]
    return err


# ------------------------------------------------------------------------ reading endpoints
def test_models_lists_every_model_with_limits_and_features(client):
    body = client.get("/api/models").json()
    assert body["default"] == "tiny"
    assert [m["id"] for m in body["models"]] == ["tiny", "other"]
    assert body["models"][0]["image_size"] == 32 and body["models"][0]["num_objects"] == 6
    assert body["limits"]["max_objects"] == Limits().max_objects
    assert body["features"] == {"resample_object": True}
    assert [m["resample_object"] for m in body["models"]] == [False, False]  # vector noise
    assert body["queues"]["cpu"]["capacity"] == 1 + Limits().max_waiting


def test_vocab_per_model(client):
    assert client.get("/api/vocab").json()["objects"] == NAMES
    other = client.get("/api/vocab", params={"model": "other"}).json()
    assert other["objects"] == ["cow", "grass", "sky"] and other["predicates"] == ["above",
                                                                                 "below"]
    err = error_of(client.get("/api/vocab", params={"model": "../../etc/passwd"}), 400)
    assert err["field"] == "model" and err["choices"] == ["tiny", "other"]


def test_vocab_says_things_stuff_and_the_attributes_each_class_takes(client, tmp_path):
    """The keys the editor's per-object attribute picker reads."""
    from sg2img.data.shapes import shapes_vocab

    plain = client.get("/api/vocab").json()
    assert plain == {"model": "tiny", "objects": NAMES, "predicates": PREDS[:7],
                     "things": None, "stuff": None, "attributes": None,
                     "class_attributes": None, "default_attributes": None}
    vocab = shapes_vocab()
    shapes = load_model(random_model_export(tmp_path / "shapes.pt", vocab), "cpu")
    with TestClient(create_app(ModelRegistry([ServedModel("shapes", "s.pt", shapes)]))) as c:
        body = c.get("/api/vocab").json()
        assert body == {"model": "shapes", **vocab.describe()}
        assert body["objects"] == vocab.user_object_names() and "other" in body["stuff"]
        assert body["things"][:3] == ["sun", "cloud", "bird"]
        assert body["class_attributes"]["sheep"] == ["white", "small"]
        assert set(body["class_attributes"]) == set(body["objects"])
        red_sheep = {**SHEEP, "relationships": [[0, "above", 1], [2, "inside", 1]],
                     "attributes": [[], [], ["red"]]}
        err = error_of(c.post("/api/generate", json={"graph": red_sheep}), 400)
        assert err["field"] == "graph.attributes[2]" and err["suggestions"] == ["white", "small"]
        assert "object 2 (sheep) does not take 'red'" in err["message"]


def test_a_graph_without_attributes_is_drawn_with_its_classes_defaults(tmp_path):
    """The vocab lists the defaults, and a bare graph is drawn as with them written out."""
    import torch

    from sg2img.checkpoint import export_inference
    from sg2img.config import Config
    from sg2img.model import GALSGenerator

    vocab = Vocab.from_names(NAMES, PREDS, ["blue", "green", "white", "small"],
                             class_attributes={"sky": ["blue"], "grass": ["green"],
                                               "sheep": ["white", "small"]},
                             class_default_attributes={"sky": ["blue"], "grass": ["green"],
                                                       "sheep": ["white"]})
    cfg = Config.from_preset("tiny")
    torch.manual_seed(0)
    gen = GALSGenerator(cfg.model, vocab.num_objects, vocab.num_preds, vocab.num_attributes)
    with torch.no_grad():     # a visible effect: the attribute embedding dominates
        gen.attr_embeddings.weight.mul_(20)
    model = load_model(export_inference(tmp_path / "d.pt", cfg, vocab, gen), "cpu")
    with TestClient(create_app(ModelRegistry([ServedModel("d", "d.pt", model)]))) as c:
        shown = c.get("/api/vocab").json()["default_attributes"]
        assert shown["sheep"] == ["white"] and shown["tree"] == []
        images = [decode(c.post("/api/generate", json={"graph": g, "seed": 4}).json()["image"])
                  for g in (SHEEP, {**SHEEP, "attributes": [["blue"], ["green"], ["white"]]},
                            {**SHEEP, "attributes": [["blue"], ["green"], ["small"]]})]
    assert np.array_equal(images[0], images[1]) and not np.array_equal(images[0], images[2])


def test_page_and_static_files_are_served_offline(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    # The page's script is app.js; every module it imports, directly or not, is served too.
    scripts = ["app.js"]
    for name in scripts:
        r = client.get(f"/static/{name}")
        assert r.status_code == 200 and len(r.text) > 1000
        scripts += [m for m in re.findall(r'from "\./([\w.]+)"', r.text) if m not in scripts]
    assert sorted(scripts) == sorted(p.name for p in app_module.STATIC_DIR.glob("*.js"))
    assert client.get("/static/app.css").status_code == 200
    for text in (page.text, client.get("/static/app.css").text,
                 *(client.get(f"/static/{name}").text for name in scripts)):
        assert "http://" not in text and "https://" not in text  # nothing from other hosts
    assert client.get("/static/../app.py").status_code == 404


# ------------------------------------------------------------------------ generate
def test_generate_matches_the_library_and_is_reproducible(client, tiny_model):
    r = client.post("/api/generate", json={"graph": SHEEP, "seed": 5, "num_samples": 2})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["seed"] == 5 and body["model"] == "tiny" and body["image_size"] == 32
    assert [(s["seed"], s["sample"]) for s in body["samples"]] == [(5, 0), (5, 1)]
    assert body["image"] == body["samples"][0]["image"]
    for s in body["samples"]:  # sample k of the seed, as sg2img generate --sample K makes it
        ref = generate(SHEEP, tiny_model, seed=5, first_sample=s["sample"])
        # Another batch size may round differently: PNG values within 1, never other noise.
        diff = decode(s["image"]).astype(int) - np.asarray(ref.images[0]).astype(int)
        assert np.abs(diff).max() <= 1
    one = client.post("/api/generate", json={"graph": SHEEP, "seed": 5, "sample": 1}).json()
    assert one["sample"] == 1
    diff = decode(one["image"]).astype(int) - decode(body["samples"][1]["image"]).astype(int)
    assert np.abs(diff).max() <= 1
    assert decode(body["layout"]).shape == (256, 256, 3)
    assert decode(body["graph_image"]).ndim == 3
    assert [o["name"] for o in body["objects"]] == SHEEP["objects"]
    assert all(len(o["box"]) == 4 and o["color"].startswith("#") for o in body["objects"])
    again = client.post("/api/generate", json={"graph": SHEEP, "seed": 5}).json()
    assert again["image"] == body["image"]
    fresh = client.post("/api/generate", json={"graph": SHEEP}).json()
    assert isinstance(fresh["seed"], int)


def test_generate_pins_boxes(client):
    pin = [0.1, 0.5, 0.4, 0.9]
    body = client.post("/api/generate", json={"graph": SHEEP, "seed": 0,
                                              "boxes": [None, None, pin]}).json()
    assert body["objects"][2]["box"] == pin and body["objects"][2]["pinned"]
    assert not body["objects"][0]["pinned"]
    assert body["graph"]["boxes"] == [None, None, pin]
    # The graph's own boxes pin too (sg2im's JSON form).
    own = client.post("/api/generate", json={"graph": {**SHEEP, "boxes": [None, None, pin]},
                                             "seed": 0}).json()
    assert own["image"] == body["image"]


def test_generate_include_and_sheet(client):
    body = client.post("/api/generate", json={"graph": SHEEP, "seed": 0,
                                              "include": ["sheet"]}).json()
    assert "sheet" in body and "image" not in body and "layout" not in body
    sheet = decode(body["sheet"])
    assert sheet.shape[1] > 2 * 256  # graph | layout | image side by side


def test_layout_endpoint_returns_boxes_without_an_image(client, tiny_model):
    body = client.post("/api/layout", json={"graph": SHEEP}).json()
    assert "image" not in body and "samples" not in body and "layout" in body
    ref = generate(SHEEP, tiny_model, seed=0)
    assert np.allclose([o["box"] for o in body["objects"]], ref.boxes[0].numpy(), atol=1e-4)
    err = error_of(client.post("/api/layout", json={"graph": SHEEP, "num_samples": 2}), 400)
    assert err["field"] == "num_samples"


def test_other_model_is_used_when_asked(client, other_model):
    g = {"objects": ["cow", "grass"], "relationships": [[0, "above", 1]]}
    body = client.post("/api/generate", json={"graph": g, "seed": 1, "model": "other"}).json()
    ref = generate(g, other_model, seed=1)
    assert body["model"] == "other"
    assert np.array_equal(decode(body["image"]), np.asarray(ref.images[0]))
    err = error_of(client.post("/api/generate", json={"graph": g}), 400)  # not in tiny's vocab
    assert err["field"] == "graph.objects[0]" and "unknown object name 'cow'" in err["message"]


# ------------------------------------------------------------------------ manipulate
def test_manipulate_matches_the_library(client, tiny_model):
    edits = [{"op": "move", "index": 2, "box": [0.05, 0.5, 0.35, 0.9]},
             {"op": "add", "object": "tree", "relationship": ["new", "left of", 2]}]
    r = client.post("/api/manipulate", json={"graph": SHEEP, "edits": edits, "seed": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    ref = manipulate(SHEEP, edits, tiny_model, seed=3)
    assert np.array_equal(decode(body["image"]), np.asarray(ref.images[-1]))
    assert body["graph"] == ref.graphs[-1].to_dict()
    assert [s["description"] for s in body["steps"]] == ref.descriptions
    assert body["objects"][2]["box"] == [0.05, 0.5, 0.35, 0.9] and body["objects"][2]["pinned"]
    assert [o["name"] for o in body["objects"]] == ["sky", "grass", "sheep", "tree"]
    inside, outside = body["steps"][0]["change_inside"], body["steps"][0]["change_outside"]
    assert inside > outside  # the move changes its region more than the rest


def test_manipulate_starts_from_the_sample_and_pins_shown(client, tiny_model):
    """The chain starts from the picture /api/generate gave for the seed, sample and pins."""
    pin = [None, None, [0.1, 0.5, 0.4, 0.9]]
    shown = client.post("/api/generate", json={"graph": SHEEP, "seed": 2, "sample": 3,
                                               "boxes": pin}).json()
    edits = [{"op": "move", "index": 2, "box": [0.5, 0.5, 0.8, 0.9]}]
    body = client.post("/api/manipulate", json={"graph": SHEEP, "boxes": pin, "edits": edits,
                                                "seed": 2, "sample": 3}).json()
    assert body["sample"] == 3 and body["seed"] == 2
    ref = manipulate({**SHEEP, "boxes": pin}, edits, tiny_model, seed=2, sample=3)
    assert np.array_equal(np.asarray(ref.images[0]), decode(shown["image"]))
    assert np.array_equal(decode(body["image"]), np.asarray(ref.images[-1]))


# ------------------------------------------------------------------------ another look
@pytest.fixture(scope="module")
def spatial_model(tmp_path_factory):
    vocab = Vocab.from_names(NAMES, PREDS)
    path = random_model_export(tmp_path_factory.mktemp("model3") / "spatial.pt", vocab,
                               ["model.renderer.noise=spatial"])
    return load_model(path, "cpu")


@pytest.fixture(scope="module")
def spatial_client(spatial_model, tiny_model):
    registry = ModelRegistry([ServedModel("spatial", "spatial.pt", spatial_model),
                              ServedModel("tiny", "tiny.pt", tiny_model)])
    with TestClient(create_app(registry)) as c:
        yield c


def test_resample_object_for_a_model_with_per_object_noise(spatial_client, spatial_model):
    models = spatial_client.get("/api/models").json()["models"]
    assert [(m["id"], m["resample_object"]) for m in models] == [("spatial", True),
                                                                   ("tiny", False)]
    r = spatial_client.post("/api/generate", json={"graph": SHEEP, "seed": 5, "num_samples": 3,
                                                   "resample_object": 2})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["resample_object"] == [2] and body["seed"] == 5
    assert [(s["seed"], s["sample"]) for s in body["samples"]] == [(5, 0), (5, 1), (5, 2)]
    ref = generate(SHEEP, spatial_model, seed=5, num_samples=3, resample_object=2)
    images = [decode(s["image"]) for s in body["samples"]]
    for k in range(3):
        assert np.array_equal(images[k], np.asarray(ref.images[k]))
    # Sample 0 is the plain image of the seed; the others are other looks.
    plain = spatial_client.post("/api/generate", json={"graph": SHEEP, "seed": 5}).json()
    assert body["image"] == plain["image"] == body["samples"][0]["image"]
    assert len({s["image"] for s in body["samples"]}) == 3
    # A list of objects; the vector-noise model is refused, naming the model.
    both = spatial_client.post("/api/generate", json={"graph": SHEEP, "seed": 5,
                                                      "num_samples": 2,
                                                      "resample_object": [2, 0]}).json()
    assert both["resample_object"] == [0, 2]
    err = error_of(spatial_client.post("/api/generate", json={
        "graph": SHEEP, "model": "tiny", "resample_object": 1}), 400)
    assert err["field"] == "resample_object" and "model 'tiny' uses 'vector'" in err["message"]


@pytest.mark.parametrize("value, words", [
    (3, "resample_object 3 is out of range; the graph has 3 objects (0..2)"),
    ([0, -1], "resample_object -1 is out of range"),
    (True, "must be an object index"),
    ("2", "must be an object index"),
    ([], "must be an object index or a non-empty list"),
    ([[1]], "must be an object index"),
])
def test_resample_object_errors(spatial_client, value, words):
    err = error_of(spatial_client.post("/api/generate", json={"graph": SHEEP,
                                                              "resample_object": value}), 400)
    assert err["field"] == "resample_object" and words in err["message"]


def test_resample_edit_through_manipulate(spatial_client, spatial_model):
    edits = [{"op": "resample", "index": 2}]
    r = spatial_client.post("/api/manipulate", json={"graph": SHEEP, "edits": edits, "seed": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    ref = manipulate(SHEEP, edits, spatial_model, seed=3)
    assert np.array_equal(decode(body["image"]), np.asarray(ref.images[-1]))
    assert body["steps"][0]["description"] == "resample 2 sheep (another look)"
    err = error_of(spatial_client.post("/api/manipulate", json={
        "graph": SHEEP, "edits": edits, "model": "tiny"}), 400)
    assert err["field"] == "edits[0]" and "model.renderer.noise=spatial" in err["message"]
    err = error_of(spatial_client.post("/api/layout", json={"graph": SHEEP,
                                                            "resample_object": 1}), 400)
    assert "unknown keys ['resample_object']" in err["message"]


# ------------------------------------------------------------------------ bad requests
@pytest.mark.parametrize("body, field, words", [
    ({"graph": {"objects": ["shep"]}}, "graph.objects[0]", "unknown object name 'shep'"),
    ({"graph": {"objects": ["sky", "grass"], "relationships": [[0, "abve", 1]]}},
     "graph.relationships[0].predicate", "unknown predicate 'abve'"),
    ({"graph": {"objects": ["sky"], "relationships": [[0, "above", 4]]}},
     "graph.relationships[0].object", "out of range"),
    ({"graph": {"objects": ["sky"], "relationships": [["x", "above", 0]]}},
     "graph.relationships[0].subject", "integer index"),
    ({"graph": {"objects": []}}, "graph.objects", "at least one object"),
    ({"graph": {"objects": ["sky"], "colour": 1}}, "graph", "unknown scene graph keys"),
    ({"graph": "/etc/passwd"}, "graph", "must be a JSON object"),
    ({"graph": ["sky"]}, "graph", "must be a JSON object"),
    ({}, "graph", "needs a 'graph'"),
    ({"graph": SHEEP, "boxes": [None, [0, 0, 2, 1], None]}, "boxes[1]", "[0, 1]"),
    ({"graph": SHEEP, "boxes": [None]}, "boxes", "3 objects"),
    ({"graph": SHEEP, "boxes": "all"}, "boxes", "one [x0, y0, x1, y1]"),
    ({"graph": SHEEP, "seed": -1}, "seed", "between 0"),
    ({"graph": SHEEP, "seed": True}, "seed", "integer"),
    ({"graph": SHEEP, "num_samples": 0}, "num_samples", "between 1 and 4"),
    ({"graph": SHEEP, "num_samples": 5}, "num_samples", "between 1 and 4"),
    ({"graph": SHEEP, "include": ["everything"]}, "include", "unknown parts"),
    ({"graph": SHEEP, "model": "nope"}, "model", "unknown model 'nope'"),
    ({"graph": SHEEP, "model": "/etc/passwd"}, "model", "unknown model"),
    ({"graph": SHEEP, "samples": 2}, "samples", "unknown keys ['samples']"),
    ({"graph": SHEEP, "resample_object": 1}, "resample_object",
     "needs a model trained with model.renderer.noise=spatial (per-object noise); model 'tiny' "
     "uses 'vector' noise"),
])
def test_generate_errors_name_the_field(client, body, field, words):
    err = error_of(client.post("/api/generate", json=body), 400)
    assert err["field"] == field
    assert words in err["message"]


def test_unknown_names_come_with_the_closest_names(client):
    err = error_of(client.post("/api/generate", json={"graph": {"objects": ["shep"]}}), 400)
    assert err["suggestions"][0] == "sheep"


def test_too_many_objects_and_relationships(registry):
    c = TestClient(create_app(registry, Limits(max_objects=4, max_relationships=2)))
    err = error_of(c.post("/api/generate", json={"graph": {"objects": ["sky"] * 5}}), 400)
    assert err["field"] == "graph.objects" and err["limit"] == 4 and "maximum of 4" in \
        err["message"]
    rels = [[0, "above", 1]] * 3
    err = error_of(c.post("/api/generate", json={"graph": {"objects": ["sky", "grass"],
                                                           "relationships": rels}}), 400)
    assert err["field"] == "graph.relationships" and err["limit"] == 2
    add = {"op": "add", "object": "tree", "relationship": ["new", "left of", 0]}
    err = error_of(c.post("/api/manipulate", json={
        "graph": {"objects": ["sky", "grass", "sheep", "boat"]}, "edits": [add], "seed": 0}), 400)
    assert err["field"] == "edits[0]" and err["limit"] == 4


@pytest.mark.parametrize("edits, field, words", [
    ([{"op": "add", "object": "cw", "relationship": ["new", "above", 1]}], "edits[0].object",
     "unknown object name 'cw'"),
    ([{"op": "remove", "index": 1}, {"op": "remove", "index": 7}], "edits[1].index",
     "out of range"),
    ([{"op": "predicate", "relationship": 0, "predicate": "abov"}], "edits[0].predicate",
     "unknown predicate"),
    ([{"op": "move", "index": 0, "box": [0.5, 0.5, 0.2, 0.9]}], "edits[0].box", "x0 < x1"),
    ([{"op": "add", "object": "tree", "relationship": ["new", "above", 9]}],
     "edits[0].relationships[0].object", "out of range"),
    ([{"op": "fly"}], "edits[0].op", "unknown edit op"),
    ([], "edits", "non-empty list"),
    ("edits.json", "edits", "non-empty list"),
])
def test_manipulate_errors_name_the_edit(client, edits, field, words):
    err = error_of(client.post("/api/manipulate", json={"graph": SHEEP, "edits": edits,
                                                        "seed": 0}), 400)
    assert err["field"] == field
    assert words in err["message"]


def test_too_many_edits(registry):
    c = TestClient(create_app(registry, Limits(max_edits=2)))
    move = {"op": "move", "index": 0, "box": [0.0, 0.0, 0.5, 0.5]}
    err = error_of(c.post("/api/manipulate", json={"graph": SHEEP, "edits": [move] * 3}), 400)
    assert err["field"] == "edits" and err["limit"] == 2


def test_bad_bodies(client):
    err = error_of(client.post("/api/generate", content=b"{not json",
                               headers={"Content-Type": "application/json"}), 400)
    assert "not valid JSON" in err["message"]
    err = error_of(client.post("/api/generate", content=b"[1, 2]",
                               headers={"Content-Type": "application/json"}), 400)
    assert "must be a JSON object" in err["message"]
    err = error_of(client.post("/api/generate", content=json.dumps({"graph": SHEEP}),
                               headers={"Content-Type": "text/plain"}), 415)
    assert "application/json" in err["message"]
    err = error_of(client.post("/api/generate", content=b"\xff\xfe",
                               headers={"Content-Type": "application/json"}), 400)


def test_oversize_bodies_are_refused(registry):
    c = TestClient(create_app(registry, Limits(max_body_bytes=1000)))
    big = json.dumps({"graph": {"objects": ["sky"] * 300}})
    err = error_of(c.post("/api/generate", content=big,
                          headers={"Content-Type": "application/json"}), 413)
    assert err["limit"] == 1000

    def chunks():  # no Content-Length: the limit holds while streaming
        for _ in range(50):
            yield b" " * 100

    err = error_of(c.post("/api/generate", content=chunks(),
                          headers={"Content-Type": "application/json"}), 413)
    assert "larger than the limit of 1000 bytes" in err["message"]


def test_unknown_routes_and_methods_answer_json(client):
    assert error_of(client.get("/api/nothing"), 404)["message"].startswith("no such page")
    assert "GET is not allowed" in error_of(client.get("/api/generate"), 405)["message"]


def test_internal_errors_hide_the_trace(registry, monkeypatch, caplog):
    def boom(parsed, layout_only=False):
        raise RuntimeError("secret detail of the failure")

    monkeypatch.setattr(app_module, "run_generate", boom)
    c = TestClient(create_app(registry), raise_server_exceptions=False)
    err = error_of(c.post("/api/generate", json={"graph": SHEEP}), 500)
    assert "secret" not in err["message"] and "reference" in err["message"]
    assert "secret detail of the failure" in caplog.text  # the server log keeps it
    assert c.get("/api/models").status_code == 200  # and the server keeps serving


def test_untrusted_host_header_is_refused_on_loopback(registry):
    c = TestClient(create_app(registry, allowed_hosts=["127.0.0.1", "localhost"]),
                   base_url="http://127.0.0.1")
    assert c.get("/api/models").status_code == 200
    assert c.get("/api/models", headers={"Host": "attacker.example"}).status_code == 400


# ------------------------------------------------------------------------ the queue
def _blocking_generate(release: threading.Event, started: threading.Event):
    real = app_module.run_generate

    def run(parsed, layout_only=False):
        started.set()
        release.wait(10)
        return real(parsed, layout_only)

    return run


def test_full_queue_answers_503_with_retry_after(registry, monkeypatch):
    release, started = threading.Event(), threading.Event()
    monkeypatch.setattr(app_module, "run_generate", _blocking_generate(release, started))
    app = create_app(registry, Limits(max_waiting=1))

    async def scenario():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            body = {"graph": SHEEP, "seed": 0}
            first = asyncio.create_task(c.post("/api/generate", json=body))
            second = asyncio.create_task(c.post("/api/generate", json=body))
            while app.state.queues["cpu"].pending < 2:
                await asyncio.sleep(0.01)
            third = await c.post("/api/generate", json=body)
            # A bad request is refused before it queues: 400, not 503.
            bad = await c.post("/api/generate", json={"graph": {"objects": ["shep"]}})
            release.set()
            return await first, await second, third, bad

    first, second, third, bad = asyncio.run(scenario())
    assert first.status_code == 200 and second.status_code == 200
    err = error_of(third, 503)
    assert int(third.headers["Retry-After"]) >= 1 and err["retry_after"] >= 1
    assert "busy" in err["message"]
    assert bad.status_code == 400
    assert app.state.queues["cpu"].pending == 0


def test_queue_timeout_answers_503_and_frees_the_slot(registry, monkeypatch):
    release, started = threading.Event(), threading.Event()
    monkeypatch.setattr(app_module, "run_generate", _blocking_generate(release, started))
    app = create_app(registry, Limits(max_waiting=0, timeout_s=0.3))
    c = TestClient(app)
    err = error_of(c.post("/api/generate", json={"graph": SHEEP}), 503)
    assert "waited 0.3 s" in err["message"]
    release.set()
    queue = app.state.queues["cpu"]
    for _ in range(200):
        if queue.pending == 0:
            break
        threading.Event().wait(0.01)
    assert queue.pending == 0
    assert c.post("/api/generate", json={"graph": SHEEP}).status_code == 200


def test_inference_queue_runs_one_job_at_a_time():
    queue = InferenceQueue("cpu", max_waiting=2, timeout=5)
    running, peak, lock = [0], [0], threading.Lock()

    def job(k):
        def fn():
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            threading.Event().wait(0.02)
            with lock:
                running[0] -= 1
            if k == 1:
                raise ValueError("job 1 fails")
            return k
        return fn

    async def scenario():
        return await asyncio.gather(*(queue.run(job(k)) for k in range(4)),
                                    return_exceptions=True)

    results = asyncio.run(scenario())
    assert results[0] == 0 and results[2] == 2
    assert isinstance(results[1], ValueError)          # a job's error reaches its caller
    assert isinstance(results[3], QueueFull)           # 1 running + 2 waiting, the 4th refused
    assert peak[0] == 1 and queue.pending == 0 and queue.refused == 1
    queue.close()


def test_inference_queue_frees_the_slot_of_a_request_that_went_away():
    queue = InferenceQueue("cpu", max_waiting=1, timeout=5)
    release = threading.Event()

    async def scenario():
        running = asyncio.create_task(queue.run(lambda: release.wait(5)))
        waiting = asyncio.create_task(queue.run(lambda: "never runs"))
        while queue.pending < 2:
            await asyncio.sleep(0.01)
        waiting.cancel()                 # the client disconnected while queued
        await asyncio.sleep(0.05)
        assert queue.pending == 1
        release.set()
        return await running

    assert asyncio.run(scenario()) is True
    assert queue.pending == 0
    queue.close()


# ------------------------------------------------------------------------ helpers and CLI
def test_error_bodies_read_the_exception_not_its_message():
    # Messages in no form the library writes: the body still gets the field, the names and
    # the detail from the exception's attributes, and the message as it is.
    err = scene_graph_error(SceneGraphError("something odd", field="relationships[4].object",
                                            suggestions=("sky", "sea"), detail="odd"))
    assert err.body() == {"error": {"message": "something odd", "detail": "odd",
                                    "field": "graph.relationships[4].object",
                                    "suggestions": ["sky", "sea"]}}
    assert scene_graph_error(SceneGraphError("whole graph")).field == "graph"
    assert scene_graph_error(SceneGraphError("x", field="boxes[1]"), parent="").field == \
        "boxes[1]"
    err = edit_error(EditError("no colon here", field="edits[3].box", edit=3))
    assert err.field == "edits[3].box" and "suggestions" not in err.body()["error"]
    assert edit_error(EditError("the list")).field == "edits"


def test_error_fields_of_library_errors():
    def raised(fn):
        with pytest.raises(SceneGraphError) as info:
            fn()
        return info.value

    vocab = Vocab.from_names(NAMES, PREDS)
    e = raised(lambda: SceneGraph.from_dict({"objects": ["sky", "shep"]}).check_vocab(vocab))
    assert scene_graph_error(e).field == "graph.objects[1]" and e.suggestions[0] == "sheep"
    e = raised(lambda: SceneGraph.from_dict({"objects": ["sky"],
                                             "relationships": [[0, "above", 9]]}))
    assert scene_graph_error(e).body()["error"] == {
        "message": str(e), "field": "graph.relationships[0].object",
        "detail": "object index 9 is out of range; the graph has 1 objects (0..0)"}
    e = raised(lambda: apply_edits(SHEEP, [{"op": "add", "object": "tree",
                                            "relationship": ["new", "abve", 1]}], vocab))
    assert edit_error(e).field == "edits[0].relationships[0].predicate"
    assert e.edit == 0 and e.suggestions[0] == "above"


def test_is_loopback():
    for host in ("127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"):
        assert is_loopback(host)
    for host in ("0.0.0.0", "::", "192.168.1.4", "example.org"):
        assert not is_loopback(host)


class _FakeServer:
    url = "http://fake/"

    def run(self):
        pass


@pytest.mark.parametrize("host, warned", [("127.0.0.1", False), ("0.0.0.0", True)])
def test_cli_serve_warns_off_loopback(monkeypatch, capsys, host, warned):
    import sg2img.serve

    seen = {}

    def fake_make_server(checkpoints, **kw):
        seen.update(kw, checkpoints=checkpoints)
        return _FakeServer()

    monkeypatch.setattr(sg2img.serve, "make_server", fake_make_server)
    assert cli.main(["serve", "--host", host, "--port", "0", "--checkpoint", "a.pt",
                     "--queue-size", "3"]) == 0
    err = capsys.readouterr().err
    assert ("no authentication" in err) == warned
    assert "serving the scene graph editor at http://fake/" in err
    assert seen["host"] == host and seen["checkpoints"] == ["a.pt"]
    assert seen["limits"].max_waiting == 3


def test_cli_serve_port_taken_is_a_clear_error(monkeypatch, capsys, registry):
    import socket

    import sg2img.serve.server as server_module

    monkeypatch.setattr(server_module, "load_registry", lambda *a, **k: registry)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert cli.main(["serve", "--port", str(port)]) == 2
    assert "Address already in use" in capsys.readouterr().err
    assert cli.main(["serve", "--port", "70000"]) == 2
    assert "port must be 0..65535" in capsys.readouterr().err


def test_cli_serve_bad_checkpoint(tmp_path, capsys):
    assert cli.main(["serve", "--checkpoint", str(tmp_path / "missing.pt")]) == 2
    assert "missing.pt" in capsys.readouterr().err

"""Object attributes ("a red car"): JSON -> SceneGraph -> tensors -> model, edits and metrics."""

import math

import pytest
import torch

from sg2img.config import Config
from sg2img.model import GALSGenerator
from sg2img.scene_graph import SceneGraph, SceneGraphError, collate_graphs, encode_graphs
from sg2img.testing import random_graph_batch
from sg2img.vocab import Vocab

ATTRS = ("red", "blue", "yellow", "white", "small", "large")
TABLE = {"car": ATTRS, "bus": ATTRS}      # the vehicles take every attribute, the rest none


@pytest.fixture
def avocab() -> Vocab:
    return Vocab.from_names(["sky", "road", "car", "bus", "grass"],
                            ["left of", "right of", "above", "below", "on"], ATTRS,
                            class_attributes=TABLE)


CARS = {"objects": ["sky", "road", "car"],
        "relationships": [[0, "above", 1], [2, "on", 1]],
        "attributes": [[], [], ["red", "small"]]}


# ----------------------------------------------------------------------------- JSON -> tensors
def test_attributes_round_trip_json_graph_encode_collate(avocab, tmp_path):
    import json

    path = tmp_path / "g.json"
    path.write_text(json.dumps([CARS, {"objects": ["grass", "bus"],
                                       "relationships": [[1, "on", 0]]}]))
    graphs = [SceneGraph.from_dict(d) for d in json.loads(path.read_text())]
    assert graphs[0].attributes == ((), (), ("red", "small"))
    assert SceneGraph.from_dict(graphs[0].to_dict()) == graphs[0]
    batch = encode_graphs(str(path), avocab)
    # 3 + 1 and 2 + 1 objects (image nodes); the graph without attributes gets zero rows.
    assert batch.attributes.shape == (7, len(ATTRS))
    car = batch.attributes[2]
    assert car[ATTRS.index("red")] == 1 and car[ATTRS.index("small")] == 1 and car.sum() == 2
    assert batch.attributes[[0, 1, 3, 4, 5, 6]].sum() == 0
    one = collate_graphs([graphs[0].encode(avocab)])
    torch.testing.assert_close(one.attributes, batch.attributes[:4])


def test_unknown_attribute_names_closest(avocab):
    g = SceneGraph.from_dict({**CARS, "attributes": [[], [], ["rde"]]})
    with pytest.raises(SceneGraphError, match=r"attributes\[2\].*unknown attribute 'rde'.*red"):
        g.encode(avocab)


def test_attributes_need_a_vocabulary_with_attributes(vocab):
    g = SceneGraph.from_dict({"objects": ["sky", "sheep"], "attributes": [[], ["white"]]})
    with pytest.raises(SceneGraphError, match="no attributes"):
        g.encode(vocab)


# ----------------------------------------------------------------------------- model
def _gen(avocab, *overrides, num_attributes=None):
    torch.manual_seed(0)
    cfg = Config.from_preset("tiny", list(overrides))
    n = avocab.num_attributes if num_attributes is None else num_attributes
    return GALSGenerator(cfg.model, avocab.num_objects, avocab.num_preds, n).eval(), cfg


def _outputs(gen, cfg, batch):
    with torch.no_grad():
        return gen(batch, use_gt_layout=True, rng=torch.Generator().manual_seed(0))


def test_attribute_embedding_changes_the_output(avocab):
    gen, cfg = _gen(avocab)
    assert gen.attr_embeddings is not None
    batch = random_graph_batch(avocab.num_objects, avocab.num_preds, (3, 2),
                               image_size=cfg.model.renderer.image_size,
                               mask_size=cfg.model.layout.mask_size,
                               num_attributes=avocab.num_attributes)
    a, vecs = _outputs(gen, cfg, batch), gen.encode_graph(batch)[0]
    batch.attributes = torch.roll(batch.attributes, 1, dims=1)
    b = _outputs(gen, cfg, batch)
    # An untrained tiny generator is nearly flat in its conditioning: small but real changes.
    assert (a.images - b.images).abs().max() > 1e-5
    assert (a.boxes_pred - b.boxes_pred).abs().max() > 1e-5
    assert (vecs - gen.encode_graph(batch)[0]).abs().max() > 1e-3


def test_use_attributes_false_ignores_them(avocab):
    gen, cfg = _gen(avocab, "model.layout.use_attributes=false")
    assert gen.attr_embeddings is None
    batch = random_graph_batch(avocab.num_objects, avocab.num_preds, (3, 2),
                               image_size=cfg.model.renderer.image_size,
                               mask_size=cfg.model.layout.mask_size,
                               num_attributes=avocab.num_attributes)
    a = _outputs(gen, cfg, batch)
    batch.attributes = torch.roll(batch.attributes, 1, dims=1)
    torch.testing.assert_close(_outputs(gen, cfg, batch).images, a.images)
    batch.attributes = None
    torch.testing.assert_close(_outputs(gen, cfg, batch).images, a.images)


def test_attribute_gradients_and_shape_check(avocab):
    gen, cfg = _gen(avocab)
    gen.train()
    batch = random_graph_batch(avocab.num_objects, avocab.num_preds, (3,),
                               image_size=cfg.model.renderer.image_size,
                               mask_size=cfg.model.layout.mask_size,
                               num_attributes=avocab.num_attributes)
    gen(batch, use_gt_layout=True).images.mean().backward()
    assert gen.attr_embeddings.weight.grad.abs().sum() > 0
    batch.attributes = batch.attributes[:, :3]
    with pytest.raises(ValueError, match="attributes must have shape"):
        gen(batch, use_gt_layout=True)


def test_no_attribute_vocabulary_builds_no_embedding(vocab):
    """A vocabulary without attributes (every checkpoint from before them): no new weights."""
    cfg = Config.from_preset("tiny")
    gen = GALSGenerator(cfg.model, vocab.num_objects, vocab.num_preds, vocab.num_attributes)
    assert gen.attr_embeddings is None
    assert not any("attr" in k for k in gen.state_dict())


# ----------------------------------------------------------------------------- generate, edits
@pytest.fixture(scope="module")
def attr_ckpt(tmp_path_factory):
    from sg2img.checkpoint import export_inference

    vocab = Vocab.from_names(["sky", "road", "car", "bus", "grass"],
                             ["left of", "right of", "above", "below", "on"], ATTRS,
                             class_attributes=TABLE)
    cfg = Config.from_preset("tiny")
    torch.manual_seed(0)
    gen = GALSGenerator(cfg.model, vocab.num_objects, vocab.num_preds, vocab.num_attributes)
    with torch.no_grad():     # a visible effect: the attribute embedding dominates
        gen.attr_embeddings.weight.mul_(20)
    return export_inference(tmp_path_factory.mktemp("m") / "attr.pt", cfg, vocab, gen)


@pytest.fixture(scope="module")
def attr_model(attr_ckpt):
    from sg2img.api import load_model

    return load_model(attr_ckpt, "cpu")


def test_cli_generate_and_manipulate_with_attributes(attr_ckpt, tmp_path, capsys):
    import json

    from sg2img.cli import main

    (tmp_path / "cars.json").write_text(json.dumps(CARS))
    out = tmp_path / "out"
    assert main(["generate", str(tmp_path / "cars.json"), "--checkpoint", str(attr_ckpt),
                 "--out", str(out), "--save-layout"]) == 0
    assert (out / "cars_000_s0.png").is_file() and (out / "cars_000_layout.png").is_file()
    (tmp_path / "edits.json").write_text(json.dumps(
        [{"op": "attributes", "index": 2, "attributes": ["blue"]}]))
    assert main(["manipulate", str(tmp_path / "cars.json"), str(tmp_path / "edits.json"),
                 "--checkpoint", str(attr_ckpt), "--out", str(tmp_path / "m")]) == 0
    capsys.readouterr()
    (tmp_path / "bad.json").write_text(json.dumps({**CARS, "attributes": [[], [], ["rde"]]}))
    assert main(["generate", str(tmp_path / "bad.json"), "--checkpoint", str(attr_ckpt),
                 "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert "attributes[2]: unknown attribute 'rde'; closest attributes: ['red'" in err
    assert not (tmp_path / "bad").exists()


def test_generate_with_attributes_and_layout_labels(attr_model):
    from sg2img.api import GenerationError, generate

    red = generate(CARS, attr_model, seed=0)
    blue = generate(CARS, attr_model, seed=0, attributes=[[], [], ["blue", "small"]])
    assert blue.graphs[0].attributes[2] == ("blue", "small")
    assert (red.tensors - blue.tensors).abs().max() > 1e-4
    same = generate({**CARS, "attributes": [[], [], ["blue", "small"]]}, attr_model, seed=0)
    torch.testing.assert_close(same.tensors, blue.tensors)
    # Graphs with and without attributes batch together.
    both = generate([CARS, {"objects": ["grass", "bus"]}], attr_model, seed=0)
    assert len(both) == 2
    assert red.graphs[0].object_labels() == ["sky", "road", "red small car"]
    assert red.draw_layout(0, 128).size == (128, 128)
    with pytest.raises(GenerationError, match="attributes has 1 entries for 2 graphs"):
        generate([CARS, CARS], attr_model, attributes=[[[], [], ["red"]]])
    with pytest.raises(SceneGraphError, match="unknown attribute 'bleu'.*blue"):
        generate(CARS, attr_model, attributes=[[], [], ["bleu"]])


def test_attribute_edit_op(avocab):
    from sg2img.edits import EditError, SetAttributes, apply_edit, edit_from_dict, edit_to_dict

    d = {"op": "attributes", "index": 2, "attributes": ["blue"]}
    edit = edit_from_dict(d)
    assert edit == SetAttributes(2, ("blue",)) and edit_to_dict(edit) == d
    res = apply_edit(CARS, d, avocab)
    assert res.graph.attributes == ((), (), ("blue",))
    assert res.touched == {2} and res.keep_layout == {2: 2} and res.frozen == {0: 0, 1: 1}
    assert res.description == "attributes 2 red small car -> blue car"
    # A graph without attributes gains them.
    res = apply_edit({"objects": ["sky", "car"]}, {"op": "attributes", "index": 1,
                                                   "attributes": ["red"]}, avocab)
    assert res.graph.attributes == ((), ("red",))
    with pytest.raises(EditError, match="unknown attribute 'rd'.*red"):
        apply_edit(CARS, {"op": "attributes", "index": 2, "attributes": ["rd"]}, avocab)
    with pytest.raises(EditError, match="out of range"):
        apply_edit(CARS, {"op": "attributes", "index": 5, "attributes": ["red"]}, avocab)
    with pytest.raises(EditError, match="list of attribute names"):
        edit_from_dict({"op": "attributes", "index": 2, "attributes": "red"})


def test_manipulate_attributes_keeps_layout(attr_model):
    from sg2img.manipulation import manipulate

    res = manipulate(CARS, [{"op": "attributes", "index": 2, "attributes": ["blue"]}],
                     attr_model, seed=0)
    torch.testing.assert_close(res.boxes[1], res.boxes[0])
    torch.testing.assert_close(res.masks[1], res.masks[0])
    inside, outside = res.change(0)
    assert inside > 0 and math.isfinite(outside)
    # The region is the car's box.
    assert res.regions[0].sum() > 0 and not res.regions[0].all()
    assert res.draw_layout(1, 128).size == (128, 128)


# ----------------------------------------------------------------------------- evaluation
RGB = {"red": (1.0, -1.0, -1.0), "blue": (-1.0, -1.0, 1.0)}


def _classifier(avocab, **meta):
    """An AttributeClassifier that names the nearest of red / blue to a crop's mean colour."""
    from sg2img.eval import AttributeClassifier

    class MeanColour(AttributeClassifier):
        def forward(self, crops):
            mean = crops.float().mean(dim=(2, 3))                              # (K, 3)
            ref = torch.tensor([RGB["red"], RGB["blue"]])
            return -torch.cdist(mean, ref)

    net = MeanColour(2, crop_size=8, width=2)
    net.meta = {"name": "MeanColour", "attribute_names": ["red", "blue"],
                "class_attributes": {"car": ["red", "blue"]},
                "object_names": list(avocab.object_names), **meta}
    return net.eval()


def _paint(objs, boxes, attributes, vocab, size=32):
    """A grey image with each car's box filled with its colour (red or blue)."""
    img = torch.zeros(3, size, size)
    for o, b, a in zip(objs.tolist(), boxes.tolist(), attributes, strict=True):
        if vocab.object_names[o] != "car":
            continue
        x0, y0, x1, y1 = (round(v * size) for v in b)
        colour = "red" if a[vocab.attribute_idx("red")] > 0 else "blue"
        img[:, y0:y1, x0:x1] = torch.tensor(RGB[colour])[:, None, None]
    return img


class _PainterGenerator(torch.nn.Module):
    """Follows the generator contract; paints cars in their graph colour, or always red."""

    def __init__(self, vocab, follow=True):
        super().__init__()
        self.vocab, self.follow, self.w = vocab, follow, torch.nn.Parameter(torch.zeros(1))

    def forward(self, batch, use_gt_layout=False, rng=None, z=None, override=None,
                boxes_override=None, masks_override=None):
        from types import SimpleNamespace

        boxes = batch.boxes if override is None else torch.where(
            override[:, None], boxes_override, batch.boxes)
        attrs = batch.attributes.clone()
        if not self.follow:
            attrs[:, self.vocab.attribute_idx("red")] = 1
        images = torch.stack([
            _paint(batch.objs[batch.obj_to_img == i], boxes[batch.obj_to_img == i],
                   attrs[batch.obj_to_img == i], self.vocab)
            for i in range(batch.num_images)])
        z = torch.randn(batch.num_images, 2, generator=rng) if z is None else z
        return SimpleNamespace(images=images, boxes=boxes, boxes_pred=boxes, z=z,
                               masks=torch.ones(len(boxes), 4, 4))


class _CarScenes(torch.utils.data.Dataset):
    """Scenes of a road and two cars (red or blue), images painted by the same rule."""

    def __init__(self, vocab, n=6):
        from sg2img.scene_graph import GraphSample

        self.vocab, self.items = vocab, []
        for i in range(n):
            objs = torch.tensor([vocab.object_idx(x) for x in ("road", "car", "car")])
            boxes = torch.tensor([[0.0, 0.5, 1.0, 1.0], [0.1, 0.55, 0.4, 0.8],
                                  [0.55, 0.6, 0.9, 0.9]])
            attrs = torch.zeros(3, vocab.num_attributes)
            attrs[1, vocab.attribute_idx("red" if i % 2 else "blue")] = 1
            attrs[2, vocab.attribute_idx("blue" if i % 3 else "red")] = 1
            attrs[2, vocab.attribute_idx("small")] = 1          # not a colour: ignored
            self.items.append(GraphSample(
                objs, torch.tensor([[1, 4, 0]]), boxes=boxes,
                box_given=torch.ones(3, dtype=torch.bool), masks=torch.ones(3, 4, 4),
                image=_paint(objs, boxes, attrs, vocab), attributes=attrs,
                image_id=i).with_image_node())

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def test_attribute_metrics_on_known_answers(avocab):
    from sg2img.eval import EvalOptions, evaluate

    data = _CarScenes(avocab)
    clf = _classifier(avocab)
    kw = dict(metrics=("attr_acc", "attr_swap"), attribute_classifier=clf, batch_size=4,
              progress=False)
    good = evaluate(_PainterGenerator(avocab), data, EvalOptions(**kw))["metrics"]
    assert good["attr_acc"]["accuracy"] == 1.0 and good["attr_acc"]["real_crop_accuracy"] == 1.0
    assert good["attr_acc"]["num_crops"] == 12 and good["attr_acc"]["ratio"] == 1.0
    sw = good["attr_swap"]
    assert sw["num_swaps"] == 6 and sw["follow_rate"] == 1.0 and sw["before_accuracy"] == 1.0
    assert sw["outside_change"] == 0.0 and sw["inside_change"] > 0.5
    # A generator that paints every car red: right exactly on the red cars, and a swap
    # follows only when it goes to red.
    bad = evaluate(_PainterGenerator(avocab, follow=False), data, EvalOptions(**kw))["metrics"]
    red = sum(float(item.attributes[j, avocab.attribute_idx("red")])
              for item in data.items for j in (1, 2))
    assert bad["attr_acc"]["accuracy"] == pytest.approx(red / 12)
    assert bad["attr_acc"]["real_crop_accuracy"] == 1.0
    # With two colours a swap goes blue -> red (followed: it paints red) exactly when the old
    # colour was blue (then "before" is wrong), so the two rates add up to one.
    bsw = bad["attr_swap"]
    assert 0 < bsw["follow_rate"] < 1
    assert bsw["follow_rate"] + bsw["before_accuracy"] == pytest.approx(1.0)
    assert bsw["inside_change"] == 0.0 and bsw["outside_change"] == 0.0


def test_attribute_metrics_need_attributes(vocab, avocab):
    from sg2img.eval import (
        ATTRIBUTE_METRICS,
        DEFAULT_METRICS,
        EvalOptions,
        default_metrics,
        evaluate,
    )

    assert set(ATTRIBUTE_METRICS) == {"attr_acc", "attr_swap"}
    assert not set(ATTRIBUTE_METRICS) & set(DEFAULT_METRICS)
    assert default_metrics(vocab) == DEFAULT_METRICS
    assert default_metrics(avocab) == DEFAULT_METRICS + ATTRIBUTE_METRICS
    gen, _ = _gen(avocab, "model.layout.use_attributes=false")
    assert default_metrics(avocab, gen) == DEFAULT_METRICS
    data = _CarScenes(avocab)
    data.vocab = vocab
    with pytest.raises(ValueError, match="need a dataset whose vocabulary has attributes"):
        evaluate(_PainterGenerator(avocab), data, EvalOptions(
            metrics=("attr_acc",), attribute_classifier=_classifier(avocab), progress=False))


def test_attribute_classifier_save_load(avocab, tmp_path):
    from sg2img.eval import AttributeClassifier, load_eval_net, save_eval_net

    net = AttributeClassifier(2, crop_size=16, width=4)
    net.meta = {"attribute_names": ["red", "blue"], "class_attributes": {"car": ["red", "blue"]}}
    save_eval_net(net, tmp_path / "a.pt")
    back = load_eval_net(tmp_path / "a.pt", "AttributeClassifier")
    assert isinstance(back, AttributeClassifier) and back.labels() == ["red", "blue"]
    assert back.class_attributes() == {"car": ["red", "blue"]}
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    torch.testing.assert_close(back(x), net.eval()(x))
    with pytest.raises(ValueError, match="holds a AttributeClassifier, expected a CropClassifier"):
        load_eval_net(tmp_path / "a.pt", "CropClassifier")
    net.meta = {"attribute_names": ["red"]}
    with pytest.raises(ValueError, match="must list its 2 attribute names"):
        net.labels()


def test_checkpoint_without_attribute_weights_loads(avocab, tmp_path):
    """A model saved before attributes existed, with a vocabulary that lists attributes (as
    Visual Genome's does) and a config without ``use_attributes``, loads without them."""
    from sg2img.checkpoint import build_generator, export_inference, load_checkpoint

    cfg = Config.from_preset("tiny")
    torch.manual_seed(0)
    old = GALSGenerator(cfg.model, avocab.num_objects, avocab.num_preds)   # no attributes
    path = export_inference(tmp_path / "old.pt", cfg, avocab, old)
    ck = load_checkpoint(path)
    del ck["config"]["model"]["layout"]["use_attributes"]
    gen, config, vocab = build_generator(ck)
    assert gen.attr_embeddings is None and vocab.attribute_names == ATTRS
    batch = encode_graphs(CARS, vocab)
    z = torch.zeros(1, cfg.model.renderer.noise_dim)
    with torch.no_grad():
        torch.testing.assert_close(gen(batch, z=z).images, old.eval()(batch, z=z).images)
    new = GALSGenerator(cfg.model, avocab.num_objects, avocab.num_preds, avocab.num_attributes)
    gen, _, _ = build_generator(export_inference(tmp_path / "new.pt", cfg, avocab, new))
    assert gen.attr_embeddings is not None


def test_evaluate_checkpoint_on_procedural_attributes(tmp_path):
    """End to end on files written by the real writer, with the shipped attribute classifier:
    the attribute metrics join the defaults, and a model with other attribute names is
    refused."""
    from sg2img.checkpoint import export_inference
    from sg2img.data.shapes import shapes_vocab, write_dataset
    from sg2img.eval import evaluate_checkpoint

    data = tmp_path / "shapes"
    write_dataset(data, size=32, num_images={"train": 2, "val": 6}, seed=5, workers=1)
    vocab = shapes_vocab()
    cfg = Config.from_preset("tiny").with_overrides({"data.root": str(data)})
    torch.manual_seed(0)
    gen = GALSGenerator(cfg.model, vocab.num_objects, vocab.num_preds, vocab.num_attributes)
    path = export_inference(tmp_path / "m.pt", cfg, vocab, gen)
    rep = evaluate_checkpoint(path, progress=False, batch_size=3)
    assert {"attr_acc", "attr_swap", "layout_recall", "fid"} <= set(rep["metrics"])
    acc = rep["metrics"]["attr_acc"]
    assert acc["real_crop_accuracy"] >= 0.5 and 0 <= acc["accuracy"] <= 1
    assert rep["metrics"]["attr_swap"]["num_swaps"] >= 1
    other = Vocab(vocab.object_names, vocab.pred_names, tuple(reversed(vocab.attribute_names)))
    path = export_inference(tmp_path / "o.pt", cfg, other, gen)
    with pytest.raises(ValueError, match="other attribute names"):
        evaluate_checkpoint(path, progress=False, metrics=("attr_acc",))


def test_attribute_layout_paints_attributes_inside_the_object_only(avocab):
    """model.renderer.paint_attributes: an object's attributes reach the conditioning map through
    its own mask (the graph vectors held fixed), and nowhere else; gradients reach the weights."""
    gen, cfg = _gen(avocab, "model.renderer.paint_attributes=true")
    assert gen.attr_cond is not None
    assert _gen(avocab, "model.renderer.paint_attributes=false")[0].attr_cond is None
    assert Config().model.renderer.paint_attributes       # the recommended model paints them
    torch.manual_seed(1)
    batch = random_graph_batch(avocab.num_objects, avocab.num_preds, (3,),
                               image_size=cfg.model.renderer.image_size,
                               mask_size=cfg.model.layout.mask_size,
                               num_attributes=avocab.num_attributes)
    H = cfg.model.renderer.image_size
    box = torch.tensor([0.25, 0.25, 0.75, 0.75])
    boxes = torch.stack([box] * batch.num_objects)
    boxes[0] = torch.tensor([0.0, 0.0, 0.25, 0.25])       # object 0 alone in the top-left
    masks = torch.ones(batch.num_objects, cfg.model.layout.mask_size, cfg.model.layout.mask_size)
    obj_vecs = torch.zeros(batch.num_objects, cfg.model.layout.gconv_dim)
    layout = torch.zeros(1, avocab.num_objects, H, H)
    z = torch.zeros(1, cfg.model.renderer.noise_dim)

    def cond(attributes):
        with torch.no_grad():
            return gen.encode_conditioning(layout, obj_vecs, boxes, masks, batch.obj_to_img,
                                           z, attributes=attributes)

    attrs = torch.zeros(batch.num_objects, avocab.num_attributes)
    red = attrs.clone()
    red[0, ATTRS.index("red")] = 1
    diff = (cond(red) - cond(attrs)).abs().amax(dim=1)[0]          # (H, W)
    inside = torch.zeros(H, H, dtype=torch.bool)
    inside[: H // 4, : H // 4] = True
    assert diff[inside].min() > 1e-3
    assert diff[~inside].max() < 1e-6
    torch.testing.assert_close(cond(None), cond(attrs))
    gen.train()
    gen(batch, use_gt_layout=True).images.mean().backward()
    assert gen.attr_cond.weight.grad.abs().sum() > 0


def test_object_discriminator_names_attributes(avocab):
    """model.discriminator.classify_attributes: the object discriminator has an attribute head; the
    D step trains it on real crops' attributes, the G step scores fakes with it (obj_attr), and the
    generator's attribute path gets that gradient. Turned off: no head."""
    from sg2img.model import GALSDiscriminator
    from sg2img.objectives import discriminator_loss_terms, generator_loss_terms, weighted_total

    gen, cfg = _gen(avocab, "model.discriminator.classify_attributes=true",
                    "model.renderer.paint_attributes=true")
    torch.manual_seed(0)
    disc = GALSDiscriminator(cfg.model, avocab.num_objects, avocab.num_attributes)
    assert disc.obj.attr_classifier.out_features == avocab.num_attributes
    assert Config.from_preset("tiny").model.discriminator.classify_attributes  # presets train it
    off = GALSDiscriminator(Config.from_preset("tiny",
                                               ["model.discriminator.classify_attributes=false"])
                            .model, avocab.num_objects, avocab.num_attributes)
    assert off.obj.attr_classifier is None
    gen.train()
    batch = random_graph_batch(avocab.num_objects, avocab.num_preds, (3, 2),
                               image_size=cfg.model.renderer.image_size,
                               mask_size=cfg.model.layout.mask_size,
                               num_attributes=avocab.num_attributes)
    assert batch.attributes.sum() > 0
    out = gen(batch, use_gt_layout=True)
    d_terms = discriminator_loss_terms(out, disc, batch, cfg.loss)
    assert d_terms["obj_attr"] > 0
    weighted_total(d_terms, cfg.loss).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0
               for p in disc.obj.attr_classifier.parameters())
    disc.zero_grad()
    disc.requires_grad_(False)
    g_terms = generator_loss_terms(out, disc, batch, cfg.loss)
    g_terms["obj_attr"].backward()
    assert gen.attr_cond.weight.grad.abs().sum() > 0
    # Without attributes in the batch (or with the weight at 0) the term is left out.
    batch.attributes = None
    assert "obj_attr" not in discriminator_loss_terms(gen(batch, use_gt_layout=True), disc,
                                                      batch, cfg.loss)


# ----------------------------------------------------------------------------- class table
def test_an_attribute_the_class_never_takes_is_refused_with_what_it_takes():
    from sg2img.data.shapes import shapes_vocab

    vocab = shapes_vocab()
    street = {"objects": ["sky", "road", "sheep", "car"], "attributes": [[], [], [], ["purple"]]}
    with pytest.raises(SceneGraphError) as e:
        SceneGraph.from_dict(street).encode(vocab)
    assert str(e.value) == ("attributes[3]: object 3 (car) does not take 'purple' in this "
                            "model's data; car takes: black, blue, green, red, white, large, "
                            "small")
    assert e.value.field == "attributes[3]"
    assert e.value.suggestions == ("black", "blue", "green", "red", "white", "large", "small")
    red_sheep = {**street, "attributes": [[], [], ["red"], ["red"]]}
    with pytest.raises(SceneGraphError, match=r"^attributes\[2\]: object 2 \(sheep\) does not "
                                              r"take 'red'.*sheep takes: white, small$"):
        SceneGraph.from_dict(red_sheep).encode(vocab)
    other = {"objects": ["sky", "other"], "attributes": [[], ["white"]]}
    with pytest.raises(SceneGraphError) as e:
        SceneGraph.from_dict(other).encode(vocab)
    assert e.value.detail == ("object 1 (other) takes no attributes in this model's data; "
                              "give it none ([])")
    assert e.value.field == "attributes[1]" and e.value.suggestions == ()
    # An unknown name is still reported as unknown, with the closest names.
    with pytest.raises(SceneGraphError, match="unknown attribute 'purpel'.*purple"):
        SceneGraph.from_dict({**street, "attributes": [[], [], [], ["purpel"]]}).encode(vocab)
    SceneGraph.from_dict({**street, "attributes": [[], [], ["white"], ["red", "small"]]}
                         ).encode(vocab)


def test_without_a_class_table_one_warning_says_attributes_are_unchecked(recwarn):
    vocab = Vocab.from_names(["sky", "road", "car", "bus", "grass"], ["on"], ATTRS)
    graph = SceneGraph.from_dict({"objects": ["sky", "car", "bus"],
                                  "attributes": [["red"], ["blue"], ["large"]]})
    with pytest.warns(UserWarning, match="cannot be checked against the classes") as caught:
        sample = graph.encode(vocab)
    assert len(caught) == 1 and sample.attributes.sum() == 3
    # A graph without attributes has nothing to check: no warning (errors under pytest).
    SceneGraph.from_dict({"objects": ["sky", "car"], "attributes": [[], []]}).encode(vocab)
    SceneGraph.from_dict({"objects": ["sky", "car"]}).encode(vocab)
    assert len(recwarn) == 0


def test_attribute_edits_follow_the_class_table(avocab):
    from sg2img.data.shapes import shapes_vocab
    from sg2img.edits import EditError, apply_edit, apply_edits

    with pytest.raises(EditError) as e:
        apply_edits(CARS, [{"op": "attributes", "index": 1, "attributes": ["blue"]}], avocab)
    assert "edit 0 (attributes): attributes: object 1 (road) takes no attributes" in str(e.value)
    assert e.value.field == "edits[0].attributes[0]"
    street = {"objects": ["road", "car"], "attributes": [[], ["red", "small"]]}
    vocab = shapes_vocab()
    with pytest.raises(EditError, match="car takes: black, blue") as e:
        apply_edit(street, {"op": "attributes", "index": 1, "attributes": ["small", "pink"]},
                   vocab)
    assert e.value.field == "attributes[1]" and "green" in e.value.suggestions
    # A replaced object keeps the attributes its new class takes, and says what it dropped.
    res = apply_edit(street, {"op": "replace", "index": 1, "object": "sheep"}, vocab)
    assert res.graph.attributes == ((), ("small",))
    assert res.description == "replace 1 car -> sheep (drops red, which sheep does not take)"
    res = apply_edit(street, {"op": "replace", "index": 1, "object": "bus"}, avocab)
    assert res.graph.attributes == ((), ("red", "small")) and "drops" not in res.description


def test_the_attribute_examples_fit_the_procedural_class_table():
    from pathlib import Path

    from sg2img.data.shapes import shapes_vocab
    from sg2img.edits import apply_edits, load_edits
    from sg2img.scene_graph import load_scene_graphs

    root = Path(__file__).resolve().parents[1] / "examples"
    vocab = shapes_vocab()
    for path in sorted(root.glob("*.json")) + [root / "attributes" / "street.json"]:
        for graph in load_scene_graphs(path):
            graph.check_vocab(vocab)
    (street,) = load_scene_graphs(root / "attributes" / "street.json")
    for edits in sorted((root / "attributes").glob("edits_*.json")):
        assert apply_edits(street, load_edits(edits), vocab)

"""Evaluation: crops, eval-net files, FID/IS through torchmetrics, LPIPS/Inception offline,
evaluate() end to end with a fake generator, reports, and the eval-net training script."""

import dataclasses
import json
import math
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from sg2img.eval import (
    DEFAULT_METRICS,
    METRICS,
    EvalOptions,
    Metric,
    evaluate,
    evaluate_checkpoint,
    register_metric,
    report_to_markdown,
    write_report,
)
from sg2img.eval import nets as E
from sg2img.scene_graph import GraphSample, collate_graphs
from sg2img.vocab import Vocab

VOCAB = Vocab.from_names(["red", "green", "blue", "yellow"], ["left of", "above"])
PALETTE = torch.tensor([[0.0, 0.0, 0.0], [1.0, -1, -1], [-1, 1, -1], [-1, -1, 1], [1, 1, -1]])
REPO = Path(__file__).resolve().parents[1]


class Scenes(Dataset):
    """Tiny procedural scenes: class-coloured rectangles on grey, boxes on a 1/8 grid."""

    vocab = VOCAB

    def __init__(self, n: int = 12, size: int = 32, offset: int = 0) -> None:
        self.n, self.size, self.offset = n, size, offset

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> GraphSample:
        g = torch.Generator().manual_seed(i + self.offset)
        k = 2 + (i % 2)
        objs = torch.randint(1, 5, (k,), generator=g)
        x0 = torch.randint(0, 5, (k,), generator=g)
        y0 = torch.randint(0, 5, (k,), generator=g)
        w = torch.randint(2, 4, (k,), generator=g)
        boxes = torch.stack([x0, y0, x0 + w, y0 + w], 1).float() / 8
        image = torch.full((3, self.size, self.size), -0.2)
        for c, b in zip(objs, (boxes * self.size).long(), strict=True):
            image[:, b[1]:b[3], b[0]:b[2]] = PALETTE[c][:, None, None]
        triples = torch.tensor([[0, 1, 1]])
        return GraphSample(objs, triples, boxes=boxes,
                           box_given=torch.zeros(k, dtype=torch.bool),
                           image=image, image_id=i + self.offset).with_image_node()


class FakeGenerator(nn.Module):
    """Honours the generator contract: real images + seeded noise, GT boxes shifted."""

    def __init__(self, noise: float = 0.0, shift: float = 0.0) -> None:
        super().__init__()
        self.noise, self.shift = noise, shift
        self.scale = nn.Parameter(torch.ones(()))
        self.calls = []

    def forward(self, batch, *, use_gt_layout=False, rng=None):
        self.calls.append((use_gt_layout, batch.box_given.clone(), self.training))
        eps = torch.randn(batch.images.shape, generator=rng)
        images = (batch.images + self.noise * eps).clamp(-1, 1) * self.scale
        boxes = (batch.boxes + self.shift).clamp(0, 1)
        return SimpleNamespace(images=images, boxes_pred=boxes)


def tiny_nets(seed: int = 0):
    """Random tiny nets whose BatchNorm statistics are set on real scenes, so that their
    features are not (near) constant as at initialisation."""
    torch.manual_seed(seed)
    feat = E.SceneFeatureNet(VOCAB.num_objects, image_size=32, width=4, feature_dim=8)
    clf = E.CropClassifier(VOCAB.num_objects, crop_size=8, width=4)
    batch = collate_graphs([Scenes(16, offset=1000)[i] for i in range(16)])
    crops, _ = E.crop_objects(batch.images, batch.objs, batch.boxes, batch.obj_to_img, 8)
    for net, x in ((feat, batch.images), (clf, crops)):
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.momentum = None                       # cumulative: exact batch statistics
        with torch.no_grad():
            net.train()(x)
        net.meta = {"object_names": list(VOCAB.object_names)}
        net.eval()
    return feat, clf


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny convolutions: one thread avoids OpenMP waits on a busy 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def offline_hub(tmp_path, monkeypatch):
    """An empty torch hub cache and no shipped nets, whatever this machine holds."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr(E, "ASSET_DIR", tmp_path / "no_assets")


# --------------------------------------------------------------------------- crops
def test_crop_objects_shapes_positions_and_image_node_excluded():
    batch = collate_graphs([Scenes()[i] for i in range(3)])
    crops, labels = E.crop_objects(batch.images, batch.objs, batch.boxes, batch.obj_to_img, 8)
    real = batch.objs != 0
    assert crops.shape == (int(real.sum()), 3, 8, 8)
    assert torch.equal(labels, batch.objs[real])
    # A box exactly covering a uniform block gives a uniform crop of that block's colour.
    image = torch.full((1, 3, 32, 32), -1.0)
    image[:, :, 8:16, 16:32] = torch.tensor([0.5, -0.5, 1.0])[:, None, None]
    box = torch.tensor([[0.5, 0.25, 1.0, 0.5]])
    crop = E.crop_boxes(image, box, torch.zeros(1, dtype=torch.long), size=4)
    assert torch.allclose(crop[0], torch.tensor([0.5, -0.5, 1.0])[:, None, None].expand(3, 4, 4))
    # The second image of a batch is read for boxes assigned to it.
    two = torch.cat([image, -image])
    crop2 = E.crop_boxes(two, box.repeat(2, 1), torch.tensor([0, 1]), size=4)
    assert torch.allclose(crop2[1], -crop2[0])


# --------------------------------------------------------------------------- eval-net files
def test_eval_net_save_load_round_trip(tmp_path):
    feat, clf = tiny_nets()
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    for net, name in ((feat, "f.pt"), (clf, "c.pt")):
        E.save_eval_net(net, tmp_path / name, {"val": {"accuracy": 0.5}, "object_names": ["a"]})
        state = torch.load(tmp_path / name, weights_only=True)
        assert state["kind"] == type(net).__name__ and state["args"] == net.config()
        loaded = E.load_eval_net(tmp_path / name, type(net).__name__)
        assert not loaded.training and loaded.meta["val"] == {"accuracy": 0.5}
        assert torch.equal(loaded(x), net(x))
    with pytest.raises(ValueError, match="holds a SceneFeatureNet, expected a CropClassifier"):
        E.load_eval_net(tmp_path / "f.pt", "CropClassifier")
    with pytest.raises(E.EvalWeightsError, match="not found"):
        E.load_eval_net(tmp_path / "missing.pt")
    assert list(tmp_path.glob("*.tmp")) == []           # atomic write leaves no temp file


def test_shipped_nets_missing_give_the_training_command(tmp_path):
    with pytest.raises(E.EvalWeightsError, match="scripts/train_eval_nets.py"):
        E.load_shipped_net("CropClassifier")
    feat, _ = tiny_nets()
    E.save_eval_net(feat, tmp_path / "assets" / E.FEATURE_NET_FILE)
    assert isinstance(E.load_shipped_net("SceneFeatureNet", tmp_path / "assets"),
                      E.SceneFeatureNet)


def test_check_net_vocab():
    feat, _ = tiny_nets()
    E.check_net_vocab(feat, VOCAB.object_names, "feature network")
    other = Vocab.from_names(["a", "b", "c", "d"], ["x"])
    with pytest.raises(ValueError, match="another vocabulary"):
        E.check_net_vocab(feat, other.object_names, "feature network")


# --------------------------------------------------------------------------- FID / IS
def _fid(extractor, real, fake):
    from torchmetrics.image.fid import FrechetInceptionDistance

    fid = FrechetInceptionDistance(feature=extractor.fid_features)
    fid.update(E.images_to_uint8(real), real=True)
    fid.update(E.images_to_uint8(fake), real=False)
    return float(fid.compute())


def test_fid_with_our_feature_net_is_zero_for_real_and_grows_with_noise():
    feat, _ = tiny_nets()
    ex = E.scene_feature_extractor(feat)
    assert ex.fid_features.num_features == 8 and ex.name == E.SCENE_FEATURE_NET_NAME
    real = collate_graphs([Scenes(24)[i] for i in range(24)]).images
    g = torch.Generator().manual_seed(0)
    noisy = [(real + s * torch.randn(real.shape, generator=g)).clamp(-1, 1) for s in (0.2, 0.8)]
    same, small, large = _fid(ex, real, real), _fid(ex, real, noisy[0]), _fid(ex, real, noisy[1])
    assert abs(same) < 1e-3
    assert small > 10 * max(abs(same), 1e-4) and large > small
    with pytest.raises(TypeError, match="uint8"):
        ex.fid_features(real)


@pytest.mark.filterwarnings("ignore:Metric `InceptionScore` will save all extracted features")
@pytest.mark.filterwarnings("ignore:std.*degrees of freedom")     # one split: no std
def test_inception_score_range_with_hand_made_logits():
    from torchmetrics.image.inception import InceptionScore

    class OneHot(nn.Module):        # image i -> certain of class i % 4
        def forward(self, x):
            return 50 * nn.functional.one_hot(x[:, 0, 0, 0].long() % 4, 4).float()

    images = torch.arange(8, dtype=torch.uint8)[:, None, None, None].expand(8, 3, 4, 4)
    score = InceptionScore(feature=OneHot(), splits=1)
    score.update(images.contiguous())
    assert float(score.compute()[0]) == pytest.approx(4.0, rel=1e-4)   # = number of classes
    feat, _ = tiny_nets()
    ex = E.scene_feature_extractor(feat)
    score = InceptionScore(feature=ex.is_logits, splits=2)
    score.update(E.images_to_uint8(collate_graphs([Scenes()[i] for i in range(8)]).images))
    assert 1.0 <= float(score.compute()[0]) <= VOCAB.num_objects


def test_inception_needs_a_weights_file_and_loads_a_user_file_offline(tmp_path, monkeypatch):
    with pytest.raises(E.EvalWeightsError, match=E.INCEPTION_FID_FILE) as err:
        E.inception_feature_extractor()
    assert "--inception-weights" in str(err.value)
    with pytest.raises(E.EvalWeightsError, match="does not exist"):
        E.inception_feature_extractor(tmp_path / "nope.pth")
    # Make a file of the right format (random weights) without any download.
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    with monkeypatch.context() as m:
        m.setattr(fe, "load_state_dict_from_url", lambda *a, **k: {})
        m.setattr(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda *a, **k: None)
        net = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    weights = tmp_path / "my_inception.pth"
    torch.save(net.state_dict(), weights)
    del net
    ex = E.inception_feature_extractor(weights)
    assert ex.name == E.INCEPTION_NAME and ex.fid_features.num_features == 2048
    images = E.images_to_uint8(torch.rand(2, 3, 32, 32) * 2 - 1)
    assert ex.fid_features(images).shape == (2, 2048)
    assert ex.is_logits(images).shape == (2, 1008)
    # Also found in the hub cache under its standard name.
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    cache.mkdir(parents=True)
    (cache / E.INCEPTION_FID_FILE).symlink_to(weights)
    assert E.find_inception_weights() == cache / E.INCEPTION_FID_FILE


# --------------------------------------------------------------------------- LPIPS
def test_lpips_missing_weights_message_and_user_file(tmp_path):
    with pytest.raises(E.EvalWeightsError, match="alexnet-owt-7be5be79.pth"):
        E.build_lpips("alex")
    import torchvision

    # squeeze keeps the file small; alex / vgg go through the same code.
    path = tmp_path / "any_name.pth"
    torch.save(torchvision.models.squeezenet1_1(weights=None).state_dict(), path)
    hub_before, explicit_before = torch.hub.get_dir(), torch.hub._hub_dir
    lpips = E.build_lpips("squeeze", path)
    assert torch.hub.get_dir() == hub_before             # the hub dir is restored, and
    assert torch.hub._hub_dir == explicit_before         # $TORCH_HOME still rules if it did
    a = torch.rand(2, 3, 32, 32) * 2 - 1
    lpips.update(a, a)
    assert float(lpips.compute()) == pytest.approx(0.0, abs=1e-6)
    lpips.update(a, -a)
    assert float(lpips.compute()) > 0


# --------------------------------------------------------------------------- evaluate
def _run(gen, data=None, **kw):
    feat, clf = tiny_nets()
    kw.setdefault("metrics", DEFAULT_METRICS)
    kw.setdefault("feature_net", feat)
    kw.setdefault("classifier", clf)
    return evaluate(gen, data or Scenes(), EvalOptions(batch_size=5, progress=False, split="val",
                                                       is_splits=2, **kw))


def test_evaluate_end_to_end_records_everything():
    gen = FakeGenerator(noise=0.3)
    gen.train()
    report = _run(gen, samples_per_graph=3, seed=1)
    assert gen.training                                  # mode restored
    assert all(not training for _, _, training in gen.calls)
    assert all(not given.any() for _, given, _ in gen.calls)   # graph alone: nothing pinned
    assert len(gen.calls) == 3 * 3                       # 3 batches x 3 samples
    assert report["split"] == "val" and report["image_size"] == 32
    assert report["num_real_images"] == 12 and report["num_generated_images"] == 36
    assert report["samples_per_graph"] == 3
    assert report["feature_network"] == E.SCENE_FEATURE_NET_NAME
    assert set(report["metrics"]) == set(DEFAULT_METRICS) == set(report["protocols"])
    assert "strictly above" in report["protocols"]["layout_recall"]
    assert "Grid2Im" in report["protocols"]["obj_acc"]
    m = report["metrics"]
    assert m["layout_recall"]["R@0.5"] == 1.0 and m["layout_recall"]["mean_iou"] == 1.0
    assert m["layout_recall"]["num_objects"] == sum(2 + i % 2 for i in range(12))
    assert m["fid"]["num_real_images"] == 12 and m["fid"]["num_generated_images"] == 36
    assert m["fid"]["fid"] > 0
    assert 1.0 <= m["is"]["is_mean"] <= VOCAB.num_objects and m["is"]["splits"] == 2
    assert m["obj_acc"]["num_crops"] == 3 * m["layout_recall"]["num_objects"]
    assert 0.0 <= m["obj_acc"]["accuracy"] <= 1.0
    assert m["diversity"]["mean_pixel_distance"] > 0 and m["diversity"]["num_pairs"] == 12
    assert m["diversity"]["lpips"] is None
    assert "alexnet-owt-7be5be79.pth" in m["diversity"]["lpips_note"]
    json.dumps(report, allow_nan=True)


@pytest.fixture
def restored_registry():
    """The registry is global: what a test registers is taken out afterwards."""
    before = dict(METRICS)
    yield METRICS
    METRICS.clear()
    METRICS.update(before)


def test_a_registered_metric_plugs_into_evaluate(restored_registry):
    @register_metric("objects_per_graph")
    class ObjectsPerGraph(Metric):
        protocol = "mean number of objects per graph"
        num_draws = 3

        def __init__(self, ctx):
            super().__init__(ctx)
            self.counts, self.draws = [], set()

        def update(self, batch, outs):
            self.draws.add(len(outs))
            self.counts += [int((batch.obj_to_img == i).sum()) - 1
                            for i in range(batch.num_images)]

        def compute(self):
            return {"mean": sum(self.counts) / len(self.counts), "draws": sorted(self.draws)}

    with pytest.raises(ValueError, match="already registered"):
        register_metric("objects_per_graph")(ObjectsPerGraph)
    gen = FakeGenerator()
    report = _run(gen, metrics=("objects_per_graph",))
    m = report["metrics"]["objects_per_graph"]
    assert m["mean"] == pytest.approx(sum(2 + i % 2 for i in range(12)) / 12)
    assert m["draws"] == [3] and len(gen.calls) == 3 * 3    # the metric asked for 3 draws
    assert report["protocols"] == {"objects_per_graph": "mean number of objects per graph"}
    with pytest.raises(ValueError, match="unknown metrics"):
        _run(gen, metrics=("nope",))


def test_evaluate_real_images_give_zero_fid_and_recall_drops_with_shift():
    perfect = _run(FakeGenerator(noise=0.0), metrics=("layout_recall", "fid", "diversity"))
    m = perfect["metrics"]
    assert abs(m["fid"]["fid"]) < 1e-3
    assert m["diversity"]["mean_pixel_distance"] == 0.0    # no noise: both samples identical
    assert m["diversity"]["feature_distance"] == 0.0
    assert m["diversity"]["feature_distance_ratio"] == 0.0
    # In feature space too, noisier samples lie further apart; the ratio is to two real scenes.
    div = [_run(FakeGenerator(noise=n), metrics=("diversity",))["metrics"]["diversity"]
           for n in (0.1, 0.5)]
    assert 0 < div[0]["feature_distance"] < div[1]["feature_distance"]
    assert 0 < div[0]["feature_distance_ratio"] < div[1]["feature_distance_ratio"]
    assert div[1]["feature_distance"] / div[1]["feature_distance_ratio"] == pytest.approx(
        div[0]["feature_distance"] / div[0]["feature_distance_ratio"])   # same real scale
    noisy = _run(FakeGenerator(noise=0.5), metrics=("fid",))["metrics"]["fid"]["fid"]
    assert noisy > 1e-2
    shifted = _run(FakeGenerator(shift=0.1), metrics=("layout_recall",))["metrics"]
    r = shifted["layout_recall"]
    assert r["R@0.3"] <= 1.0 and r["R@0.5"] < 1.0 and r["mean_iou"] < 1.0
    assert r["R@0.3"] >= r["R@0.5"]


def test_evaluate_is_deterministic_for_a_seed():
    a = _run(FakeGenerator(noise=0.3), seed=3, samples_per_graph=2)
    b = _run(FakeGenerator(noise=0.3), seed=3, samples_per_graph=2)
    c = _run(FakeGenerator(noise=0.3), seed=4, samples_per_graph=2)
    assert a == b
    assert a["metrics"]["fid"] != c["metrics"]["fid"]


class RandomScenes(Scenes):
    """Items that draw from torch's global RNG, like a training-mode dataset."""

    def __getitem__(self, i: int) -> GraphSample:
        s = super().__getitem__(i)
        s.image = (s.image + 0.2 * torch.rand(s.image.shape)).clamp(-1, 1)
        return s


def test_evaluate_is_deterministic_for_datasets_that_sample_and_leaves_global_rng_alone():
    feat, _ = tiny_nets()

    def run():
        return evaluate(FakeGenerator(noise=0.3), RandomScenes(), EvalOptions(
            feature_net=feat, metrics=("fid", "is", "diversity"), batch_size=5, is_splits=2,
            progress=False))

    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = run()
    assert torch.equal(torch.get_rng_state(), state)
    assert a == run()


def test_evaluate_obj_acc_with_a_perfect_classifier():
    class Oracle(nn.Module):        # classifies a crop by its centre colour
        crop_size = 8
        num_classes = VOCAB.num_objects

        def forward(self, crops):
            centre = crops[:, :, 4, 4]                                    # (K, 3)
            return -torch.cdist(centre, PALETTE)                          # (K, C)

    report = _run(FakeGenerator(), metrics=("obj_acc",), classifier=Oracle())
    assert report["metrics"]["obj_acc"]["real_crop_accuracy"] > 0.7
    assert report["metrics"]["obj_acc"]["accuracy"] == \
        report["metrics"]["obj_acc"]["real_crop_accuracy"]                # images are the real ones
    # Split by object size: every crop lands in one bin; these boxes are 4-14 % of the image.
    oa = report["metrics"]["obj_acc"]
    bins = oa["by_size"]
    assert sum(b["num_crops"] for b in bins.values()) == oa["num_crops"]
    assert bins["area[0,0.05)"]["num_crops"] == 0 and math.isnan(bins["area[0,0.05)"]["accuracy"])
    assert bins["area[0.05,0.2)"]["accuracy"] == oa["accuracy"]
    assert bins["area[0.05,0.2)"]["real_crop_accuracy"] == oa["real_crop_accuracy"]
    assert oa["own_boxes_accuracy"] is None      # this generator reports no layout boxes

    class MirroredLayout(FakeGenerator):  # lays the scene out mirrored and draws it so
        def forward(self, batch, **kw):
            out = super().forward(batch, **kw)
            out.images = out.images.flip(-1)
            out.boxes = torch.stack([1 - batch.boxes[:, 2], batch.boxes[:, 1],
                                     1 - batch.boxes[:, 0], batch.boxes[:, 3]], dim=1)
            return out

    oa = _run(MirroredLayout(), metrics=("obj_acc",), classifier=Oracle())["metrics"]["obj_acc"]
    # (pixels flipped vs boxes mirrored: crops sample a slightly different grid)
    assert oa["own_boxes_accuracy"] == pytest.approx(oa["real_crop_accuracy"], abs=0.05)
    assert oa["own_boxes_accuracy"] > oa["accuracy"] + 0.2


def test_evaluate_writes_the_box_file_it_can_score(tmp_path):
    from sg2img.eval import score_box_file

    report = _run(FakeGenerator(shift=0.05), metrics=("layout_recall",),
                  boxes_out=tmp_path / "boxes.json")
    scored = score_box_file(tmp_path / "boxes.json", Scenes())
    for key in ("R@0.3", "R@0.5", "mean_iou", "num_objects"):
        assert scored[key] == pytest.approx(report["metrics"]["layout_recall"][key])


def test_evaluate_missing_networks_fail_fast_with_clear_messages():
    gen = FakeGenerator()
    with pytest.raises(E.EvalWeightsError, match=E.INCEPTION_FID_FILE):
        evaluate(gen, Scenes(), EvalOptions(metrics=("fid",), progress=False))
    with pytest.raises(E.EvalWeightsError, match="train_eval_nets.py"):
        evaluate(gen, Scenes(), EvalOptions(metrics=("obj_acc",), progress=False))
    assert gen.calls == []                                      # nothing generated
    with pytest.raises(ValueError, match="unknown metrics"):
        evaluate(gen, Scenes(), EvalOptions(metrics=("fid", "psnr"), progress=False))


def test_evaluate_rejects_nets_of_another_vocabulary_and_wrong_sizes():
    feat, clf = tiny_nets()
    feat.meta = {"object_names": ["__image__", "a", "b", "c", "d"]}
    with pytest.raises(ValueError, match="another vocabulary"):
        evaluate(FakeGenerator(), Scenes(),
                 EvalOptions(metrics=("fid",), feature_net=feat, progress=False))

    class Small(FakeGenerator):
        def forward(self, batch, **kw):
            out = super().forward(batch, **kw)
            out.images = out.images[..., :16, :16]
            return out

    with pytest.raises(ValueError, match="build the dataset at the generator's image size"):
        _run(Small(), metrics=("diversity",))


def test_write_report_json_and_markdown(tmp_path):
    report = _run(FakeGenerator(noise=0.2), samples_per_graph=2)
    report["checkpoint"] = "run/export.pt"
    json_path, md_path = write_report(report, tmp_path / "out" / "report.json")
    assert json_path.name == "report.json" and md_path.name == "report.md"
    text = json_path.read_text()
    saved = json.loads(text)
    assert "NaN" not in text                             # strict JSON
    assert saved["metrics"]["fid"] == report["metrics"]["fid"]
    assert saved["checkpoint"] == "run/export.pt" and saved["num_generated_images"] == 24
    md = md_path.read_text()
    for text in ("| layout R@0.5 | 1.0000 |", "| FID |", "| IS |", "Grid2Im",
                 "mean_pixel_distance", "LPIPS | n/a", "**checkpoint**: run/export.pt",
                 "**num_generated_images**: 24", "**split**: val"):
        assert text in md, text
    j2, m2 = write_report(report, tmp_path / "plain")
    assert j2.name == "plain.json" and m2.name == "plain.md"


# --------------------------------------------------------------------------- training the nets
def test_train_eval_nets_ships_loadable_nets(tmp_path, monkeypatch):
    """What scripts/train_eval_nets.py runs: nets and meta.json that evaluate() loads."""
    from sg2img.eval import EvalNetTraining, train_eval_nets

    out = tmp_path / "assets"
    options = EvalNetTraining(image_size=32, crop_size=8, width=4, feature_epochs=1,
                              classifier_epochs=1, batch_size=8)
    written = train_eval_nets(Scenes(16), Scenes(16, offset=100), out, options,
                              provenance={"data": "DATA", "command": "train --data DATA"},
                              test_set=Scenes(16, offset=200))
    assert [p.name for p in written] == ["scene_feature_net.pt", "crop_classifier.pt",
                                         "meta.json"]     # no attributes in these scenes
    meta = json.loads((out / "meta.json").read_text())
    assert meta["object_names"] == list(VOCAB.object_names)
    assert 0 <= meta["crop_classifier"]["val"]["accuracy"] <= 1
    assert "--data DATA" in meta["scene_feature_net"]["command"]
    assert meta["scene_feature_net"]["data"] == "DATA"
    # Reference scores: the floor (val vs test) and what the net must tell apart (half size).
    reference = meta["scene_feature_net"]["reference_real_images"]
    assert set(reference) == {"fid_val_vs_train16", "fid_val_vs_val_plus_noise0.1",
                              "fid_val_vs_val_down16", "is_val_mean", "is_val_std",
                              "fid_val_vs_test"}
    # --rescore: the same net's reference scores again, here without a test split.
    from sg2img.eval import rescore_feature_net

    rescore_feature_net(Scenes(16), Scenes(16, offset=100), out, command="RESCORE")
    again = json.loads((out / "meta.json").read_text())["scene_feature_net"]
    assert again["rescored_by"] == "RESCORE" and "fid_val_vs_test" not in \
        again["reference_real_images"]
    assert again["reference_real_images"]["fid_val_vs_val_down16"] == pytest.approx(
        reference["fid_val_vs_val_down16"], rel=1e-4)
    feat = E.load_shipped_net("SceneFeatureNet", out)
    clf = E.load_shipped_net("CropClassifier", out)
    assert feat.meta["object_names"] == list(VOCAB.object_names)
    # Saved nets can be given by path ...
    report = evaluate(FakeGenerator(), Scenes(), EvalOptions(
        metrics=("fid", "obj_acc"), progress=False, feature_net=out / "scene_feature_net.pt",
        classifier=out / "crop_classifier.pt"))
    assert report["feature_network"] == f"SceneFeatureNet from {out / 'scene_feature_net.pt'}"
    # ... and the shipped ones are picked up by evaluate() when the vocabulary matches.
    monkeypatch.setattr(E, "ASSET_DIR", out)
    report = evaluate(FakeGenerator(), Scenes(),
                      EvalOptions(metrics=("fid", "obj_acc"), progress=False))
    assert report["feature_network"] == E.SCENE_FEATURE_NET_NAME
    assert not math.isnan(report["metrics"]["obj_acc"]["accuracy"])
    assert clf.num_classes == VOCAB.num_objects
    # The nets are picked by the size of the images scored: 32 px data reads eval32/ ...
    sized = Scenes()
    sized.image_size = 32
    shutil.copytree(out, tmp_path / "eval32")
    monkeypatch.setattr(E, "ASSET_DIR", tmp_path / "eval")
    report = evaluate(FakeGenerator(), sized,
                      EvalOptions(metrics=("fid", "obj_acc"), progress=False))
    assert report["feature_network"] == E.SCENE_FEATURE_NET_NAME
    # ... and a 64 px dataset finds none in eval/: the error names the size and the command.
    with pytest.raises(E.EvalWeightsError, match="for 64 px images are missing"):
        evaluate(FakeGenerator(), Scenes(), EvalOptions(metrics=("obj_acc",), progress=False))


# --------------------------------------------------------------------------- entry points
def test_evaluate_checkpoint_with_the_real_model(tmp_path, monkeypatch):
    """sg2img evaluate's path: inference export -> GALSGenerator -> dataset -> report files."""
    import sg2img.data
    from sg2img.checkpoint import export_inference
    from sg2img.config import Config
    from sg2img.eval import evaluate_checkpoint
    from sg2img.model import GALSGenerator

    cfg = Config.from_preset("tiny")
    assert cfg.model.renderer.image_size == 32
    torch.manual_seed(0)
    model = GALSGenerator(cfg.model, VOCAB.num_objects, VOCAB.num_preds)
    export_inference(tmp_path / "export.pt", cfg, VOCAB, model)
    seen = {}

    def fake_build_dataset(data_cfg, split, image_size, mask_size):
        seen.update(root=data_cfg.root, split=split, size=image_size, mask=mask_size)
        return Scenes(6)

    monkeypatch.setattr(sg2img.data, "build_dataset", fake_build_dataset, raising=False)
    feat, clf = tiny_nets()
    report = evaluate_checkpoint(tmp_path / "export.pt", "DATA", "test", out=tmp_path / "rep",
                                 feature_net=feat, classifier=clf, batch_size=4,
                                 samples_per_graph=2, is_splits=2, progress=False)
    assert seen == {"root": "DATA", "split": "test", "size": 32, "mask": cfg.model.layout.mask_size}
    assert report["checkpoint"] == str(tmp_path / "export.pt") and report["data"] == "DATA"
    assert report["split"] == "test" and report["num_generated_images"] == 12
    m = report["metrics"]
    assert 0 <= m["layout_recall"]["R@0.5"] <= m["layout_recall"]["R@0.3"] <= 1
    assert math.isfinite(m["fid"]["fid"]) and m["diversity"]["mean_pixel_distance"] > 0
    saved = json.loads((tmp_path / "rep.json").read_text())   # strict JSON: NaN -> null
    assert saved["metrics"]["layout_recall"]["by_size"]["area[0,0.05)"]["R@0.5"] is None
    assert "**checkpoint**" in (tmp_path / "rep.md").read_text()
    # A dataset with another vocabulary is refused.
    other = Scenes(6)
    other.vocab = Vocab.from_names(["a", "b", "c", "d"], ["left of", "above"])
    monkeypatch.setattr(sg2img.data, "build_dataset", lambda *a: other, raising=False)
    with pytest.raises(ValueError, match="another object vocabulary"):
        evaluate_checkpoint(tmp_path / "export.pt", "DATA", metrics=("layout_recall",),
                            progress=False)
    # precision="bf16" renders under autocast: the same boxes, slightly different images.
    monkeypatch.setattr(sg2img.data, "build_dataset", lambda *a: Scenes(6), raising=False)
    kw = dict(metrics=("layout_recall", "diversity"), batch_size=4, progress=False)
    fp32 = evaluate_checkpoint(tmp_path / "export.pt", "DATA", **kw)
    bf16 = evaluate_checkpoint(tmp_path / "export.pt", "DATA", precision="bf16", **kw)
    assert (fp32["precision"], bf16["precision"]) == ("fp32", "bf16")
    assert bf16["metrics"]["layout_recall"] == fp32["metrics"]["layout_recall"]
    a = fp32["metrics"]["diversity"]["mean_pixel_distance"]
    b = bf16["metrics"]["diversity"]["mean_pixel_distance"]
    assert a != b and abs(a - b) < 0.1 * a, (a, b)
    with pytest.raises(ValueError, match="precision must be"):
        evaluate_checkpoint(tmp_path / "export.pt", "DATA", precision="fp16", **kw)


def test_evaluate_box_file_report(tmp_path):
    from sg2img.eval import evaluate_box_file, write_box_file

    data = Scenes(4)
    boxes = {s.image_id: s.boxes[:-1] for s in (data[i] for i in range(4))}
    write_box_file(tmp_path / "b.json", boxes)
    report = evaluate_box_file(tmp_path / "b.json", data, split="val", out=tmp_path / "r.json")
    assert report["metrics"]["layout_recall"]["R@0.5"] == 1.0
    assert report["num_graphs"] == 4
    assert "box file" in report["protocols"]["layout_recall"]
    assert "| layout R@0.5 | 1.0000 |" in (tmp_path / "r.md").read_text()


# --------------------------------------------------------------------------- shipped nets
SHIPPED = REPO / "sg2img" / "assets" / "eval"


def test_shipped_procedural_nets_are_small_plain_and_match_the_procedural_vocabulary():
    meta = json.loads((SHIPPED / "meta.json").read_text())
    for kind, file in (("SceneFeatureNet", E.FEATURE_NET_FILE),
                       ("CropClassifier", E.CLASSIFIER_FILE)):
        assert (SHIPPED / file).stat().st_size < 2_000_000
        net = E.load_shipped_net(kind, SHIPPED)                 # weights_only=True inside
        assert net.meta["object_names"] == meta["object_names"]
        assert net.num_classes == len(meta["object_names"])
    assert meta["crop_classifier"]["val"]["accuracy"] > 0.9
    assert meta["scene_feature_net"]["val"]["micro_f1"] > 0.9


@pytest.fixture(scope="module")
def shapes64(tmp_path_factory):
    """A small procedural dataset at the shipped nets' size, written by the real writer.

    Its seed differs from the one the nets were trained on, so these are unseen images.
    """
    from sg2img.data.shapes import write_dataset

    out = tmp_path_factory.mktemp("shapes64")
    write_dataset(out, size=64, num_images={"train": 40, "val": 48, "test": 4}, seed=11,
                  workers=1)
    return out


def test_shipped_nets_on_real_procedural_images(monkeypatch, shapes64):
    """Real images as 'generated' ones: FID 0, recall 1, crops classified as on real data."""
    from sg2img.config import DataConfig
    from sg2img.data import build_dataset

    subset = build_dataset(DataConfig(dataset="coco", root=str(shapes64)), "val", 64, 16)
    monkeypatch.setattr(E, "ASSET_DIR", SHIPPED)
    report = evaluate(FakeGenerator(), subset, EvalOptions(
        metrics=("layout_recall", "fid", "is", "obj_acc"), batch_size=16, progress=False,
        split="val"))
    m = report["metrics"]
    assert report["feature_network"] == E.SCENE_FEATURE_NET_NAME
    assert m["layout_recall"]["R@0.5"] == 1.0
    assert abs(m["fid"]["fid"]) < 1e-2
    assert m["is"]["is_mean"] > 1.5
    assert m["obj_acc"]["accuracy"] == m["obj_acc"]["real_crop_accuracy"] > 0.95
    noisy = evaluate(FakeGenerator(noise=0.3), subset,
                     EvalOptions(metrics=("fid",), batch_size=16, progress=False))["metrics"]
    assert noisy["fid"]["fid"] > 50

    class Mirrored(FakeGenerator):      # right objects, wrong places: crops miss them
        def forward(self, batch, **kw):
            out = super().forward(batch, **kw)
            out.images = out.images.flip(-1)
            return out

    mirrored = evaluate(Mirrored(), subset, EvalOptions(metrics=("obj_acc",), batch_size=16,
                                                        progress=False))["metrics"]["obj_acc"]
    assert mirrored["accuracy"] < 0.8 < mirrored["real_crop_accuracy"]


def test_shipped_128px_nets_see_what_a_64px_picture_lacks(tmp_path, monkeypatch):
    """128 px data reads eval128/: real images score FID 0 and the real crops' accuracy; the
    same images blurred to 64 px and back are told apart."""
    from sg2img.config import DataConfig
    from sg2img.data import build_dataset
    from sg2img.data.shapes import write_dataset

    write_dataset(tmp_path, size=128, num_images={"train": 2, "val": 24, "test": 2}, seed=13,
                  workers=1)
    data = build_dataset(DataConfig(dataset="coco", root=str(tmp_path)), "val", 128, 16)
    monkeypatch.setattr(E, "ASSET_DIR", SHIPPED)             # 128 px: its eval128 sibling
    assert E.load_shipped_net("SceneFeatureNet", image_size=128).image_size == 128

    class Blurred(FakeGenerator):
        def forward(self, batch, **kw):
            out = super().forward(batch, **kw)
            out.images = E.down_and_up(E.images_to_uint8(out.images), 64).float() / 127.5 - 1
            return out

    options = EvalOptions(metrics=("fid", "obj_acc"), batch_size=24, progress=False)
    sharp = evaluate(FakeGenerator(), data, options)
    blurred = evaluate(Blurred(), data, options)["metrics"]
    assert sharp["image_size"] == 128 and abs(sharp["metrics"]["fid"]["fid"]) < 1e-2
    acc = sharp["metrics"]["obj_acc"]
    assert acc["accuracy"] == acc["real_crop_accuracy"] > 0.95
    assert blurred["fid"]["fid"] > 5


def test_mean_class_box_baseline(shapes64):
    """The baseline averages each class's training boxes and is scored like a model."""
    from sg2img.config import DataConfig
    from sg2img.data import build_dataset
    from sg2img.eval import mean_class_box_recall, mean_class_boxes

    cfg = DataConfig(dataset="coco", root=str(shapes64))
    train, val = (build_dataset(cfg, s, 64, 16) for s in ("train", "val"))
    n = train.vocab.num_objects
    means = mean_class_boxes(train, n)
    # By hand from the items (which read the images): the fast path gives the same boxes.
    sums, counts = torch.zeros(n, 4), torch.zeros(n)
    for i in range(len(train)):
        s = train[i]
        keep = s.objs != 0
        sums.index_add_(0, s.objs[keep], s.boxes[keep])
        counts.index_add_(0, s.objs[keep], torch.ones(int(keep.sum())))
    seen = counts > 0
    torch.testing.assert_close(means[seen], sums[seen] / counts[seen, None])
    overall = sums.sum(0) / counts.sum()
    torch.testing.assert_close(means[~seen], overall.expand(int((~seen).sum()), 4))
    rep = mean_class_box_recall(means, val)
    assert rep["num_objects"] == sum(val.num_objects(i) for i in range(len(val)))
    assert 0 <= rep["R@0.5"] <= rep["R@0.3"] < 1
    # Scored against the training split with per-class boxes equal to the truth, recall is 1.
    single = [train.object_boxes(0)]
    exact = torch.zeros(n, 4)
    exact[single[0][0]] = single[0][1]
    sub = torch.utils.data.Subset(train, [0])
    sub.object_boxes = lambda i: train.object_boxes(0)
    assert mean_class_box_recall(exact, sub)["R@0.5"] == 1.0


def test_sg2img_evaluate_command(tmp_path, shapes64, capsys, monkeypatch):
    """The CLI: a tiny export on the procedural split, layout recall with the baseline."""
    monkeypatch.setattr(E, "ASSET_DIR", SHIPPED)
    from sg2img.checkpoint import export_inference
    from sg2img.cli import main
    from sg2img.config import Config
    from sg2img.data.shapes import shapes_vocab
    from sg2img.eval import write_box_file
    from sg2img.model import GALSGenerator

    vocab = shapes_vocab()
    cfg = Config.from_preset("tiny").with_overrides(
        {"model.renderer.image_size": 64, "data.root": str(shapes64)})
    torch.manual_seed(0)
    export_inference(tmp_path / "export.pt", cfg, vocab,
                     GALSGenerator(cfg.model, vocab.num_objects, vocab.num_preds))
    rc = main(["evaluate", "--checkpoint", str(tmp_path / "export.pt"), "--metrics",
               "layout_recall", "obj_acc", "--layout-baseline", "--out", str(tmp_path / "r")])
    out, err = capsys.readouterr()
    assert rc == 0, err
    rep = json.loads((tmp_path / "r.json").read_text())
    assert set(rep["metrics"]) == {"layout_recall", "obj_acc", "layout_recall_baseline"}
    assert rep["data"] == str(shapes64) and rep["split"] == "val"
    assert "layout baseline (mean class box) R@0.5" in out and "wrote" in out
    # A box file scored through the CLI: the ground truth itself has recall 1.
    from sg2img.config import DataConfig
    from sg2img.data import build_dataset

    val = build_dataset(DataConfig(root=str(shapes64)), "val", 64, 16)
    write_box_file(tmp_path / "b.json",
                   {iid: val.object_boxes(i)[1] for i, iid in enumerate(val.image_ids)})
    assert main(["evaluate", "--box-file", str(tmp_path / "b.json"), "--data",
                 str(shapes64)]) == 0
    assert "| layout R@0.5 | 1.0000 |" in capsys.readouterr().out
    # Neither a checkpoint nor a box file: one-line error, exit 2.
    assert main(["evaluate", "--data", str(shapes64)]) == 2
    assert "--checkpoint" in capsys.readouterr().err


def test_layout_metric_scores_true_boxes_as_the_ceiling_and_shifted_boxes_lower():
    perfect = _run(FakeGenerator(), metrics=("layout",))["metrics"]["layout"]
    gt, mode = perfect["ground_truth"], perfect["mode"]
    assert mode["relation_satisfaction"] == gt["relation_satisfaction"]
    assert mode["num_geometric_triples"] == gt["num_geometric_triples"] > 0
    assert mode["mean_abs_log_area_ratio"] == pytest.approx(0.0, abs=1e-9)
    assert mode["R@0.5"] == 1.0 and "sample" not in perfect
    assert perfect["layout_diversity_mean_iou"] == 1.0     # a deterministic head
    shifted = _run(FakeGenerator(shift=0.2), metrics=("layout",))["metrics"]["layout"]["mode"]
    assert shifted["R@0.5"] < 1.0
    assert shifted["mean_abs_log_area_ratio"] > 0.01         # boxes clipped at the border


def test_box_file_gets_the_layout_metric_as_the_model_that_wrote_it(tmp_path):
    """--box-file is scored with the layout metric too (relation satisfaction, size fidelity,
    recall of small objects); the box file a model writes scores as that model's mode."""
    from sg2img.eval import evaluate_box_file, report_to_markdown

    report = _run(FakeGenerator(shift=0.07), metrics=("layout_recall", "layout"),
                  boxes_out=tmp_path / "boxes.json")["metrics"]["layout"]
    scored = evaluate_box_file(tmp_path / "boxes.json", Scenes(), split="val")
    lay = scored["metrics"]["layout"]
    for name, ref in (("box_file", report["mode"]), ("ground_truth", report["ground_truth"])):
        for key, val in ref.items():
            if isinstance(val, float) and math.isnan(val):
                assert math.isnan(lay[name][key])
            else:
                assert lay[name][key] == pytest.approx(val), (name, key)
    assert lay["box_file"]["R@0.5"] < 1.0 and lay["box_file"]["num_geometric_triples"] > 0
    assert "box file" in scored["protocols"]["layout"]
    assert "layout (box_file): relation satisfaction" in report_to_markdown(scored)


class FakeSampler(FakeGenerator):
    """A generator with a sampling layout head: the mode is the true layout, a sample shifts
    every box by a random offset; images are rendered from whichever layout is asked for."""

    samples_layout = True

    def layout_boxes(self, batch, *, layout_mode="mode", rng=None):
        if layout_mode == "mode":
            return batch.boxes.clone()
        shift = 0.3 * torch.rand(len(batch.boxes), 1, generator=rng)
        return (batch.boxes + shift).clamp(0, 1)

    def forward(self, batch, *, use_gt_layout=False, rng=None, layout_mode="mode",
                render_dtype=None):
        self.calls.append((layout_mode, render_dtype))
        boxes = self.layout_boxes(batch, layout_mode=layout_mode, rng=rng)
        eps = torch.randn(batch.images.shape, generator=rng)
        images = (batch.images + 0.1 * eps).clamp(-1, 1) * self.scale
        return SimpleNamespace(images=images, boxes_pred=boxes)


def test_layout_mode_sample_renders_sampled_layouts_and_scores_the_mode():
    """evaluate(layout_mode="sample") renders each image from a sampled layout, as generate()
    does, while layout recall and the layout metric's "mode" still score the mode."""
    metrics = ("layout_recall", "layout")
    for precision in ("fp32", "bf16"):
        gen = FakeSampler()
        rep = _run(gen, metrics=metrics, layout_mode="sample", precision=precision)
        assert {c for c in gen.calls} == {("sample", None if precision == "fp32"
                                           else torch.bfloat16)}
        assert rep["layout_mode"] == "sample"
        m = rep["metrics"]
        assert m["layout_recall"]["R@0.5"] == 1.0 and m["layout"]["mode"]["R@0.5"] == 1.0
        # The layout metric's own samples are there under bf16 too (it lays out through the
        # module, not the bf16 render function).
        assert m["layout"]["samples_layout"] and m["layout"]["sample"]["R@0.5"] < 1.0
    gen = FakeSampler()
    assert _run(gen, metrics=metrics, layout_mode="mode")["layout_mode"] == "mode"
    assert {c for c in gen.calls} == {("mode", None)}
    # By default, as generate() draws: a sampling head samples, any other takes its layout.
    gen = FakeSampler()
    assert _run(gen, metrics=metrics)["layout_mode"] == "sample"
    assert {c for c in gen.calls} == {("sample", None)}
    assert _run(FakeGenerator(), metrics=("layout_recall",))["layout_mode"] == "mode"
    with pytest.raises(ValueError, match="layout_mode must be one of"):
        _run(FakeSampler(), metrics=metrics, layout_mode="best")


class ShiftsAlone(FakeGenerator):
    """Lays out every box 0.3 to the right of the truth, unless other boxes are given."""

    samples_layout = False

    def layout_boxes(self, batch, *, layout_mode="mode", rng=None):
        shift = 0.0 if bool(batch.box_given.any()) else 0.3
        return batch.boxes + torch.tensor([shift, 0.0, shift, 0.0])

    def forward(self, batch, **kw):
        out = super().forward(batch, **kw)
        out.boxes_pred = self.layout_boxes(batch)
        return out


class SmallScenes(Scenes):
    """Scenes with every box halved: all objects are small (area < 5 % of the image)."""

    def __getitem__(self, i):
        sample = super().__getitem__(i)
        return dataclasses.replace(sample, boxes=sample.boxes / 2)


def test_layout_diagnostics_say_where_small_misses_come_from():
    """EvalOptions(layout_diagnostics=True): the layout metric's small_swap names the part of
    the boxes that is wrong (the horizontal place) and the recall with the others pinned."""
    plain = _run(ShiftsAlone(), SmallScenes(), metrics=("layout",))["metrics"]["layout"]
    assert "small_swap" not in plain and plain["mode"]["small_R@0.3"] == 0.0
    report = _run(ShiftsAlone(), SmallScenes(), metrics=("layout",), layout_diagnostics=True)
    lay = report["metrics"]["layout"]
    assert lay["small_swap"] == {"as predicted": 0.0, "true size": 0.0,
                                 "true horizontal centre": 1.0, "true vertical centre": 0.0,
                                 "others pinned to the truth": 1.0}
    assert lay["mode"] == plain["mode"]                  # the figures without it are unchanged
    assert "small_swap" in report["protocols"]["layout"]
    assert "true horizontal centre | 1.0000" in report_to_markdown(report)


@pytest.mark.parametrize("old", ["sg2img.evaluate", "sg2img.metrics", "sg2img.eval_nets"])
def test_old_module_names_are_deprecated_aliases(old):
    """The modules sg2img.eval replaced still import for one release, with a warning."""
    import importlib
    import sys

    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match="import from sg2img.eval"):
        module = importlib.import_module(old)
    assert module.evaluate_checkpoint is evaluate_checkpoint and module.write_report is write_report
    sys.modules.pop(old, None)


def test_score_layouts_tables_every_layout_of_a_split():
    """scripts/eval_layout.py's table: a head whose mode is the truth scores the ceiling, its
    samples (shifted at random) do worse and differ from each other."""
    from sg2img.eval import mean_class_boxes, score_layouts

    data = SmallScenes()
    rep = score_layouts(FakeSampler(), data, mean_class_boxes(data, VOCAB.num_objects), seed=0)
    assert rep["mode"]["R@0.5"] == rep["ground truth"]["R@0.5"] == 1.0
    assert rep["mode"]["small_R@0.3"] == 1.0 and rep["sample"]["R@0.5"] < 1.0
    assert rep["mode"]["num_small"] == sum(2 + i % 2 for i in range(12))
    assert rep["small_swap"]["as predicted"] == 1.0
    assert rep["small_swap"]["others pinned to the truth"] == 1.0
    assert rep["diversity"]["mean_iou_between_samples"] < 1.0
    assert rep["samples_layout"] and rep["num_graphs"] == 12
    assert set(rep) >= {"mode", "sample", "class-mean boxes", "ground truth"}


def test_the_by_class_section_puts_the_worst_found_class_first():
    from sg2img.eval.report import class_rows

    metrics = {
        "faithfulness": {
            "generated": {"by_class": {
                "cloud": {"recall": 0.5, "num_objects": 4, "colour_accuracy": 0.25,
                          "num_colour_objects": 4, "hallucinated": 0},
                "sun": {"recall": 0.9, "num_objects": 10, "colour_accuracy": float("nan"),
                        "num_colour_objects": 0, "hallucinated": 3}}},
            "real": {"by_class": {
                "cloud": {"recall": 1.0, "colour_accuracy": 1.0, "hallucinated": 0},
                "sun": {"recall": 1.0, "colour_accuracy": float("nan"), "hallucinated": 0}}}},
        "attr_acc": {"by_class": {"cloud": {"accuracy": 0.5, "real_crop_accuracy": 1.0,
                                            "num_crops": 4}}},
    }
    rows = class_rows(metrics)
    table = [r for r in rows if r.startswith("| ") and not r.startswith("| class")]
    assert table == ["| cloud | 4 | 0.500 / 1.000 | 0.250 / 1.000 | 0.500 / 1.000 | 0 / 0 |",
                     "| sun | 10 | 0.900 / 1.000 | n/a | n/a | 3 / 0 |"]
    assert class_rows({"fid": {"fid": 1.0}}) == []

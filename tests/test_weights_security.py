"""No code runs from a weights file: every path that reads one, fed a crafted pickle.

Each crafted file would create a marker file when unpickled with ``weights_only=False``
(checked first, so the test can fail). sg2img must refuse it with its documented error, and
the marker must never appear: on the explicit-file paths, in the torch hub cache (where a
planted ``alexnet-owt-7be5be79.pth`` used to be read by torchvision's own loader), and through
the CLI.
"""

import os
from pathlib import Path

import pytest
import torch

from sg2img.checkpoint import CheckpointError, load_checkpoint
from sg2img.cli import main as cli_main
from sg2img.config import Config
from sg2img.eval import nets as E
from sg2img.losses import VGGPerceptualLoss


class _Payload:
    """Unpickling this runs ``os.system("touch MARKER")``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _craft(path: Path, marker: Path, *, legacy: bool = False) -> Path:
    payload = {"weight": torch.zeros(2), "evil": _Payload(marker)}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path, _use_new_zipfile_serialization=not legacy)
    return path


@pytest.fixture
def marker(tmp_path):
    m = tmp_path / "MARKER"
    yield m
    assert not m.exists(), "a crafted weights file ran code"


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty torch hub cache of the test's own."""
    home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    (home / "hub" / "checkpoints").mkdir(parents=True)
    return home / "hub" / "checkpoints"


@pytest.mark.parametrize("legacy", [False, True])
def test_the_crafted_file_really_runs_code_when_unpickled(tmp_path, legacy):
    marker = tmp_path / "M"
    path = _craft(tmp_path / "x.pth", marker, legacy=legacy)
    torch.load(path, weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("legacy", [False, True])
def test_inception_weights_given(tmp_path, marker, hub, legacy):
    evil = _craft(tmp_path / "inception.pth", marker, legacy=legacy)
    with pytest.raises(E.EvalWeightsError, match="execute|plain tensors"):
        E.inception_feature_extractor(evil)


def test_inception_weights_in_hub_cache(tmp_path, marker, hub):
    _craft(hub / E.INCEPTION_FID_FILE, marker)
    with pytest.raises(E.EvalWeightsError, match="plain tensors"):
        E.inception_feature_extractor(None)


def test_lpips_weights_given(tmp_path, marker, hub):
    evil = _craft(tmp_path / "alex.pth", marker)
    with pytest.raises(E.EvalWeightsError, match="plain tensors"):
        E.build_lpips("alex", evil)


def test_lpips_weights_planted_in_hub_cache(tmp_path, marker, hub):
    file_name, _ = E.lpips_backbone_file("alex")
    _craft(hub / file_name, marker)
    with pytest.raises(E.EvalWeightsError, match="plain tensors"):
        E.build_lpips("alex")


def test_lpips_from_a_clean_file_still_works_and_leaves_the_hub_alone(tmp_path, hub):
    import torchvision

    path = tmp_path / "squeeze.pth"
    torch.save(torchvision.models.squeezenet1_1(weights=None).state_dict(), path)
    lpips = E.build_lpips("squeeze", path)
    a = torch.rand(2, 3, 32, 32) * 2 - 1
    lpips.update(a, -a)
    assert float(lpips.compute()) > 0
    assert list(hub.iterdir()) == []       # nothing written into the user's cache


def test_vgg_weights(tmp_path, marker):
    evil = _craft(tmp_path / "vgg19.pth", marker)
    with pytest.raises((ValueError, OSError)):
        VGGPerceptualLoss(str(evil))


def test_eval_nets(tmp_path, marker):
    evil = _craft(tmp_path / "net.pt", marker)
    for kind in ("CropClassifier", "SceneFeatureNet"):
        with pytest.raises(E.EvalWeightsError, match="plain tensors"):
            E.load_eval_net(evil, kind)


def test_checkpoints_and_exports(tmp_path, marker):
    from sg2img.api import load_model

    evil = _craft(tmp_path / "ckpt.pt", marker)
    with pytest.raises(CheckpointError, match="plain tensors"):
        load_checkpoint(evil)
    with pytest.raises(CheckpointError, match="plain tensors"):
        load_model(evil)


def test_training_resume_and_init_from(tmp_path, marker):
    from test_train import ToyScenes

    from sg2img.train import run_training

    evil = _craft(tmp_path / "ckpt_00000002.pt", marker)
    cfg = Config.from_preset("tiny", ["train.num_steps=1", f"train.init_from={evil}"])
    with pytest.raises(CheckpointError, match="plain tensors"):
        run_training(cfg, tmp_path / "a", dataset=ToyScenes(), device="cpu")
    cfg = Config.from_preset("tiny", ["train.num_steps=1"])
    with pytest.raises(CheckpointError, match="plain tensors"):
        run_training(cfg, tmp_path / "b", dataset=ToyScenes(), device="cpu", resume=str(evil))


def test_cli_paths(tmp_path, marker, hub, capsys):
    evil = _craft(tmp_path / "w.pth", marker)
    graph = tmp_path / "g.json"
    graph.write_text('{"objects": ["sky", "grass"], "relationships": [[0, "above", 1]]}')
    assert cli_main(["generate", str(graph), "--checkpoint", str(evil),
                     "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "plain tensors" in err
    assert not (tmp_path / "o").exists()

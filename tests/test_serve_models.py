"""How the editor's model menu names checkpoints: two ``export.pt`` files of different runs
are told apart by their folders, and no more of the path than that is shown."""

from __future__ import annotations

import pytest

from sg2img.serve.models import checkpoint_labels, load_registry
from sg2img.testing import random_model_export
from sg2img.vocab import Vocab


@pytest.mark.parametrize("paths, labels", [
    (["runs/small/export.pt", "runs/big/export.pt"], ["small/export.pt", "big/export.pt"]),
    (["runs/small/tiny.pt"], ["tiny.pt"]),
    (["a/tiny.pt", "b/tiny.pt"], ["a/tiny.pt", "b/tiny.pt"]),
    (["x/run1/export.pt", "y/run1/export.pt", "z/run2/model.pt"],
     ["x/run1/export.pt", "y/run1/export.pt", "run2/model.pt"]),
    (["/home/alice/runs/small/export.pt"], ["small/export.pt"]),
    (["export.pt", "best.pt"], ["export.pt", "best.pt"]),
    (["/a/b/export.pt", "/a/b/export.pt"], ["a/b/export.pt", "a/b/export.pt"]),
])
def test_checkpoint_labels(paths, labels):
    assert checkpoint_labels(paths) == labels


def test_two_runs_exports_get_distinct_ids_and_labels(tmp_path):
    vocab = Vocab.from_names(["sky", "grass"], ["above"])
    paths = []
    for run in ("small", "big"):
        (tmp_path / "secret" / run).mkdir(parents=True)
        paths.append(random_model_export(tmp_path / "secret" / run / "export.pt", vocab))
    registry = load_registry(paths, "cpu", include_default=False)
    described = [m.describe() for m in registry]
    assert [d["label"] for d in described] == ["small/export.pt", "big/export.pt"]
    assert [d["id"] for d in described] == ["small-export", "big-export"]
    assert not any("secret" in d["label"] for d in described)


@pytest.fixture
def two_bundled(tmp_path, monkeypatch):
    """Both bundled models installed, as tiny untrained exports at 32 and 64 px."""
    from sg2img import bundled

    vocab = Vocab.from_names(["sky", "grass"], ["above"])
    for name, size in (("default", 32), ("default-128", 64)):
        path = random_model_export(tmp_path / f"{name}.pt", vocab,
                                   [f"model.renderer.image_size={size}"])
        monkeypatch.setitem(bundled.BUNDLED_MODELS, name,
                            bundled.BundledModel(name, path, size))
    return vocab


def test_the_menu_offers_every_installed_bundled_model_first_by_name(two_bundled, tmp_path):
    run = random_model_export(tmp_path / "run" / "export.pt", two_bundled)
    registry = load_registry([run], "cpu")
    described = [m.describe() for m in registry]
    assert [d["id"] for d in described] == ["default", "default-128", "run-export"]
    assert [d["image_size"] for d in described[:2]] == [32, 64]
    # The page's command line names a model by its label: a bundled name is one it takes.
    assert [d["label"] for d in described] == ["bundled model", "default-128", "run/export.pt"]
    assert registry.default_id == "default"
    # Naming a bundled model on the command line offers it once, under its name.
    assert load_registry(["default-128"], "cpu").ids == ["default", "default-128"]
    assert load_registry(["default-128"], "cpu", include_default=False).ids == ["default-128"]


def test_a_bundled_model_that_is_not_installed_is_named_in_the_error(tmp_path, monkeypatch):
    from sg2img import bundled
    from sg2img.checkpoint import CheckpointError

    monkeypatch.setitem(bundled.BUNDLED_MODELS, "default-128", bundled.BundledModel(
        "default-128", tmp_path / "absent.pt", 128))
    with pytest.raises(CheckpointError, match="bundled model 'default-128' is not installed"):
        load_registry(["default-128"], "cpu")

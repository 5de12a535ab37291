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

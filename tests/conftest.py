"""Shared fixtures: tiny vocabularies and scene graphs. Tests write their own data into tmp_path."""

import pytest
import torch

from sg2img.vocab import Vocab

# The browser, server and page fixtures of the test_serve_browser*.py files.
pytest_plugins = ["browser_fixtures"]

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


@pytest.fixture
def vocab() -> Vocab:
    return Vocab.from_names(
        ["sky", "grass", "sheep", "tree", "water", "boat"],
        ["left of", "right of", "above", "below", "standing on", "inside", "surrounding"])


@pytest.fixture
def sheep_graph() -> dict:
    return {"objects": ["sky", "grass", "sheep"],
            "relationships": [[0, "above", 1], [2, "standing on", 1]]}

"""sg2img: scene graph to image generation (GALS-GAN).

Public surface: ``generate``, ``load_model``, ``SceneGraph``, ``Vocab``, ``Config``.
Heavy modules (the model, torchvision) are imported on first use so that the CLI starts fast.
"""

from .config import Config
from .scene_graph import GraphBatch, SceneGraph, SceneGraphError, load_scene_graphs
from .vocab import Vocab

__version__ = "0.1.0"

__all__ = ["Config", "GraphBatch", "SceneGraph", "SceneGraphError", "Vocab", "generate",
           "load_model", "load_scene_graphs", "__version__"]


def __getattr__(name: str):
    if name in ("generate", "load_model"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'sg2img' has no attribute {name!r}")

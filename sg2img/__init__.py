"""sg2img: scene graph to image generation (GALS-GAN).

Public surface: ``generate``, ``manipulate``, ``load_model``, ``SceneGraph``, ``Vocab``,
``Config``. Every name is imported on first use, so ``import sg2img`` and ``sg2img --help``
start without loading torch.
"""

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the real imports, for readers and tools; at run time they are lazy
    from .api import generate, load_model
    from .config import Config, ConfigError
    from .manipulation import manipulate
    from .scene_graph import GraphBatch, SceneGraph, SceneGraphError, load_scene_graphs
    from .vocab import Vocab

__version__ = "0.1.0"

_EXPORTS = {
    "Config": "config",
    "ConfigError": "config",
    "GraphBatch": "scene_graph",
    "SceneGraph": "scene_graph",
    "SceneGraphError": "scene_graph",
    "load_scene_graphs": "scene_graph",
    "Vocab": "vocab",
    "generate": "api",
    "load_model": "api",
    "manipulate": "manipulation",
}

__all__ = ["Config", "ConfigError", "GraphBatch", "SceneGraph", "SceneGraphError",
           "Vocab", "__version__", "generate", "load_model", "load_scene_graphs", "manipulate"]
assert set(__all__) == {*_EXPORTS, "__version__"}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sg2img' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

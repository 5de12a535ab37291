"""Deprecated alias of :mod:`sg2img.eval`, kept for one release: import from ``sg2img.eval``."""

import warnings

from .eval import *  # noqa: F403  (the public names this module had live in sg2img.eval)

warnings.warn("sg2img.eval_nets is deprecated and will be removed in the next release; import "
              "from sg2img.eval instead (evaluate() now takes an EvalOptions)",
              DeprecationWarning, stacklevel=2)

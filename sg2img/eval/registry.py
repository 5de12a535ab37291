"""The metric registry: the :class:`Metric` protocol and :func:`register_metric`.

A metric is one small object fed every batch (``update``) and computed once (``compute``),
with a ``protocol`` string that says how its figures are made, for the report.
"""

from __future__ import annotations

from typing import Any

from ..scene_graph import GraphBatch
from .context import EvalContext


class Metric:
    """One metric of ``sg2img evaluate``: fed every batch, then computed once.

    Subclasses set ``protocol`` (how the figure is computed, for the report) and
    ``num_draws`` (generated samples per graph they need), and implement ``update`` and
    ``compute``. Register a subclass with :func:`register_metric` to make it available as
    ``EvalOptions(metrics=[name])`` and ``sg2img evaluate --metrics name``.
    """

    protocol: str = ""
    num_draws: int = 1
    needs_attributes: bool = False   # only for datasets (and models) with attributes
    default: bool = True             # False: only when asked for by name (--metrics)

    def __init__(self, ctx: EvalContext) -> None:
        self.ctx = ctx

    def update(self, batch: GraphBatch, outs: list[Any]) -> None:
        """``batch``: the real batch; ``outs[k]``: the generator's output for draw ``k``."""
        raise NotImplementedError

    def compute(self) -> dict[str, Any]:
        raise NotImplementedError


METRICS: dict[str, type[Metric]] = {}
"""The metric registry: name -> :class:`Metric` subclass, in report order."""


def register_metric(name: str):
    """Class decorator adding a :class:`Metric` to :data:`METRICS` under ``name``."""
    def add(cls: type[Metric]) -> type[Metric]:
        if name in METRICS:
            raise ValueError(f"metric {name!r} is already registered")
        METRICS[name] = cls
        return cls
    return add


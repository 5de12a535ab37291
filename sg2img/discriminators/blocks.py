"""Layers shared by the discriminators of this package: optional spectral normalization."""

from __future__ import annotations

from torch import nn


def maybe_spectral_norm(module: nn.Module, use: bool) -> nn.Module:
    """``module`` wrapped in spectral normalization when ``use`` is true, else ``module``.

    Every discriminator layer goes through here, so ``model.discriminator.use_spectral_norm``
    switches all of them at once.
    """
    if not use:
        return module
    from torch.nn.utils.parametrizations import spectral_norm

    return spectral_norm(module)

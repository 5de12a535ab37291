"""Scene graph -> object vectors -> boxes and masks.

A triple graph convolution in the style of sg2im, built on torch-geometric's ``scatter``: every
(subject, predicate, object) triple proposes new vectors for its three members through an MLP,
and each object averages the proposals it received. The box and mask heads read the final
object vectors.
"""

from __future__ import annotations

import logging
import warnings

import torch
from torch import Tensor, nn

with warnings.catch_warnings():
    # torch-geometric's import calls torch.jit.script, which warns that it is deprecated;
    # users of sg2img cannot act on that, so the warning stays here.
    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=FutureWarning)
    from torch_geometric.utils import scatter

logger = logging.getLogger(__name__)


def build_mlp(dims: list[int], *, final_activation: bool = False) -> nn.Sequential:
    """Linear layers of widths ``dims[0] -> dims[1] -> ... -> dims[-1]`` with ReLU between.

    Args:
        dims: at least two widths.
        final_activation: put a ReLU after the last layer too.
    """
    if len(dims) < 2:
        raise ValueError(f"build_mlp needs at least an input and an output width, got {dims}")
    layers: list[nn.Module] = []
    for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
        layers.append(nn.Linear(d_in, d_out))
        if i < len(dims) - 2 or final_activation:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class GraphTripleConv(nn.Module):
    """One round of message passing over (subject, predicate, object) triples.

    Each triple's concatenated ``[subject, predicate, object]`` vectors go through an MLP that
    proposes a hidden vector for the subject, a new predicate vector and a hidden vector for the
    object. Objects average all proposals they receive (objects in no triple receive zeros, so
    the ``__in_image__`` triples added at encoding keep every real object connected), then a
    second MLP maps the pooled vector to the output width.

    Args:
        input_dim: width of the incoming object and predicate vectors.
        output_dim: width of the outgoing vectors (defaults to ``input_dim``).
        hidden_dim: width of the proposals.

    Shapes:
        obj_vecs (O, input_dim), pred_vecs (T, input_dim), edges (T, 2) long [subject, object]
        -> (O, output_dim), (T, output_dim)
    """

    def __init__(self, input_dim: int, output_dim: int | None = None, hidden_dim: int = 512):
        super().__init__()
        self.input_dim = input_dim
        self.output_dim = output_dim or input_dim
        self.hidden_dim = hidden_dim
        self.propose = build_mlp([3 * input_dim, hidden_dim, 2 * hidden_dim + self.output_dim],
                                 final_activation=True)
        self.update = build_mlp([hidden_dim, hidden_dim, self.output_dim],
                                final_activation=True)

    def forward(self, obj_vecs: Tensor, pred_vecs: Tensor, edges: Tensor) -> tuple[Tensor, Tensor]:
        num_objs = obj_vecs.shape[0]
        subj, obj = edges.unbind(dim=1)                                       # (T,), (T,)
        t = torch.cat([obj_vecs[subj], pred_vecs, obj_vecs[obj]], dim=1)      # (T, 3D)
        s, p, o = self.propose(t).split(
            [self.hidden_dim, self.output_dim, self.hidden_dim], dim=1)
        # dim_size=O keeps objects that appear in no triple (their pooled vector is zero).
        pooled = scatter(torch.cat([s, o]), torch.cat([subj, obj]), dim=0,
                         dim_size=num_objs, reduce="mean")                   # (O, hidden)
        return self.update(pooled), p


class GraphTripleConvNet(nn.Module):
    """A stack of ``GraphTripleConv`` layers; the first maps ``input_dim`` to ``dim``.

    With ``num_layers=0`` the vectors are only projected (or passed through when the widths
    already agree).

    Shapes:
        obj_vecs (O, input_dim), pred_vecs (T, input_dim), edges (T, 2) -> (O, dim), (T, dim)
    """

    def __init__(self, input_dim: int, dim: int, hidden_dim: int, num_layers: int):
        super().__init__()
        self.layers = nn.ModuleList(
            GraphTripleConv(input_dim if i == 0 else dim, dim, hidden_dim)
            for i in range(num_layers))
        self.obj_proj: nn.Module = nn.Identity()
        self.pred_proj: nn.Module = nn.Identity()
        if num_layers == 0 and input_dim != dim:
            self.obj_proj = nn.Linear(input_dim, dim)
            self.pred_proj = nn.Linear(input_dim, dim)

    def forward(self, obj_vecs: Tensor, pred_vecs: Tensor, edges: Tensor) -> tuple[Tensor, Tensor]:
        obj_vecs, pred_vecs = self.obj_proj(obj_vecs), self.pred_proj(pred_vecs)
        for layer in self.layers:
            obj_vecs, pred_vecs = layer(obj_vecs, pred_vecs, edges)
        return obj_vecs, pred_vecs


class BoxHead(nn.Module):
    """Object vector -> box ``(x0, y0, x1, y1)`` inside [0, 1] with ``x0 < x1`` and ``y0 < y1``.

    The MLP's four outputs go through a sigmoid as ``(u, v, w, h)``; the size is
    ``min_size + (1 - min_size) * w`` and the center is placed at ``w/2 + u * (1 - w)``, so the
    box can never leave the image or turn inside out, and every output keeps a gradient
    (clamping would cut it at the border).

    Shapes:
        obj_vecs (O, D) -> boxes (O, 4) in [0, 1]
    """

    def __init__(self, dim: int, hidden_dim: int, min_size: float = 0.01):
        super().__init__()
        self.mlp = build_mlp([dim, hidden_dim, 4])
        self.min_size = min_size

    def forward(self, obj_vecs: Tensor) -> Tensor:
        u, v, w, h = torch.sigmoid(self.mlp(obj_vecs)).unbind(dim=1)         # 4 x (O,)
        w = self.min_size + (1.0 - self.min_size) * w
        h = self.min_size + (1.0 - self.min_size) * h
        x0 = u * (1.0 - w)
        y0 = v * (1.0 - h)
        return torch.stack([x0, y0, x0 + w, y0 + h], dim=1)


class MaskHead(nn.Module):
    """Object vector -> ``(M, M)`` mask logits by a small upsampling conv net.

    A linear layer makes a 4x4 map, then nearest x2 upsampling + 3x3 conv + GroupNorm + ReLU
    until M (``channels`` wide, by default half the vector width: the head runs once per
    object, so it is a large share of the generator's cost on CPU). GroupNorm (not BatchNorm,
    as sg2im) keeps each object's mask independent of the other objects in the batch.

    Shapes:
        obj_vecs (O, D) -> logits (O, M, M); ``torch.sigmoid`` gives masks in [0, 1]
    """

    def __init__(self, dim: int, mask_size: int, channels: int | None = None):
        super().__init__()
        if mask_size < 4 or mask_size & (mask_size - 1):
            raise ValueError(f"mask_size must be a power of two >= 4, got {mask_size}")
        ch = channels or max(16, min(dim // 2, 128))
        self.ch = ch
        self.fc = nn.Linear(dim, ch * 16)
        blocks: list[nn.Module] = []
        size = 4
        while size < mask_size:
            blocks += [nn.Upsample(scale_factor=2, mode="nearest"),
                       nn.Conv2d(ch, ch, 3, padding=1), nn.GroupNorm(_groups(ch), ch),
                       nn.ReLU(inplace=True)]
            size *= 2
        blocks.append(nn.Conv2d(ch, 1, 1))
        self.net = nn.Sequential(*blocks)

    def forward(self, obj_vecs: Tensor) -> Tensor:
        x = self.fc(obj_vecs).view(-1, self.ch, 4, 4)                         # (O, ch, 4, 4)
        return self.net(torch.relu(x)).squeeze(1)                             # (O, M, M)


def _groups(ch: int) -> int:
    for g in (8, 4, 2):
        if ch % g == 0:
            return g
    return 1

"""torchrun + DDP for training: the process's rank, the device, the wrappers, agreeing across ranks.

Single-process runs take the same calls: every function here is then a no-op or returns its
input, so the trainer has no ``if distributed`` branches of its own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn


@dataclass
class DistInfo:
    """This process's place in the torchrun group (rank 0 of 1 when not launched by torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group when launched by torchrun (``WORLD_SIZE`` > 1 in the environment).

    NCCL on CUDA, gloo on CPU.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def setup_device(device: str | None) -> tuple[torch.device, DistInfo]:
    """The device (CUDA when available unless given) and the torchrun process group."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    info = init_distributed(torch.device(device))
    if torch.device(device).type == "cuda":
        device = f"cuda:{info.local_rank}"
        torch.cuda.set_device(info.local_rank)
    return torch.device(device), info


def wrap_ddp(G: nn.Module, D: nn.Module, info: DistInfo, device: torch.device, *,
             find_unused: bool) -> tuple[nn.Module, nn.Module]:
    """DDP wrappers for the training forward passes (the modules themselves when single)."""
    if not info.enabled:
        return G, D
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [device.index] if device.type == "cuda" else None
    # Visual Genome has no masks: with teacher forcing the mask head gets no gradient in a
    # step, which DDP only tolerates when told to look for unused parameters.
    return (DDP(G, device_ids=ids, broadcast_buffers=False, find_unused_parameters=find_unused),
            DDP(D, device_ids=ids, broadcast_buffers=False))


def all_reduce_mean(values: dict[str, float], info: DistInfo) -> dict[str, float]:
    """The mean of each value over the ranks (``values`` itself when single)."""
    if not info.enabled or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    return {k: float(v) / info.world_size for k, v in zip(keys, t.tolist(), strict=True)}


def all_ranks_true(flag: Tensor | bool, info: DistInfo, device: torch.device) -> bool:
    """Whether ``flag`` (a bool, or a 0/1 tensor of one element) holds on every rank.

    All ranks must take the same branch (skip a step or not) or DDP hangs: a minimum over the
    ranks makes one rank's non-finite loss or gradient everyone's.
    """
    f = flag.detach().float() if isinstance(flag, Tensor) else torch.tensor(float(flag))
    if info.enabled:
        f = f.to(device if dist.get_backend() == "nccl" else "cpu")
        dist.all_reduce(f, op=dist.ReduceOp.MIN)
    return bool(f.item() >= 1)


def average_gradients(params: list[Tensor], info: DistInfo) -> None:
    """Average ``params``' gradients over the ranks, for a model that DDP does not wrap.

    A parameter without a gradient counts as zeros. Nothing happens when single.
    """
    if not info.enabled:
        return
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad)
        p.grad /= info.world_size

"""Agreeing across torchrun ranks: single-process no-ops and two gloo processes."""

import os

import torch
import torch.multiprocessing as mp

from sg2img.distributed import (
    DistInfo,
    all_ranks_true,
    all_reduce_mean,
    average_gradients,
    setup_device,
)

CPU = torch.device("cpu")


def test_single_process_helpers_return_their_input():
    device, info = setup_device("cpu")
    assert device == CPU and info == DistInfo() and info.is_main and not info.enabled
    assert all_reduce_mean({"G/gan": 1.5}, info) == {"G/gan": 1.5}
    assert all_ranks_true(True, info, CPU) and not all_ranks_true(False, info, CPU)
    assert not all_ranks_true(torch.isfinite(torch.tensor(float("nan"))), info, CPU)
    p = torch.nn.Parameter(torch.ones(2))
    average_gradients([p], info)
    assert p.grad is None                                  # nothing to average alone


def _worker(rank, world, init_file, out_dir):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world)
    info = DistInfo(rank, world, rank)
    with_grad, without = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(1))
    with_grad.grad = torch.full((2,), float(rank + 1))     # 1 on rank 0, 2 on rank 1
    average_gradients([with_grad, without], info)
    out = {"mean": all_reduce_mean({"a": float(rank), "b": 2.0 * rank}, info),
           "all_true": all_ranks_true(True, info, CPU),
           "one_false": all_ranks_true(torch.tensor(rank == 0), info, CPU),
           "grad": with_grad.grad.tolist(), "zeros": without.grad.tolist()}
    torch.save(out, os.path.join(out_dir, f"rank{rank}.pt"))
    dist.destroy_process_group()


def test_two_processes_agree(tmp_path):
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2)
    for rank in range(2):
        out = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        assert out["mean"] == {"a": 0.5, "b": 1.0}
        assert out["all_true"] and not out["one_false"]    # one rank's False is everyone's
        assert out["grad"] == [1.5, 1.5] and out["zeros"] == [0.0]

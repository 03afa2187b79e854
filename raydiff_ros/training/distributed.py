"""Data-parallel training under ``torchrun``: the few helpers the trainer needs.

``torchrun --nproc_per_node K -m raydiff_ros.cli.train CONFIG`` starts K processes and sets
``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` (plus ``MASTER_ADDR``/``MASTER_PORT``) in each.
:func:`from_environment` reads them; without them, or with ``WORLD_SIZE=1``, the context is the
single-process one and nothing here does anything (no process group, no collective).

In a distributed run the trainer

* joins the process group (:func:`init_process_group`: ``nccl`` on CUDA, one GPU per process,
  ``cuda:LOCAL_RANK``; ``gloo`` on the CPU),
* wraps its loss computation in ``DistributedDataParallel`` (gradients averaged over ranks),
* draws a different batch stream per rank (:func:`rank_entropy` extends the seed sequences),
* logs, validates and writes metrics, curves and checkpoints on rank 0 only,
* builds the feature cache on rank 0 while the others wait at a :func:`barrier`,
* and :func:`shutdown` leaves the group at the end.
"""

from dataclasses import dataclass
import os
from typing import Mapping, Optional

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in a data-parallel run (the defaults: a single process)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """More than one process: a process group, DDP and collectives are used."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that logs, validates and writes outputs."""
        return self.rank == 0


SINGLE_PROCESS = DistContext()


def from_environment(environ: Optional[Mapping[str, str]] = None) -> DistContext:
    """The context ``torchrun`` describes in ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``.

    Absent variables (a plain ``python`` launch) or ``WORLD_SIZE=1`` give the single-process
    context.
    """
    env = os.environ if environ is None else environ
    world_size = int(env.get('WORLD_SIZE', '1') or 1)
    if world_size <= 1:
        return SINGLE_PROCESS
    rank = int(env['RANK'])
    return DistContext(rank=rank, world_size=world_size,
                       local_rank=int(env.get('LOCAL_RANK', rank)))


def training_device(device: torch.device, context: DistContext) -> torch.device:
    """The device of this rank: ``cuda:LOCAL_RANK`` for a CUDA run, ``device`` otherwise."""
    if context.enabled and device.type == 'cuda':
        return torch.device('cuda', context.local_rank)
    return device


def init_process_group(context: DistContext, device: torch.device) -> None:
    """Join the process group (``env://``): ``nccl`` on CUDA, ``gloo`` on the CPU.

    Does nothing in a single process or when the group is already initialised.
    """
    if not context.enabled or dist.is_initialized():
        return
    if device.type == 'cuda':
        torch.cuda.set_device(device)
        dist.init_process_group('nccl', rank=context.rank, world_size=context.world_size)
    else:
        dist.init_process_group('gloo', rank=context.rank, world_size=context.world_size)


def barrier(context: DistContext) -> None:
    """Wait for every rank (no-op in a single process)."""
    if context.enabled and dist.is_initialized():
        dist.barrier()


def mean_across_ranks(value: torch.Tensor, context: DistContext) -> torch.Tensor:
    """The mean of a scalar tensor over all ranks (``value`` itself in a single process).

    A non-finite value on any rank makes the mean non-finite on every rank, so all ranks stop
    together instead of leaving the others waiting in the next collective.
    """
    if not context.enabled:
        return value
    total = value.detach().float().reshape(1).clone()
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total[0] / context.world_size


def rank_entropy(context: DistContext) -> list[int]:
    """Extra seed-sequence entropy giving each rank its own data and noise stream.

    Empty in a single process, so its streams stay exactly those of a plain run.
    """
    return [context.rank] if context.enabled else []


def shutdown() -> None:
    """Leave the process group if one was joined (safe to call in any process)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()

"""Data-parallel training helpers: process group set-up, collectives and a resumable per-rank sampler.

``stablestyle train`` is one program whether it runs alone or under
``torchrun --nproc_per_node N``: :func:`setup` reads torchrun's environment
(``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR`` / ``MASTER_PORT``)
and initialises the default process group with ``init_method="env://"``
only when ``WORLD_SIZE > 1`` (``gloo`` on CPU, ``nccl`` on CUDA, one GPU per
process: ``cuda:LOCAL_RANK``).  Every helper below is a no-op on a single
process, so the training loop has no ``if distributed`` branches beyond them.

:class:`SequenceSampler` is a resumable, infinite ``DistributedSampler``:
epoch ``e`` is a permutation seeded by ``(seed, e)``, padded by wrapping to a
multiple of ``batch * world_size`` and dealt out round-robin to the ranks;
``start_batch`` skips the batches already consumed, so a resumed run sees
exactly the data it would have seen without the interruption.
"""

from __future__ import annotations

import gc
import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from .errors import UserError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in a (possibly single-process) data-parallel job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        """True when a process group with more than one process is initialised."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 writes the run folder, logs, checkpoints and shows progress."""
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise UserError(f"environment variable {name}={value!r} must be an integer (set by torchrun)") from None


def world_size_from_env() -> int:
    """``WORLD_SIZE`` as torchrun sets it (1 when unset)."""
    return max(1, _env_int("WORLD_SIZE", 1))


def setup(device: torch.device) -> DistContext:
    """Join the torchrun process group when ``WORLD_SIZE > 1``; return this process's context.

    Args:
        device: the device resolved at the edge (:func:`stablestyle.runtime.resolve_device`).
            On CUDA each process takes ``cuda:LOCAL_RANK``.

    A single process (no torchrun) gets ``DistContext(device=device)`` and no
    process group.  Call :func:`cleanup` at the end.
    """
    world = world_size_from_env()
    if world == 1:
        return DistContext(device=device)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise UserError(f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} CUDA device(s) "
                            "are visible; use --nproc_per_node <= the number of GPUs")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, init_method="env://", world_size=world, rank=rank)
    log.debug("rank %d/%d joined the %s process group on %s", rank, world, backend, device)
    return DistContext(rank=rank, world_size=world, local_rank=local_rank, device=device)


def cleanup(ctx: DistContext, *, together: bool = True) -> None:
    """Leave the process group (no-op on a single process).

    Args:
        together: wait at a barrier first, so that no rank shuts its gloo/NCCL
            connections down while a peer is still working (writing the final
            checkpoint); a rank that does can abort with "terminate called
            without an active exception".  Pass False on an error path, where
            a peer may never reach the barrier.

    Release objects that hold the group (a DistributedDataParallel wrapper)
    before calling this, so the group is not finalised during interpreter exit.
    """
    if ctx.enabled and dist.is_initialized():
        if together:
            barrier(ctx)
        gc.collect()
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    """Wait for every rank (no-op on a single process)."""
    if ctx.enabled:
        if ctx.device.type == "cuda":
            dist.barrier(device_ids=[ctx.device.index])
        else:
            dist.barrier()


def all_reduce_mean(values: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Mean of ``values`` over the ranks (a new tensor; the input is unchanged)."""
    out = values.detach().clone()
    if ctx.enabled:
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        out /= ctx.world_size
    return out


def any_rank(flag: bool, ctx: DistContext) -> bool:
    """True when ``flag`` is true on at least one rank (so all ranks take the same decision)."""
    if not ctx.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=ctx.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def gather_objects(obj: Any, ctx: DistContext) -> list[Any]:
    """Every rank's ``obj``, in rank order (``[obj]`` on a single process)."""
    if not ctx.enabled:
        return [obj]
    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


class SequenceSampler:
    """Infinite, resumable, rank-sharded batch sampler yielding ``[(epoch, index), ...]`` lists.

    Args:
        num_items: dataset length (> 0).
        batch: items per batch *per rank*.
        seed: base seed; epoch ``e`` is ``torch.randperm`` under ``seed + e``
            (a private generator: the global RNG is never touched).
        rank, world_size: this process's shard, as in ``DistributedSampler``:
            the padded permutation is dealt out round-robin.
        start_batch: number of batches already consumed (the resume position).

    One *step* consumes one batch on every rank, so ``start_batch`` equals the
    optimiser step.  Items carry their epoch so that a dataset with
    ``set_epoch`` can re-draw its augmentation per epoch even inside
    DataLoader worker processes (see :class:`EpochItems`).
    """

    def __init__(self, num_items: int, batch: int, seed: int, *, rank: int = 0, world_size: int = 1,
                 start_batch: int = 0) -> None:
        if num_items <= 0:
            raise ValueError(f"num_items must be positive, got {num_items}")
        if batch <= 0 or world_size <= 0 or not 0 <= rank < world_size or start_batch < 0:
            raise ValueError(f"bad sampler settings: batch={batch}, rank={rank}, world_size={world_size}, "
                             f"start_batch={start_batch}")
        self.num_items, self.batch, self.seed = num_items, batch, seed
        self.rank, self.world_size, self.start_batch = rank, world_size, start_batch
        #: batches per epoch on each rank (the last one padded by wrapping, as DistributedSampler does)
        self.batches_per_epoch = math.ceil(num_items / (batch * world_size))

    def epoch_indices(self, epoch: int) -> list[int]:
        """This rank's item indices for ``epoch``, ``batches_per_epoch * batch`` of them."""
        gen = torch.Generator().manual_seed(self.seed + epoch)
        perm = torch.randperm(self.num_items, generator=gen).tolist()
        total = self.batches_per_epoch * self.batch * self.world_size
        padded = (perm * math.ceil(total / self.num_items))[:total]
        return padded[self.rank:total:self.world_size]

    def position(self, batch_index: int) -> tuple[int, int]:
        """``(epoch, batch within epoch)`` of the ``batch_index``-th batch."""
        return divmod(batch_index, self.batches_per_epoch)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        epoch, offset = self.position(self.start_batch)
        while True:
            mine = self.epoch_indices(epoch)
            for b in range(offset, self.batches_per_epoch):
                yield [(epoch, i) for i in mine[b * self.batch:(b + 1) * self.batch]]
            epoch, offset = epoch + 1, 0


class EpochItems(torch.utils.data.Dataset):
    """Index a dataset with ``(epoch, index)`` keys from :class:`SequenceSampler`.

    Uses ``dataset.get(index, epoch)`` when the dataset has it (the
    :mod:`stablestyle.data` datasets), else ``set_epoch(epoch)`` then
    ``dataset[index]``, else plain ``dataset[index]``.  The epoch travels with
    the key, so per-epoch randomness is the same with any number of
    (persistent) DataLoader workers, which hold their own dataset copies.
    """

    def __init__(self, dataset: torch.utils.data.Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]):
        epoch, index = key
        get = getattr(self.dataset, "get", None)
        if get is not None:
            return get(index, epoch)
        set_epoch = getattr(self.dataset, "set_epoch", None)
        if set_epoch is not None:
            set_epoch(epoch)
        return self.dataset[index]

"""Data-parallel training with torch's own DDP, launched by ``torchrun``.

``torchrun --nproc-per-node N -m sc_neurocore.cli train ...`` starts N processes and sets ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK`` (plus ``MASTER_ADDR``/``MASTER_PORT`` of its rendezvous);
:func:`env_world` reads them and :func:`init` joins the process group (``gloo`` on CPU, ``nccl`` on
CUDA). Without them (or with ``WORLD_SIZE=1``) nothing here is used and a run is exactly the
single-process run.

Semantics (:func:`~sc_neurocore.train.loop.fit`):

* ``batch_size`` is the GLOBAL batch: every rank draws the same seeded permutation of the training
  images per epoch as a single process does, cuts it into the same global batches, and rank ``r``
  takes the ``r``-th of ``world`` contiguous, near-equal slices of each global batch
  (:func:`shard_bounds`); the loss of a slice is weighted so that DDP's gradient average equals the
  gradient of the global batch's mean loss. The number of optimiser steps, and so the one-cycle
  learning-rate schedule, is per global step and identical to a single process.
* the image shifts of the augmentation are drawn for the whole global batch (the same generator as a
  single process) and each rank uses its slice's shifts.
* validation: each rank scores its slice of the validation images and the counts are all-reduced, so
  every rank makes the same model-selection decision; the golden-model test accuracy, the progress
  bars, the log and the output files are rank 0's alone.
"""

from __future__ import annotations

import datetime
import gc
import os
from dataclasses import dataclass

import torch

__all__ = ["World", "env_world", "current_world", "init", "shutdown", "check_global_batch", "shard_bounds",
           "all_reduce_sum", "is_collective_failure", "collective_failure", "DEFAULT_TIMEOUT_S"]

#: Seconds a collective (and the rendezvous) may wait for the other ranks before the run fails.
DEFAULT_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class World:
    """This process's place in the run: ``rank`` of ``size`` processes (``backend`` once joined)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def main(self) -> bool:
        """Rank 0: the one process that logs and writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def _env_int(environ, name: str) -> int | None:
    v = environ.get(name)
    if v is None or v == "":
        return None
    try:
        return int(v)
    except ValueError:
        raise ValueError(f"the environment variable {name}={v!r} must be an integer (torchrun sets it)") from None


def env_world(environ=None) -> World:
    """The world torchrun describes in the environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``);
    a single process (``World()``) when they are absent."""
    environ = os.environ if environ is None else environ
    size, rank, local = (_env_int(environ, k) for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK"))
    if size is None and rank is None:
        return World()
    if size is None or rank is None:
        have, missing = ("RANK", "WORLD_SIZE") if size is None else ("WORLD_SIZE", "RANK")
        raise ValueError(f"the environment sets {have} but not {missing}; launch the run with torchrun "
                         "(or set RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT on every process)")
    if size < 1:
        raise ValueError(f"WORLD_SIZE must be at least 1, not {size}")
    if not 0 <= rank < size:
        raise ValueError(f"inconsistent world: RANK {rank} is not in [0, WORLD_SIZE {size})")
    local = rank if local is None else local
    if local < 0:
        raise ValueError(f"LOCAL_RANK must be at least 0, not {local}")
    return World(rank, size, local)


def current_world() -> World:
    """The joined process group (``World()`` when none is initialised or it has one process)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return World()
    size = dist.get_world_size()
    if size == 1:
        return World()
    local = _env_int(os.environ, "LOCAL_RANK")
    rank = dist.get_rank()
    return World(rank, size, rank if local is None else local, str(dist.get_backend()))


def check_global_batch(batch_size: int, world_size: int) -> None:
    """``batch_size`` is the global batch: each of the ``world_size`` processes takes ``batch_size / world_size``."""
    if world_size > 1 and batch_size % world_size:
        raise ValueError(f"batch_size must be divisible by the world size: it is the global batch, split evenly "
                         f"over the {world_size} processes, and {batch_size} is not a multiple of {world_size}")


def shard_bounds(n: int, rank: int, size: int) -> tuple[int, int]:
    """``[lo, hi)`` of rank ``rank``'s slice of ``n`` items: ``size`` contiguous slices whose lengths differ
    by at most one (the first ``n % size`` slices are one longer, as ``torch.tensor_split``)."""
    q, r = divmod(n, size)
    lo = rank * q + min(rank, r)
    return lo, lo + q + (1 if rank < r else 0)


def backend_for(device: str) -> str:
    return "nccl" if str(device).split(":")[0] == "cuda" else "gloo"


def init(world: World, device: str = "cpu", timeout_s: float = DEFAULT_TIMEOUT_S) -> World:
    """Join the process group of ``world`` (``env://`` rendezvous, ``gloo`` for CPU, ``nccl`` for CUDA).

    Every failure (no rendezvous within ``timeout_s``, a world of another size, no GPU for this local
    rank) raises ``RuntimeError`` naming the cause; collectives time out after ``timeout_s`` too."""
    import torch.distributed as dist

    if not world.distributed:
        return world
    if not dist.is_available():
        raise RuntimeError("this torch build has no torch.distributed; run a single process")
    if not (timeout_s > 0):
        raise ValueError(f"the distributed timeout must be positive, not {timeout_s!r}")
    backend = backend_for(device)
    if backend == "nccl":
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {device!r}: no CUDA device is available")
        n = torch.cuda.device_count()
        if world.local_rank >= n:
            raise RuntimeError(f"LOCAL_RANK {world.local_rank} has no GPU: this machine has {n}; "
                               f"start at most {n} processes per node")
        torch.cuda.set_device(world.local_rank)
    where = f"{os.environ.get('MASTER_ADDR', '?')}:{os.environ.get('MASTER_PORT', '?')}"
    try:
        dist.init_process_group(backend, init_method="env://", rank=world.rank, world_size=world.size,
                                timeout=datetime.timedelta(seconds=float(timeout_s)))
    except Exception as e:  # noqa: BLE001 - the store's and the backends' errors have many types
        msg = _one_line(e)
        raise RuntimeError(f"rank {world.rank} of {world.size} could not join the {backend} process group at "
                           f"{where} within {timeout_s:g} s: {msg}") from None
    size = dist.get_world_size()
    if size != world.size:  # not expected: the rendezvous checks it
        shutdown()
        raise RuntimeError(f"inconsistent world size: WORLD_SIZE is {world.size} but the process group has {size}")
    return World(world.rank, world.size, world.local_rank, backend)


def _one_line(e: BaseException, limit: int = 300) -> str:
    msg = " ".join(str(e).split()) or type(e).__name__
    return msg if len(msg) <= limit else msg[:limit - 3] + "..."


def is_collective_failure(e: BaseException) -> bool:
    """An error of the process group itself (a peer died, hung past the timeout or lost its connection),
    as opposed to an error of this rank's own work.

    Collectives called from Python raise ``torch.distributed.DistError``; DDP's gradient all-reduce runs
    inside the autograd engine, which re-raises the transport's error as a plain ``RuntimeError`` whose
    text names the transport (``.../gloo/transport/tcp/pair.cc: Read error ... Connection reset by peer``,
    ``NCCL error``, ``ProcessGroupNCCL``). Only the message of the error is rewritten from this, so a
    false match costs a wrong hint, never a wrong exit status."""
    import torch.distributed as dist

    if isinstance(e, dist.DistError):
        return True
    return isinstance(e, RuntimeError) and any(k in str(e) for k in ("/gloo/", "NCCL", "ProcessGroup"))


def collective_failure(world: World, e: BaseException) -> RuntimeError:
    """The error a rank reports when the process group fails under it: which rank, of how many, and why.

    A rank that is killed takes its sockets with it, so the others fail at once ("connection reset");
    one that hangs is given up after the timeout. Either way this rank wrote nothing (rank 0 writes
    only after the last collective, atomically) and the failed rank's own log names the cause."""
    return RuntimeError(f"rank {world.rank} of {world.size}: the {world.backend or 'distributed'} process group "
                        f"failed (another rank stopped, hung past --dist-timeout or lost its connection; "
                        f"its own log names the cause), nothing was written: {_one_line(e)}")


def shutdown() -> None:
    """Leave the process group (after :func:`finish` on success; at once after an error)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        gc.collect()  # DDP's reducer holds the group: release it so the group is torn down here, not at exit
        dist.destroy_process_group()


def finish() -> None:
    """Wait until every rank has finished its work, so that all ranks tear the group down together.

    Without it the other ranks leave while rank 0 is still scoring and writing; a gloo group torn down
    on one side while its peer is still open has aborted a rank at exit ("terminate called without an
    active exception", seen once in CI on 2 loaded cores). A rank that failed makes this raise, as any
    collective does, so the others report the failure instead of exiting 0."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_reduce_sum(values, device) -> list[float]:
    """The sums over all ranks of a few numbers (float64; exact for counts below 2^53)."""
    import torch.distributed as dist

    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()

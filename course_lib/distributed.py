"""One training run on several processes: DistributedDataParallel under ``torchrun``.

``torchrun --nproc_per_node=N -m course_lib experiment ...`` starts N copies of the
same command. Each copy calls :func:`setup` (``fit`` does), which joins the process
group (NCCL on GPUs, Gloo on CPUs) and returns a :class:`Context`; without torchrun it
returns the single-process context and every method below is the identity, so the
same code runs in both cases.

How a run on N processes equals the run on one:

- every rank draws the same global batch (same seed, same order, same augmentation)
  and trains on its slice of it (:meth:`Context.shard`);
- BatchNorm uses the statistics of the global batch (``torch.nn.SyncBatchNorm`` on
  GPUs, :class:`AllReduceBatchNorm2d` on CPUs, where SyncBatchNorm does not run);
- the loss of a slice is scaled (:meth:`Context.scale_loss`) so that DDP's average of the
  gradients is the gradient of the mean loss over the global batch, also when the
  last batch does not split evenly;
- training metrics are summed over ranks (:meth:`Context.sum`); only rank 0 writes
  files and shows progress (:attr:`Context.is_main`).

Up to floating-point rounding (sums in another order), the weights after each step are
those of the single-process run with the same global batch size.
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from course_lib.errors import CourseError

__all__ = ["AllReduceBatchNorm2d", "Context", "cleanup", "convert_batchnorm", "current", "launched", "setup"]


def launched() -> bool:
    """True in a process started by torchrun with more than one process in the run."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


@dataclass(frozen=True)
class Context:
    """Where this process stands in the run: its rank among ``world_size`` processes."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes files, plots and progress bars."""
        return self.rank == 0

    def device(self, device: torch.device) -> torch.device:
        """This rank's device: ``cuda`` becomes ``cuda:LOCAL_RANK`` (one GPU per process)."""
        device = torch.device(device)
        if self.enabled and device.type == "cuda":
            return torch.device("cuda", self.local_rank)
        return device

    def wrap(self, model: nn.Module) -> nn.Module:
        """The model to train with: synchronised BatchNorm inside DistributedDataParallel.

        The returned module shares its parameters with ``model``; evaluate, save and
        load ``model`` itself. Single process: ``model`` unchanged.
        """
        if not self.enabled:
            return model
        device = next(model.parameters()).device
        if device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
            return DistributedDataParallel(model, device_ids=[device.index])
        convert_batchnorm(model)
        return DistributedDataParallel(model)

    def shard(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """This rank's rows of a global batch: contiguous slices, sizes differing by at most one."""
        if not self.enabled:
            return tensors
        return tuple(torch.tensor_split(t, self.world_size)[self.rank] for t in tensors)

    def scale_loss(self, loss: torch.Tensor, local_size: int, global_size: int) -> torch.Tensor:
        """The mean loss of this rank's slice, scaled for DDP.

        DDP averages gradients over ranks; multiplying the slice's mean loss by
        ``local_size * world_size / global_size`` makes that average the gradient of the mean
        loss over the whole global batch, also when the last batch does not split evenly.
        The loss itself (its criterion, label smoothing) is the trainer's. Single process:
        ``loss`` unchanged.
        """
        if not self.enabled:
            return loss
        return loss * (local_size * self.world_size / global_size)

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """The sum of ``tensor`` over all ranks (a metric: no gradient flows)."""
        if not self.enabled:
            return tensor
        tensor = tensor.detach().clone()
        dist.all_reduce(tensor)
        return tensor

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


_SINGLE = Context()


def current() -> Context:
    """The context of this process (single-process until :func:`setup` joined a group)."""
    if not (dist.is_available() and dist.is_initialized()):
        return _SINGLE
    return Context(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def setup(device: str | torch.device = "cpu") -> Context:
    """Join the process group when started by torchrun (once; later calls return the same).

    NCCL when ``device`` is a GPU, Gloo otherwise. Without torchrun: the single-process
    context, and nothing is initialised.
    """
    if not launched() or (dist.is_available() and dist.is_initialized()):
        return current()
    if not dist.is_available():
        raise CourseError("This PyTorch build has no torch.distributed; run without torchrun.")
    device = torch.device(device)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise CourseError(
                f"torchrun started more processes per node than there are GPUs "
                f"({torch.cuda.device_count()}); use --nproc_per_node={torch.cuda.device_count()} or fewer."
            )
        torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl", device_id=torch.device("cuda", local_rank))
    else:
        dist.init_process_group("gloo")
    atexit.register(cleanup)
    return current()


def cleanup() -> None:
    """Leave the process group (safe to call more than once)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


class _SumOverRanks(torch.autograd.Function):
    """Sum a tensor over all ranks; the gradient of each rank's input is the sum of the output gradients."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.clone()
        dist.all_reduce(tensor)
        return tensor

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class AllReduceBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d over the batch of all processes, for CPUs (Gloo).

    ``torch.nn.SyncBatchNorm`` runs on GPUs only. This layer sums per-channel counts,
    sums and squared deviations over the processes with a differentiable all-reduce,
    so its output and its gradients are those of BatchNorm2d applied to the global
    batch. Outside a multi-process run, and in eval mode, it is BatchNorm2d.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        dims = (0, 2, 3)
        values = x.float()
        count = torch.full((1,), values.numel() // values.shape[1], dtype=values.dtype, device=values.device)
        totals = _SumOverRanks.apply(torch.cat([count, values.sum(dims)]))
        n, mean = totals[0], totals[1:] / totals[0]
        centred = values - mean.view(1, -1, 1, 1)
        var = _SumOverRanks.apply((centred * centred).sum(dims)) / n
        if self.track_running_stats:
            self._update_running_stats(mean.detach(), var.detach() * n / (n - 1))
        out = centred * torch.rsqrt(var + self.eps).view(1, -1, 1, 1)
        if self.affine:
            out = out * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        return out.to(x.dtype)

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, unbiased_var: torch.Tensor) -> None:
        self.num_batches_tracked.add_(1)
        momentum = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
        self.running_mean.lerp_(mean.to(self.running_mean.dtype), momentum)
        self.running_var.lerp_(unbiased_var.to(self.running_var.dtype), momentum)


def convert_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm2d inside ``module`` by :class:`AllReduceBatchNorm2d`, in place.

    The new layers take over the same parameter and buffer tensors, so optimisers and
    parameter groups built before the conversion stay valid, and state_dict keys do not change.
    """
    for name, child in module.named_children():
        if type(child) is nn.BatchNorm2d:
            setattr(module, name, _all_reduce_copy(child))
        else:
            convert_batchnorm(child)
    return module


def _all_reduce_copy(bn: nn.BatchNorm2d) -> AllReduceBatchNorm2d:
    new = AllReduceBatchNorm2d(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
    if bn.affine:
        new.weight, new.bias = bn.weight, bn.bias
    if bn.track_running_stats:
        new.running_mean, new.running_var = bn.running_mean, bn.running_var
        new.num_batches_tracked = bn.num_batches_tracked
    new.train(bn.training)
    return new

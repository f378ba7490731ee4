r"""What an optimizer needs when its parameters are sharded: the local piece, the whole tensor,
sums over every rank, and a count of the bytes that this costs.

Under FSDP2 (``torch.distributed.fsdp.fully_shard``) every parameter is a ``DTensor``: a
tensor that *knows* it is spread over a group of ranks. Its ``shape`` is the whole tensor's;
``to_local()`` is the piece this rank stores (a ``Shard(0)`` placement: a block of rows); and
``full_tensor()`` gathers the pieces from every rank. An element-wise update (SGD, Adam, ...)
never needs more than the local piece. An update that reads a whole row, a whole column, a norm
or the whole matrix does, and these helpers give it that, for plain tensors as a no-op:

- :func:`local` and :func:`full`: the local piece, and the whole tensor (an all-gather);
- :func:`shard_of`: this rank's piece of a whole tensor (no communication);
- :func:`all_sum`: a sum over the ranks that hold pieces (an all-reduce);
- :func:`global_norm` and :func:`clip_grad_norm_`: the 2-norm over all pieces.

Every collective adds to :data:`BYTES_SENT` the bytes this rank sends over a ring, the usual
algorithm: an all-reduce of $b$ bytes over $N$ ranks sends $2b(N-1)/N$ from each
rank, an all-gather of a whole tensor of $B$ bytes sends $B(N-1)/N$.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = [
    "BYTES_SENT",
    "all_sum",
    "clip_grad_norm_",
    "full",
    "global_norm",
    "is_sharded",
    "local",
    "shard_dim",
    "shard_of",
]

#: Bytes sent by this rank, per kind of collective, since the last ``BYTES_SENT.clear()``.
BYTES_SENT: Counter[str] = Counter()

try:
    from torch.distributed.tensor import DTensor, Replicate, Shard
except ImportError:  # a build of torch without torch.distributed
    DTensor = None  # type: ignore[assignment,misc]


def is_sharded(t: Tensor) -> bool:
    """Whether ``t`` is a DTensor split over more than one rank (not merely replicated)."""
    return (
        DTensor is not None
        and isinstance(t, DTensor)
        and t.device_mesh.size() > 1
        and any(isinstance(p, Shard) for p in t.placements)
    )


def local(t: Tensor) -> Tensor:
    """The piece of ``t`` that this rank stores (``t`` itself for a plain tensor)."""
    return t.to_local() if DTensor is not None and isinstance(t, DTensor) else t


def shard_dim(t: Tensor) -> int | None:
    """The dimension along which ``t`` is split over the ranks; ``None`` if it is not."""
    if not is_sharded(t):
        return None
    if len(t.placements) != 1:
        raise NotImplementedError("only a one-dimensional device mesh is supported")
    return t.placements[0].dim % t.dim()


def _ring_factor(t: Tensor) -> float:
    n = t.device_mesh.size()
    return (n - 1) / n


def full(t: Tensor) -> Tensor:
    """The whole tensor on every rank, as a plain tensor: an all-gather for a sharded one."""
    if DTensor is None or not isinstance(t, DTensor):
        return t
    if is_sharded(t):
        nbytes = t.numel() * t.element_size()
        BYTES_SENT["all_gather"] += round(nbytes * _ring_factor(t))
    return t.full_tensor()


def shard_of(whole: Tensor, like: Tensor) -> Tensor:
    """This rank's piece of ``whole``, cut the way ``like`` is cut (no communication: every rank
    already holds ``whole``). For a plain ``like``, ``whole`` itself."""
    if DTensor is None or not isinstance(like, DTensor):
        return whole
    mesh = like.device_mesh
    replicated = DTensor.from_local(whole, mesh, [Replicate()] * mesh.ndim, run_check=False)
    return replicated.redistribute(mesh, like.placements).to_local()


def all_sum(x: Tensor, like: Tensor) -> Tensor:
    """``x`` summed over the ranks that share ``like`` (in place), when ``like`` is sharded;
    ``x`` unchanged otherwise."""
    if is_sharded(like):
        BYTES_SENT["all_reduce"] += round(2 * x.numel() * x.element_size() * _ring_factor(like))
        dist.all_reduce(x, group=like.device_mesh.get_group())
    return x


def global_norm(t: Tensor, like: Tensor | None = None) -> Tensor:
    """The 2-norm of the whole of ``t``, or of the tensor whose local piece ``t`` is, cut like
    ``like``: ``t.norm(2)`` unless that is sharded; then the square root of the all-reduced sum
    of the pieces' squared norms (one number sent)."""
    like = t if like is None else like
    if not is_sharded(like):
        return local(t).norm(2)
    return all_sum(local(t).norm(2).square(), like).sqrt()


def clip_grad_norm_(parameters: Iterable[Tensor], max_norm: float) -> Tensor:
    r"""Scale every gradient by $\min(1, c / (\lVert g\rVert + 10^{-6}))$, where
    $\lVert g\rVert$ is the 2-norm of all gradients together, as
    ``torch.nn.utils.clip_grad_norm_`` does, and return that norm.

    Sharded gradients hold only a piece each: their squared norms are summed over the ranks
    (one all-reduce of a single number per step); replicated and plain ones count once.
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.tensor(0.0)
    squares = [local(g).detach().norm(2).square() for g in grads]
    sharded_sum = sum((s for s, g in zip(squares, grads) if is_sharded(g)), torch.tensor(0.0))
    if any(is_sharded(g) for g in grads):
        first = next(g for g in grads if is_sharded(g))
        sharded_sum = sharded_sum.to(squares[0])
        all_sum(sharded_sum, first)
    replicated_sum = sum((s for s, g in zip(squares, grads) if not is_sharded(g)), 0.0)
    total = (sharded_sum + replicated_sum).sqrt()
    coefficient = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for g in grads:
        local(g).detach().mul_(coefficient.to(local(g).dtype))
    return total


def group_of(tensors: Iterable[Tensor]) -> dist.ProcessGroup | None:
    """The process group over which the first sharded tensor is split; ``None`` if none is."""
    for t in tensors:
        if is_sharded(t):
            if len(t.placements) != 1:
                raise NotImplementedError("only a one-dimensional device mesh is supported")
            return t.device_mesh.get_group()
    return None


class FlatOps:
    """Reductions of a long vector that is cut into pieces, one per rank of ``group``: each
    rank holds its piece, and a dot product, a largest entry or a sum is the local one
    all-reduced (one number sent). With ``group=None`` they are the plain tensor operations."""

    def __init__(
        self, group: dist.ProcessGroup | None = None, device: torch.device | str = "cpu"
    ) -> None:
        self.group, self.device = group, torch.device(device)

    def _reduce(self, value: Tensor, op: dist.ReduceOp.RedOpType) -> Tensor:
        if self.group is None:
            return value
        n = dist.get_world_size(self.group)
        BYTES_SENT["all_reduce"] += round(2 * value.element_size() * (n - 1) / n)
        dist.all_reduce(value, op=op, group=self.group)
        return value

    def dot(self, a: Tensor, b: Tensor) -> Tensor:
        return self._reduce(a.dot(b), dist.ReduceOp.SUM)

    def max_abs(self, x: Tensor) -> Tensor:
        if self.group is not None and x.numel() == 0:
            return self._reduce(x.new_zeros(()), dist.ReduceOp.MAX)
        return self._reduce(x.abs().max(), dist.ReduceOp.MAX)

    def abs_sum(self, x: Tensor) -> Tensor:
        return self._reduce(x.abs().sum(), dist.ReduceOp.SUM)

    def mean(self, value: float) -> float:
        """A number that each rank computed on its own share (a loss), averaged over the ranks."""
        if self.group is None:
            return value
        total = self._reduce(
            torch.tensor(float(value), dtype=torch.float64, device=self.device), dist.ReduceOp.SUM
        )
        return float(total) / dist.get_world_size(self.group)


#: The operations of one process, for code that takes ``ops`` and runs unsharded.
PLAIN = FlatOps()

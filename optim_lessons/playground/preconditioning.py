r"""The preconditioning view: most optimizers in this book are one update with different ``P``.

.. math::

    \theta_{t+1} = \theta_t - \gamma\, P_t^{-1} m_t

where :math:`m_t` is the gradient or its momentum average and :math:`P_t` a symmetric positive
definite matrix. Plain SGD and momentum take :math:`P = I`. Adagrad, RMSprop and Adam take a
*diagonal* :math:`P` built from the squared gradients (:math:`\sqrt{v_t} + \epsilon`), one
number per coordinate. Newton's method takes the Hessian, :math:`P = H`. Shampoo and Muon are
not diagonal: they act on a weight matrix from both sides, along directions that mix the
coordinates.

A diagonal :math:`P` can only rescale the coordinate axes. On a quadratic whose axes line up
with the coordinates (the ``bowl``) the right diagonal is the Hessian itself, and one scaled
step undoes the ill-conditioning. On the same bowl turned by 45 degrees (``rotated_bowl``) the
Hessian's diagonal is the same number twice, so the diagonal rescaling changes nothing but the
step size; only a :math:`P` that rotates with the bowl helps. :func:`preconditioned_descent`
runs the update with a fixed :math:`P` on a surface, so a figure can show exactly that.

>>> import torch
>>> H = hessian_at("bowl", (0.0, 0.0))
>>> H.tolist()
[[1.0, 0.0], [0.0, 20.0]]
>>> path = preconditioned_descent("bowl", H, lr=1.0, steps=1)
>>> path[-1].abs().max().item() < 1e-12   # Newton's step: the minimum of a quadratic at once
True
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from optim_lessons.playground.surfaces import Surface, get_surface

__all__ = ["hessian_at", "preconditioned_descent"]


def hessian_at(surface: Surface | str, point: Sequence[float] | Tensor) -> Tensor:
    """The 2 x 2 Hessian of the surface at ``point`` (float64), by autograd."""
    surface = get_surface(surface)
    where = torch.as_tensor(point, dtype=torch.float64)
    return torch.autograd.functional.hessian(surface, where)


def preconditioned_descent(
    surface: Surface | str,
    preconditioner: Tensor | Sequence[Sequence[float]],
    lr: float,
    steps: int,
    start: Sequence[float] | None = None,
) -> Tensor:
    r"""Run :math:`\theta \leftarrow \theta - \gamma P^{-1} \nabla f(\theta)` with a fixed
    ``preconditioner`` :math:`P` (2 x 2, symmetric positive definite) and exact gradients.

    Returns the iterates, start included, as a ``(steps + 1, 2)`` float64 tensor, ready for
    :func:`optim_lessons.playground.plots.plot_trajectories`. :math:`P^{-1}\nabla f` is computed
    with ``torch.linalg.solve``, never by inverting :math:`P`.
    """
    surface = get_surface(surface)
    matrix = torch.as_tensor(preconditioner, dtype=torch.float64)
    if matrix.shape != (2, 2):
        raise ValueError(f"the preconditioner must be 2 x 2, got shape {tuple(matrix.shape)}")
    if not torch.allclose(matrix, matrix.T) or torch.linalg.eigvalsh(matrix).min() <= 0:
        raise ValueError("the preconditioner must be symmetric positive definite")
    point = torch.as_tensor(surface.start if start is None else start, dtype=torch.float64)
    points = [point.clone()]
    for _ in range(steps):
        direction = torch.linalg.solve(matrix, surface.gradient(point))  # P^{-1} grad f
        point = point - lr * direction
        points.append(point.clone())
    return torch.stack(points)

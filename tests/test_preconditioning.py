"""The preconditioned update: identity is gradient descent, the Hessian is Newton's step, and a
diagonal P cannot undo a rotation."""

import pytest
import torch

from optim_lessons.playground.preconditioning import hessian_at, preconditioned_descent
from optim_lessons.playground.surfaces import run_on_surface


def test_identity_preconditioner_is_plain_gradient_descent():
    path = preconditioned_descent("bowl", torch.eye(2), lr=0.09, steps=20)
    sgd = run_on_surface("bowl", torch.optim.SGD, steps=20, lr=0.09)
    torch.testing.assert_close(path, sgd.points.to(torch.float64), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("surface", ["bowl", "rotated_bowl"])
def test_the_hessian_as_preconditioner_reaches_a_quadratic_minimum_in_one_step(surface):
    hessian = hessian_at(surface, (0.0, 0.0))
    path = preconditioned_descent(surface, hessian, lr=1.0, steps=1)
    assert path[-1].abs().max().item() < 1e-12


def test_a_diagonal_preconditioner_fixes_the_bowl_but_not_the_rotated_bowl():
    bowl_diagonal = torch.diag(torch.diagonal(hessian_at("bowl", (0.0, 0.0))))
    rotated_diagonal = torch.diag(torch.diagonal(hessian_at("rotated_bowl", (0.0, 0.0))))
    assert torch.allclose(rotated_diagonal, 10.5 * torch.eye(2, dtype=torch.float64))
    on_bowl = preconditioned_descent("bowl", bowl_diagonal, lr=1.0, steps=1)
    on_rotated = preconditioned_descent("rotated_bowl", rotated_diagonal, lr=1.0, steps=10)
    assert on_bowl[-1].abs().max().item() < 1e-12
    assert on_rotated[-1].norm().item() > 1.0  # 10 steps and still far from the minimum


def test_the_preconditioner_must_be_symmetric_positive_definite():
    with pytest.raises(ValueError, match="2 x 2"):
        preconditioned_descent("bowl", torch.eye(3), lr=0.1, steps=1)
    with pytest.raises(ValueError, match="positive definite"):
        preconditioned_descent("bowl", [[1.0, 0.0], [0.0, -1.0]], lr=0.1, steps=1)

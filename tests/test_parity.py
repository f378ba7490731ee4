"""optim_lessons.parity: the side-by-side check the chapters print and the tests assert."""

from __future__ import annotations

import math

import pytest
import torch

from optim_lessons.optimizers import SGD
from optim_lessons.parity import compare_trajectories


def test_two_runs_that_diverge_to_the_same_nan_and_inf_agree():
    report = compare_trajectories(SGD, torch.optim.SGD, {"lr": 1e8}, steps=12, check=True)
    finals = torch.cat([p.detach().reshape(-1) for p in report.ours_params])
    assert not torch.isfinite(finals).all()  # the runs did blow up...
    assert report.max_abs_diff == 0.0  # ...in exactly the same way


def test_a_run_that_diverges_alone_still_fails_the_check():
    class Steady(torch.optim.SGD):
        """Evaluates the closure and never moves: the reference stays finite."""

        @torch.no_grad()
        def step(self, closure=None):  # type: ignore[no-untyped-def]
            with torch.enable_grad():
                return closure()

    with pytest.raises(AssertionError, match="step 1, parameter 0"):
        compare_trajectories(SGD, Steady, {"lr": 1e8}, steps=12, check=True)
    report = compare_trajectories(SGD, Steady, {"lr": 1e8}, steps=12)
    assert math.isnan(report.max_abs_diff)  # a NaN against a number is no agreement

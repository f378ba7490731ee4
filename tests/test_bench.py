"""The step() benchmark: its set-ups are what they claim, and a tiny run gives a well-formed table.

No test here asserts anything about speed: timings on a shared machine say nothing reliable.
"""

from __future__ import annotations

import pytest
import torch

from optim_lessons.benchmarks import bench


@pytest.fixture(scope="module")
def tiny_rows():
    return bench.run_benchmark(["SGD", "Adam"], ["small"], repeats=3, warmup=1)


def test_a_tiny_run_gives_one_well_formed_row_per_optimizer(tiny_rows):
    assert [(r.optimizer, r.size) for r in tiny_rows] == [("SGD", "small"), ("Adam", "small")]
    for row in tiny_rows:
        assert row.n_params == 50_890  # the seed's 784-64-10 MLP
        assert row.steps_timed == 3
        assert all(len(samples) == 3 for samples in row.samples_ms.values())
        assert set(row.samples_ms) == {"ours", "for-loop", "default"}
        assert min(row.ours_ms, row.torch_for_loop_ms, row.torch_default_ms) > 0
        ours, loop = row.samples_ms["ours"], row.samples_ms["for-loop"]
        paired = sorted(a / b for a, b in zip(ours, loop, strict=True))
        assert row.ratio == pytest.approx(paired[1])  # the median of three paired ratios
    sgd, adam = tiny_rows
    # SGD with momentum keeps one float32 buffer per parameter, Adam two (plus a step count).
    assert sgd.ours_state_bytes_per_param == sgd.torch_state_bytes_per_param == 4.0
    assert adam.torch_state_bytes_per_param == pytest.approx(8.0, abs=0.01)
    assert adam.ours_state_bytes_per_param == pytest.approx(adam.torch_state_bytes_per_param)


def test_the_table_has_a_header_a_rule_and_one_line_per_row(tiny_rows):
    lines = bench.format_table(tiny_rows).splitlines()
    assert lines[0].split()[:4] == ["optimizer", "size", "params", "ours"]
    assert set(lines[1]) == {"-"}
    body = lines[2:4]
    for line, row in zip(body, tiny_rows, strict=True):
        fields = line.split()
        assert fields[0].rstrip("*") == row.optimizer and fields[1] == "small"
        assert fields[2] == "50,890"
        ours, loop, default, ratio = (float(f) for f in fields[3:7])
        assert ours == pytest.approx(row.ours_ms, abs=1e-3)
        assert ratio == pytest.approx(row.ratio, abs=0.01)
        assert int(fields[-1]) == 3
    assert "SGD: momentum=0.9" in lines[-1]


def test_the_goal_summary_names_the_optimizers_that_miss_it(tiny_rows):
    summary = bench.goal_summary(tiny_rows, "small")
    misses = [r.optimizer for r in tiny_rows if r.ratio > bench.GOAL_RATIO]
    assert ("all met" in summary) == (not misses)
    for name in misses:
        assert name in summary


def test_muon_is_timed_on_the_weight_matrices_only():
    params = bench.make_params("Muon", "small", "cpu")
    assert [tuple(p.shape) for p in params] == [(64, 784), (10, 64)]


def test_sparse_adam_is_timed_on_an_embedding_table_with_a_sparse_gradient():
    (table,) = bench.make_params("SparseAdam", "small", "cpu")
    assert tuple(table.shape) == bench.EMBEDDING_SHAPES["small"]
    assert table.grad.is_sparse


def test_the_large_model_has_about_five_million_parameters():
    assert sum(p.numel() for p in bench.large_mlp().parameters()) == 5_088_010


@pytest.mark.parametrize("name", bench.torch_names())
def test_a_step_leaves_the_filled_gradients_unchanged(name):
    # The gradients are filled once and reused for every timed step; that is only fair if no
    # implementation changes them.
    base = bench.make_params(name, "small", "cpu")
    for cls in (bench.our_class(name), bench.torch_class(name)):
        params = bench.clone_params(base)
        optimizer = cls(params, **bench.BENCH_KWARGS.get(name, {}))
        closure = (lambda: torch.tensor(1.0)) if name == "LBFGS" else None
        optimizer.step(closure)
        optimizer.step(closure)
        for p, original in zip(params, base, strict=True):
            grad, expected = p.grad, original.grad
            if expected.is_sparse:
                grad, expected = grad.to_dense(), expected.to_dense()
            assert torch.equal(grad, expected), f"{cls.__module__}.{name} changed .grad"


def test_lbfgs_with_a_fixed_loss_stops_after_one_inner_iteration():
    params = bench.clone_params(bench.make_params("LBFGS", "small", "cpu"))
    optimizer = bench.torch_class("LBFGS")(params)
    calls = []

    def closure():
        calls.append(1)
        return torch.tensor(1.0)

    optimizer.step(closure)
    assert len(calls) == 2  # the first evaluation and the one after the first move
    assert optimizer.state[params[0]]["n_iter"] == 1


def test_the_command_line_prints_the_table(capsys):
    rows = bench.main(
        ["--sizes", "small", "--optimizers", "SGD,LBFGS", "--repeats", "2", "--warmup", "1"]
    )
    out = capsys.readouterr().out
    assert [r.optimizer for r in rows] == ["SGD", "LBFGS"]
    assert "= loop" in out  # LBFGS has no foreach switch
    assert "goal (ours <= 1.25x torch for-loop at small)" in out

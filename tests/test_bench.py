"""The step() benchmark: its set-ups are what they claim, and a tiny run gives a well-formed table.

No test here asserts anything about speed: timings on a shared machine say nothing reliable.
The figures come from running the script (optim_lessons/benchmarks/results/).
"""

from __future__ import annotations

import pytest
import torch
from _optim_checks import one_cpu_thread  # noqa: F401 (an autouse fixture)

from optim_lessons.benchmarks import bench, bench_models, bench_report, roofline

BANDWIDTH = 10e9  # bytes per second: a made-up speed, so the roofline column is predictable


@pytest.fixture(scope="module")
def tiny_rows():
    return bench.run_benchmark(
        ["SGD", "Adam"], ["small"], repeats=3, warmup=1, fast=False, bandwidth=BANDWIDTH
    )


def test_a_tiny_run_gives_one_well_formed_row_per_optimizer(tiny_rows):
    assert [(r.optimizer, r.size) for r in tiny_rows] == [("SGD", "small"), ("Adam", "small")]
    for row in tiny_rows:
        assert row.n_params == 50_890  # the seed's 784-64-10 MLP
        assert row.steps_timed == 3
        assert set(row.samples_ms) == {"ours", "for-loop", "foreach", "fused"}
        assert all(len(samples) == 3 for samples in row.samples_ms.values())
        assert min(row.median(label) for label in row.samples_ms) > 0
        ours, loop = row.samples_ms["ours"], row.samples_ms["for-loop"]
        paired = sorted(a / b for a, b in zip(ours, loop, strict=True))
        assert row.ratio == pytest.approx(paired[1])  # the median of three paired ratios
    sgd, adam = tiny_rows
    # SGD with momentum keeps one float32 buffer per parameter, Adam two (plus a step count).
    assert sgd.ours_state_bytes_per_param == sgd.torch_state_bytes_per_param == 4.0
    assert adam.torch_state_bytes_per_param == pytest.approx(8.0, abs=0.01)
    assert adam.ours_state_bytes_per_param == pytest.approx(adam.torch_state_bytes_per_param)


def test_the_roofline_column_is_the_bytes_over_the_bandwidth(tiny_rows):
    sgd, adam = tiny_rows
    assert adam.roofline_ms == pytest.approx(50_890 * 28 / BANDWIDTH * 1e3)
    assert sgd.roofline_ms == pytest.approx(50_890 * 20 / BANDWIDTH * 1e3)
    fastest_torch = min(adam.median(label) for label in ("for-loop", "foreach", "fused"))
    assert adam.percent_of_roofline(bench_report.TORCH_LABELS) == pytest.approx(
        roofline.percent_of_roofline(fastest_torch, adam.roofline_ms)
    )


def test_the_table_has_a_header_a_rule_and_one_line_per_row(tiny_rows):
    lines = bench_report.format_table(tiny_rows).splitlines()
    header = lines[0].split()
    assert header[:6] == ["optimizer", "size", "params", "ours", "for-loop", "ours/loop"]
    assert "triton" not in header  # only where some row ran on CUDA
    assert set(lines[1]) == {"-"}
    for line, row in zip(lines[2:4], tiny_rows, strict=True):
        fields = line.split()
        assert fields[0].rstrip("*") == row.optimizer and fields[1] == "small"
        assert fields[2] == "50,890"
        ours, loop, ratio = (float(f) for f in fields[3:6])
        assert ours == pytest.approx(row.ours_ms, abs=1e-3)
        assert ratio == pytest.approx(row.ratio, abs=0.01)
        assert fields[8:10] == ["-", "-"]  # no flat, no compiled in this run
        assert fields[-3].endswith("%")  # %roof torch
        assert int(fields[-1]) == 3
    assert any("SGD: momentum=0.9" in line for line in lines)


def test_the_spread_table_has_a_line_per_implementation(tiny_rows):
    lines = bench_report.format_spread(tiny_rows).splitlines()
    assert len(lines) == 1 + sum(len(row.samples_ms) for row in tiny_rows)


def test_the_goal_summary_names_the_optimizers_that_miss_it(tiny_rows):
    summary = bench_report.goal_summary(tiny_rows, "small")
    misses = [r.optimizer for r in tiny_rows if r.ratio > bench_report.GOAL_RATIO]
    assert ("all met" in summary) == (not misses)
    for name in misses:
        assert name in summary


def test_the_fast_columns_come_from_optim_lessons_fast(monkeypatch):
    # The compiled column is built like the flat one; the flat class stands in for it here, so
    # that this test compiles nothing.
    monkeypatch.setitem(bench.FAST_PATHS, "SGD", ("FlatSGD", "FlatSGD"))
    row = bench.time_optimizer("SGD", "small", repeats=2, min_repeats=2, warmup=1)
    assert set(row.samples_ms) == {"ours", "for-loop", "foreach", "fused", "flat", "compiled"}
    assert row.paired_ratio("flat", "foreach") > 0
    summary = bench_report.goal_summary([row], "small")
    assert "flat <= 1.0x torch foreach at small): SGD" in summary
    assert "compiled <= 1.1x torch fused at small): SGD" in summary


def test_every_fast_path_names_a_class_in_optim_lessons_fast():
    from optim_lessons.fast import compiled, flat, triton_adam

    for flat_name, compiled_name in bench.FAST_PATHS.values():
        assert issubclass(getattr(flat, flat_name), torch.optim.Optimizer)
        assert issubclass(getattr(compiled, compiled_name), torch.optim.Optimizer)
    for name in bench.TRITON_PATHS.values():
        assert issubclass(getattr(triton_adam, name), torch.optim.Optimizer)
    labels = bench.implementations("Adam", torch.device("cpu"))
    assert list(labels) == ["ours", "for-loop", "foreach", "fused", "flat", "compiled"]
    assert list(bench.implementations("Muon", torch.device("cpu"))) == ["ours", "for-loop"]


def test_an_implementation_that_cannot_run_here_is_left_out_and_named(monkeypatch):
    builders = bench.implementations("SGD", torch.device("cpu"), fast=False)

    def no_compiler(params):
        raise RuntimeError("torch.compile needs a C++ compiler")

    monkeypatch.setattr(
        bench, "implementations", lambda *args: {**builders, "compiled": no_compiler}
    )
    row = bench.time_optimizer("SGD", "small", repeats=2, min_repeats=2, warmup=1)
    assert "compiled" not in row.samples_ms
    table = bench_report.format_table([row])
    assert "no compiled column: torch.compile needs a C++ compiler" in table


def test_the_default_plan_times_all_fifteen_small_and_the_fast_four_large():
    plan = bench.default_plan(bench.torch_names(), ["small", "large"])
    assert [(n, s, f) for n, s, f in plan if s == "small"] == [
        (name, "small", False) for name in bench.torch_names()
    ]
    assert [(n, f) for n, s, f in plan if s == "large"] == [
        (name, True) for name in ("SGD", "Adam", "AdamW", "Adagrad")
    ]
    assert ("Muon", "large", True) not in plan and ("Muon", "large", False) not in plan


def test_muon_is_timed_on_the_weight_matrices_only():
    params = bench_models.make_params("Muon", "small", "cpu")
    assert [tuple(p.shape) for p in params] == [(64, 784), (10, 64)]


def test_sparse_adam_is_timed_on_an_embedding_table_with_a_sparse_gradient():
    (table,) = bench_models.make_params("SparseAdam", "small", "cpu")
    assert tuple(table.shape) == bench_models.EMBEDDING_SHAPES["small"]
    assert table.grad.is_sparse


def test_the_large_and_deep_models_have_about_five_million_parameters():
    assert sum(p.numel() for p in bench_models.large_mlp().parameters()) == 5_088_010
    deep = list(bench_models.deep_mlp().parameters())
    assert (sum(p.numel() for p in deep), len(deep)) == (5_241_442, 68)


@pytest.mark.parametrize("name", bench.torch_names())
def test_a_step_leaves_the_filled_gradients_unchanged(name):
    # The gradients are filled once and reused for every timed step; that is only fair if no
    # implementation changes them.
    from optim_lessons.fast import flat

    base = bench_models.make_params(name, "small", "cpu")
    classes = [bench.our_class(name), bench.torch_class(name)]
    if name in bench.FAST_PATHS:
        classes.append(getattr(flat, bench.FAST_PATHS[name][0]))
    for cls in classes:
        params = bench_models.clone_params(base)
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
    params = bench_models.clone_params(bench_models.make_params("LBFGS", "small", "cpu"))
    optimizer = bench.torch_class("LBFGS")(params)
    calls = []

    def closure():
        calls.append(1)
        return torch.tensor(1.0)

    optimizer.step(closure)
    assert len(calls) == 2  # the first evaluation and the one after the first move
    assert optimizer.state[params[0]]["n_iter"] == 1


def test_the_command_line_prints_the_table_and_writes_it_with_its_environment(
    capsys, tmp_path, monkeypatch
):
    # A CPU without bfloat16 hardware, whatever this one has: bench.py holds its own reference to
    # the probe (imported by name), the report reads the module's.
    monkeypatch.setattr(bench, "cpu_has_bfloat16", lambda: False)
    monkeypatch.setattr(bench_report, "cpu_has_bfloat16", lambda: False)
    output = tmp_path / "bench.md"
    rows = bench.main(
        ["--sizes", "small", "--optimizers", "SGD,LBFGS,Muon", "--repeats", "2", "--warmup", "1"]
        + ["--no-fast", "--output", str(output)]
    )
    captured = capsys.readouterr()
    assert [r.optimizer for r in rows] == ["SGD", "LBFGS", "Muon"]
    assert "goal (ours <= 1.25x torch for-loop at small)" in captured.out
    assert "[1/3] SGD (small) ms: ours" in captured.err  # progress, row by row
    assert "bfloat16" in captured.err and "Newton-Schulz" in captured.err  # why Muon is slow
    written = output.read_text()
    for key in ("- cpu: ", "- torch: ", "- threads: 1", "- bandwidth: copy "):
        assert key in written
    assert bench_report.format_table(rows).splitlines()[0] in written


def test_the_streamed_roofline_moves_the_bytes_of_a_step_in_the_same_rounds():
    row = bench.time_optimizer(
        "Adam", "small", repeats=3, min_repeats=3, warmup=1, fast=False, stream_roofline=True
    )
    assert len(row.samples_ms["stream"]) == 3
    assert row.roofline_ms == pytest.approx(sorted(row.samples_ms["stream"])[1])
    stream = bench.StreamPass(50_890 * 28, torch.device("cpu"))
    # 16 bytes per number (three reads and one write), 28 bytes per Adam parameter
    assert [b.numel() for b in stream.buffers] == [50_890 * 28 // 16] * 3
    assert "stream" in bench_report.format_spread([row])
    assert "stream" not in bench_report.format_table([row]).splitlines()[0]

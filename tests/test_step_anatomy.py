"""The anatomy of a step counts what each implementation asks of the machine: the readable
Adam's seven operations per tensor and 72 bytes per parameter, torch's fused kernel's one
operation and 28 bytes, the least any Adam step can move."""

import torch
from _optim_checks import one_cpu_thread  # noqa: F401  (fixture: one CPU thread)

from optim_lessons import optimizers as ours
from optim_lessons.benchmarks.bench_models import clone_params, make_params
from optim_lessons.benchmarks.roofline import TRAFFIC
from optim_lessons.benchmarks.step_anatomy import (
    median_ms,
    plot_step_roofline,
    split_params,
    step_anatomy,
    time_steps,
)
from optim_lessons.fast.flat import FlatAdam


def stepped(build, params):
    optimizer = build(clone_params(params))
    optimizer.step()
    optimizer.step()
    return optimizer


def test_the_readable_adam_runs_seven_operations_per_tensor_and_moves_72_bytes():
    params = make_params("Adam", "small", "cpu")
    for build in (ours.Adam, lambda p: torch.optim.Adam(p, foreach=False)):
        anatomy = step_anatomy(stepped(build, params))
        assert anatomy.ops == 7 * len(params)
        assert anatomy.bytes_per_param == 72
        assert anatomy.n_params == sum(p.numel() for p in params)


def test_foreach_cuts_the_operations_not_the_bytes_and_fused_moves_the_minimum():
    params = make_params("Adam", "small", "cpu")
    foreach = step_anatomy(stepped(lambda p: torch.optim.Adam(p, foreach=True), params))
    fused = step_anatomy(stepped(lambda p: torch.optim.Adam(p, fused=True), params))
    assert foreach.ops == 7 and foreach.bytes_per_param == 72
    # The fused kernel may rescale the gradients (a gradient scaler); here it does not, so they
    # are read, not written.
    assert fused.ops == 1 and fused.bytes_per_param == TRAFFIC["Adam"].bytes_per_param() == 28


def test_the_flat_path_counts_its_out_argument_as_written_not_read():
    params = make_params("Adam", "small", "cpu")
    anatomy = step_anatomy(stepped(FlatAdam, params))
    assert anatomy.by_op["aten.sqrt.out"] == 1
    assert anatomy.ops == 7 and anatomy.bytes_per_param == 72


def test_views_and_steps_on_zero_dim_tensors_are_not_data_operations():
    p = torch.zeros(4, 3, requires_grad=True)
    p.grad = torch.ones(4, 3)
    optimizer = torch.optim.SGD([p], lr=0.1)  # one add_: read p and g, write p
    anatomy = step_anatomy(optimizer)
    assert anatomy.ops == 1
    assert anatomy.bytes_read == 2 * 48 and anatomy.bytes_written == 48


def test_split_params_and_time_steps():
    params = split_params(1000, 8)
    assert len(params) == 8 and all(p.shape == (125,) and p.grad.shape == (125,) for p in params)
    times = time_steps({"sgd": lambda ps: torch.optim.SGD(ps, lr=0.1)}, params, repeats=3)
    assert set(times) == {"sgd"} and times["sgd"] > 0
    assert median_ms(lambda: None, repeats=3) >= 0


def test_the_roofline_plot_labels_each_bar_with_its_percent():
    ax = plot_step_roofline({"a": 2.0, "b": 4.0}, 1.0, title="t")
    assert [text.get_text().strip() for text in ax.texts] == ["50%", "25%"]

"""The roofline: the bytes each optimizer's step moves, checked against the state it keeps."""

from __future__ import annotations

import pytest
import torch

from optim_lessons.benchmarks import bench, bench_models, roofline
from optim_lessons.training import optimizer_state_bytes


def test_adam_moves_twenty_eight_bytes_per_float32_parameter():
    adam = roofline.TRAFFIC["Adam"]
    assert adam.reads == ("param", "grad", "exp_avg", "exp_avg_sq")
    assert adam.writes == ("param", "exp_avg", "exp_avg_sq")
    assert adam.bytes_per_param() == 28
    assert adam.bytes_per_param(element_size=2) == 14  # bfloat16 parameters and states
    assert roofline.TRAFFIC["SGD"].bytes_per_param() == 20


def test_every_optimizer_but_lbfgs_has_a_traffic_entry():
    assert set(roofline.TRAFFIC) == (set(bench.torch_names()) - {"LBFGS"}) | {"Lion"}


@pytest.mark.parametrize("name", sorted(roofline.TRAFFIC))
def test_the_states_a_step_touches_are_the_state_the_optimizer_keeps(name):
    traffic = roofline.TRAFFIC[name]
    params = bench_models.clone_params(bench_models.make_params(name, "small", "cpu"))
    n_params = sum(p.numel() for p in params)
    optimizer = bench.our_class(name)(params, **bench.BENCH_KWARGS.get(name, {}))
    for _ in range(2):
        optimizer.step()
    for p in params:
        if name == "Adafactor" and p.ndim == 1:
            continue  # a vector keeps its full second moment: the note on the entry says so
        state = optimizer.state[p].items()
        parameter_sized = {
            key
            for key, value in state
            if isinstance(value, torch.Tensor) and value.shape == p.shape
        }
        assert parameter_sized == set(traffic.states)
    # The state's measured size agrees: 4 bytes per state tensor per parameter, give or take
    # the scalars and Adafactor's factored rows and columns (under 0.1 byte per parameter).
    measured = optimizer_state_bytes(optimizer) / n_params
    assert measured == pytest.approx(4 * len(traffic.states), abs=0.1)


def test_the_time_limit_is_the_bytes_over_the_bandwidth():
    limit = roofline.step_time_limit("Adam", 5_000_000, bandwidth=20e9)
    assert limit == pytest.approx(5_000_000 * 28 / 20e9)
    assert roofline.step_time_limit("LBFGS", 5_000_000, bandwidth=20e9) is None
    assert roofline.percent_of_roofline(2 * limit, limit) == pytest.approx(50.0)
    assert roofline.percent_of_roofline(1.0, None) is None


def test_the_measured_bandwidth_is_a_positive_speed_of_every_kind():
    bandwidth = roofline.measure_bandwidth("cpu", buffer_bytes=8 * 2**20, repeats=3)
    assert bandwidth.copy > 0 and bandwidth.in_place > 0 and bandwidth.streams > 0
    assert bandwidth.best == max(bandwidth.copy, bandwidth.in_place, bandwidth.streams)
    assert bandwidth.buffer_bytes == 8 * 2**20


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_cuda_bandwidth_is_measured_on_the_device():
    bandwidth = roofline.measure_bandwidth("cuda", buffer_bytes=64 * 2**20, repeats=3)
    assert bandwidth.device.startswith("cuda") and bandwidth.best > 0

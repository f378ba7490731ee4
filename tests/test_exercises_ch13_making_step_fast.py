"""The self-checks of the chapter "Making step() fast" accept the solutions and reject the
stubs and near misses."""

import torch
from _optim_checks import one_cpu_thread  # noqa: F401  (fixture: one CPU thread)

from optim_lessons.benchmarks.roofline import TRAFFIC
from optim_lessons.exercises import attempt
from optim_lessons.exercises.ch13_making_step_fast import (
    check_flat_sgd_step,
    check_minimal_bytes,
    check_tokens_for_share,
    optimizer_share,
)


def minimal_bytes(optimizer):
    p = optimizer.param_groups[0]["params"][0]
    states = [s for s in optimizer.state[p].values() if torch.is_tensor(s) and s.dim() > 0]
    return (2 + len(states) + 1 + len(states)) * p.element_size()


def test_the_byte_rule_passes_and_agrees_with_the_roofline_table():
    check_minimal_bytes(minimal_bytes)
    params = [torch.zeros(3, requires_grad=True)]
    params[0].grad = torch.ones(3)
    for name in ("Adam", "Adagrad", "RMSprop"):
        optimizer = getattr(torch.optim, name)(params)
        optimizer.step()
        assert minimal_bytes(optimizer) == TRAFFIC[name].bytes_per_param()


def test_the_byte_rule_rejects_the_stub_and_a_count_without_the_writes(capsys):
    assert not attempt(check_minimal_bytes, lambda optimizer: 0)
    assert "Not yet" in capsys.readouterr().out

    def reads_only(optimizer):
        p = optimizer.param_groups[0]["params"][0]
        states = [s for s in optimizer.state[p].values() if torch.is_tensor(s) and s.dim() > 0]
        return (2 + len(states)) * p.element_size()

    assert not attempt(check_minimal_bytes, reads_only)


def flat_sgd_step(param, grad, momentum_buffer, lr, momentum):
    momentum_buffer.mul_(momentum).add_(grad)
    param.add_(momentum_buffer, alpha=-lr)


def test_the_flat_sgd_step_passes_and_a_step_without_momentum_fails():
    assert attempt(check_flat_sgd_step, flat_sgd_step)

    def without_momentum(param, grad, momentum_buffer, lr, momentum):
        param.sub_(lr * grad)

    assert not attempt(check_flat_sgd_step, without_momentum)
    assert not attempt(check_flat_sgd_step, lambda p, g, b, lr, m: None)


def test_the_token_count_passes_at_the_formula_and_fails_elsewhere():
    tokens = 28 * 0.4 * 989e12 / (6 * 0.01 * 3.35e12)
    assert abs(optimizer_share(tokens, 0.4 * 989e12, 3.35e12, 28) - 0.01) < 1e-12
    assert attempt(check_tokens_for_share, tokens)
    assert not attempt(check_tokens_for_share, 0)
    assert not attempt(check_tokens_for_share, tokens * 1.1)
    assert not attempt(check_tokens_for_share, ...)

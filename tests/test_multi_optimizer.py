"""MultiOptimizer: several optimizers over disjoint parameters, stepped as one."""

import copy

import pytest
import torch
from _optim_checks import one_cpu_thread  # noqa: F401  (fixture: one CPU thread)

from optim_lessons.optimizers.multi import MultiOptimizer
from optim_lessons.training import optimizer_state_bytes


def two_layer_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))


def split_matrices(model):
    matrices = [p for p in model.parameters() if p.ndim == 2]
    others = [p for p in model.parameters() if p.ndim != 2]
    return matrices, others



def test_multi_optimizer_takes_the_same_steps_as_its_optimizers_stepped_by_hand():
    inputs, targets = torch.randn(16, 4), torch.randn(16, 2)
    combined_model, separate_model = two_layer_model(), two_layer_model()

    def loss_of(model):
        return ((model(inputs) - targets) ** 2).mean()

    matrices, others = split_matrices(combined_model)
    combined = MultiOptimizer(
        torch.optim.Muon(matrices, lr=0.02), torch.optim.AdamW(others, lr=0.01)
    )
    matrices, others = split_matrices(separate_model)
    muon, adamw = torch.optim.Muon(matrices, lr=0.02), torch.optim.AdamW(others, lr=0.01)
    for _ in range(5):

        def closure():
            combined.zero_grad()
            loss = loss_of(combined_model)
            loss.backward()
            return loss

        combined_loss = combined.step(closure)
        muon.zero_grad()
        adamw.zero_grad()
        separate_loss = loss_of(separate_model)
        separate_loss.backward()
        muon.step()
        adamw.step()
        assert combined_loss.item() == separate_loss.item()
    for a, b in zip(combined_model.parameters(), separate_model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_multi_optimizer_zero_grad_clears_every_parameter():
    model = two_layer_model()
    matrices, others = split_matrices(model)
    combined = MultiOptimizer(torch.optim.SGD(matrices), torch.optim.Adam(others))
    model(torch.randn(3, 4)).sum().backward()
    combined.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_a_scheduler_on_a_multi_optimizer_changes_each_optimizers_learning_rate():
    model = two_layer_model()
    matrices, others = split_matrices(model)
    muon, adamw = torch.optim.Muon(matrices, lr=0.02), torch.optim.AdamW(others, lr=0.001)
    combined = MultiOptimizer(muon, adamw)
    scheduler = torch.optim.lr_scheduler.StepLR(combined, step_size=1, gamma=0.5)
    model(torch.randn(3, 4)).sum().backward()
    combined.step()
    scheduler.step()
    assert muon.param_groups[0]["lr"] == pytest.approx(0.01)
    assert adamw.param_groups[0]["lr"] == pytest.approx(0.0005)


def test_multi_optimizer_state_counts_the_bytes_of_every_optimizer():
    model = two_layer_model()
    matrices, others = split_matrices(model)
    muon, adam = torch.optim.Muon(matrices), torch.optim.Adam(others)
    combined = MultiOptimizer(muon, adam)
    model(torch.randn(3, 4)).sum().backward()
    combined.step()
    expected = optimizer_state_bytes(muon) + optimizer_state_bytes(adam)
    assert optimizer_state_bytes(combined) == expected > 0
    assert len(combined.state) == 4 and len(muon.state) == len(adam.state) == 2


def test_multi_optimizer_state_dict_round_trips():
    model = two_layer_model()
    matrices, others = split_matrices(model)
    combined = MultiOptimizer(torch.optim.Muon(matrices), torch.optim.Adam(others))
    model(torch.randn(3, 4)).sum().backward()
    combined.step()
    saved = copy.deepcopy(combined.state_dict())
    matrices, others = split_matrices(model)
    fresh = MultiOptimizer(torch.optim.Muon(matrices), torch.optim.Adam(others))
    fresh.load_state_dict(saved)
    assert fresh.state_dict()["optimizers"][1]["state"][0]["exp_avg"].equal(
        saved["optimizers"][1]["state"][0]["exp_avg"]
    )
    with pytest.raises(ValueError, match="holds 2 optimizers"):
        MultiOptimizer(torch.optim.Adam(model.parameters())).load_state_dict(saved)


def test_multi_optimizer_refuses_a_parameter_that_two_optimizers_share():
    model = two_layer_model()
    with pytest.raises(ValueError, match="more than one parameter group"):
        MultiOptimizer(torch.optim.SGD(model.parameters()), torch.optim.Adam(model.parameters()))
    with pytest.raises(ValueError, match="at least one"):
        MultiOptimizer()
    with pytest.raises(TypeError, match="not a torch.optim.Optimizer"):
        MultiOptimizer(object())

"""optim_lessons.param_groups: weight decay on matrices only, groups built from names."""

from __future__ import annotations

import torch
from torch import nn

from optim_lessons.models import Net
from optim_lessons.optimizers import AdamW as BookAdamW
from optim_lessons.param_groups import check_decay_groups, weight_decay_groups


def normalized_mlp() -> nn.Module:
    return nn.Sequential(
        nn.Flatten(), nn.Linear(784, 64), nn.LayerNorm(64), nn.ReLU(), nn.Linear(64, 10)
    )


def test_weight_decay_groups_decay_matrices_and_spare_biases_and_norm_parameters():
    groups = weight_decay_groups(normalized_mlp(), 0.05)
    optimizer = torch.optim.AdamW(groups, lr=1e-3)
    decayed, spared = optimizer.param_groups
    assert decayed["weight_decay"] == 0.05 and spared["weight_decay"] == 0.0
    assert decayed["param_names"] == ["1.weight", "4.weight"]
    assert spared["param_names"] == ["1.bias", "2.weight", "2.bias", "4.bias"]


def test_weight_decay_groups_leave_out_frozen_parameters():
    model = Net()
    model.fc1.requires_grad_(False)
    groups = weight_decay_groups(model, 0.1)
    names = [name for group in groups for name, _ in group["params"]]
    assert names == ["fc2.weight", "fc2.bias"]


def test_a_step_with_zero_gradients_shrinks_only_the_decayed_group():
    model = normalized_mlp()
    optimizer = torch.optim.AdamW(weight_decay_groups(model, 0.1), lr=0.01)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    for parameter in model.parameters():
        parameter.grad = torch.zeros_like(parameter)
    optimizer.step()
    for name, parameter in model.named_parameters():
        if parameter.ndim >= 2:
            assert torch.equal(parameter, before[name] * (1 - 0.01 * 0.1)), name
        else:
            assert torch.equal(parameter, before[name]), name


def test_the_books_optimizers_accept_named_groups():
    optimizer = BookAdamW(weight_decay_groups(Net(), 0.05), lr=1e-3)
    assert optimizer.state_dict()["param_groups"][1]["param_names"] == ["fc1.bias", "fc2.bias"]


def test_check_decay_groups_accepts_the_rule_and_explains_each_mistake(capsys):
    model = normalized_mlp()
    assert check_decay_groups(torch.optim.AdamW(weight_decay_groups(model, 0.05)), model, 0.05)
    assert "Correct" in capsys.readouterr().out

    everything_decayed = torch.optim.AdamW(model.parameters(), weight_decay=0.05)
    assert not check_decay_groups(everything_decayed, model, 0.05)
    out = capsys.readouterr().out
    assert "2.weight (a bias or norm parameter, shape (64,)) has weight_decay=0.05" in out

    weights_only = torch.optim.AdamW([model[1].weight, model[4].weight], weight_decay=0.05)
    assert not check_decay_groups(weights_only, model, 0.05)
    assert "1.bias is in no group" in capsys.readouterr().out


def test_check_decay_groups_says_an_optimizer_without_weight_decay_cannot_decay(capsys):
    model = Net()
    rprop = torch.optim.Rprop(model.parameters())
    assert check_decay_groups(rprop, model, 0.05) is False
    assert capsys.readouterr().out == (
        "Not possible: Rprop takes no weight_decay, so it never decays any parameter. Use an "
        "optimizer that has the option (SGD, Adam, AdamW, ...), or add the penalty to the loss "
        "yourself.\n"
    )
    assert check_decay_groups(rprop, model, 0.0) is True  # no decay wanted: none given
    assert "Correct: 4 parameters in 1 groups" in capsys.readouterr().out

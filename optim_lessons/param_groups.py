"""Parameter groups built from a model's names: weight decay on weights only.

Weight decay pulls every parameter it touches towards zero. That suits the weight matrices of
linear and convolution layers, whose size is what the penalty is meant to limit. It does not
suit biases (an offset has no reason to be near zero) or the scale and shift of a normalization
layer (a LayerNorm scale pulled towards zero shrinks everything that follows it). The usual
rule, used by BERT, GPT-2 and most recipes since, reads the parameter's shape: a tensor with
fewer than two dimensions is a bias or a normalization parameter, and gets no decay.

:func:`weight_decay_groups` builds the two groups from ``model.named_parameters()``;
:func:`check_decay_groups` checks an optimizer built by hand against the same rule.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor, nn
from torch.optim import Optimizer


def is_decayed(name: str, parameter: Tensor) -> bool:
    """The book's rule: decay matrices and higher (``ndim >= 2``), not biases or norm parameters."""
    return parameter.ndim >= 2


def weight_decay_groups(
    model: nn.Module,
    weight_decay: float,
    *,
    rule: Callable[[str, Tensor], bool] = is_decayed,
) -> list[dict[str, Any]]:
    """Two param groups for ``model``: ``rule(name, parameter)`` true gets ``weight_decay``, the
    rest 0.

    Frozen parameters (``requires_grad=False``) are left out. Each group lists its parameters as
    ``(name, parameter)`` pairs: torch.optim then keeps the names under ``group["param_names"]``
    and saves them in the optimizer's state_dict. Pass the result straight to an optimizer:
    ``torch.optim.AdamW(weight_decay_groups(model, 0.05), lr=1e-3)``.
    """
    decay: dict[str, Tensor] = {}
    no_decay: dict[str, Tensor] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        (decay if rule(name, parameter) else no_decay)[name] = parameter
    groups = []
    for members, decay_value in ((decay, weight_decay), (no_decay, 0.0)):
        if members:
            groups.append({"params": list(members.items()), "weight_decay": decay_value})
    return groups


def check_decay_groups(optimizer: Optimizer, model: nn.Module, weight_decay: float) -> bool:
    """Does ``optimizer`` decay exactly the matrices of ``model``? Print why not.

    Checks that every trainable parameter is in exactly one group, that each matrix (``ndim >=
    2``) sits in a group with ``weight_decay`` and each bias or norm parameter in a group with
    0. Returns the verdict. An optimizer without a ``weight_decay`` option (Rprop, LBFGS,
    SparseAdam) decays nothing, which is only right for ``weight_decay=0``.
    """
    lacking = [g for g in optimizer.param_groups if "weight_decay" not in g]
    if lacking and weight_decay != 0:
        name = type(optimizer).__name__
        print(
            f"Not possible: {name} takes no weight_decay, so it never decays any parameter. Use "
            "an optimizer that has the option (SGD, Adam, AdamW, ...), or add the penalty "
            "to the loss yourself."
        )
        return False
    group_of: dict[int, int] = {}
    for index, group in enumerate(optimizer.param_groups):
        for parameter in group["params"]:
            group_of[id(parameter)] = index
    problems = []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        if id(parameter) not in group_of:
            problems.append(f"{name} is in no group: the optimizer will never update it")
            continue
        given = optimizer.param_groups[group_of[id(parameter)]].get("weight_decay", 0.0)
        wanted = weight_decay if is_decayed(name, parameter) else 0.0
        if given != wanted:
            kind = "a matrix" if is_decayed(name, parameter) else "a bias or norm parameter"
            shape = tuple(parameter.shape)
            problems.append(
                f"{name} ({kind}, shape {shape}) has weight_decay={given}, expected {wanted}"
            )
    if problems:
        print("Not yet:")
        for problem in problems:
            print("  -", problem)
        return False
    counts = [len(group["params"]) for group in optimizer.param_groups]
    print(f"Correct: {sum(counts)} parameters in {len(counts)} groups, decay only on the matrices.")
    return True

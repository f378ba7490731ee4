"""The reference optimizers of "Write your own optimizer" and the self-checks of its exercises:
each check accepts a right answer and rejects the wrong ones a reader is likely to write."""

import math

import pytest
import torch
from _optim_checks import one_cpu_thread  # noqa: F401  (fixture: one CPU thread)

from optim_lessons.exercises.ch12_write_your_own import (
    AdaBelief,
    Signum,
    check_adabelief,
    check_lion_maximize,
    check_signum,
)
from optim_lessons.optimizers import Lion
from optim_lessons.optimizers._common import evaluate_closure
from optim_lessons.parity import TOLERANCES, compare_trajectories

# ----------------------------------------------------------------------------- the references


@pytest.mark.parametrize("momentum", [0.0, 0.5, 0.9])
def test_signum_is_lion_with_equal_betas(momentum):
    same = compare_trajectories(
        lambda params, **kw: Signum(params, momentum=momentum, **kw),
        lambda params, **kw: Lion(params, betas=(momentum, momentum), **kw),
        {"lr": 1e-2, "weight_decay": 0.1},
        steps=30,
    )
    assert same.max_abs_diff == 0.0


def test_signum_without_momentum_steps_by_the_sign_of_the_gradient():
    param = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    optimizer = Signum([param], lr=0.1, momentum=0.0)
    for grad in ([1.0, -2.0, 0.0, 3.0], [-1.0, -1.0, 5.0, 1e-9]):
        param.grad = torch.tensor(grad, dtype=torch.float64)
        optimizer.step()
    torch.testing.assert_close(
        param.detach(), torch.tensor([0.0, 0.2, -0.1, -0.2], dtype=torch.float64)
    )


def test_signum_momentum_starts_at_zero():
    param = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    optimizer = Signum([param], lr=0.1, momentum=0.9)
    param.grad = torch.tensor([2.0, -4.0], dtype=torch.float64)
    optimizer.step()
    torch.testing.assert_close(
        optimizer.state[param]["momentum_buffer"], torch.tensor([0.2, -0.4], dtype=torch.float64)
    )


def test_adabelief_first_step_by_hand():
    # m_1 = (1 - b1) g, s_1 = (1 - b2)(b1 g)^2 + eps; the bias-corrected step is
    # lr * g / (sqrt(b1^2 g^2 + eps / (1 - b2)) + eps).
    lr, beta1, beta2, eps = 0.1, 0.9, 0.999, 1e-3
    grad = torch.tensor([2.0, -0.5], dtype=torch.float64)
    param = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    optimizer = AdaBelief([param], lr=lr, betas=(beta1, beta2), eps=eps)
    param.grad = grad.clone()
    optimizer.step()
    expected = [
        -lr * g / (math.sqrt(beta1**2 * g**2 + eps / (1 - beta2)) + eps) for g in grad.tolist()
    ]
    torch.testing.assert_close(param.detach(), torch.tensor(expected, dtype=torch.float64))
    state = optimizer.state[param]
    assert sorted(state) == ["exp_avg", "exp_avg_var", "step"]
    assert float(state["step"]) == 1.0


def test_adabelief_steps_further_than_adam_the_longer_the_gradient_stays_the_same():
    # A constant gradient: Adam's step stays at lr; AdaBelief's grows, because the spread
    # g - m of the gradient around its momentum shrinks towards zero.
    param = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    adam_param = param.detach().clone().requires_grad_(True)
    belief, adam = AdaBelief([param], lr=1e-3, eps=1e-8), torch.optim.Adam([adam_param], lr=1e-3)
    ratios = []
    for _ in range(200):
        before, adam_before = param.item(), adam_param.item()
        param.grad = torch.ones(1, dtype=torch.float64)
        adam_param.grad = torch.ones(1, dtype=torch.float64)
        belief.step()
        adam.step()
        assert adam_before - adam_param.item() == pytest.approx(1e-3, rel=1e-6)
        ratios.append((before - param.item()) / (adam_before - adam_param.item()))
    assert all(later > earlier for earlier, later in zip(ratios[1:], ratios[2:]))
    assert ratios[-1] > 5


@pytest.mark.parametrize(
    "cls, kwargs, message",
    [
        (Signum, {"lr": -1.0}, "Invalid learning rate: -1.0"),
        (Signum, {"momentum": 1.0}, "Invalid momentum value: 1.0"),
        (Signum, {"weight_decay": -0.1}, "Invalid weight_decay value: -0.1"),
        (AdaBelief, {"eps": -1.0}, "Invalid epsilon value: -1.0"),
        (AdaBelief, {"betas": (0.9, 1.0)}, "Invalid beta parameter at index 1: 1.0"),
    ],
)
def test_references_word_their_errors_like_torch_optim(cls, kwargs, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        cls([torch.zeros(2, requires_grad=True)], **kwargs)


# ------------------------------------------------------------------ reader's answers: Signum


class ReaderSignum(torch.optim.Optimizer):
    """A right answer, written independently of the reference (lerp and torch.sign)."""

    def __init__(self, params, lr=1e-3, momentum=0.9, weight_decay=0.0):
        if lr < 0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0 <= momentum < 1:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))

    # How the step is written; the wrong answers below override it.
    def update(self, p, buffer, group):
        p.mul_(1 - group["lr"] * group["weight_decay"])
        buffer.lerp_(p.grad, 1 - group["momentum"])
        p.sub_(group["lr"] * torch.sign(buffer))

    @torch.no_grad()
    def step(self, closure=None):
        loss = evaluate_closure(closure)
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    state = self.state[p]
                    if "momentum_buffer" not in state:
                        state["momentum_buffer"] = torch.zeros_like(p)
                    self.update(p, state["momentum_buffer"], group)
        return loss


class SignOfGradient(ReaderSignum):
    def update(self, p, buffer, group):
        p.mul_(1 - group["lr"] * group["weight_decay"])
        buffer.lerp_(p.grad, 1 - group["momentum"])
        p.sub_(group["lr"] * torch.sign(p.grad))


class SignOfOldMomentum(ReaderSignum):
    def update(self, p, buffer, group):
        p.mul_(1 - group["lr"] * group["weight_decay"])
        p.sub_(group["lr"] * torch.sign(buffer))
        buffer.lerp_(p.grad, 1 - group["momentum"])


class CoupledWeightDecay(ReaderSignum):
    def update(self, p, buffer, group):
        buffer.lerp_(p.grad + group["weight_decay"] * p, 1 - group["momentum"])
        p.sub_(group["lr"] * torch.sign(buffer))


class StartsFromTheGradient(ReaderSignum):
    def update(self, p, buffer, group):
        p.mul_(1 - group["lr"] * group["weight_decay"])
        if not buffer.any():
            buffer.copy_(p.grad)  # like torch.optim.SGD's first step
        else:
            buffer.lerp_(p.grad, 1 - group["momentum"])
        p.sub_(group["lr"] * torch.sign(buffer))


class CachesTheLearningRate(ReaderSignum):
    """Reads each group's lr once, in __init__: right until a scheduler changes group["lr"]."""

    def __init__(self, params, lr=1e-3, momentum=0.9, weight_decay=0.0):
        super().__init__(params, lr, momentum, weight_decay)
        self.initial_lrs = [group["lr"] for group in self.param_groups]

    def update(self, p, buffer, group):
        index = next(i for i, g in enumerate(self.param_groups) if g is group)
        lr = self.initial_lrs[index]
        p.mul_(1 - lr * group["weight_decay"])
        buffer.lerp_(p.grad, 1 - group["momentum"])
        p.sub_(lr * torch.sign(buffer))


class AcceptsMomentumOne(ReaderSignum):
    def __init__(self, params, lr=1e-3, momentum=0.9, weight_decay=0.0):
        if lr < 0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0:  # forgets that momentum 1 would never move
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        torch.optim.Optimizer.__init__(
            self, params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay)
        )


class OtherStateKey(ReaderSignum):
    @torch.no_grad()
    def step(self, closure=None):
        loss = evaluate_closure(closure)
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    state = self.state[p]
                    if "momentum" not in state:
                        state["momentum"] = torch.zeros_like(p)
                    self.update(p, state["momentum"], group)
        return loss


class ForgetsTheClosureLoss(ReaderSignum):
    @torch.no_grad()
    def step(self, closure=None):
        super().step(closure)


def test_check_signum_accepts_the_reference_and_an_independent_answer(capsys):
    check_signum(Signum)
    check_signum(ReaderSignum)
    assert capsys.readouterr().out.count("passes") == 2


@pytest.mark.parametrize(
    "wrong, complaint",
    [
        (SignOfGradient, "leaves Signum's"),
        (SignOfOldMomentum, "leaves Signum's"),
        (CoupledWeightDecay, "leaves Signum's"),
        (StartsFromTheGradient, "leaves Signum's"),
        (CachesTheLearningRate, "OneCycleLR"),
        (AcceptsMomentumOne, "Invalid momentum value"),
        (OtherStateKey, "state keys"),
        (ForgetsTheClosureLoss, "closure"),
    ],
)
def test_check_signum_rejects_wrong_answers(wrong, complaint):
    with pytest.raises(AssertionError, match=complaint):
        check_signum(wrong)


# --------------------------------------------------------------- reader's answers: AdaBelief


class ReaderAdaBelief(torch.optim.Optimizer):
    """A right answer, written independently of the reference (int step, lerp, explicit hats)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-16, weight_decay=0.0):
        if lr < 0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if eps < 0:
            raise ValueError(f"Invalid epsilon value: {eps}")
        for index, beta in enumerate(betas):
            if not 0 <= beta < 1:
                raise ValueError(f"Invalid beta parameter at index {index}: {beta}")
        if weight_decay < 0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    def denominator(self, s, step, beta2, eps):
        s.add_(eps)
        return (s / (1 - beta2**step)).sqrt() + eps

    def spread(self, grad, m_new, m_old):
        return grad - m_new

    @torch.no_grad()
    def step(self, closure=None):
        loss = evaluate_closure(closure)
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state.update(
                        step=0, exp_avg=torch.zeros_like(p), exp_avg_var=torch.zeros_like(p)
                    )
                state["step"] += 1
                step, m, s = state["step"], state["exp_avg"], state["exp_avg_var"]
                p.mul_(1 - group["lr"] * group["weight_decay"])
                m_old = m.clone()
                m.lerp_(p.grad, 1 - beta1)
                d = self.spread(p.grad, m, m_old)
                s.mul_(beta2).add_((1 - beta2) * d * d)
                m_hat = m / (1 - beta1**step)
                p.sub_(group["lr"] * m_hat / self.denominator(s, step, beta2, group["eps"]))
        return loss


class AdamInDisguise(ReaderAdaBelief):
    def spread(self, grad, m_new, m_old):
        return grad


class SpreadAroundTheOldMomentum(ReaderAdaBelief):
    def spread(self, grad, m_new, m_old):
        return grad - m_old


class EpsilonOnlyBesideTheRoot(ReaderAdaBelief):
    def denominator(self, s, step, beta2, eps):
        return (s / (1 - beta2**step)).sqrt() + eps


class NoBiasCorrectionOfS(ReaderAdaBelief):
    def denominator(self, s, step, beta2, eps):
        s.add_(eps)
        return s.sqrt() + eps


def test_check_adabelief_accepts_the_reference_and_an_independent_answer(capsys):
    check_adabelief(AdaBelief)
    check_adabelief(ReaderAdaBelief)
    assert capsys.readouterr().out.count("passes") == 2


@pytest.mark.parametrize(
    "wrong",
    [AdamInDisguise, SpreadAroundTheOldMomentum, EpsilonOnlyBesideTheRoot, NoBiasCorrectionOfS],
)
def test_check_adabelief_rejects_wrong_answers(wrong):
    with pytest.raises(AssertionError, match="leaves AdaBelief's"):
        check_adabelief(wrong)


def test_epsilon_only_beside_the_root_fails_only_where_eps_is_large():
    # With the default eps = 1e-16 the two placements cannot be told apart; the check needs
    # its eps = 1e-3 case to catch the mistake.
    tiny = compare_trajectories(EpsilonOnlyBesideTheRoot, AdaBelief, {"lr": 1e-2}, steps=25)
    large = compare_trajectories(
        EpsilonOnlyBesideTheRoot, AdaBelief, {"lr": 1e-2, "eps": 1e-3}, steps=25
    )
    _, atol = TOLERANCES[torch.float64]
    assert tiny.max_abs_diff < atol
    assert large.max_abs_diff > 1e-4


# ----------------------------------------------------------- reader's answers: Lion, maximize


class ReaderMaximizeLion(Lion):
    def __init__(
        self,
        params,
        lr=1e-4,
        betas=(0.9, 0.99),
        weight_decay=0.0,
        *,
        decoupled_weight_decay=False,
        maximize=False,
    ):
        super().__init__(
            params, lr, betas, weight_decay, decoupled_weight_decay=decoupled_weight_decay
        )
        for group in self.param_groups:
            group.setdefault("maximize", maximize)
        self.defaults["maximize"] = maximize

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("maximize", False)

    def direction(self, p, group):
        return -p.grad if group["maximize"] else p.grad

    @torch.no_grad()
    def step(self, closure=None):
        loss = evaluate_closure(closure)
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = self.direction(p, group)
                state = self.state[p]
                if not state:
                    state["exp_avg"] = torch.zeros_like(p)
                p.mul_(1 - group["lr"] * group["weight_decay"])
                blend = state["exp_avg"] * beta1 + grad * (1 - beta1)
                p.add_(blend.sign(), alpha=-group["lr"])
                state["exp_avg"].mul_(beta2).add_(grad, alpha=1 - beta2)
        return loss


class IgnoresMaximize(ReaderMaximizeLion):
    def direction(self, p, group):
        return p.grad


class NegatesTheGradientInPlace(ReaderMaximizeLion):
    def direction(self, p, group):
        return p.grad.neg_() if group["maximize"] else p.grad


class NoSetstate(ReaderMaximizeLion):
    def __setstate__(self, state):
        torch.optim.Optimizer.__setstate__(self, state)


class MaximizeOnTheObject(ReaderMaximizeLion):
    def __init__(
        self,
        params,
        lr=1e-4,
        betas=(0.9, 0.99),
        weight_decay=0.0,
        *,
        decoupled_weight_decay=False,
        maximize=False,
    ):
        Lion.__init__(
            self, params, lr, betas, weight_decay, decoupled_weight_decay=decoupled_weight_decay
        )
        self.maximize = maximize

    def direction(self, p, group):
        return -p.grad if self.maximize else p.grad


def test_check_lion_maximize_accepts_a_right_answer(capsys):
    check_lion_maximize(ReaderMaximizeLion)
    assert "passes" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, complaint",
    [
        (IgnoresMaximize, "maximize=True"),
        (NegatesTheGradientInPlace, "changed p.grad"),
        (NoSetstate, "__setstate__"),
        (MaximizeOnTheObject, "stored in the param groups"),
    ],
)
def test_check_lion_maximize_rejects_wrong_answers(wrong, complaint):
    with pytest.raises(AssertionError, match=complaint):
        check_lion_maximize(wrong)

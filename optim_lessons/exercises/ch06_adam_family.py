r"""The papers' forms of Adam and AdamW, the Adam family's schedules, and the chapter's self-checks.

``torch.optim`` follows the papers of the Adam family closely but not everywhere. This module
holds the few pieces the chapter needs to put a paper's version next to torch's:

- :func:`eps_hat_adam_update`: Kingma and Ba's faster ordering of Adam's step, with
  $\hat\epsilon$ added to $\sqrt{v_t}$ *before* the bias correction (torch adds $\epsilon$ to
  $\sqrt{\hat v_t}$ after it);
- :func:`paper_adamw_update`: Loshchilov and Hutter's AdamW, whose decay is multiplied by the
  schedule multiplier $\eta_t$ alone (torch multiplies it by the whole learning rate);
- :func:`nadam_momentum`, :func:`radam_rho` and :func:`radam_rectification`: the scalar
  schedules inside NAdam and RAdam, to plot them;
- :func:`run_online_counterexample`: Reddi, Kale and Kumar's online problem on which Adam
  converges to the worst point and AMSGrad does not.

The ``check_*`` functions are the self-checks of the chapter's exercises: each raises an
``AssertionError`` that says what is wrong, or prints what was verified.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "CounterexampleRun",
    "adamw_gap_to_paper",
    "check_eps_schedule",
    "check_nadam_momentum_decay",
    "check_radam_momentum_steps",
    "check_torch_weight_decay",
    "check_uncorrected_peak",
    "eps_hat_adam_update",
    "nadam_momentum",
    "online_gradient",
    "paper_adamw_update",
    "radam_rectification",
    "radam_rho",
    "run_online_counterexample",
]


def eps_hat_adam_update(
    param: Tensor,
    grad: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    *,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    eps_hat: float,
) -> None:
    r"""One Adam step in the paper's faster ordering (Kingma and Ba, end of Section 2), in place.

    $$
    \alpha_t = \alpha \frac{\sqrt{1 - \beta_2^t}}{1 - \beta_1^t}, \qquad
    \theta_t = \theta_{t-1} - \alpha_t \frac{m_t}{\sqrt{v_t} + \hat\epsilon} .
    $$

    Without $\hat\epsilon$ this is Algorithm 1 exactly. With it, it is Algorithm 1 with
    $\epsilon = \hat\epsilon / \sqrt{1 - \beta_2^t}$, a constant that starts
    $1/\sqrt{1-\beta_2}$ times larger and shrinks towards $\hat\epsilon$.
    """
    exp_avg.lerp_(grad, 1 - beta1)  # m_t <- beta1 m_{t-1} + (1 - beta1) g_t
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)  # v_t <- beta2 v + (1-beta2) g^2
    step_size = lr * math.sqrt(1 - beta2**step) / (1 - beta1**step)  # alpha_t
    param.addcdiv_(exp_avg, exp_avg_sq.sqrt().add_(eps_hat), value=-step_size)


def paper_adamw_update(
    param: Tensor,
    grad: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    *,
    step: int,
    alpha: float,
    schedule_multiplier: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
) -> None:
    r"""One step of AdamW as Loshchilov and Hutter write it (Algorithm 2), in place.

    $$
    \theta_t = \theta_{t-1} - \eta_t \left( \alpha \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}
        + \lambda \theta_{t-1} \right)
    $$

    The base learning rate $\alpha$ scales only the Adam step; the decay $\lambda$ is scaled by
    the schedule multiplier $\eta_t$ alone. ``torch.optim.AdamW`` with ``lr`` $= \alpha\eta_t$
    decays by ``lr * weight_decay``, so it takes this step when ``weight_decay`` is
    $\lambda / \alpha$.
    """
    exp_avg.lerp_(grad, 1 - beta1)  # m_t <- beta1 m_{t-1} + (1 - beta1) g_t
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)  # v_t <- beta2 v + (1-beta2) g^2
    corrected_avg = exp_avg / (1 - beta1**step)  # m_hat_t
    denominator = (exp_avg_sq / (1 - beta2**step)).sqrt().add_(eps)  # sqrt(v_hat_t) + eps
    adam_direction = alpha * corrected_avg / denominator
    param.sub_(schedule_multiplier * (adam_direction + weight_decay * param))


def nadam_momentum(step: int | Tensor, beta1: float = 0.9, momentum_decay: float = 4e-3) -> Any:
    r"""NAdam's momentum schedule $\mu_t = \beta_1 (1 - \tfrac12 \, 0.96^{t\psi})$.

    ``step`` may be an int (returns a float) or a tensor of steps (returns a tensor).
    """
    return beta1 * (1.0 - 0.5 * 0.96 ** (step * momentum_decay))


def radam_rho(step: int | Tensor, beta2: float = 0.999) -> Any:
    r"""RAdam's $\rho_t = \rho_\infty - 2 t \beta_2^t / (1 - \beta_2^t)$, with
    $\rho_\infty = 2/(1 - \beta_2) - 1$: the length of the simple moving average that $v_t$
    stands for after ``step`` steps."""
    rho_infinity = 2 / (1 - beta2) - 1
    return rho_infinity - 2 * step * beta2**step / (1 - beta2**step)


def radam_rectification(step: int | Tensor, beta2: float = 0.999) -> Any:
    r"""RAdam's rectification $r_t$, defined where $\rho_t > 4$ (NaN elsewhere for tensors):

    $$
    r_t = \sqrt{\frac{(\rho_t - 4)(\rho_t - 2)\rho_\infty}
                     {(\rho_\infty - 4)(\rho_\infty - 2)\rho_t}} .
    $$
    """
    rho_infinity = 2 / (1 - beta2) - 1
    rho = radam_rho(step, beta2)
    ratio = (rho - 4) * (rho - 2) * rho_infinity / ((rho_infinity - 4) * (rho_infinity - 2) * rho)
    if isinstance(ratio, Tensor):
        return torch.where(rho > 4, ratio.clamp(min=0).sqrt(), torch.nan)
    return math.sqrt(ratio) if rho > 4 else math.nan


# ------------------------------------------------------------- Reddi et al.'s online counterexample


def online_gradient(step: int, period: int = 101, large: float = 1010.0, small: float = -10.0):
    r"""The gradient of Reddi et al.'s online loss at step ``step`` (counting from 1).

    The loss is $f_t(x) = 1010\,x$ once every 101 steps ($t \bmod 101 = 1$) and $-10\,x$ at the
    other steps, on $x \in [-1, 1]$. On average the slope is $(1010 - 100 \cdot 10)/101 > 0$, so
    the best fixed point is $x = -1$.
    """
    return large if step % period == 1 else small


@dataclass
class CounterexampleRun:
    """What :func:`run_online_counterexample` recorded, after every step."""

    #: $x_t$, shape ``(steps,)``.
    points: Tensor
    #: The second moment the step divided by: ``exp_avg_sq``, or ``max_exp_avg_sq`` with amsgrad.
    second_moments: Tensor


def run_online_counterexample(
    optimizer_cls: Callable[..., torch.optim.Optimizer],
    steps: int = 5000,
    *,
    lr: float = 1.0,
    period: int = 101,
    large: float = 1010.0,
    small: float = -10.0,
    **hyperparameters: Any,
) -> CounterexampleRun:
    r"""Run an Adam-like optimizer on Reddi et al.'s online problem (their Section 5, Figure 1).

    $x$ starts at 0, every step sees :func:`online_gradient`, the learning rate is
    $\alpha_t = $ ``lr`` $/\sqrt{t}$ (set before each step), and $x$ is projected back onto
    $[-1, 1]$ after each step. ``hyperparameters`` go to the optimizer (``betas``,
    ``amsgrad``, ...).
    """
    x = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = optimizer_cls([x], lr=lr, **hyperparameters)
    amsgrad = optimizer.param_groups[0].get("amsgrad", False)
    points = torch.empty(steps, dtype=torch.float64)
    moments = torch.empty(steps, dtype=torch.float64)
    for step in range(1, steps + 1):
        optimizer.param_groups[0]["lr"] = lr / math.sqrt(step)  # alpha_t = alpha / sqrt(t)
        x.grad = torch.full_like(x, online_gradient(step, period, large, small))
        optimizer.step()
        with torch.no_grad():
            x.clamp_(-1.0, 1.0)  # the projection onto the feasible set [-1, 1]
        state = optimizer.state[x]
        points[step - 1] = x.item()
        moments[step - 1] = state["max_exp_avg_sq" if amsgrad else "exp_avg_sq"].item()
    return CounterexampleRun(points, moments)


# --------------------------------------------------------------------------- exercise self-checks


def check_uncorrected_peak(
    step: int, ratio: float, beta1: float = 0.9, beta2: float = 0.999
) -> None:
    r"""Exercise: the largest step of Adam *without* bias correction on a constant gradient.

    Without correction the step is $\gamma\, m_t/\sqrt{v_t}$ (no $\epsilon$), that is
    $\gamma (1 - \beta_1^t)/\sqrt{1 - \beta_2^t}$ for a constant gradient. Pass the ``step`` $t$
    at which it is largest and the ``ratio`` step / $\gamma$ there (within 0.5%). The check
    also runs the uncorrected moments on a constant gradient to confirm the formula.
    """
    grad = torch.tensor([0.5], dtype=torch.float64)
    exp_avg, exp_avg_sq = torch.zeros_like(grad), torch.zeros_like(grad)
    ratios = []
    for _ in range(20_000):
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        ratios.append((exp_avg / exp_avg_sq.sqrt()).item())
    best = max(range(len(ratios)), key=ratios.__getitem__)
    peak_step, peak_ratio = best + 1, ratios[best]
    formula = (1 - beta1**peak_step) / math.sqrt(1 - beta2**peak_step)
    assert abs(formula - peak_ratio) < 1e-9, "the simulated moments disagree with the formula"
    assert step == peak_step, f"the uncorrected step is not largest at step {step}"
    assert abs(ratio - peak_ratio) <= 5e-3 * peak_ratio, (
        f"at step {step} the uncorrected step is not {ratio} times the learning rate"
    )
    print(
        f"Right: without bias correction, step {peak_step} is {peak_ratio:.3f} times the "
        f"learning rate (with it: exactly 1)."
    )


def check_eps_schedule(
    eps_at: Callable[[int], float],
    *,
    eps_hat: float = 1e-3,
    beta1: float = 0.9,
    beta2: float = 0.999,
    lr: float = 0.01,
    steps: int = 200,
) -> None:
    r"""Exercise: make ``torch.optim.Adam`` take the paper's $\hat\epsilon$ steps.

    ``eps_at(t)`` is written into the optimizer's ``eps`` before step ``t`` (counting from 1).
    The check runs :func:`eps_hat_adam_update` with ``eps_hat`` and ``torch.optim.Adam`` with
    that schedule on the same quadratic, whose gradients are small enough for $\epsilon$ to
    matter, and asserts that the two paths agree.
    """
    start = torch.tensor([0.02, -0.005, 0.001], dtype=torch.float64)
    scales = torch.tensor([1.0, 0.3, 0.1], dtype=torch.float64)

    def gradient(point: Tensor) -> Tensor:
        return scales * point  # f = sum(scales * point^2) / 2

    ours = start.clone()
    exp_avg, exp_avg_sq = torch.zeros_like(ours), torch.zeros_like(ours)
    theirs = start.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([theirs], lr=lr, betas=(beta1, beta2))
    gap = 0.0
    for step in range(1, steps + 1):
        eps_hat_adam_update(
            ours,
            gradient(ours),
            exp_avg,
            exp_avg_sq,
            step=step,
            lr=lr,
            beta1=beta1,
            beta2=beta2,
            eps_hat=eps_hat,
        )
        optimizer.param_groups[0]["eps"] = float(eps_at(step))
        theirs.grad = gradient(theirs.detach())
        optimizer.step()
        gap = max(gap, (ours - theirs.detach()).abs().max().item())
    assert gap < 1e-12, (
        f"the paths differ by up to {gap:.3g}: which eps makes "
        r"m_hat / (sqrt(v_hat) + eps) equal to the paper's step?"
    )
    print(f"Same path for {steps} steps: largest difference {gap:.1e}")


def adamw_gap_to_paper(
    lr: float,
    weight_decay: float,
    *,
    alpha: float,
    paper_weight_decay: float,
    steps: int = 300,
    zero_gradients: bool = False,
) -> float:
    r"""Run ``torch.optim.AdamW`` and :func:`paper_adamw_update` side by side; return the gap.

    Both runs share a cosine schedule multiplier $\eta_t$ (from 1 down to 0 over ``steps``):
    the paper's run has base rate ``alpha`` and decay ``paper_weight_decay``, torch's has
    ``lr`` $\cdot\,\eta_t$ and ``weight_decay``. The loss is the quadratic
    $\frac12\lVert\theta - 0.3\rVert^2$ over six weights, or nothing at all with
    ``zero_gradients=True`` (then only the decay moves the weights, which isolates it when the
    two base rates differ). Returns the largest difference between the final weights.
    """

    def multiplier(step: int) -> float:  # cosine annealing from 1 to 0 over the run
        return 0.5 * (1 + math.cos(math.pi * (step - 1) / steps))

    def gradient(point: Tensor) -> Tensor:
        return torch.zeros_like(point) if zero_gradients else point - 0.3

    start = torch.linspace(-1.0, 1.0, 6, dtype=torch.float64)
    ours = start.clone()
    exp_avg, exp_avg_sq = torch.zeros_like(ours), torch.zeros_like(ours)
    theirs = start.clone().requires_grad_(True)
    optimizer = torch.optim.AdamW([theirs], lr=lr, weight_decay=weight_decay)
    for step in range(1, steps + 1):
        paper_adamw_update(
            ours,
            gradient(ours),
            exp_avg,
            exp_avg_sq,
            step=step,
            alpha=alpha,
            schedule_multiplier=multiplier(step),
            beta1=0.9,
            beta2=0.999,
            eps=1e-8,
            weight_decay=paper_weight_decay,
        )
        optimizer.param_groups[0]["lr"] = lr * multiplier(step)
        theirs.grad = gradient(theirs.detach())
        optimizer.step()
    return (ours - theirs.detach()).abs().max().item()


def check_torch_weight_decay(
    lr: float,
    weight_decay: float,
    *,
    alpha: float = 1e-3,
    paper_weight_decay: float = 2.5e-4,
    steps: int = 300,
) -> None:
    r"""Exercise: translate Loshchilov and Hutter's $\lambda$ into ``torch.optim.AdamW``'s.

    The paper's run has base rate ``alpha``, decay ``paper_weight_decay`` and a cosine schedule
    multiplier $\eta_t$. Pass the ``weight_decay`` that makes ``torch.optim.AdamW`` with base
    rate ``lr`` (and the same cosine schedule) decay the weights exactly as the paper does. The
    check runs both (:func:`adamw_gap_to_paper`) and compares the weights; when ``lr`` differs
    from ``alpha`` only the decay can agree, so it compares runs with zero gradients.
    """
    same_rate = math.isclose(lr, alpha, rel_tol=1e-12)
    gap = adamw_gap_to_paper(
        lr,
        weight_decay,
        alpha=alpha,
        paper_weight_decay=paper_weight_decay,
        steps=steps,
        zero_gradients=not same_rate,
    )
    assert gap < 1e-12, (
        f"weight_decay={weight_decay} with lr={lr} ends {gap:.3g} away from the paper's run: "
        "torch decays by lr * weight_decay per step, the paper by eta_t * lambda"
    )
    what = "the same weights" if same_rate else "the same decay (zero gradients)"
    print(f"Right: {what} after {steps} steps, largest difference {gap:.1e}")


def check_nadam_momentum_decay(
    momentum_decay: float, *, steps: int = 1000, target: float = 0.8, beta1: float = 0.9
) -> None:
    r"""Exercise: choose NAdam's ``momentum_decay`` so that $\mu_t$ reaches ``target`` at step
    ``steps``, and not much earlier (it must still be below ``target`` at 98% of ``steps``).

    The check first confirms, from ``torch.optim.NAdam``'s state, that torch uses the schedule
    :func:`nadam_momentum` with this ``momentum_decay`` (the stored product
    $\prod_{i \le t} \mu_i$ over the first 20 steps), then evaluates the schedule.
    """
    x = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.NAdam([x], betas=(beta1, 0.999), momentum_decay=momentum_decay)
    product = 1.0
    for step in range(1, 21):
        x.grad = torch.ones_like(x)
        optimizer.step()
        product *= nadam_momentum(step, beta1, momentum_decay)
        stored = optimizer.state[x]["mu_product"].item()  # float32: compare relatively
        assert math.isclose(stored, product, rel_tol=1e-5), "torch's schedule is not mu_t"
    reached = nadam_momentum(steps, beta1, momentum_decay)
    assert reached >= target, (
        f"with momentum_decay={momentum_decay}, mu_t is only {reached:.4f} at step {steps}"
    )
    early_step = int(0.98 * steps)
    early = nadam_momentum(early_step, beta1, momentum_decay)
    assert early < target, (
        f"with momentum_decay={momentum_decay}, mu_t is already {early:.4f} at step "
        f"{early_step}: choose the smallest decay that reaches {target}"
    )
    print(
        f"Right: mu_t = {reached:.4f} at step {steps} "
        f"(the default momentum_decay=0.004 gives {nadam_momentum(steps, beta1):.4f})"
    )


def check_radam_momentum_steps(answers: dict[float, int], lr: float = 1e-3) -> None:
    r"""Exercise: how many plain momentum steps does ``torch.optim.RAdam`` take before its
    first adaptive step, for each $\beta_2$ in ``answers`` (``{beta2: count}``)?

    A count of ``-1`` means "never adaptive". The check runs ``torch.optim.RAdam`` for 200
    steps on a constant gradient of 100 (far from 1, so the two kinds of step look different:
    a momentum step moves $\gamma \hat m_t = 100\gamma$) and counts the momentum steps.
    """
    for beta2, answer in answers.items():
        x = torch.zeros(1, dtype=torch.float64, requires_grad=True)
        optimizer = torch.optim.RAdam([x], lr=lr, betas=(0.9, beta2))
        momentum_steps = 0
        for _ in range(200):
            before = x.item()
            x.grad = torch.full_like(x, 100.0)
            optimizer.step()
            if math.isclose(before - x.item(), 100.0 * lr, rel_tol=1e-9):
                momentum_steps += 1
            else:
                break
        measured = -1 if momentum_steps == 200 else momentum_steps
        assert answer == measured, f"beta2={beta2}: not {answer}"
    print(f"Right for all {len(answers)} values of beta2.")

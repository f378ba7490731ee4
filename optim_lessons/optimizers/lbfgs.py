r"""L-BFGS: a quasi-Newton direction from the last few steps, with an optional line search.

Liu & Nocedal, *On the Limited Memory BFGS Method for Large Scale Optimization*, Mathematical
Programming 45, 1989; Nocedal & Wright, *Numerical Optimization*, 2nd ed., 2006: Algorithm 7.4
(two-loop recursion), Algorithm 7.5 (L-BFGS), Algorithms 3.5-3.6 (strong-Wolfe line search).
The line search follows the bracketing-and-zoom scheme with cubic interpolation of Schmidt's
minFunc.

Newton's method steps along $-H\nabla f$ with $H$ the inverse Hessian. BFGS
builds $H$ from how the gradient changed between steps; L-BFGS never stores it, only the
last $m$ pairs $s_i = \theta_{i+1} - \theta_i$, $y_i = g_{i+1} - g_i$, and
applies it to a vector with two loops over them:

$$
\begin{aligned}
& q \leftarrow -g_k, \qquad \rho_i = 1 / (y_i^\top s_i) \\
& \textbf{for } i = k-1, \dots, k-m: \quad
    \alpha_i \leftarrow \rho_i\, s_i^\top q, \quad q \leftarrow q - \alpha_i y_i
    && \text{(first loop, newest pair first)} \\
& r \leftarrow \delta_k\, q, \qquad
    \delta_k = \frac{s_{k-1}^\top y_{k-1}}{y_{k-1}^\top y_{k-1}}
    && \text{(initial inverse Hessian } H_k^0 = \delta_k I) \\
& \textbf{for } i = k-m, \dots, k-1: \quad
    \beta \leftarrow \rho_i\, y_i^\top r, \quad r \leftarrow r + (\alpha_i - \beta)\, s_i
    && \text{(second loop, oldest pair first)} \\
& d_k \leftarrow r = -H_k g_k
    && \text{(search direction)} \\
& \theta_{k+1} \leftarrow \theta_k + t_k\, d_k
    && \text{(step of length } t_k)
\end{aligned}
$$

With ``line_search_fn="strong_wolfe"``, $t_k$ satisfies the strong Wolfe conditions

$$
f(\theta_k + t d_k) \le f(\theta_k) + c_1 t\, g_k^\top d_k, \qquad
|\nabla f(\theta_k + t d_k)^\top d_k| \le c_2\, |g_k^\top d_k|,
$$

with $c_1 = 10^{-4}$, $c_2 = 0.9$; otherwise $t_k$ is the learning rate.
A pair is stored only if $y^\top s > 10^{-10}$, which keeps $H$ positive definite.
With ``maximize=True`` the loss and gradient are negated.

torch.optim versus the paper:

- Without a line search (the default) every step has the fixed length ``lr``, and the very first
  one $\min(1, 1/\lVert g\rVert_1)\,\mathrm{lr}$; the paper's convergence rests on a
  Wolfe line search.
- One call to ``step`` runs up to ``max_iter`` iterations (and ``max_eval`` loss evaluations),
  and the stored pairs carry over to the next call, even if the loss has changed in between.
- A pair with $y^\top s \le 10^{-10}$ is skipped, a safeguard the paper does not need
  because its line search guarantees $y^\top s > 0$.
- The line search starts from the step length above, extrapolates at most tenfold per trial,
  gives up after ``max_eval`` evaluations in all, tests "no longer decreasing" only from its
  third trial, and stops zooming once the bracket times $\max|d|$ is below $10^{-9}$: the
  group's ``tolerance_change`` is not passed on to it.
- It stops early when $\max|g|$ falls to ``tolerance_grad``, when the slope $g^\top d$ rises
  above minus ``tolerance_change``, or when the step or the change in loss is smaller than
  ``tolerance_change``.
- ``step`` returns the loss at the start of the call, not the loss it reached.
- Complex parameters are flattened into pairs of real numbers.

On several ranks: under data parallelism (DDP) every rank holds the whole averaged gradient
and runs the same iterations; the closure should return the loss averaged over the ranks, so
that every rank takes the same decisions. Under FSDP2 the parameters are DTensors split over
the ranks, and each rank keeps only its piece of every flat vector ($g$, $d$ and the
history $s_i, y_i$): the update is a sum of vectors, so it is computed piece by piece, but
every dot product, largest entry and sum is all-reduced. Each rank sends one number per
reduction: $2m + 3$ per iteration with $m$ stored pairs (two per pair in the two loops,
then $y^\top s$, $y^\top y$ and $g^\top d$), a few more for the stopping tests, and
the loss of every evaluation, which is averaged over the ranks. The history stays sharded:
$2m$ vectors of $1/N$ of the parameters on each rank.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.optim.optimizer import ParamsT

from optim_lessons.distributed import sharded

from ._common import as_real, as_scalar, check_learning_rate, evaluate_closure

__all__ = ["LBFGS", "cubic_minimizer", "strong_wolfe", "two_loop_direction"]

Number = Any  # a Python float or a 0-dim tensor: the line search mixes both, like torch.optim


def two_loop_direction(
    grad: Tensor,
    old_dirs: list[Tensor],
    old_stps: list[Tensor],
    ro: list[Tensor],
    h_diag: Number,
    ops: sharded.FlatOps = sharded.PLAIN,
) -> tuple[Tensor, list[Tensor]]:
    """The L-BFGS direction $-H g$ from the stored pairs (``old_dirs`` holds the
    $y_i$, ``old_stps`` the $s_i$, ``ro`` the $1/y_i^\\top s_i$).

    Returns the direction and the $\\alpha_i$ of the first loop. Reads its inputs only.
    ``ops.dot`` computes the dot products (all-reduced when the vectors are pieces).
    """
    count = len(old_dirs)
    alphas: list[Any] = [None] * count
    q = grad.neg()  # q = -g
    for i in range(count - 1, -1, -1):
        alphas[i] = ops.dot(old_stps[i], q) * ro[i]  # alpha_i = rho_i s_i^T q
        q.add_(old_dirs[i], alpha=-alphas[i])  # q = q - alpha_i y_i
    r = torch.mul(q, h_diag)  # r = delta q
    for i in range(count):
        beta = ops.dot(old_dirs[i], r) * ro[i]  # beta = rho_i y_i^T r
        r.add_(old_stps[i], alpha=alphas[i] - beta)  # r = r + (alpha_i - beta) s_i
    return r, alphas


def cubic_minimizer(
    x1: Number,
    f1: Number,
    g1: Number,
    x2: Number,
    f2: Number,
    g2: Number,
    bounds: tuple[Number, Number] | None = None,
) -> Number:
    """The minimizer of the cubic through $(x_1, f_1)$, $(x_2, f_2)$ with slopes
    $g_1, g_2$ (Nocedal & Wright, eq. 3.59), clipped to ``bounds`` (default: between the
    two points). When the cubic has no minimizer, the middle of the bounds."""
    if bounds is None:
        bounds = (x1, x2) if x1 <= x2 else (x2, x1)
    low, high = bounds
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1**2 - g1 * g2
    # "not >= 0" rather than "< 0": on a run that diverges, d2_square can be NaN (inf - inf),
    # and then the midpoint keeps the search finite where the square root would not.
    if not d2_square >= 0:
        return (low + high) / 2.0
    d2 = d2_square.sqrt()
    # The same formula seen from whichever point lies to the right.
    if x1 <= x2:
        minimizer = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    else:
        minimizer = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    return min(max(minimizer, low), high)


def strong_wolfe(
    evaluate: Callable[[Number], tuple[float, Tensor]],
    t: Number,
    d: Tensor,
    loss: float,
    grad: Tensor,
    gtd: Tensor,
    c1: float = 1e-4,
    c2: float = 0.9,
    tolerance_change: float = 1e-9,
    max_ls: int = 25,
    ops: sharded.FlatOps = sharded.PLAIN,
) -> tuple[float, Tensor, Number, int]:
    """Find a step length along ``d`` that satisfies the strong Wolfe conditions.

    ``evaluate(t)`` returns the loss and flat gradient at $\\theta + t d$ (and leaves the
    parameters as they were); ``loss``, ``grad`` and ``gtd`` describe $t = 0$. Returns the
    loss and gradient at the chosen step, the step, and how many evaluations it took.
    """
    d_norm = ops.max_abs(d)
    # A trial point is a list [t, loss, grad, slope along d].
    start = [0, loss, grad, gtd]
    f_new, g_new = evaluate(t)
    evaluations, trials = 1, 0
    gtd_new = ops.dot(g_new, d)

    # Phase 1 (Algorithm 3.5): grow t until an interval must contain an acceptable step.
    previous = start
    bracket: list[list[Any]] = []
    done = False
    while trials < max_ls:
        current = [t, f_new, g_new, gtd_new]
        if f_new > loss + c1 * t * gtd or (trials > 1 and f_new >= previous[1]):
            bracket = [previous, current]  # too far: sufficient decrease fails or f went up
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, done = [current], True  # strong Wolfe holds at t
            break
        if gtd_new >= 0:
            bracket = [previous, current]  # the slope turned: a minimizer lies behind t
            break
        # Extrapolate with the cubic, at least a little and at most ten times further.
        t = cubic_minimizer(
            previous[0], previous[1], previous[3], t, f_new, gtd_new,
            bounds=(t + 0.01 * (t - previous[0]), t * 10),
        )  # fmt: skip
        previous = current
        f_new, g_new = evaluate(t)
        evaluations += 1
        gtd_new = ops.dot(g_new, d)
        trials += 1
    if trials == max_ls:
        bracket = [start, [t, f_new, g_new, None]]  # out of evaluations

    # Phase 2 (Algorithm 3.6): shrink the bracket until a point satisfies both conditions.
    low, high = (0, 1) if bracket[0][1] <= bracket[-1][1] else (1, 0)
    insufficient_progress = False
    while not done and trials < max_ls:
        if abs(bracket[1][0] - bracket[0][0]) * d_norm < tolerance_change:
            break  # the bracket is too short to matter
        t = cubic_minimizer(
            bracket[0][0], bracket[0][1], bracket[0][3], bracket[1][0], bracket[1][1], bracket[1][3]
        )
        # Safeguard: a trial too close to an end of the bracket (twice in a row, or outside it)
        # is moved a tenth of the bracket inside.
        right, left = max(bracket[0][0], bracket[1][0]), min(bracket[0][0], bracket[1][0])
        margin = 0.1 * (right - left)
        if min(right - t, t - left) < margin:
            if insufficient_progress or t >= right or t <= left:
                t = right - margin if abs(t - right) < abs(t - left) else left + margin
                insufficient_progress = False
            else:
                insufficient_progress = True
        else:
            insufficient_progress = False

        f_new, g_new = evaluate(t)
        evaluations += 1
        gtd_new = ops.dot(g_new, d)
        trials += 1
        current = [t, f_new, g_new, gtd_new]
        if f_new > loss + c1 * t * gtd or f_new >= bracket[low][1]:
            bracket[high] = current  # no sufficient decrease: t becomes the high end
            low, high = (0, 1) if bracket[0][1] <= bracket[1][1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True  # strong Wolfe holds at t
            elif gtd_new * (bracket[high][0] - bracket[low][0]) >= 0:
                bracket[high] = bracket[low]  # keep the minimizer between low and t
            bracket[low] = current  # t becomes the new low end

    t, f_new, g_new, _ = bracket[low]
    return f_new, g_new, t, evaluations


class LBFGS(torch.optim.Optimizer):
    """L-BFGS with torch.optim.LBFGS's hyperparameters, state and messages.

    Takes a single param group, and ``step`` needs a closure that recomputes the loss.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float | Tensor = 1,
        max_iter: int = 20,
        max_eval: int | None = None,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        history_size: int = 100,
        line_search_fn: str | None = None,
        *,
        maximize: bool = False,
    ) -> None:
        check_learning_rate(lr)
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        defaults = {
            "lr": lr,
            "max_iter": max_iter,
            "max_eval": max_eval,
            "tolerance_grad": tolerance_grad,
            "tolerance_change": tolerance_change,
            "history_size": history_size,
            "line_search_fn": line_search_fn,
            "maximize": maximize,
        }
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")

    # The parameters seen as one flat real vector.

    def _params(self) -> list[Tensor]:
        return self.param_groups[0]["params"]

    def _flat_grad(self) -> Tensor:
        pieces = []
        for p in self._params():
            if p.grad is None:
                piece = sharded.local(p).new_zeros(sharded.local(p).numel())
            elif p.grad.is_sparse:
                piece = p.grad.to_dense().view(-1)
            else:
                piece = sharded.local(p.grad).view(-1)
            pieces.append(as_real(piece).view(-1))
        flat = torch.cat(pieces)
        return flat.neg_() if self.param_groups[0].get("maximize", False) else flat

    def _move(self, t: Number, direction: Tensor) -> None:
        """theta = theta + t * direction."""
        offset = 0
        for p in self._params():
            p = as_real(sharded.local(p))
            p.add_(direction[offset : offset + p.numel()].view_as(p), alpha=t)
            offset += p.numel()

    def _ops(self) -> sharded.FlatOps:
        """Dot products and norms of the flat vectors: over this rank's pieces, all-reduced,
        when the parameters are sharded DTensors; plain ones otherwise."""
        group = sharded.group_of(self._params())
        if group is None:
            return sharded.PLAIN
        return sharded.FlatOps(group, sharded.local(self._params()[0]).device)

    def _loss(self, closure: Callable[[], float | Tensor]) -> tuple[float | Tensor, float]:
        """The closure's own return value, and the loss as a float that ``maximize`` negates."""
        value = evaluate_closure(closure)
        number = float(value.detach()) if isinstance(value, Tensor) else float(value)
        number = self._ops().mean(number)  # under FSDP2: the loss of the whole batch
        return value, -number if self.param_groups[0].get("maximize", False) else number

    def _evaluate_along(
        self, closure: Callable, start: list[Tensor], t: Number, direction: Tensor
    ) -> tuple[float, Tensor]:
        """Loss and flat gradient at start + t * direction; the parameters go back to start."""
        self._move(t, direction)
        _, loss = self._loss(closure)
        flat_grad = self._flat_grad()
        for p, saved in zip(self._params(), start, strict=True):
            p.copy_(saved)
        return loss, flat_grad

    @torch.no_grad()
    def step(self, closure: Callable[[], float | Tensor]) -> float | Tensor:  # type: ignore[override]
        """Run up to ``max_iter`` L-BFGS iterations; return the loss from before the first."""
        if len(self.param_groups) != 1:
            raise AssertionError(
                f"Expected exactly one param_group, but got {len(self.param_groups)}"
            )
        if closure is None:  # L-BFGS evaluates the loss many times per step: it needs the closure
            raise TypeError("'NoneType' object is not callable")
        params = self._params()
        if len(params) == 0:  # nothing to optimize, but the caller still gets a loss
            return evaluate_closure(closure)
        group = self.param_groups[0]
        lr = as_scalar(group["lr"])
        max_iter, max_eval = group["max_iter"], group["max_eval"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
        history_size, line_search_fn = group["history_size"], group["line_search_fn"]

        # L-BFGS's state is global; it lives under the first parameter so that
        # load_state_dict moves it to the right device.
        state = self.state[params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        ops = self._ops()
        first_loss, loss = self._loss(closure)
        evaluations = 1
        state["func_evals"] += 1
        flat_grad = self._flat_grad()
        if ops.max_abs(flat_grad) <= tolerance_grad:
            return first_loss  # already stationary

        d, t = state.get("d"), state.get("t")
        old_dirs, old_stps, ro = state.get("old_dirs"), state.get("old_stps"), state.get("ro")
        h_diag = state.get("H_diag")
        prev_flat_grad, prev_loss = state.get("prev_flat_grad"), state.get("prev_loss")

        iteration, stationary = 0, False
        while iteration < max_iter:
            iteration += 1
            state["n_iter"] += 1

            # The direction: steepest descent at first, then the two-loop recursion.
            if state["n_iter"] == 1:
                d = flat_grad.neg()
                old_dirs, old_stps, ro = [], [], []
                h_diag = 1
            else:
                y = flat_grad.sub(prev_flat_grad)  # y = g_{k+1} - g_k
                s = d.mul(t)  # s = theta_{k+1} - theta_k
                ys = ops.dot(y, s)
                if ys > 1e-10:  # store the pair only if it keeps H positive definite
                    if len(old_dirs) == history_size:  # forget the oldest pair
                        for history in (old_dirs, old_stps, ro):
                            history.pop(0)
                    old_dirs.append(y)
                    old_stps.append(s)
                    ro.append(1.0 / ys)  # rho = 1 / y^T s
                    h_diag = ys / ops.dot(y, y)  # delta = s^T y / y^T y
                if "al" not in state:
                    state["al"] = [None] * history_size
                d, alphas = two_loop_direction(flat_grad, old_dirs, old_stps, ro, h_diag, ops)
                state["al"][: len(alphas)] = alphas

            if prev_flat_grad is None:
                prev_flat_grad = flat_grad.clone(memory_format=torch.contiguous_format)
            else:
                prev_flat_grad.copy_(flat_grad)
            prev_loss = loss

            # The step length: a cautious first step, then lr (or the line search's choice).
            if state["n_iter"] == 1:
                t = min(1.0, 1.0 / ops.abs_sum(flat_grad)) * lr
            else:
                t = lr
            gtd = ops.dot(flat_grad, d)  # slope along d
            if gtd > -tolerance_change:
                break  # d is no longer a descent direction

            if line_search_fn is not None:
                if line_search_fn != "strong_wolfe":
                    raise RuntimeError("only 'strong_wolfe' is supported")
                start = [p.clone(memory_format=torch.contiguous_format) for p in params]

                def evaluate(trial: Number, start: list[Tensor] = start, d: Tensor = d) -> Any:
                    return self._evaluate_along(closure, start, trial, d)

                loss, flat_grad, t, search_evaluations = strong_wolfe(
                    evaluate, t, d, loss, flat_grad, gtd, max_ls=max_eval - evaluations, ops=ops
                )
                self._move(t, d)
                stationary = ops.max_abs(flat_grad) <= tolerance_grad
            else:
                self._move(t, d)
                search_evaluations = 0
                if iteration != max_iter:  # the last iteration's loss would go unused
                    _, loss = self._loss(closure)
                    flat_grad = self._flat_grad()
                    stationary = ops.max_abs(flat_grad) <= tolerance_grad
                    search_evaluations = 1
            evaluations += search_evaluations
            state["func_evals"] += search_evaluations

            if iteration == max_iter or evaluations >= max_eval or stationary:
                break
            if ops.max_abs(d.mul(t)) <= tolerance_change:
                break  # the step became negligible
            if abs(loss - prev_loss) < tolerance_change:
                break  # the loss stopped changing

        state["d"], state["t"] = d, t
        state["old_dirs"], state["old_stps"], state["ro"] = old_dirs, old_stps, ro
        state["H_diag"] = h_diag
        state["prev_flat_grad"], state["prev_loss"] = prev_flat_grad, prev_loss
        return first_loss

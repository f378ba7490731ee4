r"""Multi-tensor optimizers by flat buffers: one update per param group, whatever its size.

The book's optimizers update one parameter at a time. With a model of 200 tensors that is 200
trips through Python and, for Adam, about 2,000 small operations per step, each of which pays
a fixed cost (dispatch on a CPU; a kernel launch on a GPU) before it touches a byte. torch's
``foreach=True`` path cuts the trips by handing lists of tensors to each operation. The
flat-buffer way, used by the large training frameworks (Megatron-LM's distributed optimizer,
DeepSpeed's ZeRO, Apex's multi-tensor optimizers), goes further:

- a group's parameters are copied end to end into **one flat buffer**, and every parameter
  becomes a view into it (``p.data = flat[offset : offset + n].view_as(p)``): the model still
  sees its usual tensors, with no copy, while the optimizer sees one long vector;
- the gradients and every state (Adam's $m$ and $v$) get a flat buffer of their own, laid out
  the same way;
- one step is then the update rule applied **once** to the flat buffers: the same handful of
  operations for 2 parameters or 2,000.

The update rule is unchanged, so the step is the same arithmetic on the same numbers as the
readable class, element by element: the tests find the two bit for bit equal. What changes:

- Each class here subclasses the readable one (``FlatAdam(Adam)``), so arguments, defaults,
  error messages, state keys and ``state_dict`` are those of the readable class and of torch;
  a ``state_dict`` hands over to and from them (the step counts are handed out as copies).
- The flat buffers are built at the first ``step`` (the parameters move into them then; the
  Parameter objects stay the same) and rebuilt after ``load_state_dict``.
- Backward accumulates into the gradient views as long as ``.grad`` is kept, so call
  ``zero_grad(set_to_none=False)``: one fill per group. With ``set_to_none=True`` (torch's
  default) autograd hands over new gradient tensors, and ``step`` copies them into the flat
  buffer first: correct, one extra pass over the gradients.
- A parameter without a gradient is left alone, as in torch. While any parameter of a group
  lacks one, that group is updated one parameter at a time (still through the views).
- Every parameter of a group must share one dtype and one device.
- **Cache blocking.** A step is several operations, and a for-loop or foreach runs each one
  over all of memory before the next starts: Adam's seven operations on parameter-sized data
  read and write 72 bytes per parameter instead of the 28 it needs (counted by
  :func:`optim_lessons.benchmarks.step_anatomy.step_anatomy`). On a CPU the flat step instead
  runs all of them on a slice of :data:`CHUNK` numbers, small enough that the slice's buffers
  stay in the CPU's cache, then moves to the next slice: the second and later operations read
  from cache. Element-wise operations do not care where the slices fall, so the result is
  unchanged. (On a GPU the slices would multiply the kernel launches, so there the buffers
  stay whole.)
- Adam gets a persistent workspace for $\sqrt{\hat v} + \epsilon$ instead of a new tensor per
  step; SGD and Adagrad call the readable update functions themselves.

Even blocked, each operation is a separate pass over its slice, with its own dispatch; a
fused kernel does the whole step in one pass, in registers: see
:mod:`optim_lessons.fast.compiled` and :mod:`optim_lessons.fast.triton_adam` for that, and
:mod:`optim_lessons.benchmarks.roofline` for the limit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor

from optim_lessons.optimizers._common import as_real, as_scalar, evaluate_closure, scalar_dtype
from optim_lessons.optimizers.adagrad import Adagrad, adagrad_update
from optim_lessons.optimizers.adam import Adam
from optim_lessons.optimizers.adamw import AdamW
from optim_lessons.optimizers.sgd import SGD, sgd_update

__all__ = [
    "FlatAdagrad",
    "FlatAdam",
    "FlatAdamW",
    "FlatGroup",
    "FlatSGD",
    "adam_update_with_workspace",
]


#: Numbers per slice of a step (1 MiB of float32 per buffer): the five or so buffers of one
#: slice stay in the CPU's caches across the handful of operations of the update rule.
CHUNK = 2**18


class FlatGroup:
    """One param group laid end to end: its parameters, gradients and states, each in one flat
    buffer, with every parameter, gradient and state tensor a view into its buffer."""

    def __init__(
        self, params: list[Tensor], state: dict[Tensor, dict[str, Any]], state_names: list[str]
    ) -> None:
        first = params[0]
        for p in params:
            if p.dtype != first.dtype or p.device != first.device:
                raise ValueError(
                    "a flat-buffer optimizer needs every parameter of a group on one device with "
                    f"one dtype; got {first.dtype} on {first.device} and {p.dtype} on {p.device}"
                )
        self.params = list(params)
        self.sizes = [p.numel() for p in params]
        self.offsets = [sum(self.sizes[:i]) for i in range(len(params))]
        self.param = torch.empty(sum(self.sizes), dtype=first.dtype, device=first.device)
        self.grad = torch.zeros_like(self.param)
        self.grad_views = self.views(self.grad)
        for p, view in zip(self.params, self.views(self.param), strict=True):
            view.copy_(p.detach())
            p.data = view  # the parameter now lives inside the flat buffer
        # Each state that some parameter already has (after load_state_dict, or Adagrad's sum
        # from the constructor) is copied in; the rest start at zero and wait for a first step.
        self.states: dict[str, Tensor] = {}
        self.state_views: dict[str, list[Tensor]] = {}
        for name in state_names:
            flat = torch.zeros_like(self.param)
            views = self.views(flat)
            for p, view in zip(self.params, views, strict=True):
                if p in state and name in state[p]:
                    view.copy_(state[p][name])
                    state[p][name] = view
            self.states[name], self.state_views[name] = flat, views
        self.shared_step: Tensor | None = None
        self._workspace: Tensor | None = None

    def views(self, flat: Tensor) -> list[Tensor]:
        """One view per parameter into ``flat``, shaped like the parameter."""
        return [
            flat[offset : offset + size].view_as(p)
            for p, offset, size in zip(self.params, self.offsets, self.sizes, strict=True)
        ]

    def chunks(self, *flats: Tensor | None) -> Iterator[tuple[Tensor | None, ...]]:
        """The flat buffers cut into matching slices of :data:`CHUNK` numbers (``None`` passes
        through): run every operation of a step on one slice, then the next. On a GPU the
        buffers stay whole: there every slice would cost a kernel launch per operation, and a
        launch costs more than what the cache would save."""
        total = self.param.numel()
        chunk = CHUNK if self.param.device.type == "cpu" else max(total, 1)
        for start in range(0, total, chunk):
            stop = min(start + chunk, total)
            yield tuple(None if flat is None else flat[start:stop] for flat in flats)

    def workspace(self) -> Tensor:
        """A scratch buffer the size of the group, allocated once."""
        if self._workspace is None:
            self._workspace = torch.empty_like(self.param)
        return self._workspace

    def gather_grads(self, sparse_message: str) -> bool:
        """Bring every gradient into the flat buffer (a copy only for a gradient autograd
        created anew); return whether every parameter has one."""
        every_param_has_one = True
        for p, view in zip(self.params, self.grad_views, strict=True):
            grad = p.grad
            if grad is None:
                every_param_has_one = False
            elif grad is not view:
                if grad.is_sparse:
                    raise RuntimeError(sparse_message)
                view.copy_(grad)
                p.grad = view
        return every_param_has_one

    def share_steps(self, state: dict[Tensor, dict[str, Any]]) -> None:
        """If every parameter has a step count and they agree, make them one tensor, so that one
        increment counts the step for the whole group."""
        steps = [state[p].get("step") if p in state else None for p in self.params]
        if any(step is None for step in steps):
            return
        if any(step is not steps[0] for step in steps) and len({float(s) for s in steps}) > 1:
            return
        for p in self.params:
            state[p]["step"] = steps[0]
        self.shared_step = steps[0]

    def unshare_steps(self, state: dict[Tensor, dict[str, Any]]) -> None:
        """Give every parameter its own step count again (some will step without the others)."""
        if self.shared_step is None:
            return
        for p in self.params:
            state[p]["step"] = self.shared_step.clone()
        self.shared_step = None


class _FlatBuffers:
    """What every flat-buffer optimizer shares: the buffers, zero_grad and the state dict. Put
    it before the readable class among the bases."""

    param_groups: list[dict[str, Any]]
    state: dict[Tensor, dict[str, Any]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._flat_groups: dict[int, FlatGroup] = {}
        super().__init__(*args, **kwargs)

    def _state_names(self, group: dict[str, Any]) -> list[str]:
        raise NotImplementedError

    def _flat(self, index: int, group: dict[str, Any]) -> FlatGroup:
        """The group's flat buffers, built on first use (and again if the group changed)."""
        flat = self._flat_groups.get(index)
        params = group["params"]
        if (
            flat is None
            or len(flat.params) != len(params)
            or any(a is not b for a, b in zip(flat.params, params, strict=True))
        ):
            flat = FlatGroup(params, self.state, self._state_names(group))
            flat.share_steps(self.state)
            self._flat_groups[index] = flat
        return flat

    def zero_grad(self, set_to_none: bool = True) -> None:
        """With ``set_to_none=False``, one fill per flattened group, and the views stay."""
        if set_to_none:
            super().zero_grad(set_to_none=True)  # type: ignore[misc]
            return
        for index, group in enumerate(self.param_groups):
            flat = self._flat_groups.get(index)
            if flat is not None:
                flat.grad.zero_()
            for p in group["params"]:
                if p.grad is not None and (flat is None or not _is_view_of(p.grad, flat.grad)):
                    p.grad.zero_()

    def state_dict(self) -> dict[str, Any]:
        """The readable class's state dict; a step count shared within a group is handed out as
        one copy per parameter, since the readable class adds one to each."""
        packed = super().state_dict()  # type: ignore[misc]
        packed["state"] = {
            index: {
                key: value.clone() if key == "step" and isinstance(value, Tensor) else value
                for key, value in param_state.items()
            }
            for index, param_state in packed["state"].items()
        }
        return packed

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)  # type: ignore[misc]
        self._flat_groups.clear()  # the buffers are rebuilt, with the loaded state, at next step


def _is_view_of(tensor: Tensor, flat: Tensor) -> bool:
    start = flat.data_ptr()
    return start <= tensor.data_ptr() < start + flat.numel() * flat.element_size()


class FlatSGD(_FlatBuffers, SGD):
    """SGD (with torch.optim.SGD's arguments and state) over flat buffers: one update per group.

    The readable :func:`~optim_lessons.optimizers.sgd.sgd_update` runs once on the flat
    parameter, gradient and momentum buffers.
    """

    def _state_names(self, group: dict[str, Any]) -> list[str]:
        return ["momentum_buffer"] if group["momentum"] != 0 else []

    def _update_group(self, flat: FlatGroup, hyper: dict[str, Any]) -> None:
        """One update of the whole group, once every parameter has its momentum buffer."""
        for param, grad, buffer in flat.chunks(
            flat.param, flat.grad, flat.states["momentum_buffer"]
        ):
            sgd_update(param, grad, buffer, **hyper)

    @torch.no_grad()
    def step(self, closure: Callable[[], float | Tensor] | None = None) -> float | Tensor | None:
        loss = evaluate_closure(closure)
        for index, group in enumerate(self.param_groups):
            if not group["params"]:
                continue
            flat = self._flat(index, group)
            every_param_has_grad = flat.gather_grads(
                "FlatSGD keeps dense buffers: use SGD for sparse gradients"
            )
            momentum = group["momentum"]
            hyper = {
                "lr": as_scalar(group["lr"]),
                "momentum": momentum,
                "dampening": group["dampening"],
                "weight_decay": group["weight_decay"],
                "nesterov": group["nesterov"],
                "maximize": group["maximize"],
            }
            started = [momentum != 0 and "momentum_buffer" in self.state[p] for p in flat.params]
            if every_param_has_grad and (momentum == 0 or all(started) or not any(started)):
                buffer = flat.states["momentum_buffer"] if any(started) else None
                if buffer is None:
                    new_buffer = sgd_update(flat.param, flat.grad, None, **hyper)
                else:
                    self._update_group(flat, hyper)
                if momentum != 0 and buffer is None:  # the first step: b_1 = g_1
                    flat.states["momentum_buffer"].copy_(new_buffer)
                    for p, view in zip(
                        flat.params, flat.state_views["momentum_buffer"], strict=True
                    ):
                        self.state[p]["momentum_buffer"] = view
                continue
            for i, p in enumerate(flat.params):  # some parameters step, others wait
                if p.grad is None:
                    continue
                buffer = self.state[p].get("momentum_buffer") if momentum != 0 else None
                new_buffer = sgd_update(p, p.grad, buffer, **hyper)
                if momentum != 0 and buffer is None:
                    view = flat.state_views["momentum_buffer"][i]
                    view.copy_(new_buffer)
                    self.state[p]["momentum_buffer"] = view
        return loss


def adam_update_with_workspace(
    param: Tensor,
    grad: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    max_exp_avg_sq: Tensor | None,
    workspace: Tensor,
    *,
    step: float,
    lr: float | Tensor,
    beta1: float | Tensor,
    beta2: float | Tensor,
    eps: float,
    weight_decay: float,
    maximize: bool,
    decoupled_weight_decay: bool,
) -> None:
    """:func:`optim_lessons.optimizers.adam.adam_update`, operation for operation, except that
    $\\sqrt{\\hat v_t} + \\epsilon$ is written into ``workspace`` (a tensor like ``param``)
    rather than into two new tensors: on a flat buffer of millions of numbers, a fresh
    allocation per step costs as much as an operation."""
    if maximize:
        grad = -grad  # g_t <- -grad f
    if weight_decay != 0:
        if decoupled_weight_decay:
            param.mul_(1 - lr * weight_decay)  # theta <- (1 - gamma lambda) theta  (AdamW)
        else:
            grad = grad.add(param, alpha=weight_decay)  # g_t <- g_t + lambda theta_{t-1}
    param, grad, workspace = as_real(param), as_real(grad), as_real(workspace)
    exp_avg, exp_avg_sq = as_real(exp_avg), as_real(exp_avg_sq)
    if isinstance(beta1, Tensor):
        beta1_here = beta1.to(device=param.device, dtype=param.dtype)
    else:
        beta1_here = beta1

    exp_avg.lerp_(grad, 1 - beta1_here)  # m_t <- beta1 m_{t-1} + (1 - beta1) g_t
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)  # v_t <- beta2 v + (1-beta2) g^2

    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    second_moment = exp_avg_sq
    if max_exp_avg_sq is not None:
        second_moment = as_real(max_exp_avg_sq)
        torch.maximum(second_moment, exp_avg_sq, out=second_moment)  # v_max <- max(v_max, v_t)
    denominator = torch.sqrt(second_moment, out=workspace)  # sqrt(v_hat) + eps, in the workspace
    denominator.div_(bias_correction2**0.5).add_(eps)
    param.addcdiv_(exp_avg, denominator, value=-(lr / bias_correction1))  # theta -= ...


class FlatAdam(_FlatBuffers, Adam):
    """Adam (torch.optim.Adam's arguments and state, AMSGrad and decoupled weight decay
    included) over flat buffers: one update per group."""

    def _state_names(self, group: dict[str, Any]) -> list[str]:
        return ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if group["amsgrad"] else [])

    def _update_group(self, flat: FlatGroup, step: float, hyper: dict[str, Any]) -> None:
        """One update of the whole group (every parameter at the same step)."""
        buffers = flat.chunks(
            flat.param, flat.grad, flat.states["exp_avg"], flat.states["exp_avg_sq"],
            flat.states.get("max_exp_avg_sq"), flat.workspace(),
        )  # fmt: skip
        for param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, workspace in buffers:
            adam_update_with_workspace(
                param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, workspace, step=step, **hyper
            )

    @torch.no_grad()
    def step(self, closure: Callable[[], float | Tensor] | None = None) -> float | Tensor | None:
        loss = evaluate_closure(closure)
        for index, group in enumerate(self.param_groups):
            if not group["params"]:
                continue
            flat = self._flat(index, group)
            names = self._state_names(group)
            every_param_has_grad = flat.gather_grads(
                "Adam does not support sparse gradients, please consider SparseAdam instead"
            )
            for i, p in enumerate(flat.params):
                if p.grad is not None and len(self.state[p]) == 0:  # a parameter's first step
                    self.state[p]["step"] = torch.tensor(0.0, dtype=scalar_dtype())
                    for name in names:
                        self.state[p][name] = flat.state_views[name][i]
            beta1, beta2 = group["betas"]
            hyper = {
                "lr": as_scalar(group["lr"]),
                "beta1": as_scalar(beta1),
                "beta2": as_scalar(beta2),
                "eps": group["eps"],
                "weight_decay": group["weight_decay"],
                "maximize": group["maximize"],
                "decoupled_weight_decay": group["decoupled_weight_decay"],
            }
            if every_param_has_grad and flat.shared_step is None:
                flat.share_steps(self.state)
            if every_param_has_grad and flat.shared_step is not None:
                flat.shared_step += 1
                self._update_group(flat, flat.shared_step.item(), hyper)
                continue
            flat.unshare_steps(self.state)
            workspaces = flat.views(flat.workspace())
            for p, workspace in zip(flat.params, workspaces, strict=True):
                if p.grad is None:
                    continue
                state = self.state[p]
                state["step"] += 1
                adam_update_with_workspace(
                    p, p.grad, state["exp_avg"], state["exp_avg_sq"], state.get("max_exp_avg_sq"),
                    workspace, step=state["step"].item(), **hyper,
                )  # fmt: skip
        return loss


class FlatAdamW(FlatAdam, AdamW):
    """AdamW (torch.optim.AdamW's arguments and defaults) over flat buffers."""


class FlatAdagrad(_FlatBuffers, Adagrad):
    """Adagrad (torch.optim.Adagrad's arguments and state) over flat buffers: the readable
    :func:`~optim_lessons.optimizers.adagrad.adagrad_update` once per group."""

    def _state_names(self, group: dict[str, Any]) -> list[str]:
        return ["sum"]

    def _update_group(self, flat: FlatGroup, step: float, hyper: dict[str, Any]) -> None:
        """One update of the whole group (every parameter at the same step)."""
        for param, grad, state_sum in flat.chunks(flat.param, flat.grad, flat.states["sum"]):
            adagrad_update(param, grad, state_sum, step=step, **hyper)

    @torch.no_grad()
    def step(self, closure: Callable[[], float | Tensor] | None = None) -> float | Tensor | None:
        loss = evaluate_closure(closure)
        for index, group in enumerate(self.param_groups):
            if not group["params"]:
                continue
            for p in group["params"]:
                if len(self.state[p]) == 0:  # a parameter added after construction
                    self._init_state(p, self.defaults["initial_accumulator_value"])
            flat = self._flat(index, group)
            every_param_has_grad = flat.gather_grads(
                "FlatAdagrad keeps dense buffers: use Adagrad for sparse gradients"
            )
            hyper = {
                "lr": as_scalar(group["lr"]),
                "lr_decay": group["lr_decay"],
                "weight_decay": group["weight_decay"],
                "eps": group["eps"],
                "maximize": group["maximize"],
            }
            if every_param_has_grad and flat.shared_step is None:
                flat.share_steps(self.state)
            if every_param_has_grad and flat.shared_step is not None:
                flat.shared_step += 1
                self._update_group(flat, flat.shared_step.item(), hyper)
                continue
            flat.unshare_steps(self.state)
            for p in flat.params:
                if p.grad is None:
                    continue
                state = self.state[p]
                state["step"] += 1
                adagrad_update(p, p.grad, state["sum"], step=state["step"].item(), **hyper)
        return loss

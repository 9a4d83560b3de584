"""Optimisers of the published recipe: Muon on 2-D weights, Adam(W) on everything else.

Both are written here instead of taken from ``torch.optim`` for three reasons:

* ``torch.optim.Muon`` (torch 2.13) runs its Newton-Schulz iteration in bfloat16 and its Nesterov
  step has no bias correction; the published optax Muon runs in float32 ("high" matmul precision)
  with bias-corrected Nesterov momentum, and the published Adam part is Nesterov (NAdam-style),
  which ``torch.optim.AdamW`` does not offer. (torch's ``adjust_lr_fn="original"`` is the same
  ``sqrt(max(1, rows/cols))`` scale as the published one.)
* A non-finite gradient must skip the step without a host sync: ``step(ok)`` takes a device bool and
  leaves parameters and state untouched where it is false (non-finite gradients are then ignored).
* The Adam part keeps its moments in flat buffers so the many small parameters (biases, LayerNorm,
  ``log_std``, gates) update in a handful of kernels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


def newton_schulz(update: torch.Tensor, steps: int = 5, eps: float = 1e-8) -> torch.Tensor:
    """Approximate orthogonalisation of a matrix, or of each matrix of a stack ``[k, rows, cols]`` in the
    same batched matmuls: scale by 1 / (||X||_F + eps), then ``steps`` quintic iterations
    ``A = X X^T; X = a X + (b A + c A A) X`` on the wide orientation."""
    a, b, c = NS_COEFFICIENTS
    x = update if update.ndim == 3 else update.unsqueeze(0)
    tall = x.shape[1] > x.shape[2]
    if tall:
        x = x.mT
    x = x / (torch.linalg.matrix_norm(x, keepdim=True) + eps)
    for _ in range(steps):
        gram = torch.bmm(x, x.mT)
        x = torch.baddbmm(x, torch.baddbmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    if tall:
        x = x.mT
    return x if update.ndim == 3 else x.squeeze(0)


def _grad_or_zeros(p: torch.Tensor) -> torch.Tensor:
    return p.grad if p.grad is not None else torch.zeros_like(p)


def _momentum_estimate(m: torch.Tensor, g: torch.Tensor, beta: float, t: torch.Tensor, nesterov: bool) -> torch.Tensor:
    """The bias-corrected first moment of step ``t`` (1-based): Nesterov
    ``beta m / (1 - beta^(t+1)) + (1 - beta) g / (1 - beta^t)``, plain ``m / (1 - beta^t)``."""
    if nesterov:
        return m * (beta / (1.0 - torch.pow(beta, t + 1.0))) + g * ((1.0 - beta) / (1.0 - torch.pow(beta, t)))
    return m / (1.0 - torch.pow(beta, t))


class _DeviceStepOptimizer:
    """What Muon and Adam share: the parameters, a step counter on the device, and a learning rate set
    from the host and read by the step from the device (``_neg_lr``, a 0-d tensor holding ``-lr``), so a
    changed rate neither syncs nor changes what a compiled step traced."""

    def __init__(self, params: list[nn.Parameter], lr: float, eps: float, nesterov: bool):
        self.params = params
        self._neg_lr = torch.zeros((), device=params[0].device)
        self.step_count = torch.zeros((), device=params[0].device)
        self.lr = lr
        self.eps = eps
        self.nesterov = nesterov

    def _count_step(self, ok: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``ok`` as a device bool and as a float, and the 1-based step ``t`` after counting this
        step where ``ok`` holds."""
        device = self.step_count.device
        ok = torch.ones((), dtype=torch.bool, device=device) if ok is None else ok.to(device=device, dtype=torch.bool)
        okf = ok.float()
        self.step_count.add_(okf)
        return ok, okf, self.step_count.clamp(min=1.0)

    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        self._lr = float(value)
        self._neg_lr.fill_(-self._lr)


class Muon(_DeviceStepOptimizer):
    """Muon for 2-D parameters, as published (optax ``contrib.muon``), for a step t (1-based):
    ``m = beta m + (1 - beta) g``; Nesterov ``u = beta m / (1 - beta^(t+1)) + (1 - beta) g / (1 - beta^t)``
    (plain: ``u = m / (1 - beta^t)``); ``O = newton_schulz(u)``;
    ``W -= lr (sqrt(max(1, rows / cols)) O + weight_decay W)``. For an ``nn.Linear`` weight
    ``[out, in]`` the scale is ``sqrt(max(1, out / in))``. A missing gradient counts as zero.

    Matrices of one shape are updated together: their momenta live in one stacked buffer and
    Newton-Schulz runs on the stack in batched matmuls, so a step costs a few dozen kernels per
    shape instead of per matrix.
    """

    def __init__(
        self,
        params: Sequence[nn.Parameter],
        lr: float,
        weight_decay: float = 0.0,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_steps: int = 5,
        eps: float = 1e-8,
    ):
        params = list(params)
        for p in params:
            if p.ndim != 2:
                raise ValueError(f"Muon takes 2-D parameters only, got shape {tuple(p.shape)}")
        super().__init__(params, lr, eps, nesterov)
        self.weight_decay = weight_decay
        self.momentum = momentum
        self.ns_steps = ns_steps
        by_shape: dict[tuple[int, int], list[int]] = {}
        for i, p in enumerate(self.params):
            by_shape.setdefault(tuple(p.shape), []).append(i)
        self.groups: list[tuple[list[nn.Parameter], torch.Tensor]] = []  # same-shape parameters, stacked momenta
        self.momentum_buffers: list[torch.Tensor] = [torch.empty(0)] * len(self.params)  # views into the stacks
        for indices in by_shape.values():
            stack = torch.zeros((len(indices), *self.params[indices[0]].shape), device=self.params[indices[0]].device,
                                dtype=self.params[indices[0]].dtype)
            for row, i in enumerate(indices):
                self.momentum_buffers[i] = stack[row]
            self.groups.append(([self.params[i] for i in indices], stack))

    @torch.no_grad()
    def step(self, ok: torch.Tensor | None = None) -> None:
        """One update; where the device bool ``ok`` is false nothing changes."""
        ok, okf, t = self._count_step(ok)
        neg_lr = okf * self._neg_lr
        updates = []
        for params, buf in self.groups:
            g = torch.where(ok, torch.stack([_grad_or_zeros(p) for p in params]), 0.0)
            buf.lerp_(g, okf * (1.0 - self.momentum))
            u = _momentum_estimate(buf, g, self.momentum, t, self.nesterov)
            ortho = newton_schulz(u, self.ns_steps, self.eps)
            ortho.mul_(neg_lr * math.sqrt(max(1.0, params[0].shape[0] / params[0].shape[1])))
            updates.extend(ortho.unbind(0))
        if self.weight_decay:
            torch._foreach_mul_(self.params, 1.0 + neg_lr * self.weight_decay)
        torch._foreach_add_([p for params, _ in self.groups for p in params], updates)

    def state_dict(self) -> dict:
        return {"step": self.step_count.clone(), "momentum_buffers": [b.clone() for b in self.momentum_buffers]}

    def load_state_dict(self, state: dict) -> None:
        buffers = state["momentum_buffers"]
        if len(buffers) != len(self.momentum_buffers) or any(
            b.shape != s.shape for b, s in zip(self.momentum_buffers, buffers)
        ):
            raise ValueError("Muon state does not match the parameters (count or shapes differ)")
        self.step_count.copy_(state["step"])
        for b, s in zip(self.momentum_buffers, buffers):
            b.copy_(s)


class Adam(_DeviceStepOptimizer):
    """Adam on flat moment buffers (optax ``adamw`` semantics with the published weight decay 0):
    ``m, v`` moments, ``m_hat = m / (1 - b1^t)`` or with ``nesterov``
    ``m_hat = b1 m / (1 - b1^(t+1)) + (1 - b1) g / (1 - b1^t)``, ``v_hat = v / (1 - b2^t)``,
    ``p -= lr m_hat / (sqrt(v_hat) + eps)``. A missing gradient counts as zero.
    """

    def __init__(
        self,
        params: Sequence[nn.Parameter],
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        nesterov: bool = False,
    ):
        super().__init__(list(params), lr, eps, nesterov)
        self.betas = betas
        self.numels = [p.numel() for p in self.params]
        self.exp_avg = torch.zeros(sum(self.numels), device=self.step_count.device)
        self.exp_avg_sq = torch.zeros(sum(self.numels), device=self.step_count.device)

    @torch.no_grad()
    def step(self, ok: torch.Tensor | None = None) -> None:
        """One update; where the device bool ``ok`` is false nothing changes."""
        ok, okf, t = self._count_step(ok)
        b1, b2 = self.betas
        g = torch.where(ok, torch.cat([_grad_or_zeros(p).reshape(-1) for p in self.params]), 0.0)
        self.exp_avg.lerp_(g, okf * (1.0 - b1))
        self.exp_avg_sq.lerp_(g.square(), okf * (1.0 - b2))
        m_hat = _momentum_estimate(self.exp_avg, g, b1, t, self.nesterov)
        update = m_hat / (torch.sqrt(self.exp_avg_sq / (1.0 - torch.pow(b2, t))) + self.eps)
        update.mul_(okf * self._neg_lr)
        torch._foreach_add_(self.params, [u.view_as(p) for u, p in zip(update.split(self.numels), self.params)])

    def state_dict(self) -> dict:
        return {"step": self.step_count.clone(), "exp_avg": self.exp_avg.clone(), "exp_avg_sq": self.exp_avg_sq.clone()}

    def load_state_dict(self, state: dict) -> None:
        if state["exp_avg"].shape != self.exp_avg.shape:
            raise ValueError(
                f"Adam state holds {state['exp_avg'].numel()} values, the parameters {self.exp_avg.numel()}"
            )
        self.step_count.copy_(state["step"])
        self.exp_avg.copy_(state["exp_avg"])
        self.exp_avg_sq.copy_(state["exp_avg_sq"])


class HybridOptimizer:
    """Named optimiser parts stepped together, with one learning rate for all."""

    def __init__(self, kind: str, parts: dict[str, Muon | Adam]):
        self.kind = kind
        self.parts = parts

    @property
    def params(self) -> list[nn.Parameter]:
        return [p for part in self.parts.values() for p in part.params]

    @property
    def lr(self) -> float:
        return next(iter(self.parts.values())).lr

    @lr.setter
    def lr(self, value: float) -> None:
        for part in self.parts.values():
            part.lr = value

    def step(self, ok: torch.Tensor | None = None) -> None:
        """Steps every part; where the device bool ``ok`` is false nothing changes."""
        for part in self.parts.values():
            part.step(ok)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def state_dict(self) -> dict:
        return {
            "kind": self.kind,
            "lr": self.lr,
            "parts": {name: part.state_dict() for name, part in self.parts.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        if state["kind"] != self.kind or set(state["parts"]) != set(self.parts):
            raise ValueError(
                f"optimizer state is for '{state['kind']}' with parts {sorted(state['parts'])}, "
                f"this optimizer is '{self.kind}' with parts {sorted(self.parts)}"
            )
        for name, part in self.parts.items():
            part.load_state_dict(state["parts"][name])
        self.lr = state["lr"]


def build_optimizer(
    model: nn.Module,
    kind: str = "muon",
    lr: float = 4e-4,
    muon_weight_decay: float = 0.0,
) -> HybridOptimizer:
    """``"muon"``: Muon (momentum 0.95, Nesterov, 5 Newton-Schulz steps, ``muon_weight_decay``) on
    every 2-D parameter and Nesterov Adam (0.9, 0.999, eps 1e-8, no weight decay) on the rest, as
    published (every published configuration's ``adam_weight_decay`` is 0). ``"adam"``: plain Adam on
    every parameter."""
    params = [p for p in model.parameters() if p.requires_grad]
    if kind == "muon":
        matrices = [p for p in params if p.ndim == 2]
        others = [p for p in params if p.ndim != 2]
        parts: dict[str, Muon | Adam] = {}
        if matrices:
            parts["muon"] = Muon(matrices, lr, weight_decay=muon_weight_decay)
        if others:
            parts["adam"] = Adam(others, lr, nesterov=True)
        return HybridOptimizer(kind, parts)
    if kind == "adam":
        return HybridOptimizer(kind, {"adam": Adam(params, lr)})
    raise ValueError(f"optimizer kind must be 'muon' or 'adam', got {kind!r}")


def linear_decay(iteration: int, total: int) -> float:
    """Learning-rate multiplier ``max(0, 1 - iteration / total)`` for ``iteration`` completed updates."""
    if total <= 0:
        raise ValueError(f"linear_decay needs total > 0, got {total}")
    return max(0.0, 1.0 - iteration / total)

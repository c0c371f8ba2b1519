r"""The maths of one fit: forward pass, loss, Adam step, backtracking (no rules, no plumbing).

.. math::

    \theta_{t+1} = \mathrm{Adam}\big(\theta_t,\ \nabla_\theta\, \mathcal{L}(A f_\theta(z + \eta_t),\ s\,y)\big),
    \qquad \eta_t \sim \mathcal N(0, \sigma_{\text{reg}}^2)

with ``s`` the automatic data scale and ``A`` normalised to ``‖A‖ = 1``; images leave in
data units (``image_factor``). Backtracking: when the data misfit becomes non-finite or
jumps by more than ``backtrack_db`` decibels in one step, the weights of the last good
iterate are restored together with the optimiser's moments from that iterate (a fresh
Adam's first step is a full-size sign step, itself a jump), and the step size is halved;
after ``max_backtracks`` consecutive backtracks the fit stops (:class:`StopFitError`).

All mutable state lives in :class:`LoopState` and the ``state_dict``s, so that a checkpoint
resumes to exactly the same answer as an uninterrupted run with the same seed.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from operators import ConvergenceError, LinearOperator

from ..losses import MSELoss, half_squared_norm
from .nonlinear import apply_constraint
from .options import FitOptions

__all__ = ["WARMUP", "IterationState", "Loop", "LoopState", "StopFitError"]

#: iterations during which a misfit jump is not treated as a failure: the first Adam
#: steps from a random initialisation may legitimately raise the misfit.
WARMUP = 20


@dataclass
class IterationState:
    """What a callback sees after each accepted iteration (images in data units)."""

    iteration: int
    image: torch.Tensor
    loss: float
    misfit: float
    statistics: dict[str, float | None]
    fit: int = 0  #: which of ``reconstruct(..., fits=K)``'s fits (0-based); 0 for a single fit


@dataclass
class LoopState:
    """Everything that changes while the loop runs."""

    it: int = 0
    lr: float = 0.01
    prev_misfit: float = math.inf
    fails: int = 0
    backtracks: int = 0
    elapsed: float = 0.0
    last_img: torch.Tensor | None = None
    picked: dict[str, torch.Tensor] = field(default_factory=dict)
    choices: dict[str, int | None] = field(default_factory=dict)
    stopped_by: dict[str, int] = field(default_factory=dict)
    best_psnr: float = -math.inf
    oracle_it: int | None = None
    oracle: torch.Tensor | None = None
    reason: str = ""
    done: bool = False
    weights: dict[str, torch.Tensor] | None = None  #: network state at the deciding rule's choice
    #: the running average with the lowest misfit of those checked (every ``AVERAGE_CHECK`` iterations)
    best_average: torch.Tensor | None = None
    best_average_misfit: float = math.inf
    best_average_it: int | None = None
    best_average_weights: dict[str, torch.Tensor] | None = None  #: network state at ``best_average_it``


class StopFitError(Exception):
    """The fit cannot go on (the step failed after ``max_backtracks`` backtracks); ``state.reason`` says why."""


class Loop:
    """The network, the fit problem (``A/‖A‖``, ``s·y``) and the optimiser; one step at a time."""

    def __init__(
        self,
        net: torch.nn.Module,
        op: LinearOperator,
        y: torch.Tensor,
        loss_fn: Callable[..., torch.Tensor],
        opts: FitOptions,
        *,
        scale: float,
        op_norm: float = 1.0,
        penalty: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.net, self.op, self.loss_fn = net, op, loss_fn
        self.penalty = penalty  # image-domain term added to the loss (fit units), e.g. TV
        # the data misfit ½‖A x − y‖² is the MSE loss itself: don't compute it twice per iteration
        self.data_is_misfit = isinstance(loss_fn, MSELoss)
        self.reg, self.max_bt = opts.reg_noise_std, opts.max_backtracks
        self.constraint = tuple(getattr(opts, "constraint", ()))
        self.jump = 10 ** (opts.backtrack_db / 10)
        self.gen = torch.Generator(device=op.device).manual_seed(opts.seed + 7919)
        self.scale = scale
        self.image_factor = 1.0 / (scale * op_norm)
        self.y_s = y * scale
        self.params = [p for p in net.parameters() if p.requires_grad]
        self.param_names = [n for n, p in net.named_parameters() if p.requires_grad]
        self.good = [p.detach().clone() for p in self.params]
        self.good_opt: dict[torch.Tensor, dict[str, torch.Tensor]] = {}
        # (saved moments, live moments) for one foreach copy per iteration; rebuilt when the state changes
        self._snap: tuple[list[torch.Tensor], list[torch.Tensor]] | None = None
        # foreach: one fused kernel per state tensor list (faster steps for networks of many tensors; docs/notes.md)
        self.opt = torch.optim.Adam(self.params, lr=opts.lr, foreach=True)
        self.state = LoopState(lr=opts.lr)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {
            "net": self.net.state_dict(),
            "opt": self.opt.state_dict(),
            "good": [g.clone() for g in self.good],
            "good_opt": [self.good_opt.get(p) for p in self.params],
            "gen": self.gen.get_state(),
            "state": self.state,
        }

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.net.load_state_dict(d["net"])
        self.opt = torch.optim.Adam(self.params, lr=d["state"].lr, foreach=True)
        self.opt.load_state_dict(d["opt"])
        with torch.no_grad():
            for g, s in zip(self.good, d["good"], strict=True):
                g.copy_(s)
        self.good_opt = {p: v for p, v in zip(self.params, d["good_opt"], strict=True) if v is not None}
        self._snap = None  # the new optimiser holds new state tensors
        self.gen.set_state(d["gen"])
        self.state = d["state"]
        # a checkpoint from before warm starts / the checked averages: its pickled state lacks those
        # fields (the dataclass defaults on the class would hide that from hasattr)
        for name in ("weights", "best_average", "best_average_misfit", "best_average_it", "best_average_weights"):
            if name not in vars(self.state):
                setattr(self.state, name, getattr(LoopState, name))

    # ------------------------------------------------------------------ one iteration
    def output(self) -> torch.Tensor:
        """The network's output ``f_θ(z + η)`` (fit units)."""
        z = self.net.z
        if self.reg > 0:
            z = z + self.reg * torch.randn(z.shape, generator=self.gen, device=z.device, dtype=z.dtype)
        out = self.net(z)[0]
        return apply_constraint(out, self.constraint) if self.constraint else out

    def evaluate(self) -> tuple[torch.Tensor, torch.Tensor, float, float, bool]:
        """Forward pass: ``(output, loss, loss value, misfit (fit units), acceptable)``."""
        out = self.output()
        try:
            pred = self.op.forward(out)
        except ConvergenceError:  # a nonlinear model's field solve failed here: a failed step, backtrack
            nan = torch.full((), float("nan"), device=out.device)
            return out, nan, float("nan"), float("nan"), False
        data = self.loss_fn(pred, self.y_s, self.op)
        loss = data if self.penalty is None else data + self.penalty(out)
        loss_value = float(loss.detach())
        if self.data_is_misfit:  # the MSE data term is the misfit: no second pass over the measurements
            misfit_s = loss_value if self.penalty is None else float(data.detach())
        else:
            with torch.no_grad():
                misfit_s = float(half_squared_norm(pred.detach() - self.y_s))
        s = self.state
        ok = math.isfinite(misfit_s) and math.isfinite(loss_value)
        if ok and s.it >= WARMUP and misfit_s > self.jump * s.prev_misfit:
            ok = False  # a jump: the last step overshot
        return out, loss, loss_value, misfit_s, ok

    def step(self, loss: torch.Tensor) -> None:
        """One Adam step on ``loss``; the iteration counter advances."""
        self.opt.zero_grad(set_to_none=True)
        try:
            loss.backward()
        except ConvergenceError as exc:  # the adjoint solve failed: stop with the best valid iterate
            self.state.reason = f"numerical failure: {str(exc).splitlines()[0]}"
            raise StopFitError from exc
        self.opt.step()
        self.state.it += 1

    def backtrack(self) -> None:
        """Restore the last good weights and optimiser moments and halve the step (or raise :class:`StopFitError`)."""
        s = self.state
        s.fails += 1
        s.backtracks += 1
        if s.fails > self.max_bt:
            warnings.warn(
                f"stopping: the step failed again (NaN/Inf or a loss jump) after {self.max_bt} consecutive "
                "backtracks; returning the best valid iterate",
                RuntimeWarning,
                stacklevel=4,
            )
            s.reason = f"numerical failure: {self.max_bt} consecutive backtracks"
            raise StopFitError
        with torch.no_grad():
            for p, g in zip(self.params, self.good, strict=True):
                p.copy_(g)
            # restore the optimiser's moments too: a fresh Adam's first step is a full-size
            # sign step, which would itself look like a jump
            for p in self.params:
                saved = self.good_opt.get(p)
                if saved is None:
                    self.opt.state.pop(p, None)
                else:
                    for k, v in saved.items():
                        self.opt.state[p][k].copy_(v)
        s.lr *= 0.5
        for group in self.opt.param_groups:
            group["lr"] = s.lr

    def keep_good(self, misfit_s: float) -> None:
        """The current iterate is good: snapshot its weights and the optimiser's moments (backtracking target)."""
        s = self.state
        s.fails = 0
        s.prev_misfit = misfit_s
        torch._foreach_copy_(self.good, self.params)
        # in-place snapshot of the optimiser state (no allocation after the first)
        if self._snap is not None and len(self.good_opt) == len(self.opt.state):
            torch._foreach_copy_(*self._snap)  # Adam updates its state tensors in place: the lists stay valid
        else:  # first snapshot (or new state appeared): allocate, and remember the pairs to copy
            for p in self.params:
                st = self.opt.state.get(p)
                if st:
                    self.good_opt[p] = {k: v.clone() for k, v in st.items() if torch.is_tensor(v)}
            if self.good_opt:
                dst = [v for saved in self.good_opt.values() for v in saved.values()]
                src = [self.opt.state[p][k] for p, saved in self.good_opt.items() for k in saved]
                self._snap = (dst, src)

    def keep_weights(self) -> None:
        """Copy the network's state (weights that produced this iterate, input, buffers) into the loop state."""
        self.state.weights = self.copy_weights(self.state.weights)

    def copy_weights(self, into: dict[str, torch.Tensor] | None) -> dict[str, torch.Tensor]:
        """The network's state copied into ``into`` (reused when it has the same keys, else a new dict)."""
        sd = self.net.state_dict()
        if into is None or into.keys() != sd.keys():
            return {k: v.detach().clone() for k, v in sd.items()}
        torch._foreach_copy_(list(into.values()), [v.detach() for v in sd.values()])
        return into

    def misfit_of(self, image: torch.Tensor) -> float:
        """Data misfit ``½‖A x − y‖²`` (data units) of an image in data units, on the fitted measurements."""
        with torch.no_grad():
            pred = self.op.forward(image / self.image_factor)
            return float(half_squared_norm(pred - self.y_s)) / self.scale**2

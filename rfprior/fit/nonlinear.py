r"""The fit of a nonlinear forward model (full-wave scattering): physical units, constraints, frequency hopping.

A linear model is fitted with the data scaled to the network (``A(f/s) = A(f)/s``); a
nonlinear one cannot be, so its forward model is evaluated at the physical image
``χ = f_θ · image_factor`` (:class:`PhysicalFitOperator`), and the network starts at a
weak contrast (``max |χ₀| =`` :data:`START_CONTRAST`) where the field solves are cheap and
the Born regime holds; the fit grows the contrast from there.

**Frequency hopping** (Chew & Lin 1995; the usual schedule on the Institut Fresnel data):
the stages fit the lowest frequency, then the two lowest, …, then all, each stage
starting from the previous stage's network (a warm start, :func:`rfprior.reconstruct`'s
``init``). Low frequencies see a weakly scattering object and pin down the coarse
contrast; the higher ones add resolution without falling into the cycle-skipping minima
a cold start at high frequency has. Only the last stage, on all the data, runs the
stopping rules.
"""

from __future__ import annotations

import cmath
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import torch

from operators import LinearOperator, RestrictedOperator, ScaledOperator
from operators.calibration import calibrated

from ..penalty import Penalty, reference_weight

__all__ = [
    "CONSTRAINTS",
    "CalibratedFitOperator",
    "HOP_MIN_ITERATIONS",
    "START_CONTRAST",
    "REFINE_RTOL",
    "PhysicalFitOperator",
    "apply_constraint",
    "calibration_report",
    "check_constraint",
    "fit_hopping",
    "frequency_bands",
    "frequency_labels",
    "frequency_subset",
    "hopping_bands",
    "reference_penalty",
    "refine_on_pixels",
    "start_scale",
    "unrestricted",
]

#: the fewest iterations of an early frequency-hopping band
HOP_MIN_ITERATIONS = 50
#: the pixel refinement stops once its objective fell by less than this (relative) over 50 steps
REFINE_RTOL = 1e-4
#: the largest ``|χ|`` of the untrained network's first image
START_CONTRAST = 0.05
#: ``constraint=`` names: ``"real"`` (Im χ = 0), ``"nonnegative"`` (Re χ ≥ 0), ``"lossy"`` (Re χ ≥ 0, Im χ ≤ 0, a
#: passive lossy dielectric in the ``exp(+jωt)`` convention)
CONSTRAINTS = ("real", "nonnegative", "lossy")


def check_constraint(constraint: str | Sequence[str] | None) -> tuple[str, ...]:
    """``constraint`` as a tuple of names from :data:`CONSTRAINTS` (``None``: none)."""
    if constraint is None:
        return ()
    names = (constraint,) if isinstance(constraint, str) else tuple(constraint)
    bad = [c for c in names if c not in CONSTRAINTS]
    if bad or not all(isinstance(c, str) for c in names):
        raise ValueError(f"constraint must be None or some of {CONSTRAINTS}, got {constraint!r}")
    return tuple(dict.fromkeys(names))


def apply_constraint(image: torch.Tensor, names: tuple[str, ...]) -> torch.Tensor:
    """Project a complex image onto the constraint set (a parametrisation: gradients pass where inactive)."""
    if not names:
        return image
    re, im = image.real, image.imag
    if "nonnegative" in names or "lossy" in names:
        re = re.clamp(min=0)
    if "real" in names:
        im = torch.zeros_like(im)
    elif "lossy" in names:
        im = im.clamp(max=0)
    return torch.complex(re, im)


class PhysicalFitOperator(LinearOperator):
    """``out ↦ s · A(out · image_factor)``: a nonlinear ``A`` evaluated at the physical image.

    For a linear ``A`` this equals the scaled, normalised operator the fit uses, ``A(out)/‖A‖``.
    """

    is_linear = False

    def __init__(self, op: LinearOperator, scale: float, image_factor: float) -> None:
        super().__init__(
            op.in_shape, op.out_shape, op.dims, dtype=op.dtype, device=op.device, spatial_dims=op.spatial_dims
        )
        self.op, self.scale, self.image_factor = op, float(scale), float(image_factor)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op._forward(x * self.image_factor) * self.scale

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        raise TypeError("the fit's nonlinear operator has no adjoint")

    @property
    def born(self) -> LinearOperator:
        """The linearisation, scaled alike."""
        from operators import linear_part

        return linear_part(self.op) * (self.scale * self.image_factor)


class CalibratedFitOperator(LinearOperator):
    """``x ↦ g_f · A(x)``: a fit operator with one complex gain per frequency fitted to ``y``.

    The gains are the normalised least-squares gains of :func:`operators.calibration.frequency_gains`
    for the current prediction (geometric mean one), so the misfit ``½‖A_g(x) − y‖²`` is the
    self-calibrated misfit; a function of ``x`` alone once ``y`` is fixed.

    Parameters
    ----------
    op : the (nonlinear) fit operator, ``out_shape`` that of ``y``
    y : complex, ``op.out_shape`` — the measurements it is compared with (fit units)
    labels : integer, ``op.out_shape`` — each measurement's frequency (:func:`frequency_labels`)
    n : the number of frequencies
    """

    is_linear = False

    def __init__(self, op: LinearOperator, y: torch.Tensor, labels: torch.Tensor, n: int) -> None:
        super().__init__(
            op.in_shape, op.out_shape, op.dims, dtype=op.dtype, device=op.device, spatial_dims=op.spatial_dims
        )
        self.op, self.y, self.labels, self.n = op, y.detach(), labels.to(y.device), int(n)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return calibrated(self.op.forward(x), self.y, self.labels, self.n)[0]

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        raise TypeError("the fit's nonlinear operator has no adjoint")


def frequency_labels(op: LinearOperator) -> tuple[torch.Tensor, int]:
    """``(labels, F)``: the frequency index of each of ``op``'s measurements (``op.out_shape``) and their number."""
    base, index, _ = _base(op)
    n = int(base.out_shape[2])
    if index is not None:
        return (index % n).reshape(op.out_shape), n
    return torch.arange(n, device=base.device).expand(base.out_shape), n


def calibration_report(op: LinearOperator, y: torch.Tensor, image: torch.Tensor) -> list[dict[str, float]]:
    """Per frequency: the gain of ``image`` against ``y`` (:mod:`operators.calibration`) and the relative misfit.

    One field solve. Returns ``{"frequency_hz", "abs", "phase_deg", "relative_misfit"}`` records, the
    misfit ``‖y_f − g_f A_f(χ)‖² / ‖y_f‖²`` over the measured entries (what ``settings["calibration"]``
    holds): a frequency far above the others is one the model does not explain (docs/guide.md).
    """
    labels, n = frequency_labels(op)
    with torch.no_grad():
        pred = op.forward(image.to(device=op.device, dtype=op.dtype))
        y = y.to(device=pred.device, dtype=pred.dtype)
        lab = labels.to(y.device)
        out, g = calibrated(pred, y, lab, n)
        flat = lab.reshape(-1)
        res = torch.zeros(n, dtype=torch.float64, device=y.device).index_add(
            0, flat, torch.view_as_real((out - y).reshape(-1)).square().sum(-1).double()
        )
        energy = torch.zeros(n, dtype=torch.float64, device=y.device).index_add(
            0, flat, torch.view_as_real(y.reshape(-1)).square().sum(-1).double()
        )
    base, _, _ = _base(op)
    f = torch.as_tensor(base.frequencies).tolist()
    return [
        {"frequency_hz": float(fi), "abs": abs(complex(gi)), "phase_deg": math.degrees(cmath.phase(complex(gi))),
         "relative_misfit": float(r / e) if e > 0 else float("nan")}
        for fi, gi, r, e in zip(f, g.cpu().tolist(), res.tolist(), energy.tolist(), strict=True)
    ]  # fmt: skip


def start_scale(net: torch.nn.Module, op_norm: float, constraint: tuple[str, ...]) -> float:
    """The data scale ``s`` that makes the first image's ``max |χ₀|`` equal :data:`START_CONTRAST`."""
    with torch.no_grad():
        peak = float(apply_constraint(net()[0], constraint).abs().max())
    if not (peak > 0 and peak < float("inf")):
        return 1.0 / op_norm
    return peak / (START_CONTRAST * op_norm)


def reference_penalty(
    net: torch.nn.Module, op: LinearOperator, y: torch.Tensor, opts: Any, init: Any
) -> Penalty | None:
    """A nonlinear model's ``penalty_weight="auto"``: scaled on the warm start's image
    (:func:`rfprior.penalty.reference_weight`), or ``None`` (with a warning) without a warm start.

    The starting image is the previous band's in frequency hopping, or the ``init=`` fit's; its
    physical image is the network's output over the warm start's output scale.
    """
    if init is None:
        warnings.warn(
            f"penalty={opts.penalty!r} with penalty_weight='auto' on a nonlinear model needs a starting image "
            "(frequency hopping, or init=); fitting without the penalty — give penalty_weight a number",
            UserWarning,
            stacklevel=4,
        )
        return None
    with torch.no_grad():
        ref = apply_constraint(net()[0], opts.constraint) / init.output_scale
    return reference_weight(opts.penalty, op, y, ref)


def _base(op: LinearOperator) -> tuple[LinearOperator, torch.Tensor | None, complex]:
    """``(scattering operator, flat measurement index or None, scalar)`` of ``c · S A``."""
    scalar = 1.0 + 0j
    if isinstance(op, ScaledOperator):
        scalar, op = op.scale, op.op
    index = None
    if isinstance(op, RestrictedOperator):
        index, op = op.index, op.op
    if not hasattr(op, "select_frequencies"):
        raise TypeError(f"{type(op).__name__}: frequency hopping needs an operator with select_frequencies")
    return op, index, scalar


def unrestricted(op: LinearOperator, y: torch.Tensor) -> tuple[LinearOperator, torch.Tensor | None, torch.Tensor]:
    """Undo a restriction to the measured entries, for solvers that take a mask (e.g. :func:`operators.csi_mr`).

    Parameters
    ----------
    op : a model, or ``model.restrict(index)`` (what :class:`rfprior.problem.Problem` builds for
        files with unmeasured entries)
    y : its measurements (``op.out_shape``)

    Returns
    -------
    (model, valid, y_full)
        The unrestricted model, a boolean mask of shape ``model.out_shape`` (``None`` when ``op`` was
        not restricted) and ``y`` scattered into ``model.out_shape`` (zeros where not measured).
    """
    if not isinstance(op, RestrictedOperator):
        return op, None, y
    base = op.op
    full = torch.zeros(base.size_out, dtype=y.dtype, device=y.device)
    valid = torch.zeros(base.size_out, dtype=torch.bool, device=y.device)
    full[op.index.to(y.device)] = y.reshape(-1)
    valid[op.index.to(y.device)] = True
    return base, valid.reshape(base.out_shape), full.reshape(base.out_shape)


def frequency_bands(op: LinearOperator) -> list[list[int]]:
    """The hopping stages of ``op``: the lowest frequency, the two lowest, …, all (indices into its frequencies)."""
    base, _, _ = _base(op)
    order = [int(i) for i in torch.as_tensor(base.frequencies).argsort()]
    return [sorted(order[: n + 1]) for n in range(len(order))]


def frequency_subset(op: LinearOperator, y: torch.Tensor, band: Sequence[int]) -> tuple[LinearOperator, torch.Tensor]:
    """The operator and measurements of one frequency band (a restriction to measured entries carries over)."""
    base, index, scalar = _base(op)
    sub = base.select_frequencies(band)
    F = base.out_shape[2]
    keep = torch.zeros(F, dtype=torch.bool)
    keep[list(band)] = True
    if index is None:
        new_op: LinearOperator = sub
        y_sub = y[..., list(band)]
    else:
        flat = index.cpu()
        f_of = flat % F
        kept = keep[f_of]
        pos = torch.full((F,), -1, dtype=torch.long)
        pos[list(band)] = torch.arange(len(band))
        new_flat = (flat[kept] // F) * len(band) + pos[f_of[kept]]
        new_op = sub.restrict(new_flat)
        y_sub = y[..., kept.to(y.device)]
    return (new_op if scalar == 1 else new_op * scalar), y_sub


def hopping_settings(bands: list[list[int]], op: LinearOperator, iterations: list[int]) -> list[dict[str, Any]]:
    """What :func:`rfprior.reconstruct` records in ``settings["hopping"]``."""
    base, _, _ = _base(op)
    f = torch.as_tensor(base.frequencies)
    return [
        {"frequencies_hz": [float(f[i]) for i in b], "iterations": n} for b, n in zip(bands, iterations, strict=True)
    ]


def hopping_bands(op: LinearOperator, opts: Any) -> list[list[int]] | None:
    """The frequency bands a nonlinear model is fitted on in turn, or ``None`` for one fit.

    ``opts.hopping``: ``False`` — one fit; ``None`` (default) — hop where the model has several
    frequencies, except for an ensemble (``fits > 1``) or a resumed run (its checkpoint is of one
    fit on all frequencies); ``True`` — hop, refusing those two.
    """
    if opts.hopping is False:
        return None
    try:
        bands = frequency_bands(op)
    except TypeError:
        if opts.hopping:
            raise
        return None
    if opts.fits > 1 or opts.resume is not None:
        if opts.hopping:
            raise ValueError("hopping=True: not with fits > 1 or resume")
        return None
    return bands if len(bands) > 1 else None


def fit_hopping(
    y: torch.Tensor, op: LinearOperator, opts: Any, bands: list[list[int]], fit_one: Callable[..., Any]
) -> Any:
    """Frequency hopping: a fixed-length ``fit_one`` per early band, each warm-started by the last,
    then ``fit_one`` with ``opts`` (its rules) on all data; ``settings["hopping"]`` records the bands.

    The early bands run without the image penalty; the last band's automatic penalty weight is
    scaled on the previous band's image (:func:`rfprior.penalty.reference_weight`).

    Each early band runs ``max(HOP_MIN_ITERATIONS, iterations // (2·(bands − 1)))`` iterations
    without truth, callbacks or checkpoints; an interrupt in one returns that band's result.
    """
    from ..stopping import FixedIterations

    if not isinstance(y, torch.Tensor) or tuple(y.shape) != op.out_shape:
        raise ValueError(f"y must be a tensor of the operator's out_shape {op.out_shape}")
    n_early = max(HOP_MIN_ITERATIONS, opts.iterations // (2 * (len(bands) - 1)))
    init, reference = opts.init, None
    for k, band in enumerate(bands[:-1]):
        sub_op, sub_y = frequency_subset(op, y, band)
        stage = replace(
            opts, stop=(FixedIterations(),), iterations=n_early, init=init, callbacks=(), checkpoint=None, truth=None,
            desc=f"{opts.desc} band {k + 1}/{len(bands)}", penalty=None,
        )  # fmt: skip
        early = fit_one(sub_y, sub_op, stage, {})
        if early.interrupted:
            early.settings = {**early.settings, "hopping": hopping_settings(bands[: k + 1], op, [n_early] * (k + 1))}
            return early
        init, reference = early.weights, early.image
    res = fit_one(y, op, replace(opts, init=init), {})
    res.settings = {
        **res.settings,
        "hopping": hopping_settings(bands, op, [n_early] * (len(bands) - 1) + [opts.iterations]),
    }
    if opts.refine > 0 and not res.interrupted and reference is not None:
        refine_on_pixels(res, reference, y, op, opts)
    return res


def refine_on_pixels(res: Any, reference: torch.Tensor, y: torch.Tensor, op: LinearOperator, opts: Any) -> None:
    r"""Refine ``res.image`` in place: Adam steps on the pixels of the same objective, at most ``opts.refine``.

    .. math:: \min_\chi\ \tfrac12\|y - A(\chi)\|^2 + \lambda\,\mathrm{TV}(\chi),
        \qquad \lambda = f \cdot \tfrac12\|y\|^2 / \mathrm{TV}(\chi_{\text{ref}})

    from the network's image, by :func:`operators.fullwave_tv` (``chi0=``, ``weight=``, no hopping), until
    the objective falls by less than :data:`REFINE_RTOL` over 50 steps, with the fit's constraint and,
    for ``penalty="tv"``, the weight the last band used
    (:func:`rfprior.penalty.reference_weight` in physical units: ``χ_ref`` the previous band's image,
    ``f`` the modality's factor; no penalty: λ = 0).

    Why (issue 33, docs/notes.md): on the held-out simulated scenes the network finds the right
    basin where the same objective fitted on the pixels from zero sometimes does not (nested rings),
    but it converges slowly inside it; the pixels converge fast. ``res.settings["refine"]`` records
    the steps, λ, the misfit before and after and the seconds; ``res.image`` becomes the refined
    image (``res.final_image`` and ``res.weights`` stay the network's). A field solve that fails
    keeps the network's image and says so in the settings and a warning.
    """
    import time

    from operators import ConvergenceError, fullwave_tv

    _, _, scalar = _base(op)
    base, valid, y_full = unrestricted(op.op if isinstance(op, ScaledOperator) else op, y / scalar)
    pen = None if opts.penalty is None else reference_weight(opts.penalty, op, y_full, reference.to(base.device))
    lam = 0.0 if pen is None else pen.weight
    names = tuple(opts.constraint)
    start = res.image.to(device=base.device, dtype=base.dtype)
    t = time.perf_counter()
    info: dict[str, Any] = {"max_iterations": opts.refine, "rtol": REFINE_RTOL, "weight": lam, "seconds": 0.0}
    try:
        out = fullwave_tv(base, y_full, valid=valid, iterations=opts.refine, chi0=start, weight=lam, hopping=False,
                          real="real" in names, lossy="lossy" in names, nonnegative="nonnegative" in names,
                          rtol=REFINE_RTOL, calibrate=opts.calibrate)  # fmt: skip
    except ConvergenceError as exc:
        warnings.warn(f"pixel refinement skipped: {str(exc).splitlines()[0]}", RuntimeWarning, stacklevel=3)
        res.settings = {**res.settings, "refine": {**info, "failed": str(exc).splitlines()[0]}}
        return
    steps = len(out.misfit)
    info.update(iterations=steps, stopped=out.stopped, misfit_before=out.misfit[0], misfit_after=out.misfit[-1],
                seconds=time.perf_counter() - t)  # fmt: skip
    res.image = out.chi.detach().to(device=res.image.device, dtype=res.image.dtype)
    res.settings = {**res.settings, "refine": info}
    why = "levelled off" if out.stopped == "converged" else "budget"
    res.stop_reason = f"{res.stop_reason}; then {steps} TV steps on the pixels ({why})"

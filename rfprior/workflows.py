"""End-to-end jobs shared by the CLI, the examples and the benchmarks.

* :func:`default_rules` — the stopping rules used when the user names a rule
  (:mod:`rfprior.stopping.named`, re-exported).
* :func:`classical_baselines` — backprojection, CGLS and TV on one measurement.
* :func:`compare` — a table of classical baselines vs priors (PSNR/SSIM with a truth,
  data misfit and rule statistics without).
* :func:`run_demo` — the `make demo` job: backprojection vs the default prior with
  automatic stopping on the bundled MIMO file, figures, a result file and a summary.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from operators import (
    LinearOperator,
    born_iterative_tv,
    cgls_discrepancy,
    csi_mr,
    fullwave_tv,
    l1_discrepancy,
    linear_part,
    tv_discrepancy,
)

from . import defaults, modalities
from .defaults import default_prior
from .fit import reconstruct
from .fit.nonlinear import unrestricted
from .io.bundled import bundled_dir
from .losses import half_squared_norm
from .metrics import psnr, ssim
from .modalities import Modality
from .result import Result
from .stopping import RULES, default_rules

__all__ = [
    "RULES",
    "Baselines",
    "Row",
    "classical_baselines",
    "classical_image",
    "compare",
    "compare_sequence",
    "default_rules",
    "format_table",
    "run_demo",
    "unrestricted",
]

DATA_DIR = bundled_dir()  # the bundled data/*.h5, installed as the package rfprior.data


@dataclass
class Row:
    """One line of a comparison table."""

    method: str
    image: torch.Tensor
    seconds: float
    misfit: float
    psnr: float | None = None
    ssim: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _misfit(op: LinearOperator, y: torch.Tensor, x: torch.Tensor) -> float:
    with torch.no_grad():
        return float(half_squared_norm(op.forward(x.to(op.device)) - y))


class Baselines(dict):
    """``{label: (image, seconds)}`` of :func:`classical_baselines`, with ``parameters``: the exact chosen
    values by method (``"cgls"``: iterations, ``"tv"`` and ``"l1"``: λ in data units)."""

    def __init__(self) -> None:
        super().__init__()
        self.parameters: dict[str, float] = {}


def classical_image(op: LinearOperator, y: torch.Tensor) -> tuple[str, torch.Tensor]:
    """The forward model's classical direct image, ``(name, image (H, W))``.

    :meth:`rfprior.modalities.Modality.direct_image`: filtered backpropagation for diffraction
    tomography, zero filling for partial Fourier, the backprojection ``Aᴴy / diag(AᴴA)``
    (matched filter, a unit point target images to ≈ 1) for radar and any other operator.
    """
    m = modalities.find(op) or Modality()
    return m.direct_image_name, m.direct_image(op, y)


def classical_baselines(
    op: LinearOperator,
    y: torch.Tensor,
    *,
    sigma: float | None = None,
    tau: float = 1.0,
    cg_iters: int = 200,
    tv_iters: int = 200,
    l1_basis: str | None = None,
) -> Baselines:
    """The fair classical baselines, none tuned with ground truth: ``{label: (image (H, W), seconds)}``.

    * the direct image (:func:`classical_image`);
    * CGLS stopped by the discrepancy principle (at most ``cg_iters`` iterations);
    * TV with λ by the discrepancy principle (``tv_iters`` PDHG steps per λ tried);
    * ℓ1 by FISTA with λ by the discrepancy principle, in pixels for radar (point
      scatterers) and in an orthonormal Haar basis otherwise (``l1_basis`` overrides).

    The discrepancy principle (:mod:`operators.parameter_choice`) needs the noise σ per
    real/imag component: ``sigma`` if given, else the estimate the priors' discrepancy rule
    uses (:func:`rfprior.modalities.estimate_sigma`), so baselines and priors see the same σ
    (:class:`rfprior.problem.Problem` estimates it once and passes it to both).
    Labels carry the chosen parameter, e.g. ``"TV (discrepancy, λ=0.028)"``; the exact values are
    in the returned mapping's ``parameters`` (``{"cgls": iterations, "tv": λ, "l1": λ}``).
    """
    if sigma is None or not sigma > 0:  # unknown, or noiseless (σ = 0 leaves the principle undefined)
        sigma, _ = modalities.estimate_sigma(op, y)
    if not sigma > 0:  # noise-free data: fit to a millionth of the data's level
        sigma = 1e-6 * float(torch.linalg.vector_norm(y)) / max(1, y.numel()) ** 0.5
    if not op.is_linear:
        return _full_wave_baselines(op, y, sigma, tau, tv_iters)
    basis = l1_basis or (modalities.find(op) or Modality()).l1_basis
    out = Baselines()
    t = time.perf_counter()
    name, bp = classical_image(op, y)
    out[name] = (bp, time.perf_counter() - t)
    t = time.perf_counter()
    ch = cgls_discrepancy(op, y, sigma, tau=tau, max_iters=cg_iters)
    out[f"CGLS (discrepancy, {int(ch.parameter)} it)"] = (ch.image, time.perf_counter() - t)
    out.parameters["cgls"] = int(ch.parameter)
    t = time.perf_counter()
    ch = tv_discrepancy(op, y, sigma, tau=tau, iters=tv_iters)
    out[f"TV (discrepancy, λ={ch.parameter:.2g})"] = (ch.image, time.perf_counter() - t)
    out.parameters["tv"] = float(ch.parameter)
    t = time.perf_counter()
    ch = l1_discrepancy(op, y, sigma, tau=tau, basis=basis, iters=tv_iters)
    out[f"ℓ1 {basis} (discrepancy, λ={ch.parameter:.2g})"] = (ch.image, time.perf_counter() - t)
    out.parameters["l1"] = float(ch.parameter)
    return out


def _full_wave_baselines(op: LinearOperator, y: torch.Tensor, sigma: float, tau: float, tv_iters: int) -> Baselines:
    """A nonlinear (full-wave) model's baselines: the Born backprojection, Born + TV, MR-CSI, Born-iterative TV
    and full-wave TV on the pixels.

    λ (TV, BIM) and the CSI iteration count by the discrepancy principle with the same σ; where the
    misfit cannot reach it (model error on measured data), CSI runs its full budget and TV takes
    the smallest λ tried — what a user without ground truth gets. Full-wave TV
    (:func:`operators.fullwave_tv`) is the full-wave prior's objective without the network (the same
    σ-free λ rule, constraint and frequency hopping): what the network adds is the difference.
    """
    out = Baselines()
    born = linear_part(op)
    t = time.perf_counter()
    name, bp = classical_image(op, y)
    out[name] = (bp, time.perf_counter() - t)
    t = time.perf_counter()
    ch = tv_discrepancy(born, y, sigma, tau=tau, iters=tv_iters)
    out[f"Born + TV (discrepancy, λ={ch.parameter:.2g})"] = (ch.image, time.perf_counter() - t)
    out.parameters["born_tv"] = float(ch.parameter)
    base, valid, full = unrestricted(op, y)
    t = time.perf_counter()
    csi = csi_mr(base, full, valid=valid, sigma=sigma, tau=tau)
    out[f"MR-CSI (discrepancy, {csi.iteration} it)"] = (csi.chi, time.perf_counter() - t)
    out.parameters["csi_mr"] = int(csi.iteration)
    t = time.perf_counter()
    bim = born_iterative_tv(base, full, sigma, valid=valid, tau=tau, iters=tv_iters)
    out[f"Born-iterative TV (discrepancy λ per step, {bim.iteration} outer)"] = (bim.chi, time.perf_counter() - t)
    out.parameters["bim_tv"] = int(bim.iteration)
    t = time.perf_counter()
    fw = fullwave_tv(base, full, valid=valid, calibrate=defaults.default_calibrate(op))  # the prior's objective
    out[f"full-wave TV (pixels, λ={fw.weight:.2g})"] = (fw.chi, time.perf_counter() - t)
    out.parameters["fullwave_tv"] = float(fw.weight)
    return out


def compare(
    op: LinearOperator,
    y: torch.Tensor,
    *,
    truth: torch.Tensor | None = None,
    sigma: float | None = None,
    priors: tuple[str | None, ...] = (None,),
    loss: str | None = None,
    stop: str | None = None,
    iterations: int | None = None,
    lr: float | None = None,
    seed: int | None = None,
    device: str | None = None,
    progress: bool = False,
    cg_iters: int = 200,
    tv_iters: int = 200,
    fits: int | None = None,
    penalty: str | None = "auto",
) -> tuple[list[Row], dict[str, Result]]:
    """Run the fair classical baselines and each prior on one measurement; return table rows and results.

    Baselines: :func:`classical_baselines` (parameters by the discrepancy principle, with
    ``sigma`` or the same σ estimate the priors use). ``fits > 1`` averages that many
    independently seeded fits per prior (see :func:`rfprior.reconstruct`). ``None``: the defaults
    (:data:`rfprior.defaults.FIT`). The priors run first, so that a wrong argument (prior, rule,
    iterations) fails before the baselines' work; the rows list the baselines first.
    """
    stop = defaults.FIT.stop if stop is None else stop
    fits = defaults.FIT.fits if fits is None else fits
    from .priors import PRESETS, PRIORS

    known = {"", "auto", *PRIORS, *PRESETS}
    unknown = [p for p in priors if isinstance(p, str) and p not in known]
    if unknown:  # before any fit: a typo in the third prior should not cost two fits
        raise ValueError(f"prior must be one of {sorted(PRIORS) + sorted(PRESETS)}; unknown in priors: {unknown}")
    default_rules(stop, sigma, op=op)  # a rule not offered for this forward model is refused here, too
    fitted: list[Row] = []
    results: dict[str, Result] = {}
    for p in priors:
        p = p if p and p != "auto" else default_prior(op)
        t = time.perf_counter()
        res = reconstruct(
            y,
            op,
            prior=p,
            loss=loss,
            stop=default_rules(stop, sigma, op=op),
            iterations=iterations,
            lr=lr,
            seed=seed,
            device=device,
            sigma=sigma,
            truth=truth,
            progress=progress,
            fits=fits,
            penalty=penalty,
        )
        results[p] = res
        extra: dict[str, Any] = {"iteration": res.chosen_iteration, "stop": res.stop_reason}
        if res.members:  # one chosen iteration per fit
            extra["iteration"] = ",".join(str(i) for i in res.rule_summaries["ensemble"]["chosen_iterations"])
        if res.sigma is not None:
            extra["sigma"] = res.sigma
        pen = res.settings.get("penalty")
        label = f"{p}{' + TV' if pen else ''} + {stop}" + (f" (mean of {fits} fits)" if fits > 1 else "")
        fitted.append(Row(label, res.image, time.perf_counter() - t, _misfit(op, y, res.image), extra=extra))
    rows: list[Row] = []
    for name, (img, secs) in classical_baselines(op, y, sigma=sigma, cg_iters=cg_iters, tv_iters=tv_iters).items():
        rows.append(Row(name, img.cpu(), secs, _misfit(op, y, img)))
    rows += fitted
    if truth is not None:
        for r in rows:
            r.psnr = float(psnr(r.image, truth))
            r.ssim = float(ssim(r.image, truth))
    return rows, results


def format_table(rows: list[Row], m: int, sigma: float | None = None) -> str:
    """Plain-text table. Without a truth the misfit is shown as ``½‖r‖²/(Mσ²)`` when σ is known."""
    has_truth = any(r.psnr is not None for r in rows)
    w = max([34] + [len(r.method) for r in rows])
    head = f"{'method':<{w}} {'time [s]':>9} {'misfit/(Mσ²)' if sigma else 'misfit ½‖r‖²':>14}"
    head += f" {'PSNR [dB]':>10} {'SSIM':>6}" if has_truth else ""
    head += "  chosen it"
    lines = [head, "-" * len(head)]
    for r in rows:
        mis = r.misfit / (m * sigma**2) if sigma else r.misfit
        line = f"{r.method:<{w}} {r.seconds:>9.2f} {mis:>14.4g}"
        if has_truth:
            line += f" {r.psnr:>10.2f} {r.ssim:>6.3f}" if r.psnr is not None and math.isfinite(r.psnr) else ""
        it = r.extra.get("iteration")
        line += f"  {it if it is not None else '':>9}"
        lines.append(line)
    return "\n".join(lines)


def run_demo(
    outdir: str | Path = "rfprior-demo",
    *,
    path: str | Path | None = None,
    iterations: int | None = None,
    seed: int | None = None,
    device: str | None = None,
    force: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Backprojection vs the default prior with automatic stopping on the bundled MIMO file.

    Writes ``result.nc``, ``comparison.png/.pdf`` and ``curves.png/.pdf`` into ``outdir``
    and returns a summary dict (also printed by the CLI).
    """
    from . import plot
    from .fit import FitOptions
    from .problem import Problem, reconstruct_file

    path = Path(path) if path is not None else DATA_DIR / "mimo.h5"
    outdir = Path(outdir)
    result_path = outdir / "result.nc"
    if result_path.exists() and not force:
        raise FileExistsError(f"{result_path} exists; pass --force to overwrite")
    problem = Problem.from_file(path, device=device)  # σ estimated, as a user without the truth would
    FitOptions.build(problem.op, iterations=iterations, seed=seed, device=device)  # bad options: before any file
    outdir.mkdir(parents=True, exist_ok=True)
    # the forward model's default prior, penalty and rules, as rfprior.reconstruct(y, op) and rfprior reconstruct
    t = time.perf_counter()
    job = reconstruct_file(
        problem, result_path, iterations=iterations, seed=seed, device=device, force=force, progress=progress
    )
    seconds, res = time.perf_counter() - t, job.result
    rows = [
        Row(name, img.cpu(), secs, problem.misfit(img))
        for name, (img, secs) in classical_baselines(problem.op, problem.y, sigma=problem.sigma).items()
    ]
    truth = problem.truth
    if truth is not None:
        for r in rows:
            r.psnr, r.ssim = float(psnr(r.image, truth)), float(ssim(r.image, truth))
    name = res.settings["prior"].get("preset", res.settings["prior"]["name"])
    label = f"{name}{' + TV' if res.settings.get('penalty') else ''} (it {res.chosen_iteration})"
    rows.append(
        Row(
            f"{name}{' + TV' if res.settings.get('penalty') else ''} + {defaults.FIT.stop}",
            res.image,
            seconds,
            problem.misfit(res.image),
            psnr=None if truth is None else float(psnr(res.image, truth)),
            ssim=None if truth is None else float(ssim(res.image, truth)),
            extra={"iteration": res.chosen_iteration, "stop": res.stop_reason},
        )
    )
    coords = problem.coords()
    panels = {**{r.method: r.image for r in rows[:-1]}, label: res.image}
    if truth is not None:
        panels = {"truth": truth, **panels}
    figs = plot.compare(panels, coords.get("x"), coords.get("z"), path=outdir / "comparison")
    del figs
    plot.curves(res.history, chosen=res.chosen_iteration, oracle=res.oracle_iteration, path=outdir / "curves")
    sigma = problem.dataset.attrs.get("noise_sigma") if problem.dataset is not None else None
    table = format_table(rows, problem.size, sigma=res.sigma)
    return {
        "input": str(path),
        "outdir": str(outdir),
        "table": table,
        "chosen_iteration": res.chosen_iteration,
        "stop_reason": res.stop_reason,
        "sigma_estimated": res.sigma,
        "sigma_true": sigma,
        "files": sorted(str(p) for p in outdir.iterdir()),
    }


def compare_sequence(
    problem: Any,
    *,
    iterations: int | None = None,
    seed: int | None = None,
    device: str | None = None,
    progress: bool = False,
    per_frame_prior: bool = True,
    tv_iters: int = 200,
) -> tuple[list[Row], dict[str, Result]]:
    """The fair baselines and the joint prior on a frame sequence (:class:`rfprior.problem.Problem` with frames).

    Rows (misfit: the sum over frames; PSNR/SSIM: the mean over frames when the truth is known):
    the direct image per frame; TV per frame, λ by the discrepancy principle; spatio-temporal TV
    (:func:`operators.tv_sequence_discrepancy`: λ by the discrepancy principle on the whole sequence,
    the temporal weight by held-out measurements); the one-frame default prior per frame, each
    frame warm-started from the previous one (``per_frame_prior``); the joint prior (one network
    for the sequence). Every method uses the problem's σ; none sees the truth.
    """
    from operators import tv_sequence_discrepancy

    from .fit.sequence import reconstruct_sequence

    ops, ys, sigma = problem.ops, problem.ys, problem.sigma
    if ops is None:
        raise ValueError("compare_sequence: the problem is a single frame; use compare")
    rows: list[Row] = []
    results: dict[str, Result] = {}
    t = time.perf_counter()
    name, direct = problem.direct_image()
    rows.append(Row(f"{name} per frame", direct.cpu(), time.perf_counter() - t, problem.misfit(direct)))
    t = time.perf_counter()
    tv = [tv_discrepancy(op, y, float(sigma), iters=tv_iters) for op, y in zip(ops, ys, strict=True)]
    img = torch.stack([c.image for c in tv]).cpu()
    rows.append(Row("TV per frame (discrepancy)", img, time.perf_counter() - t, problem.misfit(img)))
    t = time.perf_counter()
    st = tv_sequence_discrepancy(ops, ys, float(sigma), iters=tv_iters, seed=0 if seed is None else seed)
    label = f"spatio-temporal TV (discrepancy, λ={st.parameter:.2g}, w={st.temporal_weight:g})"
    rows.append(Row(label, st.image.cpu(), time.perf_counter() - t, problem.misfit(st.image)))
    if per_frame_prior:
        t = time.perf_counter()
        images, prev = [], None
        for op, y in zip(ops, ys, strict=True):
            r = reconstruct(y, op, sigma=sigma, iterations=iterations, seed=seed, device=device, progress=False,
                            init=prev)  # fmt: skip
            images.append(r.image)
            prev = r.weights
        img = torch.stack(images).cpu()
        rows.append(Row("prior per frame (warm start)", img, time.perf_counter() - t, problem.misfit(img)))
    t = time.perf_counter()
    res = reconstruct_sequence(ys, ops, sigma=sigma, truth=problem.truth, times=problem.times, iterations=iterations,
                               seed=seed, device=device, progress=progress)  # fmt: skip
    results["joint"] = res
    rows.append(Row(f"{res.settings['prior'].get('preset', res.settings['prior']['name'])} joint (one network)",
                    res.image, time.perf_counter() - t, problem.misfit(res.image),
                    extra={"iteration": res.chosen_iteration, "stop": res.stop_reason}))  # fmt: skip
    if problem.truth is not None:
        truth = problem.truth
        for r in rows:
            r.psnr = float(sum(float(psnr(r.image[f], truth[f])) for f in range(len(ops))) / len(ops))
            r.ssim = float(sum(float(ssim(r.image[f], truth[f])) for f in range(len(ops))) / len(ops))
    return rows, results

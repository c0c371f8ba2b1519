"""Stopping-rule benchmark (issue 6): how close does each rule get to the oracle iterate?

Run: ``python -m benchmarks.stopping [--quick]``. Prints markdown tables and writes
``benchmarks/results/stopping.json`` / ``stopping.md``; every finished case goes to the part
file ``results/stopping_part1of1.json`` first, so an interrupted run resumes where it stopped.
The full run uses the shipped budget (``rfprior.defaults.FIT.iterations`` = 1500) on 48²
images: 90 cases, about 95 CPU-minutes (≈ 47 min wall) on the 2-core machine; run it in two
parts, one per core, and merge::

    python -m benchmarks.stopping --part 1/2 &
    python -m benchmarks.stopping --part 2/2 &
    wait; python -m benchmarks.stopping --merge 2

``--modalities``, ``--priors``, ``--loss`` and ``--no-holdout`` run a subset, e.g. the DSP loss
on the radar default (``stopping_mimo_dsp.md``; 15 cases, ≈ 16 CPU-minutes)::

    python -m benchmarks.stopping --modalities mimo --priors dip_small --loss dsp --no-holdout \
        --name stopping_mimo_dsp

Design (stated in the output):

* **Main run** per case (modality × SNR × seed × prior): ``rfprior.reconstruct`` with a
  fixed budget, ``truth=``, deciding rule ``FixedIterations()`` and recorded rules
  ``Discrepancy()`` (σ estimated from the data), ``WindowedVariance(window=50, patience=300)``
  and ``RunningAverage()``; the network is fitted to **all** measurements. One run gives
  every rule's choice and the PSNR curves (raw iterate and running average).
* **Hold-out run**: a separate run with ``HoldOut()`` deciding (fits 90 % of the data,
  stops after its patience), because recording HoldOut alongside would make every other
  rule (and the oracle) fit only 90 % of the data. Its gap is measured against the main
  run's oracle (the honest comparison: what you lose by holding out *and* choosing).
* **Default rule** = ``[Discrepancy(), RunningAverage()]``: the running average at the
  discrepancy choice (``psnr_average`` there; τ per prior, ``rfprior.defaults.default_tau``
  at run time — recorded per case; when it has changed since, the tables add the current τ
  replayed exactly from the stored curves); if the misfit never reaches τMσ̂² the engine
  returns whichever of the last running average and the last iterate fits the data better
  (scored here from the main run's final average and final iterate). **default_v0** is the
  previous default, scored from the same run: τ = 1 for every prior and the last running
  average when the threshold is never reached.
* **DSP check** (partial Fourier and MIMO, 20 dB): PSNR at 3× the oracle iteration
  (clipped to the budget) with ``loss="mse"`` (the main run) vs
  ``rfprior.losses.DSPLoss(w_complex=1, w_amplitude=1, w_phase=1)`` (an extra run).
"""

from __future__ import annotations

import argparse
import math
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

import rfprior
from benchmarks.harness import (
    RESULTS,
    case_key,
    finish,
    grid,
    machine,
    md_table,
    merge_parts,
    parse_part,
    part_path,
    quantile,
    run,
    simulate,
    write_outputs,
)
from rfprior.stopping.average import EMA_RAMP  # the probe must ramp exactly like the engine's running average

MODALITIES = ("partial_fourier", "mimo", "diffraction_tomography")
SHORT = {"partial_fourier": "PF", "mimo": "MIMO", "diffraction_tomography": "DT"}
RULES = ("discrepancy", "default", "default_v0", "wmv", "heldout", "fixed", "fixed_avg")
WMV_PATIENCE = 300


#: averaging variants probed alongside the engine's running average (a callback; replayed offline):
#: ``ema<w>`` = the engine's ramped exponential average with weight w; ``tail<κ>`` = the uniform
#: (Polyak) average of every iterate since the misfit ratio first fell to κ (the ema0.99 before that)
EMA_WEIGHTS = (0.99, 0.995, 0.998)
TAIL_STARTS = (2.0, 1.5, 1.2)


class AverageProbe:
    """Callback recording the PSNR of several averages of the iterates (same ramp as the engine's EMA)."""

    def __init__(self, truth: torch.Tensor, op: Any, y: torch.Tensor) -> None:
        self.truth, self.op, self.y = truth, op, y
        self.ema: dict[float, torch.Tensor] = {}
        self.tail: dict[float, tuple[torch.Tensor, int] | None] = dict.fromkeys(TAIL_STARTS)
        self.curves: dict[str, list[float]] = {f"ema{w:g}": [] for w in EMA_WEIGHTS}
        self.curves.update({f"tail{k:g}": [] for k in TAIL_STARTS})

    def __call__(self, st: Any) -> None:
        img, it = st.image, st.iteration
        for w in EMA_WEIGHTS:
            wt = min(w, 1.0 - 1.0 / (1.0 + EMA_RAMP * it))
            e = self.ema.get(w)
            self.ema[w] = img.clone() if e is None else e.mul_(wt).add_(img, alpha=1 - wt)
            self.curves[f"ema{w:g}"].append(float(rfprior.metrics.psnr(self.ema[w], self.truth)))
        ratio = st.statistics.get("discrepancy")
        for k in TAIL_STARTS:
            t = self.tail[k]
            if t is None and ratio is not None and ratio <= k:
                t = (img.clone(), 1)
            elif t is not None:
                t = (t[0].mul_(t[1] / (t[1] + 1)).add_(img, alpha=1 / (t[1] + 1)), t[1] + 1)
            self.tail[k] = t
            self.curves[f"tail{k:g}"].append(
                float(rfprior.metrics.psnr(t[0], self.truth)) if t is not None else self.curves["ema0.99"][-1]
            )

    def end_misfits(self) -> dict[str, float]:
        """½‖y − A x̄‖² of each variant's final average (for the never-crossed fallback)."""
        imgs = {f"ema{w:g}": v for w, v in self.ema.items()}
        imgs.update({f"tail{k:g}": t[0] for k, t in self.tail.items() if t is not None})
        with torch.no_grad():
            return {n: 0.5 * float(torch.linalg.vector_norm(self.op.forward(v) - self.y) ** 2) for n, v in imgs.items()}


def _curve(res: rfprior.Result, var: str) -> dict[int, float]:
    h = res.history
    return dict(zip(h["iteration"].values.tolist(), h[var].values.tolist(), strict=True))


def run_case(
    modality: str,
    snr: float,
    seed: int,
    prior: str,
    size: int,
    budget: int,
    holdout: bool = True,
    loss: str | None = None,
) -> dict[str, Any]:
    """One main run + one hold-out run (``holdout=False``: none; its PSNR is then NaN); PSNRs at each rule's choice.

    ``loss=None`` fits with ``reconstruct``'s default loss; a name overrides it (recorded as ``case["loss"]``).
    """
    extra = {} if loss is None else {"loss": loss}
    op, y, truth, sigma_true = simulate({"modality": modality, "size": size, "snr": snr, "seed": seed})
    probe = AverageProbe(truth, op, y)
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = rfprior.reconstruct(
            y,
            op,
            prior=prior,
            stop=[
                rfprior.stopping.FixedIterations(),
                rfprior.stopping.Discrepancy(),
                rfprior.stopping.WindowedVariance(window=50, patience=WMV_PATIENCE),
                rfprior.stopping.RunningAverage(),
            ],
            iterations=budget,
            seed=seed,
            truth=truth,
            progress=False,
            callbacks=[probe],
            **extra,
        )
        t_main = time.perf_counter() - t
        t = time.perf_counter()
        ho = (
            rfprior.reconstruct(
                y,
                op,
                prior=prior,
                stop=rfprior.stopping.HoldOut(),
                iterations=budget,
                seed=seed,
                truth=truth,
                progress=False,
                **extra,
            )
            if holdout
            else None
        )
        t_ho = time.perf_counter() - t
    raw, avg = _curve(res, "psnr"), _curve(res, "psnr_average")
    last = res.final_iteration
    c = res.choices
    oracle_it = int(res.oracle_iteration)
    disc = c.get("discrepancy")
    # the engine's fallback when the threshold is never reached: the better-fitting of the final
    # running average (res.image: FixedIterations decides and the average is what it picks) and
    # the final iterate
    with torch.no_grad():
        m_avg = 0.5 * float(torch.linalg.vector_norm(op.forward(res.image) - y) ** 2)
        m_last = 0.5 * float(torch.linalg.vector_norm(op.forward(res.final_image) - y) ** 2)
    fallback_psnr = avg[last] if m_avg <= m_last else raw[last]
    # the previous default (τ = 1 for every prior, last average as fallback) from the misfit history
    ratio = res.history["discrepancy"].values  # the rule's statistic ½‖r‖²/(Mσ̂²)
    below = np.nonzero(ratio <= 1.0)[0]
    disc_v0 = int(res.history["iteration"].values[below[0]]) if below.size else None
    wmv = c.get("wmv")
    ho_it = ho.chosen_iteration if ho is not None else None
    ho_psnr = float(rfprior.metrics.psnr(ho.image, truth)) if ho is not None else math.nan
    out = {
        "modality": modality,
        "snr_db": snr,
        "seed": seed,
        "prior": prior,
        "loss": res.settings["loss"]["name"],
        "size": size,
        "budget": budget,
        "sigma_true": sigma_true,
        "sigma_est": res.sigma,
        "sigma_ratio": None if res.sigma is None else res.sigma / sigma_true,
        "oracle_it": oracle_it,
        "oracle": float(res.oracle_psnr),
        "oracle_avg": float(np.nanmax(list(avg.values()))),
        "choice": {
            "discrepancy": disc,
            "default": disc if disc is not None else last,
            "default_v0": disc_v0 if disc_v0 is not None else last,
            "wmv": wmv,
            "heldout": ho_it,
            "fixed": last,
            "fixed_avg": last,
        },
        "psnr": {
            "discrepancy": raw[disc] if disc is not None else raw[last],
            "default": avg[disc] if disc is not None else fallback_psnr,
            "default_v0": avg[disc_v0] if disc_v0 is not None else avg[last],
            "wmv": raw[wmv] if wmv is not None else raw[last],
            "heldout": ho_psnr,
            "fixed": raw[last],
            "fixed_avg": avg[last],
        },
        # iterations the rule would have run when deciding (budget if it never decides)
        "run_length": {
            "discrepancy": (disc + 1) if disc is not None else budget,
            "default": (disc + 1) if disc is not None else budget,
            "default_v0": (disc_v0 + 1) if disc_v0 is not None else budget,
            "wmv": min(budget, wmv + WMV_PATIENCE + 1) if wmv is not None else budget,
            "heldout": ho.final_iteration + 1 if ho is not None else budget,
            "fixed": budget,
            "fixed_avg": budget,
        },
        "discrepancy_crossed": disc is not None,
        "tau": res.rule_summaries["discrepancy"]["tau"],
        "fallback": None if disc is not None else ("average" if m_avg <= m_last else "last iterate"),
        "seconds": {"main": t_main, "holdout": t_ho},
        "fallback_psnr": fallback_psnr,
        "curve_misfit_ratio": ratio.tolist(),  # ½‖r‖²/(Mσ̂²) per iteration: replays any τ
        "curve_psnr": [raw[i] for i in sorted(raw)],
        "curve_psnr_average": [avg[i] for i in sorted(avg)],
        "curve_psnr_variants": probe.curves,  # AverageProbe: other averages of the same iterates
        "variant_end_misfit": probe.end_misfits(),
        "last_misfit": m_last,
    }
    out["gap"] = {k: out["oracle"] - v for k, v in out["psnr"].items()}
    return out


def dsp_check(modality: str, seed: int, prior: str, size: int, budget: int, main: dict[str, Any]) -> dict[str, Any]:
    """PSNR at 3× the oracle iteration: the main (MSE) run vs a DSP-loss run."""
    op, y, truth, _ = simulate({"modality": modality, "size": size, "snr": 20.0, "seed": seed})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = rfprior.reconstruct(
            y,
            op,
            prior=prior,
            loss=rfprior.losses.DSPLoss(w_complex=1.0, w_amplitude=1.0, w_phase=1.0),
            stop=rfprior.stopping.FixedIterations(),  # the whole budget: the curve is read at 3× the oracle iteration
            iterations=budget,
            seed=seed,
            truth=truth,
            progress=False,
        )
    raw = res.history["psnr"].values
    mse_curve = np.asarray(main["curve_psnr"])
    row = {"modality": modality, "seed": seed, "prior": prior, "budget": budget}
    for name, curve, o_it in (("mse", mse_curve, main["oracle_it"]), ("dsp", raw, int(res.oracle_iteration))):
        at = min(3 * o_it, len(curve) - 1)
        row[name] = {
            "oracle_it": o_it,
            "oracle": float(np.nanmax(curve)),
            "at_3x_it": at,
            "clipped": 3 * o_it > len(curve) - 1,
            "at_3x": float(curve[at]),
            "end": float(curve[-1]),
            "drop_3x": float(np.nanmax(curve) - curve[at]),
        }
    return row


TAUS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1)
CALIBRATION_SEEDS = (0, 1, 2)  # τ per prior was chosen on these; seeds ≥ 3 check it


def first_crossing(case: dict[str, Any], tau: float) -> int | None:
    """First iteration with ½‖r‖²/(Mσ̂²) ≤ τ (the discrepancy rule's choice), or None."""
    return next((i for i, r in enumerate(case["curve_misfit_ratio"]) if r <= tau), None)


def replay_default(case: dict[str, Any], tau: float) -> float:
    """PSNR of the default rule had it used ``tau``: the average at the first τ-crossing, else the fallback."""
    t = first_crossing(case, tau)
    return case["curve_psnr_average"][t] if t is not None else case["fallback_psnr"]


def current_tau(prior: str) -> float:
    """τ the shipped ``Discrepancy()`` uses for ``prior`` now (``rfprior.defaults.default_tau``)."""
    return rfprior.defaults.default_tau(prior)


def gap_now(case: dict[str, Any]) -> float:
    """Default-rule gap with the current τ, replayed exactly from the curves (the run's own gap if τ is unchanged)."""
    tau = current_tau(case["prior"])
    if tau == case["tau"]:
        return case["gap"]["default"]
    return case["oracle"] - replay_default(case, tau)


def replay_variant(case: dict[str, Any], variant: str, tau: float) -> float:
    """:func:`replay_default` with another average (``AverageProbe``) in place of the engine's."""
    cur = case["curve_psnr_variants"][variant]
    t = first_crossing(case, tau)
    if t is not None:
        return cur[t]
    m = case["variant_end_misfit"].get(variant, math.inf)
    return cur[-1] if m <= case["last_misfit"] else case["curve_psnr"][-1]


def variant_table(cases: list[dict[str, Any]]) -> list[str]:
    """Would another average of the same iterates, at the same (current-τ) decision, get closer to the oracle?"""
    cases = [c for c in cases if "curve_psnr_variants" in c]
    if not cases:
        return []
    shipped = [c for c in cases if c["prior"] == default_prior_of(c["modality"])]
    rows = []
    for v in cases[0]["curve_psnr_variants"]:
        row: list[Any] = [v]
        for cs in (cases, shipped):
            g = [c["oracle"] - replay_variant(c, v, current_tau(c["prior"])) for c in cs]
            row += [100 * float(np.mean([x <= 0.5 for x in g])), quantile(g, 0.5)]
        rows.append(row)
    return [
        "",
        "## Averaging variants at the default decision (replayed, current τ)",
        "",
        "`ema<w>`: the engine's ramped exponential average with weight w (the ramp caps the window at 10 % of the "
        "iterations run, so w > 0.99 only matters after ~1000 iterations); `tail<κ>`: the uniform average of every "
        "iterate since ½‖r‖²/(Mσ̂²) first fell to κ.",
        "",
        md_table(
            [
                "average",
                "% within 0.5 dB (all)",
                "median gap (all)",
                "% within 0.5 dB (shipped)",
                "median gap (shipped)",
            ],
            rows,
        ),
    ]


def tau_sweep(cases: list[dict[str, Any]], priors: list[str]) -> list[str]:
    """% of cases within 0.5 dB of the oracle per τ and prior, calibration vs check seeds."""
    cases = [c for c in cases if "curve_misfit_ratio" in c]
    if not cases:
        return []
    rows = []
    for tau in TAUS:
        row: list[Any] = [tau]
        for p in priors:
            for cal in (True, False):
                cs = [c for c in cases if c["prior"] == p and (c["seed"] in CALIBRATION_SEEDS) == cal]
                ok = [c["oracle"] - replay_default(c, tau) <= 0.5 for c in cs]
                row.append(100 * float(np.mean(ok)) if ok else None)
        rows.append(row)
    head = ["τ"] + [f"{p} {'seeds 0–2' if cal else 'seeds ≥ 3'} %" for p in priors for cal in (True, False)]
    return [
        "",
        "## τ calibration: default rule within 0.5 dB of the oracle, replayed for each τ",
        "",
        "From each case's misfit curve (½‖r‖²/(Mσ̂²)) and running-average PSNR curve; τ per prior is chosen "
        "on seeds 0–2 and checked on the others.",
        "",
        md_table(head, rows),
    ]


_DEFAULT_PRIOR: dict[str, str] = {}


def default_prior_of(modality: str) -> str:
    """``rfprior.default_prior`` of the modality's forward model (what a user gets with ``prior="auto"``)."""
    if modality not in _DEFAULT_PRIOR:
        case = {"modality": modality, "size": 16, "snr": 20.0, "seed": 0}
        _DEFAULT_PRIOR[modality] = rfprior.defaults.default_prior(simulate(case)[0])
    return _DEFAULT_PRIOR[modality]


def shipped_table(cases: list[dict[str, Any]]) -> list[str]:
    """The default rule with each modality's default prior: what ``rfprior reconstruct`` does out of the box."""
    shipped = [c for c in cases if c["prior"] == default_prior_of(c["modality"])]
    if not shipped:
        return []

    def hits(cs: list[dict[str, Any]], gap: Callable[[dict[str, Any]], float] = gap_now, tol: float = 0.5) -> str:
        return f"{sum(gap(c) <= tol for c in cs)}/{len(cs)}" if cs else "–"

    rows = []
    for m, p in [(m, default_prior_of(m)) for m in MODALITIES] + [("all", "default per modality")]:
        cs = [c for c in shipped if m == "all" or c["modality"] == m]
        if not cs:
            continue
        g = [gap_now(c) for c in cs]
        total = hits(cs) + (f" = {100 * np.mean([x <= 0.5 for x in g]):.1f} %" if m == "all" else "")
        rows.append(
            [SHORT.get(m, m), p, total]
            + [hits([c for c in cs if (c["seed"] in CALIBRATION_SEEDS) == cal]) for cal in (True, False)]
            + [hits(cs, tol=1.0), hits(cs, gap_to_average_oracle), quantile(g, 0.5), max(g)]
        )
    return [
        "",
        '## Shipped configuration: default rule with each modality\'s default prior (`prior="auto"`), current τ',
        "",
        md_table(
            [
                "mod",
                "default prior",
                "within 0.5 dB",
                "seeds 0–2 (τ calibration)",
                "seeds ≥ 3 (check)",
                "within 1 dB",
                "within 0.5 dB of the best average",
                "median gap",
                "worst gap",
            ],
            rows,
        ),
        "",
        "The oracle is the best *raw* iterate, which includes the upward swings of Adam's iterate noise; "
        "*best average* is the best iterate of the running-average curve the default rule picks from.",
        *_misses(shipped),
    ]


def gap_to_average_oracle(case: dict[str, Any]) -> float:
    """Current-τ default-rule gap to the best iterate of the running-average curve (not the raw oracle)."""
    return max(case["curve_psnr_average"]) - (case["oracle"] - gap_now(case))


def _misses(shipped: list[dict[str, Any]]) -> list[str]:
    """Every shipped-configuration case the default rule misses by more than 0.5 dB, with where it stopped."""
    rows = []
    for c in sorted(shipped, key=gap_now, reverse=True):
        if gap_now(c) <= 0.5:
            continue
        t = first_crossing(c, current_tau(c["prior"]))
        rows.append(
            [
                SHORT.get(c["modality"], c["modality"]),
                int(c["snr_db"]),
                c["seed"],
                gap_now(c),
                c["oracle_it"],
                "never (fallback: end)" if t is None else str(t),
                c["curve_misfit_ratio"][c["oracle_it"]],
                c["oracle"] - max(c["curve_psnr_average"]),
            ]
        )
    if not rows:
        return []
    head = ["mod", "SNR", "seed", "gap", "oracle it", "default stops at", "misfit ratio at oracle", "raw − avg oracle"]
    return ["", "### Shipped-configuration misses (gap > 0.5 dB)", "", md_table(head, rows)]


def summarise(cases: list[dict[str, Any]], dsp: list[dict[str, Any]], cfg: dict[str, Any]) -> str:
    md = [f"# Stopping-rule benchmark ({cfg['mode']})", ""]
    loss = cfg.get("loss") if cfg.get("loss") not in (None, "default") else "mse (the default)"
    md.append(
        f"{cfg['size']}² images, budget {cfg['budget']} iterations, seeds {cfg['seeds']}, SNR {cfg['snrs']} dB, "
        f"priors {cfg['priors']}, loss {loss}; torch.set_num_threads(1); 2-core shared CPU, "
        f"no GPU. {len(cases)} cases finished. Main run fits all data (FixedIterations deciding; Discrepancy with σ "
        "estimated, WindowedVariance(50, 300), RunningAverage recorded); "
        + (
            "HoldOut(fraction 0.1, patience 200) in a separate run, scored against the main run's oracle. "
            if cfg.get("holdout", True)
            else "no hold-out runs (--no-holdout: that column is NaN). "
        )
        + "PSNR on magnitudes, peak = max|truth|."
    )
    md.append("")
    # 1. mean PSNR per modality × SNR × prior
    rows = []
    keys = sorted(
        {(c["modality"], c["snr_db"], c["prior"]) for c in cases}, key=lambda k: (MODALITIES.index(k[0]), k[1], k[2])
    )
    for m, s, p in keys:
        cs = [c for c in cases if (c["modality"], c["snr_db"], c["prior"]) == (m, s, p)]

        def mean(f, cs=cs):
            return float(np.mean([f(c) for c in cs]))

        rows.append(
            [SHORT[m], int(s), p, len(cs), mean(lambda c: c["oracle"]), mean(lambda c: c["oracle_it"])]
            + [mean(lambda c, r=r: c["psnr"][r]) for r in RULES]
        )
    md += ["## Mean PSNR [dB] at each rule's choice", ""]
    md.append(
        md_table(
            [
                "mod",
                "SNR",
                "prior",
                "n",
                "oracle",
                "oracle it",
                "discrepancy (raw)",
                "default (disc.+avg)",
                "previous default",
                "WMV",
                "hold-out",
                "fixed end (raw)",
                "fixed end (avg)",
            ],
            rows,
        )
    )
    # 2. gap distribution per rule
    md += ["", "## Gap to oracle [dB] per rule (all cases) and iterations run", ""]
    rows = []
    budget = cfg["budget"]
    for r in RULES:
        g = [c["gap"][r] for c in cases]
        if all(math.isnan(x) for x in g):  # e.g. hold-out with --no-holdout
            continue
        runs = [c["run_length"][r] for c in cases]
        rows.append(
            [
                r,
                quantile(g, 0.5),
                quantile(g, 0.9),
                max(g),
                float(np.mean([x <= 0.5 for x in g])) * 100,
                float(np.median(runs)),
                (1 - float(np.mean(runs)) / budget) * 100,
            ]
        )
    if any(current_tau(c["prior"]) != c["tau"] for c in cases):
        g = [gap_now(c) for c in cases]
        rows.insert(
            2,
            [
                "default, current τ (replayed)",
                quantile(g, 0.5),
                quantile(g, 0.9),
                max(g),
                float(np.mean([x <= 0.5 for x in g])) * 100,
                None,
                None,
            ],
        )
    md.append(
        md_table(
            ["rule", "median gap", "p90 gap", "worst gap", "% within 0.5 dB", "median its run", "% iterations saved"],
            rows,
        )
    )
    # 3. default-rule success per modality/prior
    md += ["", "## Default rule (Discrepancy + RunningAverage) within 0.5 dB of the oracle (target ≥ 90 %)", ""]
    md.append(
        "τ of the run (`tau` recorded per case) and the current τ (`rfprior.defaults.default_tau`), replayed exactly "
        "from the misfit and running-average curves when it differs; previous default: τ = 1 for every prior and "
        "the last average when the threshold is never reached."
    )
    md.append("")
    rows = []
    groups = [(m, p) for m in MODALITIES for p in cfg["priors"]] + [("all", "all")]
    for m, p in groups:
        cs = [c for c in cases if (m == "all" or c["modality"] == m) and (p == "all" or c["prior"] == p)]
        if not cs:
            continue
        taus = sorted({c["tau"] for c in cs})
        now = sorted({current_tau(c["prior"]) for c in cs})
        rows.append(
            [
                SHORT.get(m, m),
                p,
                len(cs),
                "/".join(f"{t:g}" for t in taus),
                100 * float(np.mean([c["gap"]["default"] <= 0.5 for c in cs])),
                "/".join(f"{t:g}" for t in now),
                100 * float(np.mean([gap_now(c) <= 0.5 for c in cs])),
                100 * float(np.mean([c["gap"]["default_v0"] <= 0.5 for c in cs])),
                100 * float(np.mean([c["discrepancy_crossed"] for c in cs])),
                quantile([gap_now(c) for c in cs], 0.5),
            ]
        )
    md.append(
        md_table(
            [
                "mod",
                "prior",
                "n",
                "τ run",
                "% within 0.5 dB",
                "current τ",
                "% within 0.5 dB, current τ",
                "previous default %",
                "% misfit reached τ_run·Mσ̂²",
                "median gap, current τ",
            ],
            rows,
        )
    )
    md += shipped_table(cases)
    md += variant_table(cases)
    # 3b. the τ calibration: replay the discrepancy choice for other τ from the misfit curves
    md += tau_sweep(cases, cfg["priors"])
    # 4. sigma ratio
    md += ["", "## σ estimate / true σ (median [min, max] over seeds; same data for both priors)", ""]
    rows = []
    for m in MODALITIES:
        for s in cfg["snrs"]:
            seen = {}
            for c in cases:
                if c["modality"] == m and c["snr_db"] == s:
                    seen[c["seed"]] = c["sigma_ratio"]
            if seen:
                v = list(seen.values())
                rows.append([SHORT[m], int(s), len(v), quantile(v, 0.5), min(v), max(v)])
    md.append(md_table(["mod", "SNR", "n", "median ratio", "min", "max"], rows, "{:.3f}"))
    # 5. DSP check
    if dsp:
        md += ["", "## Late decay: PSNR at 3× the oracle iteration, MSE vs DSP loss (20 dB)", ""]
        rows = []
        for d in dsp:
            for name in ("mse", "dsp"):
                e = d[name]
                rows.append(
                    [
                        SHORT[d["modality"]],
                        d["prior"],
                        d["seed"],
                        name,
                        e["oracle"],
                        e["oracle_it"],
                        e["at_3x"],
                        f"{e['at_3x_it']}{' (clipped)' if e['clipped'] else ''}",
                        e["drop_3x"],
                        e["end"],
                    ]
                )
        md.append(
            md_table(
                ["mod", "prior", "seed", "loss", "oracle", "oracle it", "PSNR @3×", "it", "drop", "PSNR end"], rows
            )
        )
    return "\n".join(md)


RULE_LABELS = {
    "discrepancy": "discrepancy (raw iterate)",
    "default": "default (discrepancy + average)",
    "default_v0": "previous default",
    "wmv": "windowed variance",
    "heldout": "hold-out",
    "fixed": "fixed budget (raw)",
    "fixed_avg": "fixed budget (average)",
}


def figures(cases: list[dict[str, Any]], stem: str) -> list[str]:
    """Gap CDF per rule and, per modality, the default prior's curves of one case with the choices marked."""
    import matplotlib.pyplot as plt

    from rfprior.plot import save

    if not cases:
        return []
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for r in RULES:
        g = np.sort([c["gap"][r] for c in cases])
        ax.step(
            g,
            np.arange(1, g.size + 1) / g.size * 100,
            where="post",
            label=RULE_LABELS[r],
            lw=2.2 if r == "default" else 1.0,
        )
    ax.axvline(0.5, color="k", ls=":", lw=0.8)
    ax.axhline(90, color="k", ls=":", lw=0.8)
    ax.set_xlim(-1.0, 4.0)
    ax.set_xlabel("gap to the oracle iterate [dB] (larger gaps beyond the right edge)")
    ax.set_ylabel("% of cases with a smaller gap")
    ax.set_title(f"Stopping rules, {len(cases)} cases, budget {cases[0]['budget']}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="x-small", loc="lower right")
    files = [p.name for p in save(fig, RESULTS / f"{stem}_gaps")]
    shown = [
        next(
            (c for c in cases if c["modality"] == m and c["prior"] == default_prior_of(m) and c["snr_db"] == 20.0), None
        )
        for m in MODALITIES
    ]
    shown = [c for c in shown if c is not None]
    if shown:
        fig, axes = plt.subplots(2, len(shown), figsize=(4.6 * len(shown), 5.6), sharex="col", squeeze=False)
        for j, c in enumerate(shown):
            it = np.arange(len(c["curve_psnr"]))
            top, bot = axes[0, j], axes[1, j]
            top.plot(it, c["curve_psnr"], lw=0.7, color="0.6", label="iterate")
            top.plot(it, c["curve_psnr_average"], lw=1.2, label="running average")
            top.axvline(c["oracle_it"], color="g", ls="--", lw=0.8, label="oracle")
            tau = current_tau(c["prior"])  # the shipped τ (replayed if the run used another)
            ch = first_crossing(c, tau)
            if ch is not None:
                top.axvline(ch, color="r", ls=":", lw=1.0, label=f"default (τ = {tau:g})")
            top.set_title(f"{SHORT[c['modality']]}, {c['prior']}, 20 dB, seed {c['seed']}")
            top.set_ylabel("PSNR [dB]")
            top.grid(alpha=0.3)
            top.legend(fontsize="x-small")
            bot.semilogy(np.arange(len(c["curve_misfit_ratio"])), c["curve_misfit_ratio"], lw=0.8)
            bot.axhline(tau, color="r", ls=":", lw=1.0)
            bot.set_ylabel("½‖y − Ax‖² / (Mσ̂²)")
            bot.set_xlabel("iteration")
            bot.grid(alpha=0.3)
        fig.tight_layout()
        files += [p.name for p in save(fig, RESULTS / f"{stem}_curves")]
    return files


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 seeds, 32², 300 iterations")
    ap.add_argument("--size", type=int, default=None)
    ap.add_argument("--budget", type=int, default=None)
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--seed-list", default=None, help="comma-separated seeds")
    ap.add_argument("--modalities", nargs="+", default=list(MODALITIES), choices=MODALITIES)
    ap.add_argument("--priors", nargs="+", default=["deep_decoder", "dip_small"])
    ap.add_argument("--loss", default=None, choices=("mse", "dsp"), help="override reconstruct's default loss")
    ap.add_argument("--no-holdout", action="store_true", help="skip the hold-out runs (its column is then NaN)")
    ap.add_argument("--name", default="stopping", help="output file stem under benchmarks/results/")
    ap.add_argument("--part", default="1/1", help="i/n: run every n-th case starting at i (1-based)")
    ap.add_argument("--merge", type=int, default=0, metavar="N", help="merge the N parts (same options) run earlier")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    cfg = {
        "mode": "quick" if args.quick else "full",
        "size": args.size or (32 if args.quick else 48),
        "budget": args.budget or (300 if args.quick else rfprior.defaults.FIT.iterations),
        "seeds": (
            [int(v) for v in args.seed_list.split(",")]
            if args.seed_list
            else list(range(args.seeds or (2 if args.quick else 5)))
        ),
        "snrs": [10.0, 20.0, 30.0],
        "priors": list(args.priors),
        "loss": args.loss or "default",
        "holdout": not args.no_holdout,
        "torch_threads": 1,
    }
    # seeds outermost: a cut-short run still covers every cell
    cases = grid(seed=cfg["seeds"], modality=args.modalities, snr=cfg["snrs"], prior=cfg["priors"])
    if args.merge:
        order = {case_key(c): j for j, c in enumerate(cases)}
        rows = sorted(merge_parts(None, args.name, args.merge), key=lambda r: order.get(case_key(r["case"]), -1))
    else:
        t0 = time.perf_counter()

        def one(k: dict[str, Any]) -> dict[str, Any]:
            m, s, seed, p = k["modality"], k["snr"], k["seed"], k["prior"]
            c = run_case(m, s, seed, p, cfg["size"], cfg["budget"], cfg["holdout"], args.loss)
            print(
                f"[{time.perf_counter() - t0:6.0f}s] {SHORT[m]:4s} {s:4.0f} dB seed {seed} {p:12s} "
                f"oracle {c['oracle']:.2f}@{c['oracle_it']} default {c['psnr']['default']:.2f} "
                f"disc@{c['choice']['discrepancy']} σ̂/σ {c['sigma_ratio']:.2f}",
                flush=True,
            )
            if m in ("partial_fourier", "mimo") and s == 20.0 and seed == 0 and args.loss is None:
                c["dsp"] = dsp_check(m, seed, p, cfg["size"], cfg["budget"], c)
            return c

        i, n = parse_part(args.part)
        settings = {k: v for k, v in cfg.items() if k != "seeds"}
        rows = run(cases[i - 1 :: n], one, part_path(None, args.name, args.part), settings=settings, log=None)
        if n > 1:
            return
    dsp = [r.pop("dsp") for r in rows if "dsp" in r]
    md = summarise(rows, dsp, cfg)
    write_outputs(args.name, {"machine": machine(), "config": cfg, "cases": rows, "dsp": dsp}, md)
    finish(None, args.name, args.merge or 1)
    print(md)
    print("figures:", ", ".join(figures(rows, args.name)))


if __name__ == "__main__":
    main()

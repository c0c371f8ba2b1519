"""Faithful to the papers (issue 9): DIP, Deep Decoder and the controlled decoder on natural-image denoising.

Run by hand: ``python -m benchmarks.faithful [--smoke | --reduced] [overrides]``. Prints markdown tables side by
side with the published numbers and writes ``benchmarks/results/faithful[_mode].json`` / ``.md`` and the figures
``faithful[_mode]_fbc.png/.pdf`` (FBC bands) and ``faithful[_mode]_psnr.png/.pdf`` (PSNR curves).

Modes
-----
``--smoke``    32² astronaut crop, 20 iterations, *shrunken* networks (plumbing only; the test suite runs it).
``--reduced``  64² centre crops of the four images, the reference architectures, iteration counts scaled to what a
               shared 2-core CPU affords in ≲ 25 min (stated in the output).
(default)      published sizes and iterations: whole images (astronaut/camera 512², coffee 400×600, chelsea
               300×451), DIP to 5400 iterations (reported at 1800, as published), Deep Decoder 1900, controlled
               decoder 10 000 for λ ∈ {1.4, 1.8, 2}. About 76 000 network iterations, most at 512²: expect a few
               hours on one recent GPU (``--device cuda --threads 4``); ≈ 9 days single-threaded on the shared 2-core
               CPU (the reduced run prints this extrapolation from its own timings).

``--rebuild FILE.json`` re-renders tables, notes and figures from a results file; ``--extend FILE.json [--redo
KEY…]`` reuses its runs and computes only those this version defines that the file lacks (or those named). Each
run is one case of the harness (:func:`plan`): finished runs go to ``faithful[_mode]_part1of1.json`` as they end,
so an interrupted mode resumes where it stopped.

Protocol (also stated in the output)
------------------------------------
* Images: ``skimage.data`` astronaut, camera, coffee, chelsea in grayscale (``skimage.color.rgb2gray``), because
  every prior emits one complex image. The published numbers are for colour images (DIP: 9 standard images;
  Deep Decoder: astronaut 512²), so absolute PSNRs are not comparable: BM3D on the *same* grayscale crops is the
  anchor and the gaps DIP − BM3D are compared with the published DIP − CBM3D gaps.
* Noise: real Gaussian σ = 25/255 added to the [0, 1] image, then clipped to [0, 1] (the DIP / Deep Decoder /
  Shi et al. reference ``get_noisy_image``). The image is a complex tensor with zero imaginary part, ``A = I``.
  The noise is real, so its per-component σ in rfprior's convention (``E|n|² = 2σ_c²``) is ``σ_c = σ/√2``:
  ``Discrepancy(sigma=σ/√2)`` stops at ``½‖y − x_t‖² ≤ ½Mσ²``, the expected noise energy.
* PSNR: ``rfprior.metrics.psnr(x̂, x, peak=1)`` = ``10 log10(1 / mean(|x̂| − x)²)`` (peak 1 on magnitudes; the
  engine's history uses ``max|x|`` as peak, the constant offset is added back).
* Output head: rfprior's heads are linear (``real_imag``); the three reference codes end in a sigmoid for images
  in [0, 1]. Runs marked "sigmoid" wrap the rfprior network as ``sigmoid(Re f) + i·Im f`` (``SigmoidOutput``,
  engine ``autoscale=False``): that is the reference architecture; unmarked runs are rfprior as shipped.
* DIP: ``"dip"`` at its reference defaults (5 scales × 128 channels, 4 skip channels, input 32 × U(0, 0.1)),
  Adam lr 0.01, ``reg_noise_std`` 1/30, ``RunningAverage(0.99)`` and ``Discrepancy`` recorded. Deep Decoder:
  k = 128, 6 layers, lr 0.01, no input jitter. Controlled decoder (Shi et al.): Gaussian upsampling (authors'
  per-stage σ), λ ∈ {1.4, 1.8, 2}, σ_max by power iteration (as in the paper), Adam lr 0.001, no jitter,
  ``BlurSharpness(n=100, eps=0.01)`` recorded. DSP: the DIP network with ``DSPLoss(1, 1, 1)`` on the image
  spectrum (``operators.Identity`` declares its image axes spatial, so ``DSPLoss`` transforms them).
* FBC (Shi et al. Eq. 1): ``rfprior.metrics.fbc(output, y₀)`` against the *degraded* image the network fits, 5 rings.
  "Rise" of a band = first iteration at which it reaches 0.5, counted from its first value below 0.5 (so the
  untrained output's transient does not count).
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

import rfprior
from benchmarks import harness
from benchmarks.harness import RESULTS, finish, machine, md_table, part_path, write_outputs
from operators import Identity
from rfprior.metrics import psnr
from rfprior.noise import sigma_mad
from rfprior.priors import make_prior

SIGMA = 25.0 / 255.0
IMAGES = ("astronaut", "camera", "coffee", "chelsea")
#: whole-image sizes (pixels) of the skimage.data images, for the full-mode time estimate
FULL_PIXELS = {"astronaut": 512 * 512, "camera": 512 * 512, "coffee": 400 * 600, "chelsea": 300 * 451}
#: published numbers (REFERENCES.md; papers in /work/shared/seeds)
PUBLISHED: dict[str, float] = {
    "dip_single": 29.22,  # DIP, 9 standard colour images, σ = 25, one run, 1800 iterations
    "dip_average": 30.43,  # same, 0.99 running average
    "dip_two_runs": 31.00,
    "cbm3d": 31.42,
    "dd_astronaut": 29.22,  # Deep Decoder, astronaut 512² colour, k = 128, 1900 iterations
    "shi_dip_oracle": 27.84,  # Shi et al. Table 1, CBSD68 σ = 25, DIP with oracle stop
    "shi_controlled": 28.15,  # same, controlled decoder
    "shi_autostop_tol": 0.2,  # "within 0.2 dB" of the fixed 10 000-iteration result (issue text)
    "shi_autostop_f16": 0.06,  # F16 σ = 25: 31.04 → 30.98 dB, stop at 3 896 of 10 000
}
_CONTROLLED = {"upsample": "gaussian", "lipschitz_method": "power"}
_DD = {"channels": 128, "layers": 6}
MODES: dict[str, dict[str, Any]] = {
    "smoke": {
        "images": ["astronaut"],
        "size": 32,
        "dip_kwargs": {"scales": 3, "channels_down": 16, "channels_up": 16, "channels_skip": 4},
        "dip_iterations": 20,
        "dip_report": 20,
        "dip_sigmoid_iterations": 20,
        "dsp_iterations": 20,
        "controlled_kwargs": {**_CONTROLLED, "channels": 16, "stages": 3, "sigmas": [0.1, 0.5, 0.5]},
        "controlled_iterations": 20,
        "controlled_linear_iterations": 20,
        "capacity_channels": [8],
        "dd_capacity_channels": [4],
        "lambdas": [2.0],
        "bs_n": 10,
        "dd_kwargs": {"channels": 32, "layers": 4},
        "dd_iterations": 20,
        "fbc_every": 4,
        "note": "smoke: shrunken networks (plumbing check only, the numbers mean nothing)",
    },
    "reduced": {
        "images": list(IMAGES),
        "size": 64,
        "dip_kwargs": {},
        "dip_iterations": 800,
        "dip_report": 800,
        "dip_sigmoid_iterations": 0,
        "dsp_iterations": 600,
        "controlled_kwargs": dict(_CONTROLLED),
        "controlled_iterations": 600,
        "controlled_linear_iterations": 300,
        "capacity_channels": [16, 32],
        "dd_capacity_channels": [16],
        "lambdas": [1.4, 1.8, 2.0],
        "bs_n": 100,
        "dd_kwargs": dict(_DD),
        "dd_iterations": 1900,
        "fbc_every": 10,
        "note": "reduced: reference architectures on 64² crops, iterations cut to fit ≈ 25 min on a shared 2-core CPU",
    },
    "full": {
        "images": list(IMAGES),
        "size": None,
        "dip_kwargs": {},
        "dip_iterations": 5400,
        "dip_report": 1800,
        "dip_sigmoid_iterations": 5400,
        "dsp_iterations": 5400,
        "controlled_kwargs": dict(_CONTROLLED),
        "controlled_iterations": 10000,
        "controlled_linear_iterations": 10000,
        "capacity_channels": [],
        "dd_capacity_channels": [],
        "lambdas": [1.4, 1.8, 2.0],
        "bs_n": 100,
        "dd_kwargs": dict(_DD),
        "dd_iterations": 1900,
        "fbc_every": 50,
        "note": "full: published sizes and iteration counts",
    },
}


class SigmoidOutput(torch.nn.Module):
    """The reference codes' output for [0, 1] images: ``sigmoid(Re f) + i·Im f`` around an rfprior prior."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.config = {**getattr(inner, "config", {}), "output": "sigmoid(real)"}

    @property
    def z(self) -> torch.Tensor:
        return self.inner.z

    def forward(self, z: torch.Tensor | None = None) -> torch.Tensor:
        out = self.inner(z)
        return torch.complex(torch.sigmoid(out.real), out.imag)


def load_image(name: str, size: int | None) -> np.ndarray:
    """Grayscale float64 image in [0, 1] from ``skimage.data``; centre crop ``size × size`` (None = whole)."""
    from skimage import color, data

    img = getattr(data, name)()
    img = color.rgb2gray(img) if img.ndim == 3 else img.astype(np.float64) / 255.0
    if size is not None:
        h, w = img.shape
        if size > min(h, w):
            raise ValueError(f"size {size} exceeds the image {name} ({h}×{w})")
        top, left = (h - size) // 2, (w - size) // 2
        img = img[top : top + size, left : left + size]
    return np.ascontiguousarray(img, dtype=np.float64)


def add_noise(img: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """``clip(img + N(0, σ²), 0, 1)`` (the reference ``get_noisy_image``)."""
    rng = np.random.default_rng(seed)
    return np.clip(img + rng.normal(0.0, sigma, img.shape), 0.0, 1.0)


def psnr1(x: np.ndarray | torch.Tensor, truth: np.ndarray) -> float:
    """PSNR with peak 1 on magnitudes (:func:`rfprior.metrics.psnr`)."""
    return float(psnr(x, truth, peak=1.0))


def _complex(a: np.ndarray) -> torch.Tensor:
    return torch.complex(torch.as_tensor(a, dtype=torch.float32), torch.zeros(a.shape, dtype=torch.float32))


def fit(
    noisy: np.ndarray,
    truth: np.ndarray,
    *,
    prior: str,
    prior_kwargs: dict[str, Any],
    iterations: int,
    lr: float,
    reg_noise_std: float,
    stop: list[rfprior.stopping.StoppingRule],
    loss: Any = "mse",
    sigmoid: bool = False,
    fbc_every: int = 0,
    seed: int = 0,
    device: str = "cpu",
) -> dict[str, Any]:
    """One ``rfprior.reconstruct`` run on ``A = I``; PSNR curves (peak 1), rule choices and FBC records.

    ``sigmoid=True`` wraps the prior in :class:`SigmoidOutput` (reference output) and turns autoscale off.
    """
    y = _complex(noisy)
    op = Identity(noisy.shape)
    net: Any = prior
    kwargs: dict[str, Any] | None = prior_kwargs
    if sigmoid:
        net, kwargs = SigmoidOutput(make_prior(prior, noisy.shape, seed=seed, **prior_kwargs)), None
    fbc_it: list[int] = []
    fbc_val: list[list[float]] = []

    def record(state: Any) -> None:
        if fbc_every and state.iteration % fbc_every == 0:
            fbc_it.append(state.iteration)
            fbc_val.append(rfprior.metrics.fbc(state.image.cpu(), y).tolist())

    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = rfprior.reconstruct(
            y,
            op,
            prior=net,
            prior_kwargs=kwargs,
            loss=loss,
            stop=stop,
            iterations=iterations,
            lr=lr,
            seed=seed,
            truth=_complex(truth),
            reg_noise_std=reg_noise_std,
            device=device,
            autoscale=not sigmoid,
            progress=False,
            callbacks=[record],
        )
    seconds = time.perf_counter() - t
    offset = -20.0 * math.log10(float(np.abs(truth).max()))  # engine peak max|x| → peak 1
    h = res.history
    n = int(h.sizes["iteration"])
    out = {
        "prior": prior,
        "prior_kwargs": prior_kwargs,
        "output": "sigmoid(real)" if sigmoid else "rfprior real_imag head",
        "loss": loss if isinstance(loss, str) else repr(loss),
        "lr": lr,
        "reg_noise_std": reg_noise_std,
        "iterations": n,
        "seconds": seconds,
        "seconds_per_iteration": seconds / max(1, n),
        "pixels": int(noisy.size),
        "scale": res.scale,
        "choices": {k: (None if v is None else int(v)) for k, v in res.choices.items()},
        "backtracks": res.backtracks,
        "psnr": (h["psnr"].values + offset).tolist(),
        "misfit": h["misfit"].values.tolist(),
        "fbc_iterations": fbc_it,
        "fbc": fbc_val,
        "final_psnr": psnr1(res.final_image, truth),
        "data_sigma_mad": sigma_mad(torch.as_tensor(noisy)),  # the noise the network sees (MAD, rfprior.noise)
    }
    if "psnr_average" in h:
        out["psnr_average"] = (h["psnr_average"].values + offset).tolist()
    return out


def curve_stats(curve: list[float], report: int | None = None) -> dict[str, Any]:
    """Peak, PSNR at 3× the peak iteration (clipped to the run), and after ``report`` iterations (default: end)."""
    c = np.asarray(curve, dtype=float)
    peak_it = int(np.nanargmax(c))
    at = min(3 * peak_it, len(c) - 1)
    rep = len(c) - 1 if report is None else min(report, len(c)) - 1
    return {
        "peak": float(c[peak_it]),
        "peak_it": peak_it,
        "at_3x": float(c[at]),
        "at_3x_it": at,
        "clipped": 3 * peak_it > len(c) - 1,
        "drop_3x": float(c[peak_it] - c[at]),
        "report": float(c[rep]),
        "report_it": rep,
        "end": float(c[-1]),
    }


def best_fit_iteration(run: dict[str, Any]) -> int:
    """The Deep Decoder code's ``find_best``: the last iterate whose training loss beat the best so far by 0.5 %."""
    best, it = math.inf, 0
    for i, m in enumerate(run["misfit"]):
        if best > 1.005 * m:
            best, it = m, i
    return it


def rise_iterations(iterations: list[int], bands: list[list[float]], level: float = 0.5) -> list[int | None]:
    """Per band: first recorded iteration at which the FBC reaches ``level`` (None = never).

    An untrained output may start above ``level`` and dip (a transient): the count starts at the first record
    below ``level``; a band never below it rises at the first record.
    """
    b = np.asarray(bands, dtype=float)
    out: list[int | None] = []
    for k in range(b.shape[1] if b.ndim == 2 else 0):
        v = b[:, k]
        below = np.nonzero(v < level)[0]
        start = int(below[0]) if below.size else 0
        hit = np.nonzero(v[start:] >= level)[0]
        out.append(int(iterations[start + hit[0]]) if hit.size else None)
    return out


def bands_in_order(rise: list[int | None]) -> bool:
    """True when every band rises no later than the next higher one (None = never = after everything)."""
    t = [math.inf if r is None else r for r in rise]
    return all(t[i] <= t[i + 1] for i in range(len(t) - 1))


def run_bm3d(noisy: np.ndarray, truth: np.ndarray, sigma: float) -> dict[str, Any]:
    """BM3D (``bm3d`` package, ``sigma_psd=σ``) on the same noisy image; ``psnr=None`` if not installed."""
    try:
        import bm3d
    except ImportError:
        return {"available": False, "psnr": None, "note": "bm3d not installed (pip install bm3d)"}
    t = time.perf_counter()
    den = bm3d.bm3d(noisy, sigma_psd=sigma)
    return {"available": True, "psnr": psnr1(den, truth), "seconds": time.perf_counter() - t}


# ---------------------------------------------------------------------------------------------- the runs
def plan(cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """Every run of one configuration, in order: one harness case per run, named by its ``key``."""
    first, every, lam = cfg["images"][0], cfg["fbc_every"], _paper_lambda(cfg)
    dip = {"prior": "dip", "prior_kwargs": cfg["dip_kwargs"], "lr": 0.01, "reg_noise_std": 1.0 / 30.0}
    runs = [
        {"key": f"dip/{name}", "image": name, **dip, "iterations": cfg["dip_iterations"]}
        | {"stop": ["fixed", "discrepancy", "average"], "fbc_every": every * (name == first)}
        for name in cfg["images"]
    ]
    if cfg["dip_sigmoid_iterations"]:
        runs.append({"key": f"dip_sigmoid/{first}", "image": first, **dip, "stop": ["fixed", "average"]})
        runs[-1] |= {"iterations": cfg["dip_sigmoid_iterations"], "sigmoid": True}
    runs.append({"key": f"dsp/{first}", "image": first, **dip, "iterations": cfg["dsp_iterations"], "loss": "dsp"})
    runs[-1] |= {"stop": ["fixed", "average"], "fbc_every": every}
    # the controlled decoder: Shi et al.'s settings (Adam 1e-3, sigmoid output, blur/sharpness recorded)
    ctrl = {"image": first, "prior": "controlled", "lr": 0.001, "reg_noise_std": 0.0, "fbc_every": every}
    sig = {**ctrl, "iterations": cfg["controlled_iterations"], "stop": ["fixed", "blur"], "sigmoid": True}
    for lm in cfg["lambdas"]:
        runs.append({"key": f"controlled/{lm}", **sig, "prior_kwargs": {**cfg["controlled_kwargs"], "lam": lm}})
    if cfg["controlled_linear_iterations"]:
        runs.append({"key": f"controlled_linear/{lam}", **ctrl, "stop": ["fixed"]})
        runs[-1] |= {"prior_kwargs": {**cfg["controlled_kwargs"], "lam": lam}}
        runs[-1] |= {"iterations": cfg["controlled_linear_iterations"]}
    for ch in cfg["capacity_channels"]:  # diagnosis: the same decoder with fewer channels (parameters per pixel)
        kw = {**cfg["controlled_kwargs"], "lam": lam, "channels": ch}
        runs.append({"key": f"controlled_c{ch}/{lam}", **sig, "prior_kwargs": kw})
    if "astronaut" in cfg["images"]:
        dd = {"image": "astronaut", "prior": "deep_decoder", "prior_kwargs": cfg["dd_kwargs"], "lr": 0.01}
        dd |= {"reg_noise_std": 0.0, "iterations": cfg["dd_iterations"], "stop": ["fixed"]}
        runs += [{"key": "dd/astronaut", **dd}, {"key": "dd_sigmoid/astronaut", **dd, "sigmoid": True}]
        for k in cfg["dd_capacity_channels"]:  # diagnosis: an under-parametrised Deep Decoder at this size
            runs.append({**dd, "key": f"dd_k{k}/astronaut", "prior_kwargs": {**cfg["dd_kwargs"], "channels": k}})
    return runs


def _stop(name: str, cfg: dict[str, Any]) -> rfprior.stopping.StoppingRule:
    if name == "discrepancy":  # the noise is real: σ per component in rfprior's convention is σ/√2
        return rfprior.stopping.Discrepancy(sigma=SIGMA / math.sqrt(2))
    if name == "blur":
        return rfprior.stopping.BlurSharpness(n=cfg["bs_n"], eps=0.01)
    return {"fixed": rfprior.stopping.FixedIterations, "average": rfprior.stopping.RunningAverage}[name]()


def run_all(
    cfg: dict[str, Any], log=print, reuse: dict[str, Any] | None = None, outdir: str | Path | None = None
) -> dict[str, Any]:
    """Every run of :func:`plan` for one configuration; returns the raw results (JSON-serialisable).

    ``reuse``: runs (``results["runs"]`` of an earlier file with the same configuration) that are taken as they
    are instead of being recomputed — ``--extend`` adds runs that a newer version of this file defines. Runs
    finished by an interrupted call of the same configuration are taken from its part file.
    """
    t0 = time.perf_counter()
    reuse = reuse or {}
    out: dict[str, Any] = {"noisy": {}, "bm3d": {}, "runs": {}}

    def note(msg: str) -> None:
        log(f"[{time.perf_counter() - t0:7.0f}s] {msg}")

    data = {}
    for k, name in enumerate(cfg["images"]):
        truth = load_image(name, cfg["size"])
        noisy = add_noise(truth, SIGMA, seed=cfg["seed"] + k)
        data[name] = {"noisy": noisy, "truth": truth}
        out["noisy"][name] = {
            "psnr": psnr1(noisy, truth),
            "shape": list(truth.shape),
            "noise_rms_after_clipping": float(np.sqrt(np.mean((noisy - truth) ** 2))),
        }
        out["bm3d"][name] = run_bm3d(noisy, truth, SIGMA)
        b = out["bm3d"][name]["psnr"]
        note(f"{name} {truth.shape}: noisy {out['noisy'][name]['psnr']:.2f} dB, BM3D {b if b is None else round(b, 2)}")
    computed: set[str] = set()

    def compute(c: dict[str, Any]) -> dict[str, Any]:
        kw = {k: c[k] for k in ("prior", "prior_kwargs", "iterations", "lr", "reg_noise_std")}
        loss = rfprior.losses.DSPLoss(w_complex=1.0, w_amplitude=1.0, w_phase=1.0) if c.get("loss") == "dsp" else "mse"
        stop = [_stop(s, cfg) for s in c["stop"]]
        d = data[c["image"]]
        opts = {"sigmoid": c.get("sigmoid", False), "fbc_every": c.get("fbc_every", 0), "device": cfg["device"]}
        r = fit(d["noisy"], d["truth"], **kw, **opts, stop=stop, loss=loss, seed=cfg["seed"])
        s = curve_stats(r["psnr"])
        note(
            f"{c['key']}: peak {s['peak']:.2f}@{s['peak_it']}, end {s['end']:.2f} ({r['iterations']} its, "
            f"{r['seconds_per_iteration']:.3f} s/it) choices {r['choices']}"
        )
        computed.add(c["key"])
        return r

    stem = "faithful" if cfg["mode"] == "full" else f"faithful_{cfg['mode']}"
    done = [{"case": {"key": k}, **v} for k, v in reuse.items()]
    part = part_path(outdir, stem)
    rows = harness.run(plan(cfg), compute, part, key=lambda c: c["key"], done=done, settings=cfg, log=None)
    out["runs"] = {r["case"]["key"]: {k: v for k, v in r.items() if k != "case"} for r in rows}
    earlier = sum(r["seconds"] for k, r in out["runs"].items() if k not in computed)
    out["seconds_total"] = time.perf_counter() - t0 + earlier
    return out


def _paper_lambda(cfg: dict[str, Any]) -> float:
    """λ = 2 (Shi et al.'s denoising setting) when it is among the λs, else the largest."""
    return 2.0 if 2.0 in cfg["lambdas"] else max(cfg["lambdas"])


# ---------------------------------------------------------------------------------------------- the report
def _mean(v: list[float | None]) -> float | None:
    v = [x for x in v if x is not None]
    return float(np.mean(v)) if v else None


def _fmt(v: Any) -> Any:
    return round(v, 2) if isinstance(v, float) else v


def _label(key: str) -> str:
    kind, arg = key.split("/")
    if kind.startswith("dd_k"):
        return f"Deep Decoder k={kind[4:]}, rfprior head"
    if kind.startswith("controlled_c"):
        return f"controlled λ={arg}, sigmoid output, {kind[len('controlled_c') :]} channels"
    return {
        "dip": f"DIP ({arg})",
        "dip_sigmoid": f"DIP, sigmoid output ({arg})",
        "dsp": f"DSP loss, DIP net ({arg})",
        "controlled": f"controlled λ={arg}, sigmoid output",
        "controlled_linear": f"controlled λ={arg}, rfprior head",
        "dd": "Deep Decoder, rfprior head",
        "dd_sigmoid": "Deep Decoder, sigmoid output",
    }[kind]


def summarise(res: dict[str, Any], cfg: dict[str, Any]) -> dict[str, Any]:
    """Numbers for the tables: per-image DIP rows, late-decay rows, auto-stop rows, FBC rows."""
    runs = res["runs"]
    per_image = []
    for name in cfg["images"]:
        r = runs[f"dip/{name}"]
        s = curve_stats(r["psnr"], cfg["dip_report"])
        avg = r["psnr_average"]
        d = r["choices"].get("discrepancy")
        per_image.append(
            {
                "image": name,
                "shape": res["noisy"][name]["shape"],
                "noisy": res["noisy"][name]["psnr"],
                "bm3d": res["bm3d"][name]["psnr"],
                "oracle": s["peak"],
                "oracle_it": s["peak_it"],
                "T": s["report_it"] + 1,
                "raw_at_T": s["report"],
                "avg_at_T": avg[s["report_it"]],
                "noise_ratio": res["noisy"][name]["noise_rms_after_clipping"] / SIGMA,
                "disc_it": d,
                "disc_raw": None if d is None else r["psnr"][d],
                "disc_avg": None if d is None else avg[d],
                "end_raw": r["psnr"][-1],
                "end_avg": avg[-1],
            }
        )
    first = cfg["images"][0]
    decay = [
        {"key": k, "method": _label(k), "lr": str(r["lr"]), "iterations": r["iterations"], **curve_stats(r["psnr"])}
        for k, r in runs.items()
        if k.split("/")[0] != "dip" or k == f"dip/{first}"
    ]
    autostop = []
    for lam in cfg["lambdas"]:
        r = runs[f"controlled/{lam}"]
        c = r["choices"].get("blur_sharpness")
        autostop.append(
            {
                "lam": lam,
                "stop_it": c,
                "psnr_stop": None if c is None else r["psnr"][c],
                "budget": r["iterations"],
                "psnr_end": r["psnr"][-1],
                "abs_diff": None if c is None else abs(r["psnr"][-1] - r["psnr"][c]),
            }
        )
    fbc_rows = []
    for k, r in runs.items():
        if r["fbc"]:
            rise = rise_iterations(r["fbc_iterations"], r["fbc"])
            fbc_rows.append(
                {"key": k, "method": _label(k), "rise": rise, "low_first": bands_in_order(rise), "final": r["fbc"][-1]}
            )
    return {"per_image": per_image, "decay": decay, "autostop": autostop, "fbc": fbc_rows}


def side_by_side(sm: dict[str, Any], res: dict[str, Any], cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows ``quantity | ours | published | Δ | published setting``."""
    P, runs = PUBLISHED, res["runs"]
    pi = sm["per_image"]
    bm = _mean([p["bm3d"] for p in pi])
    raw, avg = _mean([p["raw_at_T"] for p in pi]), _mean([p["avg_at_T"] for p in pi])
    T, n = pi[0]["T"], len(pi)
    rows: list[dict[str, Any]] = []

    def add(q: str, ours: Any, pub: Any, where: str) -> None:
        delta = ours - pub if isinstance(ours, float) and isinstance(pub, float) else None
        rows.append({"quantity": q, "ours": ours, "published": pub, "delta": delta, "published_setting": where})

    dip_set = "DIP paper: 9 colour images, σ=25, 1800 its"
    add(f"DIP one run at T={T} (mean of {n})", raw, P["dip_single"], dip_set)
    add(f"DIP 0.99 running average at T={T}", avg, P["dip_average"], dip_set)
    add("DIP oracle iterate", _mean([p["oracle"] for p in pi]), None, "not published")
    add("DIP discrepancy stop (raw)", _mean([p["disc_raw"] for p in pi]), None, "not in the papers")
    add("DIP discrepancy stop + running average", _mean([p["disc_avg"] for p in pi]), None, "not in the papers")
    add("BM3D", bm if bm is not None else "not installed", P["cbm3d"], "CBM3D (colour), the same 9 images")
    if bm is not None:
        add("DIP one run − BM3D", raw - bm, P["dip_single"] - P["cbm3d"], "DIP paper vs CBM3D")
        add("DIP running average − BM3D", avg - bm, P["dip_average"] - P["cbm3d"], "DIP paper vs CBM3D")
        add("DIP oracle − BM3D", _mean([p["oracle"] - p["bm3d"] for p in pi]), None, "not published")
    add("running-average gain (avg − one run)", avg - raw, P["dip_average"] - P["dip_single"], dip_set)
    first = cfg["images"][0]
    if f"dip_sigmoid/{first}" in runs:
        r = runs[f"dip_sigmoid/{first}"]
        s = curve_stats(r["psnr"], cfg["dip_report"])
        add(f"DIP sigmoid output at T ({first})", s["report"], None, "reference output; see DIP rows")
    b_astro = res["bm3d"].get("astronaut", {}).get("psnr")
    dd_keys = [k for k in runs if k.split("/")[0] == "dd" or k.startswith(("dd_sigmoid/", "dd_k"))]
    for key in dd_keys:
        r = runs[key]
        best = best_fit_iteration(r)
        add(
            f"{_label(key)}, astronaut, at {r['iterations']} its",
            r["psnr"][-1],
            P["dd_astronaut"],
            "DD paper: astronaut 512² colour, k=128, 1900 its",
        )
        add(
            f"  … at the best-fit iterate {best} (reference find_best)",
            r["psnr"][best],
            P["dd_astronaut"],
            "DD code keeps the net with the lowest training loss",
        )
        if b_astro is not None:
            add("  … best-fit − BM3D (astronaut)", r["psnr"][best] - b_astro, None, "not published")
    for d in sm["decay"]:
        kind = d["key"].split("/")[0]
        if kind == "dip" or kind.startswith("controlled"):
            pub = "decays" if kind == "dip" else "≈ 0 (no decay)"
            add(f"{d['method']}: drop peak → 3× peak", d["drop_3x"], pub, "Shi et al. Fig. 5 / 8")
    lam = _paper_lambda(cfg)
    ctrl_end = runs[f"controlled/{lam}"]["psnr"][-1]
    add(
        f"controlled λ={lam} (sigmoid) at budget − DIP oracle ({first})",
        ctrl_end - pi[0]["oracle"],
        P["shi_controlled"] - P["shi_dip_oracle"],
        "Shi et al. Table 1, CBSD68 σ=25",
    )
    for a in sm["autostop"]:
        add(
            f"λ={a['lam']}: blur/sharpness stop vs fixed {a['budget']}-it end, abs. difference",
            a["abs_diff"] if a["abs_diff"] is not None else "never stopped",
            f"≤ {P['shi_autostop_tol']} (F16: {P['shi_autostop_f16']})",
            "Shi et al. §4.4, fixed 10 000 its",
        )
    for f in sm["fbc"]:
        add(f"FBC bands rise low → high: {f['method']}", "yes" if f["low_first"] else "no", "yes", "Shi et al. Fig. 3")
    return rows


def notes(sm: dict[str, Any], res: dict[str, Any], cfg: dict[str, Any]) -> list[str]:
    """Why our numbers differ from the published ones (measured facts filled in)."""
    runs = res["runs"]
    lam = _paper_lambda(cfg)
    out = [
        "* **Images and sizes.** Published DIP/CBM3D numbers are on 9 colour 512² images, the Deep Decoder number on "
        "the colour astronaut at 512²; here grayscale "
        + ("whole images" if cfg["size"] is None else f"{cfg['size']}² centre crops")
        + ". Grayscale denoising has no cross-channel redundancy and small crops hold little self-similarity, so "
        "every method (BM3D included) scores lower: compare the *gaps* to BM3D, not absolute PSNRs.",
        "* **Iterations.** " + cfg["note"] + f": DIP {cfg['dip_iterations']} its (published 1800), controlled "
        f"decoder {cfg['controlled_iterations']} (published 10 000). A peak at the last iteration means the run "
        "was cut before its optimum (the '3× peak' column is then clipped).",
        "* **Output nonlinearity.** The DIP, Deep Decoder and Shi et al. codes end in a sigmoid; rfprior's heads are "
        "linear (complex images have no [0, 1] range). Runs marked 'sigmoid output' restore the reference output.",
        "* **DSP on denoising.** `operators.Identity` declares its image axes spatial, so `DSPLoss` compares the "
        "image spectra (amplitude and phase per frequency), as the DSP paper does.",
        "* **Running average.** rfprior ramps the EMA weight as min(0.99, 1 − 1/(1 + 0.1 t)) (tail averaging); the "
        "DIP code uses 0.99 from t = 0. Identical after ≈ 1000 its; at short budgets ours averages fewer "
        "early (bad) outputs.",
        "* **PSNR.** Peak 1 on |x̂| (the papers use the [0, 1] range); the engine's own history uses max|x| — the "
        "offset is added back here.",
    ]
    pi = sm["per_image"]
    if all(p["bm3d"] is not None for p in pi):
        gaps = ", ".join(f"{p['image']} {p['oracle'] - p['bm3d']:+.2f} (oracle at it {p['oracle_it']})" for p in pi)
        out.append(
            f"* **DIP vs BM3D on the same data.** DIP oracle − BM3D per image: {gaps}. Published DIP − CBM3D: "
            f"{PUBLISHED['dip_single'] - PUBLISHED['cbm3d']:+.2f} (one run), "
            f"{PUBLISHED['dip_average'] - PUBLISHED['cbm3d']:+.2f} (average). Likely contributors to a different gap "
            "(not isolated): the crop content (coffee's smooth crop favours BM3D), grayscale, and T — the one-run "
            "number depends on where T falls relative to the peak."
        )
    disc = ", ".join(
        f"{p['image']}: it {p['disc_it']} vs oracle {p['oracle_it']}, noise rms {p['noise_ratio']:.2f}σ" for p in pi
    )
    out.append(
        "* **Discrepancy stop.** Threshold ½Mσ² with the nominal σ; clipping to [0, 1] removes noise energy in dark "
        "and bright regions (noise rms < σ), so where it is well below σ the misfit reaches the nominal level "
        f"before the network has fitted the image and the rule stops early: {disc}. Neither paper uses this rule."
    )
    lin = f"controlled_linear/{lam}"
    if lin in runs:
        a, b = curve_stats(runs[lin]["psnr"]), curve_stats(runs[f"controlled/{lam}"]["psnr"])
        noisy = res["noisy"][cfg["images"][0]]["psnr"]
        verdict = (
            "the sigmoid output is what keeps the controlled decoder from fitting the noise here. Without it the "
            "untrained output has no DC (mean-only norms, small head bias); the weights grow to make the image "
            "mean, which also buys the gain to fit the noise within the Lipschitz budget"
            if a["drop_3x"] > b["drop_3x"] + 1.0
            else "the output nonlinearity does not change the decay here"
        )
        out.append(
            f"* **Measured, output head of the controlled decoder (λ={lam}, same weights and input):** rfprior head: "
            f"peak {a['peak']:.2f} dB at it {a['peak_it']}, {a['at_3x']:.2f} dB at it {a['at_3x_it']}, "
            f"{a['end']:.2f} dB at it {runs[lin]['iterations'] - 1} (noisy input {noisy:.2f} dB); sigmoid output: "
            f"peak {b['peak']:.2f} dB at it {b['peak_it']}, {b['at_3x']:.2f} dB at it {b['at_3x_it']}, end "
            f"{b['end']:.2f} dB — {verdict}."
        )
    px = int(np.prod(res["noisy"][cfg["images"][0]]["shape"]))
    if all(p["bm3d"] is not None for p in pi):
        gain = _mean([p["avg_at_T"] - p["oracle"] for p in pi])
        out.append(
            f"* **One run vs running average.** The raw DIP iterate fluctuates from step to step (input jitter 1/30, "
            f"Adam at lr 0.01); the 0.99 average at T is {gain:+.2f} dB from the *best* raw iterate (mean over "
            "images). So the one-run gap to BM3D is wider than published while the averaged gap is the comparable "
            "number; the averaging gain is correspondingly larger than the published 1.21 dB."
        )
    caps = [k for k in runs if k.startswith("controlled_c")]
    if caps:
        n128 = make_prior("controlled", (64, 64), **cfg["controlled_kwargs"]).num_parameters
        drops = ", ".join(
            f"{ch} channels: peak at it {st['peak_it']}, drop to the end {st['drop_3x']:.2f} dB"
            for ch, st in [
                (cfg["controlled_kwargs"].get("channels", 128), curve_stats(runs[f"controlled/{lam}"]["psnr"])),
                *((k.split("/")[0][len("controlled_c") :], curve_stats(runs[k]["psnr"])) for k in caps),
            ]
        )
        out.append(
            f"* **Controlled decoder on small crops.** With the sigmoid output, λ ≥ 1.8 still decays here (table "
            f"above). The decoder has {n128:,} parameters for {px:,} pixels ({n128 / px:.0f} per pixel; ≈ 2 per "
            f"pixel·channel on a 512² colour image). Same λ = {lam}, sigmoid output — {drops}: fewer channels "
            "decay less (and learn more slowly). Our reading: the per-layer Lipschitz bound does not stop a network "
            "this over-parametrised for the image from fitting its noise. The paper's no-decay claim is for 512² "
            "images; the full mode tests it there."
        )
    dks = [k for k in runs if k.startswith("dd_k")]
    if dks and "dd/astronaut" in runs:
        n_dd = make_prior("deep_decoder", (64, 64), **cfg["dd_kwargs"]).num_parameters
        parts = ", ".join(
            f"{_label(k)}: best-fit {runs[k]['psnr'][best_fit_iteration(runs[k])]:.2f} dB, drop "
            f"{curve_stats(runs[k]['psnr'])['drop_3x']:.2f}"
            for k in ["dd/astronaut", *dks]
        )
        out.append(
            f"* **Deep Decoder on small crops.** k = 128 has {n_dd:,} parameters for {px:,} pixels: the Deep Decoder's "
            "premise (fewer parameters than pixels, hence no early stopping) does not hold at this size, and its "
            f"last iterates oscillate by ≈ 1–2 dB at lr 0.01 (hence the best-fit row, as the reference code keeps "
            f"the best-loss net). {parts}."
        )
    if f"dsp/{cfg['images'][0]}" in runs:
        a = curve_stats(runs[f"dsp/{cfg['images'][0]}"]["psnr"])
        b = curve_stats(runs[f"dip/{cfg['images'][0]}"]["psnr"])
        out.append(
            f"* **DSP loss.** DSPLoss(1, 1, 1) on the same DIP net peaks at {a['peak']:.2f} dB (it {a['peak_it']}) vs "
            f"{b['peak']:.2f} dB (it {b['peak_it']}) with the MSE. Likely cause (not isolated here): the phase term "
            "1 − cos Δφ weighs every frequency above the gate equally, so the noise-dominated high frequencies pull "
            "as hard as the signal's. No published DSP denoising number is compared."
        )
    never = [a["lam"] for a in sm["autostop"] if a["stop_it"] is None]
    if never:
        out.append(
            f"* **Blur/sharpness stop.** Never decided within {cfg['controlled_iterations']} its for λ ∈ {never}: two "
            "consecutive windows of n = 100 ratios must agree to 0.01 while the output is still changing (rising or "
            "decaying). The paper's stop came at 3 896 of 10 000 its on F16 512²; the 0.2 dB claim needs the full "
            "mode."
        )
    return out


def markdown(payload: dict[str, Any]) -> str:
    cfg, sm, rows = payload["config"], payload["summary"], payload["side_by_side"]
    size = "whole images" if cfg["size"] is None else f"{cfg['size']}² centre crops"
    md = [f"# Faithful to the papers ({cfg['mode']})", ""]
    md.append(
        f"{cfg['note']}. Images {', '.join(cfg['images'])} (skimage.data), grayscale, {size}; real Gaussian noise "
        f"σ = 25/255, clipped to [0, 1] (seed {cfg['seed']}); A = I on a complex image with zero imaginary part; "
        f"PSNR peak 1 on magnitudes. DIP: skip net {cfg['dip_kwargs'] or '(reference defaults 5×128, skip 4)'}, "
        f"Adam 0.01, reg_noise_std 1/30, {cfg['dip_iterations']} its (reported at T = {cfg['dip_report']}), "
        f"Discrepancy(σ/√2) and RunningAverage(0.99) recorded; DSP loss run {cfg['dsp_iterations']} its. Deep "
        f"Decoder {cfg['dd_kwargs']}, Adam 0.01, {cfg['dd_iterations']} its. Controlled decoder "
        f"{cfg['controlled_kwargs']}, λ ∈ {cfg['lambdas']}, Adam 0.001, {cfg['controlled_iterations']} its with the "
        f"sigmoid output (+ λ = {_paper_lambda(cfg)} with rfprior's head, {cfg['controlled_linear_iterations']} its), "
        f"BlurSharpness(n = {cfg['bs_n']}, ε = 0.01) recorded. torch threads {cfg['threads']}, device "
        f"{cfg['device']}; total {payload['results']['seconds_total']:.0f} s."
    )
    md += ["", "## Side by side with the published numbers (Δ = ours − published; † |Δ| > 0.5 dB)", ""]
    table = []
    for r in rows:
        d = r["delta"]
        dtxt = None if d is None else f"{d:+.2f}{' †' if abs(d) > 0.5 else ''}"
        table.append([r["quantity"], _fmt(r["ours"]), _fmt(r["published"]), dtxt, r["published_setting"]])
    md.append(md_table(["quantity", "ours [dB]", "published [dB]", "Δ", "published setting"], table))
    md += ["", "## DIP denoising per image (σ = 25/255; rfprior DIP as shipped)", ""]
    t = [
        [
            p["image"],
            "×".join(map(str, p["shape"])),
            f"{p['noise_ratio']:.2f}",
            p["noisy"],
            p["bm3d"] if p["bm3d"] is not None else "not installed",
            p["oracle"],
            p["oracle_it"],
            p["raw_at_T"],
            p["avg_at_T"],
            p["disc_it"],
            p["disc_raw"],
            p["disc_avg"],
        ]
        for p in sm["per_image"]
    ]
    md.append(
        md_table(
            [
                "image",
                "size",
                "noise rms/σ (clipped)",
                "noisy",
                "BM3D",
                "DIP oracle",
                "oracle it",
                "raw @T",
                "avg @T",
                "discrepancy it",
                "disc. raw",
                "disc. avg",
            ],
            t,
        )
    )
    md += ["", f"## Late decay ({cfg['images'][0]}): PSNR at the peak and at 3× the peak iteration", ""]
    t = [
        [
            d["method"],
            d["lr"],
            d["peak"],
            d["peak_it"],
            d["at_3x"],
            f"{d['at_3x_it']}{' (clipped)' if d['clipped'] else ''}",
            d["drop_3x"],
            d["end"],
            d["iterations"],
        ]
        for d in sm["decay"]
    ]
    md.append(md_table(["run", "lr", "peak", "peak it", "PSNR @3×", "it", "drop", "PSNR end", "its"], t))
    md += ["", "## Blur/sharpness stop (Shi et al.) vs the fixed budget (controlled decoder, sigmoid output)", ""]
    t = [[a["lam"], a["stop_it"], a["psnr_stop"], a["budget"], a["psnr_end"], a["abs_diff"]] for a in sm["autostop"]]
    md.append(md_table(["λ", "stop it", "PSNR @stop", "budget", "PSNR @budget", "abs. difference"], t))
    md += [
        "",
        "## FBC vs the noisy target: iteration at which each band reaches 0.5 after the transient (– = never)",
        "",
    ]
    t = [
        [f["method"], *f["rise"], " ".join(f"{v:.2f}" for v in f["final"]), "yes" if f["low_first"] else "no"]
        for f in sm["fbc"]
    ]
    md.append(
        md_table(["run", "band 1 (low)", "band 2", "band 3", "band 4", "band 5 (high)", "FBC at end", "low first"], t)
    )
    est = payload.get("full_mode_estimate_s")
    if est:
        md += [
            "",
            f"Full mode extrapolated to this machine (cost ∝ pixels × iterations, from this run's timings): "
            f"{est / 3600:.0f} h ≈ {est / 86400:.0f} days — run it on a GPU.",
        ]
    md += ["", "## Why the numbers differ", "", *payload["notes"]]
    md += ["", "Figures: " + ", ".join(payload["figures"])]
    return "\n".join(md)


def figures(res: dict[str, Any], cfg: dict[str, Any], outdir: Path, stem: str) -> list[str]:
    """FBC panels (DIP, controlled with sigmoid / rfprior head, DSP) and PSNR curves on the first image."""
    import matplotlib.pyplot as plt

    from rfprior.plot import fbc_curves, save

    runs, first, lam = res["runs"], cfg["images"][0], _paper_lambda(cfg)
    keys = [
        k
        for k in (f"dip/{first}", f"controlled/{lam}", f"controlled_linear/{lam}", f"dsp/{first}")
        if k in runs and runs[k]["fbc"]
    ]
    fig, axes = plt.subplots(1, len(keys), figsize=(4.6 * len(keys), 3.6), sharey=True, squeeze=False)
    labels = ["band 1 (low)", "band 2", "band 3", "band 4", "band 5 (high)"]
    for ax, k in zip(axes[0], keys, strict=True):
        r = runs[k]
        fbc_curves(r["fbc_iterations"], np.asarray(r["fbc"]), labels=labels, title=f"{_label(k)}, lr {r['lr']}", ax=ax)
    fig.suptitle(f"FBC vs the noisy target — {first}, {cfg['size'] or 'full'} px, σ = 25/255")
    fig.tight_layout()
    files = [p.name for p in save(fig, outdir / f"{stem}_fbc")]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.set_prop_cycle(color=plt.cm.tab10(np.linspace(0, 1, 10)))
    for k, r in runs.items():
        if k.startswith(("controlled_c", "dd_k")) or (not k.startswith("controlled") and k.split("/")[1] != first):
            continue  # diagnostics and other images' runs
        ax.plot(np.arange(1, len(r["psnr"]) + 1), r["psnr"], label=_label(k), lw=0.9)
        if k == f"dip/{first}":
            avg = r["psnr_average"]
            ax.plot(np.arange(1, len(avg) + 1), avg, label="DIP running average", ls="--", lw=1.2)
    b = res["bm3d"][first]["psnr"]
    if b is not None:
        ax.axhline(b, color="k", ls=":", label="BM3D")
    noisy = res["noisy"][first]["psnr"]
    ax.axhline(noisy, color="grey", ls=":", label="noisy input")
    ax.set_ylim(noisy - 6, (b if b is not None else noisy + 8) + 1.5)
    ax.set_xscale("log")
    ax.set_xlabel("iteration (1-based)")
    ax.set_ylabel("PSNR [dB]")
    ax.set_title(f"{first}, {cfg['size'] or 'full'} px, σ = 25/255")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    files += [p.name for p in save(fig, outdir / f"{stem}_psnr")]
    return files


def full_mode_estimate(res: dict[str, Any]) -> float:
    """Seconds the full mode would take here: each run's s/iteration/pixel × full pixels × full iterations."""
    full = MODES["full"]
    its = {
        "dip": full["dip_iterations"],
        "dip_sigmoid": full["dip_sigmoid_iterations"],
        "dsp": full["dsp_iterations"],
        "controlled_linear": full["controlled_linear_iterations"],
        "dd": full["dd_iterations"],
        "dd_sigmoid": full["dd_iterations"],
    }
    total, ctrl = 0.0, []
    for k, r in res["runs"].items():
        kind, arg = k.split("/")
        per_px = r["seconds_per_iteration"] / r["pixels"]
        if kind.startswith(("controlled_c", "dd_k")):
            continue  # diagnostic runs, not part of the full mode
        if kind == "controlled":
            ctrl.append(per_px)
            continue
        total += per_px * FULL_PIXELS.get(arg, FULL_PIXELS["astronaut"]) * its[kind]
    if "dip_sigmoid/astronaut" not in res["runs"]:
        dip = [r["seconds_per_iteration"] / r["pixels"] for k, r in res["runs"].items() if k.startswith("dip/")]
        total += float(np.mean(dip)) * FULL_PIXELS["astronaut"] * its["dip_sigmoid"]
    if ctrl:
        total += float(np.mean(ctrl)) * FULL_PIXELS["astronaut"] * full["controlled_iterations"] * len(full["lambdas"])
    return float(total)


def run(
    mode: str = "smoke",
    outdir: str | Path | None = None,
    log=print,
    reuse: dict[str, Any] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Run one mode (``"smoke"``, ``"reduced"``, ``"full"``) with optional config overrides; write the outputs.

    Returns the payload written to ``<outdir>/faithful[_mode].json``, plus ``"markdown"`` (the printed report).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {sorted(MODES)}, got {mode!r}")
    cfg = {**MODES[mode], "mode": mode, "seed": 0, "device": "cpu", "threads": torch.get_num_threads()}
    unknown = sorted(set(overrides) - set(cfg))
    if unknown:
        raise ValueError(f"unknown overrides {unknown}; known: {sorted(cfg)}")
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    if 2 * cfg["bs_n"] > cfg["controlled_iterations"]:
        raise ValueError("controlled_iterations must be ≥ 2 × bs_n for the blur/sharpness rule to be able to decide")
    res = run_all(cfg, log=log, reuse=reuse, outdir=outdir)
    payload = report(res, cfg, outdir)
    finish(outdir, payload["stem"])
    return payload


def report(
    res: dict[str, Any], cfg: dict[str, Any], outdir: str | Path | None = None, draw: bool = True
) -> dict[str, Any]:
    """Tables, notes and figures (``draw``) from the raw results of :func:`run_all`; writes JSON/markdown/figures."""
    outdir = RESULTS if outdir is None else Path(outdir)
    mode = cfg["mode"]
    stem = "faithful" if mode == "full" else f"faithful_{mode}"
    sm = summarise(res, cfg)
    payload: dict[str, Any] = {
        "machine": machine(),
        "config": cfg,
        "published": PUBLISHED,
        "results": res,
        "summary": sm,
        "side_by_side": side_by_side(sm, res, cfg),
        "full_mode_estimate_s": full_mode_estimate(res) if mode == "reduced" else None,
        "notes": notes(sm, res, cfg),
        "figures": figures(res, cfg, outdir, stem) if draw else [],
    }
    md = markdown(payload)
    write_outputs(stem, payload, md, outdir)
    payload["markdown"], payload["stem"] = md, stem
    return payload


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--smoke", action="store_true", help="32² astronaut, 20 iterations, shrunken networks (seconds)")
    g.add_argument("--reduced", action="store_true", help="64² crops, reference networks, ≈ 25 min on 2 cores")
    ap.add_argument("--size", type=int, default=None, help="centre-crop size (default per mode)")
    ap.add_argument("--images", nargs="+", default=None, choices=IMAGES)
    ap.add_argument("--dip-iterations", type=int, default=None)
    ap.add_argument("--dip-report", type=int, default=None, help="iteration count T reported as 'one run'")
    ap.add_argument("--controlled-iterations", type=int, default=None)
    ap.add_argument("--dd-iterations", type=int, default=None)
    ap.add_argument("--lambdas", type=float, nargs="+", default=None)
    ap.add_argument("--device", default=None, help="cpu (default) or cuda")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--outdir", default=None, help="default benchmarks/results/")
    ap.add_argument("--rebuild", default=None, metavar="JSON", help="re-render tables/figures from a results JSON")
    ap.add_argument("--extend", default=None, metavar="JSON", help="reuse the runs of a results JSON, add missing ones")
    ap.add_argument("--redo", nargs="*", default=[], metavar="KEY", help="with --extend: recompute these run keys")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    if a.rebuild:
        old = json.loads(Path(a.rebuild).read_text())
        print(report(old["results"], old["config"], a.outdir)["markdown"])
        return
    mode = "smoke" if a.smoke else "reduced" if a.reduced else "full"
    reuse = None
    if a.extend:
        old = json.loads(Path(a.extend).read_text())
        mode = old["config"]["mode"]
        reuse = {k: v for k, v in old["results"]["runs"].items() if not k.startswith(tuple(a.redo))}
        changed = sorted(k for k, v in MODES[mode].items() if k in old["config"] and old["config"][k] != v)
        if changed:
            raise SystemExit(f"--extend: {a.extend} was made with other settings ({', '.join(changed)})")
    payload = run(
        mode,
        a.outdir,
        reuse=reuse,
        log=lambda m: print(m, flush=True),
        size=a.size,
        images=a.images,
        dip_iterations=a.dip_iterations,
        dip_report=a.dip_report,
        controlled_iterations=a.controlled_iterations,
        dd_iterations=a.dd_iterations,
        lambdas=a.lambdas,
        device=a.device,
        threads=a.threads,
    )
    print(payload["markdown"])


if __name__ == "__main__":
    main()

"""deepinv peer benchmark (issues 5 and 9): deepinv's ``DeepImagePrior`` on rfprior's own data.

deepinv 0.5 needs torch 2.14 + torchvision, which the project's venv does not pin, so this runs in a
*separate* venv holding deepinv (never install deepinv into the project venv)::

    .venv/bin/python -m benchmarks.deepinv_peer --make-crops      # once: 64² crops (needs skimage)
    PYTHONPATH=$PWD nice /tmp/dvenv/bin/python -m benchmarks.deepinv_peer --quick        # plumbing, ~1 min
    PYTHONPATH=$PWD nice /tmp/dvenv/bin/python -m benchmarks.deepinv_peer [--part 5|9|check] [--device cuda]
    PYTHONPATH=$PWD /tmp/dvenv/bin/python -m benchmarks.deepinv_peer --render            # tables only

Writes ``benchmarks/results/deepinv_peer[_quick].json`` / ``.md`` after every run (parts merge into the
existing file, so an interrupted run keeps what it finished; ``--render`` re-reads rfprior's figures from
``engine.json`` / ``faithful_reduced.json`` after those are re-run).

* **check**: adjointness of the complex → real-view wrapper; deepinv's ``DeepImagePrior.forward`` against the
  replicated loop below (same init, seed, loss, optimiser) on a short run — the final images must agree.
* **5**: issue 5 — deepinv's DIP with its defaults (``ConvDecoder`` class defaults: 7 layers, 256 channels,
  input 256 × 4 × 4 ~ N(0, 1); ``DeepImagePrior`` defaults: Adam lr 1e-2, ``MCLoss`` = MSE, 2500 iterations)
  on ``simulate_case(m, 128, 20 dB, seed 0)`` for partial Fourier and MIMO, per-iteration PSNR (oracle stop).
  ``--iters5`` caps the 2500 iterations (≈ 1.8 s/it at 128² on one core). Data as-is and normalised.
  The recorded CPU run: ``--part check``; ``--part 5 --modalities partial_fourier --scalings as_is --iters5 320
  --patience 100``; ``--part 5 --modalities mimo --scalings as_is --iters5 200 --patience 100``; ``--part 9``;
  ``--part 5 --scalings normalised --iters5 50``. On a GPU: ``--part 5 --iters5 2500 --device cuda``.
* **9**: issue 9 — the same DIP (1-channel ``ConvDecoder``, identity physics) on ``faithful.py``'s reduced
  denoising crops (64², σ = 25/255, clipped), 800 iterations, PSNR with peak 1.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks._common import RESULTS, machine, md_table, simulate_case, write_outputs

CROPS = Path("/tmp/rfprior_faithful_crops_64.npz")
MODALITIES = ("partial_fourier", "mimo")
DEFAULTS = {  # deepinv 0.5.0 class defaults (deepinv/models/dip.py)
    "ConvDecoder": {"in_size": [4, 4], "layers": 7, "channels": 256},
    "DeepImagePrior": {"iterations": 2500, "learning_rate": 1e-2, "loss": "MCLoss (MSELoss)", "optimizer": "Adam"},
    "input": "z = torch.randn(channels, *in_size), drawn at each forward call, fixed during the fit",
    "gallery_example": "examples/basics/demo_dip.py uses channels 64, in_size [2, 2], lr 1e-2, 100 iterations "
    "(32² inpainting, 'a small number of iterations to reduce the runtime'); not used here",
}


def make_crops(path: Path) -> None:
    """Save faithful.py's reduced-mode crops (truth and noisy, same seeds) to ``path`` (project venv)."""
    from benchmarks.faithful import IMAGES, MODES, SIGMA, add_noise, load_image

    arrays = {}
    for k, name in enumerate(IMAGES):  # faithful.py: add_noise(truth, SIGMA, seed=cfg["seed"] + k), seed 0
        truth = load_image(name, MODES["reduced"]["size"])
        arrays[f"truth_{name}"], arrays[f"noisy_{name}"] = truth, add_noise(truth, SIGMA, seed=k)
    np.savez(path, **arrays)
    print(f"wrote {path}: {', '.join(IMAGES)}")


class ComplexAsReal:
    """deepinv ``LinearPhysics`` around a complex rfprior operator: image ``(1, 2, H, W)`` (Re, Im) ↔ real view."""

    def __init__(self, op: Any) -> None:
        import deepinv as dinv

        self.op = op
        self.physics = dinv.physics.LinearPhysics(A=self.A, A_adjoint=self.A_adjoint)

    def A(self, x: torch.Tensor, **_: Any) -> torch.Tensor:  # noqa: N802
        xc = torch.view_as_complex(x.permute(0, 2, 3, 1).contiguous())
        return torch.view_as_real(self.op.forward(xc))

    def A_adjoint(self, y: torch.Tensor, **_: Any) -> torch.Tensor:  # noqa: N802
        return to_real_image(self.op.adjoint(torch.view_as_complex(y.contiguous())))


def to_real_image(xc: torch.Tensor) -> torch.Tensor:
    """Complex ``(1, H, W)`` → real ``(1, 2, H, W)``."""
    return torch.view_as_real(xc).permute(0, 3, 1, 2).contiguous()


def to_complex_image(x: torch.Tensor) -> torch.Tensor:
    """Real ``(1, 2, H, W)`` → complex ``(H, W)``."""
    return torch.view_as_complex(x[0].permute(1, 2, 0).contiguous())


def adjoint_error(w: ComplexAsReal, seed: int = 0) -> dict[str, float]:
    """Relative error of ``⟨A u, v⟩ = ⟨u, Aᴴ v⟩`` on real views (float64 sums), and deepinv's own test."""
    g = torch.Generator().manual_seed(seed)
    h, wd = w.op.in_shape
    u = torch.randn(1, 2, h, wd, generator=g)
    v = torch.randn(1, *w.op.out_shape, 2, generator=g)
    lhs, rhs = float((w.A(u).double() * v.double()).sum()), float((u.double() * w.A_adjoint(v).double()).sum())
    torch.manual_seed(seed)
    return {"inner_product": abs(lhs - rhs) / max(abs(lhs), 1e-30), "deepinv": float(w.physics.adjointness_test(u))}


def new_generator(img_size: tuple[int, int, int], seed: int) -> torch.nn.Module:
    """deepinv's ``ConvDecoder`` with its class defaults, weights from ``torch.manual_seed(seed)``."""
    import deepinv as dinv

    torch.manual_seed(seed)
    return dinv.models.ConvDecoder(img_size=img_size)


def z_size(gen: torch.nn.Module) -> list[int]:
    """``DeepImagePrior``'s ``img_size`` (the input noise shape) for a default ``ConvDecoder``."""
    return [gen.net[1].in_channels, *DEFAULTS["ConvDecoder"]["in_size"]]


def dip_loop(gen, y, physics, iterations, lr, metric, z_seed, log=None, patience=0):
    """``DeepImagePrior.forward`` (deepinv 0.5.0) replicated, with ``metric(x)`` of every iterate.

    ``curve[t]`` is the output after ``t`` Adam steps; ``curve[-1]`` is what ``forward`` returns. ``patience > 0``
    ends the run early once the best iterate is ``patience`` steps old and the current one ≥ 1 dB below it
    (a cap where the curve has clearly peaked).
    """
    from deepinv.loss.mc import MCLoss

    loss = MCLoss()
    curve: list[float] = []
    t0 = time.perf_counter()
    with torch.enable_grad():
        gen.requires_grad_(True)
        torch.manual_seed(z_seed)
        z = torch.randn(z_size(gen), device=y.device).unsqueeze(0)
        opt = torch.optim.Adam(gen.parameters(), lr=lr)
        for it in range(iterations):
            x = gen(z)
            curve.append(metric(x.detach()))
            error = loss(y=y, x_net=x, physics=physics)
            opt.zero_grad()
            error.backward()
            opt.step()
            if log and (it % 25 == 0 or it == iterations - 1):
                log(it, curve)
            best = int(np.argmax(curve))
            if patience and it - best >= patience and curve[-1] <= curve[best] - 1.0:
                log and log(it, curve)
                break
        out = gen(z)
    curve.append(metric(out.detach()))
    return out.detach(), curve, time.perf_counter() - t0


def replication_check(gen0, y, physics, iterations: int, z_seed: int) -> dict[str, Any]:
    """Run ``DeepImagePrior.forward`` and :func:`dip_loop` from the same state; compare the final images."""
    import deepinv as dinv

    g1, g2 = copy.deepcopy(gen0), copy.deepcopy(gen0)
    f = dinv.models.DeepImagePrior(g1, img_size=z_size(g1), iterations=iterations, learning_rate=1e-2)
    torch.manual_seed(z_seed)
    t = time.perf_counter()
    ref = f(y, physics).detach()
    t_ref = time.perf_counter() - t
    ours, _, t_ours = dip_loop(g2, y, physics, iterations, 1e-2, lambda x: 0.0, z_seed)
    diff = float((ref - ours).abs().max())
    return {
        "iterations": iterations,
        "max_abs_diff": diff,
        "rel_diff": diff / float(ref.abs().max()),
        "identical": bool(torch.equal(ref, ours)),
        "forward_s_per_it": t_ref / iterations,
        "replica_s_per_it": t_ours / iterations,
    }


def curve_summary(curve: list[float], seconds: float, iterations: int) -> dict[str, Any]:
    c = np.asarray(curve, dtype=float)
    k = int(np.nanargmax(c))
    return {
        "iterations": iterations,
        "seconds": seconds,
        "s_per_it": seconds / iterations,
        "oracle_psnr": float(c[k]),
        "oracle_iteration": k,
        "final_psnr": float(c[-1]),
        "peak_before_last_quarter": k < 0.75 * iterations,
        "curve": [round(float(v), 4) for v in c],
    }


def part_check(cfg: dict[str, Any], store: dict[str, Any]) -> None:
    out = {}
    for m in MODALITIES:
        op, y, _, _ = simulate_case(m, cfg["size"], 20.0, 0)
        w = ComplexAsReal(op)
        rec = {"adjoint": adjoint_error(w)}
        gen0 = new_generator((2, *op.in_shape), seed=0)
        rec["replication"] = replication_check(gen0, torch.view_as_real(y).unsqueeze(0), w.physics, cfg["check_its"], 1)
        out[m] = rec
        print(f"check {m}: {json.dumps(rec)}", flush=True)
    store["check"] = out


def part5(cfg: dict[str, Any], store: dict[str, Any], save) -> None:
    from operators.classical import backproject
    from rfprior.metrics import psnr

    res = store.setdefault("issue5", {})
    for m in cfg["modalities"]:
        op, y, truth, sigma = simulate_case(m, cfg["size"], 20.0, 0)
        dev = torch.device(cfg["device"])
        bp_img = float(backproject(op, y, normalize=True).abs().max())
        bp_adj = float(op.adjoint(y).abs().max())
        for scaling in cfg["scalings"]:
            c = 1.0 if scaling == "as_is" else 1.0 / bp_img
            w = ComplexAsReal(op.to(dev))
            yr = torch.view_as_real(y.to(dev) * c).unsqueeze(0)
            gen = new_generator((2, *op.in_shape), seed=0).to(dev)

            def metric(x: torch.Tensor, c: float = c, truth: torch.Tensor = truth) -> float:
                return float(psnr(to_complex_image(x.cpu()) / c, truth))

            def log(it: int, curve: list[float], tag: str = f"{m}/{scaling}") -> None:
                k = int(np.argmax(curve))
                print(f"  {tag} it {it}: {curve[-1]:.2f} dB (best {curve[k]:.2f} @ {k})", flush=True)

            _, curve, secs = dip_loop(
                gen, yr, w.physics, cfg["iters5"], 1e-2, metric, z_seed=1, log=log, patience=cfg["patience"]
            )
            r = curve_summary(curve, secs, len(curve) - 1)
            r["cap"], r["patience"], r["device"] = cfg["iters5"], cfg["patience"], cfg["device"]
            r.update(
                modality=m,
                scaling=scaling,
                data_scale=c,
                params=sum(p.numel() for p in gen.parameters()),
                budget_class_default=DEFAULTS["DeepImagePrior"]["iterations"],
                case={
                    "size": cfg["size"],
                    "snr_db": 20.0,
                    "seed": 0,
                    "sigma": sigma,
                    "max_abs_y": float(y.abs().max()),
                    "max_abs_truth": float(truth.abs().max()),
                    "max_abs_AHy": bp_adj,
                    "max_abs_backproject_normalized": bp_img,
                    "opnorm": op.opnorm(),
                },
            )
            res[f"{m}/{scaling}"] = r
            print(
                f"issue5 {m}/{scaling}: oracle {r['oracle_psnr']:.2f} @ {r['oracle_iteration']}, "
                f"end {r['final_psnr']:.2f}, {r['s_per_it']:.2f} s/it",
                flush=True,
            )
            save()


def part9(cfg: dict[str, Any], store: dict[str, Any], save) -> None:
    import deepinv as dinv

    from benchmarks.faithful import IMAGES, SIGMA, psnr1

    if not cfg["crops"].is_file():
        raise SystemExit(f"{cfg['crops']} missing: run `.venv/bin/python -m benchmarks.deepinv_peer --make-crops`")
    data = np.load(cfg["crops"])
    res = store.setdefault("issue9", {})
    for name in cfg["images"] or IMAGES[: cfg["n_images"]]:
        truth, noisy = data[f"truth_{name}"], data[f"noisy_{name}"]
        if cfg["size"] < truth.shape[0]:  # --quick: centre sub-crop
            o = (truth.shape[0] - cfg["size"]) // 2
            truth, noisy = (a[o : o + cfg["size"], o : o + cfg["size"]] for a in (truth, noisy))
        y = torch.as_tensor(noisy, dtype=torch.float32, device=cfg["device"])[None, None]
        physics = dinv.physics.Denoising(noise_model=dinv.physics.GaussianNoise(sigma=SIGMA))
        gen = new_generator((1, *truth.shape), seed=0).to(cfg["device"])

        def log(it: int, curve: list[float], tag: str = name) -> None:
            k = int(np.argmax(curve))
            print(f"  {tag} it {it}: {curve[-1]:.2f} dB (best {curve[k]:.2f} @ {k})", flush=True)

        metric = lambda x, t=truth: psnr1(x[0, 0].cpu(), t)  # noqa: E731 — |x|, peak 1, as faithful.py
        _, curve, secs = dip_loop(gen, y, physics, cfg["iters9"], 1e-2, metric, z_seed=1, log=log)
        r = curve_summary(curve, secs, cfg["iters9"])
        r.update(
            image=name,
            device=cfg["device"],
            shape=list(truth.shape),
            noisy_psnr=psnr1(noisy, truth),
            params=sum(p.numel() for p in gen.parameters()),
        )
        res[name] = r
        print(
            f"issue9 {name}: oracle {r['oracle_psnr']:.2f} @ {r['oracle_iteration']}, end {r['final_psnr']:.2f}",
            flush=True,
        )
        save()


def _shape_note(key: str, r: dict[str, Any]) -> str:
    """One line on the shape of a PSNR curve: still rising at the cap, or peaked (and how far it fell)."""
    c, k, n = r["curve"], r["oracle_iteration"], r["iterations"]
    w = max(1, min(25, n // 4))
    if k >= n - w:
        gain = c[-1] - c[-1 - w]
        return (
            f"* {key}: still rising at the cap ({n} of {r['budget_class_default']} its, {gain:+.2f} dB over the last"
            f" {w}) — the oracle PSNR of the full run is at least the value shown, not measured."
        )
    return f"* {key}: peaked at it {k} ({c[k]:.2f} dB), {c[k] - c[-1]:.2f} dB lower at it {n}."


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def render(store: dict[str, Any]) -> str:
    eng = {
        r["modality"]: r
        for r in _load(RESULTS / "engine.json").get("time_to_result", [])
        if r.get("is_default_prior", True)  # engine.json also runs a non-default prior on MIMO
    }
    fr = _load(RESULTS / "faithful_reduced.json").get("results", {})
    store["rfprior_reference"] = {"engine_time_to_result": eng, "faithful_reduced_noisy": fr.get("noisy", {})}
    mc = store.get("machine", {})
    md = [
        f"# deepinv peer benchmark ({store.get('mode', '?')})",
        "",
        f"deepinv {store.get('deepinv')}, torch {mc.get('torch')}, torch threads 1; 2-core CPU shared with other "
        "work, no GPU. Timings are noisy.",
        "",
        "deepinv defaults used: `ConvDecoder` class defaults (7 layers, 256 channels, in_size 4×4, "
        "≈4.1 M parameters), `DeepImagePrior` class defaults (Adam lr 1e-2, MCLoss = MSE, 2500 iterations), "
        "input z ~ N(0,1) of shape 256×4×4. PSNR after t Adam steps; 'oracle' = best over the run.",
        "",
    ]
    if "check" in store:
        md += [
            "## Checks",
            "",
            md_table(
                [
                    "modality",
                    "adjoint rel. err (⟨Au,v⟩)",
                    "deepinv adjointness_test",
                    "replication its",
                    "max |forward − replica|",
                    "identical",
                ],
                [
                    [
                        m,
                        f"{c['adjoint']['inner_product']:.1e}",
                        f"{c['adjoint']['deepinv']:.1e}",
                        c["replication"]["iterations"],
                        f"{c['replication']['max_abs_diff']:.1e}",
                        c["replication"]["identical"],
                    ]
                    for m, c in store["check"].items()
                ],
            ),
            "",
        ]
    if store.get("issue5"):
        rows = []
        for r in store["issue5"].values():
            e = eng.get(r["modality"], {})
            e = e if e.get("size") == r["case"]["size"] else {}
            best = max(e.get("baselines", {"–": [math.nan]}).items(), key=lambda kv: kv[1][0])
            best_txt = f"{best[0]} {best[1][0]:.2f}" if e else None
            rows.append(
                [
                    r["modality"],
                    r["scaling"],
                    f"{r['data_scale']:.3g}",
                    f"{r['iterations']} (cap {r.get('cap', r['iterations'])}) / {r['budget_class_default']}",
                    r["s_per_it"],
                    r["seconds"],
                    r["oracle_psnr"],
                    r["oracle_iteration"],
                    r["final_psnr"],
                    None if not e else f"{e['psnr']:.2f} ({e['prior']}, {e['ran_iterations']} its)",
                    e.get("seconds"),
                    e.get("oracle_psnr"),
                    best_txt,
                    None if e.get("psnr") is None else e["psnr"] - r["oracle_psnr"],
                ]
            )
        md += [
            "## Issue 5: deepinv DIP (defaults, oracle-stopped) vs rfprior defaults at 128²",
            "",
            md_table(
                [
                    "modality",
                    "data",
                    "scale c",
                    "its run / default",
                    "s/it",
                    "wall [s]",
                    "deepinv oracle",
                    "oracle it",
                    "deepinv @end",
                    "rfprior default",
                    "rfprior [s]",
                    "rfprior oracle",
                    "best classical",
                    "rfprior − deepinv oracle",
                ],
                rows,
            ),
            "",
            "rfprior columns are read from `engine.json` (time-to-result, defaults, its own stopping rule) "
            "when this table is rendered. 'as_is': y as simulated (the truth has max|x| ≈ 1). 'normalised': "
            "y·c with c = 1/max|backproject(op, y, normalize=True)| (the image-unit backprojection); the image "
            "is divided by c before the PSNR.",
            "",
            *[_shape_note(k, r) for k, r in store["issue5"].items()],
            "",
        ]
    if store.get("issue9"):
        rows = []
        for name, r in store["issue9"].items():
            run = fr.get("runs", {}).get(f"dip/{name}") if r["shape"] == [64, 64] else None
            ours = np.asarray(run["psnr"]) if run else None
            rows.append(
                [
                    name,
                    r["noisy_psnr"],
                    fr.get("noisy", {}).get(name, {}).get("psnr"),
                    r["oracle_psnr"],
                    r["oracle_iteration"],
                    r["final_psnr"],
                    None if ours is None else float(ours.max()),
                    None if ours is None else int(ours.argmax()),
                    None if ours is None else float(ours[-1]),
                    None if run is None else float(run["psnr_average"][-1]),
                    None if ours is None else float(ours.max()) - r["oracle_psnr"],
                    r["s_per_it"],
                    None if run is None else run["seconds_per_iteration"],
                ]
            )
        md += [
            "## Issue 9: deepinv DIP (ConvDecoder defaults) vs rfprior DIP on faithful.py's 64² crops",
            "",
            md_table(
                [
                    "image",
                    "noisy (here)",
                    "noisy (faithful)",
                    "deepinv oracle",
                    "it",
                    "deepinv @T",
                    "rfprior DIP oracle",
                    "it",
                    "rfprior raw @T",
                    "rfprior avg @T",
                    "rfprior − deepinv oracle",
                    "deepinv s/it",
                    "rfprior s/it",
                ],
                rows,
            ),
            "",
            f"T = {next(iter(store['issue9'].values()))['iterations']} iterations (faithful.py reduced: 800). "
            "PSNR peak 1 on |x|. deepinv has no implementation of Ulyanov et al.'s 'skip' encoder-decoder "
            "(deepinv.models holds ConvDecoder for DIP; its UNet is a different denoiser architecture), so "
            "the reference here is deepinv's DIP as shipped, not the DIP paper's network.",
            "",
        ]
    return "\n".join(md)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--quick", action="store_true", help="32², few iterations, one image (plumbing check)")
    ap.add_argument("--part", choices=("all", "check", "5", "9"), default="all")
    ap.add_argument("--iters5", type=int, default=300, help="issue-5 iteration cap (class default 2500)")
    ap.add_argument(
        "--patience", type=int, default=0, help="issue 5: end once the best is N its old and ≥ 1 dB above (0: off)"
    )
    ap.add_argument("--iters9", type=int, default=800, help="issue-9 iterations (faithful.py reduced: 800)")
    ap.add_argument("--scalings", default="as_is,normalised", help="issue-5 data scalings, comma-separated")
    ap.add_argument("--modalities", default=",".join(MODALITIES), help="issue-5 modalities, comma-separated")
    ap.add_argument("--images", default="", help="issue-9 images, comma-separated (default: faithful.py's four)")
    ap.add_argument("--crops", type=Path, default=CROPS, help="npz of faithful.py's crops (see --make-crops)")
    ap.add_argument("--make-crops", action="store_true", help="write --crops with skimage (project venv) and exit")
    ap.add_argument("--device", default="cpu", help="parts 5 and 9 (e.g. cuda for the full 2500 iterations)")
    ap.add_argument("--render", action="store_true", help="re-render the markdown from the JSON and exit")
    args = ap.parse_args(argv)
    if args.make_crops:
        return make_crops(args.crops)
    torch.set_num_threads(1)
    name = "deepinv_peer_quick" if args.quick else "deepinv_peer"
    store = _load(RESULTS / f"{name}.json")
    cfg = {
        "size": 32 if args.quick else 128,
        "iters5": 8 if args.quick else args.iters5,
        "iters9": 8 if args.quick else args.iters9,
        "check_its": 5 if args.quick else 20,
        "patience": 3 if args.quick else args.patience,
        "n_images": 1 if args.quick else 4,
        "scalings": args.scalings.split(","),
        "modalities": args.modalities.split(","),
        "images": [i for i in args.images.split(",") if i],
        "crops": args.crops,
        "device": args.device,
    }

    def save() -> None:
        text = render(store)
        write_outputs(name, store, text)

    if not args.render:
        import deepinv

        store.update(
            mode="quick" if args.quick else "full",
            machine=machine(),
            deepinv=deepinv.__version__,
            deepinv_defaults=DEFAULTS,
            config={k: str(v) for k, v in cfg.items()},
        )
        if args.part in ("all", "check"):
            part_check(cfg, store)
            save()
        if args.part in ("all", "5"):
            part5(cfg, store, save)
        if args.part in ("all", "9"):
            part9({**cfg, "size": 32 if args.quick else 64}, store, save)
    save()
    print(render(store))


if __name__ == "__main__":
    main()

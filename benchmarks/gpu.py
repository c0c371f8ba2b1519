"""One prepared device run (issue 21): CUDA tests, per-step cost split, time to result, faithful rows.

Made to spend a lent GPU's few minutes on measuring, not on debugging: run it once on the CPU
at small sizes first (``--smoke``, the suite does), then on the device machine::

    python -m benchmarks.gpu --device cuda --budget 480          # ≈ 8 min, writes results/gpu.md

Stages, in order; the summary is rewritten after each, so a run cut short keeps what it measured:

1. **CUDA tests** — ``tests/operators/test_cuda.py`` and the MIMO CUDA test (skipped on a CPU run).
2. **Per-step split** per forward model and size (default 128², 256², 512²) on the device: one
   operator forward + adjoint, one step of the default network alone (its output's squared norm
   as loss), one full fit step (network → operator → loss → Adam); medians of a few repeats,
   peak device memory. The same split on this machine's CPU (``--cpu-sizes``) gives the ratio.
3. **NUDFT paths** of the tomography operator on the device: exact dense NUDFT, torchkbnufft,
   and finufft through the host; forward + adjoint time and error against a complex128 finufft
   reference (``eps`` 1e-12). This is the measurement behind ``operators.tomography.auto_method``.
4. **Time to result** of ``rfprior.reconstruct(y, op)`` with the defaults on the device
   (``benchmarks.time_to_result``, without its separate penalty-weight timing: the set-up +
   penalty column is the fit's wall time outside its loop), sizes ``--ttr-sizes``; the CPU figure
   is estimated as its iterations × the CPU fit step of stage 2 (same size), labelled so.
5. **Faithful DIP rows** (``benchmarks.faithful``'s protocol: whole 512² grayscale astronaut and
   camera, σ = 25/255, reference DIP, ``--dip-iterations`` iterations, BM3D on the same image as
   the anchor), with whatever time is left (``--faithful``; ``--no-bm3d`` leaves the anchor out).
6. **Measured CPU time to result** on the host (``--cpu-ttr-sizes``), the check on the estimate.

``--skip tests,split,nudft,cpu,ttr`` leaves stages out (a second call spends its minutes elsewhere).

A stage that fails records its traceback in the summary and the next stage runs.
"""

from __future__ import annotations

import argparse
import math
import statistics
import subprocess
import sys
import time
import traceback
import warnings
from typing import Any

import torch

from benchmarks._common import machine, md_table, write_outputs
from benchmarks.quality import make_case
from benchmarks.time_to_result import CASES
from benchmarks.time_to_result import run_case as time_to_result


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_ms(fn, device: torch.device, reps: int) -> float:
    fn()  # warm-up: caches, plans, kernels
    _sync(device)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append(1000 * (time.perf_counter() - t))
    return statistics.median(times)


def step_split(modality: str, size: int, device: str, reps: int = 5) -> dict[str, Any]:
    """Milliseconds of one operator forward + adjoint, one network step and one full fit step."""
    import rfprior
    from rfprior.fit.resolve import resolve_prior

    dev = torch.device(device)
    case = {"modality": modality, "size": size, "snr": 20, "seed": 2, **CASES[modality]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        op, y, _ = make_case(case)
    op, y = op.to(device=dev), y.to(dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    x = op.adjoint(y)
    op_ms = _median_ms(lambda: op.adjoint(op.forward(x)), dev, reps)
    name = rfprior.default_prior(op)
    net, _ = resolve_prior(name, op.in_shape, 0, None, op)
    net = net.to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4, foreach=True)
    scale = float(torch.linalg.vector_norm(y)) or 1.0

    def net_step() -> None:
        opt.zero_grad(set_to_none=True)
        (net()[0].abs() ** 2).mean().backward()
        opt.step()

    def full_step() -> None:
        opt.zero_grad(set_to_none=True)
        r = op.forward(net()[0]) - y / scale
        (0.5 * (r.abs() ** 2).sum()).backward()
        opt.step()

    net_ms = _median_ms(net_step, dev, reps)
    full_ms = _median_ms(full_step, dev, reps)
    peak = torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else None
    return {
        "modality": modality,
        "size": size,
        "device": str(dev),
        "prior": name,
        "operator_ms": op_ms,
        "network_ms": net_ms,
        "step_ms": full_ms,
        "peak_mib": peak,
    }


def nudft_paths(size: int, device: str, reps: int = 3) -> list[dict[str, Any]]:
    """The tomography operator's NUDFT paths on ``device`` at ``size``²: time and accuracy."""
    from operators.nufft import dense_cost, kbnufft_available
    from operators.tomography import DiffractionTomography, auto_method

    dev = torch.device(device)
    case = {"modality": "diffraction_tomography", "size": size, "snr": 20, "seed": 2,
            **CASES["diffraction_tomography"]}  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        op, y, _ = make_case(case)
    geo = (op.angles, op.in_shape, op.wavelength, op.medium_index, op.pixel_size, op.detector_distance,
           op.detector_size)  # fmt: skip
    ref_op = DiffractionTomography(*geo, method="nufft", dtype=torch.complex128)
    x = op.adjoint(y)
    x = x / x.abs().max()
    ref = ref_op.forward(x.to(torch.complex128))
    n = op._nudft.size_out
    auto = auto_method(n, op.in_shape, dev)
    rows = []
    for method, interp in (("dense", None), ("kbnufft", "table"), ("kbnufft", "sparse"), ("nufft", None)):
        label = method if interp is None else f"{method}/{interp}"
        is_auto = method == auto and interp in (None, "table")
        row: dict[str, Any] = {"size": size, "samples": n, "method": label, "auto": is_auto}
        if method == "dense" and dense_cost(n, op.in_shape) > 2e11:
            rows.append({**row, "note": "not run: beyond 2e11 multiply-adds per apply"})
            continue
        if method == "kbnufft" and not kbnufft_available():
            rows.append({**row, "note": "torchkbnufft not installed"})
            continue
        t = time.perf_counter()
        opm = DiffractionTomography(*geo, method=method, device=dev)
        if interp is not None:
            opm._nudft.kb_interp = interp
            opm._nudft._kb = opm._nudft._make_kb()
        xd = x.to(dev)
        opm.forward(xd)
        _sync(dev)
        row["build_s"] = time.perf_counter() - t
        row["fwd_adj_ms"] = _median_ms(lambda o=opm, v=xd: o.adjoint(o.forward(v)), dev, reps)
        fx = opm.forward(xd).to("cpu", torch.complex128)
        row["rel_error"] = float(torch.linalg.vector_norm(fx - ref) / torch.linalg.vector_norm(ref))
        rows.append(row)
    return rows


def faithful_dip(
    images: list[str], iterations: int, device: str, sigmoid: bool = False, bm3d: bool = True
) -> list[dict[str, Any]]:
    """``benchmarks.faithful``'s DIP rows at the published size (whole 512² images), one per image.

    ``sigmoid``: the reference architecture's output (``sigmoid(Re f)``, no autoscale) instead of
    rfprior's linear head; ``bm3d=False`` skips the anchor.
    """
    import rfprior
    from benchmarks import faithful as F

    rows = []
    for k, name in enumerate(images):
        truth = F.load_image(name, None)
        noisy = F.add_noise(truth, F.SIGMA, seed=k)
        t = time.perf_counter()
        b = F.run_bm3d(noisy, truth, F.SIGMA) if bm3d else {"psnr": None}
        bm3d_s = time.perf_counter() - t
        stop = [rfprior.FixedIterations(), rfprior.Discrepancy(sigma=F.SIGMA / math.sqrt(2)), rfprior.RunningAverage()]
        r = F.fit(noisy, truth, prior="dip", prior_kwargs={}, iterations=iterations, lr=0.01,
                  reg_noise_std=1.0 / 30.0, stop=stop, device=device, sigmoid=sigmoid)  # fmt: skip
        st = F.curve_stats(r["psnr"])
        avg = r.get("psnr_average") or [None]
        disc = r["choices"].get("Discrepancy")
        rows.append({
            "image": name + (" (sigmoid head)" if sigmoid else ""), "shape": list(truth.shape),
            "noisy": F.psnr1(noisy, truth), "bm3d": b["psnr"],
            "bm3d_s": bm3d_s, "iterations": r["iterations"], "dip_end": st["end"], "dip_peak": st["peak"],
            "dip_peak_it": st["peak_it"], "dip_average_end": avg[-1], "discrepancy_it": disc,
            "dip_at_discrepancy": None if disc is None else r["psnr"][min(disc, len(r["psnr"]) - 1)],
            "s_per_it": r["seconds_per_iteration"],
            "psnr_every_100": [round(v, 2) for v in r["psnr"][::100]],
        })  # fmt: skip
    return rows


def cuda_tests(timeout: float) -> dict[str, Any]:
    """Run the suite's device tests; returns the exit code and the last lines of the output."""
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", "tests/operators/test_cuda.py",
            "tests/operators/test_mimo.py", "-k", "cuda"]  # fmt: skip
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=max(timeout, 10))
        tail = (p.stdout + p.stderr).strip().splitlines()[-12:]
        return {"returncode": p.returncode, "tail": tail}
    except subprocess.TimeoutExpired:
        return {"returncode": None, "tail": ["timed out"]}


def summarise(state: dict[str, Any]) -> str:
    info = state["info"]
    out = [
        f"# Device run: {info['device_name']}",
        "",
        f"torch {info['machine']['torch']}; device {info['device']}; CPU side: {info['machine']['cpu_count']} CPUs, "
        f"torch threads {info['threads']}; TF32 convolutions {info.get('tf32_conv')}, TF32 matmul "
        f"{info.get('tf32_matmul')} (torch defaults). Stages not reached within the {info['budget']:.0f} s budget "
        "are absent.",
    ]
    if state.get("tests"):
        t = state["tests"]
        out += ["", "## CUDA tests", "", f"exit code {t['returncode']}:", "", "```", *t["tail"], "```"]
    if state.get("split"):
        cpu = {(r["modality"], r["size"]): r for r in state["split"] if r["device"] == "cpu"}
        rows = []
        for r in state["split"]:
            if r["device"] == "cpu" and info["device"] != "cpu":
                continue
            c = cpu.get((r["modality"], r["size"])) if info["device"] != "cpu" else None
            ratio = c["step_ms"] / r["step_ms"] if c else None
            rows.append(
                [r["modality"], f"{r['size']}²", r["prior"], r["operator_ms"], r["network_ms"], r["step_ms"],
                 None if c is None else c["step_ms"], ratio, r["peak_mib"]]
            )  # fmt: skip
        head = ["modality", "size", "prior", "operator fwd+adj ms", "network step ms", "fit step ms",
                "CPU fit step ms", "CPU / device", "peak MiB"]  # fmt: skip
        out += ["", "## Cost of one step", "", md_table(head, rows)]
    if state.get("nudft"):
        rows = [[r["size"], r["samples"], r["method"] + (" (auto)" if r["auto"] else ""), r.get("build_s"),
                 r.get("fwd_adj_ms"), None if r.get("rel_error") is None else f"{r['rel_error']:.1e}",
                 r.get("note", "")]
                for r in state["nudft"]]  # fmt: skip
        head = ["size", "samples M", "NUDFT path", "build s", "fwd+adj ms", "rel. error", "note"]
        out += ["", "## Tomography NUDFT paths on the device", "", md_table(head, rows)]
    if state.get("faithful"):
        rows = [[r["image"], "×".join(map(str, r["shape"])), r["iterations"], r["noisy"], r["bm3d"], r["dip_end"],
                 r["dip_average_end"], r["dip_peak"], r["dip_peak_it"], r["dip_at_discrepancy"], r["discrepancy_it"],
                 None if r["bm3d"] is None else r["dip_end"] - r["bm3d"], r["s_per_it"],
                 r["psnr_every_100"][18] if r["iterations"] > 1800 and len(r.get("psnr_every_100", [])) > 18 else None]
                for r in state["faithful"]]  # fmt: skip
        head = ["image", "size", "iterations", "noisy", "BM3D", "DIP one run", "DIP 0.99 average", "DIP peak",
                "at it", "DIP at Discrepancy", "it", "DIP − BM3D", "s / it",
                "DIP at it 1800 (longer runs)"]  # fmt: skip
        out += ["", "## Faithful DIP rows (published size, grayscale, σ = 25/255)", "", md_table(head, rows), "",
                "Published (colour, 9 images, 1800 iterations): DIP one run 29.22, 0.99 average 30.43, CBM3D 31.42 "
                "(DIP − CBM3D −2.20 / −0.99 dB)."]  # fmt: skip
    if state.get("ttr") or state.get("cpu_ttr"):
        cpu = {(r["modality"], r["size"]): r for r in state.get("split", []) if r["device"] == "cpu"}
        if info["device"] == "cpu":
            cpu = {}
        measured = {(r["case"]["modality"], r["case"]["size"]): r for r in state.get("cpu_ttr", [])}
        rows = []
        for r in state.get("ttr", []) + [r for r in state.get("cpu_ttr", []) if info["device"] != "cpu"]:
            key = (r["case"]["modality"], r["case"]["size"])
            c = cpu.get(key) if r["device"] != "cpu" else None
            est = None if c is None else r["iterations"] * c["step_ms"] / 1000
            m = measured.get(key) if r["device"] != "cpu" else None
            rows.append([r["case"]["modality"], f"{r['case']['size']}²", r["device"], r["prior"], r["seconds"],
                         r["penalty_seconds"], r["iterations"], 1000 * r["seconds_per_iteration"], r["psnr"], est,
                         None if est is None else est / r["seconds"], None if m is None else m["seconds"],
                         None if m is None else m["seconds"] / r["seconds"]])  # fmt: skip
        head = ["modality", "size", "device", "prior", "total s", "set-up + penalty weight s", "iterations",
                "ms / iteration", "PSNR", "CPU est. s (its × CPU step)", "CPU est. / device", "CPU measured s",
                "CPU measured / device"]  # fmt: skip
        out += ["", "## Time to result of the defaults", "", md_table(head, rows)]
    if state.get("errors"):
        out += ["", "## Stages that failed", "", "```", *state["errors"], "```"]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--sizes", default="128,256,512", help="sizes of the per-step split on the device")
    ap.add_argument("--cpu-sizes", default="128,256", help="sizes of the same split on the CPU (for the ratio)")
    ap.add_argument("--ttr-sizes", default="256,512", help="sizes of the time-to-result runs on the device")
    ap.add_argument("--modalities", default=",".join(CASES))
    ap.add_argument("--threads", type=int, default=4, help="torch CPU threads")
    ap.add_argument("--budget", type=float, default=480.0, help="seconds; later stages are skipped when spent")
    ap.add_argument("--faithful", action="store_true", help="stage 5: the published-size DIP rows")
    ap.add_argument("--dip-iterations", type=int, default=1800, help="stage 5: DIP iterations (published: 1800)")
    ap.add_argument(
        "--faithful-images", default="astronaut,camera", help="stage 5: images (name or name:iterations), rfprior's DIP"
    )
    ap.add_argument("--sigmoid-images", default="", help="stage 5: images, DIP with the reference sigmoid head")
    ap.add_argument("--no-bm3d", action="store_true", help="stage 5: skip the BM3D anchor")
    ap.add_argument("--cpu-ttr-sizes", default="", help="stage 6: measured time to result on the CPU, these sizes")
    ap.add_argument("--skip", default="", help="comma list of stages to leave out: tests,split,nudft,cpu,ttr")
    ap.add_argument("--tag", default="", help="suffix of the output name (results/gpu_<tag>.md)")
    ap.add_argument("--smoke", action="store_true", help="32², CPU, 2 iterations, no tests, no files")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    mods = [m for m in args.modalities.split(",") if m]
    sizes = [32] if args.smoke else [int(s) for s in args.sizes.split(",") if s]
    cpu_sizes = [] if args.smoke else [int(s) for s in args.cpu_sizes.split(",") if s]
    ttr_sizes = [32] if args.smoke else [int(s) for s in args.ttr_sizes.split(",") if s]
    cpu_ttr_sizes = [int(s) for s in args.cpu_ttr_sizes.split(",") if s]
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"
    state: dict[str, Any] = {
        "info": {"machine": machine(), "device": str(dev), "device_name": name, "threads": args.threads,
                 "budget": args.budget, "tf32_conv": torch.backends.cudnn.allow_tf32,
                 "tf32_matmul": torch.backends.cuda.matmul.allow_tf32},
    }  # fmt: skip
    stem = "gpu" + (f"_{args.tag}" if args.tag else "")

    def left() -> float:
        return args.budget - (time.perf_counter() - t0)

    def save() -> None:
        md = summarise(state)
        if not args.smoke:
            write_outputs(stem, state, md)
        print(md, flush=True)

    def stage(name: str, fn) -> None:
        try:
            fn()
        except Exception:  # a failed stage is recorded and the next one runs
            state.setdefault("errors", []).append(f"{name}: " + traceback.format_exc(limit=6))
        save()

    def tests() -> None:
        state["tests"] = cuda_tests(min(150.0, left()))

    def split() -> None:
        state["split"] = []
        for size in sizes:
            for m in mods:
                if left() > 0:
                    state["split"].append(step_split(m, size, args.device, reps=2 if args.smoke else 5))

    def cpu_split() -> None:
        for size in cpu_sizes if dev.type != "cpu" else []:
            for m in mods:
                if left() > 0:
                    state["split"].append(step_split(m, size, "cpu", reps=2))

    def nudft() -> None:
        state["nudft"] = []
        for size in sizes:
            if left() > 0 and "diffraction_tomography" in mods:
                state["nudft"] += nudft_paths(size, args.device, reps=1 if args.smoke else 3)

    def ttr(key: str, size_list: list[int], device: str):  # time to result into state[key], one row per case
        def go() -> None:
            state.setdefault(key, [])
            for size in size_list:
                for m in mods:
                    if left() > 30:
                        its = 2 if args.smoke else None
                        state[key].append(time_to_result(m, size, device, its, time_penalty=False))
                        save()

        return go

    def faithful() -> None:
        def specs(text: str) -> list[tuple[str, int]]:  # "camera,astronaut:3600": per-image iteration counts
            out = []
            for item in (i for i in text.split(",") if i):
                name, _, its = item.partition(":")
                out.append((name, 3 if args.smoke else int(its or args.dip_iterations)))
            return out

        state["faithful"] = []
        for img, its in specs(args.faithful_images):
            if left() > 60:
                state["faithful"] += faithful_dip([img], its, args.device, bm3d=not args.no_bm3d)
                save()
        for img, its in specs(args.sigmoid_images):
            if left() > 60:
                state["faithful"] += faithful_dip([img], its, args.device, sigmoid=True, bm3d=False)
                save()

    skip = {s for s in args.skip.split(",") if s}
    if dev.type == "cuda" and not args.smoke and "tests" not in skip:
        stage("tests", tests)
    for key, name, fn in (("split", "split", split), ("nudft", "nudft", nudft), ("cpu", "cpu split", cpu_split),
                          ("ttr", "time to result", ttr("ttr", ttr_sizes, args.device))):  # fmt: skip
        if key not in skip:
            stage(name, fn)
    if args.faithful:
        stage("faithful", faithful)
    if cpu_ttr_sizes:
        stage("cpu time to result", ttr("cpu_ttr", cpu_ttr_sizes, "cpu"))
    save()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

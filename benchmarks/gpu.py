"""One prepared device run (issue 21): CUDA tests, per-step cost split, time to result, faithful rows.

Made to spend a lent GPU's few minutes on measuring, not on debugging: run it once on the CPU
at small sizes first (``--smoke``, the suite does), then on the device machine::

    python -m benchmarks.gpu --device cuda --budget 480          # ≈ 8 min, writes results/gpu.md

Stages, in order; the summary is rewritten after each, so a run cut short keeps what it measured:

1. **CUDA tests** — ``pytest -k "cuda or device"`` over ``tests/`` (skipped on a CPU run).
2. **Per-step split** per forward model and size (default 128², 256², 512²) on the device: one
   operator forward + adjoint, one step of the default network alone (its output's squared norm
   as loss), one full fit step (network → operator → loss → Adam); medians of a few repeats,
   peak device memory. The same split on this machine's CPU (``--cpu-sizes``) gives the ratio.
3. **Time to result** of ``rfprior.reconstruct(y, op)`` with the defaults on the device
   (``benchmarks.time_to_result``), sizes ``--ttr-sizes``.
4. **Faithful rows** (``benchmarks.faithful``, published-size DIP on astronaut and camera),
   with whatever time is left (``--faithful``).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import warnings
from typing import Any

import torch

from benchmarks._common import RESULTS, machine, md_table, write_outputs
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


def cuda_tests(timeout: float) -> dict[str, Any]:
    """Run the suite's device tests; returns the exit code and the last lines of the output."""
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", "tests", "-k", "cuda or device"]
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=max(timeout, 10))
        tail = (p.stdout + p.stderr).strip().splitlines()[-8:]
        return {"returncode": p.returncode, "tail": tail}
    except subprocess.TimeoutExpired:
        return {"returncode": None, "tail": ["timed out"]}


def summarise(state: dict[str, Any]) -> str:
    info = state["info"]
    out = [
        f"# Device run: {info['device_name']}",
        "",
        f"torch {info['machine']['torch']}; device {info['device']}; CPU side: {info['machine']['cpu_count']} CPUs, "
        f"torch threads {info['threads']}. Stages not reached within the {info['budget']:.0f} s budget are absent.",
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
    if state.get("ttr"):
        rows = [
            [r["case"]["modality"], f"{r['case']['size']}²", r["prior"], r["seconds"], r["penalty_seconds"],
             r["iterations"], 1000 * r["seconds_per_iteration"], r["psnr"]]
            for r in state["ttr"]
        ]  # fmt: skip
        head = ["modality", "size", "prior", "total s", "penalty weight s", "iterations", "ms / iteration", "PSNR"]
        out += ["", "## Time to result of the defaults", "", md_table(head, rows)]
    if state.get("faithful"):
        out += ["", "## Faithful rows", "", "```", *state["faithful"], "```"]
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
    ap.add_argument("--faithful", action="store_true", help="stage 4: the published-size DIP rows")
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
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"
    state: dict[str, Any] = {
        "info": {"machine": machine(), "device": str(dev), "device_name": name, "threads": args.threads,
                 "budget": args.budget},
    }  # fmt: skip
    stem = "gpu" + (f"_{args.tag}" if args.tag else "")

    def left() -> float:
        return args.budget - (time.perf_counter() - t0)

    def save() -> None:
        md = summarise(state)
        if not args.smoke:
            write_outputs(stem, state, md)
        print(md, flush=True)

    if dev.type == "cuda" and not args.smoke:
        state["tests"] = cuda_tests(min(120.0, left()))
        save()
    state["split"] = []
    for size in sizes:
        for m in mods:
            if left() <= 0:
                break
            state["split"].append(step_split(m, size, args.device, reps=2 if args.smoke else 5))
    for size in cpu_sizes if dev.type != "cpu" else []:
        for m in mods:
            if left() <= 0:
                break
            state["split"].append(step_split(m, size, "cpu", reps=2))
    save()
    state["ttr"] = []
    for size in ttr_sizes:
        for m in mods:
            if left() <= 30:
                break
            r = time_to_result(m, size, args.device, 2 if args.smoke else None)
            state["ttr"].append(r)
            save()
    if args.faithful and not args.smoke and left() > 60:
        cmd = [sys.executable, "-m", "benchmarks.faithful", "--device", args.device, "--threads", str(args.threads),
               "--images", "astronaut", "camera", "--outdir", str(RESULTS / f"{stem}_faithful")]  # fmt: skip
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=left() - 20)
            state["faithful"] = (p.stdout + p.stderr).strip().splitlines()[-40:]
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            state["faithful"] = [*out.strip().splitlines()[-40:], "(timed out)"]
    save()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

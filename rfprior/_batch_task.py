"""What a Dask worker runs for :func:`rfprior.batch`: one input file → one result file → one summary row.

Kept apart from the driver (:mod:`rfprior.batch`) so that the worker side imports no
Dask at module level and can be called directly (tests, a debugger) without a cluster.
Every function here returns a row instead of raising for a problem with one file: a
bad file fails its row, never the batch.
"""

from __future__ import annotations

import math
import os
import time
import zlib
from pathlib import Path
from typing import Any

from .result import NetworkState

__all__ = ["ROW_FIELDS", "carry_state", "empty_row", "output_path", "pick_device", "run_file"]

#: Columns of the batch summary, in order.
ROW_FIELDS = (
    "file",
    "status",
    "error",
    "iteration",
    "final_iteration",
    "stop_reason",
    "sigma",
    "misfit",
    "misfit_ratio",
    "psnr",
    "seconds",
    "worker",
    "warm_start",
    "output",
)
#: seconds between two looks at the batch's stop event from inside a fit
POLL_SECONDS = 1.0


def empty_row(file: str | os.PathLike[str], output: str | os.PathLike[str], status: str, error: str = "") -> dict:
    """A summary row with only the file, output, status and error filled (NaN / empty elsewhere)."""
    row: dict[str, Any] = {k: math.nan for k in ROW_FIELDS}
    row.update(
        file=os.fspath(file),
        output=os.fspath(output),
        status=status,
        error=error,
        stop_reason="",
        worker="",
        warm_start="",
    )
    return row


def one_line(exc: BaseException) -> str:
    """``"Type: first line of the message"`` (the whole error in one summary cell)."""
    msg = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {msg[0]}" if msg else type(exc).__name__


def _worker() -> Any:
    try:
        from distributed import get_worker

        return get_worker()
    except (ImportError, ValueError):  # not inside a Dask task
        return None


def pick_device(device: str | None, worker_name: Any = None, count: int | None = None) -> str | None:
    """The device one worker uses: a bare ``"cuda"`` becomes ``"cuda:i"`` when several GPUs are visible.

    ``i = name mod count`` for an integer worker name (``LocalCluster`` names its workers
    0, 1, …), else a stable hash of the name: on a machine with several GPUs and one worker
    per GPU, the workers spread over the GPUs. A worker that sees one GPU (``dask-cuda``
    sets ``CUDA_VISIBLE_DEVICES`` per worker) keeps ``"cuda"``. Any other device is returned as given.
    """
    if device != "cuda":
        return device
    if count is None:
        import torch

        count = torch.cuda.device_count()
    if count <= 1 or worker_name is None:
        return device
    index = worker_name if isinstance(worker_name, int) else zlib.crc32(str(worker_name).encode())
    return f"cuda:{index % count}"


def _threads(threads: int | None, worker: Any) -> int:
    """Torch threads for this task: ``threads``, else the cores this process may use / the worker's task slots."""
    if threads is not None:
        return int(threads)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    slots = getattr(getattr(worker, "state", None), "nthreads", None) or getattr(worker, "nthreads", 1) or 1
    return max(1, cores // int(slots))


class _StopPoll:
    """A reconstruct callback that returns ``True`` once the batch's stop event is set (looked at ≤ 1/s)."""

    def __init__(self, event: Any) -> None:
        self.event, self.last, self.stopped = event, time.monotonic(), False

    def set_now(self) -> bool:
        try:
            return bool(self.event.is_set())
        except Exception:  # the scheduler is gone: the client went away, so stop
            return True

    def __call__(self, state: Any) -> bool:
        now = time.monotonic()
        if now - self.last >= POLL_SECONDS:
            self.last = now
            self.stopped = self.set_now()
        return self.stopped


def run_file(
    file: str,
    output: str,
    options: dict[str, Any],
    prev: tuple[dict, NetworkState | None] | None = None,
    *,
    threads: int | None = None,
    stop_event: Any = None,
    weights: bool = False,
    warm: bool = False,
) -> tuple[dict, NetworkState | None]:
    """Reconstruct ``file`` into ``output`` (atomically) and return ``(row, network state)``.

    ``options`` are :func:`rfprior.reconstruct` keyword arguments plus ``stop`` (a rule name
    or rules) and ``average``. With ``warm``, the fit starts from ``prev``'s network state
    (the previous frame's task result; ``None`` or a frame without a state: a cold start)
    and the state returned is this fit's (or, for a failed frame, the one it was given, so
    the sequence carries on). ``stop_event`` names a :class:`distributed.Event` (or is an object with
    ``is_set()``): set, it
    keeps a task from starting and ends a running fit, whose result is saved marked interrupted.
    """
    import torch

    from .problem import reconstruct_file

    t0 = time.perf_counter()
    worker = _worker()
    row = empty_row(file, output, "failed")
    row["worker"] = str(worker.name) if worker is not None else "local"
    init = prev[1] if (warm and prev is not None) else None
    row["warm_start"] = os.path.basename(prev[0]["file"]) if init is not None else ""
    carried = init if warm else None
    poll = None
    if stop_event is not None:
        if isinstance(stop_event, str):
            from distributed import Event

            stop_event = Event(stop_event)
        poll = _StopPoll(stop_event)
        if poll.set_now():
            row.update(status="cancelled", error="batch interrupted before this file started")
            return row, carried
    try:
        torch.set_num_threads(_threads(threads, worker))
        opts = dict(options)
        device = pick_device(opts.pop("device", None), None if worker is None else worker.name)

        def mark_interrupted(res: Any) -> None:
            if poll is not None and poll.stopped:
                res.interrupted = True
                res.stop_reason = f"batch interrupted; {res.stop_reason}"

        job = reconstruct_file(
            file,
            output,
            stop=opts.pop("stop", None),  # None: rfprior.defaults.FIT's
            average=opts.pop("average", None),
            sigma=opts.pop("sigma", None),
            device=device,
            force=True,
            weights=weights,
            progress=False,
            callbacks=[poll] if poll is not None else (),
            before_save=mark_interrupted,
            init=init,
            **opts,
        )
        res, problem = job.result, job.problem
        misfit = problem.misfit(res.image)
        row.update(
            status="interrupted" if res.interrupted else "ok",
            error="",
            iteration=res.chosen_iteration,
            final_iteration=res.final_iteration,
            stop_reason=res.stop_reason,
            sigma=math.nan if res.sigma is None else float(res.sigma),
            misfit=misfit,
            misfit_ratio=misfit / (problem.size * res.sigma**2) if res.sigma else math.nan,
            psnr=math.nan if res.image_psnr is None else float(res.image_psnr),
        )
        carried = res.weights if warm else None
    except Exception as exc:  # one bad file fails its row, not the batch
        row["error"] = one_line(exc)
    row["seconds"] = time.perf_counter() - t0
    return row, carried


def carry_state(
    file: str, output: str, prev: tuple[dict, NetworkState | None] | None
) -> tuple[dict, NetworkState | None]:
    """A skipped frame of a warm-start sequence: pass on its stored network state (else ``prev``'s)."""
    from .weights import load_weights

    row = empty_row(file, output, "skipped", "")
    state = prev[1] if prev is not None else None
    try:
        state = load_weights(output)
    except (OSError, ValueError):  # stored without weights: the next frame starts from the last known state
        pass
    return row, state


def output_path(outdir: Path, file: str | os.PathLike[str]) -> Path:
    """``outdir/<stem>.nc`` for an input file."""
    return outdir / f"{Path(file).stem}.nc"

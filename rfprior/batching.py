"""Many measurement files at once, on Dask: :func:`batch` (also ``rfprior batch``).

Each input file is one Dask task on a ``distributed`` cluster — the machine's own
``LocalCluster`` by default, or any cluster the user already runs (a scheduler address,
a ``Client``, a ``dask-jobqueue`` ``SLURMCluster``'s client). rfprior schedules nothing
itself. A task loads the file, reconstructs it with :func:`rfprior.reconstruct` and
writes ``outdir/<stem>.nc`` atomically; it returns one row of the summary table, written
to ``outdir/summary.csv`` and ``outdir/summary.nc`` when the batch ends (also after a
failure or Ctrl-C).

Warm start (``warm_start=True``): the inputs are frames of one sequence, processed in
the given order; each fit starts from the previous frame's network (see ``init`` in
:func:`rfprior.reconstruct`) with the stopping rules unchanged. The frames form one
chain of dependent tasks, so a sequence occupies one worker at a time.

Measured (``docs/batch.md``): warm vs cold iterations and PSNR on moving-target
sequences; files per minute for 1, 2, 4 workers.
"""

from __future__ import annotations

import logging
import os
import sys
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from . import defaults
from ._batch_task import ROW_FIELDS, carry_state, empty_row, one_line, output_path, run_file

__all__ = ["INSTALL_HINT", "OPTIONS", "batch", "is_done", "summary_counts", "write_summary"]

#: The one line printed when Dask is missing.
INSTALL_HINT = (
    "rfprior batch needs dask and distributed: pip install 'rfprior[batch]' (or: pip install dask distributed)"
)
#: The :func:`rfprior.reconstruct` options a batch passes on to every fit (plus ``stop`` by name and ``average``).
OPTIONS = (
    "prior",
    "prior_kwargs",
    "loss",
    "stop",
    "average",
    "iterations",
    "lr",
    "seed",
    "device",
    "reg_noise_std",
    "sigma",
    "psnr_peak",
    "autoscale",
    "backtrack_db",
    "max_backtracks",
    "fits",
    "penalty",
    "penalty_weight",
)
#: seconds to wait for running fits to save their interrupted results after Ctrl-C
DRAIN_SECONDS = 120.0


def _require_dask() -> None:
    try:
        import dask  # noqa: F401
        import distributed  # noqa: F401
    except ImportError:
        raise ImportError(INSTALL_HINT) from None


def is_done(file: str | os.PathLike[str], output: str | os.PathLike[str]) -> bool:
    """True when ``output`` is a finished (not interrupted) result newer than ``file``."""
    import h5py

    out = Path(output)
    try:
        if out.stat().st_mtime < Path(file).stat().st_mtime:
            return False
        with h5py.File(out, "r") as f:
            return "rfprior_result_format" in f.attrs and not bool(f.attrs.get("interrupted", 1))
    except (OSError, ValueError):
        return False


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _check_options(options: dict[str, Any], warm_start: bool) -> None:
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise TypeError(f"batch: unknown reconstruct option(s) {unknown}; allowed: {', '.join(OPTIONS)}")
    if warm_start and int(options.get("fits") or defaults.FIT.fits) > 1:
        raise ValueError("warm_start: not supported with fits > 1; use fits=1")
    stop = options.get("stop")
    if isinstance(stop, str):
        from .stopping import RULES

        if stop not in RULES:
            raise ValueError(f"stop must be one of {', '.join(RULES)}, got {stop!r}")


def _refuse_unoffered(files: list[str], stop: str) -> None:
    """A stopping rule that an input's forward model does not offer (``holdout`` on partial Fourier):
    refuse the batch before any work.

    Reads only each file's ``modality`` attribute; an unreadable file is left for its own row.
    """
    import h5py

    from . import modalities

    refused: dict[str, list[str]] = {}
    for f in files:
        try:
            with h5py.File(f, "r") as h:
                name = str(h.attrs.get("modality", ""))
        except (OSError, ValueError):
            continue
        if name in modalities.names() and stop in modalities.get(name).unsuitable_rules:
            refused.setdefault(name, []).append(os.path.basename(f))
    for name, found in refused.items():
        more = ", …" if len(found) > 3 else ""
        why = modalities.get(name).unsuitable_rules[stop]
        title = modalities.get(name).title
        raise ValueError(f"stop {stop!r} is not offered for {title} data ({', '.join(found[:3])}{more}): {why}")


def _local_cluster(workers: int | None, threads: int | None, n_tasks: int, device: str | None, warm: bool):
    """A ``LocalCluster`` of single-task worker processes sized so that workers × torch threads ≤ cores."""
    from distributed import LocalCluster

    cores = _cores()
    if workers is None:
        if warm:
            workers = 1  # one chain of dependent frames
        elif device is not None and str(device).startswith("cuda"):
            import torch

            workers = max(1, min(n_tasks, torch.cuda.device_count()))
        else:
            workers = max(1, min(n_tasks, cores // (threads or 1)))
    if threads is None:
        threads = max(1, cores // workers)
    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,  # one fit at a time per process; the torch threads are set per task
        processes=True,
        dashboard_address=":0",  # any free port: never clashes with a cluster already on 8787
        silence_logs=logging.ERROR,
    )
    return cluster, workers, threads


def _connect(scheduler: Any, workers: int | None, threads: int | None, n_tasks: int, device: Any, warm: bool):
    """``(client, cluster or None, owns_client, threads)`` for the ``scheduler`` argument of :func:`batch`."""
    from distributed import Client

    if isinstance(scheduler, Client):
        return scheduler, None, False, threads
    if isinstance(scheduler, str):
        try:
            return Client(scheduler, timeout="30s"), None, True, threads
        except OSError as exc:
            raise ConnectionError(f"scheduler: cannot reach {scheduler!r} ({one_line(exc)})") from None
    if scheduler is not None:
        raise TypeError(
            f"scheduler must be None, an address string or a distributed.Client, got {type(scheduler).__name__}"
        )
    from ._batch_plugin import IgnoreSigint

    cluster, _, threads = _local_cluster(workers, threads, n_tasks, device, warm)
    client = Client(cluster)
    client.register_plugin(IgnoreSigint())
    return client, cluster, True, threads


def batch(
    inputs: Iterable[str | os.PathLike[str]],
    outdir: str | os.PathLike[str],
    *,
    scheduler: Any = None,
    workers: int | None = None,
    threads_per_worker: int | None = None,
    warm_start: bool = False,
    force: bool = False,
    progress: bool = True,
    **reconstruct_options: Any,
):
    """Reconstruct every input file on a Dask cluster; return the summary table.

    Parameters
    ----------
    inputs : measurement files (HDF5, DESIGN.md §6); each is written to ``outdir/<stem>.nc``
        (the result file of ``rfprior reconstruct``; stems must be distinct).
    outdir : folder for the results and ``summary.csv`` / ``summary.nc`` (created if missing).
    scheduler : ``None`` — start a ``distributed.LocalCluster`` of ``workers`` processes, one
        fit at a time each (default: as many as the cores allow, one per GPU with
        ``device="cuda"``, one for a warm-start sequence); an address ``"tcp://host:8786"``
        — use that running cluster; or a ``distributed.Client`` (left open).
    workers : processes of the local cluster (ignored with an existing cluster).
    threads_per_worker : torch threads per fit; default ``cores // workers`` on the local
        cluster (so workers × threads ≤ cores), on another cluster each worker's cores
        divided by its task slots.
    warm_start : the inputs are one sequence of frames, in order; each frame's fit starts
        from the previous frame's network (``reconstruct(..., init=...)``), stopping rules
        unchanged; results then also store their weights (``save_result(..., weights=True)``).
    force : recompute inputs whose result already exists. Without it, an input whose result
        is newer than the input and finished (not interrupted) is skipped, so an interrupted
        batch resumes where it stopped.
    progress : a progress bar over files.
    **reconstruct_options : ``rfprior.batching.OPTIONS`` — :func:`rfprior.reconstruct`'s keyword arguments
        (``prior``, ``iterations``, ``seed``, ``device`` …, where ``device="cuda"`` uses GPU
        ``worker mod count`` when a worker sees several), ``stop`` as a rule name
        (default ``rfprior.defaults.FIT.stop``; see ``rfprior.stopping.RULES``) or rule objects, and
        ``average`` (running average, default ``True``).

    Returns
    -------
    pandas.DataFrame
        One row per input, in input order: ``file``, ``status`` (``ok``, ``failed``,
        ``skipped``, ``interrupted`` — result saved, marked interrupted — or ``cancelled`` —
        never started), ``error`` (one line), ``iteration`` (chosen), ``final_iteration``,
        ``stop_reason``, ``sigma`` (σ̂ per real/imag component, data units), ``misfit``
        (``½‖y − A x̂‖²``, data units), ``misfit_ratio`` (``misfit / (M σ̂²)``), ``psnr`` (dB,
        when the file holds a truth), ``seconds`` (wall time of the task), ``worker``,
        ``warm_start`` (the frame it started from), ``output``. ``df.attrs["interrupted"]``
        is true after Ctrl-C.

    Raises
    ------
    ImportError
        dask/distributed are not installed (the message says how to install them).
    TypeError, ValueError
        An unknown option, duplicate stems, or a bad argument (before anything runs).
    """
    _require_dask()
    import pandas as pd

    files = [os.fspath(p) for p in inputs]
    if not files:
        raise ValueError("inputs: no input files given")
    _check_options(reconstruct_options, warm_start)
    if isinstance(reconstruct_options.get("stop"), str):
        _refuse_unoffered(files, reconstruct_options["stop"])
    for name, value in (("workers", workers), ("threads_per_worker", threads_per_worker)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be an int ≥ 1 or None, got {value!r}")
    out = Path(outdir)
    outputs = [output_path(out, f) for f in files]
    seen: dict[Path, str] = {}
    for f, o in zip(files, outputs, strict=True):
        if o in seen:
            raise ValueError(f"inputs: {seen[o]} and {f} would both write {o}; give inputs distinct file names")
        seen[o] = f
    out.mkdir(parents=True, exist_ok=True)

    done = [not force and is_done(f, o) for f, o in zip(files, outputs, strict=True)]
    rows: list[dict | None] = [
        empty_row(f, o, "skipped") if d else None for f, o, d in zip(files, outputs, done, strict=True)
    ]
    n_todo = len(files) - sum(done)
    interrupted = False
    if n_todo:
        interrupted = _run(
            files,
            outputs,
            done,
            rows,
            scheduler,
            workers,
            threads_per_worker,
            warm_start,
            progress,
            reconstruct_options,
        )
    table = pd.DataFrame(
        [
            r if r is not None else empty_row(f, o, "cancelled", "not run")
            for r, f, o in zip(rows, files, outputs, strict=True)
        ],
        columns=list(ROW_FIELDS),
    )
    for name in ("iteration", "final_iteration"):
        table[name] = table[name].astype("Int64")  # integers with gaps (failed, skipped rows)
    table.attrs["interrupted"] = interrupted
    write_summary(table, out)
    return table


def _run(files, outputs, done, rows, scheduler, workers, threads, warm, progress, options) -> bool:
    """Submit the tasks, collect rows as they finish; returns whether Ctrl-C stopped the batch."""
    from distributed import Event, as_completed, wait

    client, cluster, owns, threads = _connect(
        scheduler, workers, threads, sum(not d for d in done), options.get("device"), warm
    )
    stop_name = f"rfprior-batch-stop-{uuid.uuid4().hex}"
    event = Event(stop_name, client=client)
    bar = None
    interrupted = False
    try:
        futures: dict[Any, int] = {}
        prev = None
        for i, (f, o, d) in enumerate(zip(files, outputs, done, strict=True)):
            if d and not warm:
                continue
            key = f"rfprior-{Path(f).stem}-{uuid.uuid4().hex[:8]}"
            if d:  # a finished frame of a sequence: only its stored state is needed
                fut = client.submit(carry_state, f, str(o), prev, key=key, pure=False)
            else:
                fut = client.submit(
                    run_file,
                    f,
                    str(o),
                    options,
                    prev,
                    threads=threads,
                    stop_event=stop_name,
                    weights=warm,
                    warm=warm,
                    key=key,
                    pure=False,
                )
            futures[fut] = i
            prev = fut if warm else None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(files), initial=sum(done), desc="rfprior batch", unit="file", dynamic_ncols=True)
        pending = set(futures)
        try:
            for fut in as_completed(list(futures)):
                pending.discard(fut)
                _collect(fut, futures[fut], rows, files, outputs, bar)
        except KeyboardInterrupt:
            interrupted = True
            print(
                "rfprior batch: interrupted; no new files start, running fits save their interrupted results "
                "(Ctrl-C again to abandon them)",
                file=sys.stderr,
            )
            try:
                event.set()
                wait(list(pending), timeout=DRAIN_SECONDS)
            except KeyboardInterrupt:
                client.cancel(list(pending))
            for fut in pending:
                if fut.done():
                    _collect(fut, futures[fut], rows, files, outputs, bar)
    finally:
        if bar is not None:
            bar.close()
        if owns:
            client.close()
        if cluster is not None:
            cluster.close()
    return interrupted


def _collect(fut: Any, i: int, rows: list, files: list, outputs: list, bar: Any) -> None:
    try:
        row, _ = fut.result()
        if rows[i] is None or row["status"] != "skipped":
            rows[i] = row
    except Exception as exc:  # the task itself died (a killed worker, an unpicklable option)
        rows[i] = empty_row(files[i], outputs[i], "failed", one_line(exc))
    if bar is not None and not (rows[i]["status"] == "skipped"):
        bar.update(1)
        bar.set_postfix_str(f"{Path(files[i]).name}: {rows[i]['status']}", refresh=False)


def write_summary(table: Any, outdir: Path) -> None:
    """Write the table atomically as ``summary.csv`` and ``summary.nc`` (dimension ``input``)."""
    import xarray as xr

    from .files.atomic import atomic_path

    with atomic_path(outdir / "summary.csv", force=True) as tmp:
        table.to_csv(tmp, index=False)
    flat = table.copy()
    for name in ("iteration", "final_iteration"):
        flat[name] = flat[name].astype("float64").fillna(-1).astype("int64")  # −1: none (NetCDF has no NA int)
    ds = xr.Dataset.from_dataframe(flat.rename_axis("input"))
    for name in ds.data_vars:
        if ds[name].dtype == object:
            ds[name] = ds[name].astype(str)
    ds.attrs = {
        "interrupted": int(bool(table.attrs.get("interrupted", False))),
        "columns": "see rfprior.batch: one row per input file",
    }
    with atomic_path(outdir / "summary.nc", force=True) as tmp:
        ds.to_netcdf(tmp, engine="h5netcdf")


def summary_counts(table: Any) -> dict[str, int]:
    """``{status: count}`` of a batch table."""
    return {k: int(v) for k, v in table["status"].value_counts().items()}
